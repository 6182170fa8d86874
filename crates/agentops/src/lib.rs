//! # AgentOps SDK for Rust
//!
//! Observe AI agents: every LLM call, action, tool call and error becomes an OpenTelemetry
//! span, grouped into a session, exported in batches to an AgentOps backend (the local
//! `agentops serve`, an AgentOps backend, or, over OTLP, any OpenTelemetry backend).
//!
//! - **Single-session mode**: [`init`] starts a session; [`record`] and [`end_session`] act on it.
//! - **Multi-session mode**: a [`Client`] starts [`Session`]s; record through each handle, or
//!   make one current for a thread ([`Session::enter`]) or an async task ([`Session::scope`]).
//!
//! The guarantees:
//!
//! - **Recording never waits on the network.** Each session's events are queued (bounded;
//!   overflow is dropped and counted) and delivered by the client's one delivery thread,
//!   gzip-compressed, with retries.
//! - **Ending is bounded.** [`Session::end`] delivers everything, then reports the cost and
//!   what became of every event, within `shutdown_timeout` whatever the backend does;
//!   [`Session::end_async`] does the same without blocking an async runtime. Dropping a session
//!   ends it in the background.
//! - **Every event is accounted for**: `recorded = delivered + dropped + failed + sampled_out +
//!   pending` ([`DeliveryCounts`]).
//! - **Exit is safe**: returning from `main` or `std::process::exit` ends and delivers open
//!   sessions; with [`init`], panics are recorded and a panic on the main thread ends the
//!   session as `Fail`.
//! - **Two wire protocols** ([`Protocol`]): the AgentOps v2 REST API, or OTLP/HTTP protobuf after
//!   `/v3/auth/token` as agentops 0.4 sends it. `https://` through rustls, with
//!   `AGENTOPS_CA_CERT` for a private authority.
//!
//! ```no_run
//! use agentops::{ChatMessage, EndState, Event};
//!
//! // Reads AGENTOPS_API_KEY and AGENTOPS_API_ENDPOINT (default http://127.0.0.1:4318).
//! agentops::init(agentops::Config::from_env()?)?;
//! agentops::record(
//!     Event::llm("gpt-4o-mini")
//!         .prompt_messages([ChatMessage::user("What is 2+2?")])
//!         .completion("4")
//!         .tokens(7, 1),
//! )?;
//! let summary = agentops::end_session(EndState::Success, "answered")?;
//! println!("cost ${:?}, {} events delivered", summary.token_cost, summary.delivery.delivered);
//! # Ok::<(), agentops::Error>(())
//! ```

mod backend_error;
mod call;
mod client;
pub mod config;
mod delivery;
mod error;
mod event;
mod exit;
mod exporter;
mod global;
mod host_env;
mod ids;
mod processor;
pub mod propagation;
mod reply;
mod sampling;
mod session;
mod state;
mod summary;
mod sync;
#[cfg(feature = "tracing-layer")]
mod tracing_layer;
mod transport;
mod worker;

pub use agentops_core::{EndState, EventKind};
#[cfg(feature = "macros")]
pub use agentops_macros::{action, llm, tool};
pub use client::Client;
pub use config::{
    Compression, Config, ConfigBuilder, ConfigError, OtlpSettings, Protocol, RetryPolicy,
    SamplingScope,
};
pub use delivery::DeliveryCounts;
pub use error::{BackendError, Error};
pub use event::{AgentId, ChatMessage, Event, EventId};
pub use exporter::SessionExporter;
pub use global::{
    add_tags, client, create_agent, end_session, init, join_session, record, session, set_tags,
    shutdown, start_event, start_session,
};
pub use session::{current_agent, current_session, EventSpan, Session, SessionGuard};
pub use summary::{SessionOptions, SessionSummary};
#[cfg(feature = "tracing-layer")]
pub use tracing_layer::{tracing_layer, AgentopsLayer};

/// What the attribute macros expand to call; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::call::*;
}
