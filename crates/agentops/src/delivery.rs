//! What became of a session's events: live counters kept by the session, its processor and the
//! delivery worker, and the snapshot a user sees.
//!
//! Every recorded event is in exactly one place at any time: still open, held by sampling,
//! queued or being sent, delivered, dropped, failed, or sampled out. So, once a session has
//! ended, `recorded = delivered + dropped + failed + sampled_out + pending`, where `pending` is
//! not zero only when the shutdown timeout cut delivery short.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use agentops_core::EventKind;

/// Live counters of one session.
#[derive(Debug, Default)]
pub(crate) struct DeliveryStats {
    /// Events accepted by `record` / `start_event`.
    pub recorded: AtomicU64,
    /// Started and not yet ended.
    pub open: AtomicU64,
    /// Ended, and held by sampling until their tree is kept or left out.
    pub held: AtomicU64,
    /// Queued for export or being sent (bounded by `max_queue_size`, with `held`).
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    /// HTTP requests of this session sent again after a retryable failure.
    pub retried: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub sampled_out: AtomicU64,
}

impl DeliveryStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::AcqRel);
    }

    /// Moves `n` events from `from` to `to`.
    pub(crate) fn moved(from: &AtomicU64, to: &AtomicU64, n: u64) {
        to.fetch_add(n, Ordering::AcqRel);
        from.fetch_sub(n, Ordering::AcqRel);
    }

    pub(crate) fn snapshot(&self) -> DeliveryCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Acquire);
        DeliveryCounts {
            recorded: load(&self.recorded),
            delivered: load(&self.delivered),
            retried: load(&self.retried),
            dropped: load(&self.dropped),
            failed: load(&self.failed),
            sampled_out: load(&self.sampled_out),
            pending: load(&self.open) + load(&self.held) + load(&self.queued),
        }
    }
}

/// What happened to a session's events.
///
/// Once the session has ended: `recorded == delivered + dropped + failed + sampled_out +
/// pending` (see [`DeliveryCounts::is_balanced`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Events recorded or started in the session.
    pub recorded: u64,
    /// Accepted by the backend.
    pub delivered: u64,
    /// HTTP requests of the session (creation, events, tags, end) sent again after a
    /// retryable failure.
    pub retried: u64,
    /// Refused because the session's queue was full, or still open (not ended) when the
    /// session ended.
    pub dropped: u64,
    /// Given up on: the backend rejected them, or every retry failed.
    pub failed: u64,
    /// Left out by sampling (never errors, nor the events of an error's tree).
    pub sampled_out: u64,
    /// Not settled yet: open, held by sampling, queued or being sent. After `end`, only when
    /// the shutdown timeout cut delivery short; delivery goes on in the background.
    pub pending: u64,
}

impl DeliveryCounts {
    /// Whether every recorded event is accounted for.
    pub fn is_balanced(&self) -> bool {
        self.recorded
            == self.delivered + self.dropped + self.failed + self.sampled_out + self.pending
    }
}

/// How many events of each type a session recorded (sent as the session's `event_counts`).
#[derive(Debug, Default)]
pub(crate) struct EventCounts {
    llms: AtomicU64,
    tools: AtomicU64,
    actions: AtomicU64,
    errors: AtomicU64,
    custom: Mutex<BTreeMap<String, u64>>,
}

impl EventCounts {
    pub(crate) fn count(&self, kind: &EventKind) {
        let counter = match kind {
            EventKind::Llm => &self.llms,
            EventKind::Tool => &self.tools,
            EventKind::Action => &self.actions,
            EventKind::Error => &self.errors,
            EventKind::Custom(name) => {
                let mut custom = self.custom.lock().unwrap_or_else(PoisonError::into_inner);
                *custom.entry(name.clone()).or_default() += 1;
                return;
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts by v2 `event_type`, with the Python SDK's five keys always present.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut counts = self
            .custom
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (name, counter) in [
            ("llms", &self.llms),
            ("tools", &self.tools),
            ("actions", &self.actions),
            ("errors", &self.errors),
        ] {
            counts.insert(name.to_owned(), counter.load(Ordering::Relaxed));
        }
        counts.entry("apis".to_owned()).or_insert(0);
        counts
    }
}
