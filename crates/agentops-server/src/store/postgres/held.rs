//! Spans sent without credentials, held until their trace is claimed (`held_spans`; see
//! [`crate::ingest::held`]), shared by every replica.

use tokio_postgres::Client;

use super::pg_error;
use crate::store::{ClaimedSpan, HeldSpan, StoreError};

/// The advisory lock key holders take, so that replicas holding at once stay within the
/// limit together (`"held"` in ASCII).
const HOLD_LOCK: i64 = 0x6865_6c64;

/// Holds `spans` unless they would take the held spans past `max_bytes`.
pub(super) async fn hold(
    client: &mut Client,
    spans: &[HeldSpan],
    max_bytes: u64,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&HOLD_LOCK])
        .await
        .map_err(pg_error)?;
    let held: i64 = tx
        .query_one(
            "SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM held_spans",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let adding: i64 = spans.iter().map(|span| span.bytes).sum();
    if u64::try_from(held.saturating_add(adding)).unwrap_or(u64::MAX) > max_bytes {
        return Ok(false);
    }
    let trace_ids: Vec<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    let held_at: Vec<i64> = spans.iter().map(|s| s.held_at_ms).collect();
    let bytes: Vec<i64> = spans.iter().map(|s| s.bytes).collect();
    let bodies: Vec<&str> = spans.iter().map(|s| s.span.as_str()).collect();
    tx.execute(
        "INSERT INTO held_spans (trace_id, held_at_ms, bytes, span)
         SELECT trace_id, held_at_ms, bytes, span
         FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[])
             WITH ORDINALITY AS u(trace_id, held_at_ms, bytes, span, n)
         ORDER BY n",
        &[&trace_ids, &held_at, &bytes, &bodies],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    Ok(true)
}

/// Claims the spans of `trace_ids` held since `held_since_ms` that no claim holds at
/// `now_ms`, until `until_ms`; them, oldest first. A replica claiming the same rows at once
/// waits for this claim's commit, then finds them claimed (the `WHERE` is checked again on
/// the row it updates).
pub(super) async fn claim(
    client: &Client,
    trace_ids: &[String],
    held_since_ms: i64,
    now_ms: i64,
    until_ms: i64,
) -> Result<Vec<ClaimedSpan>, StoreError> {
    let rows = client
        .query(
            "UPDATE held_spans SET claimed_until_ms = $4
             WHERE trace_id = ANY($1) AND held_at_ms >= $2
                 AND (claimed_until_ms IS NULL OR claimed_until_ms <= $3)
             RETURNING seq, trace_id, held_at_ms, bytes, span",
            &[&trace_ids, &held_since_ms, &now_ms, &until_ms],
        )
        .await
        .map_err(pg_error)?;
    let mut claimed: Vec<ClaimedSpan> = rows
        .iter()
        .map(|r| ClaimedSpan {
            id: r.get(0),
            span: HeldSpan {
                trace_id: r.get(1),
                held_at_ms: r.get(2),
                bytes: r.get(3),
                span: r.get(4),
            },
        })
        .collect();
    claimed.sort_by_key(|claimed| claimed.id);
    Ok(claimed)
}

/// Deletes the claimed spans `ids` of the claim until `until_ms`.
pub(super) async fn settle(client: &Client, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
    client
        .execute(
            "DELETE FROM held_spans WHERE seq = ANY($1) AND claimed_until_ms = $2",
            &[&ids, &until_ms],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Makes the claimed spans `ids` of the claim until `until_ms` claimable again.
pub(super) async fn release(client: &Client, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE held_spans SET claimed_until_ms = NULL
             WHERE seq = ANY($1) AND claimed_until_ms = $2",
            &[&ids, &until_ms],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Deletes the spans held before `held_before_ms`.
pub(super) async fn expire(client: &Client, held_before_ms: i64) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM held_spans WHERE held_at_ms < $1",
            &[&held_before_ms],
        )
        .await
        .map_err(pg_error)
}

/// How many spans held since `held_since_ms` wait.
pub(super) async fn count(client: &Client, held_since_ms: i64) -> Result<u64, StoreError> {
    let n: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM held_spans WHERE held_at_ms >= $1",
            &[&held_since_ms],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    Ok(n.max(0) as u64)
}
