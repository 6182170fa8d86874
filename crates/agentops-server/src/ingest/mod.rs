//! The write side of the HTTP API: every endpoint an SDK sends data to.
//!
//! - [`v2`]: the AgentOps v2 REST API (Python SDK 0.3.x, the Rust SDK);
//! - [`sdk_v4`]: `/v3/auth/token` and `/v4/logs/upload/` (Python SDK 0.4.x);
//! - [`otlp`]: OTLP/HTTP traces (any OpenTelemetry SDK, Python SDK 0.4.x);
//! - [`held`]: OTLP spans sent without credentials, held until their trace is claimed;
//! - [`body`]: size limit, gzip and content types, shared by all.

pub mod body;
pub mod held;
pub mod otlp;
pub mod sdk_v4;
pub mod v2;
