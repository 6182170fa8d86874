//! The embedded SQLite store (bundled SQLite, WAL mode): the zero-setup default.
//!
//! One connection writes (used by the writer thread, see [`crate::writer`]); a few others read
//! concurrently, which WAL allows.

use std::path::Path;
use std::sync::Mutex;

use agentops_core::EndState;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use serde_json::Value;

use super::{
    AgentRecord, EventRecord, Outcome, SessionDetail, SessionRecord, SessionSummary, Store,
    StoreError, Write,
};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash    TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    name             TEXT,
    start_time       TEXT,
    end_time         TEXT,
    end_state        TEXT,
    end_state_reason TEXT,
    tags             TEXT,
    host_env         TEXT,
    video            TEXT,
    created_at       TEXT NOT NULL,
    -- totals over the session's events, kept by the writer so that listing is cheap
    event_count      INTEGER NOT NULL DEFAULT 0,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cost             REAL NOT NULL DEFAULT 0.0
);
CREATE INDEX IF NOT EXISTS sessions_by_project_start ON sessions (project_id, start_time DESC);
CREATE TABLE IF NOT EXISTS agents (
    project_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE TABLE IF NOT EXISTS events (
    project_id        TEXT NOT NULL,
    id                TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    name              TEXT,
    parent_id         TEXT,
    trace_id          TEXT,
    span_id           TEXT,
    start_time        TEXT NOT NULL,
    end_time          TEXT,
    status            TEXT,
    status_message    TEXT,
    agent_id          TEXT,
    model             TEXT,
    provider          TEXT,
    prompt            TEXT,
    completion        TEXT,
    params            TEXT,
    returns           TEXT,
    input_tokens      INTEGER,
    output_tokens     INTEGER,
    cached_tokens     INTEGER,
    reasoning_tokens  INTEGER,
    cost              REAL,
    attributes        TEXT NOT NULL,
    -- also the index that reads a session's events
    UNIQUE (project_id, session_id, id)
);
CREATE TABLE IF NOT EXISTS logs (
    seq         INTEGER PRIMARY KEY,
    project_id  TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_session ON logs (project_id, session_id);
"#;

const READERS: usize = 2;

/// The SQLite store: one file `agentops.db` in the data directory.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn now() -> String {
    agentops_core::timestamp::now()
}

fn json_text(value: &Option<Value>) -> Option<String> {
    value
        .as_ref()
        .filter(|v| !v.is_null())
        .map(Value::to_string)
}

fn parse_json(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

impl SqliteStore {
    /// Opens (creating if needed) `path`, in WAL mode with full fsync on commit.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not enable WAL mode (got {mode})"
            )));
        }
        writer.execute_batch("PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;")?;
        let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {version} is newer than this server ({SCHEMA_VERSION})"
            )));
        }
        writer.execute_batch(SCHEMA)?;
        writer.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            reader.busy_timeout(std::time::Duration::from_secs(10))?;
            readers.push(Mutex::new(reader));
        }
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
        })
    }

    fn write_conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied transaction (it rolls back on
        // drop), so a poisoned lock is safe to reuse.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                return f(&conn);
            }
        }
        let conn = self.readers[0].lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }
}

/// Creates the session or merges the given fields into it; checks the owner.
fn upsert_session(tx: &Connection, project_id: &str, s: &SessionRecord) -> Result<(), StoreError> {
    let tags = s
        .tags
        .as_ref()
        .map(|t| serde_json::to_string(t).unwrap_or_default());
    tx.prepare_cached(
        "INSERT INTO sessions (id, project_id, name, start_time, end_time, end_state, end_state_reason, tags, host_env, video, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (id) DO UPDATE SET
            name = COALESCE(excluded.name, sessions.name),
            start_time = CASE WHEN sessions.start_time IS NULL THEN excluded.start_time
                              WHEN excluded.start_time IS NULL THEN sessions.start_time
                              ELSE min(sessions.start_time, excluded.start_time) END,
            end_time = COALESCE(excluded.end_time, sessions.end_time),
            end_state = COALESCE(excluded.end_state, sessions.end_state),
            end_state_reason = COALESCE(excluded.end_state_reason, sessions.end_state_reason),
            tags = COALESCE(excluded.tags, sessions.tags),
            host_env = COALESCE(excluded.host_env, sessions.host_env),
            video = COALESCE(excluded.video, sessions.video)
         WHERE sessions.project_id = excluded.project_id",
    )?
    .execute(params![
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
    ])?;
    check_owner(tx, project_id, &s.id)
}

fn owner(conn: &Connection, session_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT project_id FROM sessions WHERE id = ?1")?
        .query_row([session_id], |r| r.get(0))
        .optional()?)
}

fn check_owner(conn: &Connection, project_id: &str, session_id: &str) -> Result<(), StoreError> {
    match owner(conn, session_id)? {
        Some(p) if p == project_id => Ok(()),
        Some(_) => Err(StoreError::Forbidden(format!(
            "session {session_id} belongs to another project"
        ))),
        None => Err(StoreError::NotFound(format!(
            "session {session_id} not found"
        ))),
    }
}

fn session_cost(conn: &Connection, project_id: &str, session_id: &str) -> Result<f64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT cost FROM sessions WHERE project_id = ?1 AND id = ?2")?
        .query_row([project_id, session_id], |r| r.get(0))?)
}

fn insert_events<'a>(
    tx: &Connection,
    project_id: &str,
    events: impl IntoIterator<Item = &'a EventRecord>,
) -> Result<usize, StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (project_id, id, session_id, kind, name, parent_id, trace_id, span_id, start_time, end_time,
            status, status_message, agent_id, model, provider, prompt, completion, params, returns,
            input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)
         ON CONFLICT (project_id, session_id, id) DO NOTHING",
    )?;
    let mut inserted = 0;
    // session id → (events, input tokens, output tokens, cost) added by this write
    let mut totals: Vec<(&str, i64, i64, i64, f64)> = Vec::new();
    for e in events {
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
            json_text(&e.prompt),
            json_text(&e.completion),
            json_text(&e.params),
            json_text(&e.returns),
            e.input_tokens,
            e.output_tokens,
            e.cached_tokens,
            e.reasoning_tokens,
            e.cost,
            e.attributes.to_string(),
        ])?;
        if added == 0 {
            continue;
        }
        inserted += added;
        let i = match totals.iter().position(|t| t.0 == e.session_id) {
            Some(i) => i,
            None => {
                totals.push((&e.session_id, 0, 0, 0, 0.0));
                totals.len() - 1
            }
        };
        let t = &mut totals[i];
        t.1 += 1;
        t.2 += e.input_tokens.unwrap_or(0);
        t.3 += e.output_tokens.unwrap_or(0);
        t.4 += e.cost.unwrap_or(0.0);
    }
    let mut update = tx.prepare_cached(
        "UPDATE sessions SET event_count = event_count + ?3, input_tokens = input_tokens + ?4,
            output_tokens = output_tokens + ?5, cost = cost + ?6
         WHERE project_id = ?1 AND id = ?2",
    )?;
    for (session_id, count, input, output, cost) in totals {
        update.execute(params![project_id, session_id, count, input, output, cost])?;
    }
    Ok(inserted)
}

fn apply(tx: &Connection, write: &Write) -> Result<Outcome, StoreError> {
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
            check_owner(tx, project_id, &session.id)?;
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
            check_owner(tx, project_id, session_id)?;
            if let Some(e) = events.iter().find(|e| &e.session_id != session_id) {
                return Err(StoreError::Invalid(format!(
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
            check_owner(tx, project_id, session_id)?;
            tx.prepare_cached(
                "INSERT INTO agents (project_id, id, session_id, name) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project_id, id) DO NOTHING",
            )?
            .execute(params![project_id, agent_id, session_id, name])?;
            Ok(Outcome::Done)
        }
        Write::IngestSpans {
            project_id,
            sessions,
            spans,
        } => {
            let mut refused: Vec<&str> = Vec::new();
            for s in sessions {
                match upsert_session(tx, project_id, s) {
                    Ok(()) => {}
                    Err(StoreError::Forbidden(_)) => refused.push(&s.id),
                    Err(e) => return Err(e),
                }
            }
            let refused_span = |span: &&EventRecord| refused.contains(&span.session_id.as_str());
            let rejected = if refused.is_empty() {
                0
            } else {
                spans.iter().filter(refused_span).count()
            };
            insert_events(tx, project_id, spans.iter().filter(|s| !refused_span(s)))?;
            let message = (rejected > 0)
                .then(|| format!("{rejected} span(s) belong to a session of another project"));
            Ok(Outcome::Spans { rejected, message })
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

const SUMMARY_COLUMNS: &str =
    "s.id, s.name, s.start_time, s.end_time, s.end_state, s.end_state_reason,
    s.tags, s.event_count, s.input_tokens, s.output_tokens, s.cost, s.host_env, s.video";

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<SessionSummary> {
    let tags: Option<String> = row.get(6)?;
    Ok(SessionSummary {
        id: row.get(0)?,
        name: row.get(1)?,
        start_time: row.get(2)?,
        end_time: row.get(3)?,
        end_state: row.get(4)?,
        end_state_reason: row.get(5)?,
        tags: tags
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        event_count: row.get(7)?,
        input_tokens: row.get(8)?,
        output_tokens: row.get(9)?,
        cost: row.get(10)?,
    })
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    let attributes: String = row.get(23)?;
    Ok(EventRecord {
        id: row.get(0)?,
        session_id: row.get(1)?,
        kind: row.get(2)?,
        name: row.get(3)?,
        parent_id: row.get(4)?,
        trace_id: row.get(5)?,
        span_id: row.get(6)?,
        start_time: row.get(7)?,
        end_time: row.get(8)?,
        status: row.get(9)?,
        status_message: row.get(10)?,
        agent_id: row.get(11)?,
        model: row.get(12)?,
        provider: row.get(13)?,
        prompt: parse_json(row.get(14)?),
        completion: parse_json(row.get(15)?),
        params: parse_json(row.get(16)?),
        returns: parse_json(row.get(17)?),
        input_tokens: row.get(18)?,
        output_tokens: row.get(19)?,
        cached_tokens: row.get(20)?,
        reasoning_tokens: row.get(21)?,
        cost: row.get(22)?,
        attributes: serde_json::from_str(&attributes).unwrap_or(Value::Null),
    })
}

impl Store for SqliteStore {
    fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let mut conn = self.write_conn();
        let mut tx = conn.transaction()?;
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            let mut sp = tx.savepoint()?;
            match apply(&sp, write) {
                Ok(outcome) => {
                    sp.commit()?;
                    results.push(Ok(outcome));
                }
                Err(StoreError::Database(e)) if is_fatal(&e) => {
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

    fn create_project(&self, name: &str) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.write_conn().execute(
            "INSERT INTO projects (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![id, name, now()],
        )?;
        Ok(id)
    }

    fn default_project(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .write_conn()
            .query_row(
                "SELECT id FROM projects ORDER BY created_at, rowid LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn add_api_key(&self, project_id: &str, key_hash: &str) -> Result<bool, StoreError> {
        let conn = self.write_conn();
        if let Some(existing) = conn
            .query_row(
                "SELECT project_id FROM api_keys WHERE key_hash = ?1",
                [key_hash],
                |r| r.get::<_, String>(0),
            )
            .optional()?
        {
            if existing != project_id {
                return Err(StoreError::Forbidden(
                    "this API key belongs to another project".into(),
                ));
            }
            return Ok(false);
        }
        conn.execute(
            "INSERT INTO api_keys (key_hash, project_id, created_at) VALUES (?1, ?2, ?3)",
            params![key_hash, project_id, now()],
        )?;
        Ok(true)
    }

    fn api_key_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .write_conn()
            .query_row("SELECT COUNT(*) FROM api_keys", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    fn project_for_key(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT project_id FROM api_keys WHERE key_hash = ?1")?
                    .query_row([key_hash], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn session_owner(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| owner(c, session_id))
    }

    fn list_sessions(
        &self,
        project_id: &str,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM sessions s WHERE s.project_id = ?1
                 ORDER BY s.start_time DESC, s.created_at DESC LIMIT ?2"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![project_id, limit as i64], summary_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn session_detail(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM sessions s WHERE s.project_id = ?1 AND s.id = ?2");
            let found = c
                .prepare_cached(&sql)?
                .query_row(params![project_id, session_id], |row| {
                    Ok((summary_from_row(row)?, row.get::<_, Option<String>>(11)?, row.get::<_, Option<String>>(12)?))
                })
                .optional()?;
            let Some((summary, host_env, video)) = found else {
                return Ok(None);
            };
            let events = c
                .prepare_cached(
                    "SELECT id, session_id, kind, name, parent_id, trace_id, span_id, start_time, end_time,
                        status, status_message, agent_id, model, provider, prompt, completion, params, returns,
                        input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost, attributes
                     FROM events WHERE project_id = ?1 AND session_id = ?2 ORDER BY start_time, id",
                )?
                .query_map(params![project_id, session_id], event_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let agents = c
                .prepare_cached("SELECT id, name FROM agents WHERE project_id = ?1 AND session_id = ?2 ORDER BY rowid")?
                .query_map(params![project_id, session_id], |r| {
                    Ok(AgentRecord { id: r.get(0)?, name: r.get(1)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let logs = c
                .prepare_cached("SELECT body FROM logs WHERE project_id = ?1 AND session_id = ?2 ORDER BY seq")?
                .query_map(params![project_id, session_id], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(Some(SessionDetail {
                summary,
                host_env: parse_json(host_env),
                video,
                agents,
                events,
                logs,
            }))
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (SqliteStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("agentops-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        (SqliteStore::open(&dir.join("agentops.db")).unwrap(), dir)
    }

    #[test]
    fn passes_the_store_conformance_suite() {
        let (store, dir) = temp_store();
        crate::store::conformance::writes_are_idempotent_and_project_scoped(&store);
        crate::store::conformance::spans_of_a_foreign_session_are_rejected_alone(&store);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn reopening_keeps_everything() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        store.add_api_key(&project, "hash").unwrap();
        drop(store);
        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        assert_eq!(
            store.project_for_key("hash").unwrap(),
            Some(project.clone())
        );
        assert_eq!(store.default_project().unwrap(), Some(project));
        assert!(!store
            .add_api_key(store.default_project().unwrap().as_deref().unwrap(), "hash")
            .unwrap());
        std::fs::remove_dir_all(dir).ok();
    }
}
