//! The AgentOps v2 REST API (`POST /v2/*`), as the Python SDK 0.3.x and the Rust SDK call it.

use agentops_core::pricing::format_cost;
use agentops_core::v2;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::body::RawBody;
use crate::caller::{KeyHolder, SessionWriter};
use crate::error::ApiError;
use crate::mapping::v2::{event_from_v2, parse_uuid, session_from_v2};
use crate::state::AppState;
use crate::store::{Outcome, Write};

/// `POST /v2/create_session`: API key → session JWT.
pub async fn create_session(
    State(state): State<AppState>,
    KeyHolder {
        project_id,
        key: api_key,
    }: KeyHolder,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: v2::SessionRequest = body.json()?;
    let session = session_from_v2(&request.session).map_err(ApiError::BadRequest)?;
    let session_id = session.id.clone();
    state
        .writer()
        .submit(Write::CreateSession {
            project_id: project_id.clone(),
            session,
        })
        .await?;
    Ok(Json(json!({
        "status": "success",
        "jwt": state.jwt().issue(&session_id, &project_id, &api_key),
        "session_url": state.session_url(&session_id),
    })))
}

/// `POST /v2/update_session`: tags, end state; answers the session's token cost.
pub async fn update_session(
    State(state): State<AppState>,
    SessionWriter {
        project_id,
        session_id,
    }: SessionWriter,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: v2::SessionRequest = body.json()?;
    let session = session_from_v2(&request.session).map_err(ApiError::BadRequest)?;
    if session.id != session_id {
        return Err(ApiError::Forbidden(
            "the session token is for another session".into(),
        ));
    }
    let outcome = state
        .writer()
        .submit(Write::UpdateSession {
            project_id,
            session,
        })
        .await?;
    let cost = match outcome {
        Outcome::SessionCost(cost) => cost,
        _ => 0.0,
    };
    Ok(Json(json!({
        "status": "success",
        "token_cost": format_cost(cost),
        "session_url": state.session_url(&session_id),
    })))
}

/// `POST /v2/create_events`: a batch of events of the token's session.
pub async fn create_events(
    State(state): State<AppState>,
    SessionWriter {
        project_id,
        session_id,
    }: SessionWriter,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: v2::CreateEventsRequest = body.json()?;
    let events = request
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| event_from_v2(e, i, &session_id, state.prices()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::BadRequest)?;
    let count = events.len();
    let outcome = state
        .writer()
        .submit(Write::CreateEvents {
            project_id,
            session_id,
            events,
        })
        .await?;
    let inserted = match outcome {
        Outcome::Inserted(n) => n,
        _ => 0,
    };
    Ok(Json(
        json!({"status": "success", "received": count, "inserted": inserted}),
    ))
}

/// `POST /v2/create_agent`.
pub async fn create_agent(
    State(state): State<AppState>,
    SessionWriter {
        project_id,
        session_id,
    }: SessionWriter,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: v2::CreateAgentRequest = body.json()?;
    let agent_id = parse_uuid(&request.id, "id").map_err(ApiError::BadRequest)?;
    state
        .writer()
        .submit(Write::CreateAgent {
            project_id,
            session_id,
            agent_id,
            name: request.name,
        })
        .await?;
    Ok(Json(json!({"status": "success"})))
}

/// `POST /v2/reauthorize_jwt`: API key + session id → a fresh session JWT.
pub async fn reauthorize_jwt(
    State(state): State<AppState>,
    KeyHolder {
        project_id,
        key: api_key,
    }: KeyHolder,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: v2::ReauthorizeJwtRequest = body.json()?;
    let session_id = parse_uuid(&request.session_id, "session_id").map_err(ApiError::BadRequest)?;
    let (project, session) = (project_id.clone(), session_id.clone());
    if !state
        .read(move |s| s.session_exists(&project, &session))
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "session {session_id} not found"
        )));
    }
    Ok(Json(
        json!({"status": "success", "jwt": state.jwt().issue(&session_id, &project_id, &api_key)}),
    ))
}

/// `POST /v2/developer_errors`: an SDK reporting its own failure; logged, not stored.
/// At most `limit` bytes of `text`, cut at a character boundary.
fn truncated(text: &str, limit: usize) -> &str {
    let mut end = limit.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub async fn developer_errors(_caller: KeyHolder, body: RawBody) -> Result<Response, ApiError> {
    let report: Value = body.json()?;
    let text = report.to_string();
    tracing::warn!(report = %truncated(&text, 2000), "SDK developer error reported");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::truncated;

    #[test]
    fn truncation_never_cuts_a_character() {
        let text = format!("{}é and more", "a".repeat(1999));
        assert_eq!(truncated(&text, 2000), "a".repeat(1999));
        assert_eq!(truncated("short", 2000), "short");
        assert_eq!(truncated("éé", 3), "é");
    }
}
