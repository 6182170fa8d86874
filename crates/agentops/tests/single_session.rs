//! Single-session mode: module-level calls, and their clear errors. One test, because it owns
//! the process-wide client.

mod support;

use agentops::{EndState, Error, Event, SessionOptions};
use support::{config, FakeBackend};

#[test]
fn module_level_calls_act_on_the_one_open_or_current_session() {
    assert!(matches!(
        agentops::record(Event::action("x")),
        Err(Error::NotInitialized)
    ));

    let backend = FakeBackend::start();
    let first = agentops::init(config(&backend).build().unwrap())
        .unwrap()
        .expect("auto-started");
    assert!(matches!(
        agentops::init(config(&backend).build().unwrap()),
        Err(Error::AlreadyInitialized)
    ));
    agentops::record(Event::action("into the default session")).unwrap();
    agentops::add_tags(["t1"]).unwrap();

    let second = agentops::start_session(SessionOptions::default()).unwrap();
    let err = agentops::record(Event::action("which one?")).unwrap_err();
    assert!(matches!(err, Error::AmbiguousSession { open: 2 }), "{err}");
    assert!(err.to_string().contains("2 sessions are open"));

    {
        let _current = second.enter();
        agentops::record(Event::action("into the second")).unwrap();
        agentops::end_session(EndState::Fail, "second done").unwrap();
    }
    agentops::record(Event::action("default again")).unwrap();
    let summary = agentops::end_session(EndState::Success, "done").unwrap();
    assert_eq!(summary.session_id, first.id());
    assert_eq!(summary.delivery.delivered, 2);
    assert!(matches!(
        agentops::record(Event::action("none left")),
        Err(Error::NoSession)
    ));

    assert!(agentops::shutdown().is_empty());
    assert!(agentops::client().is_none());

    let events = backend.accepted_events();
    let in_second: Vec<_> = events
        .iter()
        .filter(|e| e["session_id"] == second.id().to_string())
        .collect();
    assert_eq!(in_second.len(), 1);
    assert_eq!(in_second[0]["name"], "into the second");
}
