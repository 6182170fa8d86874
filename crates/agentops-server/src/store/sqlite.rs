//! The embedded SQLite store (bundled SQLite, WAL mode): the zero-setup default.
//!
//! One connection writes (used by the writer thread, see [`crate::writer`]); a few others read
//! concurrently, which WAL allows.

use std::path::Path;
use std::sync::Mutex;

use agentops_core::EndState;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{
    AgentRecord, AgentSummary, ApiKeyInfo, DayStats, EndStateFilter, EventRecord, EventRow,
    ModelStats, Outcome, RawStats, SessionCursor, SessionDetail, SessionPage, SessionQuery,
    SessionRecord, SessionSortKey, SessionSummary, SortValue, Store, StoreError, Write,
};

/// Version 2 added `sessions.error_count`, `session_facets` and the list indexes; version 3
/// repairs totals that overflowed into floating point before token counts were bounded.
const SCHEMA_VERSION: i64 = 3;

/// Moves a version 2 database to version 3: totals that an overflow turned into floating point
/// (or negative) become integers again, clamped to the 64-bit range, so that reading them works.
const MIGRATE_2_TO_3: &str = r#"
UPDATE sessions SET
    input_tokens = CAST(min(max(input_tokens, 0), 9.2e18) AS INTEGER),
    output_tokens = CAST(min(max(output_tokens, 0), 9.2e18) AS INTEGER),
    event_count = CAST(min(max(event_count, 0), 9.2e18) AS INTEGER),
    error_count = CAST(min(max(error_count, 0), 9.2e18) AS INTEGER)
WHERE typeof(input_tokens) <> 'integer' OR typeof(output_tokens) <> 'integer'
   OR input_tokens < 0 OR output_tokens < 0;
UPDATE daily_totals SET
    input_tokens = CAST(min(max(input_tokens, 0), 9.2e18) AS INTEGER),
    output_tokens = CAST(min(max(output_tokens, 0), 9.2e18) AS INTEGER)
WHERE typeof(input_tokens) <> 'integer' OR typeof(output_tokens) <> 'integer'
   OR input_tokens < 0 OR output_tokens < 0;
"#;

/// `column + ?n`, saturating at the largest 64-bit integer instead of turning into a float.
fn saturating_add_sql(column: &str, parameter: &str) -> String {
    format!(
        "CASE WHEN {column} > 9223372036854775807 - {parameter} THEN 9223372036854775807 \
         ELSE {column} + {parameter} END"
    )
}

/// A session's duration in milliseconds, `NULL` while it has no end (also in an index).
const DURATION_SQL: &str =
    "CAST(round((julianday(end_time) - julianday(start_time)) * 86400000.0) AS INTEGER)";

/// Moves a version 1 database to version 2 (run inside the migration transaction).
const MIGRATE_1_TO_2_COLUMNS: &str =
    "ALTER TABLE sessions ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;";
const MIGRATE_1_TO_2_DATA: &str = r#"
UPDATE sessions SET error_count = (
    SELECT COUNT(*) FROM events e
    WHERE e.project_id = sessions.project_id AND e.session_id = sessions.id
      AND (e.status = 'error' OR e.kind = 'errors'));
INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
    SELECT DISTINCT project_id, 'name', name, session_id FROM events WHERE name IS NOT NULL;
INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
    SELECT DISTINCT project_id, 'model', model, session_id FROM events WHERE model IS NOT NULL;
INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
    SELECT DISTINCT project_id, 'agent', agent_id, session_id FROM events WHERE agent_id IS NOT NULL;
INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
    SELECT project_id, 'agent', id, session_id FROM agents;
INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
    SELECT project_id, 'agent_name', name, session_id FROM agents;
INSERT OR IGNORE INTO daily_totals
    (project_id, day, model, events, error_events, input_tokens, output_tokens, cost)
    SELECT project_id, substr(start_time, 1, 10), COALESCE(model, ''), COUNT(*),
        SUM(status = 'error' OR kind = 'errors'), COALESCE(SUM(input_tokens), 0),
        COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost), 0.0)
    FROM events GROUP BY 1, 2, 3;
"#;

/// Indexes of the session list (one per sort key, matching the query's expressions exactly).
fn list_indexes() -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS sessions_by_start_key ON sessions (project_id, COALESCE(start_time, ''), id);
         CREATE INDEX IF NOT EXISTS sessions_by_cost ON sessions (project_id, cost, id);
         CREATE INDEX IF NOT EXISTS sessions_by_event_count ON sessions (project_id, event_count, id);
         CREATE INDEX IF NOT EXISTS sessions_by_duration ON sessions (project_id, COALESCE({DURATION_SQL}, -1), id);"
    )
}

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
    cost             REAL NOT NULL DEFAULT 0.0,
    error_count      INTEGER NOT NULL DEFAULT 0
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
CREATE INDEX IF NOT EXISTS agents_by_session ON agents (project_id, session_id);
-- what a session contains, one row per distinct value: event names ('name'), models ('model'),
-- agent ids ('agent') and registered agent names ('agent_name'); the list filters read it
CREATE TABLE IF NOT EXISTS session_facets (
    project_id  TEXT NOT NULL,
    facet       TEXT NOT NULL,
    value       TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    PRIMARY KEY (project_id, facet, value, session_id)
) WITHOUT ROWID;
-- event totals per UTC day (the first 10 characters of the start time) and model ('' = none),
-- kept by the writer so that statistics over whole days need not read every event
CREATE TABLE IF NOT EXISTS daily_totals (
    project_id    TEXT NOT NULL,
    day           TEXT NOT NULL,
    model         TEXT NOT NULL,
    events        INTEGER NOT NULL,
    error_events  INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost          REAL NOT NULL,
    PRIMARY KEY (project_id, day, model)
) WITHOUT ROWID;
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
        // Prompts and completions are private: the database and its WAL and shared-memory
        // files (which SQLite creates with the database file's mode) are the owner's alone.
        restrict_to_owner(path)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not enable WAL mode (got {mode})"
            )));
        }
        // A page cache large enough that a big transaction does not spill to the WAL and read its
        // own pages back (64 MiB, allocated as used).
        writer.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;",
        )?;
        let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {version} is newer than this server ({SCHEMA_VERSION})"
            )));
        }
        let tx = writer.unchecked_transaction()?;
        if version == 1 {
            tx.execute_batch(MIGRATE_1_TO_2_COLUMNS)?;
        }
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(&list_indexes())?;
        if version == 1 {
            tx.execute_batch(MIGRATE_1_TO_2_DATA)?;
        }
        if (1..=2).contains(&version) {
            tx.execute_batch(MIGRATE_2_TO_3)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))?;
        tx.commit()?;
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

    /// A session with its events, their payloads (prompt, completion, params, returns,
    /// attributes) only when `payloads`.
    fn detail(
        &self,
        project_id: &str,
        session_id: &str,
        payloads: bool,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {} FROM sessions s WHERE s.project_id = ?1 AND s.id = ?2", summary_columns());
            let found = c
                .prepare_cached(&sql)?
                .query_row(params![project_id, session_id], |row| {
                    Ok((summary_from_row(row)?, row.get::<_, Option<String>>(11)?, row.get::<_, Option<String>>(12)?))
                })
                .optional()?;
            let Some((summary, host_env, video)) = found else {
                return Ok(None);
            };
            // Read in index order and sorted here: cheaper than SQLite's sorter, which would copy
            // every row (payloads included) and spill to temporary files. Text compares bytewise
            // in both (SQLite's BINARY collation), and (start_time, id) is unique in a session.
            let sql = if payloads { &*EVENTS_OF_SESSION } else { &*EVENTS_OF_SESSION_WITHOUT_PAYLOADS };
            let mut stmt = c.prepare_cached(sql)?;
            let mut rows = stmt.query(params![project_id, session_id])?;
            let mut events = Vec::new();
            while let Some(row) = rows.next()? {
                events.push(event_from_row(row)?);
            }
            events.sort_unstable_by(|a: &EventRow, b: &EventRow| {
                (a.start_time.as_str(), a.id.as_str()).cmp(&(b.start_time.as_str(), b.id.as_str()))
            });
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

/// Events, errors, input tokens, output tokens and cost added to one day and model.
type DayTotals = (i64, i64, i64, i64, f64);

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
    // session id → (events, input tokens, output tokens, cost, errors) added by this write,
    // in first-seen order (the order the sessions are updated in)
    let mut totals: Vec<(&str, i64, i64, i64, f64, i64)> = Vec::new();
    let mut session_index: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::new();
    // (session, facet, value) seen in this write, each once
    let mut facets: std::collections::HashSet<(&str, &str, &str)> =
        std::collections::HashSet::new();
    // (day, model or "") → (events, errors, input tokens, output tokens, cost)
    let mut daily: std::collections::HashMap<(&str, &str), DayTotals> =
        std::collections::HashMap::new();
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
        let i = *session_index.entry(&e.session_id).or_insert_with(|| {
            totals.push((&e.session_id, 0, 0, 0, 0.0, 0));
            totals.len() - 1
        });
        let t = &mut totals[i];
        t.1 += 1;
        t.2 = t.2.saturating_add(e.input_tokens.unwrap_or(0));
        t.3 = t.3.saturating_add(e.output_tokens.unwrap_or(0));
        t.4 += e.cost.unwrap_or(0.0);
        if is_error(e) {
            t.5 += 1;
        }
        let day = e.start_time.get(..10).unwrap_or(&e.start_time);
        let d = daily
            .entry((day, e.model.as_deref().unwrap_or("")))
            .or_default();
        d.0 += 1;
        d.1 += i64::from(is_error(e));
        d.2 = d.2.saturating_add(e.input_tokens.unwrap_or(0));
        d.3 = d.3.saturating_add(e.output_tokens.unwrap_or(0));
        d.4 += e.cost.unwrap_or(0.0);
        for (facet, value) in [
            ("name", &e.name),
            ("model", &e.model),
            ("agent", &e.agent_id),
        ] {
            if let Some(value) = value {
                facets.insert((&e.session_id, facet, value));
            }
        }
    }
    let mut update = tx.prepare_cached(&format!(
        "UPDATE sessions SET event_count = event_count + ?3, input_tokens = {},
            output_tokens = {}, cost = cost + ?6, error_count = error_count + ?7
         WHERE project_id = ?1 AND id = ?2",
        saturating_add_sql("input_tokens", "?4"),
        saturating_add_sql("output_tokens", "?5"),
    ))?;
    for (session_id, count, input, output, cost, errors) in totals {
        update.execute(params![
            project_id, session_id, count, input, output, cost, errors
        ])?;
    }
    let mut facet = tx.prepare_cached(
        "INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (session_id, kind, value) in facets {
        facet.execute(params![project_id, kind, value, session_id])?;
    }
    let mut day_totals = tx.prepare_cached(&format!(
        "INSERT INTO daily_totals (project_id, day, model, events, error_events, input_tokens, output_tokens, cost)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (project_id, day, model) DO UPDATE SET
            events = events + excluded.events, error_events = error_events + excluded.error_events,
            input_tokens = {}, output_tokens = {}, cost = cost + excluded.cost",
        saturating_add_sql("input_tokens", "excluded.input_tokens"),
        saturating_add_sql("output_tokens", "excluded.output_tokens"),
    ))?;
    for ((day, model), (count, errors, input, output, cost)) in daily {
        day_totals.execute(params![
            project_id, day, model, count, errors, input, output, cost
        ])?;
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
            let mut facet = tx.prepare_cached(
                "INSERT OR IGNORE INTO session_facets (project_id, facet, value, session_id)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            facet.execute(params![project_id, "agent", agent_id, session_id])?;
            facet.execute(params![project_id, "agent_name", name, session_id])?;
            Ok(Outcome::Done)
        }
        Write::IngestSpans {
            project_id,
            sessions,
            spans,
        } => {
            let mut refused: std::collections::HashSet<&str> = std::collections::HashSet::new();
            for s in sessions {
                match upsert_session(tx, project_id, s) {
                    Ok(()) => {}
                    Err(StoreError::Forbidden(_)) => {
                        refused.insert(&s.id);
                    }
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

/// Makes the database file, and its `-wal` and `-shm` files when they exist, readable and
/// writable by their owner only (Unix).
fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(StoreError::Corrupt(format!(
                        "cannot restrict {} to its owner: {err}",
                        file.display()
                    )))
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Whether an event counts as failed.
fn is_error(e: &EventRecord) -> bool {
    e.status.as_deref() == Some("error") || e.kind == "errors"
}

/// The columns [`summary_from_row`] reads (then `host_env`, `video`), over `sessions s`.
fn summary_columns() -> String {
    format!(
        "s.id, s.name, s.start_time, s.end_time, s.end_state, s.end_state_reason,
         s.tags, s.event_count, s.input_tokens, s.output_tokens, s.cost, s.host_env, s.video,
         s.error_count, {}",
        DURATION_SQL
            .replace("end_time", "s.end_time")
            .replace("start_time", "s.start_time")
    )
}

/// The SQL of a sort key over `sessions s`, as in the list indexes.
fn sort_key_sql(key: SessionSortKey) -> String {
    match key {
        SessionSortKey::StartTime => "COALESCE(s.start_time, '')".into(),
        SessionSortKey::Cost => "s.cost".into(),
        SessionSortKey::Events => "s.event_count".into(),
        SessionSortKey::Duration => format!(
            "COALESCE({}, -1)",
            DURATION_SQL
                .replace("end_time", "s.end_time")
                .replace("start_time", "s.start_time")
        ),
    }
}

fn sort_value_sql(value: &SortValue) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match value {
        SortValue::Text(t) => V::Text(t.clone()),
        SortValue::Int(i) => V::Integer(*i),
        SortValue::Real(r) => V::Real(*r),
    }
}

/// `LIKE` pattern matching `text` anywhere, with `\` as the escape character.
fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

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
        error_count: row.get(13)?,
        has_errors: row.get::<_, i64>(13)? > 0,
        duration_ms: row.get(14)?,
    })
}

const EVENT_COLUMNS: &str =
    "id, session_id, kind, name, parent_id, trace_id, span_id, start_time, end_time,
     status, status_message, agent_id, model, provider, prompt, completion, params, returns,
     input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost, attributes";

/// [`EVENT_COLUMNS`] with the payloads left out (`NULL`, attributes `{}`).
const EVENT_COLUMNS_WITHOUT_PAYLOADS: &str =
    "id, session_id, kind, name, parent_id, trace_id, span_id, start_time, end_time,
     status, status_message, agent_id, model, provider, NULL, NULL, NULL, NULL,
     input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost, '{}'";

/// A stored payload (JSON text written by [`json_text`]) as it reads back: the text itself, or,
/// should it not be JSON, the text as a JSON string.
fn raw_payload(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Box<RawValue>>> {
    let Some(text) = row.get_ref(index)?.as_str_or_null()? else {
        return Ok(None);
    };
    Ok(Some(match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => raw.to_owned(),
        Err(_) => raw_of(&Value::String(text.to_owned())),
    }))
}

/// A stored `attributes` text as it reads back: the text itself, or `null` should it not be JSON.
fn raw_attributes(row: &Row<'_>, index: usize) -> rusqlite::Result<Box<RawValue>> {
    let text = row.get_ref(index)?.as_str()?;
    Ok(match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => raw.to_owned(),
        Err(_) => raw_of(&Value::Null),
    })
}

fn raw_of(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value serialises")
}

/// A session's events (`?1` project, `?2` session), in index order.
static EVENTS_OF_SESSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {EVENT_COLUMNS} FROM events WHERE project_id = ?1 AND session_id = ?2")
});
/// [`EVENTS_OF_SESSION`] without the payloads.
static EVENTS_OF_SESSION_WITHOUT_PAYLOADS: std::sync::LazyLock<String> = std::sync::LazyLock::new(
    || {
        format!(
            "SELECT {EVENT_COLUMNS_WITHOUT_PAYLOADS} FROM events WHERE project_id = ?1 AND session_id = ?2"
        )
    },
);

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
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
        prompt: raw_payload(row, 14)?,
        completion: raw_payload(row, 15)?,
        params: raw_payload(row, 16)?,
        returns: raw_payload(row, 17)?,
        input_tokens: row.get(18)?,
        output_tokens: row.get(19)?,
        cached_tokens: row.get(20)?,
        reasoning_tokens: row.get(21)?,
        cost: row.get(22)?,
        attributes: raw_attributes(row, 23)?,
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

    fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT substr(k.key_hash, 1, 12), k.project_id, COALESCE(p.name, ''), k.created_at
                 FROM api_keys k LEFT JOIN projects p ON p.id = k.project_id
                 ORDER BY k.created_at, k.rowid",
            )?;
            let keys = stmt
                .query_map([], |r| {
                    Ok(ApiKeyInfo {
                        id: r.get(0)?,
                        project_id: r.get(1)?,
                        project_name: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(keys)
        })
    }

    fn revoke_api_key(&self, id: &str) -> Result<String, StoreError> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Invalid(format!(
                "{id:?} is not a key id: give at least 8 hex digits, as `agentops keys list` shows"
            )));
        }
        let conn = self.write_conn();
        let pattern = format!("{id}%");
        let matches: Vec<(String, String)> = conn
            .prepare("SELECT key_hash, project_id FROM api_keys WHERE key_hash LIKE ?1")?
            .query_map([&pattern], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        match matches.as_slice() {
            [] => Err(StoreError::NotFound(format!("no API key with id {id}"))),
            [(hash, project)] => {
                conn.execute("DELETE FROM api_keys WHERE key_hash = ?1", [hash])?;
                Ok(project.clone())
            }
            several => Err(StoreError::Invalid(format!(
                "{} keys have ids starting with {id}: give more digits",
                several.len()
            ))),
        }
    }

    fn find_project(&self, id_or_name: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id FROM projects WHERE id = ?1 OR name = ?1 ORDER BY created_at LIMIT 1",
            )?
            .query_row([id_or_name], |r| r.get(0))
            .optional()?)
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
                "SELECT {} FROM sessions s WHERE s.project_id = ?1
                 ORDER BY COALESCE(s.start_time, '') DESC, s.id DESC LIMIT ?2",
                summary_columns()
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
        self.detail(project_id, session_id, true)
    }

    fn session_detail_without_payloads(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.detail(project_id, session_id, false)
    }

    fn query_sessions(
        &self,
        project_id: &str,
        query: &SessionQuery,
    ) -> Result<SessionPage, StoreError> {
        use rusqlite::types::Value as V;
        let (sql, args) = session_list_sql(project_id, query);
        let limit = query.limit.max(1);
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
            let mut sessions = Vec::with_capacity(limit.min(1024));
            let mut last_key = None;
            let mut more = false;
            while let Some(row) = rows.next()? {
                if sessions.len() == limit {
                    more = true;
                    break;
                }
                sessions.push(summary_from_row(row)?);
                last_key = Some(match row.get::<_, V>(15)? {
                    V::Text(t) => SortValue::Text(t),
                    V::Integer(i) => SortValue::Int(i),
                    V::Real(r) => SortValue::Real(r),
                    other => {
                        return Err(StoreError::Corrupt(format!(
                            "unexpected sort key value {other:?}"
                        )))
                    }
                });
            }
            let next = match (more, last_key, sessions.last()) {
                (true, Some(key), Some(last)) => Some(SessionCursor {
                    key,
                    id: last.id.clone(),
                }),
                _ => None,
            };
            Ok(SessionPage { sessions, next })
        })
    }

    fn event_detail(
        &self,
        project_id: &str,
        session_id: &str,
        event_id: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        self.read(|c| {
            Ok(c
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE project_id = ?1 AND session_id = ?2 AND id = ?3"
                ))?
                .query_row(params![project_id, session_id, event_id], event_from_row)
                .optional()?)
        })
    }

    fn list_agents(&self, project_id: &str) -> Result<Vec<AgentSummary>, StoreError> {
        self.read(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT f.value, a.name, COUNT(*) FROM session_facets f
                     LEFT JOIN agents a ON a.project_id = f.project_id AND a.id = f.value
                     WHERE f.project_id = ?1 AND f.facet = 'agent'
                     GROUP BY f.value ORDER BY COUNT(*) DESC, f.value",
                )?
                .query_map([project_id], |r| {
                    Ok(AgentSummary {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        session_count: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn stats(
        &self,
        project_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<RawStats, StoreError> {
        // Open bounds as bounds that every stored timestamp passes.
        let from = from.unwrap_or("");
        let to = to.unwrap_or("\u{10ffff}");
        self.read(|c| {
            let mut days: std::collections::BTreeMap<String, DayStats> =
                std::collections::BTreeMap::new();
            // The totals of a day, created empty on first sight.
            fn day(
                days: &mut std::collections::BTreeMap<String, DayStats>,
                date: String,
            ) -> &mut DayStats {
                days.entry(date.clone()).or_insert_with(|| DayStats {
                    date,
                    sessions: 0,
                    events: 0,
                    error_events: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost: 0.0,
                })
            }
            let mut stats = RawStats::default();
            {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT substr(start_time, 1, 10), error_count, {DURATION_SQL}
                     FROM sessions
                     WHERE project_id = ?1 AND start_time >= ?2 AND start_time < ?3"
                ))?;
                let mut rows = stmt.query(params![project_id, from, to])?;
                while let Some(row) = rows.next()? {
                    let date: String = row.get(0)?;
                    let errors: i64 = row.get(1)?;
                    let duration: Option<i64> = row.get(2)?;
                    day(&mut days, date).sessions += 1;
                    stats.sessions += 1;
                    if errors > 0 {
                        stats.sessions_with_errors += 1;
                    }
                    if let Some(duration) = duration {
                        stats.durations_ms.push(duration);
                    }
                }
            }
            // Events: from the daily totals when the range is whole UTC days, else from the
            // events themselves.
            let whole_days = [from, to].iter().all(|t| {
                t.is_empty()
                    || t.starts_with('\u{10ffff}')
                    || t.get(10..) == Some("T00:00:00.000000+00:00")
            });
            let (events_sql, models_sql) = if whole_days {
                (
                    "SELECT day, SUM(events), SUM(error_events), SUM(input_tokens),
                        SUM(output_tokens), SUM(cost)
                     FROM daily_totals
                     WHERE project_id = ?1 AND day >= substr(?2, 1, 10) AND day < substr(?3, 1, 10)
                     GROUP BY day",
                    "SELECT model, SUM(events), SUM(input_tokens), SUM(output_tokens), SUM(cost)
                     FROM daily_totals
                     WHERE project_id = ?1 AND model != ''
                       AND day >= substr(?2, 1, 10) AND day < substr(?3, 1, 10)
                     GROUP BY model ORDER BY 5 DESC, 2 DESC, model",
                )
            } else {
                (
                    "SELECT substr(start_time, 1, 10), COUNT(*),
                        SUM(status = 'error' OR kind = 'errors'),
                        COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                        COALESCE(SUM(cost), 0.0)
                     FROM events
                     WHERE project_id = ?1 AND start_time >= ?2 AND start_time < ?3
                     GROUP BY 1",
                    "SELECT model, COUNT(*), COALESCE(SUM(input_tokens), 0),
                        COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost), 0.0)
                     FROM events
                     WHERE project_id = ?1 AND model IS NOT NULL
                       AND start_time >= ?2 AND start_time < ?3
                     GROUP BY model ORDER BY 5 DESC, 2 DESC, model",
                )
            };
            {
                let mut stmt = c.prepare_cached(events_sql)?;
                let mut rows = stmt.query(params![project_id, from, to])?;
                while let Some(row) = rows.next()? {
                    let date: String = row.get(0)?;
                    let d = day(&mut days, date);
                    d.events += row.get::<_, i64>(1)?;
                    d.error_events += row.get::<_, Option<i64>>(2)?.unwrap_or(0);
                    d.input_tokens += row.get::<_, i64>(3)?;
                    d.output_tokens += row.get::<_, i64>(4)?;
                    d.cost += row.get::<_, f64>(5)?;
                }
            }
            stats.models = c
                .prepare_cached(models_sql)?
                .query_map(params![project_id, from, to], |r| {
                    Ok(ModelStats {
                        model: r.get(0)?,
                        calls: r.get(1)?,
                        input_tokens: r.get(2)?,
                        output_tokens: r.get(3)?,
                        cost: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            stats.durations_ms.sort_unstable();
            stats.days = days.into_values().collect();
            Ok(stats)
        })
    }
}

/// The SQL and arguments of a session list query; the last column is the sort key.
fn session_list_sql(
    project_id: &str,
    query: &SessionQuery,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let key = sort_key_sql(query.sort);
    let mut conditions: Vec<String> = vec!["s.project_id = ?".into()];
    let mut args: Vec<V> = vec![V::Text(project_id.to_owned())];
    if let Some(from) = &query.from {
        conditions.push("s.start_time >= ?".into());
        args.push(V::Text(from.clone()));
    }
    if let Some(to) = &query.to {
        conditions.push("s.start_time < ?".into());
        args.push(V::Text(to.clone()));
    }
    for tag in &query.tags {
        conditions.push("EXISTS (SELECT 1 FROM json_each(s.tags) t WHERE t.value = ?)".into());
        args.push(V::Text(tag.clone()));
    }
    match query.end_state {
        Some(EndStateFilter::Ended(state)) => {
            conditions.push("s.end_state = ?".into());
            args.push(V::Text(state.as_str().to_owned()));
        }
        // Not ended: no end time, and no decisive state (the 0.3 SDK creates its sessions as
        // Indeterminate).
        Some(EndStateFilter::Running) => conditions.push(
            "(s.end_time IS NULL AND (s.end_state IS NULL OR s.end_state = 'Indeterminate'))"
                .into(),
        ),
        None => {}
    }
    if let Some(agent) = &query.agent {
        conditions.push(
            "s.id IN (SELECT session_id FROM session_facets
                          WHERE project_id = ? AND facet IN ('agent', 'agent_name') AND value = ?)"
                .into(),
        );
        args.push(V::Text(project_id.to_owned()));
        args.push(V::Text(agent.clone()));
    }
    if let Some(model) = &query.model {
        conditions.push(
            "s.id IN (SELECT session_id FROM session_facets
                          WHERE project_id = ? AND facet = 'model' AND value = ?)"
                .into(),
        );
        args.push(V::Text(project_id.to_owned()));
        args.push(V::Text(model.clone()));
    }
    match query.has_errors {
        Some(true) => conditions.push("s.error_count > 0".into()),
        Some(false) => conditions.push("s.error_count = 0".into()),
        None => {}
    }
    if let Some(text) = &query.text {
        let pattern = contains_pattern(text);
        conditions.push(
                "(s.name LIKE ?1x ESCAPE '\\' OR s.id LIKE ?1x ESCAPE '\\' OR s.tags LIKE ?1x ESCAPE '\\'
                  OR s.id IN (SELECT session_id FROM session_facets
                              WHERE project_id = ? AND facet = 'name' AND value LIKE ?1x ESCAPE '\\'))"
                    .replace("?1x", "?"),
            );
        args.push(V::Text(pattern.clone()));
        args.push(V::Text(pattern.clone()));
        args.push(V::Text(pattern.clone()));
        args.push(V::Text(project_id.to_owned()));
        args.push(V::Text(pattern));
    }
    let (op, dir) = if query.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &query.after {
        conditions.push(format!("({key}, s.id) {op} (?, ?)"));
        args.push(sort_value_sql(&after.key));
        args.push(V::Text(after.id.clone()));
    }
    let sql = format!(
        "SELECT {}, {key} FROM sessions s WHERE {} ORDER BY {key} {dir}, s.id {dir} LIMIT {}",
        summary_columns(),
        conditions.join(" AND "),
        query.limit.max(1) + 1
    );
    (sql, args)
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

    /// The JSON an event read back used to answer: every stored payload parsed into a [`Value`]
    /// (text that is not JSON as a string; attributes as `null`).
    /// Stores `session` and its `events` in one commit, checking both writes succeeded.
    fn store_session(
        store: &SqliteStore,
        project: &str,
        session: SessionRecord,
        events: Vec<EventRecord>,
    ) {
        let session_id = session.id.clone();
        let results = store
            .commit(&[
                Write::CreateSession {
                    project_id: project.into(),
                    session,
                },
                Write::CreateEvents {
                    project_id: project.into(),
                    session_id,
                    events,
                },
            ])
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    fn parsed_json_of_stored(c: &Connection, project: &str, id: &str) -> String {
        c.query_row(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE project_id = ?1 AND id = ?2"),
            params![project, id],
            |row| {
                let attributes: String = row.get(23)?;
                Ok(serde_json::to_string(&EventRecord {
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
                .unwrap())
            },
        )
        .unwrap()
    }

    #[test]
    fn events_read_back_as_raw_json_serialise_as_the_parsed_values_did() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let payloads = serde_json::json!({
            "nested": {"z": [1, -2, 3.5, 1e300, -0.0, 0.1, 12345678901234567890u64, -9007199254740993i64],
                       "a": {"deep": [null, true, false, {}]}},
            "text": "quotes \" backslash \\ newline \n tab \t control \u{1} é 日本 🎉 </script>",
            "empty": "",
        });
        let mut events = Vec::new();
        for (i, value) in [
            payloads.clone(),
            serde_json::json!("a string"),
            serde_json::json!(42),
        ]
        .into_iter()
        .enumerate()
        {
            events.push(EventRecord {
                id: format!("e{i}"),
                session_id: "s1".into(),
                kind: "llms".into(),
                name: Some(format!("call {i}")),
                parent_id: (i > 0).then(|| "e0".into()),
                start_time: format!("2026-11-20T10:00:0{i}.000000+00:00"),
                end_time: Some(format!("2026-11-20T10:00:0{i}.500000+00:00")),
                model: Some("gpt-4o".into()),
                prompt: Some(value.clone()),
                completion: (i != 1).then(|| value.clone()),
                params: Some(serde_json::json!({"temperature": 0.7})),
                returns: (i == 2).then_some(Value::Null),
                input_tokens: Some(10),
                cost: Some(0.000_123_4),
                attributes: payloads.clone(),
                ..EventRecord::default()
            });
        }
        let s1 = SessionRecord {
            id: "s1".into(),
            ..SessionRecord::default()
        };
        store_session(&store, &project, s1, events);
        // text that is not JSON (never written by this server, but it reads back all the same)
        store
            .write_conn()
            .execute(
                "UPDATE events SET prompt = 'not json', attributes = '{broken' WHERE id = 'e2'",
                [],
            )
            .unwrap();
        let detail = store.session_detail(&project, "s1").unwrap().unwrap();
        assert_eq!(detail.events.len(), 3);
        let conn = store.write_conn();
        for row in &detail.events {
            let expected = parsed_json_of_stored(&conn, &project, &row.id);
            assert_eq!(serde_json::to_string(row).unwrap(), expected, "{}", row.id);
            let one = store
                .event_detail(&project, "s1", &row.id)
                .unwrap()
                .unwrap();
            assert_eq!(
                serde_json::to_string(&one).unwrap(),
                serde_json::to_string(row).unwrap()
            );
        }
        assert_eq!(
            detail.events[2].prompt.as_ref().unwrap().get(),
            r#""not json""#
        );
        assert_eq!(detail.events[2].attributes.get(), "null");
        drop(conn);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_sessions_events_come_by_start_time_then_id() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let at = |s: &str| format!("2026-11-20T10:00:{s}+00:00");
        // (id, start): index (id) order differs from time order; ties go by id
        let stored = [
            ("a", at("09.000000")),
            ("b", at("01.000000")),
            ("c", at("01.000000")),
            ("B", at("05.000000")),
            ("é", at("01.000000")),
            ("z", at("00.500000")),
        ];
        let events = stored
            .iter()
            .map(|(id, start)| EventRecord {
                id: (*id).into(),
                session_id: "s1".into(),
                kind: "actions".into(),
                start_time: start.clone(),
                attributes: serde_json::json!({}),
                ..EventRecord::default()
            })
            .collect();
        let s1 = SessionRecord {
            id: "s1".into(),
            ..SessionRecord::default()
        };
        store_session(&store, &project, s1, events);
        let expected: Vec<String> = store
            .write_conn()
            .prepare("SELECT id FROM events WHERE session_id = 's1' ORDER BY start_time, id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(expected, ["z", "b", "c", "é", "B", "a"]);
        for detail in [
            store.session_detail(&project, "s1"),
            store.session_detail_without_payloads(&project, "s1"),
        ] {
            let ids: Vec<String> = detail
                .unwrap()
                .unwrap()
                .events
                .into_iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(ids, expected);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    fn seed_one(store: &SqliteStore, project: &str) {
        let session = SessionRecord {
            id: "s1".into(),
            name: Some("nightly run".into()),
            start_time: Some("2026-11-20T10:00:00.000000+00:00".into()),
            end_time: Some("2026-11-20T10:00:02.500000+00:00".into()),
            tags: Some(vec!["prod".into()]),
            ..SessionRecord::default()
        };
        let event = EventRecord {
            id: "e1".into(),
            session_id: "s1".into(),
            kind: "llms".into(),
            name: Some("summarise".into()),
            start_time: "2026-11-20T10:00:01.000000+00:00".into(),
            status: Some("error".into()),
            model: Some("gpt-4o".into()),
            agent_id: Some("a1".into()),
            attributes: serde_json::json!({}),
            ..EventRecord::default()
        };
        store_session(store, project, session, vec![event]);
    }

    fn found(store: &SqliteStore, project: &str, query: SessionQuery) -> Vec<String> {
        store
            .query_sessions(project, &query)
            .unwrap()
            .sessions
            .into_iter()
            .map(|s| s.id)
            .collect()
    }

    #[test]
    fn a_version_1_database_is_migrated_with_its_data() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        seed_one(&store, &project);
        drop(store);
        // Make it what version 1 was: no facets, no error counts, no list indexes.
        let conn = Connection::open(dir.join("agentops.db")).unwrap();
        conn.execute_batch(
            "DROP TABLE session_facets;
             DROP INDEX sessions_by_start_key; DROP INDEX sessions_by_cost;
             DROP INDEX sessions_by_event_count; DROP INDEX sessions_by_duration;
             DROP INDEX agents_by_session; DROP TABLE daily_totals;
             ALTER TABLE sessions DROP COLUMN error_count;
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        let version: i64 = store
            .write_conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let s1 = vec!["s1".to_owned()];
        for query in [
            SessionQuery {
                has_errors: Some(true),
                ..SessionQuery::default()
            },
            SessionQuery {
                model: Some("gpt-4o".into()),
                ..SessionQuery::default()
            },
            SessionQuery {
                agent: Some("a1".into()),
                ..SessionQuery::default()
            },
            SessionQuery {
                text: Some("SUMMAR".into()),
                ..SessionQuery::default()
            },
            SessionQuery {
                tags: vec!["prod".into()],
                ..SessionQuery::default()
            },
        ] {
            assert_eq!(found(&store, &project, query.clone()), s1, "{query:?}");
        }
        let page = store
            .query_sessions(&project, &SessionQuery::default())
            .unwrap();
        assert_eq!(page.sessions[0].error_count, 1);
        assert_eq!(page.sessions[0].duration_ms, Some(2500));
        // the daily totals were rebuilt: whole days (totals) and a finer range (events) agree
        let by_totals = store.stats(&project, None, None).unwrap();
        let by_events = store
            .stats(&project, Some("2000-01-01T00:00:01.000000+00:00"), None)
            .unwrap();
        assert_eq!(by_totals, by_events);
        assert_eq!(by_totals.days[0].events, 1);
        assert_eq!(by_totals.days[0].error_events, 1);
        assert_eq!(by_totals.models[0].model, "gpt-4o");
        // opening again is a no-op
        drop(store);
        SqliteStore::open(&dir.join("agentops.db")).unwrap();
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn list_queries_walk_an_index_in_order() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        seed_one(&store, &project);
        let after = |key| SessionCursor {
            key,
            id: "s0".into(),
        };
        for (sort, key, index) in [
            (
                SessionSortKey::StartTime,
                SortValue::Text("x".into()),
                "sessions_by_start_key",
            ),
            (
                SessionSortKey::Cost,
                SortValue::Real(1.0),
                "sessions_by_cost",
            ),
            (
                SessionSortKey::Events,
                SortValue::Int(1),
                "sessions_by_event_count",
            ),
            (
                SessionSortKey::Duration,
                SortValue::Int(1),
                "sessions_by_duration",
            ),
        ] {
            for descending in [true, false] {
                for cursor in [None, Some(after(key.clone()))] {
                    let query = SessionQuery {
                        sort,
                        descending,
                        after: cursor,
                        tags: vec!["prod".into()],
                        ..SessionQuery::default()
                    };
                    let (sql, args) = session_list_sql(&project, &query);
                    let conn = store.write_conn();
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                    let plan: Vec<String> = stmt
                        .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(3))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    let plan = plan.join("\n");
                    assert!(plan.contains(index), "{query:?}:\n{plan}");
                    assert!(!plan.contains("TEMP B-TREE"), "{query:?} sorts:\n{plan}");
                }
            }
        }
        // the detail reads one session's events through the unique index
        let conn = store.write_conn();
        let plan: String = conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN SELECT {EVENT_COLUMNS} FROM events WHERE project_id = ?1 AND session_id = ?2 ORDER BY start_time, id"),
                params![project, "s1"],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("INDEX"), "{plan}");
        drop(conn);
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
