//! Why the backend did not do what was asked.

/// Why the backend did not do what was asked, as reported in
/// [`crate::SessionSummary::backend_error`] and by [`crate::Session::wait_until_created`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// The backend answered with an error that retrying cannot fix (a bad API key, say).
    #[error("the AgentOps backend refused {call} (HTTP {status}): {message}")]
    Refused {
        /// The call (`create_session`, `create_events`, `auth_token`, `traces`, …).
        call: &'static str,
        /// Its HTTP status.
        status: u16,
        /// The backend's message.
        message: String,
    },
    /// Every attempt failed (connection refused, timeouts, 5xx).
    #[error("the AgentOps backend could not be reached for {call}: {reason}")]
    Unreachable {
        /// The call.
        call: &'static str,
        /// The last failure.
        reason: String,
    },
    /// The connection cannot work as configured, so it was not retried: the server's TLS
    /// certificate is not trusted (see `AGENTOPS_CA_CERT`), or the URL cannot be used.
    #[error("the AgentOps backend cannot be used for {call}: {reason}")]
    Unusable {
        /// The call.
        call: &'static str,
        /// What failed.
        reason: String,
    },
    /// The backend answered 2xx with a body the SDK cannot read.
    #[error("the AgentOps backend answered {call} with an unreadable body: {reason}")]
    BadAnswer {
        /// The call.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The shutdown timeout passed before everything was delivered; delivery goes on in the
    /// background while the process lives.
    #[error("the shutdown timeout passed with {pending} events not yet delivered")]
    Timeout {
        /// Events not yet settled.
        pending: u64,
    },
}
