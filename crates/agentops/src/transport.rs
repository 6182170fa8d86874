//! HTTP to the AgentOps v2 API: headers, compression, and retries with backoff.
//!
//! [`Transport::call`] retries what is worth retrying (connection errors, timeouts, 408, 429,
//! 5xx) and hands back everything else as an [`Outcome`] for the caller to act on: the exporter
//! re-authorises on [`Outcome::Unauthorized`] and splits the batch on [`Outcome::TooLarge`].

use std::io::{Read, Write};
use std::time::Duration;

use agentops_core::v2::{API_KEY_HEADER, PARENT_KEY_HEADER};
use flate2::write::GzEncoder;

use crate::config::{Compression, Config, RetryPolicy};

/// The longest pause a server's `Retry-After` can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How much of an error answer is kept for the log.
const MAX_ERROR_BODY: u64 = 2048;

/// How one call ended, after its retries.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 2xx answer and its body.
    Success(String),
    /// 401: the credentials were refused.
    Unauthorized(String),
    /// 413: the body was too large.
    TooLarge,
    /// Any other 4xx: the request itself is wrong, and resending it cannot help.
    Rejected { status: u16, message: String },
    /// Every attempt failed with a retryable error; the last one is given.
    GaveUp(String),
}

/// A call's outcome and how many times it was retried.
#[derive(Debug)]
pub(crate) struct Attempted {
    pub outcome: Outcome,
    pub retries: u32,
}

/// Sends JSON bodies to `{endpoint}/v2/*` with the project's credentials.
pub(crate) struct Transport {
    agent: ureq::Agent,
    endpoint: String,
    api_key: String,
    parent_key: Option<String>,
    compression: Compression,
    retry: RetryPolicy,
}

/// What one attempt gave.
enum Attempt {
    Answer(Outcome),
    Retryable {
        why: String,
        retry_after: Option<Duration>,
    },
}

impl Transport {
    pub(crate) fn new(config: &Config) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.request_timeout))
            .user_agent(concat!("agentops-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            agent,
            endpoint: config.endpoint.clone(),
            api_key: config.api_key.to_string(),
            parent_key: config.parent_key.map(|key| key.to_string()),
            compression: config.compression,
            retry: config.retry.clone(),
        }
    }

    /// POSTs `body` (JSON) to `path`, retrying per the policy. `jwt`, when given, is sent as
    /// `Authorization: Bearer`.
    pub(crate) fn call(&self, path: &str, body: &[u8], jwt: Option<&str>) -> Attempted {
        let payload = match self.compression {
            Compression::Gzip => gzip(body),
            Compression::None => None,
        };
        let mut retries = 0;
        loop {
            let attempt = self.attempt(
                path,
                payload.as_deref().unwrap_or(body),
                payload.is_some(),
                jwt,
            );
            match attempt {
                Attempt::Answer(outcome) => return Attempted { outcome, retries },
                Attempt::Retryable { why, retry_after } => {
                    if retries + 1 >= self.retry.attempts {
                        return Attempted {
                            outcome: Outcome::GaveUp(why),
                            retries,
                        };
                    }
                    retries += 1;
                    let pause = match retry_after {
                        Some(after) => after.min(MAX_RETRY_AFTER),
                        None => self.retry.backoff(retries),
                    };
                    tracing::debug!(target: "agentops", %path, %why, ?pause, retries, "retrying");
                    std::thread::sleep(pause);
                }
            }
        }
    }

    fn attempt(&self, path: &str, body: &[u8], gzipped: bool, jwt: Option<&str>) -> Attempt {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.endpoint))
            .header("Content-Type", "application/json; charset=UTF-8")
            .header(API_KEY_HEADER, &self.api_key);
        if let Some(parent) = &self.parent_key {
            request = request.header(PARENT_KEY_HEADER, parent);
        }
        if let Some(jwt) = jwt {
            request = request.header("Authorization", format!("Bearer {jwt}"));
        }
        if gzipped {
            request = request.header("Content-Encoding", "gzip");
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            Err(err) => {
                return Attempt::Retryable {
                    why: err.to_string(),
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
            .map(Duration::from_secs_f64);
        let limit = if (200..300).contains(&status) {
            16 * 1024 * 1024
        } else {
            MAX_ERROR_BODY
        };
        let mut text = String::new();
        let read = response
            .body_mut()
            .as_reader()
            .take(limit)
            .read_to_string(&mut text);
        if let Err(err) = read {
            if (200..300).contains(&status) {
                // The server answered success; its body is only informative.
                tracing::debug!(target: "agentops", %path, %err, "could not read a success answer");
            }
        }
        match status {
            200..=299 => Attempt::Answer(Outcome::Success(text)),
            401 => Attempt::Answer(Outcome::Unauthorized(text)),
            413 => Attempt::Answer(Outcome::TooLarge),
            408 | 429 | 500..=599 => Attempt::Retryable {
                why: format!("HTTP {status}: {}", text.trim()),
                retry_after,
            },
            _ => Attempt::Answer(Outcome::Rejected {
                status,
                message: text.trim().to_owned(),
            }),
        }
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
