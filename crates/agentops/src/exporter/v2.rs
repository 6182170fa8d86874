//! The AgentOps v2 REST API, as the Python SDK 0.3 speaks it: `create_session` gives the
//! session's JWT; events, tags, agents and the end are sent with it; a refused JWT is renewed
//! once with `reauthorize_jwt`.

use std::time::Duration;

use agentops_core::attributes as attr;
use agentops_core::v2::{
    self as wire, path, SessionBody, SessionRequest, API_KEY_HEADER, PARENT_KEY_HEADER,
};
use opentelemetry::trace::SpanId;
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::trace::SpanData;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Attempt, Batch, Pending, SessionExporter, Work};
use crate::backend_error::BackendError;
use crate::ids;
use crate::state::{Job, Origin, SessionState};
use crate::transport::{Answer, Request};

const JSON: &str = "application/json; charset=UTF-8";

/// One attempt at `pending` over the v2 API.
pub(crate) fn attempt(
    exporter: &SessionExporter,
    pending: &mut Pending,
    limit: Duration,
) -> Attempt {
    if let Work::Open = pending.work {
        return open(exporter, limit);
    }
    let jwt = match session_jwt(exporter, limit) {
        Ok(jwt) => jwt,
        Err(attempt) => return attempt,
    };
    let call = pending.work.call(crate::config::Protocol::V2);
    let request = pending
        .request
        .get_or_insert_with(|| request_for(exporter, &pending.work))
        .clone()
        .header("Authorization", format!("Bearer {jwt}"));
    let started = std::time::Instant::now();
    match exporter.wire.send(call, &request, limit) {
        Answer::Success(answer) => Attempt::Answered(answer),
        Answer::Unauthorized(message) => {
            if !pending.reauthorized {
                // The renewal gets what is left of this attempt's time.
                let left = limit
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(50));
                match reauthorize(exporter, &jwt, left) {
                    Renewal::Renewed => {
                        pending.reauthorized = true;
                        return Attempt::Again;
                    }
                    Renewal::TryLater { why, retry_after } => {
                        return Attempt::Retryable { why, retry_after }
                    }
                    Renewal::Refused => {}
                }
            }
            Attempt::Failed(BackendError::Refused {
                call,
                status: 401,
                message,
            })
        }
        other => classify(call, other),
    }
}

/// What an answer other than success or 401 means for a call.
pub(crate) fn classify(call: &'static str, answer: Answer) -> Attempt {
    match answer {
        Answer::Success(answer) => Attempt::Answered(answer),
        Answer::TooLarge => Attempt::TooLarge,
        Answer::Unauthorized(message) => Attempt::Failed(BackendError::Refused {
            call,
            status: 401,
            message,
        }),
        Answer::Rejected { status, message } => Attempt::Failed(BackendError::Refused {
            call,
            status,
            message,
        }),
        Answer::Unusable(reason) => Attempt::Failed(BackendError::Unusable { call, reason }),
        Answer::Retryable { why, retry_after } => Attempt::Retryable { why, retry_after },
    }
}

/// The session's JWT, or the attempt that tries to get it.
fn session_jwt(exporter: &SessionExporter, limit: Duration) -> Result<String, Attempt> {
    {
        let remote = exporter.state().remote();
        if let Some(jwt) = &remote.jwt {
            return Ok(jwt.clone());
        }
        if let Some(refused) = &remote.refused {
            return Err(Attempt::Failed(refused.clone()));
        }
    }
    match open(exporter, limit) {
        Attempt::Answered(_) => Err(Attempt::Again),
        other => Err(other),
    }
}

/// Registers a session started here, or gets a token for one joined from another service.
fn open(exporter: &SessionExporter, limit: Duration) -> Attempt {
    match exporter.state().origin {
        Origin::Here => create_session(exporter, limit),
        Origin::Joined => join_session(exporter, limit),
    }
}

/// A token for a session another service started (`reauthorize_jwt` with the API key). Until
/// that service has registered it, the backend does not know it (404): retried.
fn join_session(exporter: &SessionExporter, limit: Duration) -> Attempt {
    const CALL: &str = "reauthorize_jwt";
    let state = exporter.state();
    let body = to_json(&wire::ReauthorizeJwtRequest {
        session_id: state.id.to_string(),
    });
    let request = post(exporter, path::REAUTHORIZE_JWT, &body);
    let attempt = match exporter.wire.send(CALL, &request, limit) {
        Answer::Rejected { status: 404, .. } => Attempt::Retryable {
            why: "the joined session is not registered with the backend yet".into(),
            retry_after: None,
        },
        answer => classify(CALL, answer),
    };
    match attempt {
        Attempt::Answered(answer) => {
            match serde_json::from_str::<wire::ReauthorizeJwtResponse>(&answer) {
                Ok(joined) => {
                    tracing::debug!(target: "agentops", session_id = %state.id, "joined session authorised");
                    state.remote().jwt = Some(joined.jwt);
                    state.set_opened(Ok(()));
                    Attempt::Answered(String::new())
                }
                Err(err) => Attempt::Failed(BackendError::BadAnswer {
                    call: CALL,
                    reason: format!("no jwt ({err})"),
                }),
            }
        }
        Attempt::Failed(err) => {
            state.remote().refused = Some(err.clone());
            state.set_opened(Err(err.clone()));
            Attempt::Failed(err)
        }
        other => other,
    }
}

fn post(exporter: &SessionExporter, path: &str, body: &[u8]) -> Request {
    let config = &exporter.wire.config;
    let mut request =
        exporter
            .wire
            .transport
            .request(format!("{}{path}", config.endpoint), JSON, body);
    if let Some(key) = config.api_key {
        request.set_header(API_KEY_HEADER, key.to_string());
    }
    if let Some(parent) = config.parent_key {
        request.set_header(PARENT_KEY_HEADER, parent.to_string());
    }
    request
}

fn create_session(exporter: &SessionExporter, limit: Duration) -> Attempt {
    const CALL: &str = "create_session";
    let state = exporter.state();
    let request = post(exporter, path::CREATE_SESSION, &opening_body(state));
    let attempt = classify(CALL, exporter.wire.send(CALL, &request, limit));
    match attempt {
        Attempt::Answered(answer) => {
            let created: wire::CreateSessionResponse = match serde_json::from_str(&answer) {
                Ok(created) => created,
                Err(err) => {
                    return Attempt::Failed(BackendError::BadAnswer {
                        call: CALL,
                        reason: format!("no jwt ({err})"),
                    })
                }
            };
            tracing::debug!(target: "agentops", session_id = %state.id, "session created on the backend");
            {
                let mut remote = state.remote();
                remote.jwt = Some(created.jwt);
                remote.session_url = created.session_url;
            }
            state.set_opened(Ok(()));
            Attempt::Answered(String::new())
        }
        Attempt::Failed(err) => {
            // A refused key, or a backend that cannot be used: nothing of this session can
            // be sent, so its later work fails at once.
            state.remote().refused = Some(err.clone());
            state.set_opened(Err(err.clone()));
            Attempt::Failed(err)
        }
        other => other,
    }
}

/// How renewing a refused JWT went.
enum Renewal {
    Renewed,
    /// The backend could not answer now (5xx, timeout): the call is retried later.
    TryLater {
        why: String,
        retry_after: Option<Duration>,
    },
    Refused,
}

/// Renews the session's JWT after `stale` was refused.
fn reauthorize(exporter: &SessionExporter, stale: &str, limit: Duration) -> Renewal {
    const CALL: &str = "reauthorize_jwt";
    let state = exporter.state();
    if state
        .remote()
        .jwt
        .as_deref()
        .is_some_and(|current| current != stale)
    {
        return Renewal::Renewed;
    }
    let body = to_json(&wire::ReauthorizeJwtRequest {
        session_id: state.id.to_string(),
    });
    let request = post(exporter, path::REAUTHORIZE_JWT, &body);
    match exporter.wire.send(CALL, &request, limit) {
        Answer::Success(answer) => {
            match serde_json::from_str::<wire::ReauthorizeJwtResponse>(&answer) {
                Ok(fresh) => {
                    state.remote().jwt = Some(fresh.jwt);
                    Renewal::Renewed
                }
                Err(err) => {
                    tracing::warn!(target: "agentops", session_id = %state.id, call = CALL, %err, "re-authorisation answer unreadable");
                    Renewal::Refused
                }
            }
        }
        Answer::Retryable { why, retry_after } => Renewal::TryLater { why, retry_after },
        answer => {
            tracing::warn!(target: "agentops", session_id = %state.id, call = CALL, ?answer, "re-authorisation failed");
            Renewal::Refused
        }
    }
}

fn request_for(exporter: &SessionExporter, work: &Work) -> Request {
    let state = exporter.state();
    match work {
        Work::Open => post(exporter, path::CREATE_SESSION, &opening_body(state)),
        Work::Job(Job::Tags) | Work::Close => {
            post(exporter, path::UPDATE_SESSION, &session_body(state))
        }
        Work::Job(Job::Agent { id, name }) => {
            let body = to_json(&wire::CreateAgentRequest {
                id: id.to_string(),
                name: name.clone(),
            });
            post(exporter, path::CREATE_AGENT, &body)
        }
        Work::Events(Batch::V2(events)) => {
            #[derive(Serialize)]
            struct CreateEvents<'a> {
                events: &'a [wire::Event],
            }
            post(
                exporter,
                path::CREATE_EVENTS,
                &to_json(&CreateEvents { events }),
            )
        }
        // A v2 session never makes OTLP batches.
        Work::Events(Batch::Otlp(_)) => post(exporter, path::CREATE_EVENTS, b"{\"events\":[]}"),
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The session's `update_session` body.
fn session_body(state: &SessionState) -> Vec<u8> {
    session_json(state, false)
}

/// The session's `create_session` body: the session as it started, even when it has already
/// ended by the time the backend is reached.
fn opening_body(state: &SessionState) -> Vec<u8> {
    session_json(state, true)
}

fn session_json(state: &SessionState, opening: bool) -> Vec<u8> {
    let mut record = state.record().clone();
    if opening {
        record.end_state = agentops_core::EndState::Indeterminate;
        record.end_timestamp = None;
        record.end_state_reason = None;
    }
    to_json(&SessionRequest {
        session: SessionBody {
            session_id: state.id.to_string(),
            init_timestamp: Some(record.init_timestamp),
            end_timestamp: record.end_timestamp,
            end_state: Some(record.end_state),
            end_state_reason: record.end_state_reason,
            tags: Some(record.tags),
            video: None,
            host_env: record.host_env,
            event_counts: Some(state.counts.snapshot()),
        },
    })
}

/// Keeps what the backend answered to the end: the cost and where to see the session.
pub(super) fn read_end_answer(state: &SessionState, answer: &str) {
    let parsed: wire::UpdateSessionResponse = serde_json::from_str(answer).unwrap_or_default();
    let mut remote = state.remote();
    if let Some(url) = parsed.session_url {
        remote.session_url = Some(url);
    }
    remote.token_cost = parsed.token_cost.map(|cost| match cost {
        Value::String(text) => text,
        other => other.to_string(),
    });
}

/// Reads an AgentOps event back out of its span; `None` if the span is not one.
pub(crate) fn to_v2_event(session_id: Uuid, span: &SpanData) -> Option<wire::Event> {
    let mut id = None;
    let mut event_type = None;
    let mut init_timestamp = None;
    let mut end_timestamp = None;
    let mut data = None;
    let mut session = None;
    let mut custom = Map::new();
    for kv in &span.attributes {
        match kv.key.as_str() {
            attr::EVENT_ID => id = Some(kv.value.as_str().into_owned()),
            attr::EVENT_TYPE => event_type = Some(kv.value.as_str().into_owned()),
            attr::EVENT_TIMESTAMP => init_timestamp = Some(kv.value.as_str().into_owned()),
            attr::EVENT_END_TIMESTAMP => end_timestamp = Some(kv.value.as_str().into_owned()),
            attr::EVENT_DATA => data = Some(kv.value.as_str().into_owned()),
            attr::SESSION_ID => session = Some(kv.value.as_str().into_owned()),
            attr::SESSION_TAGS => {}
            key => {
                custom.insert(key.to_owned(), otel_to_json(&kv.value));
            }
        }
    }
    let mut fields: Map<String, Value> = match data {
        Some(json) => serde_json::from_str(&json).ok()?,
        None => Map::new(),
    };
    let params = fields.remove("params").unwrap_or(Value::Null);
    let returns = fields.remove("returns").unwrap_or(Value::Null);
    let agent_id = fields
        .remove("agent_id")
        .and_then(|v| v.as_str().map(str::to_owned));
    // The span id lets spans of other services, started from this event's `traceparent`,
    // name it as their parent.
    fields.insert(
        "span_id".to_owned(),
        Value::String(span.span_context.span_id().to_string()),
    );
    if span.parent_span_id != SpanId::INVALID {
        let parent = ids::event_id(session_id, span.parent_span_id);
        fields.insert("parent_id".to_owned(), Value::String(parent.to_string()));
    }
    if !custom.is_empty() {
        fields.insert("attributes".to_owned(), Value::Object(custom));
    }
    Some(wire::Event {
        id: id?,
        event_type: event_type?,
        init_timestamp: init_timestamp?,
        end_timestamp,
        session_id: session,
        agent_id,
        params,
        returns,
        fields,
    })
}

fn otel_to_json(value: &OtelValue) -> Value {
    match value {
        OtelValue::Bool(b) => Value::Bool(*b),
        OtelValue::I64(i) => Value::from(*i),
        OtelValue::F64(f) => Value::from(*f),
        OtelValue::String(s) => Value::String(s.as_str().to_owned()),
        other => Value::String(other.as_str().into_owned()),
    }
}
