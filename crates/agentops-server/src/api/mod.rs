//! The read API, versioned under `/api/v1`: the caller's sessions and one session's events.
//!
//! Authenticated by the `X-Agentops-Api-Key` header or a Bearer token; always scoped to the
//! caller's project. A session token may read only its own session.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::SessionDetail;

/// Default number of sessions listed.
pub const DEFAULT_LIMIT: usize = 50;
/// Most sessions listed at once.
pub const MAX_LIMIT: usize = 1000;

/// Query of `GET /api/v1/sessions`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// How many sessions, newest first (1..=1000, default 50).
    pub limit: Option<String>,
}

/// `GET /api/v1/sessions?limit=N`: `{"sessions": [...]}`, newest first.
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let claims = state.project_from_any(&headers).await?;
    if claims.session_id().is_some() {
        return Err(ApiError::Forbidden(
            "a session token can only read its own session".into(),
        ));
    }
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad(format!(
                    "limit: expected an integer from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let project = claims.project_id;
    let sessions = state
        .read(move |s| s.list_sessions(&project, limit))
        .await?;
    Ok(Json(json!({ "sessions": sessions })))
}

/// `GET /api/v1/sessions/{id}`: the session with its agents, events (by start time) and logs.
pub async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let claims = state.project_from_any(&headers).await?;
    if let Some(own) = claims.session_id() {
        if own != id {
            return Err(ApiError::Forbidden(
                "a session token can only read its own session".into(),
            ));
        }
    }
    let project = claims.project_id;
    let lookup = id.clone();
    state
        .read(move |s| s.session_detail(&project, &lookup))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("session {id} not found")))
}
