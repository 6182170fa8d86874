//! The non-OTLP calls of the Python SDK 0.4.x: `POST /v3/auth/token` (API key → project token)
//! and `POST /v4/logs/upload/` (the captured stdout of a trace).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::RawBody;
use crate::auth::PROJECT_SUBJECT;
use crate::caller::TokenHolder;
use crate::error::ApiError;
use crate::state::{header_str, AppState};
use crate::store::Write;

#[derive(Deserialize)]
struct TokenRequest {
    api_key: String,
}

/// `POST /v3/auth/token`: `{"api_key"}` → `{"token", "project_id", "project_prem_status"}`.
pub async fn auth_token(
    State(state): State<AppState>,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: TokenRequest = body.json()?;
    let project_id = state.project_for_api_key(&request.api_key).await?;
    Ok(Json(json!({
        "token": state.jwt().issue(PROJECT_SUBJECT, &project_id, &request.api_key),
        "project_id": project_id,
        "project_prem_status": "free",
    })))
}

/// The session of a `Trace-Id` header: the decimal 128-bit trace id, as a UUID.
pub fn session_of_trace_header(value: &str) -> Option<String> {
    let id: u128 = value.trim().parse().ok()?;
    (id != 0).then(|| uuid::Uuid::from_u128(id).to_string())
}

/// `POST /v4/logs/upload/`: stored with the session of its `Trace-Id`.
pub async fn logs_upload(
    State(state): State<AppState>,
    caller: TokenHolder,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let trace = header_str(&body.headers, "trace-id")
        .ok_or_else(|| ApiError::bad("missing Trace-Id header"))?;
    let session_id = session_of_trace_header(trace)
        .ok_or_else(|| ApiError::bad("Trace-Id header: expected a non-zero decimal trace id"))?;
    caller.may_write(&session_id)?;
    let upload: Value = body.json()?;
    let text = match upload.get("body") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => upload.to_string(),
    };
    let size = body.bytes.len();
    state
        .writer()
        .submit(Write::AppendLog {
            project_id: caller.0.project_id,
            session_id: session_id.clone(),
            body: text,
        })
        .await?;
    Ok(Json(
        json!({"status": "success", "url": state.session_url(&session_id), "size": size}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_header_is_the_trace_id_as_uuid() {
        // traceId "Rlnhu86r9SgvFyBNvFpstQ==" of the captured 0.4 export
        assert_eq!(
            session_of_trace_header("93512652547142718614884694637313420469").as_deref(),
            Some("4659e1bb-ceab-f528-2f17-204dbc5a6cb5")
        );
        assert!(session_of_trace_header("0").is_none());
        assert!(session_of_trace_header("abc").is_none());
    }
}
