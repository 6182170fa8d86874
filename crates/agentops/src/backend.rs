//! One session as the backend knows it: its JWT, its v2 body, and the calls that change it.
//!
//! Shared by the session's exporter (which needs the JWT) and its lifecycle worker (which
//! creates, tags and ends it). Creation happens once, under a lock, by whichever needs it first.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use agentops_core::v2::{self, path, SessionBody, SessionRequest};
use agentops_core::EndState;
use serde_json::Value;
use uuid::Uuid;

use crate::delivery::{DeliveryStats, EventCounts};
use crate::transport::{Outcome, Transport};

/// Why the backend did not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// The backend answered with an error that retrying cannot fix.
    #[error("the AgentOps backend refused {call} (HTTP {status}): {message}")]
    Refused {
        /// The v2 call.
        call: &'static str,
        /// Its HTTP status.
        status: u16,
        /// The backend's message.
        message: String,
    },
    /// Every attempt failed (connection refused, timeouts, 5xx).
    #[error("the AgentOps backend could not be reached for {call}: {reason}")]
    Unreachable {
        /// The v2 call.
        call: &'static str,
        /// The last failure.
        reason: String,
    },
    /// The backend answered 2xx with a body the SDK cannot read.
    #[error("the AgentOps backend answered {call} with an unreadable body: {reason}")]
    BadAnswer {
        /// The v2 call.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
}

#[derive(Debug, Default)]
struct AuthState {
    jwt: Option<String>,
    session_url: Option<String>,
    /// Set when creation was refused for good (a bad API key): later calls fail at once.
    refused: Option<BackendError>,
}

/// The session's state as sent in `create_session` / `update_session`.
#[derive(Debug, Clone)]
pub(crate) struct SessionRecord {
    pub init_timestamp: String,
    pub end_timestamp: Option<String>,
    pub end_state: EndState,
    pub end_state_reason: Option<String>,
    pub tags: Vec<String>,
    pub host_env: Option<Value>,
}

/// A session on the backend.
pub(crate) struct SessionBackend {
    pub id: Uuid,
    transport: Arc<Transport>,
    auth: Mutex<AuthState>,
    record: Mutex<SessionRecord>,
    pub stats: DeliveryStats,
    pub counts: EventCounts,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionBackend {
    pub(crate) fn new(id: Uuid, transport: Arc<Transport>, record: SessionRecord) -> Self {
        Self {
            id,
            transport,
            auth: Mutex::default(),
            record: Mutex::new(record),
            stats: DeliveryStats::default(),
            counts: EventCounts::default(),
        }
    }

    pub(crate) fn record(&self) -> MutexGuard<'_, SessionRecord> {
        lock(&self.record)
    }

    pub(crate) fn session_url(&self) -> Option<String> {
        lock(&self.auth).session_url.clone()
    }

    fn body(&self) -> Vec<u8> {
        let record = self.record().clone();
        let request = SessionRequest {
            session: SessionBody {
                session_id: self.id.to_string(),
                init_timestamp: Some(record.init_timestamp),
                end_timestamp: record.end_timestamp,
                end_state: Some(record.end_state),
                end_state_reason: record.end_state_reason,
                tags: Some(record.tags),
                video: None,
                host_env: record.host_env,
                event_counts: Some(self.counts.snapshot()),
            },
        };
        serde_json::to_vec(&request).unwrap_or_default()
    }

    /// The session's JWT, creating the session on the backend first if needed.
    pub(crate) fn jwt(&self) -> Result<String, BackendError> {
        let mut auth = lock(&self.auth);
        if let Some(jwt) = &auth.jwt {
            return Ok(jwt.clone());
        }
        if let Some(refused) = &auth.refused {
            return Err(refused.clone());
        }
        const CALL: &str = "create_session";
        let attempted = self
            .transport
            .call(path::CREATE_SESSION, &self.body(), None);
        let answer = match expect_success(CALL, attempted.outcome) {
            Ok(answer) => answer,
            Err(err) => {
                if matches!(err, BackendError::Refused { .. }) {
                    auth.refused = Some(err.clone());
                }
                return Err(err);
            }
        };
        let created: v2::CreateSessionResponse =
            serde_json::from_str(&answer).map_err(|err| BackendError::BadAnswer {
                call: CALL,
                reason: format!("no jwt ({err})"),
            })?;
        tracing::debug!(target: "agentops", session_id = %self.id, "session created on the backend");
        auth.session_url = created.session_url;
        auth.jwt = Some(created.jwt.clone());
        Ok(created.jwt)
    }

    /// A new JWT after `stale` was refused; `None` when re-authorisation failed.
    pub(crate) fn reauthorize(&self, stale: &str) -> Option<String> {
        let mut auth = lock(&self.auth);
        if let Some(current) = &auth.jwt {
            if current != stale {
                return Some(current.clone());
            }
        }
        const CALL: &str = "reauthorize_jwt";
        let body = serde_json::to_vec(&v2::ReauthorizeJwtRequest {
            session_id: self.id.to_string(),
        })
        .unwrap_or_default();
        let attempted = self.transport.call(path::REAUTHORIZE_JWT, &body, None);
        let fresh = expect_success(CALL, attempted.outcome)
            .and_then(|answer| {
                serde_json::from_str::<v2::ReauthorizeJwtResponse>(&answer).map_err(|err| BackendError::BadAnswer {
                    call: CALL,
                    reason: err.to_string(),
                })
            })
            .map_err(|err| tracing::warn!(target: "agentops", session_id = %self.id, %err, "re-authorisation failed"))
            .ok()?;
        auth.jwt = Some(fresh.jwt.clone());
        Some(fresh.jwt)
    }

    /// Sends a v2 call that needs the session's JWT, re-authorising once on 401.
    pub(crate) fn call_with_jwt(
        &self,
        call: &'static str,
        path: &str,
        body: &[u8],
    ) -> Result<String, BackendError> {
        let jwt = self.jwt()?;
        let attempted = self.transport.call(path, body, Some(&jwt));
        match attempted.outcome {
            Outcome::Unauthorized(message) => match self.reauthorize(&jwt) {
                Some(fresh) => {
                    expect_success(call, self.transport.call(path, body, Some(&fresh)).outcome)
                }
                None => Err(BackendError::Refused {
                    call,
                    status: 401,
                    message,
                }),
            },
            outcome => expect_success(call, outcome),
        }
    }

    /// Sends the session's current state (`update_session`) and returns the backend's answer.
    pub(crate) fn update(&self) -> Result<v2::UpdateSessionResponse, BackendError> {
        const CALL: &str = "update_session";
        let answer = self.call_with_jwt(CALL, path::UPDATE_SESSION, &self.body())?;
        let parsed: v2::UpdateSessionResponse = serde_json::from_str(&answer).unwrap_or_default();
        if let Some(url) = &parsed.session_url {
            lock(&self.auth).session_url = Some(url.clone());
        }
        Ok(parsed)
    }

    /// Registers an agent of this session (`create_agent`).
    pub(crate) fn create_agent(&self, id: Uuid, name: &str) -> Result<(), BackendError> {
        let body = serde_json::to_vec(&v2::CreateAgentRequest {
            id: id.to_string(),
            name: name.to_owned(),
        })
        .unwrap_or_default();
        self.call_with_jwt("create_agent", path::CREATE_AGENT, &body)
            .map(drop)
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }
}

pub(crate) fn expect_success(call: &'static str, outcome: Outcome) -> Result<String, BackendError> {
    match outcome {
        Outcome::Success(body) => Ok(body),
        Outcome::Unauthorized(message) => Err(BackendError::Refused {
            call,
            status: 401,
            message,
        }),
        Outcome::TooLarge => Err(BackendError::Refused {
            call,
            status: 413,
            message: "request too large".into(),
        }),
        Outcome::Rejected { status, message } => Err(BackendError::Refused {
            call,
            status,
            message,
        }),
        Outcome::GaveUp(reason) => Err(BackendError::Unreachable { call, reason }),
    }
}
