//! The write path: the group commit (one transaction, a savepoint per write), each kind of
//! [`Write`], and the session checks and merges. The events' bulk insert with the aggregates
//! kept beside them is in `write_events`; OTLP log records and metric points in `write_otel`.
//!
//! Ordering: `events`, `otel_logs` and `logs` number their rows from sequences, which
//! concurrent transactions draw from in any order. A reader of a session's changes needs its
//! rows to become visible in number order, so every write locks the session's row (its upsert,
//! or `SELECT … FOR UPDATE`) before inserting any row of it: two transactions adding rows to one
//! session then run one after the other. A transaction first locks every stored session its
//! writes touch, in `(project_id, id)` order, so that replicas (and a replica's writer
//! threads) writing the same stored sessions wait for each other instead of deadlocking; the
//! hourly totals, which all writes of a project and hour share, are added last (see
//! `write_events::HourlyTotals`). Sessions a transaction creates, and those that retention or
//! the quiet window lock, are locked as they are met, not in that first round: two
//! transactions can still deadlock over them, and [`commit`] then runs the loser again.

use std::time::Duration;

use agentops_core::timestamp::now;
use agentops_core::EndState;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};

use super::schema::Partitions;
use super::write_events::{insert_events, HourlyTotals};
use super::{is_retryable, pg_error};
use crate::store::json::json_text;
use crate::store::rollup::{FACET_AGENT, FACET_AGENT_NAME};
use crate::store::{EventRecord, Outcome, SessionRecord, StoreError, Write, WriteError};

/// How many times a transaction that PostgreSQL aborted as a deadlock or serialization
/// failure is run in all.
const ATTEMPTS: u32 = 5;

/// The pause before the first retry; it doubles with each one.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Why a write (or the whole transaction) did not go through.
#[derive(Debug)]
pub(super) enum Failure {
    /// The write was refused on the store's own terms (no such session, an inconsistent
    /// write), or failed otherwise than by a statement.
    Write(WriteError),
    /// PostgreSQL failed a statement: a refusal of the write, or the end of the transaction
    /// (see [`ends_transaction`]).
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Self {
        Failure::Write(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Write(WriteError::Store(e))
    }
}

/// A statement's failure as one write's error: PostgreSQL's data exceptions (class 22: a NUL
/// character in text, a number out of range) refuse the values the write holds
/// ([`WriteError::Invalid`]); anything else is a storage failure.
fn write_error(e: tokio_postgres::Error) -> WriteError {
    match e.as_db_error() {
        Some(db) if db.code().code().starts_with("22") => {
            WriteError::Invalid(format!("cannot store this value: {}", db.message()))
        }
        _ => WriteError::Store(pg_error(e)),
    }
}

/// A write's result inside the transaction.
pub(super) type Applied<T> = Result<T, Failure>;

/// Applies `writes` in one transaction, each in its own savepoint: a refused write is rolled
/// back alone and answered with its error. The month partitions of the writes' events are made
/// first (outside the transaction). A deadlock or serialization failure runs the whole
/// transaction again, a few times; when the disk is full nothing is committed and every write
/// is answered [`StoreError::Unwritable`]; any other failure of the transaction is the outer
/// error (nothing committed).
pub(super) async fn commit(
    client: &mut Client,
    partitions: &Partitions,
    writes: &[Write],
) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
    partitions
        .ensure(client, writes.iter().flat_map(event_start_times))
        .await?;
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match commit_once(client, writes).await {
            Ok((results, dropped_partitions)) => {
                if dropped_partitions {
                    partitions.forget();
                }
                return Ok(results);
            }
            Err(e) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "write transaction aborted by PostgreSQL; running it again");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(e) if is_disk_full(&e) => {
                tracing::warn!(error = %e, writes = writes.len(), "cannot write to the database (disk full): nothing committed");
                let reason = pg_error(e).to_string();
                return Ok(writes
                    .iter()
                    .map(|_| Err(StoreError::Unwritable(reason.clone()).into()))
                    .collect());
            }
            Err(e) => return Err(pg_error(e)),
        }
    }
}

/// The start times of a write's events (for their partitions).
fn event_start_times(write: &Write) -> impl Iterator<Item = &str> {
    let events: &[EventRecord] = match write {
        Write::CreateEvents { events, .. } => events,
        Write::IngestSpans { spans, .. } => spans,
        _ => &[],
    };
    events.iter().map(|e| e.start_time.as_str())
}

/// One run of the transaction: each write's result, and whether retention dropped a partition
/// of `events`. The error is the one that ended the transaction (nothing committed).
async fn commit_once(
    client: &mut Client,
    writes: &[Write],
) -> Result<(Vec<Result<Outcome, WriteError>>, bool), tokio_postgres::Error> {
    let mut tx = client.transaction().await?;
    lock_sessions(&tx, writes).await?;
    let mut results = Vec::with_capacity(writes.len());
    let mut dropped_partitions = false;
    let mut hours = HourlyTotals::default();
    for write in writes {
        if matches!(write, Write::ExpireSessions { .. }) {
            // Retention takes its events off the hourly totals: what the writes before it added
            // must be there first.
            hours.apply(&tx).await?;
            hours = HourlyTotals::default();
        }
        let sp = tx.savepoint("w").await?;
        let mut written = HourlyTotals::default();
        match apply(&sp, write, &mut dropped_partitions, &mut written).await {
            Ok(outcome) => {
                sp.commit().await?;
                hours.merge(written);
                results.push(Ok(outcome));
            }
            Err(Failure::Db(e)) if ends_transaction(&e) => return Err(e),
            Err(failure) => {
                sp.rollback().await?;
                results.push(Err(match failure {
                    Failure::Write(refusal) => refusal,
                    Failure::Db(e) => write_error(e),
                }));
            }
        }
    }
    hours.apply(&tx).await?;
    tx.commit().await?;
    Ok((results, dropped_partitions))
}

/// Locks the stored sessions that `writes` add to, all at once in `(project_id, id)` order
/// (each write locks its own again as it goes, which costs nothing more): two transactions
/// whose writes name the same sessions in different orders then wait for each other instead
/// of deadlocking. Sessions the writes create are locked as they are inserted.
async fn lock_sessions(
    tx: &Transaction<'_>,
    writes: &[Write],
) -> Result<(), tokio_postgres::Error> {
    let mut keys: Vec<(&str, &str)> = writes.iter().flat_map(sessions_written).collect();
    if keys.len() < 2 {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    let (projects, ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    tx.execute(
        "SELECT 1 FROM sessions s
         JOIN UNNEST($1::text[], $2::text[]) AS u(project_id, id)
           ON s.project_id = u.project_id AND s.id = u.id
         ORDER BY s.project_id, s.id FOR UPDATE OF s",
        &[&projects, &ids],
    )
    .await?;
    Ok(())
}

/// The sessions (project and id) a write adds to or changes; none for the upkeep writes,
/// which find theirs by query.
fn sessions_written(write: &Write) -> Vec<(&str, &str)> {
    match write {
        Write::CreateSession {
            project_id,
            session,
        }
        | Write::UpdateSession {
            project_id,
            session,
        } => vec![(project_id, &session.id)],
        Write::CreateEvents {
            project_id,
            session_id,
            ..
        }
        | Write::CreateAgent {
            project_id,
            session_id,
            ..
        }
        | Write::AppendLog {
            project_id,
            session_id,
            ..
        } => vec![(project_id, session_id)],
        Write::IngestSpans {
            project_id,
            sessions,
            spans,
        } => sessions
            .iter()
            .map(|s| s.id.as_str())
            .chain(spans.iter().map(|s| s.session_id.as_str()))
            .map(|id| (project_id.as_str(), id))
            .collect(),
        Write::IngestLogs {
            project_id,
            records,
        } => records
            .iter()
            .map(|r| (project_id.as_str(), r.session_id.as_str()))
            .collect(),
        Write::IngestMetrics { .. }
        | Write::ExpireSessions { .. }
        | Write::CloseQuietSessions { .. } => Vec::new(),
    }
}

/// Whether a failed statement ends the whole transaction rather than refusing one write: a
/// lost connection, a deadlock or serialization failure (the transaction runs again), a server
/// out of resources (disk full, …), shutting down, or failing. Other errors (a value the
/// schema refuses, text with a NUL character) refuse the write alone.
fn ends_transaction(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => {
            let code = code.code();
            is_retryable(e)
                || ["08", "25", "53", "57", "58", "XX"]
                    .iter()
                    .any(|class| code.starts_with(class))
        }
    }
}

/// Whether PostgreSQL failed for lack of disk space (SQLSTATE 53100).
fn is_disk_full(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::DISK_FULL)
}

/// Applies one write (within its savepoint); sets `dropped_partitions` when retention dropped
/// a partition of `events`.
/// Its new events' hourly totals go into `hours`.
async fn apply<'w>(
    tx: &Transaction<'_>,
    write: &'w Write,
    dropped_partitions: &mut bool,
    hours: &mut HourlyTotals<'w>,
) -> Applied<Outcome> {
    match write {
        Write::CreateSession {
            project_id,
            session,
        } => {
            upsert_session(tx, project_id, session).await?;
            Ok(Outcome::Done)
        }
        Write::UpdateSession {
            project_id,
            session,
        } => {
            check_exists(tx, project_id, &session.id).await?;
            upsert_session(tx, project_id, session).await?;
            Ok(Outcome::SessionCost(
                session_cost(tx, project_id, &session.id).await?,
            ))
        }
        Write::CreateEvents {
            project_id,
            session_id,
            events,
        } => {
            let stored = check_exists(tx, project_id, session_id).await?;
            if let Some(e) = events.iter().find(|e| &e.session_id != session_id) {
                return Err(Failure::Write(WriteError::Invalid(format!(
                    "event {} belongs to session {}, not {session_id}",
                    e.id, e.session_id
                ))));
            }
            let empty: &[&str] = if stored == 0 { &[session_id] } else { &[] };
            Ok(Outcome::Inserted(
                insert_events(tx, project_id, events, empty, hours).await?,
            ))
        }
        Write::CreateAgent {
            project_id,
            session_id,
            agent_id,
            name,
        } => {
            check_exists(tx, project_id, session_id).await?;
            insert_agent(tx, project_id, session_id, agent_id, name).await?;
            Ok(Outcome::Done)
        }
        Write::IngestSpans {
            project_id,
            sessions,
            spans,
        } => ingest_spans(tx, project_id, sessions, spans, hours).await,
        Write::ExpireSessions {
            project_id,
            before,
            server_before,
            max_rows,
        } => {
            let expired =
                super::expire::expire(tx, project_id, before, server_before.as_deref(), *max_rows)
                    .await?;
            *dropped_partitions |= expired.dropped_partitions;
            Ok(expired.outcome)
        }
        Write::IngestLogs {
            project_id,
            records,
        } => super::write_otel::insert_logs(tx, project_id, records).await,
        Write::IngestMetrics { project_id, points } => {
            super::write_otel::insert_points(tx, project_id, points).await
        }
        Write::CloseQuietSessions { before } => {
            Ok(Outcome::Inserted(close_quiet_sessions(tx, before).await?))
        }
        Write::AppendLog {
            project_id,
            session_id,
            body,
        } => {
            upsert_session(
                tx,
                project_id,
                &SessionRecord {
                    id: session_id.clone(),
                    ..SessionRecord::default()
                },
            )
            .await?;
            tx.execute(
                "INSERT INTO logs (project_id, session_id, body, received_at)
                 VALUES ($1, $2, $3, $4)",
                &[project_id, session_id, body, &now()],
            )
            .await?;
            Ok(Outcome::Done)
        }
    }
}

/// Registers an agent in a session (the first registration of an id wins) and records it, id
/// and name, among the session's facets.
async fn insert_agent(
    tx: &Transaction<'_>,
    project_id: &str,
    session_id: &str,
    agent_id: &str,
    name: &str,
) -> Applied<()> {
    tx.execute(
        "INSERT INTO agents (project_id, id, session_id, name) VALUES ($1, $2, $3, $4)
         ON CONFLICT (project_id, id) DO NOTHING",
        &[&project_id, &agent_id, &session_id, &name],
    )
    .await?;
    // a v2 session is named after its first agent unless it has a better name
    if let Some(agent_name) = crate::mapping::names::clean(name) {
        let rank = i64::from(crate::mapping::names::AGENT);
        tx.execute(
            "UPDATE sessions SET name = $3, name_rank = $4
             WHERE project_id = $1 AND id = $2 AND (name IS NULL OR name_rank < $4)",
            &[&project_id, &session_id, &agent_name, &rank],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO session_facets (project_id, facet, value, session_id)
         VALUES ($1, $2, $3, $5), ($1, $4, $6, $5)
         ON CONFLICT DO NOTHING",
        &[
            &project_id,
            &FACET_AGENT,
            &agent_id,
            &FACET_AGENT_NAME,
            &session_id,
            &name,
        ],
    )
    .await?;
    Ok(())
}

/// OTLP spans: creates or merges their sessions, then stores the spans; how many were new.
/// Every session the spans belong to is locked first, each group in `(project_id, id)` order:
/// the listed ones by their upsert, then the others (a later piece of a large batch, whose
/// sessions went with the first) by `SELECT … FOR UPDATE`. (Two replicas locking the same
/// sessions in another order deadlock, and [`commit`] runs the loser again.)
async fn ingest_spans<'w>(
    tx: &Transaction<'_>,
    project_id: &'w str,
    sessions: &[SessionRecord],
    spans: &'w [EventRecord],
    hours: &mut HourlyTotals<'w>,
) -> Applied<Outcome> {
    let mut empty = upsert_sessions(tx, project_id, &sessions.iter().collect::<Vec<_>>()).await?;
    let mut unlisted: Vec<&str> = spans
        .iter()
        .map(|s| s.session_id.as_str())
        .filter(|id| !sessions.iter().any(|s| s.id == *id))
        .collect();
    unlisted.sort_unstable();
    unlisted.dedup();
    if !unlisted.is_empty() {
        let locked = tx
            .query(
                "SELECT id, event_count FROM sessions WHERE project_id = $1 AND id = ANY($2)
                 ORDER BY id FOR UPDATE",
                &[&project_id, &unlisted],
            )
            .await?;
        if locked.len() < unlisted.len() {
            // (the piece that brought their sessions failed: their spans would be orphans)
            return Err(Failure::Write(WriteError::NotFound(format!(
                "{} of the spans' sessions not found",
                unlisted.len() - locked.len()
            ))));
        }
        for row in &locked {
            if row.try_get::<_, i64>(1)? == 0 {
                empty.push(row.try_get(0)?);
            }
        }
    }
    let empty: Vec<&str> = empty.iter().map(String::as_str).collect();
    Ok(Outcome::Inserted(
        insert_events(tx, project_id, spans, &empty, hours).await?,
    ))
}

/// The sessions' upsert from arrays (`$1` project, `$2` now, `$3`… one array per column), its
/// merge rules in [`crate::store::session_merge`].
static UPSERT_SESSIONS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO sessions (id, project_id, name, start_time, end_time, end_state, end_state_reason, tags, host_env, video, created_at,
                               name_rank, root_end_time, root_failed, root_reason, last_event_end, last_span_at)
         SELECT u.id, $1, u.name, u.start_time, u.end_time, u.end_state, u.end_state_reason, u.tags,
                u.host_env, u.video, $2, u.name_rank, u.root_end_time, u.root_failed, u.root_reason,
                u.last_event_end, $2
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[],
                     $14::boolean[], $15::text[], $16::text[])
              AS u(id, name, start_time, end_time, end_state, end_state_reason, tags, host_env,
                   video, name_rank, root_end_time, root_failed, root_reason, last_event_end)
         ORDER BY u.id
         {}
         RETURNING id, event_count",
        crate::store::session_merge::on_conflict_update("LEAST", "GREATEST")
    )
});

/// Creates the project's session or merges the given fields into it (locking its row); see
/// [`upsert_sessions`].
pub(super) async fn upsert_session(
    tx: &Transaction<'_>,
    project_id: &str,
    s: &SessionRecord,
) -> Applied<()> {
    upsert_sessions(tx, project_id, &[s]).await.map(drop)
}

/// Creates the project's sessions or merges the given fields into them, one statement for
/// all (locking their rows in id order). A plain trace's root end and latest event end are
/// kept for [`close_quiet_sessions`]; a new root span reopens a session that the quiet window
/// ended (a conversation's next turn), a late child span does not. Records of one session
/// repeated in `sessions` merge in their order, one statement per repetition. Answers the
/// sessions that have no event stored (new ones, mostly): their events need not be looked for
/// before they are inserted.
pub(super) async fn upsert_sessions(
    tx: &Transaction<'_>,
    project_id: &str,
    sessions: &[&SessionRecord],
) -> Applied<Vec<String>> {
    let mut rounds: Vec<Vec<&SessionRecord>> = Vec::new();
    for s in sessions {
        match rounds
            .iter_mut()
            .find(|round| round.iter().all(|r| r.id != s.id))
        {
            Some(round) => round.push(s),
            None => rounds.push(vec![s]),
        }
    }
    let now = now();
    let mut empty = Vec::new();
    for round in rounds {
        let text = |f: &dyn Fn(&SessionRecord) -> Option<String>| -> Vec<Option<String>> {
            round.iter().map(|s| f(s)).collect()
        };
        let ids: Vec<&str> = round.iter().map(|s| s.id.as_str()).collect();
        let names = text(&|s| s.name.clone());
        let starts = text(&|s| s.start_time.clone());
        let ends = text(&|s| s.end_time.clone());
        let states = text(&|s| s.end_state.map(|e| EndState::as_str(e).to_owned()));
        let reasons = text(&|s| s.end_state_reason.clone());
        let tags = text(&|s| {
            s.tags
                .as_ref()
                .map(|t| serde_json::to_string(t).unwrap_or_default())
        });
        let hosts = text(&|s| json_text(&s.host_env));
        let videos = text(&|s| s.video.clone());
        let ranks: Vec<i64> = round.iter().map(|s| i64::from(s.name_rank)).collect();
        let root_ends = text(&|s| s.root_end.as_ref().map(|r| r.end_time.clone()));
        let root_failed: Vec<Option<bool>> = round
            .iter()
            .map(|s| s.root_end.as_ref().map(|r| r.failed))
            .collect();
        let root_reasons = text(&|s| s.root_end.as_ref().and_then(|r| r.reason.clone()));
        let last_ends = text(&|s| s.last_event_end.clone());
        let upserted = tx
            .query(
                UPSERT_SESSIONS.as_str(),
                &[
                    &project_id,
                    &now,
                    &ids,
                    &names,
                    &starts,
                    &ends,
                    &states,
                    &reasons,
                    &tags,
                    &hosts,
                    &videos,
                    &ranks,
                    &root_ends,
                    &root_failed,
                    &root_reasons,
                    &last_ends,
                ],
            )
            .await?;
        for row in &upserted {
            let id: String = row.try_get(0)?;
            if row.try_get::<_, i64>(1)? == 0 && !empty.contains(&id) {
                empty.push(id);
            }
        }
    }
    Ok(empty)
}

/// Ends the plain traces whose root span ended and whose last span arrived before `before`
/// (see [`Write::CloseQuietSessions`]): their end time is the latest end of their events. Their
/// rows are locked in `(project_id, id)` order first.
async fn close_quiet_sessions(tx: &Transaction<'_>, before: &str) -> Applied<usize> {
    let ended = tx
        .execute(
            "UPDATE sessions SET
                end_state = CASE WHEN root_failed THEN 'Fail' ELSE 'Success' END,
                end_state_reason = COALESCE(end_state_reason, CASE WHEN root_failed THEN root_reason END),
                end_time = GREATEST(root_end_time, COALESCE(last_event_end, '')),
                ended_by = 'quiet'
             WHERE (project_id, id) IN (
                 SELECT project_id, id FROM sessions
                 WHERE end_state IS NULL AND root_end_time IS NOT NULL AND last_span_at < $1
                 ORDER BY project_id, id FOR UPDATE)
               AND end_state IS NULL AND root_end_time IS NOT NULL AND last_span_at < $1",
            &[&before],
        )
        .await?;
    Ok(usize::try_from(ended).unwrap_or(usize::MAX))
}

/// Locks the project's session for the rest of the transaction; how many events it has
/// stored, `None` when it does not exist.
async fn lock_session(
    tx: &Transaction<'_>,
    project_id: &str,
    session_id: &str,
) -> Applied<Option<i64>> {
    let row = tx
        .query_opt(
            "SELECT event_count FROM sessions WHERE project_id = $1 AND id = $2 FOR UPDATE",
            &[&project_id, &session_id],
        )
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

/// Locks the project's session (see [`lock_session`]); how many events it has stored, or
/// [`WriteError::NotFound`] when it does not exist.
async fn check_exists(tx: &Transaction<'_>, project_id: &str, session_id: &str) -> Applied<i64> {
    lock_session(tx, project_id, session_id)
        .await?
        .ok_or_else(|| {
            Failure::Write(WriteError::NotFound(format!(
                "session {session_id} not found"
            )))
        })
}

/// A session's total cost.
async fn session_cost(tx: &Transaction<'_>, project_id: &str, session_id: &str) -> Applied<f64> {
    Ok(tx
        .query_one(
            "SELECT cost FROM sessions WHERE project_id = $1 AND id = $2",
            &[&project_id, &session_id],
        )
        .await?
        .try_get(0)?)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::test_support::{temp_store, TestDatabase};
    use super::super::{pg_error, PgStore};
    use crate::store::{
        AdminStore, EventRecord, LogRecord, MetricPoint, Outcome, RootEnd, SessionRecord, Write,
        WriteError, WriteStore,
    };
    use std::time::Duration;

    /// The one number `sql` answers (cast to bigint).
    pub(in crate::store::postgres) fn number(store: &PgStore, sql: &str) -> i64 {
        store
            .with_client(async |c| {
                let row = c.query_one(sql, &[]).await.map_err(pg_error)?;
                Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
            })
            .unwrap()
    }

    /// The text `sql` answers.
    pub(in crate::store::postgres) fn text_of(store: &PgStore, sql: &str) -> Option<String> {
        store
            .with_client(async |c| {
                let row = c.query_one(sql, &[]).await.map_err(pg_error)?;
                Ok(row.get::<_, Option<String>>(0))
            })
            .unwrap()
    }

    fn session(id: &str) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            start_time: Some("2026-01-01T00:00:00.000000+00:00".into()),
            ..SessionRecord::default()
        }
    }

    fn event(id: &str, session: &str, start: &str) -> EventRecord {
        EventRecord {
            id: id.into(),
            session_id: session.into(),
            kind: "llms".into(),
            name: Some("call".into()),
            model: Some("gpt-4o".into()),
            agent_id: Some("a1".into()),
            start_time: start.into(),
            input_tokens: Some(10),
            output_tokens: Some(2),
            cost: Some(0.25),
            prompt: Some(serde_json::json!("hello")),
            attributes: serde_json::json!({"k": 1}),
            ..EventRecord::default()
        }
    }

    /// Each session's totals are its events', and the hourly totals are the events' too.
    pub(in crate::store::postgres) fn assert_totals_match_events(store: &PgStore) {
        let sessions = number(
            store,
            "SELECT COUNT(*) FROM sessions s, LATERAL (
                 SELECT COUNT(*) AS events, COALESCE(SUM(input_tokens), 0) AS input_tokens,
                        COALESCE(SUM(output_tokens), 0) AS output_tokens,
                        round(COALESCE(SUM(cost), 0)::numeric, 9) AS cost,
                        COUNT(*) FILTER (WHERE status = 'error' OR kind = 'errors') AS errors
                 FROM events e WHERE e.project_id = s.project_id AND e.session_id = s.id) e
             WHERE (s.event_count, s.input_tokens, s.output_tokens, round(s.cost::numeric, 9),
                    s.error_count)
                   IS DISTINCT FROM (e.events, e.input_tokens, e.output_tokens, e.cost, e.errors)",
        );
        assert_eq!(sessions, 0, "sessions whose totals are not their events'");
        let hours = number(
            store,
            "SELECT COUNT(*) FROM (
                 SELECT project_id, left(start_time, 13) AS hour, COALESCE(model, '') AS model,
                        COUNT(*) AS events, COUNT(*) FILTER (WHERE status = 'error' OR kind = 'errors') AS errors,
                        COALESCE(SUM(input_tokens), 0) AS input_tokens,
                        COALESCE(SUM(output_tokens), 0) AS output_tokens,
                        round(COALESCE(SUM(cost), 0)::numeric, 9) AS cost
                 FROM events GROUP BY 1, 2, 3) e
             FULL JOIN (SELECT project_id, hour, model, events, error_events AS errors, input_tokens,
                               output_tokens, round(cost::numeric, 9) AS cost FROM hourly_totals) d
                 USING (project_id, hour, model)
             WHERE (e.events, e.errors, e.input_tokens, e.output_tokens, e.cost)
                   IS DISTINCT FROM (d.events, d.errors, d.input_tokens, d.output_tokens, d.cost)",
        );
        assert_eq!(hours, 0, "hourly totals that are not their events'");
    }

    #[test]
    fn each_write_commits_or_is_refused_alone_and_retries_store_nothing_twice() {
        let (store, _db) = temp_store();
        let p = store.create_project("p").unwrap();
        let at = |s: u32| format!("2026-01-01T00:00:{s:02}.000000+00:00");
        let record = |body: &str| LogRecord {
            session_id: "s1".into(),
            time: at(9),
            body: serde_json::json!(body),
            attributes: serde_json::json!({}),
            ..LogRecord::default()
        };
        let point = |value: f64| MetricPoint {
            name: "tokens".into(),
            kind: "sum".into(),
            monotonic: Some(true),
            attributes: serde_json::json!({}),
            time: at(3),
            value: Some(value),
            count: Some(u64::MAX),
            ..MetricPoint::default()
        };
        let mut failed = event("e3", "s1", &at(3));
        failed.status = Some("error".into());
        failed.model = None;
        let writes = vec![
            Write::CreateSession {
                project_id: p.clone(),
                session: session("s1"),
            },
            Write::CreateEvents {
                project_id: p.clone(),
                session_id: "s1".into(),
                // a write repeating an event stores it once
                events: vec![event("e1", "s1", &at(1)), event("e1", "s1", &at(1)), failed],
            },
            Write::CreateEvents {
                project_id: p.clone(),
                session_id: "nope".into(),
                events: vec![event("x", "nope", &at(1))],
            },
            Write::CreateEvents {
                project_id: p.clone(),
                session_id: "s1".into(),
                events: vec![event("x", "other", &at(1))],
            },
            // PostgreSQL refuses a NUL in text: this write alone is rolled back
            Write::CreateEvents {
                project_id: p.clone(),
                session_id: "s1".into(),
                events: vec![event("bad\0id", "s1", &at(1))],
            },
            Write::CreateAgent {
                project_id: p.clone(),
                session_id: "s1".into(),
                agent_id: "a2".into(),
                name: "planner".into(),
            },
            Write::AppendLog {
                project_id: p.clone(),
                session_id: "s1".into(),
                body: "uploaded".into(),
            },
            Write::IngestLogs {
                project_id: p.clone(),
                records: vec![record("one"), record("one"), record("two")],
            },
            Write::IngestMetrics {
                project_id: p.clone(),
                points: vec![point(1.0), point(1.0), point(2.0)],
            },
            Write::UpdateSession {
                project_id: p.clone(),
                session: SessionRecord {
                    id: "s1".into(),
                    tags: Some(vec!["t".into()]),
                    ..SessionRecord::default()
                },
            },
        ];
        let results = store.commit(&writes).unwrap();
        assert!(results[0].is_ok());
        assert_eq!(results[1].as_ref().unwrap(), &Outcome::Inserted(2));
        assert!(
            matches!(results[2], Err(WriteError::NotFound(_))),
            "{results:?}"
        );
        assert!(
            matches!(results[3], Err(WriteError::Invalid(_))),
            "{results:?}"
        );
        assert!(
            matches!(&results[4], Err(WriteError::Invalid(m)) if m.contains("cannot store")),
            "{results:?}"
        );
        assert_eq!(results[5].as_ref().unwrap(), &Outcome::Done);
        assert_eq!(results[6].as_ref().unwrap(), &Outcome::Done);
        assert_eq!(results[7].as_ref().unwrap(), &Outcome::Inserted(2));
        assert_eq!(results[8].as_ref().unwrap(), &Outcome::Inserted(2));
        assert_eq!(results[9].as_ref().unwrap(), &Outcome::SessionCost(0.5));

        let check = |store: &PgStore| {
            assert_eq!(number(store, "SELECT COUNT(*) FROM events"), 2);
            assert_eq!(
                number(
                    store,
                    "SELECT event_count * 1000 + error_count * 100 + input_tokens FROM sessions"
                ),
                2 * 1000 + 100 + 20
            );
            assert_eq!(
                text_of(store, "SELECT tags FROM sessions").as_deref(),
                Some(r#"["t"]"#)
            );
            // named after its agent
            assert_eq!(
                text_of(store, "SELECT name FROM sessions").as_deref(),
                Some("planner")
            );
            let facets = text_of(
                store,
                "SELECT string_agg(facet || '=' || value, ',' ORDER BY facet, value) FROM session_facets",
            );
            assert_eq!(
                facets.as_deref(),
                Some("agent=a1,agent=a2,agent_name=planner,model=gpt-4o,name=call")
            );
            assert_eq!(number(store, "SELECT COUNT(*) FROM logs"), 1);
            assert_eq!(number(store, "SELECT COUNT(*) FROM otel_logs"), 2);
            assert_eq!(number(store, "SELECT COUNT(*) FROM metric_points"), 2);
            assert_eq!(
                number(store, "SELECT MAX(count) FROM metric_points"),
                i64::MAX
            );
            assert_eq!(number(store, "SELECT COUNT(*) FROM hourly_totals"), 2);
            assert_totals_match_events(store);
        };
        check(&store);
        // payloads are packed, their text columns left empty, as on SQLite
        assert_eq!(
            number(
                &store,
                "SELECT COUNT(*) FROM events WHERE packed IS NOT NULL AND prompt IS NULL
                 AND attributes = ''"
            ),
            2
        );
        // the event went to its month's partition
        assert_eq!(number(&store, "SELECT COUNT(*) FROM events_2026_01"), 2);

        // everything again: nothing new
        let again = store.commit(&writes[..2]).unwrap();
        assert_eq!(again[1].as_ref().unwrap(), &Outcome::Inserted(0));
        let again = store.commit(&writes[5..9]).unwrap();
        assert_eq!(again[2].as_ref().unwrap(), &Outcome::Inserted(0));
        assert_eq!(again[3].as_ref().unwrap(), &Outcome::Inserted(0));
        // (a second uploaded log is a new one)
        assert_eq!(number(&store, "SELECT COUNT(*) FROM logs"), 2);
        store
            .with_client(async |c| {
                c.execute("DELETE FROM logs WHERE seq > 1", &[])
                    .await
                    .map_err(pg_error)
            })
            .unwrap();
        check(&store);
    }

    #[test]
    fn spans_merge_their_sessions_and_quiet_traces_end_and_reopen() {
        let (store, _db) = temp_store();
        let p = store.create_project("p").unwrap();
        let t = |m: u32| format!("2026-02-01T10:{m:02}:00.000000+00:00");
        let spans = |ids: &[(&str, &str)], m: u32| -> Vec<EventRecord> {
            ids.iter()
                .map(|(id, s)| EventRecord {
                    end_time: Some(t(m + 1)),
                    ..event(id, s, &t(m))
                })
                .collect()
        };
        let root = |m: u32, failed: bool| RootEnd {
            end_time: t(m),
            failed,
            reason: failed.then(|| "boom".into()),
        };
        let ingest = |sessions: Vec<SessionRecord>, spans: Vec<EventRecord>| {
            let r = store
                .commit(&[Write::IngestSpans {
                    project_id: p.clone(),
                    sessions,
                    spans,
                }])
                .unwrap();
            r.into_iter().next().unwrap().unwrap()
        };
        // sessions in any order; a span of a session not listed (a later piece) goes in too
        let r = ingest(
            vec![
                SessionRecord {
                    id: "b".into(),
                    start_time: Some(t(5)),
                    name: Some("first".into()),
                    name_rank: 1,
                    root_end: Some(root(6, true)),
                    last_event_end: Some(t(6)),
                    ..SessionRecord::default()
                },
                SessionRecord {
                    id: "a".into(),
                    start_time: Some(t(1)),
                    ..SessionRecord::default()
                },
            ],
            spans(&[("s1", "a"), ("s2", "b"), ("s3", "b")], 5),
        );
        assert_eq!(r, Outcome::Inserted(3));
        let r = ingest(
            vec![SessionRecord {
                id: "b".into(),
                start_time: Some(t(2)),
                name: Some("second".into()),
                name_rank: 1,
                ..SessionRecord::default()
            }],
            spans(&[("s4", "a"), ("s5", "b")], 2),
        );
        assert_eq!(r, Outcome::Inserted(2));
        let b = |column: &str| {
            text_of(
                &store,
                &format!("SELECT {column}::text FROM sessions WHERE id = 'b'"),
            )
        };
        // the earliest start wins; a name of the same low rank does not replace the first
        assert_eq!(b("start_time"), Some(t(2)));
        assert_eq!(b("name").as_deref(), Some("first"));
        assert_eq!(b("event_count").as_deref(), Some("3"));
        assert_eq!(b("root_failed").as_deref(), Some("true"));
        assert_totals_match_events(&store);

        // quiet: b's root ended and its last span arrived before the cutoff
        let close = Write::CloseQuietSessions {
            before: "9999-01-01T00:00:00.000000+00:00".into(),
        };
        let r = store.commit(std::slice::from_ref(&close)).unwrap();
        assert_eq!(r[0].as_ref().unwrap(), &Outcome::Inserted(1));
        assert_eq!(b("end_state").as_deref(), Some("Fail"));
        assert_eq!(b("end_state_reason").as_deref(), Some("boom"));
        assert_eq!(b("end_time"), Some(t(6)));
        assert_eq!(b("ended_by").as_deref(), Some("quiet"));
        // a later root span reopens it (the next turn)
        ingest(
            vec![SessionRecord {
                id: "b".into(),
                root_end: Some(root(30, false)),
                ..SessionRecord::default()
            }],
            Vec::new(),
        );
        assert_eq!(b("end_state"), None);
        assert_eq!(b("end_time"), None);
        let r = store.commit(&[close]).unwrap();
        assert_eq!(r[0].as_ref().unwrap(), &Outcome::Inserted(1));
        assert_eq!(b("end_state").as_deref(), Some("Success"));
        assert_eq!(b("end_time"), Some(t(30)));
    }

    /// Writes creating the sessions `ids` of `project`.
    fn create_sessions(project: &str, ids: &[&str]) -> Vec<Write> {
        ids.iter()
            .map(|id| Write::CreateSession {
                project_id: project.into(),
                session: session(id),
            })
            .collect()
    }

    #[test]
    fn a_transaction_that_loses_a_deadlock_runs_again() {
        let (store, db) = temp_store();
        let p = store.create_project("p").unwrap();
        assert!(store
            .commit(&create_sessions(&p, &["s1", "s2"]))
            .unwrap()
            .iter()
            .all(Result::is_ok));
        // Another connection holds s2 and, once the commit holds s1 and waits for s2, asks for
        // s1: a deadlock, which the commit (detecting it first) loses.
        let (runtime, other) = other_connection(&db);
        runtime
            .block_on(other.batch_execute(&format!(
                "SET deadlock_timeout = '20s'; BEGIN;
                 SELECT 1 FROM sessions WHERE project_id = '{p}' AND id = 's2' FOR UPDATE"
            )))
            .unwrap();
        let writes = vec![
            Write::CreateEvents {
                project_id: p.clone(),
                session_id: "s1".into(),
                events: vec![event("e1", "s1", "2026-01-01T00:00:01.000000+00:00")],
            },
            Write::CreateEvents {
                project_id: p.clone(),
                session_id: "s2".into(),
                events: vec![event("e2", "s2", "2026-01-01T00:00:01.000000+00:00")],
            },
        ];
        let committing = std::thread::scope(|scope| {
            let commit = scope.spawn(|| store.commit(&writes));
            std::thread::sleep(std::time::Duration::from_millis(300));
            runtime
                .block_on(other.batch_execute(&format!(
                    "SELECT 1 FROM sessions WHERE project_id = '{p}' AND id = 's1' FOR UPDATE;
                     COMMIT"
                )))
                .unwrap();
            commit.join().unwrap()
        });
        let results = committing.unwrap();
        assert_eq!(results[0].as_ref().unwrap(), &Outcome::Inserted(1));
        assert_eq!(results[1].as_ref().unwrap(), &Outcome::Inserted(1));
        assert_eq!(number(&store, "SELECT COUNT(*) FROM events"), 2);
        assert_totals_match_events(&store);
    }

    /// Another connection on `db`, driven by its own runtime.
    fn other_connection(db: &TestDatabase) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (other, connection) = runtime
            .block_on(tokio_postgres::connect(&db.url(), tokio_postgres::NoTls))
            .unwrap();
        runtime.spawn(connection);
        (runtime, other)
    }

    /// Commits `writes` while another connection's transaction holds what `hold` (SQL) takes,
    /// and runs `meanwhile` on that connection once the commit waits for it; then lets the
    /// commit go on. The commit's results.
    fn commit_while_held(
        store: &PgStore,
        db: &TestDatabase,
        hold: &str,
        writes: &[Write],
        meanwhile: impl FnOnce(&tokio::runtime::Runtime, &tokio_postgres::Client),
    ) -> Vec<Result<Outcome, WriteError>> {
        let (runtime, other) = other_connection(db);
        runtime
            .block_on(other.batch_execute(&format!("SET deadlock_timeout = '20s'; BEGIN; {hold}")))
            .unwrap();
        std::thread::scope(|scope| {
            let commit = scope.spawn(|| store.commit(writes));
            let waiting = "SELECT COUNT(*) FROM pg_stat_activity
                           WHERE datname = current_database() AND wait_event_type = 'Lock'";
            let started = std::time::Instant::now();
            while number(store, waiting) == 0 {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the commit never waited"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            meanwhile(&runtime, &other);
            runtime.block_on(other.batch_execute("COMMIT")).unwrap();
            commit.join().unwrap().unwrap()
        })
    }

    #[test]
    fn a_transaction_locks_its_sessions_in_key_order_and_the_hourly_totals_last() {
        let (store, db) = temp_store();
        let p = store.create_project("p").unwrap();
        let day = "2026-01-01T00:00:01.000000+00:00";
        let events = |session: &str, id: &str| Write::CreateEvents {
            project_id: p.clone(),
            session_id: session.into(),
            events: vec![event(id, session, day)],
        };
        let mut first = create_sessions(&p, &["s1", "s2"]);
        // (the hour's row of the hourly totals exists from here on)
        first.push(events("s1", "e0"));
        assert!(store.commit(&first).unwrap().iter().all(Result::is_ok));
        let nowait =
            |runtime: &tokio::runtime::Runtime, other: &tokio_postgres::Client, sql: String| {
                runtime.block_on(other.batch_execute(&format!(
                    "SAVEPOINT probe; {sql} FOR UPDATE NOWAIT; RELEASE probe"
                )))
            };
        let rollback = |runtime: &tokio::runtime::Runtime, other: &tokio_postgres::Client| {
            runtime
                .block_on(other.batch_execute("ROLLBACK TO probe"))
                .unwrap();
        };

        // Writes naming s2 before s1: s1 is locked first all the same, so a transaction
        // naming them the other way round waits instead of deadlocking.
        let results = commit_while_held(
            &store,
            &db,
            &format!("SELECT 1 FROM sessions WHERE project_id = '{p}' AND id = 's2' FOR UPDATE"),
            &[events("s2", "e1"), events("s1", "e2")],
            |runtime, other| {
                let s1 = format!("SELECT 1 FROM sessions WHERE project_id = '{p}' AND id = 's1'");
                assert!(nowait(runtime, other, s1).is_err(), "s1 is not locked yet");
                rollback(runtime, other);
            },
        );
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        // Events of s1, then a new session s3 that another transaction is creating too:
        // while the commit waits for that one, it holds no lock of the hour's totals (which
        // every write of the project in that hour takes).
        let results = commit_while_held(
            &store,
            &db,
            &format!(
                "INSERT INTO sessions (project_id, id, created_at, last_span_at)
                 VALUES ('{p}', 's3', '2026-01-01', '2026-01-01')"
            ),
            &[
                events("s1", "e3"),
                Write::CreateSession {
                    project_id: p.clone(),
                    session: session("s3"),
                },
            ],
            |runtime, other| {
                let hour = format!("SELECT 1 FROM hourly_totals WHERE project_id = '{p}'");
                if let Err(e) = nowait(runtime, other, hour) {
                    panic!("the hourly totals are locked already: {e}");
                }
            },
        );
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(number(&store, "SELECT COUNT(*) FROM events"), 4);
        assert_eq!(
            number(
                &store,
                "SELECT events FROM hourly_totals WHERE model = 'gpt-4o'"
            ),
            4
        );
        assert_totals_match_events(&store);
    }
}
