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
use crate::store::{
    AgentRecord, CallRef, EventRow, LogRecord, SessionChanges, SessionDetail, SessionMark,
    SessionSummary,
};

pub use params::{
    decode_cursor, decode_session_mark, encode_cursor, encode_session_mark, parse_session_query,
};
pub use tree::{event_tree, OutlineNode, TreeNode};

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
    // (a refused query is answered as such, a failed read as the store's failure)
    let page = state
        .read(move |s| Ok(s.query_sessions(&project, &query)))
        .await??;
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
    /// What the answer covers, to pass as `since` for only what is stored after it.
    pub cursor: &'a str,
    /// Whether the answer carries only what changed after `since` (see [`get_session`]);
    /// `false` here: it is whole.
    pub delta: bool,
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

/// The parameters of a session detail: `events` (default full) and `since`.
fn parse_detail_params(
    pairs: &[(String, String)],
) -> Result<(EventsView, Option<SessionMark>), ApiError> {
    let mut view = EventsView::Full;
    let mut since = None;
    for (name, value) in pairs {
        match name.as_str() {
            "events" => {
                view = match value.as_str() {
                    "full" => EventsView::Full,
                    "tree" => EventsView::Tree,
                    "none" => EventsView::None,
                    other => {
                        return Err(ApiError::bad(format!(
                            "events: expected full, tree or none, got {other:?}"
                        )))
                    }
                }
            }
            "since" => since = Some(decode_session_mark(value)?),
            _ => {
                return Err(ApiError::bad(format!(
                    "{name}: unknown parameter (expected events, since)"
                )))
            }
        }
    }
    Ok((view, since))
}

/// `GET /api/v1/sessions/{id}?events=full|tree|none&since=<cursor>`: the session with its
/// agents, events (by start time), event tree and logs (see [`EventsView`]), and a `cursor`.
///
/// With `since` (the `cursor` of an earlier answer for this session), for a live view that
/// polls: when the cursor still holds, the answer is a delta (`"delta": true`): the session's
/// summary (totals, state, end), agents, host environment and video as they are now; when an
/// event or OTLP log record was stored after the cursor, its `event_tree` whole but as
/// outlines (id, parent, depth, tool links: parenthood and links can change as events
/// arrive) and as `events` only the events stored after the cursor (every field with
/// `events=full`, tree nodes with `events=tree`), both left out when none was (the tree is
/// as it was); as `log_records` and `logs` only those stored after it; and a new `cursor`. An event already sent is not sent again: a new
/// log record names its event (`event_id`), whose messages may have changed. A cursor that no
/// longer holds (rows were deleted or renumbered since) gets the whole answer
/// (`"delta": false`), to replace what the client has; one that does not decode is a 400.
pub async fn get_session(
    State(state): State<AppState>,
    caller: Reader,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path?;
    let project = caller.session(&id)?.to_owned();
    let (view, since) = parse_detail_params(&query_pairs(query)?)?;
    let lookup = id.clone();
    // Read, build the tree and serialise on the blocking pool: thousands of events take
    // milliseconds of CPU that must not hold an async worker.
    let answer = state
        .read(move |s| {
            let full = view == EventsView::Full;
            let Some(changes) = s.session_changes(&project, &lookup, since.as_ref(), full)? else {
                return Ok(None);
            };
            if changes.whole {
                let mut detail = changes.detail;
                links::enrich_session(&mut detail, full);
                let cursor = encode_session_mark(&changes.mark);
                return Ok(Some((detail_json(&detail, view, &cursor), Some(detail))));
            }
            // nothing new that the tree is made of: the tree cannot have changed
            let tree_changed =
                !changes.detail.events.is_empty() || !changes.detail.log_records.is_empty();
            let refs = if view == EventsView::None || !tree_changed {
                Vec::new()
            } else {
                s.call_refs(&project, &lookup)?
            };
            // a new event's messages may come from log records stored before it
            let records = if full && !changes.detail.events.is_empty() {
                Some(s.log_records(&project, &lookup, None)?)
            } else {
                None
            };
            Ok(Some((
                delta_json(changes, view, &refs, records.as_deref()),
                None,
            )))
        })
        .await?;
    let Some((body, detail)) = answer else {
        return Err(ApiError::NotFound(format!("session {id} not found")));
    };
    // Freeing thousands of rows takes a while too: not before the answer goes out.
    if let Some(detail) = detail.filter(|d| !d.events.is_empty()) {
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

/// The JSON answer of a whole session detail, in a buffer sized for it.
fn detail_json(
    detail: &SessionDetail,
    view: EventsView,
    cursor: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let size_hint = detail_size_hint(detail, view == EventsView::Full, view != EventsView::None);
    let mut body = Vec::with_capacity(size_hint);
    if view == EventsView::Full {
        let event_tree = event_tree(&detail.events);
        serde_json::to_writer(
            &mut body,
            &SessionDetailResponse {
                detail,
                event_tree,
                cursor,
                delta: false,
            },
        )?;
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
                cursor,
                delta: false,
            },
        )?;
    }
    Ok(body)
}

/// The new events of a delta: every field, or as tree nodes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum NewEvents<'a> {
    Full(Vec<&'a EventRow>),
    Tree(Vec<&'a TreeNode<'a>>),
}

/// A session detail's delta: what changed after `since` (see [`get_session`]).
#[derive(Debug, Serialize)]
struct DeltaResponse<'a> {
    #[serde(flatten)]
    summary: &'a SessionSummary,
    host_env: &'a Option<Value>,
    video: &'a Option<String>,
    agents: &'a [AgentRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<NewEvents<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_tree: Option<Vec<OutlineNode<'a>>>,
    logs: &'a [String],
    log_records: &'a [LogRecord],
    cursor: &'a str,
    delta: bool,
}

/// The JSON answer of a session's changes that are not whole: every event's outline, the new
/// events, log records and logs. `refs`: the session's tool call references; `records`: all
/// its log records, for the new events' messages (with `events=full`).
fn delta_json(
    changes: SessionChanges,
    view: EventsView,
    refs: &[CallRef],
    records: Option<&[LogRecord]>,
) -> Result<Vec<u8>, serde_json::Error> {
    let SessionChanges {
        mut detail,
        outline,
        mark,
        ..
    } = changes;
    let cursor = encode_session_mark(&mark);
    // Every event, the new ones read in full and the others from their outline.
    let mut new: std::collections::HashMap<String, EventRow> =
        detail.events.drain(..).map(|e| (e.id.clone(), e)).collect();
    let mut all: Vec<(EventRow, bool)> = outline
        .into_iter()
        .map(|o| match new.remove(&o.id) {
            Some(event) => (event, true),
            None => (
                EventRow {
                    id: o.id,
                    parent_id: o.parent_id,
                    span_id: o.span_id,
                    start_time: o.start_time,
                    ..EventRow::default()
                },
                false,
            ),
        })
        .collect();
    // (the outline holds every new event, read in the same snapshot; this is belt and braces)
    if !new.is_empty() {
        all.extend(new.into_values().map(|e| (e, true)));
        all.sort_by(|(a, _), (b, _)| {
            (a.start_time.as_str(), a.id.as_str()).cmp(&(b.start_time.as_str(), b.id.as_str()))
        });
    }
    let (mut events, is_new): (Vec<EventRow>, Vec<bool>) = all.into_iter().unzip();
    links::enrich_changes(
        &mut events,
        &is_new,
        &mut detail.log_records,
        refs,
        records.filter(|_| view == EventsView::Full),
    );
    let tree_changed = is_new.contains(&true) || !detail.log_records.is_empty();
    let tree = (view != EventsView::None && tree_changed).then(|| event_tree(&events));
    let new_events = tree.as_ref().map(|tree| match view {
        EventsView::Full => NewEvents::Full(
            events
                .iter()
                .zip(&is_new)
                .filter_map(|(e, new)| new.then_some(e))
                .collect(),
        ),
        _ => {
            let mut nodes: Vec<&TreeNode<'_>> = tree
                .iter()
                .filter(|n| {
                    events
                        .binary_search_by(|e| {
                            (e.start_time.as_str(), e.id.as_str()).cmp(&(n.start_time, n.id))
                        })
                        .is_ok_and(|i| is_new[i])
                })
                .collect();
            nodes.sort_by(|a, b| (a.start_time, a.id).cmp(&(b.start_time, b.id)));
            NewEvents::Tree(nodes)
        }
    });
    let event_tree = tree
        .as_ref()
        .map(|tree| tree.iter().map(OutlineNode::from).collect());
    let mut body = Vec::with_capacity(4096 + 64 * events.len());
    serde_json::to_writer(
        &mut body,
        &DeltaResponse {
            summary: &detail.summary,
            host_env: &detail.host_env,
            video: &detail.video,
            agents: &detail.agents,
            events: new_events,
            event_tree,
            logs: &detail.logs,
            log_records: &detail.log_records,
            cursor: &cursor,
            delta: true,
        },
    )?;
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
    cursor: &'a str,
    delta: bool,
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
            // links join events that name the same tool call: none unless this one names one
            let names_calls =
                event.call_ids.is_some() || records.iter().any(|r| r.call_ids.is_some());
            let refs = if names_calls {
                s.call_refs(&project, &session)?
            } else {
                Vec::new()
            };
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
