//! The write path: the group commit (one transaction, a savepoint per write), each kind of
//! [`Write`], the session checks, and the events' inserts with the aggregates kept beside
//! them (see [`crate::store::rollup`]).

use std::sync::LazyLock;

use agentops_core::timestamp::now;
use agentops_core::EndState;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::columns::{event_insert_list, event_insert_placeholders};
use crate::store::json::json_text;
use crate::store::payload::PackedPayloads;
use crate::store::rollup::{Rollup, FACET_AGENT, FACET_AGENT_NAME};
use crate::store::session_merge;
use crate::store::{EventRecord, Outcome, SessionRecord, StoreError, Write, WriteError};

/// Applies `writes` in one transaction of `conn`, each in its own savepoint: a refused write is
/// rolled back alone and answered with its error; a fatal error (see [`is_fatal`]) abandons the
/// whole transaction. When the database cannot be written (disk full, I/O error; see
/// [`is_unwritable`]) nothing is committed and every write is answered
/// [`StoreError::Unwritable`]: the connection stays usable, and the same writes succeed once
/// space is back.
pub(super) fn commit(
    conn: &mut Connection,
    writes: &[Write],
) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
    match commit_all(conn, writes) {
        Err(StoreError::Database(e)) if is_unwritable(&e) => {
            tracing::warn!(error = %e, writes = writes.len(), "cannot write to the database (disk full or failing): nothing committed");
            let reason = e.to_string();
            Ok(writes
                .iter()
                .map(|_| Err(StoreError::Unwritable(reason.clone()).into()))
                .collect())
        }
        other => other,
    }
}

/// [`commit`], with a failure to write the database as the outer error.
fn commit_all(
    conn: &mut Connection,
    writes: &[Write],
) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
    let mut tx = conn.transaction()?;
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        let mut sp = tx.savepoint()?;
        match apply(&sp, write) {
            Ok(outcome) => {
                sp.commit()?;
                results.push(Ok(outcome));
            }
            Err(WriteError::Store(StoreError::Database(e))) if is_fatal(&e) => {
                return Err(StoreError::Database(e))
            }
            Err(refusal) => {
                // Dropping the savepoint rolls it back; say so explicitly.
                sp.rollback()?;
                drop(sp);
                results.push(Err(refusal));
            }
        }
    }
    tx.commit()?;
    Ok(results)
}

/// Applies one write (within its savepoint).
fn apply(tx: &Connection, write: &Write) -> Result<Outcome, WriteError> {
    match write {
        Write::CreateSession {
            project_id,
            session,
        } => {
            upsert_session(tx, project_id, session)?;
            Ok(Outcome::Done)
        }
        Write::UpdateSession {
            project_id,
            session,
        } => {
            check_exists(tx, project_id, &session.id)?;
            upsert_session(tx, project_id, session)?;
            Ok(Outcome::SessionCost(session_cost(
                tx,
                project_id,
                &session.id,
            )?))
        }
        Write::CreateEvents {
            project_id,
            session_id,
            events,
        } => {
            check_exists(tx, project_id, session_id)?;
            if let Some(e) = events.iter().find(|e| &e.session_id != session_id) {
                return Err(WriteError::Invalid(format!(
                    "event {} belongs to session {}, not {session_id}",
                    e.id, e.session_id
                )));
            }
            Ok(Outcome::Inserted(insert_events(
                tx,
                project_id,
                events.iter(),
            )?))
        }
        Write::CreateAgent {
            project_id,
            session_id,
            agent_id,
            name,
        } => {
            check_exists(tx, project_id, session_id)?;
            insert_agent(tx, project_id, session_id, agent_id, name)?;
            Ok(Outcome::Done)
        }
        Write::IngestSpans {
            project_id,
            sessions,
            spans,
        } => Ok(ingest_spans(tx, project_id, sessions, spans)?),
        Write::ExpireSessions {
            project_id,
            before,
            max_rows,
            ..
        } => Ok(super::expire::expire_sessions(
            tx, project_id, before, *max_rows,
        )?),
        Write::IngestLogs {
            project_id,
            records,
        } => Ok(super::logs::insert_logs(tx, project_id, records)?),
        Write::IngestMetrics { project_id, points } => {
            Ok(super::metrics::insert_points(tx, project_id, points)?)
        }
        Write::CloseQuietSessions { before } => {
            Ok(Outcome::Inserted(close_quiet_sessions(tx, before)?))
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
            )?;
            tx.prepare_cached(
                "INSERT INTO logs (project_id, session_id, body, received_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![project_id, session_id, body, now()])?;
            Ok(Outcome::Done)
        }
    }
}

/// Registers an agent in a session (the first registration of an id wins) and records it, id
/// and name, among the session's facets.
fn insert_agent(
    tx: &Connection,
    project_id: &str,
    session_id: &str,
    agent_id: &str,
    name: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO agents (project_id, id, session_id, name) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, id) DO NOTHING",
    )?
    .execute(params![project_id, agent_id, session_id, name])?;
    // a v2 session is named after its first agent unless it has a better name
    if let Some(agent_name) = crate::mapping::names::clean(name) {
        tx.prepare_cached(
            "UPDATE sessions SET name = ?3, name_rank = ?4
             WHERE project_id = ?1 AND id = ?2 AND (name IS NULL OR name_rank < ?4)",
        )?
        .execute(params![
            project_id,
            session_id,
            agent_name,
            crate::mapping::names::AGENT
        ])?;
    }
    let mut facet = tx.prepare_cached(INSERT_FACET)?;
    facet.execute(params![project_id, FACET_AGENT, agent_id, session_id])?;
    facet.execute(params![project_id, FACET_AGENT_NAME, name, session_id])?;
    Ok(())
}

/// OTLP spans: creates or merges their sessions, then stores the spans; how many were new.
fn ingest_spans(
    tx: &Connection,
    project_id: &str,
    sessions: &[SessionRecord],
    spans: &[EventRecord],
) -> Result<Outcome, StoreError> {
    for s in sessions {
        upsert_session(tx, project_id, s)?;
    }
    Ok(Outcome::Inserted(insert_events(tx, project_id, spans)?))
}

/// The session upsert, its merge rules in [`crate::store::session_merge`].
static UPSERT_SESSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO sessions (id, project_id, name, start_time, end_time, end_state, end_state_reason, tags, host_env, video, created_at,
                               name_rank, root_end_time, root_failed, root_reason, last_event_end, last_span_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?11)
         {}",
        session_merge::on_conflict_update("min", "max")
    )
});

/// Creates the project's session or merges the given fields into it. A plain trace's root end
/// and latest event end are kept for [`close_quiet_sessions`]; a new root span reopens a session
/// that the quiet window ended (a conversation's next turn), a late child span does not.
pub(super) fn upsert_session(
    tx: &Connection,
    project_id: &str,
    s: &SessionRecord,
) -> Result<(), StoreError> {
    let tags = s
        .tags
        .as_ref()
        .map(|t| serde_json::to_string(t).unwrap_or_default());
    let root = s.root_end.as_ref();
    tx.prepare_cached(&UPSERT_SESSION)?.execute(params![
        s.id,
        project_id,
        s.name,
        s.start_time,
        s.end_time,
        s.end_state.map(EndState::as_str),
        s.end_state_reason,
        tags,
        json_text(&s.host_env),
        s.video,
        now(),
        s.name_rank,
        root.map(|r| &r.end_time),
        root.map(|r| r.failed),
        root.and_then(|r| r.reason.as_ref()),
        s.last_event_end,
    ])?;
    Ok(())
}

/// Ends the plain traces whose root span ended and whose last span arrived before `before`
/// (see [`Write::CloseQuietSessions`]): their end time is the latest end of their events.
pub(super) fn close_quiet_sessions(tx: &Connection, before: &str) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE sessions SET
                end_state = CASE WHEN root_failed THEN 'Fail' ELSE 'Success' END,
                end_state_reason = COALESCE(end_state_reason, CASE WHEN root_failed THEN root_reason END),
                end_time = max(root_end_time, COALESCE(last_event_end, '')),
                ended_by = 'quiet'
             WHERE end_state IS NULL AND root_end_time IS NOT NULL AND last_span_at < ?1",
        )?
        .execute([before])?)
}

/// Whether the project has a session with this id.
pub(super) fn session_exists(
    conn: &Connection,
    project_id: &str,
    session_id: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sessions WHERE project_id = ?1 AND id = ?2")?
        .query_row([project_id, session_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Succeeds when the project has the session, else [`WriteError::NotFound`].
fn check_exists(conn: &Connection, project_id: &str, session_id: &str) -> Result<(), WriteError> {
    if session_exists(conn, project_id, session_id)? {
        Ok(())
    } else {
        Err(WriteError::NotFound(format!(
            "session {session_id} not found"
        )))
    }
}

/// A session's total cost.
fn session_cost(conn: &Connection, project_id: &str, session_id: &str) -> Result<f64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT cost FROM sessions WHERE project_id = ?1 AND id = ?2")?
        .query_row([project_id, session_id], |r| r.get(0))?)
}

/// Inserts an event (`?1` project, then the event's columns); one already stored is left as is.
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events ({})
         VALUES ({})
         ON CONFLICT (project_id, session_id, id) DO NOTHING",
        event_insert_list(),
        event_insert_placeholders('?'),
    )
});

/// Adds a session's new events to its totals (`?1` project, `?2` session, `?3` events, `?4`
/// input tokens, `?5` output tokens, `?6` cost, `?7` errors).
static UPDATE_SESSION_TOTALS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE sessions SET event_count = event_count + ?3, input_tokens = {},
            output_tokens = {}, cost = cost + ?6, error_count = error_count + ?7
         WHERE project_id = ?1 AND id = ?2",
        saturating_add_sql("input_tokens", "?4"),
        saturating_add_sql("output_tokens", "?5"),
    )
});

/// Records a session facet (`?1` project, `?2` facet, `?3` value, `?4` session), once.
const INSERT_FACET: &str =
    "INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
         VALUES (?1, ?2, ?3, ?4)";

/// Adds events to the totals of an hour and model (`?1` project, `?2` hour, `?3` model, `?4`
/// events, `?5` errors, `?6` input tokens, `?7` output tokens, `?8` cost).
static ADD_HOURLY_TOTALS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO hourly_totals (project_id, hour, model, events, error_events, input_tokens, output_tokens, cost)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (project_id, hour, model) DO UPDATE SET
            events = events + excluded.events, error_events = error_events + excluded.error_events,
            input_tokens = {}, output_tokens = {}, cost = cost + excluded.cost",
        saturating_add_sql("input_tokens", "excluded.input_tokens"),
        saturating_add_sql("output_tokens", "excluded.output_tokens"),
    )
});

/// Inserts the events not stored yet, and adds those to their sessions' totals, the session
/// facets and the hourly totals; how many were new.
fn insert_events<'a>(
    tx: &Connection,
    project_id: &str,
    events: impl IntoIterator<Item = &'a EventRecord>,
) -> Result<usize, StoreError> {
    let mut stmt = tx.prepare_cached(&INSERT_EVENT)?;
    let mut inserted = 0;
    let mut rollup = Rollup::default();
    for e in events {
        // Writes that did not come through the writer's queue (tests, tools) are packed here.
        let packed_here;
        let packed = match &e.packed {
            Some(packed) => packed,
            None => {
                packed_here = PackedPayloads::pack(
                    e.prompt.as_ref(),
                    e.completion.as_ref(),
                    e.params.as_ref(),
                    e.returns.as_ref(),
                    &e.attributes,
                    None,
                );
                &packed_here
            }
        };
        let added = stmt.execute(params![
            project_id,
            e.id,
            e.session_id,
            e.kind,
            e.name,
            e.parent_id,
            e.trace_id,
            e.span_id,
            e.start_time,
            e.end_time,
            e.status,
            e.status_message,
            e.agent_id,
            e.model,
            e.provider,
            None::<&str>,
            None::<&str>,
            None::<&str>,
            None::<&str>,
            e.input_tokens,
            e.output_tokens,
            e.cached_tokens,
            e.reasoning_tokens,
            e.cost,
            "",
            packed.as_bytes(),
            e.call_ids,
        ])?;
        if added == 0 {
            continue;
        }
        inserted += added;
        rollup.add(e);
    }
    let mut update = tx.prepare_cached(&UPDATE_SESSION_TOTALS)?;
    for t in rollup.sessions() {
        update.execute(params![
            project_id,
            t.session_id,
            t.events,
            t.input_tokens,
            t.output_tokens,
            t.cost,
            t.errors
        ])?;
    }
    let mut facet = tx.prepare_cached(INSERT_FACET)?;
    for f in rollup.facets() {
        facet.execute(params![project_id, f.facet, f.value, f.session_id])?;
    }
    let mut hour_totals = tx.prepare_cached(&ADD_HOURLY_TOTALS)?;
    for (key, t) in rollup.hours() {
        hour_totals.execute(params![
            project_id,
            key.hour,
            key.model,
            t.events,
            t.errors,
            t.input_tokens,
            t.output_tokens,
            t.cost
        ])?;
    }
    Ok(inserted)
}

/// `column + ?n`, saturating at the largest 64-bit integer instead of turning into a float.
fn saturating_add_sql(column: &str, parameter: &str) -> String {
    format!(
        "CASE WHEN {column} > 9223372036854775807 - {parameter} THEN 9223372036854775807 \
         ELSE {column} + {parameter} END"
    )
}

/// Errors that say the database cannot be written now, but may be later: the disk is full, or
/// writing (or growing the shared-memory index) failed.
fn is_unwritable(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::ErrorCode;
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DiskFull) | Some(ErrorCode::SystemIoFailure)
    )
}

/// Errors after which the transaction cannot go on (disk full, I/O, corruption).
fn is_fatal(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation)
        | Some(ErrorCode::TooBig)
        | Some(ErrorCode::TypeMismatch) => false,
        Some(_) => true,
        None => false,
    }
}
