//! The PostgreSQL schema: versioned migrations, applied at start under an advisory lock so
//! that replicas starting together apply each one once, and the monthly partitions of `events`.
//!
//! Timestamps are stored as the text the model uses (RFC 3339, microseconds, `+00:00`), in the
//! `"C"` collation so that text order is time order, as on SQLite; [`EPOCH_MS`] reads one as
//! milliseconds where a duration is needed.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

/// The advisory lock key migrations and partition creation hold (`"agentops"` in ASCII).
const MIGRATION_LOCK: i64 = 0x6167_656e_746f_7073;

/// The migrations, in order; version `n` is `MIGRATIONS[n - 1]`. Never edit one that has
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The schema version this server writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A session's duration in milliseconds (`NULL` while it runs), as the list sorts by it.
pub(super) const DURATION_SQL: &str =
    "(agentops_epoch_ms(end_time) - agentops_epoch_ms(start_time))";

/// A session's age for retention: when it ended, else started, else was created.
pub(super) const SESSION_AGE_SQL: &str = "COALESCE(end_time, start_time, created_at)";

/// Version 1: the tables of SQLite's schema version 7, in PostgreSQL's types.
const V1: &str = r#"
-- milliseconds since the epoch of a stored timestamp; NULL for NULL or text that is not one.
-- IMMUTABLE holds because stored timestamps carry their offset (the session's TimeZone
-- setting does not change the result); the list's duration index needs it.
CREATE FUNCTION agentops_epoch_ms(t text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF t IS NULL THEN RETURN NULL; END IF;
    RETURN round(extract(epoch FROM t::timestamptz) * 1000)::bigint;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

CREATE TABLE projects (
    id             TEXT PRIMARY KEY,
    -- creation order, which a second project created in the same microsecond keeps
    seq            BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    name           TEXT NOT NULL,
    created_at     TEXT COLLATE "C" NOT NULL,
    -- NULL: the server's --retention-days; 0: forever; N: N days
    retention_days BIGINT
);
CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    project_id  TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
);
-- secrets every replica shares, such as the JWT signing secret
CREATE TABLE shared_secrets (
    name        TEXT PRIMARY KEY,
    value       BYTEA NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
);
-- each project has its own session ids: two projects may use the same one
CREATE TABLE sessions (
    project_id       TEXT NOT NULL,
    -- ids sort as bytes, as on SQLite (the list's ties and cursors)
    id               TEXT COLLATE "C" NOT NULL,
    name             TEXT,
    start_time       TEXT COLLATE "C",
    end_time         TEXT COLLATE "C",
    end_state        TEXT,
    end_state_reason TEXT,
    tags             TEXT,
    host_env         TEXT,
    video            TEXT,
    created_at       TEXT COLLATE "C" NOT NULL,
    -- totals over the session's events, kept by the writer so that listing is cheap
    event_count      BIGINT NOT NULL DEFAULT 0,
    input_tokens     BIGINT NOT NULL DEFAULT 0,
    output_tokens    BIGINT NOT NULL DEFAULT 0,
    cost             DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    error_count      BIGINT NOT NULL DEFAULT 0,
    -- how sure the name is (crate::mapping::names)
    name_rank        BIGINT NOT NULL DEFAULT 0,
    -- a plain trace's root span: when it ended and whether it failed
    root_end_time    TEXT COLLATE "C",
    root_failed      BOOLEAN,
    root_reason      TEXT,
    -- the latest end of its events, and when (server time) its last span arrived
    last_event_end   TEXT COLLATE "C",
    last_span_at     TEXT COLLATE "C",
    -- 'quiet' when the server ended it after the quiet window
    ended_by         TEXT,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX sessions_awaiting_quiet ON sessions (last_span_at)
    WHERE end_state IS NULL AND root_end_time IS NOT NULL;
CREATE INDEX sessions_by_start_key ON sessions (project_id, COALESCE(start_time, ''), id);
CREATE INDEX sessions_by_cost ON sessions (project_id, cost, id);
CREATE INDEX sessions_by_event_count ON sessions (project_id, event_count, id);
CREATE INDEX sessions_by_duration ON sessions
    (project_id, COALESCE(agentops_epoch_ms(end_time) - agentops_epoch_ms(start_time), -1), id);
CREATE INDEX sessions_by_age ON sessions
    (project_id, COALESCE(end_time, start_time, created_at), id);

CREATE TABLE agents (
    project_id  TEXT NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    -- registration order, in which a session lists its agents
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    session_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX agents_by_session ON agents (project_id, session_id);

-- `seq` numbers rows in the order they become visible within a session (the writer locks the
-- session's row before inserting its rows): what `session_changes` marks
CREATE SEQUENCE events_seq;
-- partitioned by start time, one partition per UTC month (`events_YYYY_MM`, made by the
-- writer as needed) and a default one for start times that are not timestamps; retention
-- drops a month's partition once every project's retention has passed it
CREATE TABLE events (
    project_id        TEXT NOT NULL,
    id                TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    seq               BIGINT NOT NULL DEFAULT nextval('events_seq'),
    kind              TEXT NOT NULL,
    name              TEXT,
    parent_id         TEXT,
    trace_id          TEXT,
    span_id           TEXT,
    start_time        TEXT COLLATE "C" NOT NULL,
    end_time          TEXT COLLATE "C",
    status            TEXT,
    status_message    TEXT,
    agent_id          TEXT,
    model             TEXT,
    provider          TEXT,
    prompt            TEXT,
    completion        TEXT,
    params            TEXT,
    returns           TEXT,
    input_tokens      BIGINT,
    output_tokens     BIGINT,
    cached_tokens     BIGINT,
    reasoning_tokens  BIGINT,
    cost              DOUBLE PRECISION,
    attributes        TEXT NOT NULL,
    -- prompt, completion, params, returns and attributes, packed (crate::store::payload)
    packed            BYTEA,
    -- the tool calls it is about, space-separated
    call_ids          TEXT,
    -- a partition's unique index must hold the partition key: an event is the same event
    -- when its project, session, id and start time are
    PRIMARY KEY (project_id, session_id, id, start_time)
) PARTITION BY RANGE (start_time);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_by_seq ON events (project_id, session_id, seq);
CREATE INDEX events_by_time ON events (project_id, start_time);

-- zstd dictionaries that event payloads are packed with; the newest is the one in use
CREATE TABLE payload_dictionaries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bytes       BYTEA NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
);
CREATE TABLE store_notes (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE logs (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX logs_by_session ON logs (project_id, session_id);
-- OTLP log records; `fingerprint` keeps a resent record from being stored twice
CREATE TABLE otel_logs (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    trace_id    TEXT,
    span_id     TEXT,
    time        TEXT COLLATE "C" NOT NULL,
    severity    TEXT,
    event_name  TEXT,
    body        TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    call_ids    TEXT,
    fingerprint TEXT NOT NULL,
    UNIQUE (project_id, session_id, fingerprint)
);
CREATE INDEX otel_logs_by_time ON otel_logs (project_id, session_id, time);
-- OTLP metric data points; `fingerprint` keeps a resent point from being stored twice
CREATE TABLE metric_points (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    unit        TEXT,
    temporality TEXT,
    monotonic   BOOLEAN,
    attributes  TEXT NOT NULL,
    start_time  TEXT COLLATE "C",
    time        TEXT COLLATE "C" NOT NULL,
    value       DOUBLE PRECISION,
    count       BIGINT,
    sum         DOUBLE PRECISION,
    min         DOUBLE PRECISION,
    max         DOUBLE PRECISION,
    buckets     TEXT,
    fingerprint TEXT NOT NULL,
    UNIQUE (project_id, fingerprint)
);
CREATE INDEX metric_points_by_name ON metric_points (project_id, name, time);
-- what a session contains, one row per distinct value: event names ('name'), models
-- ('model'), agent ids ('agent') and registered agent names ('agent_name')
CREATE TABLE session_facets (
    project_id  TEXT NOT NULL,
    facet       TEXT NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    session_id  TEXT NOT NULL,
    PRIMARY KEY (project_id, facet, value, session_id)
);
CREATE INDEX session_facets_by_session ON session_facets (project_id, session_id);
-- event totals per UTC day (the first 10 characters of the start time) and model ('' = none)
CREATE TABLE daily_totals (
    project_id    TEXT NOT NULL,
    day           TEXT COLLATE "C" NOT NULL,
    model         TEXT NOT NULL,
    events        BIGINT NOT NULL,
    error_events  BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, day, model)
);
"#;

/// Version 2: the spans sent without credentials, held in the database (SQLite's version 8)
/// so that every replica can claim them.
const V2: &str = r#"
CREATE TABLE held_spans (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trace_id    TEXT COLLATE "C" NOT NULL,
    held_at_ms  BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    span        TEXT NOT NULL,
    -- until when a replica's claim holds it (NULL: not claimed)
    claimed_until_ms BIGINT
);
CREATE INDEX held_spans_by_trace ON held_spans (trace_id, held_at_ms);
CREATE INDEX held_spans_by_age ON held_spans (held_at_ms);
"#;

/// Version 3: the event totals per UTC hour (the first 13 characters of the start time)
/// instead of per day (SQLite's version 9), made from the stored events, so that statistics
/// read only the partial hours at a range's ends from the events.
const V3: &str = r#"
CREATE TABLE hourly_totals (
    project_id    TEXT NOT NULL,
    hour          TEXT COLLATE "C" NOT NULL,
    model         TEXT NOT NULL,
    events        BIGINT NOT NULL,
    error_events  BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, hour, model)
);
INSERT INTO hourly_totals
    (project_id, hour, model, events, error_events, input_tokens, output_tokens, cost)
SELECT project_id, left(start_time, 13), COALESCE(model, ''), COUNT(*),
    COUNT(*) FILTER (WHERE status = 'error' OR kind = 'errors'),
    LEAST(COALESCE(SUM(input_tokens), 0), 9223372036854775807)::bigint,
    LEAST(COALESCE(SUM(output_tokens), 0), 9223372036854775807)::bigint,
    COALESCE(SUM(cost), 0)
FROM events GROUP BY 1, 2, 3;
DROP TABLE daily_totals;
"#;

/// Brings the database to [`SCHEMA_VERSION`]: under [`MIGRATION_LOCK`] (so that replicas
/// starting at once wait for each other), applies each missing migration in its own
/// transaction. Refuses a database of a newer version.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    let applied = apply_missing(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error);
    applied?;
    unlocked.map(|_| ())
}

/// The migrations the database has not had yet, each in a transaction with its version row.
async fn apply_missing(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg_error)?;
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg_error)?;
    let version: i64 = row.get(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this server ({SCHEMA_VERSION})"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = index as i64 + 1;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&next],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        tracing::info!(version = next, "PostgreSQL schema migrated");
    }
    Ok(())
}

/// The month partitions of `events` known to exist, by name: asked of the database once each.
#[derive(Debug, Default)]
pub(crate) struct Partitions {
    known: Mutex<HashSet<String>>,
}

impl Partitions {
    /// Makes sure `events` has a partition for the month of each start time in `start_times`
    /// (start times that are not timestamps go to the default partition). Runs outside the
    /// write's transaction, under [`MIGRATION_LOCK`] taken for the transaction that creates.
    pub(crate) async fn ensure<'a>(
        &self,
        client: &mut Client,
        start_times: impl Iterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let wanted: Vec<Month> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            let mut wanted: Vec<Month> = start_times
                .filter_map(Month::of)
                .filter(|m| !known.contains(&m.table()))
                .collect();
            wanted.sort();
            wanted.dedup();
            wanted
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error)?;
        for month in &wanted {
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM pg_class WHERE relname = $1",
                    &[&month.table()],
                )
                .await
                .map_err(pg_error)?
                .is_some();
            if !exists {
                tx.batch_execute(&month.create_sql())
                    .await
                    .map_err(pg_error)?;
                tracing::info!(partition = %month.table(), "events partition created");
            }
        }
        tx.commit().await.map_err(pg_error)?;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.extend(wanted.iter().map(Month::table));
        Ok(())
    }

    /// Forgets the partitions it knew (after retention dropped some).
    pub(super) fn forget(&self) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A UTC month, the range of one partition of `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Month {
    pub(super) year: u32,
    pub(super) month: u32,
}

impl Month {
    /// The month a stored start time falls in, when it starts like a timestamp.
    pub(super) fn of(start_time: &str) -> Option<Month> {
        let year: u32 = start_time.get(0..4)?.parse().ok()?;
        if start_time.get(4..5)? != "-" {
            return None;
        }
        let month: u32 = start_time.get(5..7)?.parse().ok()?;
        ((1000..=9998).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    /// The month after.
    pub(super) fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The partition's table name, `events_YYYY_MM`.
    pub(super) fn table(&self) -> String {
        format!("events_{:04}_{:02}", self.year, self.month)
    }

    /// The first start time of the month, as text (`YYYY-MM`: every start time of the month
    /// sorts at or after it, and before the next month's).
    pub(super) fn bound(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// The statement that creates its partition (moving any of its rows out of the default
    /// partition first, which PostgreSQL requires).
    fn create_sql(&self) -> String {
        let (table, from, to) = (self.table(), self.bound(), self.next().bound());
        format!(
            "CREATE TEMP TABLE moved_{table} ON COMMIT DROP AS
                 SELECT * FROM events_default WHERE start_time >= '{from}' AND start_time < '{to}';
             DELETE FROM events_default WHERE start_time >= '{from}' AND start_time < '{to}';
             CREATE TABLE {table} PARTITION OF events FOR VALUES FROM ('{from}') TO ('{to}');
             INSERT INTO events SELECT * FROM moved_{table};"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Month, Partitions};
    use crate::store::conformance::{expiry_events, expiry_session};
    use crate::store::postgres::test_support::temp_store;
    use crate::store::postgres::write::tests::{assert_totals_match_events, number, text_of};
    use crate::store::{AdminStore, Write, WriteStore};

    #[test]
    fn a_version_2_database_gets_hourly_totals_made_from_its_events() {
        let (store, db) = temp_store();
        let p = store.create_project("p").unwrap();
        let results = store
            .commit(&[
                Write::CreateSession {
                    project_id: p.clone(),
                    session: expiry_session("s", "2026-11-20T00:00:00.000000+00:00", None),
                },
                Write::CreateEvents {
                    project_id: p.clone(),
                    session_id: "s".into(),
                    events: expiry_events("s", "2026-11-20", 6),
                },
            ])
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Make it what version 2 was: daily totals (wrong ones: the migration makes the hourly
        // totals from the events, not from them).
        store
            .with_client(async |c| {
                c.batch_execute(
                    r#"DROP TABLE hourly_totals;
                    CREATE TABLE daily_totals (project_id TEXT NOT NULL,
                        day TEXT COLLATE "C" NOT NULL, model TEXT NOT NULL,
                        events BIGINT NOT NULL, error_events BIGINT NOT NULL,
                        input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
                        cost DOUBLE PRECISION NOT NULL, PRIMARY KEY (project_id, day, model));
                    INSERT INTO daily_totals VALUES ('x', '2026-11-20', 'gpt-4o', 99, 0, 0, 0, 0);
                    DELETE FROM schema_migrations WHERE version = 3;"#,
                )
                .await
                .map_err(crate::store::postgres::pg_error)
            })
            .unwrap();
        drop(store);
        let store = db.connect();
        assert_eq!(
            number(&store, "SELECT MAX(version) FROM schema_migrations"),
            3
        );
        assert_eq!(
            text_of(
                &store,
                "SELECT string_agg(hour || ' ' || model || ' ' || events, ', ' ORDER BY hour, model)
                 FROM hourly_totals"
            )
            .as_deref(),
            Some("2026-11-20T00 gpt-4o 3, 2026-11-20T01 o3 3")
        );
        assert_eq!(
            number(
                &store,
                "SELECT COUNT(*) FROM pg_class WHERE relname = 'daily_totals'"
            ),
            0
        );
        assert_totals_match_events(&store);
    }

    #[test]
    fn one_call_makes_the_partitions_of_several_new_months() {
        let (store, _db) = temp_store();
        let partitions = Partitions::default();
        let months = [
            "2026-10-31T23:59:59.000000+00:00",
            "2026-11-01T00:00:00.000000+00:00",
            "2027-01-15T00:00:00.000000+00:00",
            "not a time",
        ];
        let tables: Vec<String> = store
            .with_client(async |c| {
                partitions.ensure(c, months.into_iter()).await?;
                partitions.ensure(c, months.into_iter()).await?;
                let rows = c
                    .query(
                        "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relname LIKE 'events\\_2%' ORDER BY 1",
                        &[],
                    )
                    .await
                    .map_err(super::pg_error)?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
            .unwrap();
        assert_eq!(
            tables,
            ["events_2026_10", "events_2026_11", "events_2027_01"]
        );
    }

    #[test]
    fn a_start_time_falls_in_its_month_and_text_that_is_no_time_in_none() {
        let m = Month::of("2026-12-03T10:00:00.000000+00:00").unwrap();
        assert_eq!(m.table(), "events_2026_12");
        assert_eq!(m.next().bound(), "2027-01");
        assert_eq!(Month::of("x"), None);
        assert_eq!(Month::of("2026-13-01"), None);
        assert_eq!(Month::of("20261201"), None);
    }
}
