//! The PostgreSQL store, for several `agentops serve` replicas on one database.
//!
//! Everything a replica needs is in the database (projects, keys, sessions, the JWT secret),
//! so replicas are interchangeable: a session begun through one may be continued through
//! another. The [`Store`] trait blocks, so this engine owns a small Tokio runtime that drives
//! its connections (tokio-postgres, pooled by deadpool-postgres); each method enters it and
//! waits for its statements. The modules hold the work by concern:
//!
//! - `schema`: versioned migrations under an advisory lock, the monthly partitions of `events`;
//! - `write`: the group commit and each kind of write;
//! - `list`: the session list and its SQL builder;
//! - `read`: a session's detail and changes, one event, agents, statistics, logs and metrics;
//! - `expire`: retention, deleting old sessions and dropping whole partitions;
//! - `admin`: projects, API keys and shared secrets;
//! - `dictionary`: the payload dictionaries every replica packs and unpacks with;
//! - `held`: spans sent without credentials, held until their trace is claimed.
//!
//! What does not depend on the engine (the aggregates a write adds, the event columns, how
//! payloads are packed, the is-error rule) lives in the parent module, for both engines.

mod admin;
mod database;
mod dictionary;
mod expire;
mod held;
mod list;
mod read;
mod rows;
pub(crate) mod schema;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod tls;
mod write;
mod write_events;
mod write_otel;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::Client;

pub use database::{create_database_if_missing, drop_database, test_database_for};

use super::payload::DictionaryId;

use super::{
    AdminError, AdminStore, AgentSummary, ApiKeyInfo, CallRef, ClaimedSpan, EventRow, HeldSpan,
    HeldSpanStore, LogRecord, MetricInfo, MetricPoint, Outcome, ProjectInfo, QueryError, RawStats,
    ReadStore, Retention, SessionChanges, SessionDetail, SessionMark, SessionPage, SessionQuery,
    SessionSummary, Store, StoreError, Write, WriteError, WriteStore,
};

/// Connections per replica: the writer's, and the readers'.
const POOL_SIZE: usize = 8;

/// Transactions a replica commits at once: while one waits on the database (its statements,
/// the commit's flush), another goes on. Writes to one session wait for each other on its
/// row lock; two that lock the same sessions in another order are run again (see
/// [`write::commit`]).
const WRITERS: usize = 2;

/// How long a request waits for a free connection, or for a new one to open, before it is
/// answered "unavailable" (503).
const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// How long a store call (waiting for a connection, then its work: a write's transaction, a
/// read's statements) may take before it is given up and answered "unavailable" (503): a
/// database that stops answering (a network that drops packets, a server frozen) must not
/// hold requests, or the writer, for ever. Far above any statement's time here (the slowest
/// read at 10M events takes 0.3 s).
const WORK_WAIT: Duration = Duration::from_secs(10);

/// How long sent data may stay unacknowledged, and a connection idle before it is probed, at
/// the TCP level: a peer that vanished is noticed even between statements (unless the URL
/// sets its own).
const TCP_TIMEOUT: Duration = Duration::from_secs(30);

/// The PostgreSQL store: the database at a `postgres://` URL.
pub struct PgStore {
    /// Drives the connections; shut down without waiting when the store is dropped (`None`
    /// only then).
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// The month partitions of `events` known to exist.
    partitions: schema::Partitions,
    /// Where the database is, without the password (for logs and errors).
    display_url: String,
    /// The dictionary new payloads are packed with (the newest stored).
    dictionary: std::sync::RwLock<Option<DictionaryId>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.display_url)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which async code may not do: let it go in the background.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`), applying the
    /// migrations it lacks. Fails with [`StoreError::Unavailable`] when it cannot be reached.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let (mut config, tls) = tls::connection(url)?;
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_TIMEOUT);
        }
        if !url.contains("keepalives_idle") {
            config.keepalives_idle(TCP_TIMEOUT);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("agentops-postgres")
            .enable_all()
            .build()?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECTION_WAIT))
            .create_timeout(Some(CONNECTION_WAIT))
            .recycle_timeout(Some(CONNECTION_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("PostgreSQL pool: {e}")))?;
        let store = PgStore {
            runtime: Some(runtime),
            pool,
            partitions: schema::Partitions::default(),
            display_url: redact(url),
            dictionary: std::sync::RwLock::new(None),
        };
        let dictionary = store.run(async {
            let mut client = store.client().await?;
            schema::migrate(&mut client).await?;
            dictionary::load(&**client).await
        })?;
        store.use_dictionary(dictionary);
        Ok(store)
    }

    /// Runs `work` to its end on this thread, with the store's runtime entered (its
    /// connections are driven by the runtime's threads).
    fn run<F: Future>(&self, work: F) -> F::Output {
        let _entered = self.runtime.as_ref().map(|r| r.enter());
        futures_executor::block_on(work)
    }

    /// A connection from the pool, or [`StoreError::Unavailable`] after [`CONNECTION_WAIT`].
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            let why = with_causes(&e);
            let hint = if why.contains("does not exist") && why.contains("database") {
                " (create it first: `createdb`, or CREATE DATABASE)"
            } else {
                ""
            };
            StoreError::Unavailable(format!("PostgreSQL at {}: {why}{hint}", self.display_url))
        })
    }

    /// Runs `work` with a pooled connection, the wait for the connection included, for at
    /// most [`WORK_WAIT`]: past that, the connection is closed (it may be stuck
    /// mid-statement) and the answer is [`StoreError::Unavailable`]. A write given up so may
    /// still commit, as when a client times out; its ids make the resend store nothing twice.
    fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(async {
            let deadline = tokio::time::Instant::now() + WORK_WAIT;
            let mut client = match tokio::time::timeout_at(deadline, self.client()).await {
                Ok(client) => client?,
                Err(_) => return Err(self.no_answer()),
            };
            match tokio::time::timeout_at(deadline, work(&mut client)).await {
                Ok(done) => done,
                Err(_) => {
                    drop(deadpool_postgres::Object::take(client));
                    Err(self.no_answer())
                }
            }
        })
    }

    /// Packs new payloads with `dictionary` from now on.
    fn use_dictionary(&self, dictionary: Option<DictionaryId>) {
        *self.dictionary.write().unwrap_or_else(|p| p.into_inner()) = dictionary;
    }

    /// What a store call past [`WORK_WAIT`] is answered.
    fn no_answer(&self) -> StoreError {
        StoreError::TimedOut(format!(
            "PostgreSQL at {} did not answer within {} s",
            self.display_url,
            WORK_WAIT.as_secs()
        ))
    }
}

/// An error and each of its causes not already in its message (the pool's errors hide why a
/// connection failed: refused, unknown database, bad password).
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// `url` without its password: neither the one before the host (`user:password@`) nor a
/// `password=` among the query's parameters.
pub fn redact(url: &str) -> String {
    // The credentials end at the first `@` after the scheme (as the driver reads them), even
    // when the password holds a `?`; the query begins after them.
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let at = url[scheme_end..].find('@').map(|i| scheme_end + i);
    let query_from = url[at.unwrap_or(scheme_end)..]
        .find('?')
        .map(|i| at.unwrap_or(scheme_end) + i);
    let (base, query) = match query_from {
        Some(q) => (&url[..q], Some(&url[q + 1..])),
        None => (url, None),
    };
    let mut redacted = match at {
        Some(at) if at < base.len() => match base[scheme_end..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &base[..scheme_end], &base[at..]),
            None => base.to_string(),
        },
        _ => base.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<&str> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => "password=***",
                _ => pair,
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&pairs.join("&"));
    }
    redacted
}

/// A driver error as a store error: PostgreSQL's own refusals as [`StoreError::Postgres`]
/// (with their SQLSTATE), a lost or unreachable server as [`StoreError::Unavailable`].
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            // 53xxx: out of resources (disk full, too many connections); 57P0x: shutting down
            // (class 22, data exceptions, refuses a write's values: see `write::write_error`)
            if code.starts_with("53") || code.starts_with("57P") {
                StoreError::Unavailable(format!("{} ({code})", db.message()))
            } else {
                StoreError::Postgres(format!("{} ({code})", db.message()))
            }
        }
        None if e.is_closed() || std::error::Error::source(&e).is_some() => {
            StoreError::Unavailable(e.to_string())
        }
        None => StoreError::Postgres(e.to_string()),
    }
}

/// Whether a failed transaction may succeed when run again: a serialization failure or a
/// deadlock between replicas writing the same sessions.
pub(super) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

impl AdminStore for PgStore {
    fn create_project(&self, name: &str) -> Result<String, StoreError> {
        self.with_client(async |c| admin::create_project(c, name).await)
    }

    fn default_project(&self) -> Result<Option<String>, StoreError> {
        self.with_client(async |c| admin::default_project(c).await)
    }

    fn default_project_or_create(&self, name: &str) -> Result<String, StoreError> {
        self.with_client(async |c| admin::default_project_or_create(c, name).await)
    }

    fn add_api_key(&self, project_id: &str, key_hash: &str) -> Result<bool, AdminError> {
        // (the inner result: what the store refused; the outer: the storage failing)
        self.with_client(async |c| Ok(admin::add_api_key(c, project_id, key_hash).await))?
    }

    fn api_key_count(&self) -> Result<u64, StoreError> {
        self.with_client(async |c| admin::api_key_count(c).await)
    }

    fn project_for_key(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        self.with_client(async |c| admin::project_for_key(c, key_hash).await)
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        self.with_client(async |c| admin::list_api_keys(c).await)
    }

    fn revoke_api_key(&self, id: &str) -> Result<String, AdminError> {
        self.with_client(async |c| Ok(admin::revoke_api_key(c, id).await))?
    }

    fn find_project(&self, id_or_name: &str) -> Result<Option<String>, StoreError> {
        self.with_client(async |c| admin::find_project(c, id_or_name).await)
    }

    fn list_projects(&self) -> Result<Vec<ProjectInfo>, StoreError> {
        self.with_client(async |c| admin::list_projects(c).await)
    }

    fn set_project_retention(
        &self,
        project_id: &str,
        retention: Option<Retention>,
    ) -> Result<(), AdminError> {
        self.with_client(
            async |c| Ok(admin::set_project_retention(c, project_id, retention).await),
        )?
    }

    fn shared_secret(&self, name: &str, candidate: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_client(async |c| admin::shared_secret(c, name, candidate).await)
            .map(Some)
    }
}

impl WriteStore for PgStore {
    fn concurrent_commits(&self) -> usize {
        WRITERS
    }

    fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
        self.with_client(async |c| write::commit(c, &self.partitions, writes).await)
    }

    fn payload_dictionary(&self) -> Option<DictionaryId> {
        *self.dictionary.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReadStore for PgStore {
    fn session_exists(&self, project_id: &str, session_id: &str) -> Result<bool, StoreError> {
        self.with_client(async |c| read::session_exists(c, project_id, session_id).await)
    }

    fn list_sessions(
        &self,
        project_id: &str,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        self.with_client(async |c| list::list_sessions(c, project_id, limit).await)
    }

    fn session_detail(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.with_client(async |c| read::session_detail(c, project_id, session_id, true).await)
    }

    fn session_detail_without_payloads(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.with_client(async |c| read::session_detail(c, project_id, session_id, false).await)
    }

    fn query_sessions(
        &self,
        project_id: &str,
        query: &SessionQuery,
    ) -> Result<SessionPage, QueryError> {
        list::check_cursor(query)?;
        Ok(self.with_client(async |c| list::query_sessions(c, project_id, query).await)?)
    }

    fn event_detail(
        &self,
        project_id: &str,
        session_id: &str,
        event_id: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        self.with_client(async |c| read::event_detail(c, project_id, session_id, event_id).await)
    }

    fn session_changes(
        &self,
        project_id: &str,
        session_id: &str,
        since: Option<&SessionMark>,
        payloads: bool,
    ) -> Result<Option<SessionChanges>, StoreError> {
        self.with_client(async |c| {
            read::session_changes(c, project_id, session_id, since, payloads).await
        })
    }

    fn log_records(
        &self,
        project_id: &str,
        session_id: &str,
        span_id: Option<&str>,
    ) -> Result<Vec<LogRecord>, StoreError> {
        self.with_client(async |c| read::log_records(c, project_id, session_id, span_id).await)
    }

    fn call_refs(&self, project_id: &str, session_id: &str) -> Result<Vec<CallRef>, StoreError> {
        self.with_client(async |c| read::call_refs(c, project_id, session_id).await)
    }

    fn metric_names(&self, project_id: &str) -> Result<Vec<MetricInfo>, StoreError> {
        self.with_client(async |c| read::metric_names(c, project_id).await)
    }

    fn metric_points(
        &self,
        project_id: &str,
        name: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<MetricPoint>, StoreError> {
        self.with_client(async |c| read::metric_points(c, project_id, name, from, to).await)
    }

    fn list_agents(&self, project_id: &str) -> Result<Vec<AgentSummary>, StoreError> {
        self.with_client(async |c| read::list_agents(c, project_id).await)
    }

    fn stats(
        &self,
        project_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<RawStats, StoreError> {
        self.with_client(async |c| read::stats(c, project_id, from, to).await)
    }
}

impl HeldSpanStore for PgStore {
    fn hold_spans(&self, spans: &[HeldSpan], max_bytes: u64) -> Result<bool, StoreError> {
        self.with_client(async |c| held::hold(c, spans, max_bytes).await)
    }

    fn claim_held_spans(
        &self,
        trace_ids: &[String],
        held_since_ms: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ClaimedSpan>, StoreError> {
        self.with_client(async |c| held::claim(c, trace_ids, held_since_ms, now_ms, until_ms).await)
    }

    fn settle_held_spans(&self, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.with_client(async |c| held::settle(c, ids, until_ms).await)
    }

    fn release_held_spans(&self, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.with_client(async |c| held::release(c, ids, until_ms).await)
    }

    fn expire_held_spans(&self, held_before_ms: i64) -> Result<u64, StoreError> {
        self.with_client(async |c| held::expire(c, held_before_ms).await)
    }

    fn held_span_count(&self, held_since_ms: i64) -> Result<u64, StoreError> {
        self.with_client(async |c| held::count(c, held_since_ms).await)
    }
}

impl Store for PgStore {
    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.with_client(async |c| {
            let row = c
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await
                .map_err(pg_error)?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }

    fn check(&self) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.simple_query("SELECT 1").await.map_err(pg_error)?;
            Ok(())
        })
    }

    /// Takes up the dictionary another replica stored, or trains one (one replica at a time,
    /// under an advisory lock) once enough payloads are stored.
    fn train_payload_dictionary(&self) -> Result<bool, StoreError> {
        if self.payload_dictionary().is_some() {
            return Ok(false);
        }
        let samples = match self.with_client(dictionary::stored_or_samples)? {
            dictionary::Found::Stored(id) => {
                self.use_dictionary(Some(id));
                return Ok(false);
            }
            dictionary::Found::TooFewPayloads => return Ok(false),
            dictionary::Found::Samples(samples) => samples,
        };
        // Here, outside the deadline of a database call: training takes a while.
        let bytes = match crate::store::payload::train_dictionary(&samples) {
            Ok(bytes) => bytes,
            // Too few or too uniform samples: try again later.
            Err(e) => {
                tracing::debug!(error = %e, "no payload dictionary trained");
                return Ok(false);
            }
        };
        let (id, trained) =
            self.with_client(async |client| dictionary::store_unless_stored(client, &bytes).await)?;
        self.use_dictionary(Some(id));
        if trained == dictionary::Trained::Here {
            tracing::info!(dictionary = id.0, "trained a dictionary for event payloads");
        }
        Ok(trained == dictionary::Trained::Here)
    }
}

#[cfg(test)]
mod tests {
    use super::redact;
    use super::test_support::temp_store;
    use crate::store::{AdminStore, WriteStore};

    #[test]
    fn passes_the_store_conformance_suite() {
        let (store, _db) = temp_store();
        crate::store::conformance::writes_are_idempotent_and_project_scoped(&store);
        crate::store::conformance::projects_have_their_own_session_ids(&store);
        crate::store::conformance::session_changes_hand_out_what_was_stored_after_a_mark(&store);
        crate::store::conformance::held_spans_are_claimed_once_by_trace(&store);
        crate::store::conformance::an_event_is_one_by_session_and_id_whatever_its_start_time(
            &store,
        );
    }

    #[test]
    fn reconnecting_keeps_everything_and_migrations_run_once() {
        let (store, db) = temp_store();
        let project = store.create_project("p").unwrap();
        store.add_api_key(&project, "hash").unwrap();
        drop(store);
        let store = db.connect();
        assert_eq!(
            store.project_for_key("hash").unwrap(),
            Some(project.clone())
        );
        assert_eq!(store.default_project().unwrap(), Some(project));
    }

    #[test]
    fn text_postgresql_cannot_hold_is_refused_as_invalid_alone() {
        let (store, _db) = temp_store();
        let project = store.create_project("p").unwrap();
        let session = crate::store::SessionRecord {
            id: "s1".into(),
            start_time: Some("2026-12-01T00:00:00.000000+00:00".into()),
            ..Default::default()
        };
        let event = |id: &str, name: &str| crate::store::EventRecord {
            id: id.into(),
            session_id: "s1".into(),
            kind: "tools".into(),
            name: Some(name.into()),
            start_time: "2026-12-01T00:00:01.000000+00:00".into(),
            attributes: serde_json::json!({}),
            ..Default::default()
        };
        let events = |e| crate::store::Write::CreateEvents {
            project_id: project.clone(),
            session_id: "s1".into(),
            events: vec![e],
        };
        let results = store
            .commit(&[
                crate::store::Write::CreateSession {
                    project_id: project.clone(),
                    session,
                },
                events(event("bad", "nul\0here")),
                events(event("good", "fine")),
            ])
            .unwrap();
        assert!(results[0].is_ok());
        assert!(
            matches!(&results[1], Err(crate::store::WriteError::Invalid(m)) if m.contains("cannot store")),
            "{:?}",
            results[1]
        );
        assert!(
            matches!(results[2], Ok(crate::store::Outcome::Inserted(1))),
            "{:?}",
            results[2]
        );
    }

    #[test]
    fn a_password_is_not_shown() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(
            redact("postgres://me@db/x?sslmode=require&password=secret&application_name=a"),
            "postgres://me@db/x?sslmode=require&password=***&application_name=a"
        );
        assert_eq!(
            redact("postgres://me:secret@db/x?sslrootcert=/certs/a@b.pem"),
            "postgres://me:***@db/x?sslrootcert=/certs/a@b.pem"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redact("postgres://me:pa?ss@db/x?sslmode=require"),
            "postgres://me:***@db/x?sslmode=require"
        );
    }
}
