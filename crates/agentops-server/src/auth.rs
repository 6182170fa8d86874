//! Credentials: API keys (stored only as SHA-256 hashes) and HS256 JSON Web Tokens (HMAC by
//! the RustCrypto `hmac` crate, checked in constant time).
//!
//! Three kinds of token are issued, each carrying the project and the hash of the API key it
//! was exchanged for (so that revoking the key revokes the token, see
//! [`crate::state::AppState`]):
//! - a *session* token (`/v2/create_session`, `/v2/reauthorize_jwt`): `sub` = the session id;
//! - a *project* token (`/v3/auth/token`): `sub` = `"project"`;
//! - a *dashboard* token (`/api/v1/auth/dashboard-token`): `sub` = `"dashboard"`, read-only,
//!   signed with a derived key.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `sub` of a project-scoped token.
pub const PROJECT_SUBJECT: &str = "project";
/// `sub` of a dashboard token (read-only, project-scoped, signed with a derived key).
pub const DASHBOARD_SUBJECT: &str = "dashboard";
/// The label from which dashboard token keys are derived (see [`JwtKeys::derive`]).
pub const DASHBOARD_KEY_LABEL: &str = "agentops dashboard token";

/// The SHA-256 of an API key, hex-encoded: the only form in which keys are stored.
pub fn hash_api_key(key: &str) -> String {
    hex(&Sha256::digest(key.trim().to_ascii_lowercase().as_bytes()))
}

/// Whether `key` has the shape of an API key (a UUID).
pub fn is_valid_api_key(key: &str) -> bool {
    uuid::Uuid::parse_str(key.trim()).is_ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The session id, or [`PROJECT_SUBJECT`].
    pub sub: String,
    /// The project the token writes to.
    pub project_id: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// The SHA-256 of the API key the token was exchanged for ([`hash_api_key`]); tokens
    /// issued before this was recorded have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Claims {
    /// The session this token is scoped to, if it is a session token.
    pub fn session_id(&self) -> Option<&str> {
        (self.sub != PROJECT_SUBJECT).then_some(self.sub.as_str())
    }
}

/// Signs and verifies HS256 tokens with one server secret.
#[derive(Clone)]
pub struct JwtKeys {
    secret: Vec<u8>,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from a secret; tokens live `ttl_secs` seconds.
    pub fn new(secret: Vec<u8>, ttl_secs: i64) -> Self {
        Self { secret, ttl_secs }
    }

    /// A new random secret (32 bytes).
    pub fn new_secret() -> Vec<u8> {
        let mut secret = Vec::with_capacity(32);
        secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret
    }

    /// Reads the secret from `path`, creating it (32 random bytes, mode 0600) on first start.
    pub fn load_or_create(path: &Path, ttl_secs: i64) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(secret) if secret.len() >= 32 => return Ok(Self::new(secret, ttl_secs)),
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is shorter than 32 bytes", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let secret = Self::new_secret();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        file.write_all(&secret)?;
        file.sync_all()?;
        Ok(Self::new(secret, ttl_secs))
    }

    /// Keys for another kind of token: a secret derived from this one and `label` (so tokens of
    /// one kind never verify as the other), living `ttl_secs` seconds.
    pub fn derive(&self, label: &str, ttl_secs: i64) -> Self {
        Self::new(
            hmac_sha256(&self.secret, label.as_bytes()).to_vec(),
            ttl_secs,
        )
    }

    /// Lifetime of the tokens issued, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Issues a token for `sub` in `project_id`, exchanged for the API key `api_key`, valid
    /// from now for the configured lifetime.
    pub fn issue(&self, sub: &str, project_id: &str, api_key: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(&Claims {
            sub: sub.to_owned(),
            project_id: project_id.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
            key: Some(hash_api_key(api_key)),
        })
    }

    /// Signs arbitrary claims (tests use it to forge expired tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// A MAC keyed with the secret (HMAC accepts keys of any length).
    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret)
            .unwrap_or_else(|_| HmacSha256::new(&[0; 64].into()))
    }

    /// Checks signature, algorithm and expiry, and returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("token"));
        };
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed("token signature"))?;
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| TokenError::BadSignature)?;
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Malformed("token header"))?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Algorithm);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(TokenError::Malformed("token claims"))?;
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Why a token does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of the expected JSON (the part is named).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The signature is not this server's.
    #[error("invalid token signature")]
    BadSignature,
    /// Not HS256.
    #[error("unsupported token algorithm")]
    Algorithm,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
}

/// HMAC-SHA256 of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&[0; 64].into()));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

type HmacSha256 = Hmac<Sha256>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_round_trip_and_reject_forgery_and_expiry() {
        let keys = JwtKeys::new(vec![7; 32], 60);
        let token = keys.issue("abc", "p1", "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "abc");
        assert_eq!(claims.session_id(), Some("abc"));
        assert_eq!(claims.project_id, "p1");
        assert_eq!(
            claims.key.as_deref(),
            Some(hash_api_key("6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d").as_str())
        );

        let other = JwtKeys::new(vec![8; 32], 60);
        assert!(other.verify(&token).is_err());

        let expired = keys.sign(&Claims {
            sub: "abc".into(),
            project_id: "p1".into(),
            exp: 1,
            iat: 0,
            key: None,
        });
        assert!(keys.verify(&expired) == Err(TokenError::Expired));
        assert!(keys.verify("a.b").is_err());
        assert!(keys.verify("").is_err());

        // tampering with the payload breaks the signature
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"sub":"abc","project_id":"p2","exp":99999999999,"iat":0}"#);
        parts[1] = &forged_payload;
        assert!(keys.verify(&parts.join(".")).is_err());
    }

    #[test]
    fn api_key_hash_is_stable_and_case_insensitive() {
        let k = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        assert_eq!(hash_api_key(k), hash_api_key(&k.to_uppercase()));
        assert_eq!(hash_api_key(k).len(), 64);
        assert!(is_valid_api_key(k));
        assert!(!is_valid_api_key("not-a-key"));
    }
}
