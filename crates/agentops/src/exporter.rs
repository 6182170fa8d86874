//! The SessionExporter: turns a session's spans back into v2 events and delivers them.
//!
//! Runs on the batch processor's thread, never on the caller's. Each batch goes to
//! `/v2/create_events` with the session's JWT (creating the session on the backend first if it
//! is not yet), retried with backoff by the transport; a 401 re-authorises once, a 413 splits
//! the batch, any other 4xx drops it. Every event ends up counted as delivered or failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use agentops_core::{attributes as attr, v2};
use opentelemetry::trace::SpanId;
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::backend::SessionBackend;
use crate::delivery::DeliveryStats;
use crate::ids;
use crate::transport::Outcome;

/// Exports one session's spans to the AgentOps v2 API.
pub struct SessionExporter {
    backend: Arc<SessionBackend>,
    export_lock: Mutex<()>,
    shutdown: AtomicBool,
}

impl std::fmt::Debug for SessionExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionExporter")
            .field("session_id", &self.backend.id)
            .field("shutdown", &self.shutdown.load(Ordering::Relaxed))
            .finish()
    }
}

#[derive(Serialize)]
struct CreateEvents<'a> {
    events: &'a [v2::Event],
}

impl SessionExporter {
    pub(crate) fn new(backend: Arc<SessionBackend>) -> Self {
        Self {
            backend,
            export_lock: Mutex::new(()),
            shutdown: AtomicBool::new(false),
        }
    }

    fn stats(&self) -> &DeliveryStats {
        &self.backend.stats
    }

    fn deliver(&self, events: &[v2::Event]) {
        let jwt = match self.backend.jwt() {
            Ok(jwt) => jwt,
            Err(err) => {
                tracing::warn!(target: "agentops", session_id = %self.backend.id, %err, events = events.len(), "events not delivered: the session could not be created");
                self.stats().settle(&self.stats().failed, events.len());
                return;
            }
        };
        self.post(events, jwt, false);
    }

    fn post(&self, events: &[v2::Event], jwt: String, reauthorized: bool) {
        let body = serde_json::to_vec(&CreateEvents { events }).unwrap_or_default();
        let attempted = self
            .backend
            .transport()
            .call(v2::path::CREATE_EVENTS, &body, Some(&jwt));
        DeliveryStats::add(
            &self.stats().retried,
            attempted.retries as usize * events.len(),
        );
        let stats = self.stats();
        match attempted.outcome {
            Outcome::Success(_) => stats.settle(&stats.delivered, events.len()),
            Outcome::Unauthorized(message) => {
                let fresh = if reauthorized {
                    None
                } else {
                    self.backend.reauthorize(&jwt)
                };
                match fresh {
                    Some(fresh) => {
                        DeliveryStats::add(&stats.retried, events.len());
                        self.post(events, fresh, true);
                    }
                    None => {
                        tracing::warn!(target: "agentops", session_id = %self.backend.id, %message, events = events.len(), "events refused: unauthorised");
                        stats.settle(&stats.failed, events.len());
                    }
                }
            }
            Outcome::TooLarge if events.len() > 1 => {
                let (left, right) = events.split_at(events.len() / 2);
                tracing::debug!(target: "agentops", events = events.len(), "batch too large, splitting");
                DeliveryStats::add(&stats.retried, events.len());
                self.post(left, jwt.clone(), reauthorized);
                self.post(right, jwt, reauthorized);
            }
            Outcome::TooLarge => {
                tracing::warn!(target: "agentops", session_id = %self.backend.id, event_id = %events[0].id, "event dropped: larger than the backend accepts");
                stats.settle(&stats.failed, 1);
            }
            Outcome::Rejected { status, message } => {
                tracing::warn!(target: "agentops", session_id = %self.backend.id, status, %message, events = events.len(), "events rejected by the backend");
                stats.settle(&stats.failed, events.len());
            }
            Outcome::GaveUp(reason) => {
                tracing::warn!(target: "agentops", session_id = %self.backend.id, %reason, events = events.len(), "events not delivered: giving up after retries");
                stats.settle(&stats.failed, events.len());
            }
        }
    }
}

impl SpanExporter for SessionExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let _exporting = self
            .export_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stats = self.stats();
        stats.queued.fetch_sub(batch.len() as u64, Ordering::AcqRel);
        if self.shutdown.load(Ordering::Acquire) {
            stats.settle(&stats.failed, batch.len());
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let events: Vec<v2::Event> = batch
            .iter()
            .filter_map(|span| to_v2_event(self.backend.id, span))
            .collect();
        let malformed = batch.len() - events.len();
        if malformed > 0 {
            tracing::warn!(target: "agentops", malformed, "spans without AgentOps event attributes were not exported");
            stats.settle(&stats.failed, malformed);
        }
        if !events.is_empty() {
            self.deliver(&events);
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        let _exporting = self
            .export_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.shutdown.store(true, Ordering::Release);
        Ok(())
    }
}

/// Reads an AgentOps event back out of its span; `None` if the span is not one.
pub(crate) fn to_v2_event(session_id: uuid::Uuid, span: &SpanData) -> Option<v2::Event> {
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
    Some(v2::Event {
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
