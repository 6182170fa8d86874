//! Reading request bodies: size limit, `Content-Encoding: gzip` (with the limit applied to the
//! decompressed size, so a gzip bomb is stopped early), content types, JSON parsing.

use std::io::Read;
use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::{header_str, AppState};

/// A request body, read whole and decompressed, no larger than the configured limit.
#[derive(Debug)]
pub struct RawBody {
    /// The (decompressed) bytes.
    pub bytes: Bytes,
    /// The request headers.
    pub headers: HeaderMap,
}

/// Marks a request sent without credentials: its body limit is
/// [`super::held::MAX_BODY_BYTES`] at most.
#[derive(Debug, Clone, Copy)]
pub struct CredentialLess;

/// How a body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// `application/x-protobuf` or `application/protobuf`.
    Protobuf,
}

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let limit = match parts.extensions.get::<CredentialLess>() {
            Some(CredentialLess) => state.max_body_bytes().min(super::held::MAX_BODY_BYTES),
            None => state.max_body_bytes(),
        };
        let declared = header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
            .and_then(|l| l.parse::<u64>().ok());
        if declared.is_some_and(|length| length > drain_limit(limit) as u64) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let timeout = state.body_timeout();
        let raw = tokio::time::timeout(timeout, read_limited(body, limit))
            .await
            .map_err(|_| ApiError::RequestTimeout(timeout.as_secs()))??;
        let encoding = header_str(&parts.headers, header::CONTENT_ENCODING.as_str())
            .unwrap_or("identity")
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "identity" => raw,
            "gzip" | "x-gzip" => {
                inflate(flate2::read::MultiGzDecoder::new(&raw[..]), limit, "gzip")?
            }
            "deflate" => inflate(flate2::read::ZlibDecoder::new(&raw[..]), limit, "deflate")?,
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "unsupported Content-Encoding {other:?}: send gzip or no encoding"
                )))
            }
        };
        Ok(RawBody {
            bytes,
            headers: parts.headers,
        })
    }
}

/// How much of an oversized body is read (and thrown away) so that the client, still sending,
/// gets the 413 answer instead of a reset connection. Larger bodies are cut off.
fn drain_limit(limit: usize) -> usize {
    limit.saturating_add(8 * 1024 * 1024)
}

/// Reads at most `limit` bytes of `body`; a larger body is drained (up to [`drain_limit`]) and
/// refused with 413.
async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame =
            frame.map_err(|e| ApiError::bad(format!("could not read request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > drain_limit(limit) {
            break;
        }
        if total <= limit {
            buffer.extend_from_slice(&data);
        }
    }
    if total > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(buffer))
}

/// Decompresses at most `limit` bytes; more is 413, a corrupt stream 400.
fn inflate(decoder: impl Read, limit: usize, name: &str) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad(format!("invalid {name} body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

impl RawBody {
    /// The body's format from `Content-Type`; anything else is 415.
    pub fn format(&self) -> Result<BodyFormat, ApiError> {
        let content_type = header_str(&self.headers, header::CONTENT_TYPE.as_str()).unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Ok(BodyFormat::Json),
            "application/x-protobuf" | "application/protobuf" => Ok(BodyFormat::Protobuf),
            "" => Err(ApiError::UnsupportedMediaType(
                "missing Content-Type".into(),
            )),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "unsupported Content-Type {other:?}"
            ))),
        }
    }

    /// Parses a JSON body into `T`. A missing `Content-Type` is read as JSON; any other type is 415.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if header_str(&self.headers, header::CONTENT_TYPE.as_str()).is_some()
            && self.format()? != BodyFormat::Json
        {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        parse_json(&self.bytes)
    }
}

/// Parses JSON, answering 400 with serde's message (which names the offending field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}
