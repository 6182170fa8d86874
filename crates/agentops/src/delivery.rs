//! Delivery counts of one session, kept by its processor and exporter.
//!
//! opentelemetry-sdk's batch processor does not tell how many spans it dropped, and its
//! `shutdown` succeeds even when the last export failed, so the session counts for itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use agentops_core::EventKind;

/// Live counters, shared by a session's processor, exporter and handle.
#[derive(Debug, Default)]
pub(crate) struct DeliveryStats {
    /// Events waiting in the queue (bounded by `max_queue_size`).
    pub queued: AtomicU64,
    /// Events handed to the queue and not yet delivered or given up.
    pub unsettled: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub sampled_out: AtomicU64,
}

impl DeliveryStats {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Marks `n` exported events as settled, counting them in `outcome`.
    pub(crate) fn settle(&self, outcome: &AtomicU64, n: usize) {
        outcome.fetch_add(n as u64, Ordering::Relaxed);
        self.unsettled.fetch_sub(n as u64, Ordering::AcqRel);
    }

    pub(crate) fn snapshot(&self) -> DeliveryCounts {
        DeliveryCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            sampled_out: self.sampled_out.load(Ordering::Relaxed),
            pending: self.unsettled.load(Ordering::Acquire),
        }
    }
}

/// What happened to a session's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Accepted by the backend.
    pub delivered: u64,
    /// Sent again after a retryable failure (each event counted once per resend).
    pub retried: u64,
    /// Refused because the session's queue was full.
    pub dropped: u64,
    /// Given up on: the backend rejected them, or every retry failed.
    pub failed: u64,
    /// Left out by sampling (never errors).
    pub sampled_out: u64,
    /// Still waiting to be delivered.
    pub pending: u64,
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
