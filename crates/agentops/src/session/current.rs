//! The current session: which session code deep in a call stack records into, without a handle
//! passed down. It lives in the OpenTelemetry [`Context`], so it follows a thread through
//! [`Session::enter`] and an async task through [`Session::scope`].

use std::marker::PhantomData;

use opentelemetry::context::{ContextGuard, FutureExt as _, WithContext};
use opentelemetry::Context;

use super::Session;
use crate::event::AgentId;

/// The context value naming the current session.
#[derive(Clone)]
pub(crate) struct CurrentSession(pub(crate) Session);

/// The context value naming the current agent (see [`AgentId::enter`]).
#[derive(Clone, Copy)]
pub(crate) struct CurrentAgent(pub(crate) AgentId);

/// When a context was entered, in the order of all entries of the process: when an event made
/// current by [`crate::EventSpan::enter`] and a `tracing` span both could be the parent of a new
/// event, the one entered last is.
#[derive(Clone, Copy)]
pub(crate) struct Entered(pub(crate) u64);

/// The next entry's place in that order.
pub(crate) fn next_entry() -> u64 {
    static ENTRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    ENTRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

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

impl AgentId {
    /// Makes this the current agent on this thread until the guard drops: events recorded
    /// meanwhile without [`crate::Event::agent`] are this agent's (the equivalent of the Python
    /// SDK's `track_agent`).
    ///
    /// ```no_run
    /// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
    /// # let session = client.start_session(Default::default())?;
    /// let researcher = session.create_agent("researcher")?;
    /// let _acting = researcher.enter();
    /// session.record(agentops::Event::tool("search"))?; // by the researcher
    /// # Ok::<(), agentops::Error>(())
    /// ```
    pub fn enter(&self) -> SessionGuard {
        SessionGuard::attach(Context::current_with_value(CurrentAgent(*self)))
    }

    /// Runs `future` with this as the current agent, on whatever thread polls it.
    pub fn scope<F>(&self, future: F) -> WithContext<F> {
        future.with_context(Context::current_with_value(CurrentAgent(*self)))
    }
}

/// The agent made current by [`AgentId::enter`] or [`AgentId::scope`], if any.
pub fn current_agent() -> Option<AgentId> {
    Context::map_current(|cx| cx.get::<CurrentAgent>().map(|current| current.0))
}

/// The event made current by [`crate::EventSpan::enter`] (or a scope), with its session and
/// when it was entered.
#[cfg(feature = "tracing-layer")]
pub(crate) fn entered_event() -> Option<(Session, Context, u64)> {
    use opentelemetry::trace::TraceContextExt as _;
    Context::map_current(|cx| {
        let session = cx.get::<CurrentSession>()?.0.clone();
        let ours = cx.has_active_span()
            && cx.span().span_context().trace_id() == session.inner.state.trace_id;
        ours.then(|| {
            let order = cx.get::<Entered>().map_or(0, |entered| entered.0);
            (session, cx.clone(), order)
        })
    })
}

/// The session made current by [`Session::enter`], [`Session::scope`] or
/// [`crate::EventSpan::enter`], if any.
pub fn current_session() -> Option<Session> {
    Context::map_current(|cx| cx.get::<CurrentSession>().map(|current| current.0.clone()))
}
