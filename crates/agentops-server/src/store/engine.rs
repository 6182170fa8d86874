//! What a storage engine provides, one trait per concern.

use super::{
    payload, AgentSummary, ApiKeyInfo, CallRef, ClaimedSpan, EventRow, HeldSpan, LogRecord,
    MetricInfo, MetricPoint, Outcome, ProjectInfo, RawStats, Retention, SessionChanges,
    SessionDetail, SessionMark, SessionPage, SessionQuery, SessionSummary, StoreError, Write,
};
use super::{AdminError, QueryError, WriteError};

/// Projects, API keys and the secrets servers share: what the CLI's `projects` and `keys`
/// commands and the server's authentication ask.
pub trait AdminStore: Send + Sync {
    /// Creates a project; returns its id.
    fn create_project(&self, name: &str) -> Result<String, StoreError>;

    /// The first project created, if any.
    fn default_project(&self) -> Result<Option<String>, StoreError>;

    /// The first project created, creating it as `name` when there is none: at most one even
    /// when several servers on one store start at once.
    fn default_project_or_create(&self, name: &str) -> Result<String, StoreError> {
        match self.default_project()? {
            Some(project) => Ok(project),
            None => self.create_project(name),
        }
    }

    /// Stores an API key hash for a project; `false` if that hash was already stored for it,
    /// [`AdminError::Forbidden`] if for another project.
    fn add_api_key(&self, project_id: &str, key_hash: &str) -> Result<bool, AdminError>;

    /// How many API keys exist.
    fn api_key_count(&self) -> Result<u64, StoreError>;

    /// The project an API key hash belongs to.
    fn project_for_key(&self, key_hash: &str) -> Result<Option<String>, StoreError>;

    /// Every API key (never the key itself: its id is the start of its hash), oldest first.
    fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError>;

    /// Deletes the one key whose id (hash) starts with `id`; the key's project.
    /// [`AdminError::NotFound`] when none matches, [`AdminError::Invalid`] when several do or
    /// `id` is no key id.
    fn revoke_api_key(&self, id: &str) -> Result<String, AdminError>;

    /// The project with this id or name.
    fn find_project(&self, id_or_name: &str) -> Result<Option<String>, StoreError>;

    /// Every project, oldest first, with its own retention.
    fn list_projects(&self) -> Result<Vec<ProjectInfo>, StoreError>;

    /// Sets a project's own retention (`None`: follow the server's); [`AdminError::NotFound`]
    /// when there is no such project.
    fn set_project_retention(
        &self,
        project_id: &str,
        retention: Option<Retention>,
    ) -> Result<(), AdminError>;

    /// The secret named `name` that every server on this store shares (the JWT signing
    /// secret): the one stored, or `candidate` once stored as it (the first server to start
    /// picks it). `None`: this store keeps no secrets, and the server keeps its own (the
    /// embedded store's server has its data directory for that).
    fn shared_secret(&self, name: &str, candidate: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (name, candidate);
        Ok(None)
    }
}

/// The write path: what the writer thread ([`crate::writer`]) needs, and nothing else.
pub trait WriteStore: Send + Sync {
    /// Applies `writes` in one transaction (group commit). Each write gets its own result; the
    /// outer error means nothing was committed. When the storage cannot be written (disk full),
    /// nothing is committed and every write is answered [`StoreError::Unwritable`].
    fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, WriteError>>, StoreError>;

    /// The dictionary new payloads are packed with ([`payload`]), if the store has one.
    fn payload_dictionary(&self) -> Option<payload::DictionaryId> {
        None
    }

    /// How many [`WriteStore::commit`]s may usefully run at once (the writer threads'
    /// number): one for an engine with a single writer; more for a database server, whose
    /// transactions on different sessions proceed side by side.
    fn concurrent_commits(&self) -> usize {
        1
    }
}

/// What the read API and the dashboard ask of a project's sessions, events, metrics and
/// statistics. Every method is scoped by project.
pub trait ReadStore: Send + Sync {
    /// Whether the project has a session with this id.
    fn session_exists(&self, project_id: &str, session_id: &str) -> Result<bool, StoreError>;

    /// The project's sessions, newest first.
    fn list_sessions(
        &self,
        project_id: &str,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StoreError>;

    /// One session of the project, with its events.
    fn session_detail(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError>;

    /// Like [`ReadStore::session_detail`], with what only an event's own detail shows left out
    /// of the events: their payloads (prompt, completion, params, returns; attributes read as
    /// `{}`), trace id, status message, agent, provider, cached and reasoning tokens. What the
    /// session's tree is made of stays: ids, parents, spans, kind, name, times, status, model,
    /// input and output tokens, cost and tool calls.
    fn session_detail_without_payloads(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.session_detail(project_id, session_id)
    }

    /// A filtered, ordered page of the project's sessions.
    fn query_sessions(
        &self,
        project_id: &str,
        query: &SessionQuery,
    ) -> Result<SessionPage, QueryError>;

    /// One event of one of the project's sessions.
    fn event_detail(
        &self,
        project_id: &str,
        session_id: &str,
        event_id: &str,
    ) -> Result<Option<EventRow>, StoreError>;

    /// A session of the project and what of it was stored after `since`: `None` when the
    /// project has no such session. For a live view that polls: events, OTLP log records and
    /// uploaded logs are insert-only (a row, once stored, never changes), so what a reader has
    /// seen of them is a [`SessionMark`], and a later read needs only the rows stored after it.
    ///
    /// Every row of those three tables has a number (SQLite: the `rowid` of `events`, the
    /// `seq` of `otel_logs` and of `logs`) that never changes while the row exists and that is
    /// larger than every number visible when it was stored: a row that becomes visible after
    /// a mark was handed out has a number above that mark's `last`. (An engine whose numbers
    /// can become visible out of order, such as sequences used by concurrent transactions, must
    /// not hand out a `last` above a number whose transaction may still commit.)
    ///
    /// Everything is read from one consistent snapshot. The answer's `mark` holds, for each
    /// table, the highest number among the session's rows (0 when none) and how many rows of
    /// the session it holds.
    ///
    /// `since` is valid when, for each of the three tables, `since.last` is at most the
    /// session's highest number now (0 when it has none) and the session has exactly
    /// `since.count` rows numbered at most `since.last`. Then the answer is not `whole`:
    /// `detail.events` are the session's events numbered above `since.events.last`, by start
    /// time then id (payloads as for `payloads`, see below); `detail.log_records` those
    /// numbered above `since.log_records.last`, by time then number, at most
    /// [`MAX_SESSION_LOG_RECORDS`](super::MAX_SESSION_LOG_RECORDS), `event_id` not filled; `detail.logs` the uploaded logs
    /// numbered above `since.logs.last`, oldest first; and `outline` holds every event of the
    /// session, by start time then id, unless no event and no log record is new.
    ///
    /// Otherwise (no `since`, or one that is not valid: rows were deleted, by retention for
    /// example, or renumbered, by a `VACUUM` of a table whose numbers are not stable), the
    /// answer is `whole`: `detail` is what [`ReadStore::session_detail`] (with `payloads`) or
    /// [`ReadStore::session_detail_without_payloads`] (without) answers, and `outline` is empty.
    ///
    /// `payloads`: whether the events carry every field, or only what the session's tree is
    /// made of (as [`ReadStore::session_detail_without_payloads`] reads them).
    fn session_changes(
        &self,
        project_id: &str,
        session_id: &str,
        since: Option<&SessionMark>,
        payloads: bool,
    ) -> Result<Option<SessionChanges>, StoreError>;

    /// The OTLP log records of a session by time (the oldest
    /// [`MAX_SESSION_LOG_RECORDS`](super::MAX_SESSION_LOG_RECORDS)), or only those of
    /// one span of it; their `event_id` is not filled.
    fn log_records(
        &self,
        project_id: &str,
        session_id: &str,
        span_id: Option<&str>,
    ) -> Result<Vec<LogRecord>, StoreError>;

    /// The events of a session that name tool calls, for linking them (see
    /// [`crate::api::links`]).
    fn call_refs(&self, project_id: &str, session_id: &str) -> Result<Vec<CallRef>, StoreError>;

    /// The metrics the project has points of, by name.
    fn metric_names(&self, project_id: &str) -> Result<Vec<MetricInfo>, StoreError>;

    /// A metric's points in `[from, to)` (stored timestamp form) by time, at most
    /// [`MAX_METRIC_POINTS`](super::MAX_METRIC_POINTS) (the oldest).
    fn metric_points(
        &self,
        project_id: &str,
        name: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<MetricPoint>, StoreError>;

    /// The agents seen in the project (registered or named by events), with session counts.
    fn list_agents(&self, project_id: &str) -> Result<Vec<AgentSummary>, StoreError>;

    /// Statistics of sessions and events started in `[from, to)` (stored timestamp form).
    fn stats(
        &self,
        project_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<RawStats, StoreError>;
}

/// Spans sent without credentials, held until an authenticated request of their trace
/// claims them ([`crate::ingest::held`]).
pub trait HeldSpanStore: Send + Sync {
    /// Holds `spans`, all of them or, when they and the spans held already would take more
    /// than `max_bytes`, none: whether they were held. Several servers holding at once stay
    /// within the limit together.
    fn hold_spans(&self, spans: &[HeldSpan], max_bytes: u64) -> Result<bool, StoreError>;

    /// Claims the spans of the traces `trace_ids` held at or after `held_since_ms` that no
    /// claim holds at `now_ms`, until `until_ms`; them, in the order they were held. A claimed
    /// span stays in the store until it is settled ([`HeldSpanStore::settle_held_spans`]:
    /// stored with the claimer's write), released ([`HeldSpanStore::release_held_spans`]: that
    /// write failed) or its claim lapses (its server died before either): so a span is never
    /// lost between its claim and its write. Two servers claiming one trace at once take each
    /// span once between them (until a claim lapses: then the write's ids make the second
    /// store nothing twice).
    fn claim_held_spans(
        &self,
        trace_ids: &[String],
        held_since_ms: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ClaimedSpan>, StoreError>;

    /// Deletes the claimed spans `ids` of the claim until `until_ms` (their claimer stored
    /// them). Ids no longer held, or claimed again by another since that claim lapsed, are
    /// left alone.
    fn settle_held_spans(&self, ids: &[i64], until_ms: i64) -> Result<(), StoreError>;

    /// Makes the claimed spans `ids` of the claim until `until_ms` claimable again at once
    /// (their claimer could not store them). Ids no longer held, or claimed again by another,
    /// are left alone.
    fn release_held_spans(&self, ids: &[i64], until_ms: i64) -> Result<(), StoreError>;

    /// Deletes the spans held before `held_before_ms`; how many.
    fn expire_held_spans(&self, held_before_ms: i64) -> Result<u64, StoreError>;

    /// How many spans held at or after `held_since_ms` wait to be stored (claimed or not).
    fn held_span_count(&self, held_since_ms: i64) -> Result<u64, StoreError>;
}

/// A storage engine: every concern above, and the upkeep of the store as a whole. Methods
/// block; async callers use `spawn_blocking` or the writer thread. Code that needs one concern
/// only takes that trait (the writer a [`WriteStore`]), so that a test double implements
/// that much.
pub trait Store: AdminStore + WriteStore + ReadStore + HeldSpanStore + 'static {
    /// How many bytes the store takes on disk (SQLite: the file and its WAL; PostgreSQL: the
    /// database), for the `agentops_database_bytes` metric.
    fn size_bytes(&self) -> Result<u64, StoreError>;

    /// Whether the store answers now (a load balancer's health check asks through
    /// `GET /health`); an embedded store always does.
    fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Trains a payload dictionary on the stored payloads, once there are enough of them and
    /// none was trained yet; whether it made one. Slow (a fraction of a second): call it off
    /// the async threads.
    fn train_payload_dictionary(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
}
