//! The client's delivery worker: one thread that does all the network work of all the
//! client's sessions, so that recording never waits on the network and an open session costs
//! no thread.
//!
//! Each session's work is done in order: registration, then tags and agents, then batches of
//! events (when a batch is full, the oldest event has waited `max_wait_time`, or a flush or
//! the end asks), then the end. The worker makes one HTTP attempt at a time, round-robin over
//! sessions, and waits out backoffs between them instead of sleeping through them. An attempt
//! never outlasts the deadline of a session that is ending, and at that deadline the session's
//! summary is answered with what is still pending (delivery goes on in the background).
//!
//! The client's metrics, encoded by their collecting thread, are sent from here too
//! ([`crate::metrics::Sender`]), one attempt at a time between the sessions'.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::SpanData;

use crate::delivery::DeliveryCounts;
use crate::exporter::{Pending, SessionExporter, Step, Wire, Work};
use crate::metrics::Sender;
use crate::reply::Answer;
use crate::state::{Flush, Origin, SessionState};
use crate::sync::lock;

/// The longest the worker sleeps with nothing due.
pub(crate) const IDLE: Duration = Duration::from_secs(1);
/// The shortest time an attempt is given, even close to a deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

struct Inbox {
    /// Set by [`Worker::notify`], cleared when the worker looks at its sessions.
    wake: bool,
    /// Sessions started since the worker last looked.
    new: Vec<Arc<SessionExporter>>,
    /// Whether the thread is running.
    running: bool,
}

pub(crate) struct Shared {
    wire: Arc<Wire>,
    inbox: Mutex<Inbox>,
    wake: Condvar,
    /// Sessions registered and not yet finished (for the exit hook and `wait_idle`).
    live: Mutex<Vec<Arc<SessionState>>>,
    drained: Condvar,
    /// Live [`Worker`] handles: with none left and no session to finish, the thread ends.
    handles: AtomicUsize,
}

/// A handle to a client's worker. Cloning makes another handle.
pub(crate) struct Worker {
    shared: Arc<Shared>,
}

impl Clone for Worker {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::AcqRel);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.notify();
        }
    }
}

impl Worker {
    /// A worker for the client's sessions; its thread starts with the first session.
    pub(crate) fn new(wire: Arc<Wire>) -> Self {
        let shared = Arc::new(Shared {
            wire,
            inbox: Mutex::new(Inbox {
                wake: false,
                new: Vec::new(),
                running: false,
            }),
            wake: Condvar::new(),
            live: Mutex::new(Vec::new()),
            drained: Condvar::new(),
            handles: AtomicUsize::new(1),
        });
        Self { shared }
    }

    /// The worker's shared state, for the exit hook.
    pub(crate) fn shared(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    pub(crate) fn wire(&self) -> &Arc<Wire> {
        &self.shared.wire
    }

    /// Hands a new session to the worker, starting its thread (and, with metrics, the
    /// metrics' collecting thread) if needed.
    pub(crate) fn register(&self, exporter: SessionExporter) -> Result<(), std::io::Error> {
        let state = exporter.state().clone();
        if let Some(metrics) = &self.shared.wire.metrics {
            metrics.start();
            metrics.track(&state);
        }
        lock(&self.shared.live).push(state.clone());
        let mut inbox = lock(&self.shared.inbox);
        inbox.new.push(Arc::new(exporter));
        inbox.wake = true;
        if !inbox.running {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("agentops-delivery".into())
                .spawn(move || run(&shared));
            if let Err(err) = spawned {
                inbox.new.pop();
                drop(inbox);
                lock(&self.shared.live).retain(|live| !Arc::ptr_eq(live, &state));
                if let Some(metrics) = &self.shared.wire.metrics {
                    metrics.untrack(&state);
                }
                return Err(err);
            }
            inbox.running = true;
        }
        drop(inbox);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Wakes the worker to look at its sessions.
    pub(crate) fn notify(&self) {
        self.shared.notify();
    }

    /// See [`Shared::flush_metrics`].
    pub(crate) fn flush_metrics(&self, deadline: Instant) -> Option<Answer<bool>> {
        self.shared.flush_metrics(deadline)
    }
}

impl Shared {
    pub(crate) fn notify(&self) {
        lock(&self.inbox).wake = true;
        self.wake.notify_one();
    }

    /// Asks the worker to collect and send the client's metrics now. `None` when there is
    /// nothing to send (metrics off, no session ever started, or a backend without a metrics
    /// endpoint); else whether they were delivered, answered by `deadline`.
    pub(crate) fn flush_metrics(&self, deadline: Instant) -> Option<Answer<bool>> {
        let answer = self.wire.metrics.as_ref()?.request_flush(deadline)?;
        self.notify();
        Some(answer)
    }

    /// Sessions not yet finished.
    pub(crate) fn live(&self) -> Vec<Arc<SessionState>> {
        lock(&self.live).clone()
    }

    /// Waits until every session is finished or `deadline` passes; whether all were.
    pub(crate) fn wait_drained(&self, deadline: Instant) -> bool {
        let mut live = lock(&self.live);
        loop {
            if live.is_empty() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            live = self
                .drained
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

/// The worker's view of one session.
struct Track {
    exporter: Arc<SessionExporter>,
    /// The work item being tried.
    current: Option<Pending>,
    /// Halves of a split batch, sent before anything else.
    front: VecDeque<Pending>,
    /// An empty span buffer, swapped with the queue's to take a batch.
    spare: VecDeque<SpanData>,
    opened: bool,
    closed: bool,
    finished: bool,
}

/// When a session next has something to do.
enum Due {
    Now,
    At(Instant),
    Idle,
}

impl Track {
    fn new(exporter: Arc<SessionExporter>) -> Self {
        Self {
            exporter,
            current: None,
            front: VecDeque::new(),
            spare: VecDeque::new(),
            opened: false,
            closed: false,
            finished: false,
        }
    }

    fn state(&self) -> &SessionState {
        self.exporter.state()
    }

    /// Picks the next work item if none is being tried, and says when it is due.
    fn due(&mut self, now: Instant) -> Due {
        if let Some(pending) = &self.current {
            return if pending.not_before <= now {
                Due::Now
            } else {
                Due::At(pending.not_before)
            };
        }
        if !self.opened {
            self.opened = true;
            self.current = Some(Pending::new(Work::Open));
            return Due::Now;
        }
        if let Some(next) = self.front.pop_front() {
            self.current = Some(next);
            return Due::Now;
        }
        let exporter = self.exporter.clone();
        let config = &exporter.state().config;
        let mut queue = exporter.state().queue();
        if let Some(job) = queue.jobs.pop_front() {
            self.current = Some(Pending::new(Work::Job(job)));
            return Due::Now;
        }
        if let Some(oldest) = queue.oldest {
            let ripe = oldest.checked_add(config.max_wait_time).unwrap_or(now);
            let urgent = queue.ending.is_some() || !queue.flushes.is_empty();
            if urgent || ripe <= now || queue.spans.len() >= config.batch_size {
                // A batch that is all there is changes hands without a copy under the lock:
                // the queue gets the spare buffer (and keeps its capacity).
                if queue.spans.len() <= config.batch_size {
                    std::mem::swap(&mut queue.spans, &mut self.spare);
                    queue.oldest = None;
                    drop(queue);
                } else {
                    self.spare.extend(queue.spans.drain(..config.batch_size));
                    drop(queue);
                }
                let batch = self.exporter.batch(self.spare.drain(..));
                if batch.len() == 0 {
                    return Due::Now;
                }
                self.current = Some(Pending::new(Work::Events(batch)));
                return Due::Now;
            }
            return Due::At(ripe);
        }
        let Some(ending) = &queue.ending else {
            return Due::Idle;
        };
        // A joined session is ended by the service that started it: nothing to send.
        let owned = self.exporter.state().origin == Origin::Here;
        if ending.leave_open || self.closed || !owned {
            drop(queue);
            self.finish();
            return Due::Idle;
        }
        self.closed = true;
        self.current = Some(Pending::new(Work::Close));
        Due::Now
    }

    /// One attempt at the current work item.
    fn step(&mut self, limit: Duration) {
        let Some(mut pending) = self.current.take() else {
            return;
        };
        match self.exporter.step(&mut pending, limit) {
            Step::Done => {}
            Step::RetryAt(at) => {
                pending.not_before = at;
                self.current = Some(pending);
            }
            Step::Split(left, right) => {
                self.front.push_front(Pending::new(Work::Events(right)));
                self.front.push_front(Pending::new(Work::Events(left)));
            }
        }
        self.answer_flushes(Instant::now());
    }

    /// Answers the flushes that are done or out of time (outside the queue's lock: an answer
    /// may wake a task that records into this session).
    fn answer_flushes(&mut self, now: Instant) {
        let done: Vec<Flush> = {
            let mut queue = self.state().queue();
            if queue.flushes.is_empty() {
                return;
            }
            let settled = queue.settled;
            let (done, waiting) = std::mem::take(&mut queue.flushes)
                .into_iter()
                .partition(|flush| settled >= flush.target || now >= flush.deadline);
            queue.flushes = waiting;
            done
        };
        let counts = self.state().stats.snapshot();
        for mut flush in done {
            flush.reply.send(counts);
        }
    }

    /// Answers an end whose deadline has passed with the summary as it stands.
    fn answer_late_end(&mut self, now: Instant) {
        let reply = {
            let mut queue = self.state().queue();
            match queue.ending.as_mut() {
                Some(ending) if now >= ending.deadline => ending.reply.take(),
                _ => None,
            }
        };
        if let Some(mut reply) = reply {
            reply.send(self.state().summary());
            tracing::warn!(target: "agentops", session_id = %self.state().id, "shutdown timeout reached; delivery goes on in the background");
        }
    }

    /// The deadline of an end someone still waits for.
    fn waited_deadline(&self) -> Option<Instant> {
        let queue = self.state().queue();
        let ending = queue.ending.as_ref()?;
        ending.reply.as_ref().map(|_| ending.deadline)
    }

    fn finish(&mut self) {
        self.finished = true;
        let (reply, flushes) = {
            let mut queue = self.state().queue();
            let reply = queue.ending.as_mut().and_then(|ending| ending.reply.take());
            (reply, std::mem::take(&mut queue.flushes))
        };
        let summary = self.state().summary();
        let counts: DeliveryCounts = summary.delivery;
        if let Some(mut reply) = reply {
            reply.send(summary);
        }
        for mut flush in flushes {
            flush.reply.send(counts);
        }
    }
}

/// Marks the thread stopped however it ends, so that the next session starts a new one.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.0.inbox).running = false;
    }
}

fn run(shared: &Shared) {
    let _running = Running(shared);
    let mut tracks: Vec<Track> = Vec::new();
    let mut metrics = Sender::default();
    loop {
        {
            let mut inbox = lock(&shared.inbox);
            inbox.wake = false;
            tracks.extend(inbox.new.drain(..).map(Track::new));
            // Metrics waiting only for the next periodic export do not keep the thread: they
            // are flushed by `Client::shutdown` and at exit.
            let flushing = metrics.has_waiters()
                || shared
                    .wire
                    .metrics
                    .as_ref()
                    .is_some_and(|m| m.flush_requested());
            if tracks.is_empty() && shared.handles.load(Ordering::Acquire) == 0 && !flushing {
                return;
            }
        }
        // A panic in one round (a bug, or a panicking `tracing` subscriber) must not stop
        // delivery for every session of the client.
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deliver_round(shared, &mut tracks, &mut metrics)
        }));
        match round {
            Ok(true) => continue,
            Ok(false) => {}
            Err(_) => {
                tracing::error!(target: "agentops", "the delivery thread caught a panic; going on");
                continue;
            }
        }
    }
}

/// One round over the sessions: answers what is due, makes at most one attempt per session,
/// forgets finished sessions, and waits when nothing was done. Whether anything was done.
fn deliver_round(shared: &Shared, tracks: &mut Vec<Track>, metrics: &mut Sender) -> bool {
    let now = Instant::now();
    for track in tracks.iter_mut() {
        track.answer_late_end(now);
        track.answer_flushes(now);
    }
    let deadline = tracks
        .iter()
        .filter_map(Track::waited_deadline)
        .chain(metrics.deadline())
        .min();
    let limit = |now: Instant| match deadline {
        Some(deadline) => deadline.saturating_duration_since(now).max(MIN_ATTEMPT),
        None => Duration::MAX,
    };
    let mut next = now + IDLE;
    let mut worked = false;
    for track in tracks.iter_mut() {
        match track.due(Instant::now()) {
            Due::Now => {
                track.step(limit(Instant::now()));
                worked = true;
            }
            Due::At(at) => next = next.min(at),
            Due::Idle => {}
        }
    }
    // The client's metrics: one attempt at most per round too, between the sessions'.
    let round = metrics.round(&shared.wire, limit);
    worked |= round.worked;
    if let Some(at) = round.next {
        next = next.min(at);
    }
    if let Some(deadline) = deadline {
        next = next.min(deadline);
    }
    let finished: Vec<Arc<SessionState>> = tracks
        .iter()
        .filter(|track| track.finished)
        .map(|track| track.exporter.state().clone())
        .collect();
    if !finished.is_empty() {
        tracks.retain(|track| !track.finished);
        if let Some(metrics) = &shared.wire.metrics {
            metrics.fold(&finished);
        }
        lock(&shared.live).retain(|live| !finished.iter().any(|done| Arc::ptr_eq(done, live)));
        shared.drained.notify_all();
    }
    if worked {
        return true;
    }
    let inbox = lock(&shared.inbox);
    if !inbox.wake {
        let wait = next.saturating_duration_since(Instant::now());
        let _ = shared.wake.wait_timeout(inbox, wait);
    }
    false
}
