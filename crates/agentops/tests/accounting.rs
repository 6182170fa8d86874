//! Every event is accounted for, in every fault and over both protocols: once a session has
//! ended, `recorded = delivered + dropped + failed + sampled_out + pending`, and what the
//! backend accepted is exactly what is counted as delivered.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use agentops::{Client, EndState, Event, Protocol, SessionOptions, SessionSummary};
use support::{FakeBackend, Reply, API_KEY};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    DownAtStart,
    DownMidSession,
    Slow,
    KeyRefused,
    ServerErrorForever,
    QueueFull,
    Hanging,
}

const FAULTS: [Fault; 8] = [
    Fault::None,
    Fault::DownAtStart,
    Fault::DownMidSession,
    Fault::Slow,
    Fault::KeyRefused,
    Fault::ServerErrorForever,
    Fault::QueueFull,
    Fault::Hanging,
];

const EVENTS: usize = 40;

fn events_path(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V2 => "/v2/create_events",
        Protocol::Otlp => "/v1/traces",
    }
}

fn accepted_ids(backend: &FakeBackend, protocol: Protocol) -> Vec<String> {
    match protocol {
        Protocol::V2 => backend
            .accepted_events()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect(),
        Protocol::Otlp => backend
            .accepted_spans()
            .iter()
            .filter(|s| s["name"] != "session")
            .map(|s| s["attributes"]["event.id"].as_str().unwrap().to_owned())
            .collect(),
    }
}

fn run(protocol: Protocol, fault: Fault) -> (SessionSummary, HashSet<String>, Vec<String>) {
    let backend = match fault {
        Fault::DownAtStart => FakeBackend::reserve(),
        _ => FakeBackend::start(),
    };
    let path = events_path(protocol);
    match fault {
        Fault::Slow => backend.script(move |r| {
            (r.path == path).then(|| Reply::status(200).delay(Duration::from_millis(1500)))
        }),
        Fault::KeyRefused => backend.script(|r| {
            (r.path == "/v2/create_session" || r.path == "/v3/auth/token")
                .then(|| Reply::status(401))
        }),
        Fault::ServerErrorForever => backend.script(|_| Some(Reply::status(503))),
        Fault::Hanging => {
            backend.script(|_| Some(Reply::status(200).delay(Duration::from_secs(3600))))
        }
        _ => {}
    }
    let mut builder = agentops::Config::builder()
        .ignore_env()
        .protocol(protocol)
        .api_key(API_KEY)
        .endpoint(backend.endpoint())
        .max_wait_time(Duration::from_millis(20))
        .batch_size(10)
        .retry_attempts(3)
        .retry_min_backoff(Duration::from_millis(20))
        .retry_max_backoff(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(2));
    if fault == Fault::QueueFull {
        builder = builder.max_queue_size(10);
    }
    let session = Client::new(builder.build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    let mut recorded = HashSet::new();
    for i in 0..EVENTS {
        if fault == Fault::DownMidSession && i == EVENTS / 2 {
            support::eventually(Duration::from_secs(10), || {
                session.delivery().delivered == (EVENTS / 2) as u64
            });
            backend.stop();
        }
        if fault == Fault::QueueFull && i == 0 {
            backend.stop();
        }
        let id = session.record(Event::action("step").params(i)).unwrap();
        recorded.insert(id.to_string());
    }
    let summary = session.end(EndState::Success, "").unwrap();
    let accepted = accepted_ids(&backend, protocol);
    (summary, recorded, accepted)
}

#[test]
fn every_event_is_accounted_for_in_every_fault_over_both_protocols() {
    for protocol in [Protocol::V2, Protocol::Otlp] {
        for fault in FAULTS {
            let (summary, recorded, accepted) = run(protocol, fault);
            let counts = summary.delivery;
            let label = format!("{protocol:?} / {fault:?}: {counts:?}");
            assert!(counts.is_balanced(), "{label}");
            assert_eq!(counts.recorded, EVENTS as u64, "{label}");
            let unique: HashSet<&String> = accepted.iter().collect();
            assert!(
                unique.iter().all(|id| recorded.contains(*id)),
                "{label}: unknown events accepted"
            );
            if fault == Fault::Slow {
                // A success answered too late is not seen as one: the SDK counts it pending
                // (or retries it, and the backend's idempotency keeps it once).
                assert!(counts.delivered <= unique.len() as u64, "{label}");
            } else {
                assert_eq!(unique.len(), accepted.len(), "{label}: duplicates");
                assert_eq!(counts.delivered, unique.len() as u64, "{label}");
            }
            match fault {
                Fault::None => assert_eq!(counts.delivered, EVENTS as u64, "{label}"),
                Fault::DownMidSession => {
                    assert_eq!(counts.delivered, (EVENTS / 2) as u64, "{label}")
                }
                Fault::QueueFull => assert!(counts.dropped >= (EVENTS - 10) as u64, "{label}"),
                Fault::KeyRefused | Fault::ServerErrorForever => {
                    assert_eq!(counts.delivered, 0, "{label}");
                    assert!(summary.backend_error.is_some(), "{label}");
                }
                Fault::DownAtStart | Fault::Hanging => {
                    assert_eq!(counts.delivered, 0, "{label}");
                    assert_eq!(counts.failed + counts.pending, EVENTS as u64, "{label}");
                }
                Fault::Slow => {}
            }
            println!("{label}");
        }
    }
}
