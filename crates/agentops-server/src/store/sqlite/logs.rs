//! OTLP log records: stored once each (by fingerprint), read back by session or by span.

use rusqlite::{params, Connection};

use crate::store::decode::{log_record_from, LOG_RECORD_COLUMNS};
use crate::store::{LogRecord, Outcome, SessionRecord, StoreError, MAX_SESSION_LOG_RECORDS};

/// Stores the records not stored yet, creating their sessions on first sight (a record may
/// arrive before its trace's spans); how many were new.
pub(super) fn insert_logs(
    tx: &Connection,
    project_id: &str,
    records: &[LogRecord],
) -> Result<Outcome, StoreError> {
    let mut sessions: Vec<SessionRecord> = Vec::new();
    for record in records {
        match sessions.iter_mut().find(|s| s.id == record.session_id) {
            Some(session) => {
                if session.start_time.as_deref() > Some(record.time.as_str()) {
                    session.start_time = Some(record.time.clone());
                }
            }
            None => sessions.push(SessionRecord {
                id: record.session_id.clone(),
                start_time: Some(record.time.clone()),
                ..SessionRecord::default()
            }),
        }
    }
    for session in &sessions {
        super::write::upsert_session(tx, project_id, session)?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO otel_logs (project_id, session_id, trace_id, span_id, time,
             severity, event_name, body, attributes, call_ids, fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut inserted = 0;
    for r in records {
        inserted += insert.execute(params![
            project_id,
            r.session_id,
            r.trace_id,
            r.span_id,
            r.time,
            r.severity,
            r.event_name,
            r.body.to_string(),
            r.attributes.to_string(),
            r.call_ids,
            crate::store::fingerprint::log_record(r),
        ])?;
    }
    Ok(Outcome::Inserted(inserted))
}

/// A session's log records by time (at most [`MAX_SESSION_LOG_RECORDS`]), or only those of one
/// span; `event_id` is left for the caller, who knows the session's events.
pub(super) fn log_records(
    conn: &Connection,
    project_id: &str,
    session_id: &str,
    span_id: Option<&str>,
) -> Result<Vec<LogRecord>, StoreError> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {LOG_RECORD_COLUMNS}
         FROM otel_logs WHERE project_id = ?1 AND session_id = ?2 AND (?3 IS NULL OR span_id = ?3)
         ORDER BY time, seq LIMIT ?4"
    ))?;
    let rows = select.query_map(
        params![
            project_id,
            session_id,
            span_id,
            MAX_SESSION_LOG_RECORDS as i64
        ],
        |r| log_record_from(r),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
