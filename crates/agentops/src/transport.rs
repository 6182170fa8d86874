//! HTTP, one attempt at a time: TLS (rustls), compression, the request timeout, and how an
//! answer is classified.
//!
//! Retrying is not done here: the caller owns a [`Retry`] per request and decides when to try
//! again, so that the session worker never sleeps through a backoff while other sessions wait.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use flate2::write::GzEncoder;

use crate::config::{Compression, Config, RetryPolicy};

/// The longest pause a server's `Retry-After` can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How much of an error answer is kept for the log.
const MAX_ERROR_BODY: u64 = 2048;
/// How much of a success answer is read.
const MAX_SUCCESS_BODY: u64 = 16 * 1024 * 1024;

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A 2xx answer and its body.
    Success(String),
    /// 401: the credentials were refused.
    Unauthorized(String),
    /// 413: the body was too large.
    TooLarge,
    /// Any other 4xx: the request itself is wrong, and resending it cannot help.
    Rejected { status: u16, message: String },
    /// A failure retrying cannot fix, before any answer: the server's TLS certificate is not
    /// trusted, or the URL cannot be used.
    Unusable(String),
    /// A failure worth retrying: connection refused or reset, timeout, 408, 429, 5xx.
    Retryable {
        why: String,
        retry_after: Option<Duration>,
    },
}

/// A request ready to send, its body compressed once for all its attempts.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub url: String,
    content_type: &'static str,
    body: Arc<[u8]>,
    gzipped: bool,
    headers: Vec<(String, String)>,
}

impl Request {
    /// Adds a header (replacing one of the same name).
    pub(crate) fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Sets a header (replacing one of the same name).
    pub(crate) fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
    }
}

/// Sends requests with the SDK's HTTP agent (connection pool, TLS roots, user agent).
pub(crate) struct Transport {
    agent: ureq::Agent,
    compression: Compression,
    request_timeout: Duration,
}

impl Transport {
    pub(crate) fn new(config: &Config) -> Self {
        let roots = if config.ca_certificates.is_empty() {
            ureq::tls::RootCerts::WebPki
        } else {
            let certificates: Vec<ureq::tls::Certificate<'static>> = config
                .ca_certificates
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                .collect();
            ureq::tls::RootCerts::new_with_certs(&certificates)
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.request_timeout))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .user_agent(concat!("agentops-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            agent,
            compression: config.compression,
            request_timeout: config.request_timeout,
        }
    }

    /// A POST of `body` to `url`, compressed as configured.
    pub(crate) fn request(&self, url: String, content_type: &'static str, body: &[u8]) -> Request {
        let compressed = match self.compression {
            Compression::Gzip => gzip(body),
            Compression::None => None,
        };
        let gzipped = compressed.is_some();
        Request {
            url,
            content_type,
            body: compressed.map_or_else(|| Arc::from(body), Arc::from),
            gzipped,
            headers: Vec::new(),
        }
    }

    /// One attempt, given at most `limit` (and never more than the request timeout).
    pub(crate) fn send(&self, request: &Request, limit: Duration) -> Answer {
        let timeout = limit
            .min(self.request_timeout)
            .max(Duration::from_millis(1));
        let mut builder = self
            .agent
            .post(&request.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", request.content_type);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if request.gzipped {
            builder = builder.header("Content-Encoding", "gzip");
        }
        let mut response = match builder.send(&request.body[..]) {
            Ok(response) => response,
            Err(err) if is_permanent(&err) => return Answer::Unusable(describe(&err)),
            Err(err) => {
                return Answer::Retryable {
                    why: describe(&err),
                    retry_after: None,
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map(|secs| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
        let success = (200..300).contains(&status);
        let limit = if success {
            MAX_SUCCESS_BODY
        } else {
            MAX_ERROR_BODY
        };
        let mut text = String::new();
        if let Err(err) = response
            .body_mut()
            .as_reader()
            .take(limit)
            .read_to_string(&mut text)
        {
            if success {
                // The server answered success; its body is only informative.
                tracing::debug!(target: "agentops", url = %request.url, %err, "could not read a success answer");
            }
        }
        match status {
            200..=299 => Answer::Success(text),
            401 => Answer::Unauthorized(text),
            413 => Answer::TooLarge,
            408 | 429 | 500..=599 => Answer::Retryable {
                why: format!("HTTP {status}: {}", text.trim()),
                retry_after,
            },
            _ => Answer::Rejected {
                status,
                message: text.trim().to_owned(),
            },
        }
    }
}

/// Whether retrying cannot help: TLS refused (an untrusted certificate, a name mismatch, a
/// plain-HTTP server on an `https://` URL) or a URL that cannot be requested.
fn is_permanent(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::BadUri(_)
        | ureq::Error::TlsRequired => true,
        // rustls reports a refused handshake through the stream as invalid data.
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// A transport error in words a user can act on.
fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Timeout(which) => format!("timed out ({which:?})"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => format!(
            "TLS handshake failed: {io} (for a private certificate, give its authority in \
             AGENTOPS_CA_CERT)"
        ),
        ureq::Error::Io(io) => format!("connection failed: {io}"),
        ureq::Error::Tls(what) => format!("TLS failed: {what}"),
        ureq::Error::Rustls(err) => format!("TLS failed: {err}"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        other => other.to_string(),
    }
}

/// The retry budget of one request: how many attempts it has had.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Retry {
    attempts: u32,
}

impl Retry {
    /// After a retryable failure: the pause before the next attempt, or `None` when the
    /// policy's attempts are spent. A server's `Retry-After` wins over the backoff.
    pub(crate) fn next(
        &mut self,
        policy: &RetryPolicy,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        self.attempts += 1;
        if self.attempts >= policy.attempts {
            return None;
        }
        Some(retry_after.unwrap_or_else(|| policy.backoff(self.attempts)))
    }
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_budget_counts_every_attempt() {
        let policy = RetryPolicy {
            attempts: 3,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        };
        let mut retry = Retry::default();
        assert_eq!(retry.next(&policy, None), Some(Duration::from_millis(10)));
        assert_eq!(
            retry.next(&policy, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(retry.next(&policy, None), None, "three attempts in all");
    }
}
