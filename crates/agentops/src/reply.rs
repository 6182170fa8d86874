//! A one-shot answer from the delivery worker, awaited either by blocking (with a timeout) or
//! as a future, so that `end` and `end_async` share one path and neither needs a runtime.
//!
//! The worker answers by the deadline unless an HTTP attempt already under way holds it
//! (a backend that accepts and never answers); so both ways of waiting also stop at the
//! deadline themselves: blocking with a timed wait, the future with a process-wide alarm
//! thread, started the first time a future with a deadline is awaited.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

struct State<T> {
    value: Option<T>,
    /// Set when the sender is gone without answering, or the deadline has passed.
    abandoned: bool,
    waker: Option<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

/// The sending half, kept by the worker. Dropping it unanswered wakes the receiver with `None`.
pub(crate) struct Replier<T> {
    shared: Arc<Shared<T>>,
    sent: bool,
}

/// The receiving half.
pub(crate) struct Answer<T> {
    shared: Arc<Shared<T>>,
    /// When the future gives up waiting.
    deadline: Option<Instant>,
    alarm_set: bool,
}

/// A new reply channel.
pub(crate) fn channel<T>() -> (Replier<T>, Answer<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            value: None,
            abandoned: false,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Replier {
            shared: shared.clone(),
            sent: false,
        },
        Answer {
            shared,
            deadline: None,
            alarm_set: false,
        },
    )
}

impl<T> Replier<T> {
    /// Answers (once; later calls are ignored).
    pub(crate) fn send(&mut self, value: T) {
        if self.sent {
            return;
        }
        self.sent = true;
        self.finish(Some(value));
    }

    fn finish(&self, value: Option<T>) {
        let waker = {
            let mut state = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match value {
                Some(value) => state.value = Some(value),
                None => state.abandoned = true,
            }
            state.waker.take()
        };
        self.shared.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Replier<T> {
    fn drop(&mut self) {
        if !self.sent {
            self.finish(None);
        }
    }
}

impl<T: Send + 'static> Answer<T> {
    /// As a future, resolves to `None` once `deadline` has passed without an answer.
    pub(crate) fn until(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

impl<T> Answer<T> {
    /// Blocks until the answer comes, the sender is gone, or `deadline` passes.
    pub(crate) fn wait_until(self, deadline: Instant) -> Option<T> {
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(value) = state.value.take() {
                return Some(value);
            }
            let now = Instant::now();
            if state.abandoned || now >= deadline {
                return None;
            }
            state = self
                .shared
                .ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Resolves to the answer, or `None` when the sender is gone without answering or the
/// deadline (see [`Answer::until`]) has passed.
impl<T: Send + 'static> Future for Answer<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        {
            let mut state = this
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(value) = state.value.take() {
                return Poll::Ready(Some(value));
            }
            if state.abandoned || this.deadline.is_some_and(|at| Instant::now() >= at) {
                return Poll::Ready(None);
            }
            state.waker = Some(cx.waker().clone());
        }
        if let (Some(deadline), false) = (this.deadline, this.alarm_set) {
            this.alarm_set = true;
            let shared: Arc<dyn Wake> = this.shared.clone();
            alarm::set(deadline, Arc::downgrade(&shared));
        }
        Poll::Pending
    }
}

/// Something to wake when its deadline passes.
trait Wake: Send + Sync {
    fn time_up(&self);
}

impl<T: Send> Wake for Shared<T> {
    fn time_up(&self) {
        let waker = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waker
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The process-wide alarm thread.
mod alarm {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::sync::{Condvar, Mutex, OnceLock, PoisonError, Weak};
    use std::time::Instant;

    use super::Wake;

    struct Alarm {
        at: Instant,
        target: Weak<dyn Wake>,
    }

    impl PartialEq for Alarm {
        fn eq(&self, other: &Self) -> bool {
            self.at == other.at
        }
    }
    impl Eq for Alarm {}
    impl PartialOrd for Alarm {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Alarm {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.at.cmp(&other.at)
        }
    }

    struct Alarms {
        due: Mutex<BinaryHeap<Reverse<Alarm>>>,
        changed: Condvar,
    }

    fn alarms() -> &'static Alarms {
        static ALARMS: OnceLock<&'static Alarms> = OnceLock::new();
        ALARMS.get_or_init(|| {
            let alarms: &'static Alarms = Box::leak(Box::new(Alarms {
                due: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
            }));
            let spawned = std::thread::Builder::new()
                .name("agentops-alarm".into())
                .spawn(move || run(alarms));
            if let Err(err) = spawned {
                tracing::warn!(target: "agentops", %err, "no alarm thread: async waits end with the worker's answer");
            }
            alarms
        })
    }

    /// Wakes `target` at `at`.
    pub(super) fn set(at: Instant, target: Weak<dyn Wake>) {
        let alarms = alarms();
        alarms
            .due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Reverse(Alarm { at, target }));
        alarms.changed.notify_one();
    }

    fn run(alarms: &Alarms) {
        let mut due = alarms.due.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            let mut ringing = Vec::new();
            while due.peek().is_some_and(|next| next.0.at <= now) {
                if let Some(Reverse(alarm)) = due.pop() {
                    ringing.push(alarm.target);
                }
            }
            if !ringing.is_empty() {
                // Woken without the lock: a waker may poll at once and set another alarm.
                drop(due);
                for target in ringing {
                    if let Some(target) = target.upgrade() {
                        target.time_up();
                    }
                }
                due = alarms.due.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            due = match due.peek().map(|next| next.0.at) {
                Some(at) => {
                    alarms
                        .changed
                        .wait_timeout(due, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => alarms
                    .changed
                    .wait(due)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_answer_arrives_across_threads_and_a_dropped_sender_releases_the_wait() {
        let (mut replier, answer) = channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            replier.send(7);
        });
        assert_eq!(
            answer.wait_until(Instant::now() + Duration::from_secs(5)),
            Some(7)
        );

        let (replier, answer) = channel::<u8>();
        drop(replier);
        let started = Instant::now();
        assert_eq!(
            answer.wait_until(Instant::now() + Duration::from_secs(5)),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(1));

        let (_replier, answer) = channel::<u8>();
        assert_eq!(answer.wait_until(Instant::now()), None, "times out");
    }

    #[test]
    fn the_future_resolves_when_answered() {
        let (mut replier, answer) = channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            replier.send("done");
        });
        assert_eq!(futures_executor::block_on(answer), Some("done"));
    }

    #[test]
    fn the_future_gives_up_at_its_deadline() {
        let (_replier, answer) = channel::<u8>();
        let started = Instant::now();
        let answer = answer.until(Instant::now() + Duration::from_millis(100));
        assert_eq!(futures_executor::block_on(answer), None);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
