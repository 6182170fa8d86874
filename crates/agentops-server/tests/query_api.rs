//! The query API (`/api/v1`) over real HTTP: filters, sorts, cursor pagination, the event tree,
//! one event in full, agents, stats, the OpenAPI document, and who may read what.

mod common;

use std::collections::HashSet;

use common::{fixture, otlp_json_to_protobuf, temp_dir, TestServer, API_KEY};
use serde_json::{json, Value};

const KEY: (&str, &str) = ("X-Agentops-Api-Key", API_KEY);
/// The session of the OTLP fixture (0.4 SDK): nested spans, one failing tool, an OpenAI call.
const OTLP_SESSION: &str = "4659e1bb-ceab-f528-2f17-204dbc5a6cb5";
const S1: &str = "11111111-1111-4111-8111-111111111111";
const S2: &str = "22222222-2222-4222-8222-222222222222";
const S3: &str = "33333333-3333-4333-8333-333333333333";
const AGENT_ID: &str = "9fb5f955-5fa1-4a13-9dcf-5b1f77b1fb46";
const LLM_EVENT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const ERROR_EVENT: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const FILLERS: usize = 4;

fn create_session(
    server: &TestServer,
    key: (&str, &str),
    id: &str,
    start: &str,
    tags: &[&str],
) -> String {
    // as the 0.3 SDK does: a new session says Indeterminate, with no end time
    let reply = server.post_json(
        "/v2/create_session",
        &[key],
        &json!({"session": {"session_id": id, "init_timestamp": start, "tags": tags,
            "end_state": "Indeterminate", "end_timestamp": null}}),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["jwt"].as_str().unwrap().to_owned()
}

fn post_events(server: &TestServer, jwt: &str, events: Value) {
    let auth = format!("Bearer {jwt}");
    let reply = server.post_json(
        "/v2/create_events",
        &[KEY, ("Authorization", &auth)],
        &json!({ "events": events }),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

fn end_session(server: &TestServer, jwt: &str, id: &str, end: &str, state: &str) {
    let auth = format!("Bearer {jwt}");
    let reply = server.post_json(
        "/v2/update_session",
        &[KEY, ("Authorization", &auth)],
        &json!({"session": {"session_id": id, "end_timestamp": end, "end_state": state,
            "end_state_reason": "done"}}),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// Project A: S1 (Success, 10 s, prod+alpha, gpt-4o, agent "planner"), S2 (Fail, 60 s,
/// dev, claude, an error), S3 (running, prod, "checkout_flow"), the OTLP session, and fillers
/// (two sharing a start time).
fn seeded() -> TestServer {
    let server = TestServer::start();
    let jwt = create_session(
        &server,
        KEY,
        S1,
        "2026-11-20T10:00:00.000000+00:00",
        &["prod", "alpha"],
    );
    let auth = format!("Bearer {jwt}");
    let reply = server.post_json(
        "/v2/create_agent",
        &[KEY, ("Authorization", &auth)],
        &json!({"id": AGENT_ID, "name": "planner"}),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    post_events(
        &server,
        &jwt,
        json!([
            {"id": LLM_EVENT, "event_type": "llms", "init_timestamp": "2026-11-20T10:00:01.000000+00:00",
             "end_timestamp": "2026-11-20T10:00:02.500000+00:00", "params": {"temperature": 0.2},
             "returns": null, "agent_id": AGENT_ID, "prompt": "What is 2+2?", "prompt_tokens": 7,
             "completion": "4", "completion_tokens": 1, "model": "gpt-4o"},
            {"id": "aaaaaaaa-0000-4000-8000-000000000003", "event_type": "tools",
             "init_timestamp": "2026-11-20T10:00:03.000000+00:00",
             "end_timestamp": "2026-11-20T10:00:04.000000+00:00", "params": {"expr": "2+2"},
             "returns": "4", "name": "calculator", "parent_id": LLM_EVENT}
        ]),
    );
    end_session(
        &server,
        &jwt,
        S1,
        "2026-11-20T10:00:10.000000+00:00",
        "Success",
    );

    let jwt = create_session(
        &server,
        KEY,
        S2,
        "2026-11-21T10:00:00.000000+00:00",
        &["dev"],
    );
    post_events(
        &server,
        &jwt,
        json!([
            {"id": "bbbbbbbb-0000-4000-8000-000000000001", "event_type": "llms",
             "init_timestamp": "2026-11-21T10:00:01.000000+00:00",
             "end_timestamp": "2026-11-21T10:00:02.000000+00:00", "prompt": "hi",
             "prompt_tokens": 100, "completion": "hello", "completion_tokens": 50,
             "model": "claude-3-5-sonnet-20241022", "cost": 5.0},
            {"id": ERROR_EVENT, "event_type": "errors", "init_timestamp": "2026-11-21T10:00:03.000000+00:00",
             "trigger_event": "bbbbbbbb-0000-4000-8000-000000000001", "error_type": "ValueError",
             "details": "bad value"}
        ]),
    );
    end_session(
        &server,
        &jwt,
        S2,
        "2026-11-21T10:01:00.000000+00:00",
        "Fail",
    );

    let jwt = create_session(
        &server,
        KEY,
        S3,
        "2026-11-22T10:00:00.000000+00:00",
        &["prod"],
    );
    post_events(
        &server,
        &jwt,
        json!([{"id": "cccccccc-0000-4000-8000-000000000001", "event_type": "actions",
            "init_timestamp": "2026-11-22T10:00:01.000000+00:00", "action_type": "checkout_flow",
            "name": "checkout_flow", "params": {}, "returns": null}]),
    );

    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    let reply = server.post(
        "/v1/traces",
        &[KEY, ("Content-Type", "application/x-protobuf")],
        otlp_json_to_protobuf(&otlp),
    );
    assert_eq!(reply.status, 200);

    for i in 0..FILLERS {
        // fillers 0 and 1 share a start time: their order is decided by id
        let start = format!("2026-11-19T0{}:00:00.000000+00:00", i / 2 * 2);
        let id = format!("f0000000-0000-4000-8000-00000000000{i}");
        let jwt = create_session(&server, KEY, &id, &start, &["filler"]);
        end_session(
            &server,
            &jwt,
            &id,
            &format!("2026-11-19T0{}:00:0{}.000000+00:00", i / 2 * 2, i + 1),
            "Indeterminate",
        );
    }
    server
}

fn list(server: &TestServer, query: &str) -> Value {
    let reply = server.get(&format!("/api/v1/sessions?{query}"), &[KEY]);
    assert_eq!(
        reply.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn ids(server: &TestServer, query: &str) -> Vec<String> {
    list(server, query)["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn set(ids: &[String]) -> HashSet<&str> {
    ids.iter().map(String::as_str).collect()
}

const TOTAL: usize = 4 + FILLERS;

#[test]
fn filters_select_the_right_sessions_and_empty_matches_are_empty_lists() {
    let server = seeded();
    let all = ids(&server, "limit=1000");
    assert_eq!(all.len(), TOTAL);
    assert_eq!(all[0], S3, "newest first");
    let first = &list(&server, "limit=1000")["sessions"][0];
    for field in [
        "id",
        "name",
        "start_time",
        "end_time",
        "end_state",
        "end_state_reason",
        "tags",
        "event_count",
        "input_tokens",
        "output_tokens",
        "cost",
        "error_count",
        "has_errors",
        "duration_ms",
    ] {
        assert!(first.get(field).is_some(), "list rows carry {field}");
    }

    let check = |query: &str, expected: &[&str]| {
        let got = ids(&server, query);
        assert_eq!(
            set(&got),
            expected.iter().copied().collect::<HashSet<_>>(),
            "{query}"
        );
    };
    check("from=2026-11-21T00:00:00Z", &[S2, S3, OTLP_SESSION]);
    check("to=2026-11-21T00:00:00Z&tag=prod", &[S1]);
    check(
        "from=2026-11-21T00:00:00Z&to=2026-11-22T02:00:00%2B00:00",
        &[S2, OTLP_SESSION],
    );
    check("tag=prod", &[S1, S3]);
    check("tag=prod,alpha", &[S1]);
    check("tag=prod&tag=alpha", &[S1]);
    check("end_state=Fail", &[S2]);
    check("end_state=Success", &[S1, OTLP_SESSION]);
    check("end_state=running", &[S3]);
    // each row's state is the rule the filter uses
    let all = server.get("/api/v1/sessions", &[KEY]).json();
    for row in all["sessions"].as_array().unwrap() {
        let expected = match (row["id"].as_str().unwrap(), row["end_state"].as_str()) {
            (S3, _) => "Running",
            (_, Some(ended)) => ended,
            (_, None) => "Indeterminate",
        };
        assert_eq!(row["state"], expected, "{row}");
    }
    check(
        "end_state=Indeterminate&tag=filler",
        &[
            "f0000000-0000-4000-8000-000000000000",
            "f0000000-0000-4000-8000-000000000001",
            "f0000000-0000-4000-8000-000000000002",
            "f0000000-0000-4000-8000-000000000003",
        ],
    );
    check("agent=planner", &[S1]);
    check(&format!("agent={AGENT_ID}"), &[S1]);
    check("model=gpt-4o", &[S1]);
    check("model=gpt-4o-mini", &[OTLP_SESSION]);
    check("model=claude-3-5-sonnet-20241022", &[S2]);
    let with_errors = ids(&server, "has_errors=true");
    assert!(set(&with_errors).contains(S2) && !set(&with_errors).contains(S1));
    let without = ids(&server, "has_errors=false");
    assert_eq!(with_errors.len() + without.len(), TOTAL);
    check("q=checkout", &[S3]);
    check("q=ALPHA", &[S1]);
    check("q=calculator", &[S1, OTLP_SESSION]);
    check("tag=prod&has_errors=true", &[]);

    // filters that match nothing: an empty page, not an error
    for query in [
        "tag=nope",
        "model=nope",
        "agent=nobody",
        "q=%25%25nothing",
        "from=2030-01-01T00:00:00Z",
        "end_state=Fail&tag=prod",
    ] {
        let page = list(&server, query);
        assert_eq!(page["sessions"], json!([]), "{query}");
        assert_eq!(page["next_cursor"], Value::Null, "{query}");
    }
}

#[test]
fn sorts_order_by_their_key_with_ties_broken_by_id() {
    let server = seeded();
    let rows = |sort: &str| {
        list(&server, &format!("sort={sort}&limit=1000"))["sessions"]
            .as_array()
            .unwrap()
            .clone()
    };
    let key = |row: &Value, field: &str| -> f64 {
        match field {
            "duration_ms" => row[field].as_f64().unwrap_or(-1.0),
            _ => row[field].as_f64().unwrap(),
        }
    };
    for (sort, field) in [
        ("cost", "cost"),
        ("duration", "duration_ms"),
        ("events", "event_count"),
    ] {
        for descending in [false, true] {
            let name = if descending {
                format!("-{sort}")
            } else {
                sort.to_owned()
            };
            let got = rows(&name);
            assert_eq!(got.len(), TOTAL);
            for pair in got.windows(2) {
                let (a, b) = (key(&pair[0], field), key(&pair[1], field));
                let (ia, ib) = (
                    pair[0]["id"].as_str().unwrap(),
                    pair[1]["id"].as_str().unwrap(),
                );
                if descending {
                    assert!(
                        a > b || (a == b && ia > ib),
                        "{name}: {a} {ia} then {b} {ib}"
                    );
                } else {
                    assert!(
                        a < b || (a == b && ia < ib),
                        "{name}: {a} {ia} then {b} {ib}"
                    );
                }
            }
        }
    }
    assert_eq!(rows("-cost")[0]["id"], S2);
    assert_eq!(rows("-duration")[0]["id"], S2);
    assert_eq!(rows("-duration")[0]["duration_ms"], 60_000);
    let oldest = rows("start_time");
    assert_eq!(oldest[0]["id"], "f0000000-0000-4000-8000-000000000000");
    assert_eq!(oldest[1]["id"], "f0000000-0000-4000-8000-000000000001");
    let newest: Vec<Value> = rows("-start_time").into_iter().rev().collect();
    assert_eq!(newest, oldest);
}

/// Walks every page of `query` with `limit`; returns the ids and the number of pages.
fn walk(server: &TestServer, query: &str, limit: usize) -> (Vec<String>, usize) {
    let mut cursor: Option<String> = None;
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let mut q = format!("{query}&limit={limit}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page = list(server, &q);
        pages += 1;
        assert!(pages <= 100, "pagination does not end");
        for s in page["sessions"].as_array().unwrap() {
            out.push(s["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert!(!page["sessions"].as_array().unwrap().is_empty());
                cursor = Some(c.to_owned());
            }
            None => return (out, pages),
        }
    }
}

#[test]
fn cursor_pagination_walks_everything_once_and_is_stable_under_inserts() {
    let server = seeded();
    for sort in [
        "-start_time",
        "start_time",
        "cost",
        "-cost",
        "duration",
        "-duration",
        "events",
        "-events",
    ] {
        let whole = ids(&server, &format!("sort={sort}&limit=1000"));
        for limit in [1, 2, 3, TOTAL, TOTAL + 1] {
            let (walked, pages) = walk(&server, &format!("sort={sort}"), limit);
            assert_eq!(walked, whole, "sort={sort} limit={limit}");
            assert_eq!(
                pages,
                TOTAL.div_ceil(limit),
                "sort={sort} limit={limit}: pages"
            );
        }
    }
    // exactly one full page: no next cursor
    assert_eq!(
        list(&server, &format!("limit={TOTAL}"))["next_cursor"],
        Value::Null
    );
    // with a filter
    let (walked, _) = walk(&server, "tag=prod", 1);
    assert_eq!(walked, [S3, S1]);

    // a session inserted between pages (newer than the cursor) neither repeats nor shifts rows
    let first = list(&server, "limit=2");
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    create_session(
        &server,
        KEY,
        "99999999-9999-4999-8999-999999999999",
        "2026-12-01T00:00:00.000000+00:00",
        &[],
    );
    let rest = ids(&server, &format!("limit=1000&cursor={cursor}"));
    let mut seen: Vec<String> = first["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    seen.extend(rest);
    let before: Vec<String> = ids(&server, "limit=1000").into_iter().skip(1).collect();
    assert_eq!(seen, before);

    // tampered cursors
    let mut tampered = cursor.clone();
    tampered.insert(3, '!');
    for bad in [tampered.as_str(), "e30", "WyIxIiwiMiJd", "not a cursor"] {
        let message = server
            .get(
                &format!("/api/v1/sessions?cursor={}", bad.replace(' ', "%20")),
                &[KEY],
            )
            .error(400);
        assert!(message.contains("cursor"), "{message}");
    }
    // a cursor made for another order
    let message = server
        .get(
            &format!("/api/v1/sessions?sort=cost&cursor={cursor}"),
            &[KEY],
        )
        .error(400);
    assert!(message.contains("cursor"), "{message}");
}

#[test]
fn bad_parameters_get_400_naming_them() {
    let server = seeded();
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=lots", "limit"),
        ("sort=name", "sort"),
        ("sort=", "sort"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z", "from"),
        ("end_state=done", "end_state"),
        ("has_errors=maybe", "has_errors"),
        ("tag=", "tag"),
        ("q=", "q"),
        ("model=", "model"),
        ("limit=1&limit=2", "limit"),
        ("colour=red", "colour"),
    ] {
        let message = server
            .get(&format!("/api/v1/sessions?{query}"), &[KEY])
            .error(400);
        assert!(message.contains(name), "{query}: {message}");
    }
    for (query, name) in [("from=nope", "from"), ("bucket=day", "bucket")] {
        let message = server
            .get(&format!("/api/v1/stats?{query}"), &[KEY])
            .error(400);
        assert!(message.contains(name), "{query}: {message}");
    }
    let message = server.get("/api/v1/agents?limit=1", &[KEY]).error(400);
    assert!(message.contains("limit"), "{message}");
}

#[test]
fn session_detail_has_an_event_tree_and_events_can_be_read_in_full() {
    let server = seeded();
    let detail = server.session(S2);
    assert_eq!(detail["end_state"], "Fail");
    assert_eq!(detail["state"], "Fail");
    assert_eq!(detail["duration_ms"], 60_000);
    assert_eq!(detail["has_errors"], true);
    assert_eq!(detail["error_count"], 1);
    assert_eq!(detail["events"].as_array().unwrap().len(), 2);
    let tree = detail["event_tree"].as_array().unwrap();
    assert_eq!(tree.len(), 2);
    assert_eq!(tree[0]["depth"], 0);
    assert_eq!(tree[0]["children"], json!([ERROR_EVENT]));
    assert_eq!(tree[0]["duration_ms"], 1000.0);
    assert_eq!(tree[0]["input_tokens"], 100);
    assert_eq!(tree[0]["cost"], 5.0);
    assert_eq!(tree[1]["id"], ERROR_EVENT);
    assert_eq!(tree[1]["depth"], 1);
    assert_eq!(tree[1]["parent_id"], "bbbbbbbb-0000-4000-8000-000000000001");
    // the error event failed, by the rule the error count uses; the LLM call did not
    assert_eq!(
        (tree[0]["failed"].clone(), tree[1]["failed"].clone()),
        (json!(false), json!(true))
    );
    let flat: Vec<(&str, bool)> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["failed"].as_bool().unwrap()))
        .collect();
    assert!(flat.contains(&(ERROR_EVENT, true)), "{flat:?}");
    assert_eq!(flat.iter().filter(|(_, failed)| *failed).count(), 1);
    assert!(
        tree[0].get("prompt").is_none(),
        "the tree leaves payloads out"
    );

    // only the tree, or neither
    let reply = server.get(&format!("/api/v1/sessions/{S2}?events=tree"), &[KEY]);
    assert_eq!(reply.status, 200);
    let small = reply.json();
    assert!(small.get("events").is_none());
    assert_eq!(small["event_tree"], detail["event_tree"]);
    assert_eq!(small["duration_ms"], 60_000);
    let bare = server
        .get(&format!("/api/v1/sessions/{S2}?events=none"), &[KEY])
        .json();
    assert!(bare.get("events").is_none() && bare.get("event_tree").is_none());
    assert_eq!(bare["id"], S2);
    for query in ["events=all", "limit=3"] {
        let message = server
            .get(&format!("/api/v1/sessions/{S2}?{query}"), &[KEY])
            .error(400);
        assert!(
            message.contains(query.split('=').next().unwrap()),
            "{message}"
        );
    }

    // OTLP spans nest by span parenthood
    let detail = server.session(OTLP_SESSION);
    let tree = detail["event_tree"].as_array().unwrap();
    assert!(
        tree.iter()
            .any(|n| n["failed"] == true && n["status"] == "error"),
        "a span with ERROR status failed: {tree:?}"
    );
    assert_eq!(tree.len(), detail["events"].as_array().unwrap().len());
    assert!(
        tree.iter().any(|n| n["depth"].as_u64() >= Some(2)),
        "{tree:?}"
    );
    assert_eq!(detail["has_errors"], true);

    // one event in full
    let reply = server.get(&format!("/api/v1/sessions/{S1}/events/{LLM_EVENT}"), &[KEY]);
    assert_eq!(reply.status, 200);
    let event = reply.json();
    assert_eq!(event["id"], LLM_EVENT);
    assert_eq!(event["kind"], "llms");
    assert_eq!(event["prompt"], "What is 2+2?");
    assert_eq!(event["completion"], "4");
    assert_eq!(event["params"]["temperature"], 0.2);
    assert_eq!(event["model"], "gpt-4o");
    assert_eq!(event["agent_id"], AGENT_ID);
    assert_eq!(event["duration_ms"], 1500.0);
    assert!(event["cost"].as_f64().unwrap() > 0.0);
    let reply = server.get(
        &format!("/api/v1/sessions/{S1}/events/aaaaaaaa-0000-4000-8000-000000000003"),
        &[KEY],
    );
    assert_eq!(reply.json()["returns"], "4");
    // the event exists, but in another session
    server
        .get(&format!("/api/v1/sessions/{S2}/events/{LLM_EVENT}"), &[KEY])
        .error(404);
    server
        .get(&format!("/api/v1/sessions/{S1}/events/nope"), &[KEY])
        .error(404);
}

#[test]
fn agents_and_stats() {
    let server = seeded();
    let reply = server.get("/api/v1/agents", &[KEY]);
    assert_eq!(reply.status, 200);
    let agents = reply.json()["agents"].as_array().unwrap().clone();
    let planner = agents
        .iter()
        .find(|a| a["id"] == AGENT_ID)
        .expect("the registered agent");
    assert_eq!(planner["name"], "planner");
    assert_eq!(planner["session_count"], 1);

    let stats = server.get("/api/v1/stats", &[KEY]).json();
    assert_eq!(stats["sessions"], TOTAL as u64);
    assert!(stats["sessions_with_errors"].as_i64().unwrap() >= 1);
    let rate = stats["error_rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate < 1.0, "{rate}");
    let days = stats["days"].as_array().unwrap();
    let day = |date: &str| {
        days.iter()
            .find(|d| d["date"] == date)
            .cloned()
            .unwrap_or_else(|| panic!("{date} in {days:?}"))
    };
    assert_eq!(day("2026-11-21")["sessions"], 1);
    assert_eq!(day("2026-11-21")["events"], 2);
    assert_eq!(day("2026-11-21")["error_events"], 1);
    assert_eq!(day("2026-11-21")["input_tokens"], 100);
    assert_eq!(day("2026-11-21")["cost"], 5.0);
    assert_eq!(day("2026-11-19")["sessions"], FILLERS as u64);
    let models = stats["models"].as_array().unwrap();
    let claude = models
        .iter()
        .find(|m| m["model"] == "claude-3-5-sonnet-20241022")
        .unwrap();
    assert_eq!(claude["calls"], 1);
    assert_eq!(claude["output_tokens"], 50);
    assert!(models.iter().any(|m| m["model"] == "gpt-4o-mini"));
    // durations: fillers 0..3 s, S1 10 s, S2 60 s (+ the OTLP session if ended)
    let durations = &stats["duration_ms"];
    assert!(durations["count"].as_u64().unwrap() >= 6);
    assert!(durations["p50"].as_i64().unwrap() <= durations["p90"].as_i64().unwrap());
    assert_eq!(durations["p99"], 60_000);

    let day_only = server
        .get(
            "/api/v1/stats?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
            &[KEY],
        )
        .json();
    assert_eq!(day_only["sessions"], 1);
    assert_eq!(day_only["events"], 2);
    assert_eq!(day_only["error_rate"], 1.0);
    assert_eq!(day_only["duration_ms"]["p50"], 60_000);
    // whole hours are answered from the hourly totals, partial hours from the events: they
    // agree
    let finer = server
        .get(
            "/api/v1/stats?from=2026-11-21T00:00:00.5Z&to=2026-11-21T23:59:59Z",
            &[KEY],
        )
        .json();
    assert_eq!(finer["days"], day_only["days"]);
    assert_eq!(finer["models"], day_only["models"]);
    let all_events = server
        .get("/api/v1/stats?from=2000-01-01T00:00:00.5Z", &[KEY])
        .json();
    assert_eq!(all_events["days"], stats["days"]);
    assert_eq!(all_events["models"], stats["models"]);
    let empty = server
        .get("/api/v1/stats?from=2030-01-01T00:00:00Z", &[KEY])
        .json();
    assert_eq!(empty["sessions"], 0);
    assert_eq!(empty["error_rate"], 0.0);
    assert_eq!(empty["duration_ms"]["p50"], Value::Null);
    assert_eq!(empty["days"], json!([]));
}

#[test]
fn credentials_are_required_and_projects_stay_apart() {
    let server = seeded();
    // no credentials
    for path in [
        "/api/v1/sessions",
        &format!("/api/v1/sessions/{S1}"),
        &format!("/api/v1/sessions/{S1}/events/{LLM_EVENT}"),
        "/api/v1/agents",
        "/api/v1/stats",
    ] {
        server.get(path, &[]).error(401);
        server
            .get(path, &[("Authorization", "Bearer not.a.token")])
            .error(401);
    }
    server
        .post("/api/v1/auth/dashboard-token", &[], "")
        .error(401);

    // another project's ids are 404, its lists are its own
    let (_b, key_b) = server.server().create_project("b").unwrap();
    let kb = ("X-Agentops-Api-Key", key_b.as_str());
    let b_session = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
    let jwt_b = create_session(
        &server,
        kb,
        b_session,
        "2026-11-22T11:00:00.000000+00:00",
        &["prod"],
    );
    let auth_b = format!("Bearer {jwt_b}");
    let reply = server.post_json(
        "/v2/create_events",
        &[kb, ("Authorization", &auth_b)],
        &json!({"events": [{"id": "bbbbbbbb-eeee-4eee-8eee-000000000001", "event_type": "actions",
            "init_timestamp": "2026-11-22T11:00:01.000000+00:00", "params": {}, "returns": null}]}),
    );
    assert_eq!(reply.status, 200);
    server
        .get(&format!("/api/v1/sessions/{b_session}"), &[KEY])
        .error(404);
    server
        .get(
            &format!("/api/v1/sessions/{b_session}/events/bbbbbbbb-eeee-4eee-8eee-000000000001"),
            &[KEY],
        )
        .error(404);
    server
        .get(&format!("/api/v1/sessions/{S1}"), &[kb])
        .error(404);
    server
        .get(&format!("/api/v1/sessions/{S1}/events/{LLM_EVENT}"), &[kb])
        .error(404);
    assert_eq!(
        server
            .get(
                &format!(
                    "/api/v1/sessions/{b_session}/events/bbbbbbbb-eeee-4eee-8eee-000000000001"
                ),
                &[kb]
            )
            .status,
        200
    );
    assert!(!ids(&server, "limit=1000").contains(&b_session.to_owned()));
    let b_list = server.get("/api/v1/sessions?tag=prod", &[kb]).json();
    assert_eq!(b_list["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(server.get("/api/v1/stats", &[kb]).json()["sessions"], 1);
    assert_eq!(
        server.get("/api/v1/agents", &[kb]).json()["agents"],
        json!([])
    );

    // a session token reads its own session (and its events) only
    server.get(
        &format!("/api/v1/sessions/{b_session}/events/bbbbbbbb-eeee-4eee-8eee-000000000001"),
        &[("Authorization", &auth_b)],
    );
    assert_eq!(
        server
            .get(
                &format!("/api/v1/sessions/{b_session}"),
                &[("Authorization", &auth_b)]
            )
            .status,
        200
    );
    server
        .get(
            &format!("/api/v1/sessions/{S1}"),
            &[("Authorization", &auth_b)],
        )
        .error(403);
    for path in ["/api/v1/sessions", "/api/v1/agents", "/api/v1/stats"] {
        server.get(path, &[("Authorization", &auth_b)]).error(403);
    }

    // a dashboard token: from an API key, project-scoped, read-only
    let reply = server.post("/api/v1/auth/dashboard-token", &[KEY], "");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let token = reply.json();
    assert!(token["expires_in"].as_i64().unwrap() <= 3600);
    assert_eq!(token["project_id"], server.server().project_id());
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    assert_eq!(ids_with(&server, &bearer).len(), TOTAL);
    assert_eq!(
        server
            .get(
                &format!("/api/v1/sessions/{S1}"),
                &[("Authorization", &bearer)]
            )
            .status,
        200
    );
    server
        .get(
            &format!("/api/v1/sessions/{b_session}"),
            &[("Authorization", &bearer)],
        )
        .error(404);
    // not a write credential
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    server
        .post(
            "/v1/traces",
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            otlp.to_string(),
        )
        .error(401);
    // an expired dashboard token says so; a session-token secret cannot forge one
    let secret = server.jwt_secret();
    let keys = agentops_server::auth::JwtKeys::new(secret, 3600);
    let expired = keys
        .derive(agentops_server::auth::DASHBOARD_KEY_LABEL, 60)
        .sign(&agentops_server::auth::Claims {
            sub: "dashboard".into(),
            project_id: server.server().project_id().into(),
            exp: 1,
            iat: 0,
            key: None,
        });
    let message = server
        .get(
            "/api/v1/sessions",
            &[("Authorization", &format!("Bearer {expired}"))],
        )
        .error(401);
    assert!(message.contains("expired"), "{message}");
    let main_signed = keys.issue("dashboard", server.server().project_id(), API_KEY);
    server
        .get(
            "/api/v1/sessions",
            &[("Authorization", &format!("Bearer {main_signed}"))],
        )
        .error(401);
    // from a JSON body too; bad keys refused
    let reply = server.post_json(
        "/api/v1/auth/dashboard-token",
        &[],
        &json!({"api_key": key_b}),
    );
    assert_eq!(reply.status, 200);
    assert_ne!(reply.json()["project_id"], server.server().project_id());
    server
        .post_json(
            "/api/v1/auth/dashboard-token",
            &[],
            &json!({"api_key": "00000000-0000-4000-8000-000000000000"}),
        )
        .error(401);
    server
        .post_json("/api/v1/auth/dashboard-token", &[], &json!({"key": 1}))
        .error(400);
    // a project token (/v3/auth/token) works too
    let project_token = server
        .post_json("/v3/auth/token", &[], &json!({"api_key": API_KEY}))
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ids_with(&server, &format!("Bearer {project_token}")).len(),
        TOTAL
    );
}

fn ids_with(server: &TestServer, authorization: &str) -> Vec<Value> {
    let reply = server.get(
        "/api/v1/sessions?limit=1000",
        &[("Authorization", authorization)],
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["sessions"].as_array().unwrap().clone()
}

#[test]
fn open_read_access_works_on_loopback_only() {
    let server = TestServer::start_in(temp_dir(), |c| c.open_read_access = true);
    create_session(&server, KEY, S1, "2026-11-20T10:00:00.000000+00:00", &[]);
    let reply = server.get("/api/v1/sessions", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["sessions"][0]["id"], S1);
    assert_eq!(
        server.get(&format!("/api/v1/sessions/{S1}"), &[]).status,
        200
    );
    assert_eq!(server.get("/api/v1/stats", &[]).status, 200);
    // credentials, when sent, are still checked
    server
        .get(
            "/api/v1/sessions",
            &[("X-Agentops-Api-Key", "00000000-0000-4000-8000-000000000000")],
        )
        .error(401);
    // writes still need credentials
    server
        .post_json(
            "/v2/create_session",
            &[],
            &json!({"session": {"session_id": S2}}),
        )
        .error(401);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = temp_dir();
    let mut config = agentops_server::Config::new(&dir);
    config.listen = "0.0.0.0:0".parse().unwrap();
    config.open_read_access = true;
    let err = runtime
        .block_on(agentops_server::Server::start(config))
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    std::fs::remove_dir_all(dir).ok();

    // off by default
    let closed = TestServer::start();
    closed.get("/api/v1/sessions", &[]).error(401);
}

#[test]
fn the_openapi_document_describes_every_endpoint_and_they_all_answer() {
    let server = seeded();
    let reply = server.get("/api/v1/openapi.json", &[]);
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 7);
    for (path, item) in paths {
        let concrete = path.replace("{id}", S1).replace("{event_id}", LLM_EVENT);
        for method in item.as_object().unwrap().keys() {
            let reply = match method.as_str() {
                "get" => server.get(&concrete, &[KEY]),
                "post" => server.post(&concrete, &[KEY], ""),
                other => panic!("unexpected method {other}"),
            };
            assert_eq!(
                reply.status,
                200,
                "{method} {concrete}: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
        // every parameter named in the document is accepted
        if let Some(params) = item["get"]["parameters"].as_array() {
            for p in params.iter().filter(|p| p["in"] == "query") {
                assert!(p["schema"].is_object(), "{path} {}", p["name"]);
            }
        }
    }
}

fn detail_since(server: &TestServer, id: &str, query: &str) -> Value {
    let reply = server.get(&format!("/api/v1/sessions/{id}?{query}"), &[KEY]);
    assert_eq!(
        reply.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn event_ids(answer: &Value, field: &str) -> Vec<String> {
    answer[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} in {answer}"))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_live_view_gets_only_what_was_stored_after_its_cursor() {
    use base64::Engine as _;
    let server = TestServer::start();
    let session = "44444444-4444-4444-8444-444444444444";
    let first = "cccccccc-0000-4000-8000-000000000001";
    let second = "cccccccc-0000-4000-8000-000000000002";
    let jwt = create_session(
        &server,
        KEY,
        session,
        "2026-11-20T10:00:00.000000+00:00",
        &[],
    );
    post_events(
        &server,
        &jwt,
        json!([{"id": first, "event_type": "actions", "action_type": "plan",
            "init_timestamp": "2026-11-20T10:00:01.000000+00:00",
            "end_timestamp": "2026-11-20T10:00:02.000000+00:00"}]),
    );

    // the first answer is whole and hands out a cursor
    let whole = detail_since(&server, session, "events=tree");
    assert_eq!(whole["delta"], false);
    assert_eq!(event_ids(&whole, "event_tree"), [first]);
    let cursor = whole["cursor"].as_str().unwrap().to_owned();

    // nothing stored since: a delta with nothing in it, and the same cursor
    let same = detail_since(&server, session, &format!("events=tree&since={cursor}"));
    assert_eq!(same["delta"], true);
    assert!(same.get("events").is_none() && same.get("event_tree").is_none());
    assert_eq!(same["cursor"], cursor.as_str());
    assert_eq!(same["event_count"], 1);

    // a new event: only it in full, every event's outline, a new cursor
    post_events(
        &server,
        &jwt,
        json!([{"id": second, "event_type": "llms", "parent_id": first,
            "init_timestamp": "2026-11-20T10:00:01.500000+00:00",
            "end_timestamp": "2026-11-20T10:00:01.900000+00:00",
            "prompt": "Plan the trip", "completion": "Go by train", "model": "gpt-4o"}]),
    );
    let delta = detail_since(&server, session, &format!("events=full&since={cursor}"));
    assert_eq!(delta["delta"], true);
    assert_eq!(event_ids(&delta, "events"), [second]);
    assert_eq!(delta["events"][0]["prompt"], "Plan the trip");
    assert_eq!(event_ids(&delta, "event_tree"), [first, second]);
    assert_eq!(delta["event_tree"][1]["parent_id"], first);
    assert_eq!(delta["event_tree"][1]["depth"], 1);
    assert_eq!(delta["event_count"], 2);
    let next = delta["cursor"].as_str().unwrap().to_owned();
    assert_ne!(next, cursor);
    // as tree nodes with events=tree
    let nodes = detail_since(&server, session, &format!("events=tree&since={cursor}"));
    assert_eq!(event_ids(&nodes, "events"), [second]);
    assert!(nodes["events"][0].get("prompt").is_none());

    // the end shows in the next delta, with no events
    end_session(
        &server,
        &jwt,
        session,
        "2026-11-20T10:00:05.000000+00:00",
        "Success",
    );
    let ended = detail_since(&server, session, &format!("events=tree&since={next}"));
    assert_eq!(
        (ended["delta"].clone(), ended["end_state"].clone()),
        (json!(true), json!("Success"))
    );
    assert!(ended.get("events").is_none());

    // a cursor that no longer matches what is stored gets the whole session back
    let stale =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"["s1",[999999,7,0,0,0,0]]"#);
    let again = detail_since(&server, session, &format!("events=tree&since={stale}"));
    assert_eq!(again["delta"], false);
    assert_eq!(event_ids(&again, "event_tree"), [first, second]);

    // one that is not a cursor is a 400 naming since
    for bad in ["garbage", "eyJ4IjoxfQ"] {
        let message = server
            .get(&format!("/api/v1/sessions/{session}?since={bad}"), &[KEY])
            .error(400);
        assert!(message.contains("since"), "{bad}: {message}");
    }
}
