//! The client: one configuration, one HTTP transport, and the sessions started from it.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use uuid::Uuid;

use crate::config::Config;
use crate::session::{Session, SessionInner, SessionOptions, SessionSummary};
use crate::transport::Transport;
use crate::{host_env, EndState, Error};

/// Starts sessions; holds what they share. Cheap to clone.
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

pub(crate) struct ClientShared {
    config: Arc<Config>,
    transport: Arc<Transport>,
    host_env: OnceLock<Option<serde_json::Value>>,
    open: Mutex<Vec<(Uuid, Weak<SessionInner>)>>,
}

impl ClientShared {
    /// Forgets an ended session.
    pub(crate) fn forget(&self, id: Uuid) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(open, _)| *open != id);
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.shared.config.endpoint)
            .field("open_sessions", &self.open_sessions().len())
            .finish()
    }
}

impl Client {
    /// A client for this configuration. Nothing is sent until a session starts.
    pub fn new(config: Config) -> Result<Self, Error> {
        Ok(Self {
            shared: Arc::new(ClientShared {
                transport: Arc::new(Transport::new(&config)),
                config: Arc::new(config),
                host_env: OnceLock::new(),
                open: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Starts a session. Returns at once: the session is created on the backend in the
    /// background, and events recorded meanwhile wait in its queue.
    pub fn start_session(&self, options: SessionOptions) -> Result<Session, Error> {
        let host_env = self
            .shared
            .host_env
            .get_or_init(|| (!self.shared.config.env_data_opt_out).then(host_env::collect))
            .clone();
        let session = Session::start(
            self.shared.config.clone(),
            self.shared.transport.clone(),
            host_env,
            options,
            Arc::downgrade(&self.shared),
        )?;
        let mut open = self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.retain(|(_, weak)| weak.strong_count() > 0);
        open.push((session.id(), Arc::downgrade(&session.inner)));
        Ok(session)
    }

    /// The sessions started by this client and not yet ended (nor dropped).
    pub fn open_sessions(&self) -> Vec<Session> {
        self.shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(_, weak)| weak.upgrade())
            .map(|inner| Session { inner })
            .filter(|session| !session.is_ended())
            .collect()
    }

    /// Ends every open session as `Indeterminate` (each after delivering its events) and
    /// returns their summaries. With `skip_auto_end_session`, sessions are flushed, not ended.
    pub fn shutdown(&self) -> Vec<SessionSummary> {
        let sessions = self.open_sessions();
        if self.shared.config.skip_auto_end_session {
            for session in &sessions {
                session.flush();
            }
            return Vec::new();
        }
        sessions
            .iter()
            .filter_map(|session| {
                session
                    .end(EndState::Indeterminate, "client shut down")
                    .ok()
            })
            .collect()
    }
}
