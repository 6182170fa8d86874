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
//!
//! # Metrics
//!
//! Each client also records OpenTelemetry metrics and exports them every
//! `AGENTOPS_METRICS_INTERVAL` (10 s by default) as OTLP/HTTP protobuf, cumulative, to
//! [`Config::metrics_endpoint`]: `{endpoint}/v1/metrics` with the API key in
//! `X-Agentops-Api-Key` over [`Protocol::V2`]; over [`Protocol::Otlp`],
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/metrics`,
//! else `{endpoint}/v1/metrics`) with the spans' credentials. Turn them off with
//! `AGENTOPS_METRICS=false` or [`ConfigBuilder::metrics`].
//!
//! | instrument | kind, unit | attributes |
//! |---|---|---|
//! | `gen_ai.client.token.usage` | histogram, `{token}` | `gen_ai.token.type` (`input`, `output`), `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.provider.name` |
//! | `gen_ai.client.operation.duration` | histogram, `s` | `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.provider.name` |
//! | `agentops.llm.calls` | counter, `{call}` | `gen_ai.request.model`, `gen_ai.provider.name` |
//! | `agentops.llm.tokens` | counter, `{token}` | `gen_ai.request.model`, `gen_ai.provider.name`, `gen_ai.token.type` (`input`, `output`, `cached`, `reasoning`) |
//! | `agentops.llm.cost` | counter, `USD` | `gen_ai.request.model`, `gen_ai.provider.name` |
//! | `agentops.events` | counter, `{event}` | `agentops.outcome` (`recorded`, `delivered`, `dropped`, `failed`, `sampled_out`) |
//! | `agentops.export.duration` | histogram, `s` | `agentops.call` (`create_session`, `create_events`, `traces`, `metrics`, …), `agentops.outcome` (`success`, `retryable_error`, `rejected`, `unauthorized`, `too_large`, `unusable`) |
//! | `agentops.export.batch.size` | histogram, `{event}` | `agentops.outcome` (`delivered`, `failed`) |
//! | `agentops.queue.depth` | gauge, `{event}` | none: events waiting for export across open sessions |
//!
//! Model and provider attributes are there when known (the provider from an event's
//! `gen_ai.provider.name` or `gen_ai.system` attribute). Recording an event costs the caller
//! nothing more for metrics:
//!
//! - LLM metrics are computed on the delivery thread from the events it exports: events left
//!   out by sampling, or dropped because their queue was full, are not in them. The cost is the
//!   event's [`Event::cost`], else the built-in price table's.
//! - `agentops.events` is observed from the counters behind [`DeliveryCounts`], summed over
//!   the client's sessions (finished ones included), so its values equal the sessions' counts.
//! - Metrics are collected by one thread per client (opentelemetry-sdk's `PeriodicReader`,
//!   started with the first session) and sent by the client's delivery thread, with the
//!   events' TLS, timeouts, compression and retries; a newer export replaces one not yet sent.
//!   [`Client::shutdown`] (and the exit hook, for the sessions it ends) exports them once more,
//!   within `shutdown_timeout`. A backend answering 404, 405 or 415 has no metrics endpoint:
//!   that is logged once and the client stops exporting metrics; events are not affected.
//!   Metrics recorded since the last export are lost when a client is dropped without
//!   [`Client::shutdown`] while no session is open.
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
mod metrics;
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
