//! Spans that arrive without credentials, held until an authenticated request claims their
//! trace.
//!
//! agentops 0.4 fetches its token in a background thread and exports the spans that end before
//! the token arrives without an `Authorization` header, and never sends them again. Nothing in
//! those spans names their project (their resource says `agentops.project.id=temporary`), so
//! the server holds them by trace id for [`HOLD_FOR`]. When a request with credentials brings
//! spans of the same trace, the held spans are stored with them: in that request's project, in
//! the same write, acknowledged by its answer. Spans nobody claims in time are discarded and
//! counted. The memory they take is bounded by [`MAX_HELD_BYTES`], and at most
//! [`MAX_READING`] such requests are read at once, each of at most [`MAX_BODY_BYTES`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::mapping::span::MappedSpan;

/// How long spans sent without credentials wait for an authenticated request of their trace.
pub const HOLD_FOR: Duration = Duration::from_secs(600);
/// The most memory held spans may take (counted as their share of the request bodies).
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;
/// How many requests without credentials are read at once.
pub const MAX_READING: usize = 4;
/// The largest body of a request without credentials, after decompression.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What became of the spans sent without credentials since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HeldCounts {
    /// Waiting now for their trace to be claimed.
    pub waiting: u64,
    /// Stored, with an authenticated request of their trace.
    pub stored: u64,
    /// Discarded: not claimed within [`HOLD_FOR`], or not in the session of the token that
    /// claimed their trace.
    pub discarded: u64,
}

/// Why spans could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server already holds {MAX_HELD_BYTES} bytes of spans sent without credentials")]
pub struct HoldFull;

/// The spans held, by trace.
pub struct HeldSpans {
    held: Mutex<Held>,
    reading: Arc<Semaphore>,
    hold_for: Duration,
    max_bytes: usize,
}

impl std::fmt::Debug for HeldSpans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldSpans")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Held {
    traces: HashMap<String, Trace>,
    /// Trace ids in the order they were first held, to expire the oldest first.
    arrivals: VecDeque<(Instant, String)>,
    bytes: usize,
    counts: HeldCounts,
}

/// The held spans of one trace.
#[derive(Debug)]
pub struct Trace {
    spans: Vec<MappedSpan>,
    bytes: usize,
    since: Instant,
}

/// Held traces taken by an authenticated request: stored with it, or given back with
/// [`HeldSpans::give_back`] when its write fails.
#[derive(Debug, Default)]
pub struct Claimed {
    traces: Vec<(String, Trace)>,
}

impl Claimed {
    /// Whether no held span was claimed.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The claimed spans.
    pub fn spans(&self) -> impl Iterator<Item = &MappedSpan> {
        self.traces.iter().flat_map(|(_, trace)| &trace.spans)
    }
}

impl Default for HeldSpans {
    fn default() -> Self {
        Self::new(HOLD_FOR, MAX_HELD_BYTES)
    }
}

impl HeldSpans {
    /// Holds spans for `hold_for`, at most `max_bytes` of them.
    pub fn new(hold_for: Duration, max_bytes: usize) -> Self {
        Self {
            held: Mutex::new(Held::default()),
            reading: Arc::new(Semaphore::new(MAX_READING)),
            hold_for,
            max_bytes,
        }
    }

    /// A permit to read one request without credentials, if fewer than [`MAX_READING`] are
    /// being read.
    pub fn try_reading(&self) -> Option<OwnedSemaphorePermit> {
        self.reading.clone().try_acquire_owned().ok()
    }

    /// Holds `spans`, which came in a body of `body_bytes`; all of them or, when that would
    /// take more than the limit, none.
    pub fn hold(&self, spans: Vec<MappedSpan>, body_bytes: usize) -> Result<(), HoldFull> {
        let now = Instant::now();
        let mut held = self.lock();
        held.expire(now, self.hold_for);
        if held.bytes.saturating_add(body_bytes) > self.max_bytes {
            return Err(HoldFull);
        }
        let share = body_bytes / spans.len().max(1);
        for span in spans {
            let Some(trace_id) = span.event.trace_id.clone() else {
                continue;
            };
            held.bytes += share;
            held.counts.waiting += 1;
            match held.traces.get_mut(&trace_id) {
                Some(trace) => {
                    trace.bytes += share;
                    trace.spans.push(span);
                }
                None => {
                    held.arrivals.push_back((now, trace_id.clone()));
                    held.traces.insert(
                        trace_id,
                        Trace {
                            spans: vec![span],
                            bytes: share,
                            since: now,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Takes the held spans of the traces named (hex trace ids).
    pub fn claim<'a>(&self, trace_ids: impl IntoIterator<Item = &'a str>) -> Claimed {
        let mut held = self.lock();
        held.expire(Instant::now(), self.hold_for);
        if held.traces.is_empty() {
            return Claimed::default();
        }
        let mut claimed = Claimed::default();
        for trace_id in trace_ids {
            if let Some((id, trace)) = held.traces.remove_entry(trace_id) {
                held.bytes -= trace.bytes;
                held.counts.waiting -= trace.spans.len() as u64;
                claimed.traces.push((id, trace));
            }
        }
        claimed
    }

    /// Puts back what a request claimed and could not store.
    pub fn give_back(&self, claimed: Claimed) {
        let mut held = self.lock();
        for (trace_id, trace) in claimed.traces {
            held.bytes += trace.bytes;
            held.counts.waiting += trace.spans.len() as u64;
            // Its arrival entry is still queued unless it expired meanwhile.
            if !held.arrivals.iter().any(|(_, id)| *id == trace_id) {
                held.arrivals.push_back((trace.since, trace_id.clone()));
            }
            held.traces.insert(trace_id, trace);
        }
    }

    /// Counts claimed spans as stored, or as discarded.
    pub fn settle(&self, stored: usize, discarded: usize) {
        let mut held = self.lock();
        held.counts.stored += stored as u64;
        held.counts.discarded += discarded as u64;
        if discarded > 0 {
            tracing::info!(
                discarded,
                "spans sent without credentials discarded: not in the session of the token that claimed their trace"
            );
        }
    }

    /// What became of the spans sent without credentials so far.
    pub fn counts(&self) -> HeldCounts {
        let mut held = self.lock();
        held.expire(Instant::now(), self.hold_for);
        held.counts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Held {
    /// Discards the traces held longer than `hold_for`.
    fn expire(&mut self, now: Instant, hold_for: Duration) {
        let mut discarded = 0;
        while let Some((since, _)) = self.arrivals.front() {
            if now.duration_since(*since) < hold_for {
                break;
            }
            let Some((since, trace_id)) = self.arrivals.pop_front() else {
                break;
            };
            // A trace claimed and given back keeps its first arrival; a trace claimed for
            // good is gone.
            if self
                .traces
                .get(&trace_id)
                .is_some_and(|trace| trace.since == since)
            {
                if let Some(trace) = self.traces.remove(&trace_id) {
                    self.bytes -= trace.bytes;
                    let spans = trace.spans.len() as u64;
                    self.counts.waiting -= spans;
                    self.counts.discarded += spans;
                    discarded += spans;
                }
            }
        }
        if discarded > 0 {
            tracing::info!(
                discarded,
                "spans sent without credentials discarded: no authenticated request of their trace came within {} s",
                hold_for.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventRecord, SessionRecord};

    fn span(trace: &str, id: &str) -> MappedSpan {
        MappedSpan {
            event: EventRecord {
                id: id.into(),
                trace_id: Some(trace.into()),
                ..EventRecord::default()
            },
            session: SessionRecord::default(),
        }
    }

    fn ids(claimed: &Claimed) -> Vec<String> {
        claimed.spans().map(|s| s.event.id.clone()).collect()
    }

    #[test]
    fn a_claim_takes_the_spans_of_its_traces_only() {
        let held = HeldSpans::default();
        held.hold(vec![span("t1", "a"), span("t2", "b")], 200)
            .unwrap();
        held.hold(vec![span("t1", "c")], 100).unwrap();
        let claimed = held.claim(["t1", "t9"]);
        assert_eq!(ids(&claimed), ["a", "c"]);
        assert_eq!(held.counts().waiting, 1);
        held.settle(2, 0);
        assert!(held.claim(["t1"]).is_empty());
        assert_eq!(
            held.counts(),
            HeldCounts {
                waiting: 1,
                stored: 2,
                discarded: 0
            }
        );
    }

    #[test]
    fn what_a_failed_write_gives_back_can_be_claimed_again() {
        let held = HeldSpans::default();
        held.hold(vec![span("t1", "a")], 100).unwrap();
        let claimed = held.claim(["t1"]);
        held.give_back(claimed);
        assert_eq!(held.counts().waiting, 1);
        assert_eq!(ids(&held.claim(["t1"])), ["a"]);
    }

    #[test]
    fn memory_is_bounded_and_a_request_is_held_whole_or_not_at_all() {
        let held = HeldSpans::new(HOLD_FOR, 1000);
        held.hold(vec![span("t1", "a")], 600).unwrap();
        assert_eq!(
            held.hold(vec![span("t2", "b"), span("t3", "c")], 600),
            Err(HoldFull)
        );
        assert!(held.claim(["t2", "t3"]).is_empty());
        // claiming frees the room
        assert_eq!(ids(&held.claim(["t1"])), ["a"]);
        held.hold(vec![span("t2", "b")], 900).unwrap();
    }

    #[test]
    fn unclaimed_traces_expire_and_are_counted_as_discarded() {
        let held = HeldSpans::new(Duration::from_millis(50), 1000);
        held.hold(vec![span("t1", "a"), span("t1", "b")], 100)
            .unwrap();
        std::thread::sleep(Duration::from_millis(80));
        held.hold(vec![span("t2", "c")], 100).unwrap();
        assert!(held.claim(["t1"]).is_empty());
        assert_eq!(
            held.counts(),
            HeldCounts {
                waiting: 1,
                stored: 0,
                discarded: 2
            }
        );
        assert_eq!(ids(&held.claim(["t2"])), ["c"]);
    }
}
