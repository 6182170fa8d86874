//! What every request handler shares, and how it finds the caller's project.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a looked-up API key is trusted before it is looked up again: the longest a key
/// revoked with `agentops keys revoke` keeps working on a running server.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

use agentops_core::pricing::PriceTable;
use axum::http::HeaderMap;

use crate::auth::{self, Claims, JwtKeys};
use crate::error::ApiError;
use crate::ingest::held::HeldSpans;
use crate::retention::RetentionStatus;
use crate::server_metrics::ServerMetrics;
use crate::store::Store;
use crate::writer::WriterHandle;

/// Most seconds a dashboard token lives (shorter when the server's token lifetime is).
pub const DASHBOARD_TOKEN_TTL_SECS: i64 = 3600;

/// Shared state of the HTTP handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    writer: WriterHandle,
    jwt: JwtKeys,
    prices: PriceTable,
    max_body_bytes: usize,
    body_timeout: std::time::Duration,
    public_url: String,
    /// Where `/v1/traces` without credentials goes, when allowed.
    anonymous_trace_project: Option<String>,
    /// Signs and verifies dashboard tokens (read-only; a key derived from `jwt`).
    dashboard_jwt: JwtKeys,
    /// The project the read API serves to callers without credentials, when open read access
    /// is on (loopback only).
    open_read_project: Option<String>,
    /// API key hash → (project, when it was looked up); entries older than [`KEY_CACHE_TTL`]
    /// are looked up again, so that a revoked key stops working.
    key_cache: Mutex<HashMap<String, (String, Instant)>>,
    /// Spans sent without credentials, waiting for an authenticated request of their trace
    /// (when unauthenticated traces are not accepted outright).
    held: HeldSpans,
    /// What the retention task has done.
    retention: Arc<RetentionStatus>,
    /// The server's own metrics (`GET /metrics`).
    metrics: Arc<ServerMetrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// What [`AppState`] is assembled from.
pub struct StateParts {
    /// The store, for reads and for the writer.
    pub store: Arc<dyn Store>,
    /// The queue into the single writer.
    pub writer: WriterHandle,
    /// Signs and verifies session and project tokens.
    pub jwt: JwtKeys,
    /// Model prices, for costs.
    pub prices: PriceTable,
    /// The largest request body, after decompression.
    pub max_body_bytes: usize,
    /// The longest a client may take to send a request body.
    pub body_timeout: std::time::Duration,
    /// The base of `session_url` answers.
    pub public_url: String,
    /// Where `/v1/traces` without credentials goes, when allowed.
    pub anonymous_trace_project: Option<String>,
    /// The project the read API serves to callers without credentials (open read access).
    pub open_read_project: Option<String>,
    /// What the retention task has done (shown by `GET /health`).
    pub retention: Arc<RetentionStatus>,
    /// The server's own metrics (served by `GET /metrics`).
    pub metrics: Arc<ServerMetrics>,
}

impl AppState {
    /// Assembles the state from its parts.
    pub fn new(parts: StateParts) -> Self {
        let StateParts {
            store,
            writer,
            jwt,
            prices,
            max_body_bytes,
            body_timeout,
            public_url,
            anonymous_trace_project,
            open_read_project,
            retention,
            metrics,
        } = parts;
        let dashboard_jwt = jwt.derive(
            auth::DASHBOARD_KEY_LABEL,
            DASHBOARD_TOKEN_TTL_SECS.min(jwt.ttl_secs()),
        );
        Self {
            inner: Arc::new(Inner {
                store,
                writer,
                dashboard_jwt,
                open_read_project,
                jwt,
                prices,
                max_body_bytes,
                body_timeout,
                public_url,
                anonymous_trace_project,
                key_cache: Mutex::new(HashMap::new()),
                held: HeldSpans::default(),
                retention,
                metrics,
            }),
        }
    }

    /// The store, for reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The write queue.
    pub fn writer(&self) -> &WriterHandle {
        &self.inner.writer
    }

    /// The token signer.
    pub fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }

    /// The model price table.
    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }

    /// The body size limit, after decompression.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    /// The longest a client may take to send a request body.
    pub fn body_timeout(&self) -> std::time::Duration {
        self.inner.body_timeout
    }

    /// Where a session can be seen: its replay in the dashboard.
    pub fn session_url(&self, session_id: &str) -> String {
        format!(
            "{}/#/sessions/{session_id}",
            self.inner.public_url.trim_end_matches('/')
        )
    }

    /// Runs a blocking store read off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ApiError::Internal(format!("read task failed: {e}")))?
            .map_err(ApiError::from)
    }

    /// The project of an API key, or 401.
    pub async fn project_for_api_key(&self, key: &str) -> Result<String, ApiError> {
        if !auth::is_valid_api_key(key) {
            return Err(ApiError::Unauthorized(
                "invalid API key: expected a UUID".into(),
            ));
        }
        self.project_for_key_hash(auth::hash_api_key(key))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown API key".into()))
    }

    /// The project of an active API key, by its hash (cached for [`KEY_CACHE_TTL`]).
    async fn project_for_key_hash(&self, hash: String) -> Result<Option<String>, ApiError> {
        if let Some(project) = self.cached_key(&hash) {
            return Ok(Some(project));
        }
        let lookup = hash.clone();
        let project = self.read(move |s| s.project_for_key(&lookup)).await?;
        if let (Some(project), Ok(mut cache)) = (&project, self.inner.key_cache.lock()) {
            cache.insert(hash, (project.clone(), Instant::now()));
        }
        Ok(project)
    }

    fn cached_key(&self, hash: &str) -> Option<String> {
        let mut cache = self.inner.key_cache.lock().ok()?;
        match cache.get(hash) {
            Some((project, at)) if at.elapsed() < KEY_CACHE_TTL => Some(project.clone()),
            Some(_) => {
                cache.remove(hash);
                None
            }
            None => None,
        }
    }

    /// A token's claims, verified by `keys`, whose API key has not been revoked since it was
    /// issued (checked through the same cache as keys, so within [`KEY_CACHE_TTL`]).
    pub async fn verified(&self, keys: &JwtKeys, token: &str) -> Result<Claims, ApiError> {
        let claims = keys.verify(token)?;
        self.not_revoked(&claims).await?;
        Ok(claims)
    }

    /// Refuses claims whose API key has been revoked (or moved) since they were issued.
    pub async fn not_revoked(&self, claims: &Claims) -> Result<(), ApiError> {
        let Some(hash) = &claims.key else {
            return Ok(());
        };
        match self.project_for_key_hash(hash.clone()).await? {
            Some(project) if project == claims.project_id => Ok(()),
            _ => Err(ApiError::Unauthorized(
                "the API key this token was issued for has been revoked".into(),
            )),
        }
    }

    /// Where `/v1/traces` without credentials goes, with `--accept-unauthenticated-traces`
    /// (else such spans are held).
    pub fn anonymous_trace_project(&self) -> Option<&str> {
        self.inner.anonymous_trace_project.as_deref()
    }

    /// The project the read API serves without credentials (open read access).
    pub fn open_read_project(&self) -> Option<&str> {
        self.inner.open_read_project.as_deref()
    }

    /// The spans sent without credentials, held.
    pub fn held(&self) -> &HeldSpans {
        &self.inner.held
    }

    /// What the retention task has done.
    pub fn retention(&self) -> &RetentionStatus {
        &self.inner.retention
    }

    /// The dashboard token signer.
    pub fn dashboard_jwt(&self) -> &JwtKeys {
        &self.inner.dashboard_jwt
    }

    /// The server's own metrics (`GET /metrics`).
    pub fn metrics(&self) -> &Arc<ServerMetrics> {
        &self.inner.metrics
    }
}

/// A header's value as text, if present and valid.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}
