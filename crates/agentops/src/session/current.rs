//! The current session: which session code deep in a call stack records into, without a handle
//! passed down. It lives in the OpenTelemetry [`Context`], so it follows a thread through
//! [`Session::enter`] and an async task through [`Session::scope`].

use std::marker::PhantomData;

use opentelemetry::context::{ContextGuard, FutureExt as _, WithContext};
use opentelemetry::Context;

use super::Session;

/// The context value naming the current session.
#[derive(Clone)]
pub(crate) struct CurrentSession(pub(crate) Session);

/// Keeps a session (and, from [`crate::EventSpan::enter`], an event) current on this thread
/// until dropped. Not `Send`: it belongs to the thread that made it.
#[must_use = "the session is current only while the guard lives"]
pub struct SessionGuard {
    _guard: ContextGuard,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for SessionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionGuard")
    }
}

impl SessionGuard {
    pub(crate) fn attach(cx: Context) -> Self {
        Self {
            _guard: cx.attach(),
            _not_send: PhantomData,
        }
    }
}

impl Session {
    /// Makes this the current session on this thread until the guard drops.
    ///
    /// ```no_run
    /// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
    /// let session = client.start_session(Default::default())?;
    /// let _current = session.enter();
    /// // Anywhere below, on this thread:
    /// agentops::current_session().unwrap().record(agentops::Event::action("plan"))?;
    /// # Ok::<(), agentops::Error>(())
    /// ```
    pub fn enter(&self) -> SessionGuard {
        SessionGuard::attach(Context::current_with_value(CurrentSession(self.clone())))
    }

    /// Runs `future` with this as the current session, on whatever thread polls it.
    pub fn scope<F>(&self, future: F) -> WithContext<F> {
        future.with_context(Context::current_with_value(CurrentSession(self.clone())))
    }
}

/// The session made current by [`Session::enter`], [`Session::scope`] or
/// [`crate::EventSpan::enter`], if any.
pub fn current_session() -> Option<Session> {
    Context::map_current(|cx| cx.get::<CurrentSession>().map(|current| current.0.clone()))
}
