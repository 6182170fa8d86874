//! The lifecycle never holds the agent hostage: ending is bounded by `shutdown_timeout` with
//! the backend down, hanging or refusing; async code can end without blocking its runtime;
//! nothing else on the caller's path waits on the network.

mod support;

use std::time::{Duration, Instant};

use agentops::{BackendError, Client, EndState, Error, Event, SessionOptions};
use support::{config, eventually, FakeBackend, Reply};

const SHUTDOWN: Duration = Duration::from_secs(2);
/// What `end` may take beyond `shutdown_timeout` (the bound).
const SLACK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Backend {
    /// Nothing listens: connections are refused.
    Down,
    /// Accepts connections and never answers.
    Hanging,
    /// Answers 503 to everything.
    Refusing,
}

fn backend(kind: Backend) -> FakeBackend {
    match kind {
        Backend::Down => FakeBackend::reserve(),
        Backend::Hanging => {
            let backend = FakeBackend::start();
            backend.script(|_| Some(Reply::status(200).delay(Duration::from_secs(3600))));
            backend
        }
        Backend::Refusing => {
            let backend = FakeBackend::start();
            backend.script(|_| Some(Reply::status(503)));
            backend
        }
    }
}

fn quick_to_give_up(backend: &FakeBackend) -> agentops::ConfigBuilder {
    // The defaults: 12 attempts, up to 5 s apart, 10 s per request; only the timeout is short.
    agentops::Config::builder()
        .ignore_env()
        .api_key(support::API_KEY)
        .endpoint(backend.endpoint())
        .max_wait_time(Duration::from_millis(50))
        .shutdown_timeout(SHUTDOWN)
}

#[test]
fn end_returns_within_the_shutdown_timeout_whatever_the_backend_does() {
    for kind in [Backend::Down, Backend::Hanging, Backend::Refusing] {
        let backend = backend(kind);
        let client = Client::new(quick_to_give_up(&backend).build().unwrap()).unwrap();
        let session = client.start_session(SessionOptions::default()).unwrap();
        let asking = Instant::now();
        assert_eq!(session.session_url(), None);
        assert!(
            asking.elapsed() < Duration::from_millis(100),
            "{kind:?}: session_url waited"
        );
        for i in 0..5 {
            session.record(Event::action("step").params(i)).unwrap();
        }
        let ending = Instant::now();
        let summary = session.end(EndState::Success, "").unwrap();
        let took = ending.elapsed();
        assert!(took <= SHUTDOWN + SLACK, "{kind:?}: end took {took:?}");
        let delivery = summary.delivery;
        assert!(delivery.is_balanced(), "{kind:?}: {delivery:?}");
        assert_eq!(delivery.recorded, 5);
        assert_eq!(delivery.delivered, 0, "{kind:?}");
        assert_eq!(
            delivery.failed + delivery.pending,
            5,
            "{kind:?}: {delivery:?}"
        );
        assert!(summary.backend_error.is_some(), "{kind:?}");
    }
}

#[test]
fn client_shutdown_is_bounded_for_many_sessions_at_once() {
    let backend = backend(Backend::Hanging);
    let client = Client::new(quick_to_give_up(&backend).build().unwrap()).unwrap();
    let open: Vec<_> = (0..20)
        .map(|_| {
            let session = client.start_session(SessionOptions::default()).unwrap();
            session.record(Event::action("x")).unwrap();
            session
        })
        .collect();
    let ending = Instant::now();
    let summaries = client.shutdown();
    assert!(open.iter().all(agentops::Session::is_ended));
    assert!(
        ending.elapsed() <= SHUTDOWN + SLACK,
        "{:?}",
        ending.elapsed()
    );
    assert_eq!(summaries.len(), 20);
    assert!(summaries.iter().all(|s| s.delivery.is_balanced()));
}

#[test]
fn a_session_ended_while_the_backend_is_slow_reports_what_is_pending_then_delivers_it() {
    let backend = FakeBackend::start();
    backend.script(|request| {
        (request.path == "/v2/create_events")
            .then(|| Reply::status(200).delay(Duration::from_secs(4)))
    });
    let client = Client::new(quick_to_give_up(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    for _ in 0..3 {
        session.record(Event::tool("slow")).unwrap();
    }
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.pending, 3, "{:?}", summary.delivery);
    assert!(summary.delivery.is_balanced());
    assert!(matches!(
        summary.backend_error,
        Some(BackendError::Timeout { pending: 3 })
    ));
    // Delivery goes on in the background: the events, then the end, reach the backend.
    backend.script(|_| None);
    eventually(Duration::from_secs(30), || {
        !backend.requests_to("/v2/update_session").is_empty()
    });
    assert_eq!(session.delivery().delivered, 3);
    assert!(session.delivery().is_balanced());
}

/// A 20 ms ticker on a current-thread runtime: the longest gap between two ticks while
/// `work` runs on the same thread.
async fn longest_tick_gap_during(work: impl std::future::Future<Output = ()>) -> Duration {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let ticking = done.clone();
    let ticker = tokio::spawn(async move {
        let mut longest = Duration::ZERO;
        let mut last = Instant::now();
        while !ticking.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            longest = longest.max(last.elapsed());
            last = Instant::now();
        }
        longest
    });
    work.await;
    done.store(true, Ordering::Release);
    ticker.await.unwrap()
}

#[test]
fn async_end_and_drop_never_block_a_current_thread_runtime() {
    let backend = backend(Backend::Hanging);
    let client = Client::new(quick_to_give_up(&backend).build().unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let gap = runtime.block_on(longest_tick_gap_during(async {
        let session = client.start_session(SessionOptions::default()).unwrap();
        let dropped = client.start_session(SessionOptions::default()).unwrap();
        session.record(Event::action("in a task")).unwrap();
        dropped.record(Event::action("left open")).unwrap();
        drop(dropped);
        let started = Instant::now();
        let summary = session.end_async(EndState::Success, "").await.unwrap();
        assert!(started.elapsed() <= SHUTDOWN + SLACK);
        assert!(summary.delivery.is_balanced());
        assert_eq!(summary.delivery.pending + summary.delivery.failed, 1);
        let flushed = client.start_session(SessionOptions::default()).unwrap();
        flushed.record(Event::action("flushed")).unwrap();
        flushed.flush_async().await;
        let _ = client.shutdown_async().await;
    }));
    assert!(
        gap < Duration::from_millis(500),
        "the runtime stalled for {gap:?}"
    );
}

#[test]
fn a_bad_api_key_is_found_before_the_first_event() {
    let backend = FakeBackend::start();
    backend.script(|request| (request.path == "/v2/create_session").then(|| Reply::status(401)));
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let err = session
        .wait_until_created(Duration::from_secs(5))
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Refused {
                status: 401,
                call: "create_session",
                ..
            }
        ),
        "{err}"
    );

    let good = FakeBackend::start();
    let client = Client::new(config(&good).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.wait_until_created(Duration::from_secs(5)).unwrap();
    assert!(session.session_url().is_some());
}

#[test]
fn a_task_that_lost_its_session_is_told_so() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let err = agentops::record(Event::action("from nowhere")).unwrap_err();
    assert!(matches!(err, Error::NoCurrentSession), "{err}");
    assert!(err.to_string().contains("Session::scope"), "{err}");
    session.end(EndState::Success, "").unwrap();
}

#[test]
fn an_event_started_earlier_lasts_until_it_is_recorded() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let started = std::time::SystemTime::now() - Duration::from_millis(1500);
    session
        .record(Event::tool("measured").started_at(started))
        .unwrap();
    session.end(EndState::Success, "").unwrap();
    let event = &backend.accepted_events()[0];
    let start =
        chrono::DateTime::parse_from_rfc3339(event["init_timestamp"].as_str().unwrap()).unwrap();
    let end =
        chrono::DateTime::parse_from_rfc3339(event["end_timestamp"].as_str().unwrap()).unwrap();
    let lasted = (end - start).num_milliseconds();
    assert!((1400..10_000).contains(&lasted), "lasted {lasted} ms");
}

#[test]
fn the_quickstart_against_a_dead_endpoint_exits_promptly_and_accounts_for_its_events() {
    // Built by `cargo test` with the other examples.
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("quickstart"))
        .unwrap();
    assert!(
        example.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the examples",
        example.display()
    );
    let dead = FakeBackend::reserve();
    let started = Instant::now();
    let output = std::process::Command::new(&example)
        .env_clear()
        .env("AGENTOPS_API_KEY", support::API_KEY)
        .env("AGENTOPS_API_ENDPOINT", dead.endpoint())
        .env("AGENTOPS_SHUTDOWN_TIMEOUT", "2000")
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(took < Duration::from_secs(4), "took {took:?}\n{stdout}");
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("5 recorded") && stdout.contains("0 delivered"),
        "{stdout}"
    );
    assert!(
        stdout.contains("5 pending") || stdout.contains("5 failed"),
        "{stdout}"
    );
}

/// Runs `scenario` on a thread and fails the test if it does not finish within `limit`
/// (a deadlock would otherwise hang the test run).
fn finishes_within(limit: Duration, scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        scenario();
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(limit).is_ok(),
        "did not finish within {limit:?}: a deadlock"
    );
}

/// A `tracing` layer that records every warning of the SDK into `session`, and ends it on the
/// first: code that feeds the SDK's own logs back into it.
struct FeedBack {
    session: agentops::Session,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FeedBack {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "agentops"
            && *event.metadata().level() == tracing::Level::WARN
        {
            let _ = self.session.record(Event::custom("sdk-warning"));
            let _ = self
                .session
                .end(EndState::Fail, "ended from a log callback");
        }
    }
}

#[test]
fn logs_fed_back_into_the_sdk_from_inside_a_recording_never_deadlock() {
    finishes_within(Duration::from_secs(20), || {
        use tracing_subscriber::prelude::*;
        let backend = FakeBackend::reserve();
        let client = Client::new(
            quick_to_give_up(&backend)
                .max_queue_size(2)
                .batch_size(2)
                .build()
                .unwrap(),
        )
        .unwrap();
        let session = client.start_session(SessionOptions::default()).unwrap();
        let subscriber = tracing_subscriber::registry().with(FeedBack {
            session: session.clone(),
        });
        tracing::subscriber::with_default(subscriber, || {
            // The third event finds the queue full: the warning is logged inside the recording.
            for _ in 0..5 {
                let _ = session.record(Event::action("x"));
            }
        });
        assert!(session.is_ended());
        let counts = session.delivery();
        assert!(counts.is_balanced(), "{counts:?}");
    });
}

#[test]
fn flushing_an_ended_session_answers_at_once() {
    let backend = FakeBackend::start();
    let client = Client::new(quick_to_give_up(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.record(Event::action("x")).unwrap();
    session.end(EndState::Success, "").unwrap();
    let flushing = Instant::now();
    assert_eq!(session.flush().delivered, 1);
    assert!(
        flushing.elapsed() < Duration::from_secs(1),
        "{:?}",
        flushing.elapsed()
    );
}

#[test]
fn shutdown_that_only_flushes_is_bounded_for_many_sessions_too() {
    let backend = backend(Backend::Hanging);
    let client = Client::new(
        quick_to_give_up(&backend)
            .skip_auto_end_session(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let open: Vec<_> = (0..4)
        .map(|_| {
            let session = client.start_session(SessionOptions::default()).unwrap();
            session.record(Event::action("x")).unwrap();
            session
        })
        .collect();
    let ending = Instant::now();
    assert!(client.shutdown().is_empty());
    assert!(
        ending.elapsed() <= SHUTDOWN + SLACK,
        "{:?}",
        ending.elapsed()
    );
    drop(open);
}
