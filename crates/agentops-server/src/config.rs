//! Server configuration, with documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default listen address: the OTLP/HTTP port, loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4318";
/// The OTLP/gRPC port's usual address, loopback only: what `agentops serve` listens on unless
/// told otherwise ([`Config::new`] leaves gRPC off, for servers embedded in other programs).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:4317";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./agentops-data";
/// Default limit on a request body, after decompression: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default write queue length (requests waiting for the writer).
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Default largest number of requests committed in one transaction.
pub const DEFAULT_BATCH_MAX: usize = 256;
/// Default most connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default longest time to receive a request's headers, or to stay idle between requests.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Default longest time to receive a request's body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default token lifetime: 24 hours.
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default time between two retention passes (the first runs at start): an hour.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

pub use crate::store::Retention;

/// Everything the server needs to start.
///
/// ```
/// let config = agentops_server::Config::new("/tmp/agentops-doc-example");
/// assert_eq!(config.listen.port(), 4318);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where OTLP/gRPC listens (see [`crate::grpc`]); `None` (the default here): not at all.
    pub grpc_listen: Option<SocketAddr>,
    /// Whether failing to bind `grpc_listen` stops the start (an address asked for), or only
    /// logs a warning and serves without gRPC (the default address, which another collector
    /// may hold).
    pub grpc_required: bool,
    /// Holds `agentops.db` (SQLite, WAL) and `jwt-secret`.
    pub data_dir: PathBuf,
    /// A `postgres://` URL: the store is that PostgreSQL database (shared by every replica
    /// given the same URL, the JWT secret included) instead of `data_dir`'s SQLite file.
    pub database_url: Option<String>,
    /// A known API key (a UUID) for the default project, stored hashed; idempotent across restarts.
    pub api_key: Option<String>,
    /// Largest accepted request body in bytes, after gzip decompression.
    pub max_body_bytes: usize,
    /// Connections served at once; more are closed as they arrive (each costs a file
    /// descriptor; idle ones are closed after `header_timeout`).
    pub max_connections: usize,
    /// The longest a client may take to send a request's headers (slowloris), or stay idle
    /// between requests on a kept-alive connection; the connection is closed then.
    pub header_timeout: Duration,
    /// The longest a client may take to send a request's body (408 then).
    pub body_timeout: Duration,
    /// Requests that may wait for the writer before new ones get 503.
    pub queue_capacity: usize,
    /// Requests committed together at most.
    pub batch_max: usize,
    /// Lifetime of issued JWTs.
    pub jwt_ttl: Duration,
    /// A JSON price table replacing the built-in one.
    pub prices_file: Option<PathBuf>,
    /// Base URL of the dashboard, used in `session_url` answers.
    pub public_url: Option<String>,
    /// Store `/v1/traces` requests that carry no credentials at all in the default project.
    /// Off by default (they get 401). The Python SDK 0.4.x exports its first spans before its
    /// token arrives and never resends them; a local single-user server may want them.
    pub accept_unauthenticated_traces: bool,
    /// Let the read API (`/api/v1`) answer callers without credentials, as the default
    /// project. Off by default; only allowed when `listen` is a loopback address (the server
    /// refuses to start otherwise), for a single user on their own machine.
    pub open_read_access: bool,
    /// How long sessions are kept (default: forever). A project's own retention
    /// (`agentops projects set-retention`) overrides it. Old sessions are deleted at start and
    /// then every `retention_interval`.
    pub retention: Retention,
    /// Time between two retention passes.
    pub retention_interval: Duration,
    /// How long a plain trace (no AgentOps session span) whose root span has ended waits for
    /// late spans before the server ends its session (see [`crate::quiet_window`]).
    pub session_quiet_window: Duration,
    /// Serve `GET /metrics` (Prometheus) without credentials on any listen address. Off by
    /// default: on a loopback listen address requests addressed to a loopback host name need
    /// none anyway; others need read credentials, as `/api/v1` does.
    pub metrics_public: bool,
}

impl Config {
    /// The defaults, with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
            grpc_listen: None,
            grpc_required: true,
            data_dir: data_dir.into(),
            database_url: None,
            api_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_max: DEFAULT_BATCH_MAX,
            jwt_ttl: DEFAULT_JWT_TTL,
            prices_file: None,
            public_url: None,
            accept_unauthenticated_traces: false,
            open_read_access: false,
            retention: Retention::Forever,
            retention_interval: DEFAULT_RETENTION_INTERVAL,
            session_quiet_window: crate::quiet_window::DEFAULT_QUIET_WINDOW,
            metrics_public: false,
        }
    }
}
