//! Sessions: the unit everything is grouped in.
//!
//! A [`Session`] owns its `SdkTracerProvider` (whose trace id is the session's UUID) and its
//! span processor; recording an event builds one span on the caller's thread and queues it.
//! The client's delivery worker registers, tags and ends the session on the backend and
//! delivers its events; nothing here waits on the network but [`Session::end`] and
//! [`Session::flush`], which wait at most `shutdown_timeout`.

pub(crate) mod current;
mod event_span;

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use agentops_core::{attributes as attr, timestamp, EndState, EventKind};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value as OtelValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span as SdkSpan};
use uuid::Uuid;

pub use current::{current_agent, current_session, SessionGuard};
pub use event_span::EventSpan;

use crate::backend_error::BackendError;
use crate::config::{Config, Protocol};
use crate::delivery::{DeliveryCounts, DeliveryStats};
use crate::event::{AgentId, Event, EventId};
use crate::exporter::SessionExporter;
use crate::processor::{Intake, SessionProcessor};
use crate::propagation::{self, RemoteSession};
use crate::reply::{self, Answer};
use crate::sampling::{Sampling, Tree};
use crate::state::{Flush, Job, Origin, SessionRecord, SessionState};
use crate::summary::{SessionOptions, SessionSummary};
use crate::worker::Worker;
use crate::{ids, Error};

/// How long past its deadline a blocking `end` or `flush` waits for the worker's answer
/// before answering from the counters itself.
pub(crate) const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// Where a new event goes.
pub(crate) struct Placement {
    parent: Context,
    has_parent: bool,
    agent: Option<AgentId>,
}

/// The sampling tree an event's context carries (`None`: its tree is kept).
#[derive(Clone)]
pub(crate) struct TreeRef(pub(crate) Option<Arc<Tree>>);

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
    pub(crate) state: Arc<SessionState>,
    intake: Arc<Intake>,
    /// Kept for its processor; spans are made through `tracer`.
    _provider: SdkTracerProvider,
    tracer: SdkTracer,
    session_id_value: StringValue,
    tags_value: RwLock<OtelValue>,
    attributes: Vec<KeyValue>,
    /// W3C baggage entries sent on to the services the session calls.
    baggage: Vec<(String, String)>,
    worker: Worker,
    /// The parent of root events: over OTLP, the session's own span; else the span the
    /// session was started or joined under, if any.
    root: Context,
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
    /// Starts a session here, or continues one started by another service (`joined`).
    pub(crate) fn start(
        config: Arc<Config>,
        worker: Worker,
        host_env: Option<serde_json::Value>,
        options: SessionOptions,
        joined: Option<RemoteSession>,
    ) -> Result<Self, Error> {
        let mut baggage = options.baggage;
        let (id, origin, parent, tags) = match joined {
            Some(remote) => {
                baggage.extend(remote.baggage);
                (
                    remote.session_id,
                    Origin::Joined,
                    remote.parent,
                    remote.tags,
                )
            }
            None => {
                let parent = options.parent.unwrap_or_else(SpanContext::empty_context);
                let id = if parent.is_valid() {
                    Uuid::from_bytes(parent.trace_id().to_bytes())
                } else {
                    Uuid::new_v4()
                };
                let mut tags = config.default_tags.clone();
                for tag in options.tags {
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                (id, Origin::Here, parent, tags)
            }
        };
        let record = SessionRecord {
            init_timestamp: timestamp::now(),
            end_timestamp: None,
            end_state: EndState::Indeterminate,
            end_state_reason: None,
            tags: tags.clone(),
            host_env,
        };
        let state = Arc::new(SessionState::new(
            id,
            (origin, parent.clone()),
            config.clone(),
            record,
            Sampling::new(&config),
        ));
        let intake = Arc::new(Intake::new(state.clone(), worker.clone()));
        let provider = SdkTracerProvider::builder()
            .with_id_generator(ids::SessionIdGenerator::new(id))
            .with_span_processor(SessionProcessor::new(intake.clone()))
            .build();
        let tracer = provider.tracer("agentops");
        let root = match (origin, config.protocol) {
            // Over OTLP a session started here is a span of its own, under `parent`.
            (Origin::Here, Protocol::Otlp) => {
                Context::new().with_remote_span_context(SpanContext::new(
                    state.trace_id,
                    state.root_span_id,
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                ))
            }
            _ if parent.is_valid() => sampled_parent(parent),
            _ => Context::new(),
        };
        worker
            .register(SessionExporter::new(state.clone(), worker.wire().clone()))
            .map_err(Error::Thread)?;
        let mut attributes = config.custom_attributes.clone();
        attributes.extend(options.attributes);
        attributes.extend(propagation::event_attributes(&baggage));
        Ok(Session {
            inner: Arc::new(SessionInner {
                session_id_value: StringValue::from(Arc::<str>::from(id.to_string())),
                tags_value: RwLock::new(tags_value(&tags)),
                state,
                intake,
                _provider: provider,
                tracer,
                attributes,
                baggage,
                worker,
                root,
            }),
        })
    }

    fn state(&self) -> &SessionState {
        &self.inner.state
    }

    /// The session's UUID (also the trace id of its spans).
    pub fn id(&self) -> Uuid {
        self.state().id
    }

    /// Where the session can be seen, once the backend has said (never waits).
    pub fn session_url(&self) -> Option<String> {
        self.state().remote().session_url.clone()
    }

    /// Whether the session has ended (or is ending).
    pub fn is_ended(&self) -> bool {
        self.state().is_closed()
    }

    /// The session's tags.
    pub fn tags(&self) -> Vec<String> {
        self.state().record().tags.clone()
    }

    /// What has become of the session's events so far.
    pub fn delivery(&self) -> DeliveryCounts {
        self.state().stats.snapshot()
    }

    /// Events recorded so far, by v2 `event_type`.
    pub fn event_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.state().counts.snapshot()
    }

    /// Waits until the backend has accepted the session (v2: `create_session` answered; OTLP:
    /// the API key exchanged for a token), at most `timeout`. Recording never needs this; it
    /// tells early whether the API key and endpoint work.
    ///
    /// ```no_run
    /// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
    /// let session = client.start_session(Default::default())?;
    /// if let Err(err) = session.wait_until_created(std::time::Duration::from_secs(5)) {
    ///     eprintln!("AgentOps is not recording: {err}");
    /// }
    /// # Ok::<(), agentops::Error>(())
    /// ```
    pub fn wait_until_created(&self, timeout: Duration) -> Result<(), BackendError> {
        self.state().wait_opened(timeout).unwrap_or_else(|| {
            Err(BackendError::Unreachable {
                call: "create_session",
                reason: format!("no answer within {timeout:?}"),
            })
        })
    }

    fn ended_error(&self) -> Error {
        Error::SessionEnded {
            session_id: self.id(),
        }
    }

    /// Adds tags (those not already there) and sends them to the backend.
    pub fn add_tags<I, S>(&self, tags: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.update_tags(|current| {
            for tag in tags {
                let tag = tag.into();
                if !current.contains(&tag) {
                    current.push(tag);
                }
            }
        })
    }

    /// Replaces the tags and sends them to the backend.
    pub fn set_tags<I, S>(&self, tags: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        self.update_tags(|current| *current = tags)
    }

    fn update_tags(&self, change: impl FnOnce(&mut Vec<String>)) -> Result<(), Error> {
        let state = self.state();
        if state.origin == Origin::Joined {
            return Err(Error::JoinedSession {
                session_id: state.id,
            });
        }
        state
            .while_open(|| {
                let mut record = state.record();
                change(&mut record.tags);
                *self
                    .inner
                    .tags_value
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = tags_value(&record.tags);
                drop(record);
                state.queue().jobs.push_back(Job::Tags);
            })
            .ok_or_else(|| self.ended_error())?;
        self.inner.worker.notify();
        Ok(())
    }

    /// Registers an agent of this session (`/v2/create_agent`, sent in the background) and
    /// returns its id, for [`Event::agent`].
    pub fn create_agent(&self, name: impl Into<String>) -> Result<AgentId, Error> {
        let id = Uuid::new_v4();
        let name = name.into();
        let state = self.state();
        state
            .while_open(|| state.queue().jobs.push_back(Job::Agent { id, name }))
            .ok_or_else(|| self.ended_error())?;
        self.inner.worker.notify();
        Ok(AgentId(id))
    }

    /// Writes this session's W3C `traceparent` and `baggage` into `injector` (for the request
    /// to another service, which continues the session with [`crate::Client::join_session`]).
    /// The `traceparent` names the event entered on this thread or task if it is one of this
    /// session's, else the session itself; the baggage carries the session's id, tags and
    /// baggage entries. See [`crate::propagation`].
    ///
    /// ```no_run
    /// # let client = agentops::Client::new(agentops::Config::from_env()?)?;
    /// # let session = client.start_session(Default::default())?;
    /// let mut headers = http::HeaderMap::new();
    /// session.inject_into(&mut agentops::propagation::HeaderInjector(&mut headers));
    /// # Ok::<(), agentops::Error>(())
    /// ```
    pub fn inject_into(&self, injector: &mut dyn opentelemetry::propagation::Injector) {
        let placement = self.placement();
        let cx = if placement.has_parent {
            placement.parent
        } else {
            self.root_context()
        };
        self.inject_context(&cx, injector);
    }

    /// The context naming the session itself: its root span, or its own span id.
    fn root_context(&self) -> Context {
        if self.inner.root.has_active_span() {
            return self.inner.root.clone();
        }
        let state = self.state();
        Context::new().with_remote_span_context(SpanContext::new(
            state.trace_id,
            state.root_span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
    }

    /// Writes `cx`'s span and this session's baggage into `injector`.
    pub(crate) fn inject_context(
        &self,
        cx: &Context,
        injector: &mut dyn opentelemetry::propagation::Injector,
    ) {
        let tags = self.tags();
        propagation::inject(cx, self.id(), &tags, &self.inner.baggage, injector);
    }

    /// Where a new event goes: its parent (the current span, if it is one of this session's:
    /// an entered event, or a `tracing` span the layer made an event of, whichever was entered
    /// last), and the current agent.
    fn placement(&self) -> Placement {
        let trace_id = self.state().trace_id;
        let (entered, agent) = Context::map_current(|cx| {
            let agent = cx.get::<current::CurrentAgent>().map(|current| current.0);
            let ours = cx.has_active_span() && cx.span().span_context().trace_id() == trace_id;
            let entered = ours.then(|| {
                let order = cx.get::<current::Entered>().map_or(0, |entered| entered.0);
                (cx.clone(), order)
            });
            (entered, agent)
        });
        #[cfg(feature = "tracing-layer")]
        let entered = match crate::tracing_layer::current_event(trace_id) {
            Some((cx, order)) if entered.as_ref().is_none_or(|(_, mine)| order > *mine) => {
                Some((cx, order))
            }
            _ => entered,
        };
        match entered {
            Some((parent, _)) => Placement {
                parent,
                has_parent: true,
                agent,
            },
            None => Placement {
                parent: self.inner.root.clone(),
                has_parent: false,
                agent,
            },
        }
    }

    /// Where an event goes under an explicit parent context (from the `tracing` layer).
    #[cfg(feature = "tracing-layer")]
    pub(crate) fn placement_under(&self, parent: Option<Context>) -> Placement {
        match parent {
            Some(parent) => Placement {
                parent,
                has_parent: true,
                agent: current_agent(),
            },
            None => self.placement(),
        }
    }

    /// The configuration of the client this session belongs to.
    pub fn config(&self) -> &Config {
        &self.state().config
    }

    /// Starts the event's span (named `name`) under `parent`, counts it, and puts it in its
    /// sampling tree: the parent's, or a new one for a root event left out by sampling.
    fn start_span(
        &self,
        event: &Event,
        name: String,
        start: SystemTime,
        start_text: String,
        placement: &Placement,
    ) -> (SdkSpan, EventId, Option<Arc<Tree>>) {
        let (parent, has_parent) = (&placement.parent, &placement.has_parent);
        let inner = &self.inner;
        let state = self.state();
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
        let mut span = inner.tracer.build_with_context(builder, parent);
        let id = EventId(ids::event_id(state.id, span.span_context().span_id()));
        let mut id_text = Uuid::encode_buffer();
        let id_text = id.0.hyphenated().encode_lower(&mut id_text);
        span.set_attribute(KeyValue::new(attr::EVENT_ID, id_text.to_owned()));
        DeliveryStats::add(&state.stats.recorded, 1);
        state.counts.count(&event.kind);
        let tree = self.sampling_tree(event, id, parent, *has_parent);
        (span, id, tree)
    }

    /// The event's sampling tree; an error keeps its own tree and its trigger's.
    fn sampling_tree(
        &self,
        event: &Event,
        id: EventId,
        parent: &Context,
        has_parent: bool,
    ) -> Option<Arc<Tree>> {
        let sampling = &self.state().sampling;
        if sampling.keeps_everything() {
            return None;
        }
        let tree = if has_parent {
            parent.get::<TreeRef>().and_then(|tree| tree.0.clone())
        } else if event.kind != EventKind::Error && sampling.leaves_out_root() {
            return Some(sampling.new_tree(id.0));
        } else {
            None
        };
        if event.kind != EventKind::Error {
            if let Some(tree) = &tree {
                sampling.join(tree, id.0);
            }
            return tree;
        }
        let stats = &self.state().stats;
        let mut export = |span| self.inner.intake.enqueue(span);
        if let Some(tree) = &tree {
            sampling.keep(tree, stats, &mut export);
        }
        if let Some(trigger) = event.trigger {
            sampling.keep_event(trigger.0, stats, &mut export);
        }
        None
    }

    /// Records a whole event and returns its id. It starts when recorded unless
    /// [`Event::started_at`] says otherwise, and ends when recorded unless
    /// [`Event::ended_at`] says otherwise.
    pub fn record(&self, mut event: Event) -> Result<EventId, Error> {
        let state = self.state();
        state
            .while_open(|| {
                let start = event.start.unwrap_or_else(SystemTime::now);
                let end = match (event.start, event.end) {
                    (_, Some(end)) => end,
                    (Some(_), None) => SystemTime::now(),
                    (None, None) => start,
                };
                let start_text = iso(start);
                let end_text = if end == start {
                    start_text.clone()
                } else {
                    iso(end)
                };
                let name = std::mem::take(&mut event.name);
                let placement = self.placement();
                if let Some(agent) = placement.agent {
                    event.default_agent(agent);
                }
                let (mut span, id, _) =
                    self.start_span(&event, name, start, start_text, &placement);
                span.set_attribute(KeyValue::new(attr::EVENT_END_TIMESTAMP, end_text));
                span.set_attribute(KeyValue::new(attr::EVENT_DATA, event.data_json()));
                if let Some(status) = error_status(&event) {
                    span.set_status(status);
                }
                span.end_with_timestamp(end);
                id
            })
            .ok_or_else(|| self.ended_error())
    }

    /// Starts an event to end later with [`EventSpan::end`]. While it is entered
    /// ([`EventSpan::enter`]), events recorded into this session become its children.
    pub fn start_event(&self, event: Event) -> Result<EventSpan, Error> {
        let placement = self.placement();
        self.start_event_at(event, placement)
    }

    /// [`Session::start_event`] at a given place.
    pub(crate) fn start_event_at(
        &self,
        mut event: Event,
        placement: Placement,
    ) -> Result<EventSpan, Error> {
        let state = self.state();
        if let Some(agent) = placement.agent {
            event.default_agent(agent);
        }
        state
            .while_open(|| {
                let start = event.start.unwrap_or_else(SystemTime::now);
                let (span, id, tree) =
                    self.start_span(&event, event.name.clone(), start, iso(start), &placement);
                DeliveryStats::add(&state.stats.open, 1);
                let cx = placement
                    .parent
                    .with_span(span)
                    .with_value(current::CurrentSession(self.clone()))
                    .with_value(TreeRef(tree));
                EventSpan::new(self.clone(), cx, id, event)
            })
            .ok_or_else(|| self.ended_error())
    }

    /// Ends the session: delivers every queued event, then sends the end state, waiting at
    /// most `shutdown_timeout` in all (with the backend down, slow or refusing). Returns the
    /// cost and what became of every event; events still pending at the timeout are reported
    /// as such and delivered in the background while the process lives.
    ///
    /// Blocks the calling thread; in async code use [`Session::end_async`].
    pub fn end(
        &self,
        end_state: EndState,
        reason: impl Into<String>,
    ) -> Result<SessionSummary, Error> {
        let deadline = Instant::now() + self.state().config.shutdown_timeout;
        let answer = self.inner.begin_end(end_state, reason.into(), deadline)?;
        Ok(answer
            .wait_until(deadline + ANSWER_GRACE)
            .unwrap_or_else(|| self.state().summary()))
    }

    /// [`Session::end`] without blocking: the returned future resolves when the session has
    /// ended or `shutdown_timeout` has passed, on any executor (it needs no runtime, and never
    /// blocks a worker thread).
    ///
    /// ```no_run
    /// # async fn run(session: agentops::Session) -> Result<(), agentops::Error> {
    /// let summary = session.end_async(agentops::EndState::Success, "done").await?;
    /// # Ok(()) }
    /// ```
    pub fn end_async(
        &self,
        end_state: EndState,
        reason: impl Into<String>,
    ) -> impl Future<Output = Result<SessionSummary, Error>> + Send + 'static {
        let deadline = Instant::now() + self.state().config.shutdown_timeout;
        let started = self.inner.begin_end(end_state, reason.into(), deadline);
        let state = self.inner.state.clone();
        async move {
            let answer = started?.until(deadline + ANSWER_GRACE);
            Ok(answer.await.unwrap_or_else(|| state.summary()))
        }
    }

    /// Delivers what is queued now, waiting at most `shutdown_timeout`; the session stays open.
    /// Blocks the calling thread; in async code use [`Session::flush_async`].
    pub fn flush(&self) -> DeliveryCounts {
        let deadline = Instant::now() + self.state().config.shutdown_timeout;
        self.inner
            .begin_flush(deadline)
            .wait_until(deadline + ANSWER_GRACE)
            .unwrap_or_else(|| self.delivery())
    }

    /// [`Session::flush`] without blocking.
    pub fn flush_async(&self) -> impl Future<Output = DeliveryCounts> + Send + 'static {
        let deadline = Instant::now() + self.state().config.shutdown_timeout;
        let answer = self
            .inner
            .begin_flush(deadline)
            .until(deadline + ANSWER_GRACE);
        let state = self.inner.state.clone();
        async move { answer.await.unwrap_or_else(|| state.stats.snapshot()) }
    }
}

impl SessionInner {
    /// Closes the session and asks the worker to end it by `deadline`.
    pub(crate) fn begin_end(
        &self,
        end_state: EndState,
        reason: String,
        deadline: Instant,
    ) -> Result<Answer<SessionSummary>, Error> {
        if !self.state.close() {
            return Err(Error::SessionEnded {
                session_id: self.state.id,
            });
        }
        let (replier, answer) = reply::channel();
        self.state.request_end(
            end_state,
            (!reason.is_empty()).then_some(reason),
            deadline,
            Some(replier),
        );
        self.worker.notify();
        Ok(answer)
    }

    pub(crate) fn begin_flush(&self, deadline: Instant) -> Answer<DeliveryCounts> {
        let (mut reply, answer) = reply::channel();
        if self.state.is_closed() {
            // Ending delivers everything anyway; the worker may already have let it go.
            reply.send(self.state.stats.snapshot());
            return answer;
        }
        {
            let mut queue = self.state.queue();
            let target = queue.enqueued;
            queue.flushes.push(Flush {
                target,
                deadline,
                reply,
            });
        }
        self.worker.notify();
        answer
    }
}

impl Drop for SessionInner {
    /// A session dropped without `end` is ended as `Indeterminate` (or, with
    /// `skip_auto_end_session`, delivered and left open) by the worker: dropping never waits.
    fn drop(&mut self) {
        if !self.state.close() {
            return;
        }
        let deadline = Instant::now() + self.state.config.shutdown_timeout;
        if self.state.config.skip_auto_end_session {
            self.state.request_detach(deadline);
        } else {
            tracing::debug!(target: "agentops", session_id = %self.state.id, "session dropped without end: ending it as Indeterminate");
            self.state.request_end(
                EndState::Indeterminate,
                Some("session dropped without end".into()),
                deadline,
                None,
            );
        }
        self.worker.notify();
    }
}

/// Sets the end attributes of a started event's span (with the event's attributes added after
/// the first `started_attributes`) and ends it.
pub(crate) fn finish(cx: &Context, event: &Event, end: SystemTime, started_attributes: usize) {
    let span = cx.span();
    for attribute in event.attributes.iter().skip(started_attributes) {
        span.set_attribute(attribute.clone());
    }
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

fn iso(time: SystemTime) -> String {
    timestamp::format_system_time(time)
}

/// A context whose (remote) span is `parent`, marked sampled so that the session's spans are
/// recorded whatever the caller decided.
fn sampled_parent(parent: SpanContext) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        parent.trace_id(),
        parent.span_id(),
        TraceFlags::SAMPLED,
        true,
        parent.trace_state().clone(),
    ))
}

fn tags_value(tags: &[String]) -> OtelValue {
    OtelValue::Array(Array::String(
        tags.iter().cloned().map(StringValue::from).collect(),
    ))
}
