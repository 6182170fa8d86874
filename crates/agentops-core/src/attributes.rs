//! Span attribute keys.
//!
//! Every AgentOps event is one OpenTelemetry span carrying exactly the design document's
//! attributes ([`EVENT_ID`] … [`SESSION_ID`]) plus [`SESSION_TAGS`].

/// The event's UUID (string).
pub const EVENT_ID: &str = "event.id";
/// The v2 `event_type` (`llms`, `actions`, `tools`, `errors`, or a custom name).
pub const EVENT_TYPE: &str = "event.type";
/// When the event started, ISO 8601.
pub const EVENT_TIMESTAMP: &str = "event.timestamp";
/// When the event ended, ISO 8601.
pub const EVENT_END_TIMESTAMP: &str = "event.end_timestamp";
/// The event's kind-specific fields, JSON-serialised.
pub const EVENT_DATA: &str = "event.data";
/// The session's UUID (string).
pub const SESSION_ID: &str = "session.id";
/// The session's tags, as a string array.
pub const SESSION_TAGS: &str = "session.tags";
