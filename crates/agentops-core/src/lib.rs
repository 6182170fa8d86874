//! The shared model of AgentOps in Rust.
//!
//! Both the SDK (`agentops`) and the server speak in these terms:
//! - [`EndState`] and [`EventKind`]: how a session ends and what an event is;
//! - [`attributes`]: the span attribute keys of the design document;
//! - [`timestamp`]: the ISO 8601 form every AgentOps timestamp takes on the wire;
//! - [`pricing`]: model prices and the cost of an LLM call;
//! - [`v2`]: the JSON bodies of the AgentOps v2 REST API, as the Python SDK 0.3.x sends them.

pub mod attributes;
mod end_state;
mod event_kind;
pub mod pricing;
pub mod timestamp;
pub mod v2;

pub use end_state::{EndState, ParseEndStateError};
pub use event_kind::EventKind;
