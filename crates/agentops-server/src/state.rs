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

    /// The project of the `X-Agentops-Api-Key` header, or 401 if it is missing or unknown.
    pub async fn project_from_api_key_header(
        &self,
        headers: &HeaderMap,
    ) -> Result<String, ApiError> {
        let key = api_key(headers).ok_or_else(|| {
            ApiError::Unauthorized(
                "missing API key: send X-Agentops-Api-Key or Authorization: Bearer <key>".into(),
            )
        })?;
        self.project_for_api_key(key).await
    }

    /// The verified claims of the `Authorization: Bearer` token, or 401.
    pub async fn bearer_claims(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
        let token = bearer_token(headers)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        self.verified(&self.inner.jwt, token).await
    }

    /// A token's claims, verified by `keys`, whose API key has not been revoked since it was
    /// issued (checked through the same cache as keys, so within [`KEY_CACHE_TTL`]).
    pub async fn verified(&self, keys: &JwtKeys, token: &str) -> Result<Claims, ApiError> {
        let claims = keys.verify(token)?;
        if let Some(hash) = &claims.key {
            match self.project_for_key_hash(hash.clone()).await? {
                Some(project) if project == claims.project_id => {}
                _ => {
                    return Err(ApiError::Unauthorized(
                        "the API key this token was issued for has been revoked".into(),
                    ))
                }
            }
        }
        Ok(claims)
    }

    /// For v2 calls made with a session token: the claims, checked against the API key header
    /// when one is sent too (a key of another project is refused).
    pub async fn session_claims(&self, headers: &HeaderMap) -> Result<(Claims, String), ApiError> {
        let claims = self.bearer_claims(headers).await?;
        let session_id = claims
            .session_id()
            .ok_or_else(|| ApiError::Unauthorized("a session token is required".into()))?
            .to_owned();
        if let Some(key) = api_key(headers) {
            let project = self.project_for_api_key(key).await?;
            if project != claims.project_id {
                return Err(ApiError::Forbidden(
                    "API key and session token belong to different projects".into(),
                ));
            }
        }
        Ok((claims, session_id))
    }

    /// Who sends to `/v1/traces`: a project (from credentials if any are sent, else the
    /// default project when unauthenticated traces are accepted), or, without credentials,
    /// a sender whose spans are held until their trace is claimed.
    pub async fn trace_sender(&self, headers: &HeaderMap) -> Result<TraceSender, ApiError> {
        if has_credentials(headers) {
            return Ok(TraceSender::Project(self.project_from_any(headers).await?));
        }
        Ok(match &self.inner.anonymous_trace_project {
            Some(project_id) => TraceSender::Project(Claims {
                sub: auth::PROJECT_SUBJECT.into(),
                project_id: project_id.clone(),
                exp: 0,
                iat: 0,
                key: None,
            }),
            None => TraceSender::CredentialLess,
        })
    }

    /// Whether `/v1/traces` without credentials is held (rather than stored in the default
    /// project, with `--accept-unauthenticated-traces`).
    pub fn holds_credential_less_spans(&self) -> bool {
        self.inner.anonymous_trace_project.is_none()
    }

    /// The spans sent without credentials, held.
    pub fn held(&self) -> &HeldSpans {
        &self.inner.held
    }

    /// The dashboard token signer.
    pub fn dashboard_jwt(&self) -> &JwtKeys {
        &self.inner.dashboard_jwt
    }

    /// The caller of the read API: an API key, a Bearer token (project, session or dashboard
    /// token), or, with open read access and no credentials at all, the default project.
    pub async fn read_claims(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
        if let Some(token) = bearer_token(headers) {
            return match self.verified(&self.inner.jwt, token).await {
                Ok(claims) if claims.sub != auth::DASHBOARD_SUBJECT => Ok(claims),
                first => match self.verified(&self.inner.dashboard_jwt, token).await {
                    Ok(claims) if claims.sub == auth::DASHBOARD_SUBJECT => Ok(claims),
                    // A dashboard token that is well signed but expired or revoked says so.
                    Err(ApiError::Unauthorized(m))
                        if m.contains("expired") || m.contains("revoked") =>
                    {
                        Err(ApiError::Unauthorized(m))
                    }
                    _ => first
                        .and_then(|_| Err(ApiError::Unauthorized("invalid token subject".into()))),
                },
            };
        }
        if api_key(headers).is_none() {
            if let Some(project_id) = &self.inner.open_read_project {
                if !addressed_to_loopback(headers) {
                    // A page on another site that resolves its name to 127.0.0.1 (DNS
                    // rebinding) must not read through open access.
                    return Err(ApiError::Forbidden(
                        "open read access answers requests addressed to localhost, 127.0.0.1 \
                         or [::1] only: send credentials"
                            .into(),
                    ));
                }
                return Ok(Claims {
                    sub: auth::PROJECT_SUBJECT.into(),
                    project_id: project_id.clone(),
                    exp: 0,
                    iat: 0,
                    key: None,
                });
            }
        }
        self.project_from_any(headers).await
    }

    /// Refuses, before its body is read, a write request whose credentials are missing or
    /// invalid: an unknown API key, a token that does not verify. (Handlers then check what
    /// the credentials allow.) `anonymous_ok`: the route accepts requests without credentials
    /// (OTLP: their spans are held, or stored in the default project when so configured).
    pub async fn check_credentials(
        &self,
        headers: &HeaderMap,
        anonymous_ok: bool,
    ) -> Result<(), ApiError> {
        if let Some(token) = bearer_token(headers) {
            self.verified(&self.inner.jwt, token).await?;
        }
        if api_key(headers).is_some() {
            self.project_from_api_key_header(headers).await?;
        }
        if !anonymous_ok && !has_credentials(headers) {
            return Err(ApiError::Unauthorized(
                "missing credentials: send X-Agentops-Api-Key or Authorization: Bearer".into(),
            ));
        }
        Ok(())
    }

    /// The caller's project from a Bearer token or, failing that, the API key header.
    pub async fn project_from_any(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
        if bearer_token(headers).is_some() {
            return self.bearer_claims(headers).await;
        }
        if api_key(headers).is_some() {
            let project_id = self.project_from_api_key_header(headers).await?;
            return Ok(Claims {
                sub: auth::PROJECT_SUBJECT.into(),
                project_id,
                exp: 0,
                iat: 0,
                key: None,
            });
        }
        Err(ApiError::Unauthorized(
            "missing credentials: send X-Agentops-Api-Key or Authorization: Bearer".into(),
        ))
    }
}

/// Whether the request's `Host` names a loopback address (or is absent).
fn addressed_to_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(axum::http::header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A header's value as text, if present and valid.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The `Authorization: Bearer` value, whatever it is.
fn bearer_value(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether a request carries credentials of any kind (valid or not).
pub fn has_credentials(headers: &HeaderMap) -> bool {
    bearer_token(headers).is_some() || api_key(headers).is_some()
}

/// Who sends spans to `/v1/traces`.
#[derive(Debug)]
pub enum TraceSender {
    /// A project, with what its credentials allow.
    Project(Claims),
    /// A sender without credentials: its spans are held (see [`crate::ingest::held`]).
    CredentialLess,
}

/// A token sent as `Authorization: Bearer` (a JWT; an API key sent that way is not one).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    bearer_value(headers).filter(|value| !auth::is_valid_api_key(value))
}

/// The API key of a request: the `X-Agentops-Api-Key` header, or `Authorization: Bearer
/// <key>` as Phoenix, Laminar and many OpenTelemetry setups send it. A key (a UUID) and a JWT
/// (three dot-separated parts) are told apart by their shape.
pub fn api_key(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, agentops_core::v2::API_KEY_HEADER)
        .or_else(|| bearer_value(headers).filter(|value| auth::is_valid_api_key(value)))
}
