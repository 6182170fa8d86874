//! The JSON bodies of the AgentOps v2 REST API (`POST {endpoint}/v2/<call>`).
//!
//! These mirror what the Python SDK 0.3.x sends (see `shared/protocol/`). Readers ignore keys
//! they do not know, so any body the Python SDK sends deserialises; writers emit the same keys
//! the Python SDK emits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::EndState;

/// Header carrying the project's API key.
pub const API_KEY_HEADER: &str = "X-Agentops-Api-Key";
/// Header carrying the parent organisation's key, when one is configured.
pub const PARENT_KEY_HEADER: &str = "X-Agentops-Parent-Key";

/// Paths of the v2 calls, relative to the endpoint.
pub mod path {
    /// Creates a session and returns its JWT.
    pub const CREATE_SESSION: &str = "/v2/create_session";
    /// Updates a session's tags, or ends it.
    pub const UPDATE_SESSION: &str = "/v2/update_session";
    /// Appends a batch of events to one session.
    pub const CREATE_EVENTS: &str = "/v2/create_events";
    /// Registers an agent of a session.
    pub const CREATE_AGENT: &str = "/v2/create_agent";
    /// Issues a new JWT for an existing session.
    pub const REAUTHORIZE_JWT: &str = "/v2/reauthorize_jwt";
    /// Reports an SDK-side error.
    pub const DEVELOPER_ERRORS: &str = "/v2/developer_errors";
}

/// Body of `create_session` and `update_session`: `{"session": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRequest {
    /// The session as the client sees it.
    pub session: SessionBody,
}

/// A session as the client describes it. Unknown keys (`config`, `_lock`, …) are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionBody {
    /// The session's UUID, chosen by the client.
    pub session_id: String,
    /// When the session started.
    #[serde(default)]
    pub init_timestamp: Option<String>,
    /// When the session ended; `None` while it runs.
    #[serde(default)]
    pub end_timestamp: Option<String>,
    /// How the session ended (`Indeterminate` while it runs).
    #[serde(default)]
    pub end_state: Option<EndState>,
    /// Why it ended that way.
    #[serde(default)]
    pub end_state_reason: Option<String>,
    /// The session's tags (replaces the stored set).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// A link to a recording of the session.
    #[serde(default)]
    pub video: Option<String>,
    /// The host environment (OS, CPU, …), free-form.
    #[serde(default)]
    pub host_env: Option<Value>,
    /// Counts of events by type, as the client counted them.
    #[serde(default)]
    pub event_counts: Option<BTreeMap<String, u64>>,
}

/// Answer to `create_session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateSessionResponse {
    /// `"success"`.
    #[serde(default)]
    pub status: Option<String>,
    /// The session-scoped JWT; without it the session never starts.
    pub jwt: String,
    /// Where the session can be seen.
    #[serde(default)]
    pub session_url: Option<String>,
}

/// Answer to `update_session`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateSessionResponse {
    /// `"success"`.
    #[serde(default)]
    pub status: Option<String>,
    /// The session's total cost in US dollars, as a decimal string (for example `"0.0123"`).
    #[serde(default)]
    pub token_cost: Option<Value>,
    /// Where the session can be seen.
    #[serde(default)]
    pub session_url: Option<String>,
}

/// Body of `create_events`: all events of one session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateEventsRequest {
    /// The events, in any order.
    pub events: Vec<Event>,
}

/// One v2 event. The fields every kind has are typed; the kind-specific ones
/// (`prompt`, `tool_name`, `error_type`, …) are in [`Event::fields`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event's UUID.
    pub id: String,
    /// `llms`, `actions`, `tools`, `errors`, or a custom name.
    pub event_type: String,
    /// When it started.
    pub init_timestamp: String,
    /// When it ended.
    #[serde(default)]
    pub end_timestamp: Option<String>,
    /// The session it belongs to.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The agent that did it.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// What it was given.
    #[serde(default)]
    pub params: Value,
    /// What it gave back.
    #[serde(default)]
    pub returns: Value,
    /// The kind-specific fields.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// Body of `create_agent`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAgentRequest {
    /// The agent's UUID, chosen by the client.
    pub id: String,
    /// Its display name.
    pub name: String,
}

/// Body of `reauthorize_jwt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReauthorizeJwtRequest {
    /// The session to issue a new JWT for.
    pub session_id: String,
}

/// Answer to `reauthorize_jwt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReauthorizeJwtResponse {
    /// The new session-scoped JWT.
    pub jwt: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_event_with_its_kind_specific_fields() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "7f2cc33c-d62a-4f3c-9232-d33a36925d83",
            "event_type": "tools",
            "init_timestamp": "2026-11-22T01:30:22.840365+00:00",
            "end_timestamp": "2026-11-22T01:30:22.843904+00:00",
            "params": {"expr": "2+2"},
            "returns": "4",
            "agent_id": null,
            "session_id": "ec025968-28a1-40dc-a031-44309d8be760",
            "name": "calculator",
            "tool_name": "calculator"
        }))
        .unwrap();
        assert_eq!(event.fields["tool_name"], "calculator");
        assert_eq!(event.returns, "4");
        assert!(event.agent_id.is_none());
    }

    #[test]
    fn session_body_ignores_unknown_keys() {
        let body: SessionRequest = serde_json::from_value(serde_json::json!({
            "session": {"session_id": "x", "_lock": "", "config": "", "end_state": "Fail"}
        }))
        .unwrap();
        assert_eq!(body.session.end_state, Some(EndState::Fail));
    }
}
