//! What a session is started with, and what ending it reports.

use std::collections::BTreeMap;

use agentops_core::EndState;
use opentelemetry::{KeyValue, Value as OtelValue};
use uuid::Uuid;

use crate::backend_error::BackendError;
use crate::delivery::DeliveryCounts;

/// How a session ended, what it cost, and what became of its events.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// The session.
    pub session_id: Uuid,
    /// How it ended.
    pub end_state: EndState,
    /// Why, if said.
    pub end_state_reason: Option<String>,
    /// Its cost in US dollars as the backend worked it out (a decimal string such as
    /// `"0.0123"`), when the backend answered (v2 protocol only).
    pub token_cost: Option<String>,
    /// Where to see it.
    pub session_url: Option<String>,
    /// Events recorded, by v2 `event_type` (`llms`, `tools`, `actions`, `errors`, …).
    pub event_counts: BTreeMap<String, u64>,
    /// What became of every event: delivered, dropped, failed, sampled out, or still pending.
    pub delivery: DeliveryCounts,
    /// Why the backend did not record the end (or not everything), if it did not.
    pub backend_error: Option<BackendError>,
}

impl SessionSummary {
    /// The cost as a number, when the backend gave one.
    pub fn token_cost_usd(&self) -> Option<f64> {
        self.token_cost
            .as_deref()
            .and_then(|cost| cost.trim().parse().ok())
    }
}

/// Options for a new session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Tags, added to the client's default tags.
    pub tags: Vec<String>,
    /// Attributes added to every event of the session.
    pub attributes: Vec<KeyValue>,
    /// W3C baggage entries: every event of the session carries them as attributes, and they
    /// go on to the services the session calls (see [`crate::propagation`]).
    pub baggage: Vec<(String, String)>,
    /// An OpenTelemetry span the session starts under: the session joins that span's trace
    /// (its id becomes the session's id) and its root events are the span's children. Set
    /// with [`SessionOptions::parent_context`].
    pub parent: Option<opentelemetry::trace::SpanContext>,
}

impl SessionOptions {
    /// Options with these tags.
    pub fn tags<I, S>(tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            tags: tags.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Adds an attribute to every event of the session.
    pub fn attribute(
        mut self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<OtelValue>,
    ) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }

    /// Adds a W3C baggage entry: carried by every event of the session (as an attribute) and
    /// by the services it calls.
    pub fn baggage(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.baggage.push((key.into(), value.into()));
        self
    }

    /// Starts the session inside an application's existing OpenTelemetry trace: under the
    /// span of `cx` (for example `opentelemetry::Context::current()`), with that trace's id as
    /// the session's id. A context without a valid span changes nothing.
    ///
    /// ```no_run
    /// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
    /// let options = agentops::SessionOptions::default()
    ///     .parent_context(&opentelemetry::Context::current());
    /// let session = client.start_session(options)?;
    /// # Ok::<(), agentops::Error>(())
    /// ```
    pub fn parent_context(mut self, cx: &opentelemetry::Context) -> Self {
        use opentelemetry::trace::TraceContextExt as _;
        let span = cx.span().span_context().clone();
        self.parent = span.is_valid().then_some(span);
        self
    }
}
