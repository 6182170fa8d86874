//! Who is calling. Each kind of credential a route accepts is an axum extractor, decided once
//! per request from its headers, before its body is read (axum runs these extractors before
//! the body's): a request without valid credentials is refused without the server buffering
//! its body.
//!
//! - [`KeyHolder`]: an API key (`/v2/create_session`, `/v2/reauthorize_jwt`, …);
//! - [`SessionWriter`]: a session token, and the API key if sent too (v2 session writes);
//! - [`TokenHolder`]: a project or session token (`/v4/logs/upload/`);
//! - [`TraceSender`]: any credential, or none (OTLP);
//! - [`Reader`]: the read API's callers (an API key, any token, or open read access).
//!
//! [`AppState`] verifies keys and tokens; this module decides which it needs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::{self, Claims};
use crate::error::ApiError;
use crate::ingest::body::CredentialLess;
use crate::ingest::held::MAX_READING;
use crate::state::{header_str, AppState};

const MISSING: &str = "missing credentials: send X-Agentops-Api-Key or Authorization: Bearer";

/// A caller with a project's API key (`X-Agentops-Api-Key`, or `Authorization: Bearer <key>`).
#[derive(Debug)]
pub struct KeyHolder {
    /// The key's project.
    pub project_id: String,
    /// The key, to bind the tokens issued for it.
    pub key: String,
}

impl FromRequestParts<AppState> for KeyHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = api_key(&parts.headers).ok_or_else(|| {
            ApiError::Unauthorized(
                "missing API key: send X-Agentops-Api-Key or Authorization: Bearer <key>".into(),
            )
        })?;
        Ok(Self {
            project_id: state.project_for_api_key(key).await?,
            key: key.to_owned(),
        })
    }
}

/// A caller with a session token (v2 session writes); an API key sent too must be of the
/// same project.
#[derive(Debug)]
pub struct SessionWriter {
    /// The session's project.
    pub project_id: String,
    /// The one session the token may write.
    pub session_id: String,
}

impl FromRequestParts<AppState> for SessionWriter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TokenHolder(claims) = TokenHolder::from_request_parts(parts, state).await?;
        let session_id = claims
            .session_id()
            .ok_or_else(|| ApiError::Unauthorized("a session token is required".into()))?
            .to_owned();
        if let Some(key) = api_key(&parts.headers) {
            if state.project_for_api_key(key).await? != claims.project_id {
                return Err(ApiError::Forbidden(
                    "API key and session token belong to different projects".into(),
                ));
            }
        }
        Ok(Self {
            project_id: claims.project_id,
            session_id,
        })
    }
}

/// A caller with a project or session token (`Authorization: Bearer <jwt>`).
#[derive(Debug)]
pub struct TokenHolder(pub Claims);

impl TokenHolder {
    /// Refuses a session token of another session than `session_id`.
    pub fn may_write(&self, session_id: &str) -> Result<(), ApiError> {
        match self.0.session_id() {
            Some(own) if own != session_id => Err(ApiError::Forbidden(
                "the session token is for another session".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for TokenHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        Ok(Self(state.verified(state.jwt(), token).await?))
    }
}

/// Who sends OTLP data: a project (a token or an API key; without credentials, the default
/// project when unauthenticated traces are accepted), or a sender without credentials, whose
/// spans are held until their trace is claimed ([`crate::ingest::held`]): a few such requests
/// are read at once, each with a smaller body limit.
#[derive(Debug)]
pub enum TraceSender {
    /// A project, with what its credentials allow.
    Project(Claims),
    /// No credentials; the permit to be read counts this request among [`MAX_READING`].
    CredentialLess(OwnedSemaphorePermit),
}

impl FromRequestParts<AppState> for TraceSender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if has_credentials(&parts.headers) {
            return Ok(Self::Project(project_claims(&parts.headers, state).await?));
        }
        if let Some(project_id) = state.anonymous_trace_project() {
            return Ok(Self::Project(project_wide(project_id.to_owned())));
        }
        let permit = state.held().try_reading().ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "{MISSING} (spans without credentials are held until their trace is claimed, \
                 and {MAX_READING} such requests are being read already)"
            ))
        })?;
        parts.extensions.insert(CredentialLess);
        Ok(Self::CredentialLess(permit))
    }
}

/// A caller of the read API: an API key, a project, session or dashboard token, or, with open
/// read access and no credentials, the default project.
#[derive(Debug)]
pub struct Reader {
    project_id: String,
    /// A session token reads its own session only.
    session: Option<String>,
}

impl Reader {
    /// The project, for a read across it (a list, statistics): refused to a session token.
    pub fn project(&self) -> Result<&str, ApiError> {
        match self.session {
            Some(_) => Err(ApiError::Forbidden(
                "a session token can only read its own session".into(),
            )),
            None => Ok(&self.project_id),
        }
    }

    /// The project, for a read of `session_id`.
    pub fn session(&self, session_id: &str) -> Result<&str, ApiError> {
        match &self.session {
            Some(own) if own != session_id => Err(ApiError::Forbidden(
                "a session token can only read its own session".into(),
            )),
            _ => Ok(&self.project_id),
        }
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let claims = match (
            bearer_token(headers),
            api_key(headers),
            state.open_read_project(),
        ) {
            (Some(token), _, _) => read_token(token, state).await?,
            (None, None, Some(project_id)) => {
                if !addressed_to_loopback(headers) {
                    // A page on another site that resolves its name to 127.0.0.1 (DNS
                    // rebinding) must not read through open access.
                    return Err(ApiError::Forbidden(
                        "open read access answers requests addressed to localhost, 127.0.0.1 \
                         or [::1] only: send credentials"
                            .into(),
                    ));
                }
                project_wide(project_id.to_owned())
            }
            _ => project_claims(headers, state).await?,
        };
        // A dashboard token names no session; a session token's subject is its session.
        let session = match claims.sub.as_str() {
            auth::DASHBOARD_SUBJECT => None,
            _ => claims.session_id().map(str::to_owned),
        };
        Ok(Self {
            project_id: claims.project_id,
            session,
        })
    }
}

/// A read-API token: a project or session token, else a dashboard token (an expired
/// dashboard token says so).
async fn read_token(token: &str, state: &AppState) -> Result<Claims, ApiError> {
    let claims = match state.jwt().verify(token) {
        Ok(claims) if claims.sub != auth::DASHBOARD_SUBJECT => claims,
        first => match (state.dashboard_jwt().verify(token), first) {
            (Ok(claims), _) if claims.sub == auth::DASHBOARD_SUBJECT => claims,
            (Err(auth::TokenError::Expired), _) => return Err(auth::TokenError::Expired.into()),
            (_, Err(first)) => return Err(first.into()),
            (_, Ok(_)) => return Err(ApiError::Unauthorized("invalid token subject".into())),
        },
    };
    state.not_revoked(&claims).await?;
    Ok(claims)
}

/// The caller's project from a Bearer token or, failing that, an API key.
pub(crate) async fn project_claims(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Claims, ApiError> {
    if let Some(token) = bearer_token(headers) {
        return state.verified(state.jwt(), token).await;
    }
    let key = api_key(headers).ok_or_else(|| ApiError::Unauthorized(MISSING.into()))?;
    Ok(project_wide(state.project_for_api_key(key).await?))
}

/// Claims of a whole project (no session, no token).
fn project_wide(project_id: String) -> Claims {
    Claims {
        sub: auth::PROJECT_SUBJECT.into(),
        project_id,
        exp: 0,
        iat: 0,
        key: None,
    }
}

/// Whether a request carries credentials of any kind (valid or not).
pub fn has_credentials(headers: &HeaderMap) -> bool {
    bearer_token(headers).is_some() || api_key(headers).is_some()
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

/// Whether the request's `Host` names a loopback address (or is absent).
pub(crate) fn addressed_to_loopback(headers: &HeaderMap) -> bool {
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
