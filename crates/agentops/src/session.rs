//! Sessions: the unit everything is grouped in.
//!
//! A [`Session`] owns its `SdkTracerProvider` (whose trace id is the session's UUID), a
//! bounded batch processor and its [`SessionExporter`]. Recording an event builds one span on
//! the caller's thread and returns; a background worker creates, tags and ends the session on
//! the backend, and the batch processor's thread delivers the events.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use agentops_core::{attributes as attr, timestamp, EndState, EventKind};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value as OtelValue};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, Span as SdkSpan,
};
use uuid::Uuid;

use crate::backend::{BackendError, SessionBackend, SessionRecord};
use crate::client::ClientShared;
use crate::config::Config;
use crate::context::CurrentSession;
use crate::delivery::DeliveryCounts;
use crate::event::{AgentId, Event, EventId};
use crate::exporter::SessionExporter;
use crate::processor::BoundedBatchProcessor;
use crate::{ids, Error};

/// How a session ended, what it cost, and what became of its events.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// The session.
    pub session_id: Uuid,
    /// How it ended.
    pub end_state: EndState,
    /// Why, if said.
    pub end_state_reason: Option<String>,
    /// Its cost in US dollars as the backend worked it out (a decimal string such as `"0.0123"`),
    /// when the backend answered.
    pub token_cost: Option<String>,
    /// Where to see it.
    pub session_url: Option<String>,
    /// Events recorded, by v2 `event_type` (`llms`, `tools`, `actions`, `errors`, …).
    pub event_counts: BTreeMap<String, u64>,
    /// Delivered, retried, dropped, failed, sampled-out and still-pending counts.
    pub delivery: DeliveryCounts,
    /// Why the backend did not record the end, if it did not.
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
            attributes: Vec::new(),
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
}

/// Work for the session's lifecycle worker, done in order, off the caller's thread.
enum Job {
    Create,
    UpdateTags,
    CreateAgent {
        id: Uuid,
        name: String,
    },
    End {
        reply: mpsc::Sender<Result<agentops_core::v2::UpdateSessionResponse, BackendError>>,
    },
}

/// One agent run: a handle to record events into, cheap to clone and to share across threads.
///
/// ```no_run
/// use agentops::{Client, Config, EndState, Event, SessionOptions};
/// let client = Client::new(Config::from_env()?)?;
/// let session = client.start_session(SessionOptions::tags(["demo"]))?;
/// session.record(Event::tool("calculator").params(serde_json::json!({"expr": "2+2"})).returns("4"))?;
/// let summary = session.end(EndState::Success, "done")?;
/// println!("cost: {:?}, delivered: {}", summary.token_cost, summary.delivery.delivered);
/// # Ok::<(), agentops::Error>(())
/// ```
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

pub(crate) struct SessionInner {
    backend: Arc<SessionBackend>,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    trace_id: TraceId,
    session_id_value: StringValue,
    tags_value: RwLock<OtelValue>,
    attributes: Vec<KeyValue>,
    config: Arc<Config>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    ended: AtomicBool,
    /// Set once the tracer provider is shut down: spans ending later reach no processor.
    closed: AtomicBool,
    end_lock: Mutex<()>,
    client: Weak<ClientShared>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("ended", &self.is_ended())
            .finish()
    }
}

impl Session {
    pub(crate) fn start(
        config: Arc<Config>,
        transport: Arc<crate::transport::Transport>,
        host_env: Option<serde_json::Value>,
        options: SessionOptions,
        client: Weak<ClientShared>,
    ) -> Result<Self, Error> {
        let id = Uuid::new_v4();
        let mut tags = config.default_tags.clone();
        for tag in options.tags {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        let record = SessionRecord {
            init_timestamp: timestamp::now(),
            end_timestamp: None,
            end_state: EndState::Indeterminate,
            end_state_reason: None,
            tags: tags.clone(),
            host_env,
        };
        let backend = Arc::new(SessionBackend::new(id, transport, record));

        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(config.max_queue_size)
            .with_max_export_batch_size(config.batch_size)
            .with_scheduled_delay(config.max_wait_time)
            .build();
        let processor = BatchSpanProcessor::new(SessionExporter::new(backend.clone()), batch);
        let provider = SdkTracerProvider::builder()
            .with_id_generator(ids::SessionIdGenerator::new(id))
            .with_span_processor(BoundedBatchProcessor::new(
                processor,
                backend.clone(),
                config.max_queue_size,
            ))
            .build();
        let tracer = provider.tracer("agentops");

        let (sender, receiver) = mpsc::channel();
        let worker_backend = backend.clone();
        std::thread::Builder::new()
            .name(format!(
                "agentops-session-{}",
                &id.simple().to_string()[..8]
            ))
            .spawn(move || run_worker(&worker_backend, &receiver))
            .map_err(Error::Thread)?;
        // The worker creates the session on the backend right away, off the caller's thread.
        let _ = sender.send(Job::Create);

        let mut attributes = config.custom_attributes.clone();
        attributes.extend(options.attributes);
        Ok(Session {
            inner: Arc::new(SessionInner {
                trace_id: TraceId::from_bytes(*id.as_bytes()),
                session_id_value: StringValue::from(Arc::<str>::from(id.to_string())),
                tags_value: RwLock::new(tags_value(&tags)),
                backend,
                provider,
                tracer,
                attributes,
                config,
                jobs: Mutex::new(Some(sender)),
                ended: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                end_lock: Mutex::new(()),
                client,
            }),
        })
    }

    /// The session's UUID (also the trace id of its spans).
    pub fn id(&self) -> Uuid {
        self.inner.backend.id
    }

    /// Where the session can be seen, once the backend has said.
    pub fn session_url(&self) -> Option<String> {
        self.inner.backend.session_url()
    }

    /// Whether [`Session::end`] has been called.
    pub fn is_ended(&self) -> bool {
        self.inner.ended.load(Ordering::Acquire)
    }

    /// The session's tags.
    pub fn tags(&self) -> Vec<String> {
        self.inner.backend.record().tags.clone()
    }

    /// What has become of the session's events so far.
    pub fn delivery(&self) -> DeliveryCounts {
        self.inner.backend.stats.snapshot()
    }

    /// Events recorded so far, by v2 `event_type`.
    pub fn event_counts(&self) -> BTreeMap<String, u64> {
        self.inner.backend.counts.snapshot()
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.is_ended() {
            return Err(Error::SessionEnded {
                session_id: self.id(),
            });
        }
        Ok(())
    }

    fn send(&self, job: Job) {
        self.inner.send(job);
    }

    /// Adds tags (those not already there) and sends them to the backend.
    pub fn add_tags<I, S>(&self, tags: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.check_open()?;
        let mut record = self.inner.backend.record();
        for tag in tags {
            let tag = tag.into();
            if !record.tags.contains(&tag) {
                record.tags.push(tag);
            }
        }
        self.replace_tags_value(&record.tags);
        drop(record);
        self.send(Job::UpdateTags);
        Ok(())
    }

    /// Replaces the tags and sends them to the backend.
    pub fn set_tags<I, S>(&self, tags: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.check_open()?;
        let mut record = self.inner.backend.record();
        record.tags = tags.into_iter().map(Into::into).collect();
        self.replace_tags_value(&record.tags);
        drop(record);
        self.send(Job::UpdateTags);
        Ok(())
    }

    fn replace_tags_value(&self, tags: &[String]) {
        *self
            .inner
            .tags_value
            .write()
            .unwrap_or_else(PoisonError::into_inner) = tags_value(tags);
    }

    /// Registers an agent of this session (`/v2/create_agent`, sent in the background) and
    /// returns its id, for [`Event::agent`].
    pub fn create_agent(&self, name: impl Into<String>) -> Result<AgentId, Error> {
        self.check_open()?;
        let id = Uuid::new_v4();
        self.send(Job::CreateAgent {
            id,
            name: name.into(),
        });
        Ok(AgentId(id))
    }

    fn sampled_out(&self, event: &Event) -> bool {
        let rate = self.inner.config.sampling_rate;
        if rate >= 1.0 || event.kind == EventKind::Error || fastrand::f64() < rate {
            return false;
        }
        self.inner
            .backend
            .stats
            .sampled_out
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The parent for a new event: the current span if it belongs to this session.
    fn parent_context(&self) -> Context {
        Context::map_current(|cx| {
            if cx.has_active_span() && cx.span().span_context().trace_id() == self.inner.trace_id {
                cx.clone()
            } else {
                Context::new()
            }
        })
    }

    /// Starts the event's span (named `name`) and returns it with the event's id and the
    /// context it was started in.
    fn start_span(
        &self,
        event: &Event,
        name: String,
        start: SystemTime,
        start_text: String,
    ) -> (SdkSpan, EventId, Context) {
        let inner = &self.inner;
        let mut attributes =
            Vec::with_capacity(7 + inner.attributes.len() + event.attributes.len());
        let event_type = match event.kind.builtin_str() {
            Some(builtin) => StringValue::from(builtin),
            None => StringValue::from(event.kind.as_str().to_owned()),
        };
        attributes.push(KeyValue::new(attr::EVENT_TYPE, event_type));
        attributes.push(KeyValue::new(attr::EVENT_TIMESTAMP, start_text));
        attributes.push(KeyValue::new(
            attr::SESSION_ID,
            inner.session_id_value.clone(),
        ));
        let tags = inner
            .tags_value
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        attributes.push(KeyValue::new(attr::SESSION_TAGS, tags));
        attributes.extend(inner.attributes.iter().cloned());
        attributes.extend(event.attributes.iter().cloned());
        let builder = inner
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(attributes);
        let parent = self.parent_context();
        let mut span = inner.tracer.build_with_context(builder, &parent);
        let id = EventId(ids::event_id(self.id(), span.span_context().span_id()));
        let mut id_text = Uuid::encode_buffer();
        let id_text = id.0.hyphenated().encode_lower(&mut id_text);
        span.set_attribute(KeyValue::new(attr::EVENT_ID, id_text.to_owned()));
        inner.backend.counts.count(&event.kind);
        (span, id, parent)
    }

    /// Records a whole event (started and ended now, unless its times are set) and returns its id.
    pub fn record(&self, mut event: Event) -> Result<EventId, Error> {
        self.check_open()?;
        if self.sampled_out(&event) {
            return Ok(EventId(random_uuid()));
        }
        let start = event.start.unwrap_or_else(SystemTime::now);
        let end = event.end.unwrap_or(start);
        let start_text = iso(start);
        let end_text = if end == start {
            start_text.clone()
        } else {
            iso(end)
        };
        let name = std::mem::take(&mut event.name);
        let (mut span, id, _) = self.start_span(&event, name, start, start_text);
        span.set_attribute(KeyValue::new(attr::EVENT_END_TIMESTAMP, end_text));
        span.set_attribute(KeyValue::new(attr::EVENT_DATA, event.data_json()));
        if let Some(status) = error_status(&event) {
            span.set_status(status);
        }
        span.end_with_timestamp(end);
        Ok(id)
    }

    /// Starts an event to end later with [`EventSpan::end`]. While it is entered
    /// ([`EventSpan::enter`]), events recorded into this session become its children.
    pub fn start_event(&self, event: Event) -> Result<EventSpan, Error> {
        self.check_open()?;
        if self.sampled_out(&event) {
            return Ok(EventSpan {
                session: self.clone(),
                cx: None,
                id: EventId(random_uuid()),
                event: Some(event),
            });
        }
        let start = event.start.unwrap_or_else(SystemTime::now);
        let (span, id, parent) = self.start_span(&event, event.name.clone(), start, iso(start));
        let cx = parent.with_span(span);
        Ok(EventSpan {
            session: self.clone(),
            cx: Some(cx.with_value(CurrentSession(self.clone()))),
            id,
            event: Some(event),
        })
    }

    /// Ends the session: delivers every queued event (waiting up to `shutdown_timeout`), shuts
    /// the exporter down, then sends `update_session` with the end state. Returns the cost and
    /// what became of the events.
    pub fn end(
        &self,
        end_state: EndState,
        reason: impl Into<String>,
    ) -> Result<SessionSummary, Error> {
        let reason = reason.into();
        self.inner
            .end(end_state, (!reason.is_empty()).then_some(reason))
    }

    /// Delivers what is queued now, waiting up to `shutdown_timeout`; the session stays open.
    pub fn flush(&self) -> DeliveryCounts {
        self.inner
            .flush_until(Instant::now() + self.inner.config.shutdown_timeout);
        self.delivery()
    }
}

impl SessionInner {
    fn send(&self, job: Job) {
        if let Some(jobs) = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = jobs.send(job);
        }
    }

    fn end(&self, end_state: EndState, reason: Option<String>) -> Result<SessionSummary, Error> {
        let _ending = self.end_lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.ended.swap(true, Ordering::AcqRel) {
            return Err(Error::SessionEnded {
                session_id: self.backend.id,
            });
        }
        let deadline = Instant::now() + self.config.shutdown_timeout;
        self.flush_until(deadline);
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Err(err) = self
            .provider
            .shutdown_with_timeout(remaining.max(Duration::from_millis(100)))
        {
            tracing::debug!(target: "agentops", session_id = %self.backend.id, %err, "tracer provider shutdown");
        }
        self.closed.store(true, Ordering::Release);
        {
            let mut record = self.backend.record();
            record.end_state = end_state;
            record.end_state_reason = reason.clone();
            record.end_timestamp = Some(timestamp::now());
        }
        let (reply, answer) = mpsc::channel();
        self.send(Job::End { reply });
        // Dropping the sender lets the worker exit once it has ended the session.
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let ended = answer
            .recv_timeout(remaining.max(self.config.request_timeout))
            .unwrap_or_else(|_| {
                Err(BackendError::Unreachable {
                    call: "update_session",
                    reason: "no answer before the shutdown timeout".into(),
                })
            });
        if let Some(client) = self.client.upgrade() {
            client.forget(self.backend.id);
        }
        let (token_cost, backend_error) = match ended {
            Ok(answer) => (answer.token_cost.map(cost_text), None),
            Err(err) => {
                tracing::warn!(target: "agentops", session_id = %self.backend.id, %err, "the session's end was not recorded by the backend");
                (None, Some(err))
            }
        };
        Ok(SessionSummary {
            session_id: self.backend.id,
            end_state,
            end_state_reason: reason,
            token_cost,
            session_url: self.backend.session_url(),
            event_counts: self.backend.counts.snapshot(),
            delivery: self.backend.stats.snapshot(),
            backend_error,
        })
    }

    /// Asks the batch processor to export until nothing is pending or the deadline passes.
    /// (The processor's own `force_flush` gives up after a fixed 5 s.)
    fn flush_until(&self, deadline: Instant) {
        while self.backend.stats.unsettled.load(Ordering::Acquire) > 0 && Instant::now() < deadline
        {
            if self.provider.force_flush().is_ok() {
                continue;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        if self.config.skip_auto_end_session {
            self.ended.store(true, Ordering::Release);
            self.flush_until(Instant::now() + self.config.shutdown_timeout);
            let _ = self.provider.shutdown();
            self.closed.store(true, Ordering::Release);
            return;
        }
        tracing::debug!(target: "agentops", session_id = %self.backend.id, "session dropped without end: ending it as Indeterminate");
        let _ = self.end(
            EndState::Indeterminate,
            Some("session dropped without end".into()),
        );
    }
}

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
    /// The span's context (with the session as current); `None` when sampled out.
    cx: Option<Context>,
    id: EventId,
    event: Option<Event>,
}

impl std::fmt::Debug for EventSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSpan")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl EventSpan {
    /// The event's id (for [`Event::trigger`]).
    pub fn id(&self) -> EventId {
        self.id
    }

    /// Makes this event the current one on this thread (and its session the current session)
    /// until the guard drops: events recorded meanwhile become its children.
    pub fn enter(&self) -> crate::context::SessionGuard {
        let cx = self
            .cx
            .clone()
            .unwrap_or_else(|| Context::current_with_value(CurrentSession(self.session.clone())));
        crate::context::SessionGuard::attach(cx)
    }

    /// Runs `future` with this event current: events it records become its children.
    pub fn scope<F>(&self, future: F) -> opentelemetry::context::WithContext<F> {
        use opentelemetry::context::FutureExt as _;
        let cx = self
            .cx
            .clone()
            .unwrap_or_else(|| Context::current_with_value(CurrentSession(self.session.clone())));
        future.with_context(cx)
    }

    /// The W3C `traceparent` header naming this event, to send with a request to another
    /// service: its OpenTelemetry spans then join this session's trace (the session's UUID is
    /// the trace id), and an AgentOps server files them under this session. `None` when the
    /// event was sampled out.
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
        use opentelemetry::propagation::TextMapPropagator as _;
        let mut headers = std::collections::HashMap::new();
        opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .inject_context(self.cx.as_ref()?, &mut headers);
        headers.remove("traceparent")
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
        let inner = &self.session.inner;
        if inner.closed.load(Ordering::Acquire) {
            inner.backend.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "agentops", session_id = %inner.backend.id, event_id = %self.id, "event ended after its session ended: dropped");
            return;
        }
        let event = update(event);
        let end = event.end.unwrap_or_else(SystemTime::now);
        finish(&cx, &event, end);
    }
}

impl Drop for EventSpan {
    fn drop(&mut self) {
        self.finish_with(|event| event);
    }
}

/// Sets the end attributes of a started event's span and ends it.
fn finish(cx: &Context, event: &Event, end: SystemTime) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(attr::EVENT_END_TIMESTAMP, iso(end)));
    span.set_attribute(KeyValue::new(attr::EVENT_DATA, event.data_json()));
    if let Some(status) = error_status(event) {
        span.set_status(status);
    }
    span.end_with_timestamp(end);
}

fn error_status(event: &Event) -> Option<Status> {
    (event.kind == EventKind::Error)
        .then(|| Status::error(event.details_text().unwrap_or_else(|| event.name.clone())))
}

/// A version 4 UUID from the SDK's fast generator (no system call), for events that are
/// sampled out and so never reach the backend.
fn random_uuid() -> Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

fn iso(time: SystemTime) -> String {
    timestamp::format_system_time(time)
}

fn tags_value(tags: &[String]) -> OtelValue {
    OtelValue::Array(Array::String(
        tags.iter().cloned().map(StringValue::from).collect(),
    ))
}

fn cost_text(cost: serde_json::Value) -> String {
    match cost {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

fn run_worker(backend: &SessionBackend, jobs: &mpsc::Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Create => {
                if let Err(err) = backend.jwt() {
                    tracing::warn!(target: "agentops", session_id = %backend.id, %err, "session not created yet; will retry when events are exported");
                }
            }
            Job::UpdateTags => {
                if let Err(err) = backend.update() {
                    tracing::warn!(target: "agentops", session_id = %backend.id, %err, "tags not updated");
                }
            }
            Job::CreateAgent { id, name } => {
                if let Err(err) = backend.create_agent(id, &name) {
                    tracing::warn!(target: "agentops", session_id = %backend.id, agent = %name, %err, "agent not registered");
                }
            }
            Job::End { reply } => {
                let _ = reply.send(backend.update());
                return;
            }
        }
    }
}
