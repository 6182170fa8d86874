//! Spans sent without credentials, held until their trace is claimed (`held_spans`; see
//! [`crate::ingest::held`]).

use rusqlite::{params_from_iter, Connection, OptionalExtension};

use crate::store::{ClaimedSpan, HeldSpan, StoreError};

/// Trace ids (or span ids) per statement, well under SQLite's limit on bound values.
const TRACES_PER_STATEMENT: usize = 500;

/// Holds `spans` unless they would take the held spans past `max_bytes`.
pub(super) fn hold(
    conn: &Connection,
    spans: &[HeldSpan],
    max_bytes: u64,
) -> Result<bool, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let held: i64 = tx.query_row("SELECT COALESCE(SUM(bytes), 0) FROM held_spans", [], |r| {
        r.get(0)
    })?;
    let adding: i64 = spans.iter().map(|span| span.bytes).sum();
    if u64::try_from(held.saturating_add(adding)).unwrap_or(u64::MAX) > max_bytes {
        return Ok(false);
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO held_spans (trace_id, held_at_ms, bytes, span) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for span in spans {
            insert.execute((&span.trace_id, span.held_at_ms, span.bytes, &span.span))?;
        }
    }
    tx.commit()?;
    Ok(true)
}

/// Whether any span of `trace_ids` held since `held_since_ms` waits, claimed by nobody at
/// `now_ms`: asked on a reading connection first, so that the common case (nothing held, or
/// all of it claimed by a request storing it now) never waits for the writer.
pub(super) fn any_claimable(
    conn: &Connection,
    trace_ids: &[String],
    held_since_ms: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    use rusqlite::types::Value;
    for traces in trace_ids.chunks(TRACES_PER_STATEMENT) {
        let sql = format!(
            "SELECT 1 FROM held_spans
             WHERE held_at_ms >= ?1 AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?2)
                 AND trace_id IN ({}) LIMIT 1",
            placeholders(traces.len(), 3)
        );
        let values = [held_since_ms, now_ms]
            .into_iter()
            .map(Value::Integer)
            .chain(traces.iter().map(|id| Value::Text(id.clone())));
        let found: Option<i64> = conn
            .query_row(&sql, params_from_iter(values), |r| r.get(0))
            .optional()?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Claims the spans of `trace_ids` held since `held_since_ms` that no claim holds at
/// `now_ms`, until `until_ms`; them, oldest first.
pub(super) fn claim(
    conn: &Connection,
    trace_ids: &[String],
    held_since_ms: i64,
    now_ms: i64,
    until_ms: i64,
) -> Result<Vec<ClaimedSpan>, StoreError> {
    use rusqlite::types::Value;
    let tx = conn.unchecked_transaction()?;
    let mut claimed = Vec::new();
    for traces in trace_ids.chunks(TRACES_PER_STATEMENT) {
        let sql = format!(
            "UPDATE held_spans SET claimed_until_ms = ?1
             WHERE held_at_ms >= ?2 AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?3)
                 AND trace_id IN ({})
             RETURNING seq, trace_id, held_at_ms, bytes, span",
            placeholders(traces.len(), 4)
        );
        let values = [until_ms, held_since_ms, now_ms]
            .into_iter()
            .map(Value::Integer)
            .chain(traces.iter().map(|id| Value::Text(id.clone())));
        let mut update = tx.prepare(&sql)?;
        let rows = update.query_map(params_from_iter(values), |r| {
            Ok(ClaimedSpan {
                id: r.get(0)?,
                span: HeldSpan {
                    trace_id: r.get(1)?,
                    held_at_ms: r.get(2)?,
                    bytes: r.get(3)?,
                    span: r.get(4)?,
                },
            })
        })?;
        for row in rows {
            claimed.push(row?);
        }
    }
    tx.commit()?;
    claimed.sort_by_key(|claimed| claimed.id);
    Ok(claimed)
}

/// Deletes the claimed spans `ids` of the claim until `until_ms`.
pub(super) fn settle(conn: &Connection, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
    of_claim(
        conn,
        "DELETE FROM held_spans WHERE claimed_until_ms = ?1 AND seq IN",
        ids,
        until_ms,
    )
}

/// Makes the claimed spans `ids` of the claim until `until_ms` claimable again.
pub(super) fn release(conn: &Connection, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
    of_claim(
        conn,
        "UPDATE held_spans SET claimed_until_ms = NULL WHERE claimed_until_ms = ?1 AND seq IN",
        ids,
        until_ms,
    )
}

/// Runs `statement (…ids)` (its `?1` the claim's end) over `ids`, a chunk of them at a time,
/// in one transaction.
fn of_claim(
    conn: &Connection,
    statement: &str,
    ids: &[i64],
    until_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    for chunk in ids.chunks(TRACES_PER_STATEMENT) {
        let sql = format!("{statement} ({})", placeholders(chunk.len(), 2));
        let values = std::iter::once(until_ms).chain(chunk.iter().copied());
        tx.execute(&sql, params_from_iter(values))?;
    }
    tx.commit()?;
    Ok(())
}

/// Deletes the spans held before `held_before_ms`.
pub(super) fn expire(conn: &Connection, held_before_ms: i64) -> Result<u64, StoreError> {
    let deleted = conn.execute(
        "DELETE FROM held_spans WHERE held_at_ms < ?1",
        [held_before_ms],
    )?;
    Ok(deleted as u64)
}

/// How many spans held since `held_since_ms` wait.
pub(super) fn count(conn: &Connection, held_since_ms: i64) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM held_spans WHERE held_at_ms >= ?1",
        [held_since_ms],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// `?first, ?first+1, …`: `n` numbered placeholders.
fn placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::{any_claimable, TRACES_PER_STATEMENT};
    use crate::store::sqlite::test_support::temp_store;
    use crate::store::{HeldSpan, HeldSpanStore};

    #[test]
    fn the_pre_check_finds_exactly_the_spans_a_claim_would_take() {
        let (store, dir) = temp_store();
        let span = |trace: &str, at: i64| HeldSpan {
            trace_id: trace.into(),
            held_at_ms: at,
            bytes: 10,
            span: "{}".into(),
        };
        assert!(store
            .hold_spans(&[span("t", 100), span("old", 5)], 1_000)
            .unwrap());
        let claimable = |traces: &[String], since: i64, now: i64| {
            any_claimable(&store.write_conn(), traces, since, now).unwrap()
        };
        let t = vec!["t".to_owned()];
        assert!(claimable(&t, 0, 1_000));
        assert!(!claimable(&["u".to_owned()], 0, 1_000), "another trace");
        assert!(
            !claimable(&["old".to_owned()], 50, 1_000),
            "held too long ago"
        );
        // a trace in a later statement's chunk is looked at too
        let many: Vec<String> = (0..TRACES_PER_STATEMENT + 10)
            .map(|i| format!("other-{i}"))
            .chain(t.iter().cloned())
            .collect();
        assert!(claimable(&many, 0, 1_000));

        // claimed until 2,000: nothing to claim before then, the span again once it lapses
        assert_eq!(
            store.claim_held_spans(&t, 0, 1_000, 2_000).unwrap().len(),
            1
        );
        assert!(!claimable(&t, 0, 1_999));
        assert!(store
            .claim_held_spans(&t, 0, 1_999, 3_000)
            .unwrap()
            .is_empty());
        assert!(claimable(&t, 0, 2_000));
        std::fs::remove_dir_all(dir).ok();
    }
}
