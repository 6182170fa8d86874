//! Open sessions cost no thread: a client has one delivery thread, however many sessions it
//! runs. Alone in its test binary, so that no other test's threads are counted.

mod support;

use agentops::{Client, Event, SessionOptions};
use support::{config, FakeBackend};

#[test]
#[cfg(target_os = "linux")]
fn a_hundred_open_sessions_cost_one_thread() {
    fn threads() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    // The first session starts the client's delivery thread.
    let first = client.start_session(SessionOptions::default()).unwrap();
    let before = threads();
    let sessions: Vec<_> = (0..100)
        .map(|_| client.start_session(SessionOptions::default()).unwrap())
        .collect();
    for session in &sessions {
        session.record(Event::action("x")).unwrap();
    }
    let after = threads();
    // The fake backend serves each connection on a thread of its own; the SDK keeps one
    // connection alive, so allow it a few.
    assert!(
        after <= before + 4,
        "{before} threads before, {after} after"
    );
    drop(sessions);
    drop(first);
    client.shutdown();
}
