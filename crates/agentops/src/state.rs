//! What a session's handles, its span processor and the client's delivery worker share: the
//! session's identity, its counters, its queue of ended spans and lifecycle work, and what the
//! backend said about it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use agentops_core::EndState;
use opentelemetry::trace::{SpanContext, SpanId, TraceId};
use opentelemetry_sdk::trace::SpanData;
use serde_json::Value;
use uuid::Uuid;

use crate::backend_error::BackendError;
use crate::config::Config;
use crate::delivery::{DeliveryCounts, DeliveryStats, EventCounts};
use crate::reply::Replier;
use crate::sampling::Sampling;
use crate::summary::SessionSummary;
use crate::sync::lock;

/// The session's fields as sent in `create_session` / `update_session` (and, over OTLP, on
/// the session span).
#[derive(Debug, Clone)]
pub(crate) struct SessionRecord {
    pub init_timestamp: String,
    pub end_timestamp: Option<String>,
    pub end_state: EndState,
    pub end_state_reason: Option<String>,
    pub tags: Vec<String>,
    pub host_env: Option<Value>,
}

/// What the backend has said about the session.
#[derive(Debug, Default)]
pub(crate) struct Remote {
    /// The session's JWT (v2).
    pub jwt: Option<String>,
    pub session_url: Option<String>,
    /// Set when the backend refused the session for good (a bad API key): its work fails at
    /// once.
    pub refused: Option<BackendError>,
    /// The outcome of the first registration, once known (for `wait_until_created`).
    pub opened: Option<Result<(), BackendError>>,
    /// The backend's answer to the end.
    pub token_cost: Option<String>,
    pub end_error: Option<BackendError>,
}

/// Lifecycle work besides events, done in order by the worker.
#[derive(Debug)]
pub(crate) enum Job {
    /// Send the current tags.
    Tags,
    /// Register an agent.
    Agent { id: Uuid, name: String },
}

/// A request to end the session, seen by the worker.
pub(crate) struct Ending {
    /// When the caller stops waiting.
    pub deadline: Instant,
    /// Who waits for the summary, if anyone.
    pub reply: Option<Replier<SessionSummary>>,
    /// Deliver the events but leave the session open on the backend (`skip_auto_end_session`).
    pub leave_open: bool,
}

/// A request to deliver everything queued before it.
pub(crate) struct Flush {
    /// Done when this many spans have been settled.
    pub target: u64,
    pub deadline: Instant,
    pub reply: Replier<DeliveryCounts>,
}

/// Ended spans waiting for export, and lifecycle work.
#[derive(Default)]
pub(crate) struct Queue {
    pub spans: VecDeque<SpanData>,
    /// When the oldest waiting span was queued.
    pub oldest: Option<Instant>,
    pub jobs: VecDeque<Job>,
    pub ending: Option<Ending>,
    pub flushes: Vec<Flush>,
    /// Spans ever queued, and spans ever settled (delivered or failed); spans are settled in
    /// queue order, so a flush is done when `settled` reaches the `enqueued` it saw.
    pub enqueued: u64,
    pub settled: u64,
    /// The queue-full warning was logged.
    pub warned_full: bool,
}

/// The high bit of [`SessionState::phase`]: the session no longer records.
const CLOSED: u64 = 1 << 63;

thread_local! {
    /// The sessions this thread is recording into right now (by address), innermost last: a
    /// recording can call back into the SDK (a `tracing` subscriber, a panic hook).
    static RECORDING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether this thread is in the middle of recording an event (where SDK locks may be held).
pub(crate) fn recording_on_this_thread() -> bool {
    RECORDING
        .try_with(|stack| stack.try_borrow().map_or(true, |stack| !stack.is_empty()))
        .unwrap_or(false)
}

/// A recording in progress, counted in the phase and in this thread's stack.
struct Recording<'a> {
    phase: &'a AtomicU64,
    session: usize,
}

impl<'a> Recording<'a> {
    fn enter(phase: &'a AtomicU64, session: usize) -> Option<Self> {
        if phase.fetch_add(1, Ordering::AcqRel) & CLOSED != 0 {
            phase.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let _ = RECORDING.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                stack.push(session);
            }
        });
        Some(Self { phase, session })
    }

    /// How many recordings into `session` this thread has in progress.
    fn own(session: usize) -> u64 {
        RECORDING
            .try_with(|stack| {
                stack
                    .try_borrow()
                    .map_or(0, |stack| stack.iter().filter(|s| **s == session).count())
            })
            .unwrap_or(0) as u64
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        let _ = RECORDING.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                if let Some(at) = stack.iter().rposition(|s| *s == self.session) {
                    stack.remove(at);
                }
            }
        });
        self.phase.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// By this process.
    Here,
    /// By another service; this process continues it (`Client::join_session`).
    Joined,
}

/// The state of one session, shared by its handles, its processor and the worker.
pub(crate) struct SessionState {
    pub id: Uuid,
    pub trace_id: TraceId,
    /// The id of the session's own span (the root of every event over OTLP).
    pub root_span_id: SpanId,
    /// Where the session was started: here, or in another service that this process joined
    /// it from (then its lifecycle on the backend is the other service's: this process
    /// neither registers nor ends it, it only delivers its events).
    pub origin: Origin,
    /// The span the session hangs under, in the application or in the calling service
    /// (`SpanContext::empty_context()` when none).
    pub parent: SpanContext,
    pub started: SystemTime,
    pub config: Arc<Config>,
    pub stats: DeliveryStats,
    pub counts: EventCounts,
    pub sampling: Sampling,
    record: Mutex<SessionRecord>,
    remote: Mutex<Remote>,
    opened: Condvar,
    queue: Mutex<Queue>,
    /// [`CLOSED`], plus how many recordings are in progress.
    phase: AtomicU64,
    /// Set once closing is complete: a span that ends later (an event dropped after its
    /// session ended, already counted as dropped) is discarded.
    drained: std::sync::atomic::AtomicBool,
}

impl SessionState {
    pub(crate) fn new(
        id: Uuid,
        (origin, parent): (Origin, SpanContext),
        config: Arc<Config>,
        record: SessionRecord,
        sampling: Sampling,
    ) -> Self {
        Self {
            id,
            trace_id: TraceId::from_bytes(*id.as_bytes()),
            root_span_id: SpanId::from(fastrand::u64(1..)),
            origin,
            parent,
            started: SystemTime::now(),
            config,
            stats: DeliveryStats::default(),
            counts: EventCounts::default(),
            sampling,
            record: Mutex::new(record),
            remote: Mutex::new(Remote::default()),
            opened: Condvar::new(),
            queue: Mutex::new(Queue::default()),
            phase: AtomicU64::new(0),
            drained: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn record(&self) -> MutexGuard<'_, SessionRecord> {
        lock(&self.record)
    }

    pub(crate) fn remote(&self) -> MutexGuard<'_, Remote> {
        lock(&self.remote)
    }

    pub(crate) fn queue(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    /// Records the outcome of the session's registration and wakes whoever waits for it.
    pub(crate) fn set_opened(&self, outcome: Result<(), BackendError>) {
        let mut remote = self.remote();
        if remote.opened.is_none() || outcome.is_ok() {
            remote.opened = Some(outcome);
        }
        drop(remote);
        self.opened.notify_all();
    }

    /// Waits until the backend has accepted or refused the session, or `timeout` passes.
    pub(crate) fn wait_opened(&self, timeout: Duration) -> Option<Result<(), BackendError>> {
        let deadline = Instant::now() + timeout;
        let mut remote = self.remote();
        loop {
            if let Some(outcome) = &remote.opened {
                return Some(outcome.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            remote = self
                .opened
                .wait_timeout(remote, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Runs `record` if the session is still open, holding off [`SessionState::close`] until
    /// it returns (so that an event being recorded is never half-counted). Re-entrant, and
    /// never blocks.
    pub(crate) fn while_open<T>(&self, record: impl FnOnce() -> T) -> Option<T> {
        let _recording = Recording::enter(&self.phase, self.address())?;
        Some(record())
    }

    fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether closing is complete (see `drained`).
    pub(crate) fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Stops recording, once recordings in progress on other threads have finished (at most
    /// the shutdown timeout: a recording never waits on anything, so this is short): events
    /// still open are counted as dropped. `false` if already closed.
    pub(crate) fn close(&self) -> bool {
        if self.phase.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED != 0 {
            return false;
        }
        // This thread's own recordings (closing from inside one) cannot finish first.
        let settled = CLOSED + Recording::own(self.address());
        let give_up = Instant::now().checked_add(self.config.shutdown_timeout);
        while self.phase.load(Ordering::Acquire) > settled {
            if give_up.is_some_and(|at| Instant::now() >= at) {
                break;
            }
            std::thread::yield_now();
        }
        let open = self.stats.open.swap(0, Ordering::AcqRel);
        if open > 0 {
            DeliveryStats::add(&self.stats.dropped, open);
        }
        self.drained.store(true, Ordering::Release);
        if open > 0 {
            tracing::warn!(target: "agentops", session_id = %self.id, open, "events still open when the session ended were dropped");
        }
        true
    }

    /// Marks the session ended (state, reason, time) and queues its end for the worker.
    pub(crate) fn request_end(
        &self,
        end_state: EndState,
        reason: Option<String>,
        deadline: Instant,
        reply: Option<Replier<SessionSummary>>,
    ) {
        {
            let mut record = self.record();
            record.end_state = end_state;
            record.end_state_reason = reason;
            record.end_timestamp = Some(agentops_core::timestamp::now());
        }
        self.sampling.settle_all(&self.stats);
        self.queue().ending = Some(Ending {
            deadline,
            reply,
            leave_open: false,
        });
    }

    /// Queues delivery of everything and forgets the session without ending it on the backend.
    pub(crate) fn request_detach(&self, deadline: Instant) {
        self.sampling.settle_all(&self.stats);
        self.queue().ending = Some(Ending {
            deadline,
            reply: None,
            leave_open: true,
        });
    }

    /// The summary as things stand.
    pub(crate) fn summary(&self) -> SessionSummary {
        let record = self.record().clone();
        let remote = self.remote();
        let delivery = self.stats.snapshot();
        let backend_error = remote.end_error.clone().or_else(|| {
            (delivery.pending > 0).then_some(BackendError::Timeout {
                pending: delivery.pending,
            })
        });
        SessionSummary {
            session_id: self.id,
            end_state: record.end_state,
            end_state_reason: record.end_state_reason,
            token_cost: remote.token_cost.clone(),
            session_url: remote.session_url.clone(),
            event_counts: self.counts.snapshot(),
            delivery,
            backend_error,
        }
    }
}
