//! # AgentOps SDK for Rust
//!
//! Observe AI agents: every LLM call, action, tool call and error becomes an OpenTelemetry
//! span, grouped into a session, exported in batches to an AgentOps backend (the local
//! `agentops serve`, or any server that speaks the AgentOps v2 API).
//!
//! - **Single-session mode**: [`init`] starts a session; [`record`] and [`end_session`] act on it.
//! - **Multi-session mode**: a [`Client`] starts [`Session`]s; record through each handle, or
//!   make one current for a thread ([`Session::enter`]) or an async task ([`Session::scope`]).
//!
//! Recording never waits on the network: each session's events are queued (bounded; overflow
//! is dropped and counted) and delivered by opentelemetry-sdk's batch processor thread,
//! gzip-compressed, with retries. [`Session::end`] delivers everything, then reports the cost
//! and what became of every event.
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
mod reply;
mod sampling;
mod session;
mod state;
mod summary;
mod transport;
mod worker;

pub use agentops_core::{EndState, EventKind};
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
    add_tags, client, create_agent, end_session, init, record, session, set_tags, shutdown,
    start_event, start_session,
};
pub use session::{current_session, EventSpan, Session, SessionGuard};
pub use summary::{SessionOptions, SessionSummary};
