//! The data model and the traits every storage engine implements ([`Store`] and the one per
//! concern it is made of: [`AdminStore`], [`WriteStore`], [`ReadStore`], [`HeldSpanStore`]).
//!
//! One model serves every ingest path: v2 events and OTLP spans both become [`EventRecord`]s in a
//! session, sessions carry end state and tags, agents and uploaded logs hang off a session.
//! Everything is scoped by project: no read or write ever crosses projects.
//!
//! Writes arrive as batches of [`Write`]s (see [`crate::writer`]) and are committed in one
//! transaction; each write succeeds or fails on its own, and all are idempotent (sessions by id,
//! events by `(project, session, id)`, agents by `(project, id)`), so a client retry never
//! duplicates anything. Events are keyed within their session because OTLP span ids are only
//! unique within a trace.
//!
//! Engines share what does not depend on their SQL: the aggregates a write adds beside its
//! events (`rollup`), the event columns in their one order (`columns`) and how JSON payloads are
//! stored and read back (`json`).

mod changes;
mod columns;
#[cfg(test)]
pub(crate) mod conformance;
mod decode;
#[cfg(test)]
pub(crate) mod dictionary_checks;
mod engine;
mod error;
pub(crate) mod fingerprint;
mod json;
mod list_sql;
pub mod migrate;
pub mod payload;
pub mod postgres;
#[cfg(test)]
pub(crate) mod read_checks;
mod rollup;
mod session_merge;
pub mod sqlite;
mod stats;

pub use engine::{AdminStore, HeldSpanStore, ReadStore, Store, WriteStore};
pub use error::{AdminError, QueryError, StoreError, WriteError};

use agentops_core::EndState;
use json::raw_json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// A stored `retention_days` as a retention: `NULL` the server's (`Some(None)`), `0` forever,
/// `N` days; `None` for a value no server writes.
pub(crate) fn retention_from_days(days: Option<i64>) -> Option<Option<Retention>> {
    match days {
        None => Some(None),
        Some(0) => Some(Some(Retention::Forever)),
        Some(days) => {
            let days = u32::try_from(days).ok()?;
            Some(Some(Retention::Days(days)))
        }
    }
}

/// A key id as `agentops keys revoke` takes it (the start of the key's hash, as `agentops
/// keys list` shows it), lowercased; [`AdminError::Invalid`] unless it is at least 8 hex digits.
pub(crate) fn key_id_prefix(id: &str) -> Result<String, AdminError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AdminError::Invalid(format!(
            "{id:?} is not a key id: give at least 8 hex digits, as `agentops keys list` shows"
        )));
    }
    Ok(id)
}

/// How long sessions are kept: the server's `--retention-days`, or a project's own setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Never deleted (the default).
    #[default]
    Forever,
    /// Deleted once their end (their start, if they never ended) is this many days old.
    Days(u32),
}

/// The most days a retention may be (about 270 years: beyond any stored timestamp).
pub const MAX_RETENTION_DAYS: u32 = 100_000;

/// A retention that is neither `forever` nor a number of days in range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retention {0:?}: expected a number of days from 1 to {MAX_RETENTION_DAYS}, or `forever`")]
pub struct RetentionParseError(String);

impl std::str::FromStr for Retention {
    type Err = RetentionParseError;

    /// `forever`, or a number of days (at least 1).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("forever") {
            return Ok(Retention::Forever);
        }
        match text.parse::<u32>() {
            Ok(days) if (1..=MAX_RETENTION_DAYS).contains(&days) => Ok(Retention::Days(days)),
            _ => Err(RetentionParseError(text.to_owned())),
        }
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retention::Forever => f.write_str("forever"),
            Retention::Days(1) => f.write_str("1 day"),
            Retention::Days(days) => write!(f, "{days} days"),
        }
    }
}

impl Retention {
    /// The number of days, `None` for forever.
    pub fn days(self) -> Option<u32> {
        match self {
            Retention::Forever => None,
            Retention::Days(days) => Some(days),
        }
    }

    /// The cutoff at `now`, in stored timestamp form: sessions that ended before it are
    /// deleted. `None` for forever.
    pub fn cutoff(self, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let days = self.days()?;
        let cutoff = now.checked_sub_signed(chrono::TimeDelta::days(i64::from(days)))?;
        Some(agentops_core::timestamp::format(cutoff))
    }
}

/// A project as listed by `agentops projects list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
    /// Its own retention; `None` follows the server's `--retention-days`.
    pub retention: Option<Retention>,
}

impl ProjectInfo {
    /// The retention that applies to the project on a server whose default is `server`.
    pub fn effective_retention(&self, server: Retention) -> Retention {
        self.retention.unwrap_or(server)
    }
}

/// A session, or the fields of one to set. `None` fields keep what is stored; `tags` replace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session id (a UUID for v2; the trace id as a UUID, or `session.id`, for OTLP).
    pub id: String,
    /// A display name (the name of an OTLP session span).
    pub name: Option<String>,
    /// Start time, `agentops_core::timestamp::format` form; the earliest one wins.
    pub start_time: Option<String>,
    /// End time.
    pub end_time: Option<String>,
    /// How it ended.
    pub end_state: Option<EndState>,
    /// Why it ended that way.
    pub end_state_reason: Option<String>,
    /// Tags; replace the stored set when given.
    pub tags: Option<Vec<String>>,
    /// The client's host environment, free-form.
    pub host_env: Option<Value>,
    /// A link to a recording.
    pub video: Option<String>,
    /// How sure `name` is (see [`crate::mapping::names`]): a stored name is replaced only by one
    /// of a higher rank (or an equal rank of an explicit name).
    #[serde(default)]
    pub name_rank: u8,
    /// A plain trace's root span, once it ended: it ends the session after the quiet window.
    #[serde(default)]
    pub root_end: Option<RootEnd>,
    /// The latest end time of the events written with this record.
    #[serde(default)]
    pub last_event_end: Option<String>,
}

/// How the root span of a trace without an AgentOps session span ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootEnd {
    /// Its end time.
    pub end_time: String,
    /// Whether its status is an error (the session then ends as `Fail`).
    pub failed: bool,
    /// Its status message when it failed.
    pub reason: Option<String>,
}

/// How one event's tool call links to another event (see [`crate::api::links`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolLink {
    /// The tool call's id.
    pub call_id: String,
    /// The other event.
    pub event_id: String,
    /// `calls`: this LLM call asked for the tool run by the other event; `called_by`: this tool
    /// ran for the other event's call.
    pub direction: String,
}

/// One OTLP metric data point, as stored and read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The metric's name.
    pub name: String,
    /// `sum`, `gauge`, `histogram`, `exponential_histogram` or `summary`.
    pub kind: String,
    /// Its unit (`s`, `{token}`, …).
    pub unit: Option<String>,
    /// `delta` or `cumulative` (sums and histograms).
    pub temporality: Option<String>,
    /// Whether a sum only grows.
    pub monotonic: Option<bool>,
    /// The point's attributes, with its resource's `service.name`.
    pub attributes: Value,
    /// Start of the interval it covers (cumulative: since when).
    pub start_time: Option<String>,
    /// When it was taken.
    pub time: String,
    /// A sum's or gauge's value.
    pub value: Option<f64>,
    /// A histogram's or summary's count.
    pub count: Option<u64>,
    /// Their sum.
    pub sum: Option<f64>,
    /// Their least value.
    pub min: Option<f64>,
    /// Their greatest value.
    pub max: Option<f64>,
    /// Buckets: `{"bounds", "counts"}`, `{"scale", "zero_count", "positive", "negative"}` or
    /// `{"quantiles"}`.
    pub buckets: Option<Value>,
}

/// A metric the project has points of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    /// Its name.
    pub name: String,
    /// Its kind (see [`MetricPoint::kind`]).
    pub kind: String,
    /// Its unit.
    pub unit: Option<String>,
    /// How many points are stored.
    pub points: i64,
    /// The newest point's time.
    pub last_time: String,
}

/// The most points one metrics query reads.
pub const MAX_METRIC_POINTS: usize = 200_000;

/// The most log records a session detail carries (the oldest ones).
pub const MAX_SESSION_LOG_RECORDS: usize = 10_000;

/// An event that names tool calls (see [`EventRecord::call_ids`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRef {
    /// The event.
    pub event_id: String,
    /// Its kind (`llms` asks for calls; others run them).
    pub kind: String,
    /// Its span, hex.
    pub span_id: Option<String>,
    /// The call ids, space-separated.
    pub call_ids: String,
}

/// An OTLP log record, as stored and read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The session it belongs to.
    #[serde(skip)]
    pub session_id: String,
    /// When it happened (its time, else when it was observed).
    pub time: String,
    /// Its severity text, else the severity number's name.
    pub severity: Option<String>,
    /// The event name (`gen_ai.choice`, …) for event records.
    pub event_name: Option<String>,
    /// Its body.
    pub body: Value,
    /// Its attributes, an object.
    pub attributes: Value,
    /// The trace, hex.
    pub trace_id: Option<String>,
    /// The span, hex.
    pub span_id: Option<String>,
    /// The event of that span in the session, when stored (filled when read).
    #[serde(default)]
    pub event_id: Option<String>,
    /// The ids of the tool calls its message asks for (GenAI `gen_ai.choice` records).
    #[serde(skip)]
    pub call_ids: Option<String>,
}

/// One event (a v2 event or an OTLP span), as stored. `P` is how its JSON payloads are held:
/// parsed values when written ([`EventRecord`]), the stored JSON text when read back
/// ([`EventRow`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRecord<P = Value> {
    /// Unique within its session: the v2 event id, the span's `event.id`, or the span id in hex.
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// `llms`, `tools`, `actions`, `errors`, or another kind (`agent`, `task`, `workflow`, …).
    pub kind: String,
    /// What it is called.
    pub name: Option<String>,
    /// The parent event or span (an error's `trigger_event`, a span's parent span id in hex).
    pub parent_id: Option<String>,
    /// OTLP trace id, hex.
    pub trace_id: Option<String>,
    /// OTLP span id, hex.
    pub span_id: Option<String>,
    /// Start time (`agentops_core::timestamp::format` form, so text order is time order).
    pub start_time: String,
    /// End time.
    pub end_time: Option<String>,
    /// `ok`, `error`, or `None` when unset.
    pub status: Option<String>,
    /// The error message, when the status says error.
    pub status_message: Option<String>,
    /// The agent that did it.
    pub agent_id: Option<String>,
    /// The LLM model.
    pub model: Option<String>,
    /// The LLM provider (`openai`, `anthropic`, …).
    pub provider: Option<String>,
    /// The prompt: a string or chat messages.
    pub prompt: Option<P>,
    /// The completion: a string or messages.
    pub completion: Option<P>,
    /// What it was given.
    pub params: Option<P>,
    /// What it gave back.
    pub returns: Option<P>,
    /// Input tokens, cached ones included.
    pub input_tokens: Option<i64>,
    /// Output tokens, reasoning ones included.
    pub output_tokens: Option<i64>,
    /// Input tokens read from the prompt cache.
    pub cached_tokens: Option<i64>,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: Option<i64>,
    /// Cost in US dollars: the client's, else computed from the price table.
    pub cost: Option<f64>,
    /// Every other attribute, as a JSON object.
    pub attributes: P,
    /// The tool calls it is about, space-separated: the calls an LLM call asks for, or the call
    /// a tool execution answers.
    #[serde(skip)]
    pub call_ids: Option<String>,
    /// Its input and output as chat messages in one model for every producer (see
    /// [`crate::mapping::messages`]); derived when read, not stored.
    #[serde(default, skip_deserializing)]
    pub messages: Option<crate::mapping::messages::Messages>,
    /// Its links to other events through tool calls; derived when read, not stored.
    #[serde(default, skip_deserializing)]
    pub tool_links: Vec<ToolLink>,
    /// Whether it failed, by the one rule the totals use too ([`is_failed`]); derived when
    /// read, so that no client needs a rule of its own.
    #[serde(default, skip_deserializing)]
    pub failed: bool,
    /// The payloads above packed for storage by [`Write::pack`], on the request's thread, which
    /// then leaves those fields empty; `None` until then, and when read back.
    #[serde(skip)]
    pub packed: Option<payload::PackedPayloads>,
}

/// One event as read back, its JSON payloads kept as the stored JSON text ([`RawValue`])
/// instead of parsed values, so that answering a session of thousands of events never builds
/// (and re-serialises) their payloads. Serialises exactly like the [`EventRecord`] it was
/// stored from.
pub type EventRow = EventRecord<Box<RawValue>>;

impl From<&EventRecord> for EventRow {
    fn from(e: &EventRecord) -> Self {
        // `null` payloads are not stored (they read back as `None`)
        let payload = |v: &Option<Value>| v.as_ref().filter(|v| !v.is_null()).map(raw_json);
        Self {
            id: e.id.clone(),
            session_id: e.session_id.clone(),
            kind: e.kind.clone(),
            name: e.name.clone(),
            parent_id: e.parent_id.clone(),
            trace_id: e.trace_id.clone(),
            span_id: e.span_id.clone(),
            start_time: e.start_time.clone(),
            end_time: e.end_time.clone(),
            status: e.status.clone(),
            status_message: e.status_message.clone(),
            agent_id: e.agent_id.clone(),
            model: e.model.clone(),
            provider: e.provider.clone(),
            prompt: payload(&e.prompt),
            completion: payload(&e.completion),
            params: payload(&e.params),
            returns: payload(&e.returns),
            input_tokens: e.input_tokens,
            output_tokens: e.output_tokens,
            cached_tokens: e.cached_tokens,
            reasoning_tokens: e.reasoning_tokens,
            cost: e.cost,
            attributes: raw_json(&e.attributes),
            packed: None,
            call_ids: e.call_ids.clone(),
            messages: None,
            tool_links: Vec::new(),
            failed: is_failed(&e.kind, e.status.as_deref()),
        }
    }
}

/// Whether an event counts as failed: its status says `error`, or it is an error event (the
/// v2 kind `errors`). Every total, filter and answer uses this rule.
pub fn is_failed(kind: &str, status: Option<&str>) -> bool {
    status == Some("error") || kind == "errors"
}

/// One write, applied atomically on its own within a batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// `create_session`: creates the session, or (a retry) updates it. Session ids are the
    /// project's own: another project may use the same id for a session of its own.
    CreateSession {
        /// Owner.
        project_id: String,
        /// The session.
        session: SessionRecord,
    },
    /// `update_session`: sets the given fields of an existing session; answers its cost.
    UpdateSession {
        /// Owner.
        project_id: String,
        /// The fields to set.
        session: SessionRecord,
    },
    /// `create_events`: events of one existing session.
    CreateEvents {
        /// Owner.
        project_id: String,
        /// The session all the events belong to.
        session_id: String,
        /// The events; ones already stored are left as they are.
        events: Vec<EventRecord>,
    },
    /// `create_agent`.
    CreateAgent {
        /// Owner.
        project_id: String,
        /// The session the agent was registered in.
        session_id: String,
        /// The agent's id.
        agent_id: String,
        /// Its name.
        name: String,
    },
    /// OTLP spans: sessions are created on first sight; answers how many spans were new.
    IngestSpans {
        /// Owner.
        project_id: String,
        /// Session fields gathered from the spans (start times, session spans' end state, tags).
        sessions: Vec<SessionRecord>,
        /// The spans.
        spans: Vec<EventRecord>,
    },
    /// `/v4/logs/upload/`: captured output of a trace.
    AppendLog {
        /// Owner.
        project_id: String,
        /// The session (trace) it belongs to.
        session_id: String,
        /// The text.
        body: String,
    },
    /// Retention: deletes sessions of the project whose end (their start, if they never
    /// ended; their creation, if they have neither) is before `before`, oldest first, with
    /// everything that hangs off them (events, logs, agents, facets), taking what the deleted
    /// events added off the session and hourly totals. At most about `max_rows` rows go in one
    /// write, so a session with more events is deleted over several (its totals match what
    /// is left in between); [`Outcome::Expired`] says what went, nothing once none is left.
    ExpireSessions {
        /// Owner.
        project_id: String,
        /// The cutoff, stored timestamp form.
        before: String,
        /// The cutoff of the server's own retention at this pass (`None`: it keeps
        /// everything), which applies to the projects without one of their own: an engine that
        /// drops whole time partitions needs every project's cutoff.
        server_before: Option<String>,
        /// Rows deleted at most (about: a session's few agents and facets go with it).
        max_rows: usize,
    },
    /// OTLP log records; answers how many were new (a resent record is stored once).
    IngestLogs {
        /// Owner.
        project_id: String,
        /// The records.
        records: Vec<LogRecord>,
    },
    /// OTLP metric data points; answers how many were new (a resent point is stored once).
    IngestMetrics {
        /// Owner.
        project_id: String,
        /// The points.
        points: Vec<MetricPoint>,
    },
    /// Ends, in every project, the plain traces whose root span has ended and whose last span
    /// arrived before `before` (server time): `Fail` when the root span failed, else
    /// `Success`. Answers how many it ended ([`Outcome::Inserted`]).
    CloseQuietSessions {
        /// The cutoff, stored timestamp form.
        before: String,
    },
}

/// What a session row weighs in a write's size, against an event's 1: its upsert touches the
/// sessions table, its five list indexes and its facets (a request of 500 new sessions took
/// about as long to commit as one of 2,500 events of one session).
pub const SESSION_ROW_WEIGHT: usize = 4;

impl Write {
    /// Packs the payloads of the write's events for storage ([`payload::PackedPayloads`]),
    /// so that the writer only binds bytes: run on the request's thread, before the write is
    /// queued. Events already packed are left as they are.
    pub fn pack(&mut self, dictionary: Option<payload::DictionaryId>) {
        let events = match self {
            Write::CreateEvents { events, .. } => events,
            Write::IngestSpans { spans, .. } => spans,
            _ => return,
        };
        for event in events.iter_mut().filter(|e| e.packed.is_none()) {
            event.packed = Some(payload::PackedPayloads::pack(
                event.prompt.take().as_ref(),
                event.completion.take().as_ref(),
                event.params.take().as_ref(),
                event.returns.take().as_ref(),
                &std::mem::take(&mut event.attributes),
                dictionary,
            ));
        }
    }

    /// The rows the write stores, a session counting [`SESSION_ROW_WEIGHT`] rows: the
    /// measure of its work in a transaction.
    pub fn rows(&self) -> usize {
        match self {
            Write::CreateEvents { events, .. } => events.len().max(1),
            Write::IngestSpans {
                sessions, spans, ..
            } => (SESSION_ROW_WEIGHT * sessions.len() + spans.len()).max(1),
            Write::ExpireSessions { max_rows, .. } => (*max_rows).max(1),
            Write::IngestLogs { records, .. } => records.len().max(1),
            Write::IngestMetrics { points, .. } => points.len().max(1),
            _ => 1,
        }
    }

    /// The write as pieces of at most about `rows` rows (as [`Write::rows`] counts them), to
    /// apply in order, each in its own transaction if need be (their outcomes add up to the
    /// write's). Only event batches are cut; each of an OTLP batch's sessions goes with the
    /// first piece that has spans of it, so a batch of many sessions is cut into fewer spans a
    /// piece.
    pub fn into_pieces(self, rows: usize) -> Vec<Write> {
        let rows = rows.max(1);
        let weighted = self.rows();
        match self {
            Write::CreateEvents {
                project_id,
                session_id,
                events,
            } if events.len() > rows => chunks(events, rows)
                .map(|events| Write::CreateEvents {
                    project_id: project_id.clone(),
                    session_id: session_id.clone(),
                    events,
                })
                .collect(),
            Write::IngestSpans {
                project_id,
                sessions,
                spans,
            } if weighted > rows => {
                // Spans a piece, so that a piece's spans and the sessions they bring weigh
                // about `rows`.
                let per_piece = (rows * spans.len() / weighted).max(1);
                // Each session goes with the first piece that has spans of it.
                let mut sessions: std::collections::HashMap<String, SessionRecord> = sessions
                    .into_iter()
                    .map(|session| (session.id.clone(), session))
                    .collect();
                let mut pieces: Vec<Write> = chunks(spans, per_piece)
                    .map(|spans| {
                        let mut own = Vec::new();
                        for span in &spans {
                            if let Some(session) = sessions.remove(&span.session_id) {
                                own.push(session);
                            }
                        }
                        Write::IngestSpans {
                            project_id: project_id.clone(),
                            sessions: own,
                            spans,
                        }
                    })
                    .collect();
                // Sessions without spans here (none are made so) go with the first piece.
                if let Some(Write::IngestSpans {
                    sessions: first, ..
                }) = pieces.first_mut()
                {
                    first.extend(sessions.into_values());
                }
                pieces
            }
            whole => vec![whole],
        }
    }
}

/// `items` in consecutive chunks of `size`.
fn chunks<T>(items: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut items = items.into_iter().peekable();
    std::iter::from_fn(move || {
        items.peek()?;
        Some(items.by_ref().take(size).collect())
    })
}

impl Outcome {
    /// The outcome of a write whose pieces had `self` and then `next`.
    pub fn and(self, next: Outcome) -> Outcome {
        match (self, next) {
            (Outcome::Inserted(a), Outcome::Inserted(b)) => Outcome::Inserted(a + b),
            (_, next) => next,
        }
    }
}

/// What a successful write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done.
    Done,
    /// The session's total cost after the write, in US dollars.
    SessionCost(f64),
    /// How many new rows were stored (the rest were already there).
    Inserted(usize),
    /// What a [`Write::ExpireSessions`] deleted: whole sessions, and rows in all (events,
    /// logs, agents, facets and the sessions themselves). Both are 0 once nothing is left.
    Expired {
        /// Sessions deleted with everything of theirs.
        sessions: usize,
        /// Rows deleted.
        rows: usize,
    },
}

/// A row of the session list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Start time.
    pub start_time: Option<String>,
    /// End time.
    pub end_time: Option<String>,
    /// `Success`, `Fail`, `Indeterminate`.
    pub end_state: Option<String>,
    /// Why.
    pub end_state_reason: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Number of stored events.
    pub event_count: i64,
    /// Sum of input tokens.
    pub input_tokens: i64,
    /// Sum of output tokens.
    pub output_tokens: i64,
    /// Total cost, US dollars.
    pub cost: f64,
    /// Number of events that failed (status `error`, or kind `errors`).
    #[serde(default)]
    pub error_count: i64,
    /// Whether any event failed.
    #[serde(default)]
    pub has_errors: bool,
    /// End time minus start time in milliseconds; `None` while running.
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// `Running`, `Success`, `Fail` or `Indeterminate` (see [`session_state`]); derived when
    /// read, so that no client needs a rule of its own.
    #[serde(default)]
    pub state: String,
}

/// A session's state for display: `Running` while it has no end time and no decisive end
/// state (the 0.3 SDK creates its sessions as `Indeterminate`), else its end state
/// (`Indeterminate` when it ended without one). The `end_state=running` filter is the same rule.
pub fn session_state(end_time: Option<&str>, end_state: Option<&str>) -> &'static str {
    match (end_time, end_state) {
        (None, None | Some("Indeterminate")) => "Running",
        (_, Some("Success")) => "Success",
        (_, Some("Fail")) => "Fail",
        _ => "Indeterminate",
    }
}

/// An agent of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// A session with everything stored about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionDetail {
    /// The list fields.
    #[serde(flatten)]
    pub summary: SessionSummary,
    /// The client's host environment.
    pub host_env: Option<Value>,
    /// Recording link.
    pub video: Option<String>,
    /// Agents registered in the session.
    pub agents: Vec<AgentRecord>,
    /// Events ordered by start time (then id).
    pub events: Vec<EventRow>,
    /// Uploaded logs, oldest first.
    pub logs: Vec<String>,
    /// OTLP log records, by time.
    #[serde(default)]
    pub log_records: Vec<LogRecord>,
}

/// What a reader has seen of one table of a session's rows (its events, its OTLP log records or
/// its uploaded logs), by row number (see [`ReadStore::session_changes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowMark {
    /// The highest number among the session's rows of that table; 0 when it had none.
    pub last: i64,
    /// How many rows of the session that table held (all numbered at most `last`).
    pub count: i64,
}

/// Where a reader of a session stands: what it has seen of the session's insert-only rows.
/// Handed out by [`ReadStore::session_changes`] and given back to it to get only what was stored
/// after; as a `since`, [`SessionMark::default`] (nothing seen) makes every row new.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMark {
    /// Its events.
    pub events: RowMark,
    /// Its OTLP log records.
    pub log_records: RowMark,
    /// Its uploaded logs (`/v4/logs/upload/`).
    pub logs: RowMark,
}

/// An event's place in its session's tree, without the rest of it: what a tree of the whole
/// session is built from when only the new events are read in full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventOutline {
    /// The event id.
    pub id: String,
    /// The parent event or span, as stored.
    pub parent_id: Option<String>,
    /// Its OTLP span id, hex.
    pub span_id: Option<String>,
    /// Its start time.
    pub start_time: String,
}

/// A session as it is now, and what of it was stored after a [`SessionMark`] (see
/// [`ReadStore::session_changes`]).
#[derive(Debug, Clone)]
pub struct SessionChanges {
    /// The session now: summary, host environment, video and agents as they are; its
    /// `events`, `log_records` and `logs` only the rows stored after the mark, or every one
    /// (as [`ReadStore::session_detail`] has them) when `whole`.
    pub detail: SessionDetail,
    /// When not `whole` and some event or OTLP log record is new: every event of the
    /// session (the new ones too) as its outline, by start time then id. Empty otherwise:
    /// when `whole` (`detail.events` holds them all), and when no event and no log record was
    /// stored after the mark (the tree cannot have changed).
    pub outline: Vec<EventOutline>,
    /// What this answer covers: the mark to give next time.
    pub mark: SessionMark,
    /// Whether `detail` holds everything: no mark was given, or the one given no longer
    /// matches what is stored (rows were deleted or renumbered since it was handed out).
    pub whole: bool,
}

/// What a session list is ordered by (ties broken by session id, in the same direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSortKey {
    /// Start time (sessions without one sort as the oldest).
    StartTime,
    /// Total cost.
    Cost,
    /// End time minus start time (running sessions sort as the shortest).
    Duration,
    /// Number of events.
    Events,
}

/// How a session ended, as a list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndStateFilter {
    /// Ended with this state.
    Ended(EndState),
    /// Not ended yet: no end time, and no end state or `Indeterminate` (the state the 0.3 SDK
    /// creates its sessions with).
    Running,
}

/// The value of the sort key of one row, as carried by a pagination cursor.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    /// A text key (start time).
    Text(String),
    /// An integer key (duration, event count).
    Int(i64),
    /// A real key (cost).
    Real(f64),
}

/// Where a page starts: strictly after the row with this key and id.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCursor {
    /// The previous page's last sort key.
    pub key: SortValue,
    /// The previous page's last session id.
    pub id: String,
}

/// A session list query: filters (all must hold), order and page.
#[derive(Debug, Clone)]
pub struct SessionQuery {
    /// Started at or after this time (stored timestamp form).
    pub from: Option<String>,
    /// Started before this time (stored timestamp form).
    pub to: Option<String>,
    /// Carries every one of these tags.
    pub tags: Vec<String>,
    /// Ended this way.
    pub end_state: Option<EndStateFilter>,
    /// Has an agent of this id or name.
    pub agent: Option<String>,
    /// Has an event with this model.
    pub model: Option<String>,
    /// Has (or has not) a failed event.
    pub has_errors: Option<bool>,
    /// Case-insensitive substring of the session's name or id, a tag, or an event name.
    pub text: Option<String>,
    /// Order.
    pub sort: SessionSortKey,
    /// Largest first.
    pub descending: bool,
    /// Rows at most.
    pub limit: usize,
    /// Continue after this row.
    pub after: Option<SessionCursor>,
}

impl Default for SessionQuery {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            tags: Vec::new(),
            end_state: None,
            agent: None,
            model: None,
            has_errors: None,
            text: None,
            sort: SessionSortKey::StartTime,
            descending: true,
            limit: 50,
            after: None,
        }
    }
}

/// One page of sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    /// The rows.
    pub sessions: Vec<SessionSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SessionCursor>,
}

/// An agent seen in a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Its id.
    pub id: String,
    /// Its registered name, if it was registered (`create_agent`).
    pub name: Option<String>,
    /// Sessions it appears in.
    pub session_count: i64,
}

/// Totals of one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayStats {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Sessions started that day.
    pub sessions: i64,
    /// Events started that day.
    pub events: i64,
    /// Failed events started that day.
    pub error_events: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cost, US dollars.
    pub cost: f64,
}

/// Totals of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    /// The model.
    pub model: String,
    /// Events (LLM calls) with this model.
    pub calls: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cost, US dollars.
    pub cost: f64,
}

/// Raw statistics over a time range; the API derives rates and percentiles.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawStats {
    /// Per day, oldest first (days with sessions or events only).
    pub days: Vec<DayStats>,
    /// Per model, costliest first.
    pub models: Vec<ModelStats>,
    /// Sessions started in the range.
    pub sessions: i64,
    /// Of which with at least one failed event.
    pub sessions_with_errors: i64,
    /// Durations (ms) of the ended sessions in the range, ascending.
    pub durations_ms: Vec<i64>,
}

/// An API key as listed: what identifies it, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// The first 12 hex digits of the key's SHA-256: enough to name it, useless to use it.
    pub id: String,
    /// Its project.
    pub project_id: String,
    /// Its project's name.
    pub project_name: String,
    /// When it was created.
    pub created_at: String,
}

/// A span sent without credentials, held in the store until an authenticated request of its
/// trace claims it (see [`crate::ingest::held`]): in the store, so that every server on it
/// sees the same held spans and a restart keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldSpan {
    /// Its trace, hex.
    pub trace_id: String,
    /// When it was held: server time, milliseconds since the Unix epoch.
    pub held_at_ms: i64,
    /// Its share of the request body it came in, counted against the held spans' limit.
    pub bytes: i64,
    /// The mapped span, encoded by [`crate::ingest::held`].
    pub span: String,
}

/// A held span claimed by a server ([`HeldSpanStore::claim_held_spans`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedSpan {
    /// Its number in the store, to settle or release it by.
    pub id: i64,
    /// The span.
    pub span: HeldSpan,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: usize, session: &str) -> EventRecord {
        EventRecord {
            id: id.to_string(),
            session_id: session.into(),
            ..EventRecord::default()
        }
    }

    fn session(id: &str) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            ..SessionRecord::default()
        }
    }

    #[test]
    fn large_writes_go_in_pieces_with_their_sessions() {
        let write = Write::IngestSpans {
            project_id: "p".into(),
            sessions: vec![session("a"), session("b"), session("c")],
            spans: (0..5)
                .map(|i| event(i, if i < 3 { "a" } else { "b" }))
                .chain([event(5, "c")])
                .collect(),
        };
        assert_eq!(write.rows(), 3 * SESSION_ROW_WEIGHT + 6);
        let pieces = write.into_pieces(6);
        let shape: Vec<(Vec<String>, usize)> = pieces
            .iter()
            .map(|piece| match piece {
                Write::IngestSpans {
                    sessions, spans, ..
                } => (sessions.iter().map(|s| s.id.clone()).collect(), spans.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shape,
            [
                (vec!["a".to_owned()], 2),
                (vec!["b".to_owned()], 2),
                (vec!["c".to_owned()], 2)
            ]
        );

        // The same spans in one session weigh less: more of them go in a piece.
        let one_session = Write::IngestSpans {
            project_id: "p".into(),
            sessions: vec![session("a")],
            spans: (0..6).map(|i| event(i, "a")).collect(),
        };
        let sizes: Vec<usize> = one_session
            .into_pieces(6)
            .iter()
            .map(|piece| match piece {
                Write::IngestSpans { spans, .. } => spans.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [3, 3]);

        let events = Write::CreateEvents {
            project_id: "p".into(),
            session_id: "s".into(),
            events: (0..5).map(|i| event(i, "s")).collect(),
        };
        let sizes: Vec<usize> = events
            .into_pieces(2)
            .iter()
            .map(|piece| match piece {
                Write::CreateEvents { events, .. } => events.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        // small writes stay whole
        assert_eq!(
            Write::AppendLog {
                project_id: "p".into(),
                session_id: "s".into(),
                body: "x".into()
            }
            .into_pieces(2)
            .len(),
            1
        );
        assert_eq!(
            Outcome::Inserted(2).and(Outcome::Inserted(3)),
            Outcome::Inserted(5)
        );
    }
}
