//! Spans that arrive without credentials, held until an authenticated request claims their
//! trace.
//!
//! agentops 0.4 fetches its token in a background thread and exports the spans that end before
//! the token arrives without an `Authorization` header, and never sends them again. Nothing in
//! those spans names their project (their resource says `agentops.project.id=temporary`), so
//! the server holds them by trace id for [`HOLD_FOR`], in the store ([`HeldSpanStore::hold_spans`]):
//! every server on the store sees them, and a restart keeps them. When a request with
//! credentials brings spans of the same trace, through any server, the held spans are claimed
//! and stored with them: in that request's project, in the same write, acknowledged by its
//! answer. They leave the store only once that write is committed (released when it fails; the
//! claim of a server that dies in between lapses after [`CLAIM_FOR`], and the spans' ids make
//! storing them again store nothing twice), so none is lost on the way. Spans nobody claims in time
//! are deleted and counted as discarded. What they take is bounded by [`MAX_HELD_BYTES`]
//! (all servers together), and each server reads at most [`MAX_READING`] such requests at
//! once, each of at most [`MAX_BODY_BYTES`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::mapping::span::MappedSpan;
use crate::store::{EventRecord, HeldSpan, HeldSpanStore, SessionRecord, StoreError};

/// How long spans sent without credentials wait for an authenticated request of their trace.
pub const HOLD_FOR: Duration = Duration::from_secs(600);
/// The most the held spans may take, all servers on the store together (counted as their
/// share of the request bodies).
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;
/// How long a claim holds held spans for the server that made it: far longer than a write
/// waits in the queue and commits (on PostgreSQL a store call gives up after 10 s), short
/// enough that spans a dead server claimed are claimable again well within [`HOLD_FOR`].
pub const CLAIM_FOR: Duration = Duration::from_secs(300);
/// How many requests without credentials a server reads at once.
pub const MAX_READING: usize = 4;
/// The largest body of a request without credentials, after decompression.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What became of the spans sent without credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HeldCounts {
    /// Waiting now for their trace to be claimed (held through any server on the store).
    pub waiting: u64,
    /// Stored by this server since it started, with an authenticated request of their trace.
    pub stored: u64,
    /// Discarded by this server since it started: not claimed within [`HOLD_FOR`], or not in
    /// the session of the token that claimed their trace.
    pub discarded: u64,
}

/// Why spans could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server already holds {MAX_HELD_BYTES} bytes of spans sent without credentials")]
pub struct HoldFull;

/// Holds and claims spans sent without credentials, in the store.
#[derive(Debug)]
pub struct HeldSpans {
    reading: Arc<Semaphore>,
    hold_for: Duration,
    max_bytes: usize,
    stored: AtomicU64,
    discarded: AtomicU64,
}

/// A held span as the store keeps it: the mapped span, with the field its serialisation
/// leaves out.
#[derive(Serialize, Deserialize)]
struct Encoded {
    event: EventRecord,
    call_ids: Option<String>,
    session: SessionRecord,
}

/// Held spans claimed by an authenticated request: settled ([`HeldSpans::settle`]) once its
/// write is committed, given back ([`HeldSpans::give_back`]) when it fails.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The store's numbers of every span claimed (those that could not be read back too:
    /// settling deletes them).
    ids: Vec<i64>,
    /// Until when the claim holds them (its mark on their rows).
    until_ms: i64,
    spans: Vec<MappedSpan>,
    /// How many of them could not be read back (counted as discarded when the claim is
    /// settled, not each time a given-back claim is made again).
    unreadable: usize,
}

impl Claimed {
    /// Whether no held span was claimed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The claimed spans.
    pub fn spans(&self) -> impl Iterator<Item = &MappedSpan> {
        self.spans.iter()
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
            reading: Arc::new(Semaphore::new(MAX_READING)),
            hold_for,
            max_bytes,
            stored: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
        }
    }

    /// A permit to read one request without credentials, if fewer than [`MAX_READING`] are
    /// being read.
    pub fn try_reading(&self) -> Option<OwnedSemaphorePermit> {
        self.reading.clone().try_acquire_owned().ok()
    }

    /// Holds `spans`, which came in a body of `body_bytes`: all of them or, when that would
    /// take more than the limit, none ([`HoldFull`]). Spans without a trace id are dropped:
    /// nothing could claim them. Blocks on the store.
    pub fn hold(
        &self,
        store: &dyn HeldSpanStore,
        spans: Vec<MappedSpan>,
        body_bytes: usize,
    ) -> Result<Result<(), HoldFull>, StoreError> {
        let now = now_ms();
        self.expire(store, now)?;
        let share = i64::try_from(body_bytes / spans.len().max(1)).unwrap_or(i64::MAX);
        let rows: Vec<HeldSpan> = spans
            .into_iter()
            .filter_map(|span| {
                let trace_id = span.event.trace_id.clone()?;
                Some(HeldSpan {
                    trace_id,
                    held_at_ms: now,
                    bytes: share,
                    span: encode(span),
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(Ok(()));
        }
        let held = store.hold_spans(&rows, self.max_bytes as u64)?;
        Ok(if held { Ok(()) } else { Err(HoldFull) })
    }

    /// Claims the held spans of the traces named (hex trace ids) for [`CLAIM_FOR`]. Blocks on
    /// the store.
    pub fn claim(
        &self,
        store: &dyn HeldSpanStore,
        trace_ids: &[String],
    ) -> Result<Claimed, StoreError> {
        if trace_ids.is_empty() {
            return Ok(Claimed::default());
        }
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(CLAIM_FOR.as_millis()).unwrap_or(i64::MAX));
        let rows = store.claim_held_spans(trace_ids, self.held_since(now), now, until)?;
        let mut spans = Vec::with_capacity(rows.len());
        let mut unreadable = 0;
        for row in &rows {
            match decode(&row.span.span) {
                Ok(span) => spans.push(span),
                Err(e) => {
                    unreadable += 1;
                    tracing::warn!(trace_id = %row.span.trace_id, error = %e, "a held span could not be read back: it is discarded with its claim");
                }
            }
        }
        let ids = rows.iter().map(|row| row.id).collect();
        Ok(Claimed {
            ids,
            until_ms: until,
            spans,
            unreadable,
        })
    }

    /// Makes what a request claimed and could not store claimable again. Blocks on the store.
    pub fn give_back(&self, store: &dyn HeldSpanStore, claimed: Claimed) -> Result<(), StoreError> {
        store.release_held_spans(&claimed.ids, claimed.until_ms)
    }

    /// Deletes what a request claimed, once its write is committed: `stored` of the spans
    /// were in it, `discarded` were not (not in the session of its token). Blocks on the
    /// store.
    pub fn settle(
        &self,
        store: &dyn HeldSpanStore,
        claimed: Claimed,
        stored: usize,
        discarded: usize,
    ) -> Result<(), StoreError> {
        store.settle_held_spans(&claimed.ids, claimed.until_ms)?;
        self.stored.fetch_add(stored as u64, Ordering::Relaxed);
        self.discarded
            .fetch_add((discarded + claimed.unreadable) as u64, Ordering::Relaxed);
        if discarded > 0 {
            tracing::info!(
                discarded,
                "spans sent without credentials discarded: not in the session of the token that claimed their trace"
            );
        }
        Ok(())
    }

    /// What became of the spans sent without credentials so far. Blocks on the store.
    pub fn counts(&self, store: &dyn HeldSpanStore) -> Result<HeldCounts, StoreError> {
        Ok(HeldCounts {
            waiting: store.held_span_count(self.held_since(now_ms()))?,
            stored: self.stored.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
        })
    }

    /// Deletes the spans held longer than [`HOLD_FOR`], counting them as discarded.
    fn expire(&self, store: &dyn HeldSpanStore, now: i64) -> Result<(), StoreError> {
        let expired = store.expire_held_spans(self.held_since(now))?;
        if expired > 0 {
            self.discarded.fetch_add(expired, Ordering::Relaxed);
            tracing::info!(
                discarded = expired,
                "spans sent without credentials discarded: no authenticated request of their trace came within {} s",
                self.hold_for.as_secs()
            );
        }
        Ok(())
    }

    /// The oldest hold time still claimable at `now`.
    fn held_since(&self, now: i64) -> i64 {
        now.saturating_sub(i64::try_from(self.hold_for.as_millis()).unwrap_or(i64::MAX))
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn encode(span: MappedSpan) -> String {
    let call_ids = span.event.call_ids.clone();
    let encoded = Encoded {
        event: span.event,
        call_ids,
        session: span.session,
    };
    // plain data (strings, numbers, JSON values): serialising it cannot fail
    serde_json::to_string(&encoded).unwrap_or_default()
}

fn decode(text: &str) -> Result<MappedSpan, serde_json::Error> {
    let Encoded {
        mut event,
        call_ids,
        session,
    } = serde_json::from_str(text)?;
    event.call_ids = call_ids;
    Ok(MappedSpan { event, session })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn span(trace: &str, id: &str) -> MappedSpan {
        MappedSpan {
            event: EventRecord {
                id: id.into(),
                trace_id: Some(trace.into()),
                call_ids: Some("call_1".into()),
                prompt: Some(serde_json::json!([{"role": "user", "content": "hi"}])),
                attributes: serde_json::json!({"gen_ai.system": "openai"}),
                ..EventRecord::default()
            },
            session: SessionRecord {
                id: "s1".into(),
                tags: Some(vec!["t".into()]),
                ..SessionRecord::default()
            },
        }
    }

    fn store() -> (SqliteStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "agentops-held-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        (SqliteStore::open(&dir.join("agentops.db")).unwrap(), dir)
    }

    fn ids(claimed: &Claimed) -> Vec<String> {
        claimed.spans().map(|s| s.event.id.clone()).collect()
    }

    fn traces(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn a_claim_takes_the_spans_of_its_traces_only_and_whole() {
        let (store, _dir) = store();
        let held = HeldSpans::default();
        held.hold(&store, vec![span("t1", "a"), span("t2", "b")], 200)
            .unwrap()
            .unwrap();
        held.hold(&store, vec![span("t1", "c")], 100)
            .unwrap()
            .unwrap();
        let claimed = held.claim(&store, &traces(&["t1", "t9"])).unwrap();
        assert_eq!(ids(&claimed), ["a", "c"]);
        // what was held comes back as it was, tool call ids included
        assert_eq!(claimed.spans().next(), Some(&span("t1", "a")));
        // claimed, not stored yet: they still wait, and nobody else takes them
        assert_eq!(held.counts(&store).unwrap().waiting, 3);
        assert!(held.claim(&store, &traces(&["t1"])).unwrap().is_empty());
        held.settle(&store, claimed, 2, 0).unwrap();
        assert!(held.claim(&store, &traces(&["t1"])).unwrap().is_empty());
        assert_eq!(
            held.counts(&store).unwrap(),
            HeldCounts {
                waiting: 1,
                stored: 2,
                discarded: 0
            }
        );
    }

    #[test]
    fn held_spans_outlive_the_server_that_held_them() {
        let (store, dir) = store();
        HeldSpans::default()
            .hold(&store, vec![span("t1", "a")], 100)
            .unwrap()
            .unwrap();
        drop(store);
        let reopened = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        let claimed = HeldSpans::default()
            .claim(&reopened, &traces(&["t1"]))
            .unwrap();
        assert_eq!(ids(&claimed), ["a"]);
    }

    #[test]
    fn what_a_failed_write_gives_back_can_be_claimed_again() {
        let (store, _dir) = store();
        let held = HeldSpans::default();
        held.hold(&store, vec![span("t1", "a")], 100)
            .unwrap()
            .unwrap();
        let claimed = held.claim(&store, &traces(&["t1"])).unwrap();
        held.give_back(&store, claimed).unwrap();
        assert_eq!(held.counts(&store).unwrap().waiting, 1);
        assert_eq!(ids(&held.claim(&store, &traces(&["t1"])).unwrap()), ["a"]);
    }

    #[test]
    fn a_span_that_does_not_read_back_is_discarded_once_with_its_claim() {
        let (store, _dir) = store();
        let held = HeldSpans::default();
        let unreadable = crate::store::HeldSpan {
            trace_id: "t1".into(),
            held_at_ms: now_ms(),
            bytes: 8,
            span: "not json".into(),
        };
        assert!(store.hold_spans(&[unreadable], 1 << 20).unwrap());
        held.hold(&store, vec![span("t1", "a")], 100)
            .unwrap()
            .unwrap();
        // claimed, given back (the write failed), claimed again, then settled
        let claimed = held.claim(&store, &traces(&["t1"])).unwrap();
        assert_eq!(ids(&claimed), ["a"]);
        held.give_back(&store, claimed).unwrap();
        let claimed = held.claim(&store, &traces(&["t1"])).unwrap();
        held.settle(&store, claimed, 1, 0).unwrap();
        assert_eq!(
            held.counts(&store).unwrap(),
            HeldCounts {
                waiting: 0,
                stored: 1,
                discarded: 1
            }
        );
    }

    /// A server that dies between its claim and its write's commit leaves the spans in the
    /// store, claimed (claimable again once the claim lapses: see the conformance suite).
    #[test]
    fn a_claim_never_settled_leaves_the_spans_in_the_store() {
        let (store, dir) = store();
        let held = HeldSpans::default();
        held.hold(&store, vec![span("t1", "a")], 100)
            .unwrap()
            .unwrap();
        let claimed = held.claim(&store, &traces(&["t1"])).unwrap();
        assert_eq!(ids(&claimed), ["a"]);
        drop((claimed, store));
        let reopened = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        assert_eq!(held.counts(&reopened).unwrap().waiting, 1);
        assert!(held.claim(&reopened, &traces(&["t1"])).unwrap().is_empty());
    }

    #[test]
    fn the_held_bytes_are_bounded_and_a_request_is_held_whole_or_not_at_all() {
        let (store, _dir) = store();
        let held = HeldSpans::new(HOLD_FOR, 1000);
        held.hold(&store, vec![span("t1", "a")], 600)
            .unwrap()
            .unwrap();
        assert_eq!(
            held.hold(&store, vec![span("t2", "b"), span("t3", "c")], 600)
                .unwrap(),
            Err(HoldFull)
        );
        assert!(held
            .claim(&store, &traces(&["t2", "t3"]))
            .unwrap()
            .is_empty());
        // storing what was claimed frees the room
        let claimed = held.claim(&store, &traces(&["t1"])).unwrap();
        assert_eq!(ids(&claimed), ["a"]);
        held.settle(&store, claimed, 1, 0).unwrap();
        held.hold(&store, vec![span("t2", "b")], 900)
            .unwrap()
            .unwrap();
    }

    #[test]
    fn unclaimed_traces_expire_and_are_counted_as_discarded() {
        let (store, _dir) = store();
        let held = HeldSpans::new(Duration::from_millis(50), 1000);
        held.hold(&store, vec![span("t1", "a"), span("t1", "b")], 100)
            .unwrap()
            .unwrap();
        std::thread::sleep(Duration::from_millis(80));
        held.hold(&store, vec![span("t2", "c")], 100)
            .unwrap()
            .unwrap();
        assert!(held.claim(&store, &traces(&["t1"])).unwrap().is_empty());
        assert_eq!(
            held.counts(&store).unwrap(),
            HeldCounts {
                waiting: 1,
                stored: 0,
                discarded: 2
            }
        );
        assert_eq!(ids(&held.claim(&store, &traces(&["t2"])).unwrap()), ["c"]);
    }
}
