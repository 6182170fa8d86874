//! The read API, versioned under `/api/v1`: sessions (filtered, sorted, paginated), one session
//! with its event tree, one event in full, agents, statistics, dashboard tokens, and the OpenAPI
//! document describing all of it ([`mod@openapi`]).
//!
//! Authenticated by the `X-Agentops-Api-Key` header or a Bearer token (a project token from
//! `/v3/auth/token`, a dashboard token from `/api/v1/auth/dashboard-token`, or a session token,
//! which may read only its own session); without credentials only when the server was started
//! with open read access on a loopback address. Always scoped to the caller's project: another
//! project's ids answer 404.

pub mod links;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod tree;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth;
use crate::caller::{api_key, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AgentRecord, EventRow, LogRecord, SessionDetail, SessionSummary};

pub use params::{decode_cursor, encode_cursor, parse_session_query};
pub use tree::{event_tree, TreeNode};

/// Default number of sessions listed.
pub const DEFAULT_LIMIT: usize = 50;
/// Most sessions listed at once.
pub const MAX_LIMIT: usize = 1000;
/// The largest body `POST /api/v1/auth/dashboard-token` reads (it carries at most an API key).
pub const DASHBOARD_TOKEN_MAX_BODY: usize = 64 * 1024;

fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| ApiError::bad(format!("query string: {e}")))
}

/// `GET /api/v1/sessions`: `{"sessions": [...], "next_cursor": "..." | null}`; see
/// [`parse_session_query`] for the parameters.
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Reader,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = caller.project()?.to_owned();
    let (query, sort) = parse_session_query(&query_pairs(query)?)?;
    let page = state
        .read(move |s| s.query_sessions(&project, &query))
        .await?;
    let next_cursor = page.next.as_ref().map(|c| encode_cursor(sort, c));
    Ok(Json(
        json!({ "sessions": page.sessions, "next_cursor": next_cursor }),
    ))
}

/// A session detail as answered: the stored detail plus its event tree.
#[derive(Debug, Serialize)]
pub struct SessionDetailResponse<'a> {
    /// Summary, host env, video, agents, events (flat, by start time), logs.
    #[serde(flatten)]
    pub detail: &'a SessionDetail,
    /// The events as a tree, depth first (see [`TreeNode`]).
    pub event_tree: Vec<TreeNode<'a>>,
}

/// About how many bytes a session detail's JSON takes: its events' stored text (payloads
/// included) plus their keys for the flat list, their ids, names and times for the tree.
fn detail_size_hint(detail: &SessionDetail, flat: bool, tree: bool) -> usize {
    fn text(s: &Option<String>) -> usize {
        s.as_ref().map_or(0, String::len)
    }
    fn raw(r: &Option<Box<RawValue>>) -> usize {
        r.as_ref().map_or(0, |r| r.get().len())
    }
    let flat_bytes = |e: &EventRow| {
        e.id.len()
            + e.session_id.len()
            + e.kind.len()
            + text(&e.name)
            + text(&e.parent_id)
            + text(&e.trace_id)
            + text(&e.span_id)
            + e.start_time.len()
            + text(&e.end_time)
            + text(&e.status)
            + text(&e.status_message)
            + text(&e.agent_id)
            + text(&e.model)
            + text(&e.provider)
            + raw(&e.prompt)
            + raw(&e.completion)
            + raw(&e.params)
            + raw(&e.returns)
            + e.attributes.get().len()
            + 380
    };
    // the id twice: its own and in its parent's children
    let tree_bytes = |e: &EventRow| {
        2 * e.id.len()
            + text(&e.parent_id)
            + e.kind.len()
            + text(&e.name)
            + e.start_time.len()
            + text(&e.end_time)
            + text(&e.status)
            + text(&e.model)
            + 205
    };
    let events: usize = detail
        .events
        .iter()
        .map(|e| usize::from(flat) * flat_bytes(e) + usize::from(tree) * tree_bytes(e))
        .sum();
    events + detail.logs.iter().map(String::len).sum::<usize>() + 4096
}

/// What a session detail carries of its events (`events` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsView {
    /// `full` (default): the flat `events` list (every field) and the `event_tree`.
    Full,
    /// `tree`: only the `event_tree` (timings, tokens, cost; no payloads), much smaller.
    Tree,
    /// `none`: neither, only the session.
    None,
}

fn parse_events_view(pairs: &[(String, String)]) -> Result<EventsView, ApiError> {
    let mut view = EventsView::Full;
    for (name, value) in pairs {
        if name != "events" {
            return Err(ApiError::bad(format!(
                "{name}: unknown parameter (expected events)"
            )));
        }
        view = match value.as_str() {
            "full" => EventsView::Full,
            "tree" => EventsView::Tree,
            "none" => EventsView::None,
            other => {
                return Err(ApiError::bad(format!(
                    "events: expected full, tree or none, got {other:?}"
                )))
            }
        };
    }
    Ok(view)
}

/// `GET /api/v1/sessions/{id}?events=full|tree|none`: the session with its agents, events (by
/// start time), event tree and logs (see [`EventsView`]).
pub async fn get_session(
    State(state): State<AppState>,
    caller: Reader,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path?;
    let project = caller.session(&id)?.to_owned();
    let view = parse_events_view(&query_pairs(query)?)?;
    let lookup = id.clone();
    // Read, build the tree and serialise on the blocking pool: thousands of events take
    // milliseconds of CPU that must not hold an async worker.
    let answer = state
        .read(move |s| {
            let mut detail = if view == EventsView::Full {
                s.session_detail(&project, &lookup)
            } else {
                s.session_detail_without_payloads(&project, &lookup)
            }?;
            if let Some(detail) = detail.as_mut() {
                links::enrich_session(detail, view == EventsView::Full);
            }
            Ok(detail.map(|detail| (detail_json(&detail, view), detail)))
        })
        .await?;
    let Some((body, detail)) = answer else {
        return Err(ApiError::NotFound(format!("session {id} not found")));
    };
    // Freeing thousands of rows takes a while too: not before the answer goes out.
    if !detail.events.is_empty() {
        tokio::task::spawn_blocking(move || drop(detail));
    }
    let body = body.map_err(|e| ApiError::Internal(format!("serialising the answer: {e}")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The JSON answer of a session detail, in a buffer sized for it.
fn detail_json(detail: &SessionDetail, view: EventsView) -> Result<Vec<u8>, serde_json::Error> {
    let size_hint = detail_size_hint(detail, view == EventsView::Full, view != EventsView::None);
    let mut body = Vec::with_capacity(size_hint);
    if view == EventsView::Full {
        let event_tree = event_tree(&detail.events);
        serde_json::to_writer(&mut body, &SessionDetailResponse { detail, event_tree })?;
    } else {
        let event_tree = (view == EventsView::Tree).then(|| event_tree(&detail.events));
        serde_json::to_writer(
            &mut body,
            &SessionOnlyResponse {
                summary: &detail.summary,
                host_env: &detail.host_env,
                video: &detail.video,
                agents: &detail.agents,
                logs: &detail.logs,
                log_records: &detail.log_records,
                event_tree,
            },
        )?;
    }
    Ok(body)
}

/// A session detail without its flat events (`events=tree` or `events=none`).
#[derive(Debug, Serialize)]
struct SessionOnlyResponse<'a> {
    #[serde(flatten)]
    summary: &'a SessionSummary,
    host_env: &'a Option<Value>,
    video: &'a Option<String>,
    agents: &'a [AgentRecord],
    logs: &'a [String],
    log_records: &'a [LogRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    event_tree: Option<Vec<TreeNode<'a>>>,
}

/// One event as answered: every stored field plus its duration and its log records.
#[derive(Debug, Serialize)]
pub struct EventResponse {
    /// The stored event (prompt, completion, params, returns, attributes, …), with its
    /// messages and tool links.
    #[serde(flatten)]
    pub event: EventRow,
    /// End time minus start time in milliseconds, when it has ended.
    pub duration_ms: Option<f64>,
    /// The OTLP log records of its span, by time.
    pub log_records: Vec<LogRecord>,
}

/// `GET /api/v1/sessions/{id}/events/{event_id}`: one event in full.
pub async fn get_event(
    State(state): State<AppState>,
    caller: Reader,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<EventResponse>, ApiError> {
    let Path((id, event_id)) = path?;
    let project = caller.session(&id)?.to_owned();
    let (session, event) = (id.clone(), event_id.clone());
    let found = state
        .read(move |s| {
            let Some(mut event) = s.event_detail(&project, &session, &event)? else {
                return Ok(None);
            };
            let mut records = match event.span_id.as_deref() {
                Some(span) => s.log_records(&project, &session, Some(span))?,
                None => Vec::new(),
            };
            let refs = s.call_refs(&project, &session)?;
            links::enrich_event(&mut event, &mut records, &refs);
            Ok(Some((event, records)))
        })
        .await?;
    let (event, log_records) = found
        .ok_or_else(|| ApiError::NotFound(format!("event {event_id} of session {id} not found")))?;
    let duration_ms = tree::duration_ms(&event.start_time, event.end_time.as_deref());
    Ok(Json(EventResponse {
        event,
        duration_ms,
        log_records,
    }))
}

/// `GET /api/v1/agents`: `{"agents": [{"id", "name", "session_count"}]}`, most used first.
pub async fn list_agents(
    State(state): State<AppState>,
    caller: Reader,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = caller.project()?.to_owned();
    if let Some((name, _)) = query_pairs(query)?.first() {
        return Err(ApiError::bad(format!(
            "{name}: unknown parameter (this endpoint takes none)"
        )));
    }
    let agents = state.read(move |s| s.list_agents(&project)).await?;
    Ok(Json(json!({ "agents": agents })))
}

/// `GET /api/v1/stats?from&to`: per day, per model, error rate and duration percentiles of the
/// sessions and events started in `[from, to)`.
pub async fn stats(
    State(state): State<AppState>,
    caller: Reader,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = caller.project()?.to_owned();
    let (from, to) = params::parse_range(&query_pairs(query)?)?;
    let (f, t) = (from.clone(), to.clone());
    let raw = state
        .read(move |s| s.stats(&project, f.as_deref(), t.as_deref()))
        .await?;
    let events: i64 = raw.days.iter().map(|d| d.events).sum();
    let error_events: i64 = raw.days.iter().map(|d| d.error_events).sum();
    let rate = |part: i64, whole: i64| {
        if whole > 0 {
            part as f64 / whole as f64
        } else {
            0.0
        }
    };
    let percentile = |p: f64| -> Option<i64> {
        let n = raw.durations_ms.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        raw.durations_ms.get(rank.clamp(1, n) - 1).copied()
    };
    Ok(Json(json!({
        "from": from,
        "to": to,
        "sessions": raw.sessions,
        "sessions_with_errors": raw.sessions_with_errors,
        "error_rate": rate(raw.sessions_with_errors, raw.sessions),
        "events": events,
        "error_events": error_events,
        "event_error_rate": rate(error_events, events),
        "input_tokens": raw.days.iter().map(|d| d.input_tokens).sum::<i64>(),
        "output_tokens": raw.days.iter().map(|d| d.output_tokens).sum::<i64>(),
        "cost": raw.days.iter().map(|d| d.cost).sum::<f64>(),
        "duration_ms": {
            "count": raw.durations_ms.len(),
            "p50": percentile(50.0),
            "p90": percentile(90.0),
            "p99": percentile(99.0),
        },
        "days": raw.days,
        "models": raw.models,
    })))
}

/// `POST /api/v1/auth/dashboard-token`: exchanges an API key (`X-Agentops-Api-Key` header or
/// `{"api_key": "..."}` body) for a short-lived, read-only, project-scoped token:
/// `{"token", "project_id", "expires_in", "expires_at"}`.
pub async fn dashboard_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: DASHBOARD_TOKEN_MAX_BODY,
            }
        } else {
            ApiError::from(e)
        }
    })?;
    let blank = body.iter().all(u8::is_ascii_whitespace);
    // A body, when sent, is `{"api_key": "..."}` (the key may be left out when the header
    // carries it), whether or not the header is there too.
    let body_key = if blank {
        None
    } else {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad(format!("body: invalid JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| ApiError::bad("body: expected a JSON object {\"api_key\": \"...\"}"))?;
        match object.get("api_key") {
            None => None,
            Some(Value::String(key)) => Some(key.clone()),
            Some(_) => return Err(ApiError::bad("api_key: expected a string")),
        }
    };
    let key = match (api_key(&headers), body_key) {
        (Some(header), Some(body)) if header != body => {
            return Err(ApiError::bad(
                "api_key: differs from the X-Agentops-Api-Key header; send one key",
            ))
        }
        (Some(header), _) => header.to_owned(),
        (None, Some(body)) => body,
        (None, None) if blank => {
            return Err(ApiError::Unauthorized(
                "missing API key: send X-Agentops-Api-Key or {\"api_key\": \"...\"}".into(),
            ))
        }
        (None, None) => return Err(ApiError::bad("api_key: expected a string")),
    };
    let project_id = state.project_for_api_key(&key).await?;
    let keys = state.dashboard_jwt();
    let token = keys.issue(auth::DASHBOARD_SUBJECT, &project_id, &key);
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(keys.ttl_secs());
    Ok(Json(json!({
        "token": token,
        "project_id": project_id,
        "expires_in": keys.ttl_secs(),
        "expires_at": agentops_core::timestamp::format(expires_at),
    })))
}

/// `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of this API (no credentials needed).
pub async fn openapi() -> Json<Value> {
    Json(openapi::document())
}
