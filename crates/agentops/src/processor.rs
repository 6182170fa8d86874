//! The session's span processor: every ended span goes through sampling into the session's
//! bounded queue, which the client's delivery worker drains.
//!
//! opentelemetry-sdk's `BatchSpanProcessor` would cost a thread per session and drop spans
//! without saying how many; this processor costs no thread, and counts every span it refuses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::delivery::DeliveryStats;
use crate::ids;
use crate::state::SessionState;
use crate::worker::Worker;

/// Marks the span of an event already counted as dropped (it ended after its session).
pub(crate) const COUNTED: &str = "agentops.counted_as_dropped";

/// Where a session's ended spans go.
pub(crate) struct Intake {
    state: Arc<SessionState>,
    worker: Worker,
}

impl Intake {
    pub(crate) fn new(state: Arc<SessionState>, worker: Worker) -> Self {
        Self { state, worker }
    }

    /// A span just ended: sampling decides, then it is queued.
    pub(crate) fn accept(&self, span: SpanData) {
        if self.state.is_drained() {
            // Ended after its session: an event counted as dropped when the session closed
            // (it says so), or a recording that outlived the close (counted now).
            let counted = span.attributes.iter().any(|kv| kv.key.as_str() == COUNTED);
            if !counted {
                crate::metrics::Metrics::count_late_drop(
                    self.worker.wire().metrics.as_ref(),
                    &self.state,
                );
            }
            return;
        }
        let sampling = &self.state.sampling;
        if sampling.keeps_everything() {
            return self.enqueue(span);
        }
        if let Some(span) = sampling.on_end(ids::event_id_of(&span), span, &self.state.stats) {
            self.enqueue(span);
        }
    }

    /// Queues a span for export, or counts it as dropped when the queue is full.
    pub(crate) fn enqueue(&self, span: SpanData) {
        let state = &self.state;
        let stats = &state.stats;
        let mut queue = state.queue();
        let in_use = stats.queued.load(std::sync::atomic::Ordering::Acquire)
            + stats.held.load(std::sync::atomic::Ordering::Acquire);
        if in_use >= state.config.max_queue_size as u64 {
            DeliveryStats::add(&stats.dropped, 1);
            let first = !std::mem::replace(&mut queue.warned_full, true);
            drop(queue);
            if first {
                // Logged without the lock: a subscriber may record into this session.
                tracing::warn!(target: "agentops", session_id = %state.id, max_queue_size = state.config.max_queue_size, "event queue full: dropping events until the backend catches up");
            }
            return;
        }
        DeliveryStats::add(&stats.queued, 1);
        queue.spans.push_back(span);
        queue.enqueued += 1;
        let first = queue.oldest.is_none();
        if first {
            queue.oldest = Some(Instant::now());
        }
        // The worker looks at every session at least every `worker::IDLE`: it needs waking for
        // a first event only when that event must go sooner.
        let wake = (first && state.config.max_wait_time < crate::worker::IDLE)
            || queue.spans.len() == state.config.batch_size;
        drop(queue);
        if wake {
            self.worker.notify();
        }
    }
}

/// The processor of a session's tracer provider.
pub(crate) struct SessionProcessor {
    intake: Arc<Intake>,
}

impl SessionProcessor {
    pub(crate) fn new(intake: Arc<Intake>) -> Self {
        Self { intake }
    }
}

impl std::fmt::Debug for SessionProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionProcessor")
            .field("session_id", &self.intake.state.id)
            .finish()
    }
}

impl SpanProcessor for SessionProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.intake.accept(span);
    }

    /// Delivery is the worker's; `Session::flush` waits for it.
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
