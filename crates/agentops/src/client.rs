//! The client: one configuration, one delivery worker, and the sessions started from it.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use crate::exporter::Wire;
use crate::propagation::RemoteSession;
use crate::reply::Answer;
use crate::session::{Session, SessionInner, ANSWER_GRACE};
use crate::state::SessionState;
use crate::summary::{SessionOptions, SessionSummary};
use crate::sync::lock;
use crate::worker::Worker;
use crate::{host_env, Config, EndState, Error};

/// Starts sessions; holds what they share: the configuration, the HTTP connections, and one
/// delivery thread for all of them. Cheap to clone.
///
/// ```no_run
/// use agentops::{Client, Config, EndState, Event, SessionOptions};
/// let client = Client::new(Config::from_env()?)?;
/// let a = client.start_session(SessionOptions::tags(["run-a"]))?;
/// let b = client.start_session(SessionOptions::tags(["run-b"]))?;
/// a.record(Event::action("plan"))?;
/// b.record(Event::action("plan"))?;
/// a.end(EndState::Success, "")?;
/// client.shutdown(); // ends b as Indeterminate after delivering its events
/// # Ok::<(), agentops::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<ClientShared>,
}

struct ClientShared {
    config: Arc<Config>,
    worker: Worker,
    host_env: OnceLock<Option<serde_json::Value>>,
    open: Mutex<Vec<Weak<SessionInner>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.shared.config.endpoint)
            .field("protocol", &self.shared.config.protocol)
            .field("open_sessions", &self.open_sessions().len())
            .finish()
    }
}

impl Client {
    /// A client for this configuration. Nothing is sent, and no thread started, until a
    /// session starts.
    pub fn new(config: Config) -> Result<Self, Error> {
        let config = Arc::new(config);
        let worker = Worker::new(Arc::new(Wire::new(config.clone())));
        crate::exit::register(worker.shared());
        Ok(Self {
            shared: Arc::new(ClientShared {
                worker,
                config,
                host_env: OnceLock::new(),
                open: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Starts a session. Returns at once: the session is registered with the backend in the
    /// background, and events recorded meanwhile wait in its queue.
    pub fn start_session(&self, options: SessionOptions) -> Result<Session, Error> {
        let host_env = self
            .shared
            .host_env
            .get_or_init(|| (!self.shared.config.env_data_opt_out).then(host_env::collect))
            .clone();
        self.track(Session::start(
            self.shared.config.clone(),
            self.shared.worker.clone(),
            host_env,
            options,
            None,
        )?)
    }

    /// Continues here a session that another service started and passed on (see
    /// [`crate::propagation`]): events recorded into it are that session's, children of the
    /// caller's event, and carry the baggage's entries as attributes. This process does not
    /// register or end the session on the backend (the service that started it does):
    /// [`Session::end`] on it delivers its events and leaves the session as it is; its tags
    /// are the caller's and cannot be changed here.
    ///
    /// Over the v2 API the backend must know the session (`reauthorize_jwt` gives this
    /// process its token; until the starting service has registered it, that is retried).
    pub fn join_session(&self, remote: RemoteSession) -> Result<Session, Error> {
        self.track(Session::start(
            self.shared.config.clone(),
            self.shared.worker.clone(),
            None,
            SessionOptions::default(),
            Some(remote),
        )?)
    }

    /// Counts `session` among the client's open sessions.
    fn track(&self, session: Session) -> Result<Session, Error> {
        let mut open = lock(&self.shared.open);
        open.retain(|weak| weak.upgrade().is_some_and(|inner| !inner.state.is_closed()));
        open.push(Arc::downgrade(&session.inner));
        Ok(session)
    }

    /// The sessions started by this client and not yet ended (nor dropped).
    pub fn open_sessions(&self) -> Vec<Session> {
        lock(&self.shared.open)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|inner| Session { inner })
            .filter(|session| !session.is_ended())
            .collect()
    }

    /// Ends every open session as `Indeterminate`, each after delivering its events, and
    /// returns their summaries, then exports the client's metrics once more (so that they
    /// include these sessions' final counts), waiting at most `shutdown_timeout` in all.
    /// With `skip_auto_end_session`, sessions are flushed, not ended, and no summary is
    /// returned. Blocks the calling thread; in async code use [`Client::shutdown_async`].
    pub fn shutdown(&self) -> Vec<SessionSummary> {
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        let summaries = match self.begin_shutdown(deadline) {
            Shutdown::Flush(flushes) => {
                for flush in flushes {
                    let _ = flush.wait_until(deadline + ANSWER_GRACE);
                }
                Vec::new()
            }
            Shutdown::End(ending) => ending
                .into_iter()
                .map(|(state, answer)| {
                    answer
                        .wait_until(deadline + ANSWER_GRACE)
                        .unwrap_or_else(|| state.summary())
                })
                .collect(),
        };
        if let Some(flushed) = self.begin_metrics_flush(deadline) {
            let _ = flushed.wait_until(metrics_deadline(deadline) + METRICS_GRACE);
        }
        summaries
    }

    /// Asks the worker for the final metrics export: until `deadline`, or a moment more if the
    /// sessions took all the time (the whole shutdown stays within `shutdown_timeout` plus
    /// [`ANSWER_GRACE`], [`METRICS_FLUSH_MIN`] and [`METRICS_GRACE`]: under a second).
    fn begin_metrics_flush(&self, deadline: Instant) -> Option<Answer<bool>> {
        self.shared.worker.flush_metrics(metrics_deadline(deadline))
    }

    /// [`Client::shutdown`] without blocking.
    pub fn shutdown_async(&self) -> impl Future<Output = Vec<SessionSummary>> + Send + 'static {
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        let shutdown = self.begin_shutdown(deadline);
        let client = self.clone();
        async move {
            let summaries = match shutdown {
                Shutdown::Flush(flushes) => {
                    for flush in flushes {
                        let _ = flush.until(deadline + ANSWER_GRACE).await;
                    }
                    Vec::new()
                }
                Shutdown::End(ending) => {
                    let mut summaries = Vec::with_capacity(ending.len());
                    for (state, answer) in ending {
                        let answer = answer.until(deadline + ANSWER_GRACE);
                        summaries.push(answer.await.unwrap_or_else(|| state.summary()));
                    }
                    summaries
                }
            };
            if let Some(flushed) = client.begin_metrics_flush(deadline) {
                let _ = flushed
                    .until(metrics_deadline(deadline) + METRICS_GRACE)
                    .await;
            }
            summaries
        }
    }

    /// Asks the worker to end (or, with `skip_auto_end_session`, flush) every open session.
    fn begin_shutdown(&self, deadline: Instant) -> Shutdown {
        let sessions = self.open_sessions();
        if self.shared.config.skip_auto_end_session {
            return Shutdown::Flush(
                sessions
                    .iter()
                    .map(|session| session.inner.begin_flush(deadline))
                    .collect(),
            );
        }
        Shutdown::End(
            sessions
                .iter()
                .filter_map(|session| {
                    let answer = session
                        .inner
                        .begin_end(EndState::Indeterminate, "client shut down".into(), deadline)
                        .ok()?;
                    Some((session.inner.state.clone(), answer))
                })
                .collect(),
        )
    }
}

/// The deadline of the final metrics export of a shutdown whose sessions were given until
/// `deadline`: at least one short attempt, even when the sessions took all the time.
fn metrics_deadline(deadline: Instant) -> Instant {
    deadline.max(Instant::now() + METRICS_FLUSH_MIN)
}

/// The least time the final metrics export of a shutdown is given.
const METRICS_FLUSH_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// How long past its deadline a shutdown waits for the worker's answer about metrics.
const METRICS_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// What a shutdown waits for.
enum Shutdown {
    Flush(Vec<Answer<crate::DeliveryCounts>>),
    End(Vec<(Arc<SessionState>, Answer<SessionSummary>)>),
}
