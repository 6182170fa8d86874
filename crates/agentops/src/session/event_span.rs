//! An event that has started and not yet ended.

use std::time::SystemTime;

use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;

use super::current::{next_entry, CurrentSession, Entered, SessionGuard};
use super::Session;
use crate::event::{Event, EventId};

/// An event that has started and not yet ended. Ends (now) when dropped, if not ended before.
///
/// ```no_run
/// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
/// # let session = client.start_session(Default::default())?;
/// use agentops::Event;
/// let search = session.start_event(Event::action("search_web"))?;
/// {
///     let _inside = search.enter();
///     // Recorded while `search` is entered: a child of it.
///     session.record(Event::tool("http_get").returns("200 OK"))?;
/// }
/// search.end_with(|event| event.returns("sunny, 21C"));
/// # Ok::<(), agentops::Error>(())
/// ```
pub struct EventSpan {
    session: Session,
    /// The span's context, with the session as current; `None` once ended.
    cx: Option<Context>,
    id: EventId,
    event: Option<Event>,
    /// How many attributes the event had when it started (later ones are set at the end).
    started_attributes: usize,
}

impl std::fmt::Debug for EventSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSpan")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl EventSpan {
    pub(super) fn new(session: Session, cx: Context, id: EventId, event: Event) -> Self {
        Self {
            session,
            cx: Some(cx),
            id,
            started_attributes: event.attributes.len(),
            event: Some(event),
        }
    }

    /// The event's id (for [`Event::trigger`]).
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The event's context: its span, its session as the current one.
    pub(crate) fn context(&self) -> Context {
        self.cx
            .clone()
            .unwrap_or_else(|| Context::current_with_value(CurrentSession(self.session.clone())))
    }

    /// The session the event belongs to.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Makes this event the current one on this thread (and its session the current session)
    /// until the guard drops: events recorded meanwhile become its children.
    pub fn enter(&self) -> SessionGuard {
        SessionGuard::attach(self.context().with_value(Entered(next_entry())))
    }

    /// Runs `future` with this event current: events it records become its children.
    pub fn scope<F>(&self, future: F) -> WithContext<F> {
        future.with_context(self.context().with_value(Entered(next_entry())))
    }

    /// The W3C `traceparent` header naming this event, to send with a request to another
    /// service: its OpenTelemetry spans then join this session's trace (the session's UUID is
    /// the trace id), and an AgentOps server files them under this session.
    ///
    /// ```no_run
    /// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
    /// # let session = client.start_session(Default::default())?;
    /// let call = session.start_event(agentops::Event::tool("billing_service"))?;
    /// let header = call.traceparent().unwrap_or_default();
    /// // http.post(url).header("traceparent", header) …
    /// # Ok::<(), agentops::Error>(())
    /// ```
    pub fn traceparent(&self) -> Option<String> {
        let mut headers = std::collections::HashMap::new();
        self.inject_into(&mut headers);
        headers.remove("traceparent")
    }

    /// Writes this event's W3C `traceparent`, and its session's `baggage` (id, tags, baggage
    /// entries), into `injector`: the service the request goes to continues the session under
    /// this event ([`crate::Client::join_session`]). Nothing once the event has ended.
    ///
    /// ```no_run
    /// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
    /// # let session = client.start_session(Default::default())?;
    /// let call = session.start_event(agentops::Event::tool("billing_service"))?;
    /// let mut headers = http::HeaderMap::new();
    /// call.inject_into(&mut agentops::propagation::HeaderInjector(&mut headers));
    /// # Ok::<(), agentops::Error>(())
    /// ```
    pub fn inject_into(&self, injector: &mut dyn opentelemetry::propagation::Injector) {
        if let Some(cx) = &self.cx {
            self.session.inject_context(cx, injector);
        }
    }

    /// Ends the event now.
    pub fn end(mut self) {
        self.finish_with(|event| event);
    }

    /// Updates the event (for example its `returns`) and ends it now.
    pub fn end_with(mut self, update: impl FnOnce(Event) -> Event) {
        self.finish_with(update);
    }

    fn finish_with(&mut self, update: impl FnOnce(Event) -> Event) {
        let (Some(event), Some(cx)) = (self.event.take(), self.cx.take()) else {
            return;
        };
        // The update is the caller's code: it runs before the session is looked at.
        let event = update(event);
        let end = event.end.unwrap_or_else(SystemTime::now);
        let state = &self.session.inner.state;
        let ended = state.while_open(|| {
            state
                .stats
                .open
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            super::finish(&cx, &event, end, self.started_attributes);
        });
        if ended.is_none() {
            // Counted as dropped when the session ended; its span, ended as the context drops,
            // says so.
            cx.span().set_attribute(opentelemetry::KeyValue::new(
                crate::processor::COUNTED,
                true,
            ));
            tracing::debug!(target: "agentops", session_id = %state.id, event_id = %self.id, "event ended after its session ended");
        }
    }
}

impl Drop for EventSpan {
    fn drop(&mut self) {
        self.finish_with(|event| event);
    }
}
