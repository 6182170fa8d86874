//! The behaviour every [`Store`] engine must show; each engine's tests run these checks.

use agentops_core::EndState;

use super::{EventRecord, Outcome, SessionRecord, Store, Write};

fn event(id: &str, session: &str, start: &str, cost: Option<f64>) -> EventRecord {
    EventRecord {
        id: id.into(),
        session_id: session.into(),
        kind: "llms".into(),
        start_time: start.into(),
        cost,
        attributes: serde_json::json!({}),
        ..EventRecord::default()
    }
}

/// Idempotent writes, project scoping, session cost, tag replacement.
pub fn writes_are_idempotent_and_project_scoped(store: &dyn Store) {
    let a = store.create_project("a").unwrap();
    let b = store.create_project("b").unwrap();
    let s = SessionRecord {
        id: "s1".into(),
        start_time: Some("2026-01-01T00:00:00.000000+00:00".into()),
        ..Default::default()
    };
    let writes = vec![
        Write::CreateSession {
            project_id: a.clone(),
            session: s.clone(),
        },
        Write::CreateEvents {
            project_id: a.clone(),
            session_id: "s1".into(),
            events: vec![event(
                "e1",
                "s1",
                "2026-01-01T00:00:01.000000+00:00",
                Some(0.5),
            )],
        },
    ];
    let r = store.commit(&writes).unwrap();
    assert!(r.iter().all(Result::is_ok));
    // retry: nothing new
    let r = store.commit(&writes).unwrap();
    assert_eq!(r[1].as_ref().unwrap(), &Outcome::Inserted(0));

    // project b's session "s1" is its own: writing it leaves a's untouched
    let r = store
        .commit(&[
            Write::CreateSession {
                project_id: b.clone(),
                session: SessionRecord {
                    end_state: Some(EndState::Fail),
                    ..s.clone()
                },
            },
            Write::CreateEvents {
                project_id: b.clone(),
                session_id: "s1".into(),
                events: vec![event("e2", "s1", "x", Some(2.0))],
            },
            Write::UpdateSession {
                project_id: b.clone(),
                session: SessionRecord {
                    id: "s1".into(),
                    ..Default::default()
                },
            },
        ])
        .unwrap();
    assert_eq!(r[1].as_ref().unwrap(), &Outcome::Inserted(1));
    assert_eq!(r[2].as_ref().unwrap(), &Outcome::SessionCost(2.0));
    let theirs = store.session_detail(&b, "s1").unwrap().unwrap();
    assert_eq!(theirs.summary.end_state.as_deref(), Some("Fail"));
    assert_eq!(theirs.events.len(), 1);
    assert!(store.session_exists(&b, "s1").unwrap());
    // a session b does not have is not found, whoever else has that id
    let r = store
        .commit(&[Write::CreateEvents {
            project_id: b.clone(),
            session_id: "s9".into(),
            events: vec![event("e3", "s9", "x", None)],
        }])
        .unwrap();
    assert!(matches!(r[0], Err(super::WriteError::NotFound(_))));
    assert!(!store.session_exists(&b, "s9").unwrap());

    let detail = store.session_detail(&a, "s1").unwrap().unwrap();
    assert_eq!(detail.events.len(), 1);
    assert_eq!(detail.summary.end_state, None);
    assert!((detail.summary.cost - 0.5).abs() < 1e-12);

    let r = store
        .commit(&[Write::UpdateSession {
            project_id: a.clone(),
            session: SessionRecord {
                id: "s1".into(),
                end_state: Some(EndState::Success),
                tags: Some(vec!["x".into()]),
                ..Default::default()
            },
        }])
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &Outcome::SessionCost(0.5));
    let list = store.list_sessions(&a, 10).unwrap();
    assert_eq!(list[0].end_state.as_deref(), Some("Success"));
    assert_eq!(list[0].tags, vec!["x".to_string()]);
}

/// OTLP spans of a session id that another project also uses land in the sender's session.
pub fn projects_have_their_own_session_ids(store: &dyn Store) {
    let a = store.create_project("a").unwrap();
    let b = store.create_project("b").unwrap();
    let sess = |id: &str| SessionRecord {
        id: id.into(),
        ..Default::default()
    };
    store
        .commit(&[Write::CreateSession {
            project_id: a.clone(),
            session: sess("t1"),
        }])
        .unwrap();
    let r = store
        .commit(&[Write::IngestSpans {
            project_id: b.clone(),
            sessions: vec![sess("t1"), sess("t2")],
            spans: vec![event("x1", "t1", "1", None), event("x2", "t2", "2", None)],
        }])
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &Outcome::Inserted(2));
    let events = |project: &str, session: &str| {
        store
            .session_detail(project, session)
            .unwrap()
            .map(|detail| detail.events.len())
    };
    assert_eq!(events(&b, "t1"), Some(1));
    assert_eq!(events(&b, "t2"), Some(1));
    assert_eq!(events(&a, "t1"), Some(0));
    assert_eq!(events(&a, "t2"), None);
}

/// [`ReadStore::session_changes`]: a mark hands out only what was stored after it (events, OTLP
/// log records, uploaded logs), with every event's outline and the session as it is now; no
/// mark, or one that no longer matches the stored rows, gets the whole session.
pub fn session_changes_hand_out_what_was_stored_after_a_mark(store: &dyn Store) {
    use super::{LogRecord, RowMark, SessionMark};

    let p = store.create_project("changes").unwrap();
    let at = |s: u32| format!("2026-11-20T10:00:{s:02}.000000+00:00");
    let with_payload = |id: &str, start: &str, parent: Option<&str>| EventRecord {
        parent_id: parent.map(Into::into),
        prompt: Some(serde_json::json!([{"role": "user", "content": format!("q {id}")}])),
        attributes: serde_json::json!({"n": id}),
        ..event(id, "live", start, Some(0.25))
    };
    let record = |time: &str, body: &str| LogRecord {
        session_id: "live".into(),
        time: time.into(),
        body: serde_json::json!(body),
        attributes: serde_json::json!({}),
        ..LogRecord::default()
    };
    let ok = |writes: &[Write]| {
        let results = store.commit(writes).unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    };
    ok(&[
        Write::CreateSession {
            project_id: p.clone(),
            session: SessionRecord {
                id: "live".into(),
                start_time: Some(at(0)),
                ..Default::default()
            },
        },
        Write::CreateEvents {
            project_id: p.clone(),
            session_id: "live".into(),
            events: vec![
                with_payload("e2", &at(5), None),
                with_payload("e1", &at(1), None),
            ],
        },
        Write::IngestLogs {
            project_id: p.clone(),
            records: vec![record(&at(2), "first")],
        },
        Write::AppendLog {
            project_id: p.clone(),
            session_id: "live".into(),
            body: "uploaded 1".into(),
        },
    ]);

    // no mark: everything, as the detail has it
    let whole = store
        .session_changes(&p, "live", None, true)
        .unwrap()
        .unwrap();
    assert!(whole.whole);
    assert!(whole.outline.is_empty());
    let ids = |events: &[super::EventRow]| events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&whole.detail.events), ["e1", "e2"]);
    assert!(whole.detail.events[0].prompt.is_some());
    assert_eq!(whole.detail.log_records.len(), 1);
    assert_eq!(whole.detail.logs, ["uploaded 1"]);
    let mark = whole.mark;
    assert_eq!(
        (mark.events.count, mark.log_records.count, mark.logs.count),
        (2, 1, 1)
    );
    assert!(mark.events.last > 0 && mark.log_records.last > 0 && mark.logs.last > 0);
    let without = store
        .session_changes(&p, "live", None, false)
        .unwrap()
        .unwrap();
    assert!(without.whole && without.detail.events[0].prompt.is_none());
    assert_eq!(without.mark, mark);

    // nothing new: an empty delta, the same mark, no outline (the tree cannot have changed)
    let same = store
        .session_changes(&p, "live", Some(&mark), true)
        .unwrap()
        .unwrap();
    assert!(!same.whole);
    assert!(same.detail.events.is_empty());
    assert!(same.detail.log_records.is_empty() && same.detail.logs.is_empty());
    assert_eq!(same.mark, mark);
    assert!(same.outline.is_empty());
    assert_eq!(same.detail.summary.event_count, 2);

    // new rows (an event that starts between the others, nested under e1; a retried one that
    // is stored already; a log record; an uploaded log): only they come, the outline has all
    ok(&[
        Write::CreateEvents {
            project_id: p.clone(),
            session_id: "live".into(),
            events: vec![
                with_payload("e3", &at(3), Some("e1")),
                with_payload("e1", &at(1), None),
            ],
        },
        Write::IngestLogs {
            project_id: p.clone(),
            records: vec![record(&at(1), "second, earlier in time")],
        },
        Write::AppendLog {
            project_id: p.clone(),
            session_id: "live".into(),
            body: "uploaded 2".into(),
        },
    ]);
    for payloads in [true, false] {
        let delta = store
            .session_changes(&p, "live", Some(&mark), payloads)
            .unwrap()
            .unwrap();
        assert!(!delta.whole);
        assert_eq!(ids(&delta.detail.events), ["e3"]);
        assert_eq!(delta.detail.events[0].parent_id.as_deref(), Some("e1"));
        assert_eq!(delta.detail.events[0].prompt.is_some(), payloads);
        let outline: Vec<(&str, Option<&str>)> = delta
            .outline
            .iter()
            .map(|o| (o.id.as_str(), o.parent_id.as_deref()))
            .collect();
        assert_eq!(outline, [("e1", None), ("e3", Some("e1")), ("e2", None)]);
        let bodies: Vec<&serde_json::Value> =
            delta.detail.log_records.iter().map(|r| &r.body).collect();
        assert_eq!(bodies, [&serde_json::json!("second, earlier in time")]);
        assert_eq!(delta.detail.logs, ["uploaded 2"]);
        assert_eq!(delta.detail.summary.event_count, 3);
        assert!((delta.detail.summary.cost - 0.75).abs() < 1e-12);
        assert_eq!(
            (
                delta.mark.events.count,
                delta.mark.log_records.count,
                delta.mark.logs.count
            ),
            (3, 2, 2)
        );
        assert!(delta.mark.events.last > mark.events.last);
        assert!(delta.mark.log_records.last > mark.log_records.last);
        assert!(delta.mark.logs.last > mark.logs.last);
        // and from the new mark, nothing again
        let after = store
            .session_changes(&p, "live", Some(&delta.mark), payloads)
            .unwrap()
            .unwrap();
        assert!(!after.whole && after.detail.events.is_empty());
        assert!(after.outline.is_empty());
    }

    // nothing seen yet: every row is new
    let all = store
        .session_changes(&p, "live", Some(&SessionMark::default()), false)
        .unwrap()
        .unwrap();
    assert!(!all.whole);
    assert_eq!(ids(&all.detail.events), ["e1", "e3", "e2"]);
    assert_eq!(all.detail.log_records.len(), 2);
    assert_eq!(all.detail.logs.len(), 2);

    // marks that do not match what is stored (rows deleted or renumbered since): the whole
    // session
    let now = all.mark;
    let beyond = SessionMark {
        events: RowMark {
            last: now.events.last + 1000,
            count: now.events.count,
        },
        ..now
    };
    let fewer = SessionMark {
        log_records: RowMark {
            last: now.log_records.last,
            count: now.log_records.count + 1,
        },
        ..now
    };
    let logs_gone = SessionMark {
        logs: RowMark {
            last: now.logs.last + 1,
            count: now.logs.count,
        },
        ..now
    };
    for stale in [beyond, fewer, logs_gone] {
        let answer = store
            .session_changes(&p, "live", Some(&stale), false)
            .unwrap()
            .unwrap();
        assert!(answer.whole, "{stale:?}");
        assert!(answer.outline.is_empty());
        assert_eq!(ids(&answer.detail.events), ["e1", "e3", "e2"]);
        assert_eq!(answer.mark, now);
    }

    // another project's session, or none: not found
    let other = store.create_project("changes, other").unwrap();
    assert!(store
        .session_changes(&other, "live", None, false)
        .unwrap()
        .is_none());
    assert!(store
        .session_changes(&p, "missing", Some(&now), false)
        .unwrap()
        .is_none());
}

/// A session from `start` to `end` (running when `None`), for the retention checks.
pub fn expiry_session(id: &str, start: &str, end: Option<&str>) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        start_time: Some(start.into()),
        end_time: end.map(Into::into),
        ..SessionRecord::default()
    }
}

/// `n` events of a session on `day` over two hours and two models, some failed, with exact
/// costs, for the retention checks.
pub fn expiry_events(session_id: &str, day: &str, n: usize) -> Vec<EventRecord> {
    (0..n)
        .map(|i| EventRecord {
            id: format!("{session_id}-e{i}"),
            session_id: session_id.into(),
            kind: if i % 5 == 4 { "errors" } else { "llms" }.into(),
            name: Some(format!("call {}", i % 3)),
            start_time: format!("{day}T0{}:00:00.000000+00:00", i % 2),
            model: Some(if i % 2 == 0 { "gpt-4o" } else { "o3" }.into()),
            agent_id: Some("agent-1".into()),
            input_tokens: Some(10 + i as i64),
            output_tokens: Some(3),
            cost: Some(0.25),
            status: (i % 3 == 0).then(|| "error".into()),
            attributes: serde_json::json!({}),
            ..EventRecord::default()
        })
        .collect()
}

fn held(trace: &str, at: i64, span: &str) -> super::HeldSpan {
    super::HeldSpan {
        trace_id: trace.into(),
        held_at_ms: at,
        bytes: 100,
        span: span.into(),
    }
}

/// Held spans: the limit, claims by trace (once, in the order held, only the young ones),
/// kept until settled, released or lapsed; expiry and the count.
pub fn held_spans_are_claimed_once_by_trace(store: &dyn Store) {
    let bodies = |spans: &[super::ClaimedSpan]| -> Vec<String> {
        spans.iter().map(|s| s.span.span.clone()).collect()
    };
    let ids = |spans: &[super::ClaimedSpan]| -> Vec<i64> { spans.iter().map(|s| s.id).collect() };
    let traces = |ids: &[&str]| -> Vec<String> { ids.iter().map(|id| id.to_string()).collect() };
    assert!(store
        .hold_spans(&[held("t1", 1_000, "a"), held("t2", 1_000, "b")], 300)
        .unwrap());
    // all or none: 200 held + 200 more > 300
    assert!(!store
        .hold_spans(&[held("t3", 2_000, "c"), held("t3", 2_000, "d")], 300)
        .unwrap());
    assert!(store.hold_spans(&[held("t1", 2_000, "e")], 300).unwrap());
    assert_eq!(store.held_span_count(0).unwrap(), 3);
    assert_eq!(store.held_span_count(1_500).unwrap(), 1);

    // only spans held since the cutoff are claimed; the rest wait for expiry
    let e = store
        .claim_held_spans(&traces(&["t1", "t9"]), 1_500, 3_000, 4_000)
        .unwrap();
    assert_eq!(bodies(&e), ["e"]);
    let ab = store
        .claim_held_spans(&traces(&["t1", "t2"]), 0, 3_000, 4_000)
        .unwrap();
    assert_eq!(bodies(&ab), ["a", "b"]);
    // while a claim holds them, nobody else takes them
    assert!(store
        .claim_held_spans(&traces(&["t1", "t2"]), 0, 3_500, 4_500)
        .unwrap()
        .is_empty());
    assert!(store
        .claim_held_spans(&[], 0, 3_500, 4_500)
        .unwrap()
        .is_empty());
    // claimed spans stay in the store until settled
    assert_eq!(store.held_span_count(0).unwrap(), 3);
    store.settle_held_spans(&ids(&e), 4_000).unwrap();
    assert_eq!(store.held_span_count(0).unwrap(), 2);
    // released (the claimer's write failed): claimable again at once, as they were
    store.release_held_spans(&ids(&ab), 4_000).unwrap();
    let again = store
        .claim_held_spans(&traces(&["t1", "t2"]), 0, 3_600, 4_600)
        .unwrap();
    assert_eq!(again, ab);
    // a claim whose server died lapses: claimable again once it has
    assert!(store
        .claim_held_spans(&traces(&["t2"]), 0, 4_599, 5_599)
        .unwrap()
        .is_empty());
    let lapsed = store
        .claim_held_spans(&traces(&["t2"]), 0, 4_600, 5_600)
        .unwrap();
    assert_eq!(bodies(&lapsed), ["b"]);
    // the lapsed claim's server, alive after all, settles or releases only what is still its
    // own ("a"), not what the later claim holds ("b")
    store.release_held_spans(&ids(&again), 4_600).unwrap();
    assert!(store
        .claim_held_spans(&traces(&["t2"]), 0, 4_700, 5_700)
        .unwrap()
        .is_empty());
    let a = store
        .claim_held_spans(&traces(&["t1"]), 0, 4_700, 5_700)
        .unwrap();
    assert_eq!(bodies(&a), ["a"]);
    store.settle_held_spans(&ids(&again), 4_600).unwrap();
    assert_eq!(store.held_span_count(0).unwrap(), 2);
    store.settle_held_spans(&ids(&lapsed), 5_600).unwrap();
    store.settle_held_spans(&ids(&a), 5_700).unwrap();
    assert_eq!(store.held_span_count(0).unwrap(), 0);
    // settling or releasing what is gone does nothing
    store.settle_held_spans(&ids(&again), 4_600).unwrap();
    store.release_held_spans(&ids(&again), 4_600).unwrap();
    store.settle_held_spans(&[], 0).unwrap();
    assert_eq!(store.held_span_count(0).unwrap(), 0);

    assert!(store
        .hold_spans(&[held("t4", 5_000, "f"), held("t5", 9_000, "g")], 300)
        .unwrap());
    assert_eq!(store.expire_held_spans(6_000).unwrap(), 1);
    assert_eq!(store.held_span_count(0).unwrap(), 1);
    assert!(store
        .claim_held_spans(&traces(&["t4"]), 0, 10_000, 11_000)
        .unwrap()
        .is_empty());
    let g = store
        .claim_held_spans(&traces(&["t5"]), 0, 10_000, 11_000)
        .unwrap();
    assert_eq!(bodies(&g), ["g"]);
}

/// An event is one by its session and id: resent with another start time (another month,
/// even), or twice in one write, it is stored once (the first) and counted once.
pub fn an_event_is_one_by_session_and_id_whatever_its_start_time(store: &dyn Store) {
    let p = store.create_project("identity").unwrap();
    let session = SessionRecord {
        id: "s1".into(),
        start_time: Some("2026-01-31T23:59:00.000000+00:00".into()),
        ..Default::default()
    };
    let events = |list: Vec<EventRecord>| Write::CreateEvents {
        project_id: p.clone(),
        session_id: "s1".into(),
        events: list,
    };
    let r = store
        .commit(&[
            Write::CreateSession {
                project_id: p.clone(),
                session,
            },
            events(vec![
                event("e1", "s1", "2026-01-31T23:59:30.000000+00:00", Some(1.0)),
                event("e1", "s1", "2026-01-31T23:59:31.000000+00:00", Some(1.0)),
            ]),
        ])
        .unwrap();
    assert_eq!(r[1].as_ref().unwrap(), &Outcome::Inserted(1));
    let r = store
        .commit(&[events(vec![
            event("e1", "s1", "2026-02-01T00:00:05.000000+00:00", Some(1.0)),
            event("e2", "s1", "2026-02-01T00:00:06.000000+00:00", Some(2.0)),
        ])])
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &Outcome::Inserted(1));
    let detail = store.session_detail(&p, "s1").unwrap().unwrap();
    let stored: Vec<(&str, &str)> = detail
        .events
        .iter()
        .map(|e| (e.id.as_str(), e.start_time.as_str()))
        .collect();
    assert_eq!(
        stored,
        [
            ("e1", "2026-01-31T23:59:30.000000+00:00"),
            ("e2", "2026-02-01T00:00:06.000000+00:00")
        ]
    );
    assert_eq!(detail.summary.event_count, 2);
    assert!((detail.summary.cost - 3.0).abs() < 1e-9);

    // A session that one write makes, and the next write of the same commit (two requests
    // batched together) resending its span under another start time: once.
    let spans = |start: &str| Write::IngestSpans {
        project_id: p.clone(),
        sessions: vec![SessionRecord {
            id: "s2".into(),
            start_time: Some(start.into()),
            ..Default::default()
        }],
        spans: vec![event("x1", "s2", start, Some(1.0))],
    };
    let r = store
        .commit(&[
            spans("2026-03-31T23:59:59.000000+00:00"),
            spans("2026-04-01T00:00:01.000000+00:00"),
        ])
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &Outcome::Inserted(1));
    assert_eq!(r[1].as_ref().unwrap(), &Outcome::Inserted(0));
    let detail = store.session_detail(&p, "s2").unwrap().unwrap();
    assert_eq!(detail.events.len(), 1);
    assert_eq!(detail.summary.event_count, 1);
}
