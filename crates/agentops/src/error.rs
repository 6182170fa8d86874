//! The SDK's errors.

use uuid::Uuid;

pub use crate::backend_error::BackendError;
pub use crate::config::ConfigError;

/// What can go wrong when using the SDK. Network trouble is not here: the SDK retries, counts
/// and logs it, and reports it in [`crate::SessionSummary`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A module-level function was called before [`crate::init`].
    #[error("agentops is not initialised: call agentops::init first")]
    NotInitialized,
    /// [`crate::init`] was called twice without [`crate::shutdown`] in between.
    #[error("agentops is already initialised: call agentops::shutdown before initialising again")]
    AlreadyInitialized,
    /// A module-level call found no open session.
    #[error(
        "no session is open: start one with agentops::start_session, or enable auto_start_session"
    )]
    NoSession,
    /// A module-level call found no current session, and no process-wide client to pick one
    /// from: sessions were started from a [`crate::Client`], and this thread or task lost
    /// track of them.
    #[error(
        "no session is current in this thread or task: record through a Session handle, or \
         make one current with Session::enter (threads) or Session::scope (async tasks)"
    )]
    NoCurrentSession,
    /// A module-level call found several open sessions and none is current.
    #[error(
        "{open} sessions are open and none is current: record through a Session handle, \
         or make one current with Session::enter or Session::scope"
    )]
    AmbiguousSession {
        /// How many sessions are open.
        open: usize,
    },
    /// The session has already ended.
    #[error("session {session_id} has already ended")]
    SessionEnded {
        /// The session.
        session_id: Uuid,
    },
    /// The session was joined from another service, which owns its tags and end.
    #[error("session {session_id} was joined from another service: its tags are the caller's")]
    JoinedSession {
        /// The session.
        session_id: Uuid,
    },
    /// The SDK could not start its background thread.
    #[error("could not start the session's background thread: {0}")]
    Thread(#[source] std::io::Error),
}
