//! The behaviour of every [`Store`] engine's reads (the session list with its filters, sort
//! keys, directions and pages; a session's detail; one event; log records, tool calls,
//! metrics, agents and statistics), and [`engines_answer_alike`], which holds two engines to
//! the same answers. Each engine's tests run these checks.

use agentops_core::EndState;
use serde_json::{json, Value};

use super::{
    EndStateFilter, EventRecord, EventRow, LogRecord, MetricPoint, SessionCursor, SessionQuery,
    SessionRecord, SessionSortKey, SessionSummary, SortValue, Store, Write,
};

/// A timestamp on 2026-11-`day` at `time` (`HH:MM:SS.ffffff`).
fn at(day: u32, time: &str) -> String {
    format!("2026-11-{day:02}T{time}+00:00")
}

/// An event of `session` with empty attributes.
fn event(id: &str, session: &str, kind: &str, start: String) -> EventRecord {
    EventRecord {
        id: id.into(),
        session_id: session.into(),
        kind: kind.into(),
        start_time: start,
        attributes: json!({}),
        ..EventRecord::default()
    }
}

/// Commits `writes`, checking each succeeded.
fn ok(store: &dyn Store, writes: &[Write]) {
    let results = store.commit(writes).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// Stores `session` and its `events` in one commit, checking both writes succeeded.
pub fn store_session(
    store: &dyn Store,
    project: &str,
    session: SessionRecord,
    events: Vec<EventRecord>,
) {
    let session_id = session.id.clone();
    ok(
        store,
        &[
            Write::CreateSession {
                project_id: project.into(),
                session,
            },
            Write::CreateEvents {
                project_id: project.into(),
                session_id,
                events,
            },
        ],
    );
}

/// Stores the sessions the list checks query (s1…s6), with events, agents, OTLP log records,
/// an uploaded log and metric points.
pub fn seed(store: &dyn Store, project: &str) {
    let s = |id: &str| SessionRecord {
        id: id.into(),
        ..SessionRecord::default()
    };
    store_session(
        store,
        project,
        SessionRecord {
            name: Some("nightly run".into()),
            start_time: Some(at(20, "10:00:00.000000")),
            end_time: Some(at(20, "10:00:02.500000")),
            tags: Some(vec!["prod".into()]),
            ..s("s1")
        },
        vec![EventRecord {
            name: Some("summarise".into()),
            status: Some("error".into()),
            status_message: Some("rate limited".into()),
            model: Some("gpt-4o".into()),
            agent_id: Some("a1".into()),
            input_tokens: Some(10),
            output_tokens: Some(5),
            cost: Some(0.5),
            span_id: Some("sp1".into()),
            call_ids: Some("call_1 call_2".into()),
            prompt: Some(json!([{"role": "user", "content": "sum up"}])),
            attributes: json!({"gen_ai.system": "openai"}),
            ..event("e1", "s1", "llms", at(20, "10:00:01.000000"))
        }],
    );
    store_session(
        store,
        project,
        SessionRecord {
            name: Some("Morning_50%".into()),
            // (kept when an agent is registered)
            name_rank: crate::mapping::names::SESSION_NAME_ATTRIBUTE,
            start_time: Some(at(21, "08:00:00.000000")),
            end_time: Some(at(21, "08:01:00.000000")),
            end_state: Some(EndState::Success),
            tags: Some(vec!["dev".into(), "prod".into()]),
            ..s("s2")
        },
        vec![
            EventRecord {
                name: Some("search".into()),
                ..event("e1", "s2", "tools", at(21, "08:00:01.000000"))
            },
            EventRecord {
                model: Some("claude".into()),
                cost: Some(1.0),
                input_tokens: Some(100),
                output_tokens: Some(20),
                ..event("e2", "s2", "llms", at(21, "08:00:02.000000"))
            },
            EventRecord {
                model: Some("gpt-4o".into()),
                cost: Some(0.25),
                agent_id: Some("a2".into()),
                ..event("e3", "s2", "llms", at(21, "08:00:03.000000"))
            },
        ],
    );
    store_session(
        store,
        project,
        SessionRecord {
            start_time: Some(at(19, "23:59:59.500000")),
            ..s("s3")
        },
        vec![event("e1", "s3", "actions", at(20, "00:00:00.250000"))],
    );
    store_session(
        store,
        project,
        SessionRecord {
            name: Some("Été".into()),
            ..s("s4")
        },
        Vec::new(),
    );
    store_session(
        store,
        project,
        SessionRecord {
            start_time: Some(at(22, "00:00:00.000000")),
            end_time: Some(at(22, "00:00:00.001000")),
            end_state: Some(EndState::Fail),
            end_state_reason: Some("crashed".into()),
            ..s("s5")
        },
        vec![
            event("x", "s5", "errors", at(22, "00:00:00.000500")),
            EventRecord {
                cost: Some(2.0),
                model: Some("gpt-4o".into()),
                ..event("y", "s5", "llms", at(22, "00:00:00.000600"))
            },
        ],
    );
    store_session(
        store,
        project,
        SessionRecord {
            name: Some("stringy".into()),
            start_time: Some(at(20, "12:00:00.000000")),
            end_state: Some(EndState::Indeterminate),
            host_env: Some(json!({"os": "linux", "cpus": 8})),
            video: Some("https://example.com/v".into()),
            ..s("s6")
        },
        Vec::new(),
    );
    let record = |session: &str, time: String, span: Option<&str>, body: &str| LogRecord {
        session_id: session.into(),
        time,
        severity: Some("INFO".into()),
        event_name: Some("gen_ai.choice".into()),
        body: json!({"text": body}),
        attributes: json!({"k": 1}),
        trace_id: Some("t1".into()),
        span_id: span.map(Into::into),
        event_id: None,
        call_ids: None,
    };
    let point = |name: &str, time: String, value: f64| MetricPoint {
        name: name.into(),
        kind: "sum".into(),
        unit: Some("{token}".into()),
        temporality: Some("delta".into()),
        monotonic: Some(true),
        attributes: json!({"service.name": "svc"}),
        start_time: Some(at(20, "00:00:00.000000")),
        time,
        value: Some(value),
        ..MetricPoint::default()
    };
    ok(
        store,
        &[
            Write::CreateAgent {
                project_id: project.into(),
                session_id: "s2".into(),
                agent_id: "a2".into(),
                name: "planner".into(),
            },
            Write::CreateAgent {
                project_id: project.into(),
                session_id: "s2".into(),
                agent_id: "a0".into(),
                name: "helper".into(),
            },
            Write::IngestLogs {
                project_id: project.into(),
                records: vec![
                    record("s1", at(20, "10:00:01.500000"), Some("e1"), "second"),
                    record("s1", at(20, "10:00:01.200000"), None, "first"),
                    LogRecord {
                        call_ids: Some("call_3".into()),
                        ..record("s1", at(20, "10:00:01.700000"), Some("e1"), "third")
                    },
                ],
            },
            Write::AppendLog {
                project_id: project.into(),
                session_id: "s1".into(),
                body: "uploaded".into(),
            },
            Write::IngestMetrics {
                project_id: project.into(),
                points: vec![
                    point("tokens", at(20, "10:00:00.000000"), 5.0),
                    point("tokens", at(21, "10:00:00.000000"), 7.5),
                    MetricPoint {
                        kind: "histogram".into(),
                        unit: None,
                        temporality: Some("cumulative".into()),
                        monotonic: None,
                        value: None,
                        count: Some(3),
                        sum: Some(4.5),
                        min: Some(0.5),
                        max: Some(2.0),
                        buckets: Some(json!({"bounds": [1.0], "counts": [1, 2]})),
                        ..point("latency", at(20, "11:00:00.000000"), 0.0)
                    },
                ],
            },
        ],
    );
}

/// The ids of the sessions `query` finds, every page of them (`limit` a page).
fn ids_of(store: &dyn Store, project: &str, query: &SessionQuery) -> Vec<String> {
    store
        .query_sessions(project, query)
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| s.id)
        .collect()
}

/// Every row of `query`, reading it in pages of `page` rows through the cursors.
fn paged(store: &dyn Store, project: &str, query: &SessionQuery, page: usize) -> Vec<String> {
    let mut query = SessionQuery {
        limit: page,
        after: None,
        ..query.clone()
    };
    let mut ids = Vec::new();
    for _ in 0..100 {
        let answer = store.query_sessions(project, &query).unwrap();
        assert!(answer.sessions.len() <= page);
        ids.extend(answer.sessions.into_iter().map(|s| s.id));
        match answer.next {
            Some(next) => query.after = Some(next),
            None => return ids,
        }
    }
    panic!("{query:?} never ends");
}

/// The order of a sort key, as the list has it: by the key (start time bytewise, a session
/// without one first; running sessions as the shortest), then id.
fn by_key(sort: SessionSortKey, a: &SessionSummary, b: &SessionSummary) -> std::cmp::Ordering {
    let key = match sort {
        SessionSortKey::StartTime => {
            let key = |s: &SessionSummary| s.start_time.clone().unwrap_or_default();
            key(a).cmp(&key(b))
        }
        SessionSortKey::Cost => a.cost.total_cmp(&b.cost),
        SessionSortKey::Events => a.event_count.cmp(&b.event_count),
        SessionSortKey::Duration => a
            .duration_ms
            .unwrap_or(-1)
            .cmp(&b.duration_ms.unwrap_or(-1)),
    };
    key.then_with(|| a.id.as_bytes().cmp(b.id.as_bytes()))
}

/// The list: every filter finds what it should, every sort key in both directions orders as
/// it should, and reading in pages through cursors gives the same rows as one page.
pub fn list_filters_sorts_and_pages(store: &dyn Store) {
    let project = store.create_project("list").unwrap();
    seed(store, &project);
    let other = store.create_project("other").unwrap();
    seed(store, &other);
    let everything = SessionQuery {
        limit: 100,
        ..SessionQuery::default()
    };
    let all = store
        .query_sessions(&project, &everything)
        .unwrap()
        .sessions;
    assert_eq!(all.len(), 6);
    let summary = |id: &str| all.iter().find(|s| s.id == id).unwrap().clone();
    assert_eq!(summary("s1").duration_ms, Some(2500));
    assert_eq!(summary("s1").error_count, 1);
    assert!(summary("s1").has_errors);
    assert_eq!(summary("s2").event_count, 3);
    assert!((summary("s2").cost - 1.25).abs() < 1e-12);
    assert_eq!(summary("s2").tags, ["dev", "prod"]);
    assert_eq!(summary("s3").state, "Running");
    assert_eq!(summary("s6").state, "Running");
    assert_eq!(summary("s5").state, "Fail");
    assert_eq!(summary("s5").duration_ms, Some(1));

    // the newest sessions: by start time, then id, descending
    let newest: Vec<String> = store
        .list_sessions(&project, 4)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(newest, ["s5", "s2", "s6", "s1"]);

    // every sort key, both directions, in one page and in pages
    for sort in [
        SessionSortKey::StartTime,
        SessionSortKey::Cost,
        SessionSortKey::Events,
        SessionSortKey::Duration,
    ] {
        for descending in [true, false] {
            let query = SessionQuery {
                sort,
                descending,
                ..everything.clone()
            };
            let mut expected = all.clone();
            expected.sort_by(|a, b| by_key(sort, a, b));
            if descending {
                expected.reverse();
            }
            let expected: Vec<String> = expected.into_iter().map(|s| s.id).collect();
            assert_eq!(ids_of(store, &project, &query), expected, "{query:?}");
            for page in [1, 2, 4] {
                assert_eq!(
                    paged(store, &project, &query, page),
                    expected,
                    "{query:?} {page}"
                );
            }
        }
    }

    // filters
    let find = |query: SessionQuery| {
        let mut ids = ids_of(
            store,
            &project,
            &SessionQuery {
                limit: 100,
                ..query
            },
        );
        ids.sort();
        ids
    };
    let q = SessionQuery::default;
    let cases: Vec<(SessionQuery, Vec<&str>)> = vec![
        (
            SessionQuery {
                from: Some(at(20, "00:00:00.000000")),
                ..q()
            },
            vec!["s1", "s2", "s5", "s6"],
        ),
        (
            SessionQuery {
                to: Some(at(21, "00:00:00.000000")),
                ..q()
            },
            vec!["s1", "s3", "s6"],
        ),
        (
            SessionQuery {
                from: Some(at(20, "10:00:00.000000")),
                to: Some(at(21, "08:00:00.000000")),
                ..q()
            },
            vec!["s1", "s6"],
        ),
        (
            SessionQuery {
                tags: vec!["prod".into()],
                ..q()
            },
            vec!["s1", "s2"],
        ),
        (
            SessionQuery {
                tags: vec!["prod".into(), "dev".into()],
                ..q()
            },
            vec!["s2"],
        ),
        (
            SessionQuery {
                tags: vec!["pro".into()],
                ..q()
            },
            vec![],
        ),
        (
            SessionQuery {
                end_state: Some(EndStateFilter::Ended(EndState::Success)),
                ..q()
            },
            vec!["s2"],
        ),
        (
            SessionQuery {
                end_state: Some(EndStateFilter::Ended(EndState::Fail)),
                ..q()
            },
            vec!["s5"],
        ),
        (
            SessionQuery {
                end_state: Some(EndStateFilter::Running),
                ..q()
            },
            vec!["s3", "s4", "s6"],
        ),
        (
            SessionQuery {
                agent: Some("a1".into()),
                ..q()
            },
            vec!["s1"],
        ),
        (
            SessionQuery {
                agent: Some("planner".into()),
                ..q()
            },
            vec!["s2"],
        ),
        (
            SessionQuery {
                model: Some("gpt-4o".into()),
                ..q()
            },
            vec!["s1", "s2", "s5"],
        ),
        (
            SessionQuery {
                model: Some("claude".into()),
                has_errors: Some(false),
                ..q()
            },
            vec!["s2"],
        ),
        (
            SessionQuery {
                has_errors: Some(true),
                ..q()
            },
            vec!["s1", "s5"],
        ),
        (
            SessionQuery {
                has_errors: Some(false),
                ..q()
            },
            vec!["s2", "s3", "s4", "s6"],
        ),
    ];
    let texts: Vec<(&str, Vec<&str>)> = vec![
        // the name, either case of ASCII letters
        ("NIGHTLY", vec!["s1"]),
        // `%` and `_` are themselves, not wildcards
        ("g_5", vec!["s2"]),
        ("50%", vec!["s2"]),
        ("ing_", vec!["s2"]),
        ("%", vec!["s2"]),
        // the id, a tag, an event name
        ("S5", vec!["s5"]),
        ("dev", vec!["s2"]),
        ("SEARCH", vec!["s2"]),
        ("summar", vec!["s1"]),
        // letters beyond ASCII match in their own case only (as SQLite's LIKE)
        ("Été", vec!["s4"]),
        ("été", vec![]),
    ];
    let text_cases = texts.into_iter().map(|(text, ids)| {
        (
            SessionQuery {
                text: Some(text.into()),
                ..q()
            },
            ids,
        )
    });
    for (query, expected) in cases.into_iter().chain(text_cases) {
        assert_eq!(find(query.clone()), expected, "{query:?}");
        // and the same through pages, in both directions of a sort
        for descending in [true, false] {
            let sorted = SessionQuery {
                sort: SessionSortKey::Cost,
                descending,
                ..query.clone()
            };
            let mut ids = paged(store, &project, &sorted, 1);
            ids.sort();
            assert_eq!(ids, expected, "{sorted:?}");
        }
    }
}

/// A session's detail (with and without payloads), one event, log records, tool calls,
/// metrics and agents.
pub fn details_logs_metrics_and_agents_read_back(store: &dyn Store) {
    let project = store.create_project("reads").unwrap();
    seed(store, &project);
    assert!(store.session_exists(&project, "s1").unwrap());
    assert!(!store.session_exists(&project, "nope").unwrap());
    assert!(store.session_detail(&project, "nope").unwrap().is_none());
    assert!(store
        .event_detail(&project, "s1", "nope")
        .unwrap()
        .is_none());

    let detail = store.session_detail(&project, "s1").unwrap().unwrap();
    assert_eq!(detail.summary.name.as_deref(), Some("nightly run"));
    assert_eq!(detail.logs, ["uploaded"]);
    let bodies: Vec<&Value> = detail.log_records.iter().map(|r| &r.body).collect();
    assert_eq!(
        bodies,
        [
            &json!({"text": "first"}),
            &json!({"text": "second"}),
            &json!({"text": "third"})
        ]
    );
    assert_eq!(detail.log_records[0].severity.as_deref(), Some("INFO"));
    assert_eq!(detail.log_records[0].attributes, json!({"k": 1}));
    let e1 = &detail.events[0];
    assert!(e1.failed);
    assert_eq!(e1.status_message.as_deref(), Some("rate limited"));
    let prompt = json!([{"role": "user", "content": "sum up"}]).to_string();
    assert_eq!(e1.prompt.as_ref().map(|p| p.get()), Some(prompt.as_str()));
    assert_eq!(e1.attributes.get(), r#"{"gen_ai.system":"openai"}"#);
    let one = store.event_detail(&project, "s1", "e1").unwrap().unwrap();
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(e1).unwrap()
    );
    let bare = store
        .session_detail_without_payloads(&project, "s1")
        .unwrap()
        .unwrap();
    assert!(bare.events[0].prompt.is_none());
    assert_eq!(bare.events[0].attributes.get(), "{}");
    assert_eq!(bare.events[0].cost, Some(0.5));
    // what the tree shows stays; what only the event's own detail shows is left out
    let (full, tree) = (e1, &bare.events[0]);
    assert_eq!(
        (
            &tree.id,
            &tree.kind,
            &tree.status,
            &tree.start_time,
            tree.failed
        ),
        (
            &full.id,
            &full.kind,
            &full.status,
            &full.start_time,
            full.failed
        )
    );
    assert_eq!(
        (tree.input_tokens, tree.output_tokens),
        (full.input_tokens, full.output_tokens)
    );
    assert_eq!(
        (&tree.model, &tree.span_id, &tree.call_ids),
        (&full.model, &full.span_id, &full.call_ids)
    );
    assert!(full.status_message.is_some() && tree.status_message.is_none());
    assert!(full.agent_id.is_some());
    assert_eq!(
        (
            &tree.trace_id,
            &tree.agent_id,
            &tree.provider,
            tree.cached_tokens
        ),
        (&None, &None, &None, None)
    );

    let s6 = store.session_detail(&project, "s6").unwrap().unwrap();
    assert_eq!(s6.host_env, Some(json!({"os": "linux", "cpus": 8})));
    assert_eq!(s6.video.as_deref(), Some("https://example.com/v"));
    let s2 = store.session_detail(&project, "s2").unwrap().unwrap();
    let agents: Vec<(&str, &str)> = s2
        .agents
        .iter()
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(agents, [("a2", "planner"), ("a0", "helper")]);

    // log records of one span
    let of_span = store.log_records(&project, "s1", Some("e1")).unwrap();
    assert_eq!(of_span.len(), 2);
    assert!(of_span.iter().all(|r| r.span_id.as_deref() == Some("e1")));
    assert_eq!(store.log_records(&project, "s1", None).unwrap().len(), 3);
    assert!(store.log_records(&project, "s2", None).unwrap().is_empty());

    // tool calls: the event's own, and those of its span's log records (its id is "e1")
    let mut calls: Vec<(String, String)> = store
        .call_refs(&project, "s1")
        .unwrap()
        .into_iter()
        .map(|c| (c.event_id, c.call_ids))
        .collect();
    calls.sort();
    assert_eq!(
        calls,
        [
            ("e1".to_owned(), "call_1 call_2".to_owned()),
            ("e1".to_owned(), "call_3".to_owned())
        ]
    );

    // metrics
    let names: Vec<(String, String, i64, String)> = store
        .metric_names(&project)
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.kind, m.points, m.last_time))
        .collect();
    assert_eq!(
        names,
        [
            (
                "latency".to_owned(),
                "histogram".to_owned(),
                1,
                at(20, "11:00:00.000000")
            ),
            (
                "tokens".to_owned(),
                "sum".to_owned(),
                2,
                at(21, "10:00:00.000000")
            )
        ]
    );
    let tokens = store.metric_points(&project, "tokens", None, None).unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].monotonic, Some(true));
    assert_eq!(tokens[1].value, Some(7.5));
    let ranged = store
        .metric_points(
            &project,
            "tokens",
            Some(&at(20, "10:00:00.000000")),
            Some(&at(21, "10:00:00.000000")),
        )
        .unwrap();
    assert_eq!(ranged.len(), 1);
    let latency = store
        .metric_points(&project, "latency", None, None)
        .unwrap();
    assert_eq!(latency[0].count, Some(3));
    assert_eq!(latency[0].monotonic, None);
    assert_eq!(
        latency[0].buckets,
        Some(json!({"bounds": [1.0], "counts": [1, 2]}))
    );

    // agents: named by events, registered with a name
    let agents: Vec<(String, Option<String>, i64)> = store
        .list_agents(&project)
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.name, a.session_count))
        .collect();
    assert_eq!(
        agents,
        [
            ("a0".to_owned(), Some("helper".to_owned()), 1),
            ("a1".to_owned(), None, 1),
            ("a2".to_owned(), Some("planner".to_owned()), 1)
        ]
    );
}

/// Statistics: whole hours read from the hourly totals agree with the same range read from
/// the events, and the partial hours at the ends count only what is inside.
pub fn stats_agree_from_totals_and_events(store: &dyn Store) {
    let project = store.create_project("stats").unwrap();
    seed(store, &project);
    let by_totals = store.stats(&project, None, None).unwrap();
    // (a bound that is no timestamp has no whole hour: every event is read)
    let by_events = store.stats(&project, Some("0"), None).unwrap();
    assert_eq!(by_totals, by_events);
    assert_eq!(by_totals.sessions, 5);
    assert_eq!(by_totals.sessions_with_errors, 2);
    assert_eq!(by_totals.durations_ms, [1, 2500, 60_000]);
    let days: Vec<(&str, i64, i64, i64)> = by_totals
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.sessions, d.events, d.error_events))
        .collect();
    assert_eq!(
        days,
        [
            ("2026-11-19", 1, 0, 0),
            ("2026-11-20", 2, 2, 1),
            ("2026-11-21", 1, 3, 0),
            ("2026-11-22", 1, 2, 1)
        ]
    );
    let models: Vec<(&str, i64)> = by_totals
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.calls))
        .collect();
    assert_eq!(models, [("gpt-4o", 3), ("claude", 1)]);
    assert_eq!(by_totals.models[0].cost, 2.75);
    // from the middle of a day to the middle of another
    let middle = store
        .stats(
            &project,
            Some(&at(20, "06:00:00.000000")),
            Some(&at(21, "08:00:02.500000")),
        )
        .unwrap();
    assert_eq!(middle.sessions, 3);
    let events: i64 = middle.days.iter().map(|d| d.events).sum();
    assert_eq!(events, 3);
    assert_eq!(middle.models[0].model, "claude");
    // from the middle of an hour to the middle of another: each end from the events
    let hours = store
        .stats(
            &project,
            Some(&at(20, "10:00:00.500000")),
            Some(&at(21, "08:00:01.500000")),
        )
        .unwrap();
    let events: Vec<(&str, i64)> = hours
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.events))
        .filter(|(_, events)| *events > 0)
        .collect();
    assert_eq!(events, [("2026-11-20", 1), ("2026-11-21", 1)]);
}

/// A session's events come by start time then id (bytewise), with or without payloads.
pub fn events_come_by_start_time_then_id(store: &dyn Store) {
    let project = store.create_project("order").unwrap();
    let t = |s: &str| format!("2026-11-20T10:00:{s}+00:00");
    // (id, start): insertion order differs from time order; ties go by id
    let stored = [
        ("a", t("09.000000")),
        ("b", t("01.000000")),
        ("c", t("01.000000")),
        ("B", t("05.000000")),
        ("é", t("01.000000")),
        ("z", t("00.500000")),
    ];
    let events = stored
        .iter()
        .map(|(id, start)| event(id, "s1", "actions", start.clone()))
        .collect();
    let s1 = SessionRecord {
        id: "s1".into(),
        ..SessionRecord::default()
    };
    store_session(store, &project, s1, events);
    for detail in [
        store.session_detail(&project, "s1"),
        store.session_detail_without_payloads(&project, "s1"),
    ] {
        let ids: Vec<String> = detail
            .unwrap()
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["z", "b", "c", "é", "B", "a"]);
    }
}

/// Events read back (packed, compressed, and unpacked) serialise exactly as the values
/// written did, from the detail and from the one event; the project they are in.
pub fn events_read_back_as_written(store: &dyn Store) -> String {
    let project = store.create_project("p").unwrap();
    let payloads = json!({
        "nested": {"z": [1, -2, 3.5, 1e300, -0.0, 0.1, 12345678901234567890u64, -9007199254740993i64],
                   "a": {"deep": [null, true, false, {}]}},
        "text": "quotes \" backslash \\ newline \n tab \t control \u{1} é 日本 🎉 </script>",
        "empty": "",
    });
    let mut events = Vec::new();
    for (i, value) in [payloads.clone(), json!("a string"), json!(42)]
        .into_iter()
        .enumerate()
    {
        events.push(EventRecord {
            name: Some(format!("call {i}")),
            parent_id: (i > 0).then(|| "e0".into()),
            end_time: Some(format!("2026-11-20T10:00:0{i}.500000+00:00")),
            model: Some("gpt-4o".into()),
            prompt: Some(value.clone()),
            completion: (i != 1).then(|| value.clone()),
            params: Some(json!({"temperature": 0.7})),
            returns: (i == 2).then_some(Value::Null),
            input_tokens: Some(10),
            cost: Some(0.000_123_4),
            attributes: payloads.clone(),
            ..event(
                &format!("e{i}"),
                "s1",
                "llms",
                format!("2026-11-20T10:00:0{i}.000000+00:00"),
            )
        });
    }
    let s1 = SessionRecord {
        id: "s1".into(),
        ..SessionRecord::default()
    };
    store_session(store, &project, s1, events.clone());
    let detail = store.session_detail(&project, "s1").unwrap().unwrap();
    assert_eq!(detail.events.len(), 3);
    for (row, written) in detail.events.iter().zip(&events) {
        // read back as the values written (null ones absent)
        assert_eq!(
            serde_json::to_string(row).unwrap(),
            serde_json::to_string(&EventRow::from(written)).unwrap(),
            "{}",
            row.id
        );
        let one = store
            .event_detail(&project, "s1", &row.id)
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(row).unwrap()
        );
    }
    project
}

/// Two engines given the same writes answer every read the same.
pub fn engines_answer_alike(a: &dyn Store, b: &dyn Store) {
    let projects = [a, b].map(|store| {
        let project = store.create_project("alike").unwrap();
        seed(store, &project);
        project
    });
    let answers = |store: &dyn Store, p: &str| -> Vec<String> {
        let mut out = Vec::new();
        let sessions = store.list_sessions(p, 100).unwrap();
        out.push(format!("{sessions:?}"));
        for s in &sessions {
            for detail in [
                store.session_detail(p, &s.id).unwrap(),
                store.session_detail_without_payloads(p, &s.id).unwrap(),
            ] {
                out.push(serde_json::to_string(&detail).unwrap());
            }
            let changes = store
                .session_changes(p, &s.id, None, true)
                .unwrap()
                .unwrap();
            out.push(format!("{}", changes.whole));
            out.push(serde_json::to_string(&changes.detail).unwrap());
            let mut refs = store.call_refs(p, &s.id).unwrap();
            refs.sort_by(|x, y| (&x.event_id, &x.call_ids).cmp(&(&y.event_id, &y.call_ids)));
            out.push(format!("{refs:?}"));
            out.push(format!(
                "{:?}",
                store.log_records(p, &s.id, Some("e1")).unwrap()
            ));
        }
        for sort in [
            SessionSortKey::StartTime,
            SessionSortKey::Cost,
            SessionSortKey::Events,
            SessionSortKey::Duration,
        ] {
            for descending in [true, false] {
                let query = SessionQuery {
                    sort,
                    descending,
                    limit: 2,
                    ..SessionQuery::default()
                };
                out.push(format!("{:?}", store.query_sessions(p, &query).unwrap()));
                out.push(format!("{:?}", paged(store, p, &query, 2)));
            }
        }
        out.push(format!("{:?}", store.metric_names(p).unwrap()));
        out.push(format!(
            "{:?}",
            store.metric_points(p, "tokens", None, None).unwrap()
        ));
        out.push(format!("{:?}", store.list_agents(p).unwrap()));
        for (from, to) in [
            (None, None),
            (
                Some(at(20, "06:00:00.000000")),
                Some(at(21, "08:00:02.500000")),
            ),
            (Some(at(21, "00:00:00.000000")), None),
        ] {
            out.push(format!(
                "{:?}",
                store.stats(p, from.as_deref(), to.as_deref()).unwrap()
            ));
        }
        out
    };
    let (first, second) = (answers(a, &projects[0]), answers(b, &projects[1]));
    assert_eq!(first.len(), second.len());
    for (x, y) in first.iter().zip(&second) {
        assert_eq!(x, y);
    }
}

/// The list queries that must walk a list index in order (every sort key, both directions,
/// with and without a cursor, with a filter the index does not hold), and that index.
pub fn list_queries_and_their_indexes() -> Vec<(SessionQuery, &'static str)> {
    let after = |key| SessionCursor {
        key,
        id: "s0".into(),
    };
    let mut queries = Vec::new();
    for (sort, key, index) in [
        (
            SessionSortKey::StartTime,
            SortValue::Text("x".into()),
            "sessions_by_start_key",
        ),
        (
            SessionSortKey::Cost,
            SortValue::Real(1.0),
            "sessions_by_cost",
        ),
        (
            SessionSortKey::Events,
            SortValue::Int(1),
            "sessions_by_event_count",
        ),
        (
            SessionSortKey::Duration,
            SortValue::Int(1),
            "sessions_by_duration",
        ),
    ] {
        for descending in [true, false] {
            for cursor in [None, Some(after(key.clone()))] {
                let query = SessionQuery {
                    sort,
                    descending,
                    after: cursor,
                    tags: vec!["prod".into()],
                    ..SessionQuery::default()
                };
                queries.push((query, index));
            }
        }
    }
    queries
}

/// Rows of session `s1` of `project` as a store of payloads in text columns (before packing)
/// held them, the session stored already: text that is not JSON was never written by this
/// server, but reads back all the same (see [`unpacked_rows_read_back`]).
pub fn unpacked_rows_sql(project: &str) -> String {
    format!(
        "INSERT INTO events (project_id, id, session_id, kind, start_time, prompt, completion,
             attributes)
         VALUES ('{project}', 'old', 's1', 'llms', '2026-11-20T10:00:00.000000+00:00',
             '[{{\"role\":\"user\"}}]', 'not json', '{{\"a\":1}}'),
                ('{project}', 'broken', 's1', 'llms', '2026-11-20T10:00:01.000000+00:00',
             NULL, NULL, '{{broken');"
    )
}

/// The rows of [`unpacked_rows_sql`] read back from their text columns: text that is not
/// JSON as a string, broken attributes as null.
pub fn unpacked_rows_read_back(store: &dyn Store, project: &str) -> Vec<EventRow> {
    let detail = store.session_detail(project, "s1").unwrap().unwrap();
    let old = &detail.events[0];
    assert_eq!(old.prompt.as_ref().unwrap().get(), r#"[{"role":"user"}]"#);
    assert_eq!(old.completion.as_ref().unwrap().get(), r#""not json""#);
    assert_eq!(old.attributes.get(), r#"{"a":1}"#);
    assert_eq!(detail.events[1].attributes.get(), "null");
    detail.events
}
