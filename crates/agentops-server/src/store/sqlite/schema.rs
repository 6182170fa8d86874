//! The database schema, its version (`PRAGMA user_version`) and the migrations from older
//! versions.

use rusqlite::Connection;
use serde_json::value::RawValue;

use crate::store::json::{raw_attributes, raw_payload};
use crate::store::payload::PackedPayloads;
use crate::store::StoreError;

/// Version 2 added `sessions.error_count`, `session_facets` and the list indexes; version 3
/// repairs totals that overflowed into floating point before token counts were bounded;
/// version 4 keys sessions by project and id (each project has its own session ids);
/// version 5 gives projects their own retention and indexes what retention deletes by; version
/// 6 stores an event's payloads packed and compressed in `events.packed` (see
/// [`crate::store::payload`]) instead of five text columns; version 7 ends plain traces by
/// themselves (the `sessions` columns of [`MIGRATE_6_TO_7`]), ranks session names, links tool
/// calls (`events.call_ids`) and stores OTLP log records (`otel_logs`) and metrics
/// (`metric_points`); version 8 holds the spans sent without credentials in `held_spans`
/// (nothing to migrate: the table is made as it is missing); version 9 keeps the event totals
/// per hour (`hourly_totals`, made from the events by [`MIGRATE_TO_9_TOTALS`]) instead of per
/// day, and indexes events by start time (`events_by_time`), which statistics read the partial
/// hours at a range's ends by.
pub(super) const SCHEMA_VERSION: i64 = 9;

/// Moves a version 8 (or older) database to version 9, after [`SCHEMA`]: the hourly totals
/// made from the stored events (sums saturating as the writer's do), the daily totals gone.
const MIGRATE_TO_9_TOTALS: &str = "DELETE FROM hourly_totals;
    INSERT INTO hourly_totals
        (project_id, hour, model, events, error_events, input_tokens, output_tokens, cost)
    SELECT project_id, substr(start_time, 1, 13), COALESCE(model, ''), COUNT(*),
        SUM(status = 'error' OR kind = 'errors'),
        CAST(min(TOTAL(input_tokens), 9.2e18) AS INTEGER),
        CAST(min(TOTAL(output_tokens), 9.2e18) AS INTEGER), TOTAL(cost)
    FROM events GROUP BY 1, 2, 3;
    DROP TABLE IF EXISTS daily_totals;";

/// Moves a version 6 (or older) database to version 7, before [`SCHEMA`]: what a session
/// without an AgentOps session span needs to end by itself (see
/// [`crate::store::sqlite::write::close_quiet_sessions`]), the rank of its name's source, and
/// an event's tool call ids. Names stored before came from session spans: their rank.
const MIGRATE_6_TO_7: &str = "ALTER TABLE sessions ADD COLUMN name_rank INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN root_end_time TEXT;
    ALTER TABLE sessions ADD COLUMN root_failed INTEGER;
    ALTER TABLE sessions ADD COLUMN root_reason TEXT;
    ALTER TABLE sessions ADD COLUMN last_event_end TEXT;
    ALTER TABLE sessions ADD COLUMN last_span_at TEXT;
    ALTER TABLE sessions ADD COLUMN ended_by TEXT;
    UPDATE sessions SET name_rank = 5 WHERE name IS NOT NULL;
    ALTER TABLE events ADD COLUMN call_ids TEXT;";

/// Moves a version 5 (or older) database to version 6, before [`SCHEMA`]: the column of packed
/// payloads, and a note that older rows are to be packed. The rows written before keep their
/// text columns until [`pack_legacy_events`] packs them; reads take either.
const MIGRATE_5_TO_6: &str = "ALTER TABLE events ADD COLUMN packed BLOB;
    CREATE TABLE IF NOT EXISTS store_notes (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT OR REPLACE INTO store_notes (key, value) VALUES ('legacy_payloads', 'to pack');";

/// Whether rows written before version 6 are still to be packed (set by [`MIGRATE_5_TO_6`],
/// removed by [`pack_legacy_events`] once none is left, so that later starts skip the scan).
const LEGACY_PAYLOADS_PENDING: &str =
    "SELECT count(*) FROM store_notes WHERE key = 'legacy_payloads'";

/// Rows packed per transaction by [`pack_legacy_events`].
const LEGACY_BATCH: usize = 2_000;

/// Moves a version 4 (or older) database to version 5, before [`SCHEMA`]: a project's own
/// retention (`NULL`: the server's `--retention-days`; `0`: forever; `N`: `N` days). The
/// indexes retention needs are made by [`SCHEMA`].
const MIGRATE_4_TO_5: &str = "ALTER TABLE projects ADD COLUMN retention_days INTEGER;";

/// The time a session's age is counted from: its end, else its start, else its creation
/// (also in an index).
pub(super) const SESSION_AGE_SQL: &str = "COALESCE(end_time, start_time, created_at)";

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
"#;

/// Moves a version 3 (or older) database to version 4, before [`SCHEMA`]: the sessions table
/// is rebuilt with the key `(project_id, id)` instead of `id`; its indexes, dropped with the old
/// table, are made again by [`SCHEMA`] and [`list_indexes`].
const MIGRATE_3_TO_4: &str = r#"
CREATE TABLE sessions_v4 (
    project_id       TEXT NOT NULL,
    id               TEXT NOT NULL,
    name             TEXT,
    start_time       TEXT,
    end_time         TEXT,
    end_state        TEXT,
    end_state_reason TEXT,
    tags             TEXT,
    host_env         TEXT,
    video            TEXT,
    created_at       TEXT NOT NULL,
    event_count      INTEGER NOT NULL DEFAULT 0,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cost             REAL NOT NULL DEFAULT 0.0,
    error_count      INTEGER NOT NULL DEFAULT 0,
    -- how sure the name is: 6 session.name, 5 an AgentOps session span, 4 the root span,
    -- 3 an agent, 2 tags, 1 the service name (crate::mapping::names)
    name_rank        INTEGER NOT NULL DEFAULT 0,
    -- a plain trace's root span: when it ended and whether it failed (it ends the session once
    -- no span has arrived for the quiet window)
    root_end_time    TEXT,
    root_failed      INTEGER,
    root_reason      TEXT,
    -- the latest end of its events, and when (server time) its last span arrived
    last_event_end   TEXT,
    last_span_at     TEXT,
    -- 'quiet' when the server ended it after the quiet window
    ended_by         TEXT,
    PRIMARY KEY (project_id, id)
);
INSERT INTO sessions_v4 (project_id, id, name, start_time, end_time, end_state,
        end_state_reason, tags, host_env, video, created_at, event_count, input_tokens,
        output_tokens, cost, error_count)
    SELECT project_id, id, name, start_time, end_time, end_state, end_state_reason, tags,
        host_env, video, created_at, event_count, input_tokens, output_tokens, cost, error_count
    FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v4 RENAME TO sessions;
"#;

/// A session's duration in milliseconds, `NULL` while it has no end (also in an index).
pub(super) const DURATION_SQL: &str =
    "CAST(round((julianday(end_time) - julianday(start_time)) * 86400000.0) AS INTEGER)";

/// Moves a version 1 database to version 2 (run inside the migration transaction): the new
/// column, before [`SCHEMA`] (whose indexes may need it)…
const MIGRATE_1_TO_2_COLUMNS: &str =
    "ALTER TABLE sessions ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;";
/// …then, after it, the new tables filled from the stored events and agents.
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
"#;

/// Indexes of the session list (one per sort key, matching the query's expressions exactly),
/// and the one retention finds old sessions by.
fn list_indexes() -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS sessions_by_start_key ON sessions (project_id, COALESCE(start_time, ''), id);
         CREATE INDEX IF NOT EXISTS sessions_by_cost ON sessions (project_id, cost, id);
         CREATE INDEX IF NOT EXISTS sessions_by_event_count ON sessions (project_id, event_count, id);
         CREATE INDEX IF NOT EXISTS sessions_by_duration ON sessions (project_id, COALESCE({DURATION_SQL}, -1), id);
         CREATE INDEX IF NOT EXISTS sessions_by_age ON sessions (project_id, {SESSION_AGE_SQL}, id);"
    )
}

/// The tables and their indexes, created when missing.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    -- NULL: the server's --retention-days; 0: forever; N: N days
    retention_days INTEGER
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash    TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
-- each project has its own session ids: two projects may use the same one
CREATE TABLE IF NOT EXISTS sessions (
    project_id       TEXT NOT NULL,
    id               TEXT NOT NULL,
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
    error_count      INTEGER NOT NULL DEFAULT 0,
    -- how sure the name is: 6 session.name, 5 an AgentOps session span, 4 the root span,
    -- 3 an agent, 2 tags, 1 the service name (crate::mapping::names)
    name_rank        INTEGER NOT NULL DEFAULT 0,
    -- a plain trace's root span: when it ended and whether it failed (it ends the session once
    -- no span has arrived for the quiet window)
    root_end_time    TEXT,
    root_failed      INTEGER,
    root_reason      TEXT,
    -- the latest end of its events, and when (server time) its last span arrived
    last_event_end   TEXT,
    last_span_at     TEXT,
    -- 'quiet' when the server ended it after the quiet window
    ended_by         TEXT,
    PRIMARY KEY (project_id, id)
);
-- the plain traces waiting for their quiet window to pass
CREATE INDEX IF NOT EXISTS sessions_awaiting_quiet ON sessions (last_span_at)
    WHERE end_state IS NULL AND root_end_time IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_by_project_start ON sessions (project_id, start_time DESC);
-- the plain traces waiting for their quiet window to pass
CREATE INDEX IF NOT EXISTS sessions_awaiting_quiet ON sessions (last_span_at)
    WHERE end_state IS NULL AND root_end_time IS NOT NULL;
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
    -- prompt, completion, params, returns and attributes, packed (the text columns are then
    -- empty); NULL in rows written before schema version 5
    packed            BLOB,
    -- the tool calls it is about, space-separated: an LLM call's requested calls, or the call a
    -- tool execution answers
    call_ids          TEXT,
    -- also the index that reads a session's events
    UNIQUE (project_id, session_id, id)
);
-- statistics read the events of the partial hours at a range's ends by it (version 9); by
-- start time alone, as a project id in every entry would double its size (~45 bytes an event)
CREATE INDEX IF NOT EXISTS events_by_time ON events (start_time);
-- zstd dictionaries that event payloads are packed with (see crate::store::payload); the newest
-- is the one new payloads use
CREATE TABLE IF NOT EXISTS payload_dictionaries (
    id          INTEGER PRIMARY KEY,
    bytes       BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
-- spans sent without credentials, until a request of their trace claims them (version 8)
CREATE TABLE IF NOT EXISTS held_spans (
    seq         INTEGER PRIMARY KEY,
    trace_id    TEXT NOT NULL,
    held_at_ms  INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    span        TEXT NOT NULL,
    -- until when a server's claim holds it (NULL: not claimed)
    claimed_until_ms INTEGER
);
CREATE INDEX IF NOT EXISTS held_spans_by_trace ON held_spans (trace_id, held_at_ms);
CREATE INDEX IF NOT EXISTS held_spans_by_age ON held_spans (held_at_ms);
-- what the store notes for itself, such as work a migration left to do
CREATE TABLE IF NOT EXISTS store_notes (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    seq         INTEGER PRIMARY KEY,
    project_id  TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_session ON logs (project_id, session_id);
-- OTLP log records; `fingerprint` (a hash of the record) keeps a resent record from being
-- stored twice
CREATE TABLE IF NOT EXISTS otel_logs (
    seq         INTEGER PRIMARY KEY,
    project_id  TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    trace_id    TEXT,
    span_id     TEXT,
    time        TEXT NOT NULL,
    severity    TEXT,
    event_name  TEXT,
    body        TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    call_ids    TEXT,
    fingerprint TEXT NOT NULL,
    UNIQUE (project_id, session_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS otel_logs_by_time ON otel_logs (project_id, session_id, time);
-- OTLP metric data points (crate::ingest::otlp::metrics); `fingerprint` keeps a resent point
-- from being stored twice
CREATE TABLE IF NOT EXISTS metric_points (
    seq         INTEGER PRIMARY KEY,
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    unit        TEXT,
    temporality TEXT,
    monotonic   INTEGER,
    attributes  TEXT NOT NULL,
    start_time  TEXT,
    time        TEXT NOT NULL,
    value       REAL,
    count       INTEGER,
    sum         REAL,
    min         REAL,
    max         REAL,
    buckets     TEXT,
    fingerprint TEXT NOT NULL,
    UNIQUE (project_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS metric_points_by_name ON metric_points (project_id, name, time);
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
-- retention deletes a session's facets with it
CREATE INDEX IF NOT EXISTS session_facets_by_session ON session_facets (project_id, session_id);
-- event totals per UTC hour (the first 13 characters of the start time) and model ('' =
-- none), kept by the writer so that statistics over whole hours need not read every event
-- (version 9; daily before)
CREATE TABLE IF NOT EXISTS hourly_totals (
    project_id    TEXT NOT NULL,
    hour          TEXT NOT NULL,
    model         TEXT NOT NULL,
    events        INTEGER NOT NULL,
    error_events  INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost          REAL NOT NULL,
    PRIMARY KEY (project_id, hour, model)
) WITHOUT ROWID;
"#;

/// [`DURATION_SQL`] over the sessions of a query, `sessions s`.
pub(super) fn session_duration_sql() -> String {
    DURATION_SQL
        .replace("end_time", "s.end_time")
        .replace("start_time", "s.start_time")
}

/// Whether `table` has a column named `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Brings the database of `writer` to [`SCHEMA_VERSION`] in one transaction: creates what is
/// missing and migrates the data of an older version. Refuses a database of a newer version.
pub(super) fn migrate(writer: &Connection) -> Result<(), StoreError> {
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
    if (1..=3).contains(&version) {
        tx.execute_batch(MIGRATE_3_TO_4)?;
    }
    // (the column may be there already: a database marked older than it is)
    if (1..=4).contains(&version) && !has_column(&tx, "projects", "retention_days")? {
        tx.execute_batch(MIGRATE_4_TO_5)?;
    }
    if (1..=5).contains(&version) && !has_column(&tx, "events", "packed")? {
        tx.execute_batch(MIGRATE_5_TO_6)?;
    }
    if (1..=6).contains(&version) && !has_column(&tx, "events", "call_ids")? {
        tx.execute_batch(MIGRATE_6_TO_7)?;
    }
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(&list_indexes())?;
    if version == 1 {
        tx.execute_batch(MIGRATE_1_TO_2_DATA)?;
    }
    if (1..=2).contains(&version) {
        tx.execute_batch(MIGRATE_2_TO_3)?;
    }
    if (1..=8).contains(&version) {
        tx.execute_batch(MIGRATE_TO_9_TOTALS)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))?;
    tx.commit()?;
    Ok(())
}

/// Packs the payloads of events written before schema version 6 (see [`MIGRATE_5_TO_6`]), a
/// few thousand rows per transaction, so that an interrupted run goes on where it stopped the
/// next time the database is opened. How many rows it packed.
pub(super) fn pack_legacy_events(writer: &Connection) -> Result<usize, StoreError> {
    let pending: i64 = writer.query_row(LEGACY_PAYLOADS_PENDING, [], |row| row.get(0))?;
    if pending == 0 {
        return Ok(0);
    }
    let mut packed = 0;
    loop {
        let tx = writer.unchecked_transaction()?;
        let rows: Vec<(i64, PackedPayloads)> = {
            let mut select = tx.prepare(
                "SELECT rowid, prompt, completion, params, returns, attributes FROM events
                 WHERE packed IS NULL LIMIT ?1",
            )?;
            let rows = select.query_map([LEGACY_BATCH as i64], |row| {
                let payload = |index: usize| -> rusqlite::Result<Option<Box<RawValue>>> {
                    Ok(row.get_ref(index)?.as_str_or_null()?.map(raw_payload))
                };
                Ok((
                    row.get(0)?,
                    PackedPayloads::pack_raw(
                        payload(1)?.as_deref(),
                        payload(2)?.as_deref(),
                        payload(3)?.as_deref(),
                        payload(4)?.as_deref(),
                        &raw_attributes(row.get_ref(5)?.as_str()?),
                        None,
                    ),
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        if rows.is_empty() {
            tx.execute("DELETE FROM store_notes WHERE key = 'legacy_payloads'", [])?;
            tx.commit()?;
            return Ok(packed);
        }
        {
            let mut update = tx.prepare(
                "UPDATE events SET packed = ?2, prompt = NULL, completion = NULL, params = NULL,
                     returns = NULL, attributes = '' WHERE rowid = ?1",
            )?;
            for (rowid, payloads) in &rows {
                update.execute(rusqlite::params![rowid, payloads.as_bytes()])?;
            }
        }
        tx.commit()?;
        packed += rows.len();
        tracing::info!(
            packed,
            "packed the payloads of events stored before schema version 6"
        );
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::SCHEMA_VERSION;
    use crate::store::sqlite::test_support::{found, seed_one, temp_store};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AdminStore, ReadStore, SessionQuery, WriteStore};

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
             DROP INDEX agents_by_session; DROP TABLE hourly_totals;
             ALTER TABLE sessions DROP COLUMN error_count;
             ALTER TABLE projects DROP COLUMN retention_days;
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
        // the hourly totals were made: they and the events agree (a bound that is no
        // timestamp has no whole hour: every event is read)
        let by_totals = store.stats(&project, None, None).unwrap();
        let by_events = store.stats(&project, Some("0"), None).unwrap();
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
    fn a_version_3_database_gets_sessions_keyed_by_project() {
        let (store, dir) = temp_store();
        let a = store.create_project("a").unwrap();
        seed_one(&store, &a);
        drop(store);
        // Make the sessions table what version 3 had: one namespace of ids for all projects.
        let conn = Connection::open(dir.join("agentops.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE old AS SELECT * FROM sessions;
             DROP TABLE sessions;
             CREATE TABLE sessions (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT,
                 start_time TEXT, end_time TEXT, end_state TEXT, end_state_reason TEXT,
                 tags TEXT, host_env TEXT, video TEXT, created_at TEXT NOT NULL,
                 event_count INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,
                 output_tokens INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0.0,
                 error_count INTEGER NOT NULL DEFAULT 0);
             INSERT INTO sessions SELECT id, project_id, name, start_time, end_time, end_state,
                 end_state_reason, tags, host_env, video, created_at, event_count,
                 input_tokens, output_tokens, cost, error_count FROM old;
             DROP TABLE old;
             ALTER TABLE projects DROP COLUMN retention_days;
             PRAGMA user_version = 3;",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        let version: i64 = store
            .write_conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let kept = store.session_detail(&a, "s1").unwrap().unwrap();
        assert_eq!(kept.summary.name.as_deref(), Some("nightly run"));
        assert_eq!(kept.summary.error_count, 1);
        assert_eq!(kept.events.len(), 1);
        // the list indexes are back
        let indexes: i64 = store
            .write_conn()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'
                 AND name LIKE 'sessions_by_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // (the start time, the four sort keys, and the age retention deletes by)
        assert_eq!(indexes, 6);
        // another project may now use the same id
        let b = store.create_project("b").unwrap();
        seed_one(&store, &b);
        assert_eq!(found(&store, &b, SessionQuery::default()), vec!["s1"]);
        assert_eq!(found(&store, &a, SessionQuery::default()), vec!["s1"]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_version_4_database_gets_project_retention_and_the_retention_indexes() {
        use crate::store::{Outcome, Retention, Write};
        let (store, dir) = temp_store();
        let a = store.create_project("a").unwrap();
        seed_one(&store, &a);
        drop(store);
        // Make it what version 4 was: no retention column, no retention indexes.
        let conn = Connection::open(dir.join("agentops.db")).unwrap();
        conn.execute_batch(
            "ALTER TABLE projects DROP COLUMN retention_days;
             DROP INDEX sessions_by_age; DROP INDEX session_facets_by_session;
             PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        let version: i64 = store
            .write_conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let indexes: i64 = store
            .write_conn()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'
                 AND name IN ('sessions_by_age', 'session_facets_by_session')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 2);
        // the data is kept, and projects follow the server's retention until set
        assert_eq!(store.list_projects().unwrap()[0].retention, None);
        assert_eq!(
            store
                .session_detail(&a, "s1")
                .unwrap()
                .unwrap()
                .events
                .len(),
            1
        );
        store
            .set_project_retention(&a, Some(Retention::Days(3)))
            .unwrap();
        assert_eq!(
            store.list_projects().unwrap()[0].retention,
            Some(Retention::Days(3))
        );
        // retention finds old sessions by the new index
        let plan: String = store
            .write_conn()
            .query_row(
                &format!(
                    "EXPLAIN QUERY PLAN SELECT id FROM sessions WHERE project_id = 'x'
                     AND {} < 'y' ORDER BY {}, id LIMIT 5",
                    super::SESSION_AGE_SQL,
                    super::SESSION_AGE_SQL
                ),
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("sessions_by_age"), "{plan}");
        let results = store
            .commit(&[Write::ExpireSessions {
                project_id: a.clone(),
                before: "2030-01-01T00:00:00.000000+00:00".into(),
                server_before: None,
                max_rows: 100,
            }])
            .unwrap();
        assert!(
            matches!(results[0], Ok(Outcome::Expired { sessions: 1, .. })),
            "{results:?}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
    #[test]
    fn a_version_8_database_gets_hourly_totals_and_the_index_of_partial_hours() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        seed_one(&store, &project);
        drop(store);
        // Make it what version 8 was: daily totals, no index by start time.
        let conn = Connection::open(dir.join("agentops.db")).unwrap();
        conn.execute_batch(
            "DROP INDEX events_by_time; DROP TABLE hourly_totals;
             CREATE TABLE daily_totals (project_id TEXT NOT NULL, day TEXT NOT NULL,
                 model TEXT NOT NULL, events INTEGER NOT NULL, error_events INTEGER NOT NULL,
                 input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
                 cost REAL NOT NULL, PRIMARY KEY (project_id, day, model)) WITHOUT ROWID;
             INSERT INTO daily_totals SELECT id, '2026-11-20', 'gpt-4o', 1, 1, 0, 0, 0
                 FROM projects;
             PRAGMA user_version = 8;",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        let conn = store.write_conn();
        let (hours, daily): (String, i64) = conn
            .query_row(
                "SELECT (SELECT group_concat(hour || ' ' || model || ' ' || events)
                         FROM hourly_totals),
                        (SELECT COUNT(*) FROM sqlite_master WHERE name = 'daily_totals')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((hours.as_str(), daily), ("2026-11-20T10 gpt-4o 1", 0));
        for sql in [
            crate::store::sqlite::read::PARTIAL_HOUR_TOTALS,
            crate::store::sqlite::read::PARTIAL_HOUR_MODELS,
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(["p", "2026-01-01T12:30", "2026-01-01T13"], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().any(|step| step.contains("events_by_time")),
                "{plan:?}"
            );
        }
        drop(conn);
        // the event's hour from the totals, and a partial hour from the events
        for (from, to) in [
            (
                "2026-11-20T09:00:00.000000+00:00",
                "2026-11-20T11:00:00.000000+00:00",
            ),
            (
                "2026-11-20T10:00:00.500000+00:00",
                "2026-11-20T10:00:02.000000+00:00",
            ),
        ] {
            let stats = store.stats(&project, Some(from), Some(to)).unwrap();
            assert_eq!(
                stats.days.iter().map(|d| d.events).sum::<i64>(),
                1,
                "{from} {to}"
            );
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_version_5_database_gets_its_payloads_packed() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        seed_one(&store, &project);
        let before = store.session_detail(&project, "s1").unwrap().unwrap();
        drop(store);
        // Make it what version 5 was: payloads in text columns, no `packed` column.
        let conn = Connection::open(dir.join("agentops.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE unpacked AS SELECT rowid AS r, * FROM events;
             ALTER TABLE events DROP COLUMN packed;
             PRAGMA user_version = 5;",
        )
        .unwrap();
        drop(conn);
        // The payloads as version 5 held them: the ones read before, and a prompt.
        const PROMPT: &str = r#"[{"role": "user", "content": "hi"}]"#;
        let conn = Connection::open(dir.join("agentops.db")).unwrap();
        for e in &before.events {
            conn.execute(
                "UPDATE events SET prompt = ?2, completion = ?3, params = ?4, returns = ?5,
                     attributes = ?6 WHERE id = ?1",
                rusqlite::params![
                    e.id,
                    PROMPT,
                    e.completion.as_ref().map(|v| v.get()),
                    e.params.as_ref().map(|v| v.get()),
                    e.returns.as_ref().map(|v| v.get()),
                    e.attributes.get(),
                ],
            )
            .unwrap();
        }
        conn.execute_batch("DROP TABLE unpacked;").unwrap();
        drop(conn);

        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        let (version, unpacked): (i64, i64) = store
            .write_conn()
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM events WHERE packed IS NULL OR prompt IS NOT NULL)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((version, unpacked), (SCHEMA_VERSION, 0));
        let notes: i64 = store
            .write_conn()
            .query_row("SELECT count(*) FROM store_notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(notes, 0, "packing done: later starts skip the scan");
        let after = store.session_detail(&project, "s1").unwrap().unwrap();
        assert_eq!(after.events.len(), before.events.len());
        for (after, before) in after.events.iter().zip(&before.events) {
            assert_eq!(after.prompt.as_ref().map(|p| p.get()), Some(PROMPT));
            assert_eq!(after.attributes.get(), before.attributes.get());
            assert_eq!(after.id, before.id);
        }
        drop(store);
        std::fs::remove_dir_all(dir).ok();
    }
}
