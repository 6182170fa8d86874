//! Trace-consistent sampling.
//!
//! The decision is made once per root event (an event without a parent), or once per session
//! with [`SamplingScope::Session`], and every descendant inherits it: a tree is sent whole or
//! not at all. A tree left out is *tentative* while it can still matter: its ended spans are
//! held (within the session's queue bound) instead of exported, and an error recorded inside
//! it, or naming one of its events as its trigger, keeps the whole tree after all. When its
//! root ends, a tentative tree stays in a short look-back (the last [`LOOKBACK_SPANS`] held
//! spans), so that an error recorded just after a failed tool call still finds its trigger;
//! what leaves the look-back, or is still held when the session ends, is counted as sampled
//! out. Errors are always kept.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry_sdk::trace::SpanData;
use uuid::Uuid;

use crate::config::{Config, SamplingScope};
use crate::delivery::DeliveryStats;
use crate::sync::lock;

/// How many held spans of ended, left-out trees are kept for late triggers.
pub(crate) const LOOKBACK_SPANS: usize = 512;

/// One left-out tree of events.
#[derive(Debug)]
pub(crate) struct Tree {
    root: Uuid,
    state: Mutex<TreeState>,
}

#[derive(Debug, Default)]
struct TreeState {
    kept: bool,
    /// Out of the look-back: whatever of it ends from now on is sampled out at once.
    evicted: bool,
    held: Vec<SpanData>,
}

#[derive(Default)]
struct Members {
    /// Events of tentative trees (open, held, or in the look-back), by event id.
    by_event: HashMap<Uuid, Arc<Tree>>,
    /// Ended tentative trees, oldest first, and how many spans they hold.
    lookback: VecDeque<Arc<Tree>>,
    lookback_spans: usize,
}

/// A session's sampling state.
pub(crate) struct Sampling {
    rate: f64,
    /// The session's queue bound, which held spans count toward.
    capacity: u64,
    /// With [`SamplingScope::Session`]: whether the session is kept.
    session_kept: Option<bool>,
    members: Mutex<Members>,
    /// Entries in `members.by_event`: zero means nothing to look up on the hot path.
    tracked: AtomicUsize,
}

impl Sampling {
    pub(crate) fn new(config: &Config) -> Self {
        let rate = config.sampling_rate;
        Self {
            rate,
            capacity: config.max_queue_size as u64,
            session_kept: (config.sampling_scope == SamplingScope::Session)
                .then(|| rate >= 1.0 || fastrand::f64() < rate),
            members: Mutex::new(Members::default()),
            tracked: AtomicUsize::new(0),
        }
    }

    /// Whether every event is kept (no tree is ever tentative).
    pub(crate) fn keeps_everything(&self) -> bool {
        self.rate >= 1.0
    }

    /// The decision for a new root event: whether its tree is left out (tentatively).
    pub(crate) fn leaves_out_root(&self) -> bool {
        let kept = match self.session_kept {
            Some(kept) => kept,
            None => self.rate >= 1.0 || fastrand::f64() < self.rate,
        };
        !kept
    }

    /// A tentative tree rooted at the event `root`, which joins it.
    pub(crate) fn new_tree(&self, root: Uuid) -> Arc<Tree> {
        let tree = Arc::new(Tree {
            root,
            state: Mutex::new(TreeState::default()),
        });
        self.join(&tree, root);
        tree
    }

    /// Registers an event of a tentative tree.
    pub(crate) fn join(&self, tree: &Arc<Tree>, event: Uuid) {
        if lock(&tree.state).kept {
            return;
        }
        let mut members = lock(&self.members);
        if members.by_event.insert(event, tree.clone()).is_none() {
            self.tracked.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Keeps `tree` whole: its held spans are handed to `export`, and its later ones pass.
    pub(crate) fn keep(
        &self,
        tree: &Tree,
        stats: &DeliveryStats,
        export: &mut dyn FnMut(SpanData),
    ) {
        let held = {
            let mut members = lock(&self.members);
            let held = {
                let mut state = lock(&tree.state);
                if state.kept {
                    return;
                }
                state.kept = true;
                std::mem::take(&mut state.held)
            };
            if let Some(at) = members.lookback.iter().position(|t| t.root == tree.root) {
                members.lookback.remove(at);
                members.lookback_spans = members.lookback_spans.saturating_sub(held.len());
            }
            self.forget_tree(&mut members, tree.root);
            held
        };
        stats.held.fetch_sub(held.len() as u64, Ordering::AcqRel);
        // Outside the locks: exporting takes the session's queue.
        for span in held {
            export(span);
        }
    }

    /// Keeps the tree of the event `event`, if it is a tentative one (an error's trigger).
    pub(crate) fn keep_event(
        &self,
        event: Uuid,
        stats: &DeliveryStats,
        export: &mut dyn FnMut(SpanData),
    ) {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return;
        }
        let tree = lock(&self.members).by_event.get(&event).cloned();
        if let Some(tree) = tree {
            self.keep(&tree, stats, export);
        }
    }

    /// Decides what becomes of a span that just ended (`event` is its event id): `Some` to
    /// export it, `None` when it is held, sampled out, or dropped for want of room.
    pub(crate) fn on_end(
        &self,
        event: Uuid,
        span: SpanData,
        stats: &DeliveryStats,
    ) -> Option<SpanData> {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return Some(span);
        }
        // Lock order: the members, then a tree.
        let mut members = lock(&self.members);
        let Some(tree) = members.by_event.get(&event).cloned() else {
            return Some(span);
        };
        let mut state = lock(&tree.state);
        if state.kept {
            return Some(span);
        }
        // Held spans may take half the queue: the rest stays free for what is kept.
        let held = stats.held.load(Ordering::Acquire);
        let full = held >= self.capacity / 2
            || held + stats.queued.load(Ordering::Acquire) >= self.capacity;
        if state.evicted || full {
            drop(state);
            if members.by_event.remove(&event).is_some() {
                self.tracked.fetch_sub(1, Ordering::AcqRel);
            }
            let counter = if full {
                &stats.dropped
            } else {
                &stats.sampled_out
            };
            DeliveryStats::add(counter, 1);
            return None;
        }
        state.held.push(span);
        DeliveryStats::add(&stats.held, 1);
        let held_now = state.held.len();
        drop(state);
        if event == tree.root {
            // The root ended: the tree moves to the look-back.
            members.lookback.push_back(tree);
            members.lookback_spans += held_now;
        } else if members.lookback.iter().any(|t| t.root == tree.root) {
            // A late child of a tree already in the look-back grows it.
            members.lookback_spans += 1;
        }
        self.evict(&mut members, stats);
        None
    }

    /// Drops the oldest ended trees while the look-back holds too many spans.
    fn evict(&self, members: &mut Members, stats: &DeliveryStats) {
        while members.lookback_spans > LOOKBACK_SPANS {
            let Some(tree) = members.lookback.pop_front() else {
                members.lookback_spans = 0;
                return;
            };
            let held = {
                let mut state = lock(&tree.state);
                state.evicted = true;
                std::mem::take(&mut state.held)
            };
            members.lookback_spans = members.lookback_spans.saturating_sub(held.len());
            DeliveryStats::moved(&stats.held, &stats.sampled_out, held.len() as u64);
            // Ended members are forgotten; open ones stay, to be sampled out when they end.
            for span in &held {
                let id = crate::ids::event_id_of(span);
                if members.by_event.remove(&id).is_some() {
                    self.tracked.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    fn forget_tree(&self, members: &mut Members, root: Uuid) {
        let before = members.by_event.len();
        members.by_event.retain(|_, tree| tree.root != root);
        self.tracked
            .fetch_sub(before - members.by_event.len(), Ordering::AcqRel);
    }

    /// At the session's end: everything still held is sampled out.
    pub(crate) fn settle_all(&self, stats: &DeliveryStats) {
        if self.tracked.load(Ordering::Acquire) == 0 && self.keeps_everything() {
            return;
        }
        let mut members = lock(&self.members);
        let mut trees: Vec<Arc<Tree>> = members.by_event.drain().map(|(_, tree)| tree).collect();
        trees.extend(members.lookback.drain(..));
        members.lookback_spans = 0;
        self.tracked.store(0, Ordering::Release);
        for tree in trees {
            let held = std::mem::take(&mut lock(&tree.state).held);
            DeliveryStats::moved(&stats.held, &stats.sampled_out, held.len() as u64);
        }
    }
}
