//! What happens when the process exits or panics.
//!
//! - **Exit** (returning from `main`, or `std::process::exit`): a hook registered with the C
//!   library's `atexit` ends every session still open, of every client, as `Indeterminate`
//!   ("the process exited without ending the session"), or `Fail` after a panic on the main
//!   thread, and waits for them to be delivered, at most `shutdown_timeout`. Sessions with
//!   `skip_auto_end_session` are delivered and left open. Then the metrics of the clients whose
//!   sessions were ended here are exported once more, within the same time.
//! - **Panic**: see [`crate::init`]'s panic hook, which tells this module about a panic on the
//!   main thread ([`note_main_panic`]).
//! - Nothing runs on `SIGKILL`, on an abort, or on a signal that kills the process
//!   (install a handler that calls [`crate::shutdown`] for those).

use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Instant;

use agentops_core::EndState;

use crate::sync::lock;
use crate::worker::Shared;

/// Every client's delivery worker.
static WORKERS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
/// The message of a panic on the main thread, if there was one.
static MAIN_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Ends the sessions as `Fail` with this message at exit: the main thread panicked.
pub(crate) fn note_main_panic(message: String) {
    *lock(&MAIN_PANIC) = Some(message);
}

/// Makes a worker's sessions end at exit.
pub(crate) fn register(worker: Weak<Shared>) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: `at_exit` is a plain `extern "C" fn` without arguments, as `atexit` requires;
        // it never unwinds (it catches panics).
        #[cfg(any(unix, windows))]
        unsafe {
            libc::atexit(at_exit);
        }
    });
    let mut workers = lock(&WORKERS);
    workers.retain(|worker| worker.strong_count() > 0);
    workers.push(worker);
}

/// Whether any client has a session that is not finished.
pub(crate) fn any_open_session() -> bool {
    live_workers()
        .iter()
        .any(|worker| worker.live().iter().any(|state| !state.is_closed()))
}

fn live_workers() -> Vec<Arc<Shared>> {
    lock(&WORKERS).iter().filter_map(Weak::upgrade).collect()
}

extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let (end_state, reason) = match lock(&MAIN_PANIC).take() {
            Some(message) => (EndState::Fail, format!("panicked: {message}")),
            None => (
                EndState::Indeterminate,
                "the process exited without ending the session".to_owned(),
            ),
        };
        end_all(end_state, &reason);
    });
}

/// Ends every open session of every client and waits for their delivery, each at most its
/// `shutdown_timeout`.
pub(crate) fn end_all(end_state: EndState, reason: &str) {
    let workers = live_workers();
    let mut deadline = Instant::now();
    for worker in &workers {
        for state in worker.live() {
            let until = Instant::now() + state.config.shutdown_timeout;
            if !state.close() {
                // Ending already: wait for it until its own deadline, not beyond.
                if let Some(ending) = state.queue().ending.as_ref() {
                    deadline = deadline.max(ending.deadline);
                }
                continue;
            }
            deadline = deadline.max(until);
            if state.config.skip_auto_end_session {
                state.request_detach(until);
            } else {
                state.request_end(end_state, Some(reason.to_owned()), until, None);
            }
        }
        worker.notify();
    }
    for worker in &workers {
        worker.wait_drained(deadline);
    }
    // Every client's metrics are exported once more: what was recorded since the last
    // periodic export (a program that ended its sessions but not its client) is not lost.
    let metrics_deadline = deadline.max(Instant::now() + METRICS_FLUSH_MIN);
    let flushes: Vec<_> = workers
        .iter()
        .filter_map(|worker| worker.flush_metrics(metrics_deadline))
        .collect();
    for flushed in flushes {
        let _ = flushed.wait_until(metrics_deadline + METRICS_FLUSH_MIN);
    }
}

/// The least time the final metrics export at exit is given.
const METRICS_FLUSH_MIN: std::time::Duration = std::time::Duration::from_millis(100);
