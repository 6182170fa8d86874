//! The AgentOps server: an AgentOps-compatible backend with an embedded store.
//!
//! It accepts what the real AgentOps Python SDK sends (0.3.x over the v2 REST API, 0.4.x over
//! `/v3/auth/token` + OTLP/HTTP), what any OpenTelemetry SDK sends (`/v1/traces`), and what the
//! Rust SDK sends; maps all of it onto one data model (see [`store`]); commits it through one
//! batching writer ([`writer`]); and answers a small read API ([`api`]).
//!
//! Start it in-process (for example from a test) on a free port:
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentops_server::ServerError> {
//! let mut config = agentops_server::Config::new("/tmp/agentops-test-data");
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! config.api_key = Some("6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into());
//! let server = agentops_server::Server::start(config).await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod caller;
pub mod config;
mod dashboard;
pub mod error;
pub mod grpc;
pub mod http_errors;
pub mod ingest;
pub mod mapping;
pub mod quiet_window;
pub mod retention;
pub mod serve;
pub mod server_metrics;
pub mod state;
pub mod store;
pub mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agentops_core::pricing::PriceTable;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::oneshot;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;
use store::sqlite::SqliteStore;
use store::{AdminStore, Store, StoreError};

/// Name of the SQLite database file in the data directory.
pub const DATABASE_FILE: &str = "agentops.db";
/// Name of the JWT secret file in the data directory.
pub const SECRET_FILE: &str = "jwt-secret";
/// How long a signalled server waits for open connections to finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed to open or bootstrap.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store refused a project's or a key's setup (a key another project has).
    #[error("{0}")]
    Admin(#[from] store::AdminError),
    /// `--api-key` is not a UUID.
    #[error("invalid API key {0:?}: an AgentOps API key is a UUID")]
    InvalidApiKey(String),
    /// The price file could not be read.
    #[error("price file {path}: {message}")]
    Prices {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Open read access was asked for on an address other hosts can reach.
    #[error("open read access (--open-read-access) is only allowed on a loopback listen address, not {0}: bind 127.0.0.1 or ::1, or require credentials")]
    OpenReadAccessNotLoopback(SocketAddr),
    /// Another I/O failure (starting the writer thread, serving).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The HTTP routes over `state`.
pub fn app(state: AppState) -> Router {
    use ingest::{otlp, sdk_v4, v2};
    Router::new()
        .route(
            agentops_core::v2::path::CREATE_SESSION,
            post(v2::create_session),
        )
        .route(
            agentops_core::v2::path::UPDATE_SESSION,
            post(v2::update_session),
        )
        .route(
            agentops_core::v2::path::CREATE_EVENTS,
            post(v2::create_events),
        )
        .route(
            agentops_core::v2::path::CREATE_AGENT,
            post(v2::create_agent),
        )
        .route(
            agentops_core::v2::path::REAUTHORIZE_JWT,
            post(v2::reauthorize_jwt),
        )
        .route(
            agentops_core::v2::path::DEVELOPER_ERRORS,
            post(v2::developer_errors),
        )
        .route("/v3/auth/token", post(sdk_v4::auth_token))
        .route("/v4/logs/upload/", post(sdk_v4::logs_upload))
        .route("/v4/logs/upload", post(sdk_v4::logs_upload))
        .route("/v1/traces", post(otlp::traces))
        .route("/v1/logs", post(otlp::logs::logs))
        .route("/v1/metrics", post(otlp::metrics::metrics))
        .route("/api/v1/sessions", get(api::list_sessions))
        .route("/api/v1/sessions/{id}", get(api::get_session))
        .route(
            "/api/v1/sessions/{id}/events/{event_id}",
            get(api::get_event),
        )
        .route("/api/v1/agents", get(api::list_agents))
        .route("/api/v1/stats", get(api::stats))
        .route("/api/v1/metrics", get(api::metrics::metrics))
        .route(
            "/api/v1/auth/dashboard-token",
            post(api::dashboard_token).layer(axum::extract::DefaultBodyLimit::max(
                api::DASHBOARD_TOKEN_MAX_BODY,
            )),
        )
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/health", get(health))
        .route("/metrics", get(server_metrics::scrape))
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(http_errors::request_limits))
        .layer(axum::middleware::from_fn(http_errors::json_errors))
        .layer(axum::middleware::from_fn(
            http_errors::close_after_refused_body,
        ))
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics().clone(),
            server_metrics::track_requests,
        ))
        .with_state(state)
}

/// Logs each request at debug level (warn for 5xx): method, path, status, duration.
async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if status >= 500 {
        tracing::warn!(%method, %path, status, ?elapsed, "request failed");
    } else {
        tracing::debug!(%method, %path, status, ?elapsed, "request");
    }
    response
}

/// Until the store has a payload dictionary: asks it to train one, at start and then every
/// [`DICTIONARY_CHECK`] (it does once enough payloads are stored).
async fn train_payload_dictionary(store: Arc<dyn Store>) {
    loop {
        if store.payload_dictionary().is_some() {
            return;
        }
        let trainer = store.clone();
        match tokio::task::spawn_blocking(move || trainer.train_payload_dictionary()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "training a payload dictionary failed"),
            Err(e) => tracing::warn!(error = %e, "the payload dictionary task failed"),
        }
        tokio::time::sleep(DICTIONARY_CHECK).await;
    }
}

/// How often a store without a payload dictionary is asked to train one.
const DICTIONARY_CHECK: std::time::Duration = std::time::Duration::from_secs(20);

/// `GET /health`: the server answers; what became of the spans sent without credentials; and
/// what retention has deleted.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (StatusCode, Json<serde_json::Value>) {
    let asker = state.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let store = asker.store();
        store.check()?;
        asker.held().counts(store.as_ref())
    })
    .await
    .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("store check failed: {e}"))));
    let (status, store, held) = match checked {
        Ok(held) => (
            StatusCode::OK,
            serde_json::json!("ok"),
            serde_json::json!(held),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!(e.to_string()),
                serde_json::Value::Null,
            )
        }
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "store": store,
        "credential_less_spans": held,
        "retention": state.retention().to_json(),
    });
    (status, Json(body))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

async fn method_not_allowed() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({"error": "method not allowed"})),
    )
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    project_id: String,
    created_api_key: Option<String>,
    store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Creates `dir` (and its parents) if needed; a directory it creates is its owner's alone.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The store `config` names (its PostgreSQL database, else the SQLite file of its data
/// directory) and the keys tokens are signed with: the secret every replica on that database
/// shares, else the data directory's own.
async fn open_store(config: &Config) -> Result<(Arc<dyn Store>, auth::JwtKeys), ServerError> {
    let ttl = config.jwt_ttl.as_secs().max(1) as i64;
    if let Some(url) = &config.database_url {
        if !store::postgres::is_postgres_url(url) {
            return Err(ServerError::Store(StoreError::Config(format!(
                "--database-url must be a postgres:// URL, not {:?}",
                url.split("://").next().unwrap_or(url)
            ))));
        }
        let url = url.clone();
        let store: Arc<dyn Store> = tokio::task::spawn_blocking(move || {
            store::postgres::PgStore::connect(&url).map(|s| Arc::new(s) as Arc<dyn Store>)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("connecting to PostgreSQL: {e}")))??;
        let secret = store
            .shared_secret("jwt", &auth::JwtKeys::new_secret())?
            .ok_or_else(|| StoreError::Config("the store keeps no shared secret".into()))?;
        return Ok((store, auth::JwtKeys::new(secret, ttl)));
    }
    let secret_path = config.data_dir.join(SECRET_FILE);
    let jwt = auth::JwtKeys::load_or_create(&secret_path, ttl).map_err(|source| {
        ServerError::DataDir {
            path: secret_path,
            source,
        }
    })?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir.join(DATABASE_FILE))?);
    Ok((store, jwt))
}

impl Server {
    /// Opens the store in `config.data_dir` (creating the default project and, when no key
    /// exists yet, an API key), binds `config.listen` and starts serving on the current tokio
    /// runtime.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        if config.open_read_access && !config.listen.ip().is_loopback() {
            return Err(ServerError::OpenReadAccessNotLoopback(config.listen));
        }
        let data_dir = config.data_dir.clone();
        if config.database_url.is_none() {
            create_private_dir(&data_dir).map_err(|source| ServerError::DataDir {
                path: data_dir.clone(),
                source,
            })?;
        }
        let prices = match &config.prices_file {
            None => PriceTable::builtin(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ServerError::Prices {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                PriceTable::from_json(&text).map_err(|e| ServerError::Prices {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let (store, jwt) = open_store(&config).await?;
        let (project_id, created_api_key) = bootstrap(store.as_ref(), config.api_key.as_deref())?;

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr()?;
        let grpc_listener = match config.grpc_listen {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => Some(listener),
                Err(source) if config.grpc_required => {
                    return Err(ServerError::Bind { addr, source })
                }
                Err(error) => {
                    tracing::warn!(%addr, %error, "OTLP/gRPC not served: cannot listen on its default address (set --grpc-listen)");
                    None
                }
            },
            None => None,
        };
        let grpc_addr = grpc_listener
            .as_ref()
            .map(tokio::net::TcpListener::local_addr)
            .transpose()?;
        let (writer, writer_threads) =
            writer::spawn(store.clone(), config.queue_capacity, config.batch_max)?;
        let writer_metrics = writer.metrics().clone();
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let anonymous = config
            .accept_unauthenticated_traces
            .then(|| project_id.clone());
        let open_read = config.open_read_access.then(|| project_id.clone());
        let retention_status = Arc::new(retention::RetentionStatus::new(config.retention));
        let (stop_retention, retention_stopped) = tokio::sync::watch::channel(false);
        let retention_task = tokio::spawn(
            retention::RetentionTask {
                store: store.clone(),
                writer: writer.clone(),
                retention: config.retention,
                interval: config.retention_interval,
                status: retention_status.clone(),
            }
            .run(retention_stopped),
        );
        let quiet = tokio::spawn(quiet_window::run(
            writer.clone(),
            config.session_quiet_window,
        ));
        let state = AppState::new(state::StateParts {
            store: store.clone(),
            writer,
            jwt,
            prices,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.body_timeout,
            public_url,
            anonymous_trace_project: anonymous,
            open_read_project: open_read,
            retention: retention_status,
            metrics: Arc::new(server_metrics::ServerMetrics::new(
                &writer_metrics,
                server_metrics::MetricsAccess::for_listen(local_addr, config.metrics_public),
            )),
        });
        let (stop_grpc, grpc_stopped) = oneshot::channel::<()>();
        let grpc_task = grpc_listener.map(|listener| {
            tokio::spawn(grpc::serve(
                listener,
                state.clone(),
                config.max_body_bytes,
                async move {
                    let _ = grpc_stopped.await;
                },
            ))
        });
        let router = app(state);
        let (shutdown, stop) = oneshot::channel::<()>();
        let max_connections = config.max_connections;
        let header_timeout = config.header_timeout;
        let trainer = tokio::spawn(train_payload_dictionary(store.clone()));

        let task = tokio::spawn(async move {
            let served =
                serve::serve(listener, router, max_connections, header_timeout, stop).await;
            // The gRPC listener finishes its requests and drops its writer handles.
            let _ = stop_grpc.send(());
            if let Some(grpc_task) = grpc_task {
                match grpc_task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "the OTLP/gRPC listener failed"),
                    Err(_) => tracing::error!("the OTLP/gRPC listener panicked"),
                }
            }
            // The retention task finishes its write in flight and drops its writer handle.
            let _ = stop_retention.send(true);
            if retention_task.await.is_err() {
                tracing::error!("the retention task panicked");
            }
            trainer.abort();
            quiet.abort();
            let _ = quiet.await;
            // Every connection is closed, so every handle to the writer is gone: the writer
            // thread commits what is queued and stops.
            let joined = tokio::task::spawn_blocking(move || writer_threads.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("a writer thread panicked");
            }
            tracing::info!("server stopped");
            served.map_err(ServerError::Io)
        });
        let store_at = match &config.database_url {
            Some(url) => store::postgres::redact(url),
            None => data_dir.display().to_string(),
        };
        tracing::info!(%local_addr, grpc = ?grpc_addr, store = %store_at, retention = %config.retention, "AgentOps server listening");
        Ok(Server {
            local_addr,
            grpc_addr,
            project_id,
            created_api_key,
            store,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The OTLP/gRPC address actually bound, when `grpc_listen` was set.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// `http://<local_addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The store it serves from.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The default project's id.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The API key generated on this start (first start without `--api-key`); shown once,
    /// only its hash is stored.
    pub fn created_api_key(&self) -> Option<&str> {
        self.created_api_key.as_deref()
    }

    /// Creates another project with a fresh API key; returns `(project_id, api_key)`.
    pub fn create_project(&self, name: &str) -> Result<(String, String), ServerError> {
        create_project(self.store.as_ref(), name)
    }

    /// Stops accepting connections, finishes in-flight requests, commits everything queued.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully: in-flight requests finish and
    /// everything they queued is committed. After [`SHUTDOWN_GRACE`] the remaining connections
    /// (whose requests were not acknowledged) are abandoned.
    pub async fn run_until_signal(self) -> Result<(), ServerError> {
        let signals = ShutdownSignals::listen()?;
        self.run_until(signals).await
    }

    /// [`Server::run_until_signal`] with signals listened for since `signals` was made: make
    /// it before telling anyone the server is up, so that a signal sent at once is not missed.
    pub async fn run_until(self, signals: ShutdownSignals) -> Result<(), ServerError> {
        signals.received().await;
        tracing::info!("shutdown signal received, draining");
        match tokio::time::timeout(SHUTDOWN_GRACE, self.shutdown()).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; exiting");
                Ok(())
            }
        }
    }

    async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ServerError::Io(std::io::Error::other(format!(
                "server task failed: {e}"
            )))),
        }
    }
}

/// Starts the server and serves until SIGINT/SIGTERM. A generated API key is logged once.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let server = Server::start(config).await?;
    if let Some(key) = server.created_api_key() {
        tracing::warn!(
            api_key = key,
            "created an API key for the default project; it is shown only once"
        );
    }
    server.run_until_signal().await
}

/// Creates a project with a fresh API key in `store`; returns `(project_id, api_key)`.
pub fn create_project(store: &dyn Store, name: &str) -> Result<(String, String), ServerError> {
    let project_id = store.create_project(name)?;
    let key = create_api_key(store, &project_id)?;
    Ok((project_id, key))
}

/// Creates a new API key for a project and returns it (only its hash is stored).
pub fn create_api_key(store: &dyn AdminStore, project_id: &str) -> Result<String, ServerError> {
    let key = uuid::Uuid::new_v4().to_string();
    store.add_api_key(project_id, &auth::hash_api_key(&key))?;
    Ok(key)
}

/// Ensures a default project exists and has a key: `api_key` if given (stored hashed,
/// idempotent), else a generated one if the store has no key at all.
fn bootstrap(
    store: &dyn AdminStore,
    api_key: Option<&str>,
) -> Result<(String, Option<String>), ServerError> {
    let project_id = store.default_project_or_create("default")?;
    if let Some(key) = api_key {
        if !auth::is_valid_api_key(key) {
            return Err(ServerError::InvalidApiKey(key.to_owned()));
        }
        store.add_api_key(&project_id, &auth::hash_api_key(key))?;
        return Ok((project_id, None));
    }
    if store.api_key_count()? == 0 {
        let key = uuid::Uuid::new_v4().to_string();
        store.add_api_key(&project_id, &auth::hash_api_key(&key))?;
        return Ok((project_id, Some(key)));
    }
    Ok((project_id, None))
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), caught from the moment [`ShutdownSignals::listen`]
/// returns: until then, and without it, SIGTERM ends the process at once.
#[derive(Debug)]
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Starts catching the signals (on the current tokio runtime).
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for one of the signals.
    pub async fn received(self) {
        #[cfg(unix)]
        {
            let Self {
                mut interrupt,
                mut terminate,
            } = self;
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
