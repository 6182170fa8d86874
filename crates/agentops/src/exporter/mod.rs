//! The SessionExporter: delivers one session's spans and lifecycle to the backend, over the v2
//! REST API ([`v2`]) or OTLP/HTTP ([`otlp`]).
//!
//! Delivery is a sequence of [`Work`] items, each tried one HTTP attempt at a time
//! ([`SessionExporter::step`]): the client's delivery worker interleaves the attempts of all
//! sessions and waits out backoffs without blocking any of them. Both protocols share the
//! retries (connection errors, timeouts, 408, 429 with `Retry-After`, 5xx), gzip, one
//! re-authorisation on 401, the split of a batch on 413, and the accounting: every event of a
//! batch ends up delivered or failed.
//!
//! [`SessionExporter`] is also an OpenTelemetry [`SpanExporter`], as the design document has
//! it: `export` delivers one batch through the same steps, waiting out backoffs in place.

pub(crate) mod chat_payload;
pub(crate) mod otlp;
pub(crate) mod v2;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentops_core::v2 as wire;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::backend_error::BackendError;
use crate::config::{Config, Protocol};
use crate::delivery::DeliveryStats;
use crate::metrics::Metrics;
use crate::state::{Job, SessionState};
use crate::sync::lock;
use crate::transport::{Answer, Request, Retry, Transport};

/// What every session of a client shares to reach the backend.
pub(crate) struct Wire {
    pub transport: Transport,
    pub config: Arc<Config>,
    pub otlp: otlp::OtlpWire,
    /// The client's metrics, unless turned off.
    pub metrics: Option<Metrics>,
}

impl Wire {
    pub(crate) fn new(config: Arc<Config>) -> Self {
        Self {
            transport: Transport::new(&config),
            otlp: otlp::OtlpWire::new(&config),
            metrics: Metrics::new(&config),
            config,
        }
    }

    /// One HTTP attempt of `call`, timed in the metrics.
    pub(crate) fn send(&self, call: &'static str, request: &Request, limit: Duration) -> Answer {
        let started = Instant::now();
        let answer = self.transport.send(request, limit);
        if let Some(metrics) = &self.metrics {
            metrics.request_done(call, &answer, started.elapsed());
        }
        answer
    }
}

/// Events on their way, in the protocol's own form.
#[derive(Debug)]
pub(crate) enum Batch {
    V2(Vec<wire::Event>),
    Otlp(Vec<otlp::ProtoSpan>),
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        match self {
            Batch::V2(events) => events.len(),
            Batch::Otlp(spans) => spans.len(),
        }
    }

    fn split(self) -> (Batch, Batch) {
        fn halves<T>(mut items: Vec<T>) -> (Vec<T>, Vec<T>) {
            let right = items.split_off(items.len() / 2);
            (items, right)
        }
        match self {
            Batch::V2(events) => {
                let (left, right) = halves(events);
                (Batch::V2(left), Batch::V2(right))
            }
            Batch::Otlp(spans) => {
                let (left, right) = halves(spans);
                (Batch::Otlp(left), Batch::Otlp(right))
            }
        }
    }
}

/// One thing to tell the backend about a session.
#[derive(Debug)]
pub(crate) enum Work {
    /// Register the session (v2 `create_session`; OTLP: the client's token).
    Open,
    /// A lifecycle job (tags, agents).
    Job(Job),
    /// A batch of events.
    Events(Batch),
    /// The end state (v2 `update_session`; OTLP: the session's span).
    Close,
}

impl Work {
    fn call(&self, protocol: Protocol) -> &'static str {
        match (self, protocol) {
            (Work::Open, Protocol::V2) => "create_session",
            (Work::Open, Protocol::Otlp) => "auth_token",
            (Work::Job(Job::Tags), _) => "update_session",
            (Work::Job(Job::Agent { .. }), _) => "create_agent",
            (Work::Events(_), Protocol::V2) => "create_events",
            (Work::Events(_), Protocol::Otlp) => "traces",
            (Work::Close, Protocol::V2) => "update_session",
            (Work::Close, Protocol::Otlp) => "traces",
        }
    }
}

/// A work item and where its attempts stand.
#[derive(Debug)]
pub(crate) struct Pending {
    pub work: Work,
    /// Not to be tried before this.
    pub not_before: Instant,
    retry: Retry,
    /// Credentials were renewed once after a 401.
    reauthorized: bool,
    /// The encoded request, kept across attempts.
    request: Option<Request>,
}

impl Pending {
    pub(crate) fn new(work: Work) -> Self {
        Self {
            work,
            not_before: Instant::now(),
            retry: Retry::default(),
            reauthorized: false,
            request: None,
        }
    }
}

/// Where a work item stands after an attempt.
#[derive(Debug)]
pub(crate) enum Step {
    /// Finished, and its outcome recorded (delivered or failed, state updated).
    Done,
    /// To be tried again at this instant.
    RetryAt(Instant),
    /// The backend found the batch too large: these two halves replace it, in order.
    Split(Batch, Batch),
}

/// What one attempt gave, before the retry policy is applied.
pub(crate) enum Attempt {
    /// Done; the backend's answer.
    Answered(String),
    /// Credentials were obtained or renewed: try again at once (not a retry).
    Again,
    /// A retryable failure.
    Retryable {
        why: String,
        retry_after: Option<Duration>,
    },
    /// The backend answered 413.
    TooLarge,
    /// Given up on, for this reason.
    Failed(BackendError),
}

/// Exports one session's spans and lifecycle.
pub struct SessionExporter {
    state: Arc<SessionState>,
    wire: Arc<Wire>,
    export_lock: Mutex<()>,
    shutdown: AtomicBool,
}

impl std::fmt::Debug for SessionExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionExporter")
            .field("session_id", &self.state.id)
            .field("protocol", &self.wire.config.protocol)
            .field("shutdown", &self.shutdown.load(Ordering::Relaxed))
            .finish()
    }
}

impl SessionExporter {
    pub(crate) fn new(state: Arc<SessionState>, wire: Arc<Wire>) -> Self {
        Self {
            state,
            wire,
            export_lock: Mutex::new(()),
            shutdown: AtomicBool::new(false),
        }
    }

    pub(crate) fn state(&self) -> &Arc<SessionState> {
        &self.state
    }

    /// Turns ended spans into a batch of this protocol; spans that are not AgentOps events are
    /// counted as failed.
    pub(crate) fn batch(&self, spans: impl ExactSizeIterator<Item = SpanData>) -> Batch {
        let metrics = self.wire.metrics.as_ref();
        let spans = spans.map(|mut span| {
            chat_payload::expand(&mut span);
            if let Some(metrics) = metrics {
                metrics.observe_span(&span);
            }
            span
        });
        match self.wire.config.protocol {
            Protocol::V2 => {
                let total = spans.len();
                let events: Vec<wire::Event> = spans
                    .filter_map(|span| v2::to_v2_event(self.state.id, &span))
                    .collect();
                let malformed = total - events.len();
                if malformed > 0 {
                    tracing::warn!(target: "agentops", session_id = %self.state.id, malformed, "spans without AgentOps event attributes were not exported");
                    self.settle(&self.state.stats.failed, malformed as u64);
                }
                Batch::V2(events)
            }
            Protocol::Otlp => Batch::Otlp(otlp::to_proto_spans(spans)),
        }
    }

    /// One attempt at `pending`, taking at most `limit`.
    pub(crate) fn step(&self, pending: &mut Pending, limit: Duration) -> Step {
        let call = pending.work.call(self.wire.config.protocol);
        let attempt = match self.wire.config.protocol {
            Protocol::V2 => v2::attempt(self, pending, limit),
            Protocol::Otlp => otlp::attempt(self, pending, limit),
        };
        match attempt {
            Attempt::Answered(answer) => {
                self.finish(&mut pending.work, Ok(answer));
                Step::Done
            }
            Attempt::Again => Step::RetryAt(Instant::now()),
            Attempt::Retryable { why, retry_after } => {
                match pending.retry.next(&self.wire.config.retry, retry_after) {
                    Some(pause) => {
                        DeliveryStats::add(&self.state.stats.retried, 1);
                        tracing::debug!(target: "agentops", session_id = %self.state.id, call, %why, ?pause, "retrying");
                        Step::RetryAt(Instant::now() + pause)
                    }
                    None => {
                        self.finish(
                            &mut pending.work,
                            Err(BackendError::Unreachable { call, reason: why }),
                        );
                        Step::Done
                    }
                }
            }
            Attempt::TooLarge => match std::mem::replace(&mut pending.work, Work::Open) {
                Work::Events(batch) if batch.len() > 1 => {
                    tracing::debug!(target: "agentops", events = batch.len(), "batch too large, splitting");
                    DeliveryStats::add(&self.state.stats.retried, 1);
                    let (left, right) = batch.split();
                    Step::Split(left, right)
                }
                mut work => {
                    self.finish(
                        &mut work,
                        Err(BackendError::Refused {
                            call,
                            status: 413,
                            message: "larger than the backend accepts".into(),
                        }),
                    );
                    Step::Done
                }
            },
            Attempt::Failed(err) => {
                self.finish(&mut pending.work, Err(err));
                Step::Done
            }
        }
    }

    /// Records the outcome of a finished work item.
    fn finish(&self, work: &mut Work, outcome: Result<String, BackendError>) {
        let state = &self.state;
        match (work, outcome) {
            (Work::Open, Ok(_)) => state.set_opened(Ok(())),
            (Work::Open, Err(err)) => {
                tracing::warn!(target: "agentops", session_id = %state.id, %err, "session not registered with the backend yet");
                state.set_opened(Err(err));
            }
            (Work::Job(job), Err(err)) => {
                tracing::warn!(target: "agentops", session_id = %state.id, ?job, %err, "session update not recorded");
            }
            (Work::Job(_), Ok(_)) => {}
            (Work::Events(batch), Ok(_)) => {
                self.settle(&state.stats.delivered, batch.len() as u64);
                if let Some(metrics) = &self.wire.metrics {
                    metrics.batch_settled(batch.len(), true);
                }
            }
            (Work::Events(batch), Err(err)) => {
                tracing::warn!(target: "agentops", session_id = %state.id, %err, events = batch.len(), "events not delivered");
                self.settle(&state.stats.failed, batch.len() as u64);
                if let Some(metrics) = &self.wire.metrics {
                    metrics.batch_settled(batch.len(), false);
                }
            }
            (Work::Close, Ok(answer)) => {
                if self.wire.config.protocol == Protocol::V2 {
                    v2::read_end_answer(state, &answer);
                }
            }
            (Work::Close, Err(err)) => {
                tracing::warn!(target: "agentops", session_id = %state.id, %err, "the session's end was not recorded by the backend");
                state.remote().end_error = Some(err);
            }
        }
    }

    /// Marks `n` queued events as settled, counting them in `outcome`.
    fn settle(&self, outcome: &std::sync::atomic::AtomicU64, n: u64) {
        let mut queue = self.state.queue();
        DeliveryStats::moved(&self.state.stats.queued, outcome, n);
        queue.settled += n;
    }

    /// Delivers `pending`, waiting out backoffs on this thread, until `deadline`: what is not
    /// delivered by then is counted as failed.
    fn run_to_end(&self, pending: Pending, deadline: Instant) {
        let mut work = vec![pending];
        while let Some(mut pending) = work.pop() {
            loop {
                if pending.not_before > deadline {
                    let call = pending.work.call(self.wire.config.protocol);
                    self.finish(
                        &mut pending.work,
                        Err(BackendError::Unreachable {
                            call,
                            reason: "not delivered before the shutdown timeout".into(),
                        }),
                    );
                    break;
                }
                let wait = pending.not_before.saturating_duration_since(Instant::now());
                std::thread::sleep(wait);
                match self.step(&mut pending, self.wire.config.request_timeout) {
                    Step::Done => break,
                    Step::RetryAt(at) => pending.not_before = at,
                    Step::Split(left, right) => {
                        work.push(Pending::new(Work::Events(right)));
                        work.push(Pending::new(Work::Events(left)));
                        break;
                    }
                }
            }
        }
    }
}

impl SpanExporter for SessionExporter {
    /// Delivers a batch of this session's spans with the session's retries, blocking the
    /// calling thread up to `shutdown_timeout` (the SDK itself never calls it: its delivery
    /// thread steps through the same work without blocking). Each span is counted as recorded,
    /// then delivered or failed.
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let _exporting = lock(&self.export_lock);
        if self.shutdown.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let deadline = Instant::now() + self.wire.config.shutdown_timeout;
        let count = batch.len() as u64;
        DeliveryStats::add(&self.state.stats.recorded, count);
        DeliveryStats::add(&self.state.stats.queued, count);
        self.state.queue().enqueued += count;
        let batch = self.batch(batch.into_iter());
        if batch.len() > 0 {
            self.run_to_end(Pending::new(Work::Events(batch)), deadline);
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let _exporting = lock(&self.export_lock);
        self.shutdown.store(true, Ordering::Release);
        Ok(())
    }
}
