//! The exporter under faults injected by the fake backend: nothing acknowledged twice by us,
//! nothing lost within the queue's capacity, and every loss counted.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use agentops::{Client, EndState, Event, SessionOptions, SessionSummary};
use serde_json::Value;
use support::{config, FakeBackend, Reply};

const EVENTS_PATH: &str = "/v2/create_events";

fn record_actions(session: &agentops::Session, n: usize) -> HashSet<String> {
    (0..n)
        .map(|i| {
            session
                .record(Event::action("step").params(serde_json::json!({"i": i})))
                .unwrap()
                .to_string()
        })
        .collect()
}

fn unique_ids(events: &[Value]) -> HashSet<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Fails the first `n` calls to `path` with `reply`.
fn fail_first(
    backend: &FakeBackend,
    path: &'static str,
    n: usize,
    reply: Reply,
) -> Arc<AtomicUsize> {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    backend.script(move |request| {
        (request.path == path && counter.fetch_add(1, Ordering::SeqCst) < n).then(|| reply.clone())
    });
    seen
}

fn assert_all_delivered_once(
    backend: &FakeBackend,
    recorded: &HashSet<String>,
    summary: &SessionSummary,
) {
    let events = backend.accepted_events();
    assert_eq!(
        events.len(),
        recorded.len(),
        "accepted events, duplicates included"
    );
    assert_eq!(&unique_ids(&events), recorded);
    assert_eq!(summary.delivery.delivered, recorded.len() as u64);
    assert!(summary.delivery.is_balanced(), "{:?}", summary.delivery);
    assert_eq!(
        (
            summary.delivery.failed,
            summary.delivery.dropped,
            summary.delivery.pending
        ),
        (0, 0, 0)
    );
}

#[test]
fn server_errors_are_retried_until_delivered() {
    let backend = FakeBackend::start();
    fail_first(&backend, EVENTS_PATH, 3, Reply::status(503));
    let session = Client::new(config(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    let recorded = record_actions(&session, 40);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_all_delivered_once(&backend, &recorded, &summary);
    assert!(summary.delivery.retried >= 3, "{:?}", summary.delivery);
    assert!(
        backend
            .requests_to(EVENTS_PATH)
            .iter()
            .filter(|r| r.status == 503)
            .count()
            == 3
    );
}

#[test]
fn too_many_requests_waits_as_long_as_retry_after_says() {
    let backend = FakeBackend::start();
    fail_first(
        &backend,
        EVENTS_PATH,
        1,
        Reply::status(429).header("Retry-After", "1"),
    );
    let session = Client::new(config(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    let recorded = record_actions(&session, 5);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_all_delivered_once(&backend, &recorded, &summary);
    let posts = backend.requests_to(EVENTS_PATH);
    let waited = posts[1].at.duration_since(posts[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, Retry-After said 1 s"
    );
}

#[test]
fn an_expired_jwt_is_reauthorised_once_and_the_batch_resent() {
    let backend = FakeBackend::start();
    fail_first(&backend, EVENTS_PATH, 1, Reply::status(401));
    let session = Client::new(config(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    let recorded = record_actions(&session, 10);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_all_delivered_once(&backend, &recorded, &summary);
    let reauth = backend.requests_to("/v2/reauthorize_jwt");
    assert_eq!(reauth.len(), 1);
    assert_eq!(reauth[0].body["session_id"], session.id().to_string());
    let posts = backend.requests_to(EVENTS_PATH);
    let fresh = format!("Bearer jwt-{}-2", session.id());
    assert_eq!(
        posts.last().unwrap().header("authorization"),
        Some(fresh.as_str())
    );
}

#[test]
fn a_jwt_refused_after_reauthorisation_fails_the_batch_without_looping() {
    let backend = FakeBackend::start();
    backend.script(|request| (request.path == EVENTS_PATH).then(|| Reply::status(401)));
    let session = Client::new(config(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    record_actions(&session, 4);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.failed, 4);
    assert_eq!(summary.delivery.delivered, 0);
    assert_eq!(
        backend.requests_to(EVENTS_PATH).len(),
        2,
        "one try, one after re-authorising"
    );
}

#[test]
fn a_batch_too_large_is_split_until_it_fits() {
    let backend = FakeBackend::start();
    backend.script(|request| {
        let n = request.body["events"].as_array().map_or(0, Vec::len);
        (request.path == EVENTS_PATH && n > 3).then(|| Reply::status(413))
    });
    let session = Client::new(
        config(&backend)
            .max_wait_time(Duration::from_secs(60))
            .build()
            .unwrap(),
    )
    .unwrap()
    .start_session(SessionOptions::default())
    .unwrap();
    let recorded = record_actions(&session, 20);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_all_delivered_once(&backend, &recorded, &summary);
    assert!(backend
        .requests_to(EVENTS_PATH)
        .iter()
        .any(|r| r.status == 413));
}

#[test]
fn a_rejected_batch_is_dropped_and_counted_as_failed() {
    let backend = FakeBackend::start();
    backend.script(|request| (request.path == EVENTS_PATH).then(|| Reply::status(422)));
    let session = Client::new(config(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    record_actions(&session, 7);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.failed, 7);
    assert_eq!(
        backend.requests_to(EVENTS_PATH).len(),
        1,
        "a 4xx is not retried"
    );
    assert!(
        summary.backend_error.is_none(),
        "the session itself still ended"
    );
}

#[test]
fn a_slow_answer_times_out_and_is_retried() {
    let backend = FakeBackend::start();
    fail_first(
        &backend,
        EVENTS_PATH,
        1,
        Reply::status(200).delay(Duration::from_secs(3)),
    );
    let session = Client::new(
        config(&backend)
            .request_timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    )
    .unwrap()
    .start_session(SessionOptions::default())
    .unwrap();
    let recorded = record_actions(&session, 6);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 6);
    assert!(summary.delivery.retried >= 1, "{:?}", summary.delivery);
    // The slow answer was a success the SDK never saw, so the backend got the batch twice:
    // the server's idempotency by event id keeps it once.
    assert_eq!(unique_ids(&backend.accepted_events()), recorded);
}

#[test]
fn nothing_is_lost_while_the_backend_is_down_for_ten_seconds() {
    let backend = FakeBackend::reserve();
    let client = Client::new(
        config(&backend)
            .retry_attempts(30)
            .retry_max_backoff(Duration::from_secs(1))
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let started = Instant::now();
    let mut recorded = HashSet::new();
    while started.elapsed() < Duration::from_secs(10) {
        recorded.extend(record_actions(&session, 10));
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(session.delivery().delivered, 0);
    backend.resume();
    recorded.extend(record_actions(&session, 10));
    let summary = session.end(EndState::Success, "back").unwrap();
    assert_all_delivered_once(&backend, &recorded, &summary);
    assert!(summary.backend_error.is_none());
    assert_eq!(
        backend.requests_to("/v2/create_session").len(),
        1,
        "created once, when the backend came back"
    );
    assert_eq!(summary.token_cost.as_deref(), Some("0.0123"));
}

#[test]
fn a_full_queue_drops_and_the_dropped_count_is_what_is_missing() {
    let backend = FakeBackend::reserve();
    let client = Client::new(
        config(&backend)
            .max_queue_size(100)
            .batch_size(50)
            .retry_attempts(40)
            .retry_max_backoff(Duration::from_millis(100))
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let recorded = record_actions(&session, 1_000);
    let during = session.delivery();
    assert!(during.dropped >= 800, "{during:?}");
    backend.resume();
    let summary = session.end(EndState::Success, "").unwrap();
    let delivered = unique_ids(&backend.accepted_events());
    assert!(delivered.is_subset(&recorded));
    assert_eq!(summary.delivery.delivered, delivered.len() as u64);
    assert_eq!(
        summary.delivery.dropped,
        (recorded.len() - delivered.len()) as u64
    );
    assert_eq!((summary.delivery.failed, summary.delivery.pending), (0, 0));
}

#[test]
fn an_unreachable_backend_gives_up_and_counts_every_event() {
    let backend = FakeBackend::reserve();
    let client = Client::new(config(&backend).retry_attempts(3).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    record_actions(&session, 12);
    let summary = session.end(EndState::Fail, "offline").unwrap();
    assert_eq!(summary.delivery.failed, 12);
    assert_eq!(summary.delivery.delivered, 0);
    assert!(matches!(
        summary.backend_error,
        Some(agentops::BackendError::Unreachable { .. })
    ));
    assert!(summary.token_cost.is_none());
}

#[test]
fn a_refused_api_key_fails_fast_and_says_why() {
    let backend = FakeBackend::start();
    backend.script(|request| (request.path == "/v2/create_session").then(|| Reply::status(401)));
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    record_actions(&session, 3);
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.failed, 3);
    assert!(
        matches!(
            summary.backend_error,
            Some(agentops::BackendError::Refused { status: 401, .. })
        ),
        "{:?}",
        summary.backend_error
    );
    assert_eq!(
        backend.requests_to("/v2/create_session").len(),
        1,
        "a refused key is not retried"
    );
}

#[test]
fn a_renewal_the_backend_cannot_answer_now_is_retried_not_given_up() {
    let backend = FakeBackend::start();
    let mut failures = 0;
    backend.script(move |request| match request.path.as_str() {
        EVENTS_PATH if failures == 0 => {
            failures += 1;
            Some(Reply::status(401))
        }
        "/v2/reauthorize_jwt" if failures == 1 => {
            failures += 1;
            Some(Reply::status(503))
        }
        _ => None,
    });
    let session = Client::new(config(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    let recorded = record_actions(&session, 5);
    let summary = session.end(EndState::Success, "").unwrap();
    // Delivered, not failed as a refused JWT would be.
    assert_all_delivered_once(&backend, &recorded, &summary);
    assert_eq!(backend.requests_to("/v2/reauthorize_jwt").len(), 1);
    assert!(summary.delivery.retried >= 1);
}
