//! Multi-session mode: concurrent sessions never mix, the current session follows threads and
//! async tasks, and sessions left open are ended for the user.

mod support;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use agentops::{Client, EndState, Event, SessionOptions};
use serde_json::json;
use support::{config, eventually, FakeBackend, Reply};

/// Records through whatever session is current, as code deep in a call stack would.
fn deep_in_the_stack(thread: usize, i: usize, expected: uuid::Uuid) {
    let session = agentops::current_session().expect("a current session");
    session
        .record(
            Event::tool("work")
                .params(json!({"thread": thread, "i": i, "expected": expected.to_string()})),
        )
        .unwrap();
}

#[test]
fn eight_threads_recording_into_two_sessions_never_mix_them() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).max_queue_size(20_000).build().unwrap()).unwrap();
    let sessions = [
        client.start_session(SessionOptions::tags(["a"])).unwrap(),
        client.start_session(SessionOptions::tags(["b"])).unwrap(),
    ];
    thread::scope(|scope| {
        for t in 0..8 {
            let sessions = sessions.clone();
            scope.spawn(move || {
                for i in 0..1_000 {
                    for session in &sessions {
                        let _current = session.enter();
                        deep_in_the_stack(t, i, session.id());
                    }
                }
            });
        }
    });
    for session in &sessions {
        let summary = session.end(EndState::Success, "").unwrap();
        assert_eq!(summary.delivery.delivered, 8_000);
        assert_eq!(summary.event_counts["tools"], 8_000);
    }
    let events = backend.accepted_events();
    assert_eq!(events.len(), 16_000);
    let mut per_session: HashMap<String, usize> = HashMap::new();
    for event in &events {
        assert_eq!(
            event["session_id"], event["params"]["expected"],
            "event in the wrong session"
        );
        *per_session
            .entry(event["session_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_session.len(), 2);
    assert!(per_session.values().all(|&n| n == 8_000));
    // Each session's batches carry only its own events, under its own JWT.
    for post in backend.requests_to("/v2/create_events") {
        let session_id = post.body["events"][0]["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(post.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["session_id"] == session_id));
        assert_eq!(
            post.header("authorization"),
            Some(format!("Bearer jwt-{session_id}-1").as_str())
        );
    }
}

#[test]
fn the_current_session_follows_async_tasks_across_threads() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let a = client.start_session(SessionOptions::default()).unwrap();
    let b = client.start_session(SessionOptions::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..16 {
            let session = if n % 2 == 0 { a.clone() } else { b.clone() };
            let expected = session.id();
            tasks.push(tokio::spawn(session.scope(async move {
                for i in 0..20 {
                    tokio::task::yield_now().await;
                    deep_in_the_stack(n, i, expected);
                }
            })));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert!(
        agentops::current_session().is_none(),
        "scopes leave nothing behind"
    );
    a.end(EndState::Success, "").unwrap();
    b.end(EndState::Success, "").unwrap();
    let events = backend.accepted_events();
    assert_eq!(events.len(), 320);
    assert!(events
        .iter()
        .all(|e| e["session_id"] == e["params"]["expected"]));
}

#[test]
fn a_session_dropped_without_end_is_ended_indeterminate_in_the_background() {
    let backend = FakeBackend::start();
    // A slow backend: dropping must not wait for it.
    backend.script(|request| {
        (request.path == "/v2/update_session")
            .then(|| Reply::status(200).delay(Duration::from_secs(2)))
    });
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let id = session.id();
    session.record(Event::action("left open")).unwrap();
    let dropping = Instant::now();
    drop(session);
    assert!(
        dropping.elapsed() < Duration::from_secs(1),
        "dropping took {:?}",
        dropping.elapsed()
    );
    assert!(client.open_sessions().is_empty());
    eventually(Duration::from_secs(10), || {
        !backend.requests_to("/v2/update_session").is_empty()
    });
    assert_eq!(
        backend.accepted_events().len(),
        1,
        "delivered before the end"
    );
    let end = backend.requests_to("/v2/update_session");
    let end = &end.last().unwrap().body["session"];
    assert_eq!(end["session_id"], id.to_string());
    assert_eq!(end["end_state"], "Indeterminate");
}

#[test]
fn skip_auto_end_session_delivers_but_leaves_the_session_open() {
    let backend = FakeBackend::start();
    let client = Client::new(
        config(&backend)
            .skip_auto_end_session(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.record(Event::action("left open")).unwrap();
    drop(session);
    eventually(Duration::from_secs(10), || {
        backend.accepted_events().len() == 1
    });
    // The worker is done with the session and has nothing more to send.
    thread::sleep(Duration::from_millis(300));
    assert!(backend.requests_to("/v2/update_session").is_empty());
}

#[test]
fn client_shutdown_ends_every_open_session() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let kept: Vec<_> = (0..3)
        .map(|_| client.start_session(SessionOptions::default()).unwrap())
        .collect();
    for session in &kept {
        session.record(Event::action("x")).unwrap();
    }
    kept[0].end(EndState::Success, "").unwrap();
    let summaries = client.shutdown();
    assert_eq!(summaries.len(), 2);
    assert!(summaries
        .iter()
        .all(|s| s.end_state == EndState::Indeterminate && s.delivery.delivered == 1));
    assert_eq!(backend.accepted_events().len(), 3);
    assert!(kept.iter().all(|s| s.is_ended()));
}

#[test]
fn a_child_event_of_another_session_does_not_adopt_its_parent() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let a = client.start_session(SessionOptions::default()).unwrap();
    let b = client.start_session(SessionOptions::default()).unwrap();
    let action = a.start_event(Event::action("in a")).unwrap();
    let in_b = {
        let _inside = action.enter();
        b.record(Event::tool("in b")).unwrap()
    };
    action.end();
    a.end(EndState::Success, "").unwrap();
    b.end(EndState::Success, "").unwrap();
    let events = backend.accepted_events();
    let in_b = events.iter().find(|e| e["id"] == in_b.to_string()).unwrap();
    assert!(in_b.get("parent_id").is_none(), "{in_b}");
}

#[test]
fn an_event_still_open_when_its_session_ends_is_counted_as_dropped() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let open = session
        .start_event(Event::action("never ended in time"))
        .unwrap();
    session.record(Event::action("done")).unwrap();
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1);
    open.end();
    let counts = session.delivery();
    assert_eq!(counts.dropped, 1, "counted once, when the session ended");
    assert_eq!((counts.recorded, counts.pending), (2, 0), "{counts:?}");
    assert!(counts.is_balanced());
    assert_eq!(backend.accepted_events().len(), 1);
}

#[test]
fn an_agent_scope_names_the_agent_of_the_events_inside_it() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let researcher = session.create_agent("researcher").unwrap();
    let writer = session.create_agent("writer").unwrap();
    let (inside, explicit) = {
        let _acting = researcher.enter();
        assert_eq!(agentops::current_agent(), Some(researcher));
        (
            session.record(Event::tool("search")).unwrap(),
            session.record(Event::tool("draft").agent(writer)).unwrap(),
        )
    };
    let outside = session.record(Event::tool("idle")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let in_task =
        runtime.block_on(writer.scope(async { session.record(Event::tool("write")).unwrap() }));
    session.end(EndState::Success, "").unwrap();
    let events = backend.accepted_events();
    let agent_of = |id: agentops::EventId| {
        events.iter().find(|e| e["id"] == id.to_string()).unwrap()["agent_id"].clone()
    };
    assert_eq!(agent_of(inside), researcher.to_string());
    assert_eq!(
        agent_of(explicit),
        writer.to_string(),
        "an explicit agent wins"
    );
    assert!(agent_of(outside).is_null());
    assert_eq!(agent_of(in_task), writer.to_string());
}

#[test]
fn an_event_names_itself_in_a_w3c_traceparent_for_downstream_services() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let call = session.start_event(Event::tool("billing_service")).unwrap();
    let header = call
        .traceparent()
        .expect("a recorded event has a traceparent");
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "00");
    assert_eq!(
        parts[1],
        session.id().simple().to_string(),
        "the trace id is the session id"
    );
    let span_id = u64::from_str_radix(parts[2], 16).unwrap().to_be_bytes();
    // The event's UUID is the span id with the UUID version in the high half of byte 6.
    let event = call.id().0;
    let event = &event.as_bytes()[..8];
    assert_eq!(
        (&event[..6], event[6] & 0x0f, event[7]),
        (&span_id[..6], span_id[6] & 0x0f, span_id[7])
    );
    assert_eq!(parts[3], "01", "sampled");
    call.end();
    session.end(EndState::Success, "").unwrap();
}
