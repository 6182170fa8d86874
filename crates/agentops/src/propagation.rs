//! One session across services: W3C trace context and baggage.
//!
//! A service that calls another puts the current event's `traceparent`, and the session's id,
//! tags and baggage in a W3C `baggage` header, on the request ([`crate::Session::inject_into`],
//! [`crate::EventSpan::inject_into`], with [`HeaderInjector`] for an [`http::HeaderMap`]).
//! The called service continues the same session from those headers
//! ([`RemoteSession::from_headers`], then [`crate::Client::join_session`]): its events are
//! children of the caller's event, in the caller's session, and carry the baggage's entries
//! as attributes. Any OpenTelemetry service that propagates W3C headers joins the session too:
//! its spans share the session's trace id, which is the session's UUID.
//!
//! ```no_run
//! use agentops::propagation::{HeaderExtractor, HeaderInjector, RemoteSession};
//! # let client = agentops::Client::new(agentops::Config::from_env()?)?;
//! # let session = client.start_session(Default::default())?;
//! // The caller, inside an event:
//! let call = session.start_event(agentops::Event::tool("weather_service"))?;
//! let mut headers = http::HeaderMap::new();
//! call.inject_into(&mut HeaderInjector(&mut headers));
//! // … send the request with `headers` …
//!
//! // The called service, on receiving `headers`:
//! if let Some(remote) = RemoteSession::extract(&HeaderExtractor(&headers)) {
//!     let joined = client.join_session(remote)?;
//!     joined.record(agentops::Event::action("lookup"))?;
//! }
//! # Ok::<(), agentops::Error>(())
//! ```

use opentelemetry::baggage::{Baggage, BaggageExt as _};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use uuid::Uuid;

/// The baggage entry naming the session.
pub const SESSION_ID_KEY: &str = "agentops.session.id";
/// The baggage entry carrying the session's tags, as a JSON array.
pub const SESSION_TAGS_KEY: &str = "agentops.session.tags";

/// Baggage keys the SDK reads or writes itself: never copied to events as attributes.
fn reserved(key: &str) -> bool {
    ["agentops.", "event.", "session."]
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// A session started in another process, to continue here with
/// [`crate::Client::join_session`].
#[derive(Debug, Clone)]
pub struct RemoteSession {
    pub(crate) session_id: Uuid,
    /// The caller's span: the parent of this process's root events (when valid).
    pub(crate) parent: SpanContext,
    pub(crate) tags: Vec<String>,
    pub(crate) baggage: Vec<(String, String)>,
}

impl RemoteSession {
    /// The session named by W3C `traceparent` and `baggage` entries in `carrier`: its id is
    /// the baggage's `agentops.session.id`, else the trace id (which is the session's UUID for
    /// sessions of this SDK, and the session the AgentOps server files the trace's spans in
    /// for any other OpenTelemetry caller). `None` when the carrier names neither. Malformed
    /// headers and baggage entries are ignored, never fatal.
    pub fn extract(carrier: &dyn Extractor) -> Option<Self> {
        let trace = TraceContextPropagator::new().extract(carrier);
        let cx = BaggagePropagator::new().extract_with_context(&trace, carrier);
        Self::from_context(&cx)
    }

    /// [`RemoteSession::extract`] from HTTP request headers.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        Self::extract(&HeaderExtractor(headers))
    }

    /// The session of an OpenTelemetry context: its span's trace (or the
    /// `agentops.session.id` of its baggage) and its baggage.
    pub fn from_context(cx: &Context) -> Option<Self> {
        let span = cx.span().span_context().clone();
        let baggage = cx.baggage();
        let named = baggage
            .get(SESSION_ID_KEY)
            .and_then(|id| Uuid::parse_str(id.as_str()).ok());
        let from_trace = span
            .is_valid()
            .then(|| Uuid::from_bytes(span.trace_id().to_bytes()));
        let session_id = named.or(from_trace)?;
        // The caller's span is the parent only if it is in the session's trace.
        let parent = if from_trace == Some(session_id) {
            span
        } else {
            SpanContext::empty_context()
        };
        let tags = baggage
            .get(SESSION_TAGS_KEY)
            .and_then(|tags| serde_json::from_str::<Vec<String>>(tags.as_str()).ok())
            .unwrap_or_default();
        let entries = baggage
            .iter()
            .filter(|(key, _)| !reserved(key.as_str()))
            .map(|(key, (value, _))| (key.to_string(), value.as_str().to_owned()))
            .collect();
        Some(Self {
            session_id,
            parent,
            tags,
            baggage: entries,
        })
    }

    /// A session known by its id (from a queue message, a database row…): its events become
    /// root events of that session.
    pub fn from_session_id(session_id: Uuid) -> Self {
        Self {
            session_id,
            parent: SpanContext::empty_context(),
            tags: Vec::new(),
            baggage: Vec::new(),
        }
    }

    /// The session's id.
    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// The session's tags, as the caller sent them.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The baggage entries besides the session's own, which this process's events carry as
    /// attributes and which go on to the services it calls.
    pub fn baggage(&self) -> impl Iterator<Item = (&str, &str)> {
        self.baggage.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Writes `traceparent` (the span of `cx`) and `baggage` (the session's id and tags, then
/// `entries`) into `injector`. Entries beyond the W3C limits are left out.
pub(crate) fn inject(
    cx: &Context,
    session_id: Uuid,
    tags: &[String],
    entries: &[(String, String)],
    injector: &mut dyn Injector,
) {
    TraceContextPropagator::new().inject_context(cx, injector);
    let mut pairs = vec![KeyValue::new(SESSION_ID_KEY, session_id.to_string())];
    if !tags.is_empty() {
        pairs.push(KeyValue::new(
            SESSION_TAGS_KEY,
            serde_json::to_string(tags).unwrap_or_default(),
        ));
    }
    pairs.extend(
        entries
            .iter()
            .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
    );
    // `Baggage` keeps what fits its limits (64 entries, 8 KiB in all), the first first.
    let baggage: Baggage = pairs.into_iter().collect();
    BaggagePropagator::new().inject_context(&Context::new().with_baggage(baggage), injector);
}

/// The baggage entries worth copying to events: not the SDK's own keys.
pub(crate) fn event_attributes(
    entries: &[(String, String)],
) -> impl Iterator<Item = KeyValue> + '_ {
    entries
        .iter()
        .filter(|(key, _)| !reserved(key))
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
}

/// Writes propagation headers into an [`http::HeaderMap`] (names and values that are not
/// valid HTTP are skipped).
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Reads propagation headers from an [`http::HeaderMap`].
#[derive(Debug)]
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(http::header::HeaderName::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
    use std::collections::HashMap;

    fn span_context(session: Uuid, span: u64) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(*session.as_bytes()),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn what_is_injected_is_extracted() {
        let session = Uuid::new_v4();
        let mut headers = http::HeaderMap::new();
        inject(
            &span_context(session, 42),
            session,
            &["prod".into(), "eu, west".into()],
            &[("user.id".into(), "u-1 é".into())],
            &mut HeaderInjector(&mut headers),
        );
        assert!(headers["traceparent"]
            .to_str()
            .unwrap()
            .contains(&session.simple().to_string()));
        let remote = RemoteSession::from_headers(&headers).unwrap();
        assert_eq!(remote.session_id(), session);
        assert_eq!(remote.parent.span_id(), SpanId::from(42));
        assert!(remote.parent.is_remote());
        assert_eq!(remote.tags(), ["prod", "eu, west"]);
        assert_eq!(remote.baggage().collect::<Vec<_>>(), [("user.id", "u-1 é")]);
    }

    #[test]
    fn a_plain_opentelemetry_caller_names_the_session_by_its_trace() {
        let mut carrier = HashMap::new();
        carrier.insert(
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        );
        carrier.insert("baggage".to_owned(), "tenant=acme,bad entry,=x".to_owned());
        let remote = RemoteSession::extract(&carrier).unwrap();
        assert_eq!(
            remote.session_id().to_string(),
            "0af76519-16cd-43dd-8448-eb211c80319c"
        );
        assert_eq!(remote.baggage().collect::<Vec<_>>(), [("tenant", "acme")]);
        assert!(remote.tags().is_empty());
    }

    #[test]
    fn baggage_alone_names_a_session_without_a_parent() {
        let session = Uuid::new_v4();
        let mut carrier = HashMap::new();
        carrier.insert("baggage".to_owned(), format!("{SESSION_ID_KEY}={session}"));
        // a traceparent of another trace is not the parent
        carrier.insert(
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        );
        let remote = RemoteSession::extract(&carrier).unwrap();
        assert_eq!(remote.session_id(), session);
        assert!(!remote.parent.is_valid());
    }

    #[test]
    fn nothing_to_extract_and_malformed_headers_are_not_fatal() {
        assert!(RemoteSession::extract(&HashMap::<String, String>::new()).is_none());
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), "garbage".to_owned());
        carrier.insert("baggage".to_owned(), "%%%".to_owned());
        assert!(RemoteSession::extract(&carrier).is_none());
    }

    #[test]
    fn baggage_beyond_the_w3c_limits_is_left_out() {
        let session = Uuid::new_v4();
        let entries: Vec<(String, String)> = (0..300)
            .map(|i| (format!("k{i}"), "v".repeat(100)))
            .collect();
        let mut headers = http::HeaderMap::new();
        inject(
            &span_context(session, 7),
            session,
            &[],
            &entries,
            &mut HeaderInjector(&mut headers),
        );
        let baggage = headers["baggage"].to_str().unwrap();
        assert!(baggage.len() <= 8192, "{}", baggage.len());
        assert!(baggage.contains(SESSION_ID_KEY));
        let remote = RemoteSession::from_headers(&headers).unwrap();
        assert_eq!(remote.session_id(), session);
        assert!(remote.baggage().count() < 300);
    }
}
