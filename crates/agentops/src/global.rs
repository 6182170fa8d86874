//! Single-session mode: a process-wide client set up by [`init`], and module-level functions
//! that act on "the" session: the current one if any, else the only open one.

use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::{Once, PoisonError, RwLock};

use crate::exit;
use crate::session::current_session;
use crate::session::EventSpan;
use crate::summary::{SessionOptions, SessionSummary};
use crate::{AgentId, Client, Config, EndState, Error, Event, EventId, Session};

struct Global {
    client: Client,
    /// The session started by `init` or `start_session`, kept alive until ended.
    default_session: Option<Session>,
}

static GLOBAL: RwLock<Option<Global>> = RwLock::new(None);

/// Sets up the process-wide client and, if `auto_start_session` is on (the default), starts a
/// session, which it returns.
///
/// Nothing needs to be kept: when the process exits (returning from `main`, or
/// `std::process::exit`) every session still open is ended (`Indeterminate`, or `Fail` after
/// a panic on the main thread) and delivered, at most `shutdown_timeout`. A panic is recorded
/// as an `Error` event of the current session. See [`end_session`] to end it yourself.
///
/// ```no_run
/// agentops::init(agentops::Config::from_env()?)?;
/// agentops::record(agentops::Event::action("plan").params(serde_json::json!({"goal": "x"})))?;
/// let summary = agentops::end_session(agentops::EndState::Success, "done")?;
/// # Ok::<(), agentops::Error>(())
/// ```
pub fn init(config: Config) -> Result<Option<Session>, Error> {
    let mut global = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    if global.is_some() {
        return Err(Error::AlreadyInitialized);
    }
    let client = Client::new(config)?;
    install_panic_hook();
    let default_session = if client.config().auto_start_session {
        Some(client.start_session(SessionOptions::default())?)
    } else {
        None
    };
    let started = default_session.clone();
    *global = Some(Global {
        client,
        default_session,
    });
    Ok(started)
}

/// The process-wide client, if [`init`] was called.
pub fn client() -> Option<Client> {
    GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|global| global.client.clone())
}

/// Starts a session on the process-wide client. The first one started becomes the default
/// session, kept open until ended.
pub fn start_session(options: SessionOptions) -> Result<Session, Error> {
    let mut global = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    let global = global.as_mut().ok_or(Error::NotInitialized)?;
    let session = global.client.start_session(options)?;
    if global
        .default_session
        .as_ref()
        .is_none_or(Session::is_ended)
    {
        global.default_session = Some(session.clone());
    }
    Ok(session)
}

/// Continues on the process-wide client a session another service started (see
/// [`Client::join_session`] and [`crate::propagation`]).
pub fn join_session(remote: crate::propagation::RemoteSession) -> Result<Session, Error> {
    let client = client().ok_or(Error::NotInitialized)?;
    client.join_session(remote)
}

/// The session module-level calls act on: the current session, else the only open one.
pub fn session() -> Result<Session, Error> {
    if let Some(current) = current_session() {
        return Ok(current);
    }
    let Some(client) = client() else {
        return Err(if exit::any_open_session() {
            Error::NoCurrentSession
        } else {
            Error::NotInitialized
        });
    };
    let mut open = client.open_sessions();
    match open.len() {
        0 => Err(Error::NoSession),
        1 => Ok(open.remove(0)),
        n => Err(Error::AmbiguousSession { open: n }),
    }
}

/// Records a whole event into [`session()`].
pub fn record(event: Event) -> Result<EventId, Error> {
    session()?.record(event)
}

/// Starts an event in [`session()`], to end later.
pub fn start_event(event: Event) -> Result<EventSpan, Error> {
    session()?.start_event(event)
}

/// Adds tags to [`session()`].
pub fn add_tags<I, S>(tags: I) -> Result<(), Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    session()?.add_tags(tags)
}

/// Replaces the tags of [`session()`].
pub fn set_tags<I, S>(tags: I) -> Result<(), Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    session()?.set_tags(tags)
}

/// Registers an agent in [`session()`].
pub fn create_agent(name: impl Into<String>) -> Result<AgentId, Error> {
    session()?.create_agent(name)
}

/// Ends [`session()`].
pub fn end_session(
    end_state: EndState,
    reason: impl Into<String>,
) -> Result<SessionSummary, Error> {
    let session = session()?;
    let summary = session.end(end_state, reason)?;
    if let Some(global) = GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        if global
            .default_session
            .as_ref()
            .is_some_and(|default| default.id() == session.id())
        {
            global.default_session = None;
        }
    }
    Ok(summary)
}

/// Ends every open session of the process-wide client (see [`Client::shutdown`]) and forgets
/// the client, so that [`init`] can be called again.
pub fn shutdown() -> Vec<SessionSummary> {
    let global = GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match global {
        Some(global) => {
            let summaries = global.client.shutdown();
            drop(global.default_session);
            summaries
        }
        None => Vec::new(),
    }
}

/// Records panics into the current session: an `Error` event with the message, location and
/// backtrace (when `RUST_BACKTRACE` enables it). A panic on the main thread makes the exit hook
/// end the sessions as `Fail`; with `panic = "abort"`, where no exit hook runs, the hook ends
/// every session itself.
pub(crate) fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| on_panic(info)));
        }));
    });
}

fn on_panic(info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let location = info
        .location()
        .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()))
        .unwrap_or_default();
    // Not from inside a recording: the panicking thread may hold the session's locks.
    let recording = crate::state::recording_on_this_thread();
    if let Some(session) = session().ok().filter(|_| !recording) {
        let backtrace = std::backtrace::Backtrace::capture();
        let mut exception = format!("thread '{name}' panicked at {location}:\n{message}");
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            exception.push_str(&format!("\n{backtrace}"));
        }
        let _ = session.record(
            Event::error("panic")
                .details(message.clone())
                .exception(exception),
        );
    }
    if name == "main" {
        exit::note_main_panic(message.clone());
    }
    if cfg!(panic = "abort") {
        exit::end_all(EndState::Fail, &format!("panicked: {message}"));
    }
}
