//! Ids: a session's trace id is its UUID, and an event's UUID is derived from its span id.
//!
//! Deriving the event id from the span id means the exporter can name a span's parent event
//! (and an error's trigger) from the span alone, in any export order.

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::IdGenerator;
use uuid::Uuid;

/// Every span of a session gets the session's UUID as its trace id.
#[derive(Debug)]
pub(crate) struct SessionIdGenerator {
    trace_id: TraceId,
}

impl SessionIdGenerator {
    pub(crate) fn new(session_id: Uuid) -> Self {
        Self {
            trace_id: TraceId::from_bytes(*session_id.as_bytes()),
        }
    }
}

impl IdGenerator for SessionIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        self.trace_id
    }

    fn new_span_id(&self) -> SpanId {
        // A span id must not be all zeros.
        SpanId::from(fastrand::u64(1..))
    }
}

/// The UUID of the event recorded as `span` in `session`: the span id's 8 bytes, then the
/// session's last 8, marked as a version 8 (custom) UUID.
pub(crate) fn event_id(session_id: Uuid, span: SpanId) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&span.to_bytes());
    bytes[8..].copy_from_slice(&session_id.as_bytes()[8..]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The UUID of the event a span of this SDK records (its trace id is its session's UUID).
pub(crate) fn event_id_of(span: &opentelemetry_sdk::trace::SpanData) -> Uuid {
    event_id(
        Uuid::from_bytes(span.span_context.trace_id().to_bytes()),
        span.span_context.span_id(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_and_distinct() {
        let session = Uuid::new_v4();
        let generator = SessionIdGenerator::new(session);
        let (a, b) = (generator.new_span_id(), generator.new_span_id());
        assert_eq!(event_id(session, a), event_id(session, a));
        assert_ne!(event_id(session, a), event_id(session, b));
        assert_eq!(event_id(session, a).get_version_num(), 8);
        assert_eq!(generator.new_trace_id().to_bytes(), *session.as_bytes());
    }
}
