//! Bad input, authentication, cross-project isolation, gzip, restarts: each refused request gets
//! its status and a JSON error, and leaves the store unchanged.

mod common;

use agentops_server::auth::{Claims, JwtKeys};
use common::{fixture, gzip, otlp_json_to_protobuf, temp_dir, TestServer, API_KEY, MAX_BODY};
use serde_json::{json, Value};

const V03_SESSION: &str = "ec025968-28a1-40dc-a031-44309d8be760";
const V04_SESSION: &str = "4659e1bb-ceab-f528-2f17-204dbc5a6cb5";

/// A server holding the v03 session with its events, and the session's JWT.
fn seeded() -> (TestServer, String) {
    let server = TestServer::start();
    let reply = server.post_json(
        "/v2/create_session",
        &[("X-Agentops-Api-Key", API_KEY)],
        &fixture("v03_v2_create_session.json")["body"],
    );
    assert_eq!(reply.status, 200);
    let jwt = reply.json()["jwt"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {jwt}");
    let reply = server.post_json(
        "/v2/create_events",
        &[("X-Agentops-Api-Key", API_KEY), ("Authorization", &auth)],
        &fixture("v03_v2_create_events.json")["body"],
    );
    assert_eq!(reply.status, 200);
    (server, jwt)
}

fn one_event(id: &str, init: &str) -> Value {
    json!({"events": [{"id": id, "event_type": "actions", "init_timestamp": init,
        "end_timestamp": init, "params": {}, "returns": null,
        "session_id": V03_SESSION, "action_type": "x"}]})
}

#[test]
fn bad_requests_are_refused_with_json_errors_and_change_nothing() {
    let (server, jwt) = seeded();
    let auth = format!("Bearer {jwt}");
    let key = ("X-Agentops-Api-Key", API_KEY);
    let bearer = ("Authorization", auth.as_str());
    let json_type = ("Content-Type", "application/json");
    let before = server.snapshot();

    // malformed JSON
    server
        .post(
            "/v2/create_events",
            &[key, bearer, json_type],
            "{\"events\": [",
        )
        .error(400);
    // wrong shape
    server
        .post(
            "/v2/create_events",
            &[key, bearer, json_type],
            "{\"events\": 3}",
        )
        .error(400);
    // a bad id or timestamp names the field
    let msg = server
        .post_json(
            "/v2/create_events",
            &[key, bearer],
            &one_event("not-a-uuid", "2026-11-22T01:30:22.776840+00:00"),
        )
        .error(400);
    assert!(msg.contains("events[0].id"), "{msg}");
    let msg = server
        .post_json(
            "/v2/create_events",
            &[key, bearer],
            &one_event("0d5b7c1e-55a4-4e5e-8f1e-111111111111", "last tuesday"),
        )
        .error(400);
    assert!(msg.contains("events[0].init_timestamp"), "{msg}");
    // one bad event refuses the whole batch
    let mut batch = fixture("v03_v2_create_events.json")["body"].clone();
    batch["events"][24]["end_timestamp"] = json!("never");
    batch["events"][0]["id"] = json!("0d5b7c1e-55a4-4e5e-8f1e-222222222222");
    let msg = server
        .post_json("/v2/create_events", &[key, bearer], &batch)
        .error(400);
    assert!(msg.contains("events[24].end_timestamp"), "{msg}");
    let mut bad_session = fixture("v03_v2_create_session.json")["body"].clone();
    bad_session["session"]["session_id"] = json!("abc");
    let msg = server
        .post_json("/v2/create_session", &[key], &bad_session)
        .error(400);
    assert!(msg.contains("session.session_id"), "{msg}");
    bad_session["session"]["session_id"] = json!("7d4b7c1e-55a4-4e5e-8f1e-333333333333");
    bad_session["session"]["init_timestamp"] = json!("2026-13-45");
    let msg = server
        .post_json("/v2/create_session", &[key], &bad_session)
        .error(400);
    assert!(msg.contains("session.init_timestamp"), "{msg}");

    // wrong content type / encoding
    server
        .post(
            "/v2/create_events",
            &[key, bearer, ("Content-Type", "text/plain")],
            "{}",
        )
        .error(415);
    server
        .post("/v1/traces", &[bearer, ("Content-Type", "text/plain")], "x")
        .error(415);
    server
        .post(
            "/v2/create_events",
            &[key, bearer, json_type, ("Content-Encoding", "br")],
            "{}",
        )
        .error(415);
    // corrupt gzip
    server
        .post(
            "/v2/create_events",
            &[key, bearer, json_type, ("Content-Encoding", "gzip")],
            "not gzip",
        )
        .error(400);

    // OTLP: malformed protobuf and JSON
    let token = server
        .post_json("/v3/auth/token", &[], &json!({"api_key": API_KEY}))
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let project_auth = format!("Bearer {token}");
    let pauth = ("Authorization", project_auth.as_str());
    server
        .post(
            "/v1/traces",
            &[pauth, ("Content-Type", "application/x-protobuf")],
            b"\x0a\xff\xff\xff\xff\x0f",
        )
        .error(400);
    server
        .post("/v1/traces", &[pauth, json_type], "{\"resourceSpans\": {}}")
        .error(400);

    // too large, plain and as a gzip bomb (small on the wire, huge once inflated)
    let big = vec![b' '; MAX_BODY + 1];
    server
        .post("/v2/create_events", &[key, bearer, json_type], &big)
        .error(413);
    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    assert!(bomb.len() < MAX_BODY / 2);
    let msg = server
        .post(
            "/v1/traces",
            &[pauth, json_type, ("Content-Encoding", "gzip")],
            &bomb,
        )
        .error(413);
    assert!(msg.contains("larger than"), "{msg}");

    // authentication
    let events = fixture("v03_v2_create_events.json")["body"].clone();
    server
        .post_json("/v2/create_events", &[key], &events)
        .error(401);
    server
        .post_json(
            "/v2/create_events",
            &[key, ("Authorization", "Bearer nope")],
            &events,
        )
        .error(401);
    let forged =
        JwtKeys::new(vec![1; 32], 3600).issue(V03_SESSION, server.server().project_id(), API_KEY);
    let forged = format!("Bearer {forged}");
    server
        .post_json(
            "/v2/create_events",
            &[key, ("Authorization", &forged)],
            &events,
        )
        .error(401);
    let secret = server.jwt_secret();
    let expired = JwtKeys::new(secret, 3600).sign(&Claims {
        sub: V03_SESSION.into(),
        project_id: server.server().project_id().into(),
        exp: 1_000,
        iat: 0,
        key: None,
    });
    let expired = format!("Bearer {expired}");
    let msg = server
        .post_json(
            "/v2/create_events",
            &[key, ("Authorization", &expired)],
            &events,
        )
        .error(401);
    assert!(msg.contains("expired"), "{msg}");
    server
        .post_json(
            "/v2/create_session",
            &[],
            &fixture("v03_v2_create_session.json")["body"],
        )
        .error(401);
    server
        .post_json(
            "/v2/create_session",
            &[("X-Agentops-Api-Key", "not-a-uuid")],
            &fixture("v03_v2_create_session.json")["body"],
        )
        .error(401);
    server
        .post_json(
            "/v2/create_session",
            &[("X-Agentops-Api-Key", "00000000-0000-4000-8000-000000000000")],
            &fixture("v03_v2_create_session.json")["body"],
        )
        .error(401);
    server
        .post_json(
            "/v3/auth/token",
            &[],
            &json!({"api_key": "00000000-0000-4000-8000-000000000000"}),
        )
        .error(401);
    // Spans without credentials are held for their trace (202), not stored.
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    let held = server.post(
        "/v1/traces",
        &[("Content-Type", "application/x-protobuf")],
        otlp_json_to_protobuf(&otlp),
    );
    assert_eq!(held.status, 202);
    server.get("/api/v1/sessions", &[]).error(401);
    server.get("/api/v1/sessions?limit=0", &[key]).error(400);
    server
        .post_json("/v4/logs/upload/", &[pauth], &json!({"body": "x"}))
        .error(400);
    server
        .post_json(
            "/v4/logs/upload/",
            &[pauth, ("Trace-Id", "0x12")],
            &json!({"body": "x"}),
        )
        .error(400);
    // a session token is for its own session only
    let mut other = fixture("v03_v2_update_session_end_Fail.json")["body"].clone();
    other["session"]["session_id"] = json!("bff980d9-1ed7-4355-b15e-5492e74ff7bd");
    server
        .post_json("/v2/update_session", &[key, bearer], &other)
        .error(403);
    // unknown session
    server
        .post_json(
            "/v2/reauthorize_jwt",
            &[key],
            &json!({"session_id": "bff980d9-1ed7-4355-b15e-5492e74ff7bd"}),
        )
        .error(404);
    server.get("/api/v1/sessions/nope", &[key]).error(404);
    // a NUL character fits no filter, id or cursor: 400 on every engine (PostgreSQL text
    // cannot hold one)
    for path in [
        "/api/v1/sessions?q=a%00b",
        "/api/v1/sessions?model=%00",
        &format!("/api/v1/sessions/{V03_SESSION}%00"),
        &format!("/api/v1/sessions/{V03_SESSION}/events/x%00"),
    ] {
        let msg = server.get(path, &[key]).error(400);
        assert!(msg.contains("NUL"), "{path}: {msg}");
    }
    server.get("/no/such/path", &[]).error(404);

    assert_eq!(
        server.snapshot(),
        before,
        "refused requests changed the store"
    );

    // and a good gzip request still works
    let reply = server.post(
        "/v2/create_events",
        &[key, bearer, json_type, ("Content-Encoding", "gzip")],
        gzip(
            one_event(
                "0d5b7c1e-55a4-4e5e-8f1e-444444444444",
                "2026-11-22T01:30:22.776840+00:00",
            )
            .to_string()
            .as_bytes(),
        ),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(server.session(V03_SESSION)["event_count"], 26);
}

#[test]
fn projects_never_see_or_touch_each_other() {
    let (server, jwt_a) = seeded();
    let (_project_b, key_b) = server.server().create_project("other").unwrap();
    let kb = ("X-Agentops-Api-Key", key_b.as_str());
    let b_list = |server: &TestServer| {
        let list = server.get("/api/v1/sessions", &[kb]);
        assert_eq!(list.status, 200);
        list.json()["sessions"].clone()
    };
    let before = server.snapshot();

    // B cannot re-authorize A's session, read it or list it: to B it does not exist.
    server
        .post_json(
            "/v2/reauthorize_jwt",
            &[kb],
            &json!({"session_id": V03_SESSION}),
        )
        .error(404);
    server
        .get(&format!("/api/v1/sessions/{V03_SESSION}"), &[kb])
        .error(404);
    assert_eq!(b_list(&server), json!([]));

    // A's session token with B's key is refused.
    let auth_a = format!("Bearer {jwt_a}");
    server
        .post_json(
            "/v2/create_events",
            &[kb, ("Authorization", &auth_a)],
            &fixture("v03_v2_create_events.json")["body"],
        )
        .error(403);

    // Session ids are each project's own: B using A's id (a squat, or two projects that name
    // sessions alike) makes a session of B's, and A's is untouched.
    let created = server.post_json(
        "/v2/create_session",
        &[kb],
        &fixture("v03_v2_create_session.json")["body"],
    );
    assert_eq!(created.status, 200, "{:?}", created.json());
    let jwt_b = created.json()["jwt"].as_str().unwrap().to_owned();
    let auth_b = format!("Bearer {jwt_b}");
    let events = fixture("v03_v2_create_events.json")["body"].clone();
    let sent = events["events"].as_array().unwrap().len();
    let reply = server.post_json(
        "/v2/create_events",
        &[kb, ("Authorization", &auth_b)],
        &events,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(server.snapshot(), before);
    let b_session = server.get(&format!("/api/v1/sessions/{V03_SESSION}"), &[kb]);
    assert_eq!(b_session.status, 200);
    assert_eq!(b_session.json()["event_count"], sent);

    // A's spans go in under A; the same spans sent by B go in under B, apart.
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    let proto = otlp_json_to_protobuf(&otlp);
    let token = |key: &str| {
        server
            .post_json("/v3/auth/token", &[], &json!({"api_key": key}))
            .json()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (token_a, token_b) = (token(API_KEY), token(&key_b));
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Authorization", &format!("Bearer {token_a}")),
        ],
        &proto,
    );
    assert_eq!(reply.status, 200);
    let before_b = server.snapshot();
    assert_ne!(before_b, before);
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {token_b}")),
        ],
        otlp.to_string(),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["partialSuccess"], json!(null));
    let reply = server.post_json(
        "/v4/logs/upload/",
        &[
            ("Authorization", &format!("Bearer {token_b}")),
            ("Trace-Id", "93512652547142718614884694637313420469"),
        ],
        &json!({"body": "b's logs"}),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(server.snapshot(), before_b);
    assert_eq!(server.session(V04_SESSION)["event_count"], 10);
    let b_trace = server.get(&format!("/api/v1/sessions/{V04_SESSION}"), &[kb]);
    assert_eq!(b_trace.json()["event_count"], 10);
    assert_eq!(b_list(&server).as_array().unwrap().len(), 2);

    // A session token reads its own session only.
    assert_eq!(
        server
            .get(
                &format!("/api/v1/sessions/{V03_SESSION}"),
                &[("Authorization", &auth_a)]
            )
            .status,
        200
    );
    server
        .get(
            &format!("/api/v1/sessions/{V04_SESSION}"),
            &[("Authorization", &auth_a)],
        )
        .error(403);
    server
        .get("/api/v1/sessions", &[("Authorization", &auth_a)])
        .error(403);
    // B's session token, for the same id as A's session, reads B's.
    let read_b = server.get(
        &format!("/api/v1/sessions/{V03_SESSION}"),
        &[("Authorization", &auth_b)],
    );
    assert_eq!(read_b.json()["event_count"], sent);
}

#[test]
fn restart_keeps_data_and_keys_and_generates_a_key_once() {
    let dir = temp_dir();
    let first = TestServer::start_in(dir.clone(), |c| c.api_key = None);
    let key = first
        .server()
        .created_api_key()
        .expect("a key on first start")
        .to_owned();
    let token = first.post_json("/v3/auth/token", &[], &json!({"api_key": key}));
    assert_eq!(token.status, 200);
    let auth = format!("Bearer {}", token.json()["token"].as_str().unwrap());
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    let reply = first.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        otlp.to_string(),
    );
    assert_eq!(reply.status, 200);
    let project = first.server().project_id().to_owned();
    let dir = first.stop();

    let second = TestServer::start_in(dir.clone(), |c| c.api_key = Some(API_KEY.into()));
    assert!(second.server().created_api_key().is_none());
    assert_eq!(second.server().project_id(), project);
    // the old key still works, the secret persisted (old token valid), and the data is there
    assert_eq!(
        second
            .post_json("/v3/auth/token", &[], &json!({"api_key": key}))
            .status,
        200
    );
    let detail = second.get(
        &format!("/api/v1/sessions/{V04_SESSION}"),
        &[("Authorization", &auth)],
    );
    assert_eq!(detail.status, 200);
    assert_eq!(detail.json()["event_count"], 10);
    let dir = second.stop();

    // the scripted key is idempotent across restarts
    let third = TestServer::start_in(dir, |c| c.api_key = Some(API_KEY.into()));
    assert!(third.server().created_api_key().is_none());
    assert_eq!(
        third
            .post_json("/v3/auth/token", &[], &json!({"api_key": API_KEY}))
            .status,
        200
    );
}

#[test]
fn concurrent_clients_and_retries_store_each_event_once() {
    let (server, jwt) = seeded();
    let auth = format!("Bearer {jwt}");
    let batch = |n: usize| {
        let events: Vec<Value> = (0..25)
            .map(|i| {
                let id = format!("00000000-0000-4000-8000-{:012}", n * 100 + i);
                one_event(&id, "2026-11-22T01:30:24.000000+00:00")["events"][0].clone()
            })
            .collect();
        json!({ "events": events })
    };
    std::thread::scope(|scope| {
        for t in 0..4 {
            let server = &server;
            let auth = &auth;
            scope.spawn(move || {
                for n in 0..10 {
                    // every batch is sent twice, as a client retrying after a timeout would
                    for _ in 0..2 {
                        let reply = server.post_json(
                            "/v2/create_events",
                            &[("X-Agentops-Api-Key", API_KEY), ("Authorization", auth)],
                            &batch(t * 10 + n),
                        );
                        assert_eq!(reply.status, 200);
                    }
                }
            });
        }
    });
    assert_eq!(server.session(V03_SESSION)["event_count"], 25 + 4 * 10 * 25);
}

#[test]
fn a_full_queue_refuses_with_503_and_stores_exactly_what_was_acknowledged() {
    let server = TestServer::start_in(temp_dir(), |c| {
        c.queue_capacity = 1;
        c.batch_max = 1;
    });
    // The server's own first jobs (the quiet-window check, a retention pass) can hold the one
    // place in the queue at start: the session is created as a client would, retrying a 503.
    let reply = (0..50)
        .map(|attempt| {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            server.post_json(
                "/v2/create_session",
                &[("X-Agentops-Api-Key", API_KEY)],
                &fixture("v03_v2_create_session.json")["body"],
            )
        })
        .find(|reply| reply.status != 503)
        .expect("the queue stayed full for 5 s with no client writing");
    assert_eq!(reply.status, 200);
    let auth = format!("Bearer {}", reply.json()["jwt"].as_str().unwrap());
    let acknowledged = std::sync::atomic::AtomicUsize::new(0);
    let refused = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (server, auth, acknowledged, refused) = (&server, &auth, &acknowledged, &refused);
            scope.spawn(move || {
                for n in 0..10 {
                    let events: Vec<Value> = (0..25)
                        .map(|i| {
                            let id =
                                format!("00000000-0000-4000-8000-{:012}", (t * 10 + n) * 100 + i);
                            one_event(&id, "2026-11-22T01:30:24.000000+00:00")["events"][0].clone()
                        })
                        .collect();
                    let reply = server.post_json(
                        "/v2/create_events",
                        &[("X-Agentops-Api-Key", API_KEY), ("Authorization", auth)],
                        &json!({ "events": events }),
                    );
                    match reply.status {
                        200 => acknowledged.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        503 => {
                            assert_eq!(reply.header("retry-after"), Some("1"));
                            assert!(reply.error(503).contains("retry"));
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        }
                        other => panic!("unexpected status {other}"),
                    };
                }
            });
        }
    });
    let (acknowledged, refused) = (acknowledged.into_inner(), refused.into_inner());
    eprintln!("acknowledged {acknowledged}, refused {refused}");
    assert_eq!(acknowledged + refused, 80);
    assert_eq!(
        server.session(V03_SESSION)["event_count"],
        acknowledged * 25
    );
}

/// An OTLP/JSON request of one span in `trace` with these attributes and start time (ns).
fn otlp_span(trace: &str, span: &str, start_ns: &str, attributes: Value) -> Value {
    json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"},
        "spans": [{"traceId": trace, "spanId": span, "name": "chat", "kind": 1,
            "startTimeUnixNano": start_ns, "endTimeUnixNano": start_ns,
            "attributes": attributes}]}]}]})
}

#[test]
fn huge_numbers_are_refused_or_ignored_and_never_poison_a_project() {
    let (server, jwt) = seeded();
    let auth = format!("Bearer {jwt}");
    let key = ("X-Agentops-Api-Key", API_KEY);
    let bearer = ("Authorization", auth.as_str());
    let llm = |id: &str, tokens: Value| {
        json!({"events": [{"id": id, "event_type": "llms",
            "init_timestamp": "2026-11-22T01:30:22.776840+00:00", "session_id": V03_SESSION,
            "model": "gpt-4o", "prompt_tokens": tokens, "completion_tokens": 1}]})
    };
    // v2: a token count beyond any model's is a 400 naming the field.
    for tokens in [json!(1e30), json!(i64::MAX), json!("9223372036854775807")] {
        let msg = server
            .post_json(
                "/v2/create_events",
                &[key, bearer],
                &llm("0d5b7c1e-55a4-4e5e-8f1e-222222222222", tokens),
            )
            .error(400);
        assert!(msg.contains("events[0].prompt_tokens"), "{msg}");
    }
    let msg = server
        .post_json(
            "/v2/create_events",
            &[key, bearer],
            &one_event(
                "0d5b7c1e-55a4-4e5e-8f1e-333333333333",
                "2554-07-21T23:34:33+00:00",
            ),
        )
        .error(400);
    assert!(msg.contains("out of range"), "{msg}");

    // OTLP: absurd token counts are not taken as counts (the attribute stays as sent), two of
    // them in one request and in one session included; a start time in 2554 rejects the span.
    let trace = "5b8efff798038103d269b633813fc60c";
    let huge = json!([
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": i64::MAX.to_string()}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}}
    ]);
    for span in ["eee92b0c8a9c3b01", "eee92b0c8a9c3b02"] {
        let reply = server.post_json(
            "/v1/traces",
            &[key],
            &otlp_span(trace, span, "1795311032720470384", huge.clone()),
        );
        assert_eq!(reply.status, 200);
    }
    let reply = server.post_json(
        "/v1/traces",
        &[key],
        &otlp_span(
            trace,
            "eee92b0c8a9c3b03",
            &u64::MAX.to_string(),
            huge.clone(),
        ),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["partialSuccess"]["rejectedSpans"],
        "1",
        "{:?}",
        reply.json()
    );

    // The project still reads: list, detail and stats.
    let list = server.get("/api/v1/sessions", &[key]);
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.body));
    let session_id = "5b8efff7-9803-8103-d269-b633813fc60c";
    let detail = server.session(session_id);
    assert_eq!(detail["event_count"], 2);
    assert_eq!(detail["input_tokens"], 0, "{detail}");
    assert_eq!(detail["output_tokens"], 10);
    let event = &detail["events"][0];
    assert!(event["input_tokens"].is_null(), "{event}");
    assert_eq!(
        event["attributes"]["gen_ai.usage.input_tokens"],
        i64::MAX,
        "kept as sent"
    );
    let stats = server.get("/api/v1/stats", &[key]);
    assert_eq!(
        stats.status,
        200,
        "{}",
        String::from_utf8_lossy(&stats.body)
    );
}

#[test]
fn a_database_poisoned_by_an_overflow_is_repaired_when_opened() {
    let dir = temp_dir();
    {
        let server = TestServer::start_sqlite_in(dir.clone(), |_| {});
        server.post_json(
            "/v2/create_session",
            &[("X-Agentops-Api-Key", API_KEY)],
            &fixture("v03_v2_create_session.json")["body"],
        );
        server.stop();
    }
    // What an overflow left behind before token counts were bounded: a total that SQLite had
    // turned into a float, in a version 2 database.
    let db = rusqlite::Connection::open(dir.join("agentops.db")).unwrap();
    db.execute_batch(
        "UPDATE sessions SET input_tokens = 1.8446744073709552e19, output_tokens = -2;
         UPDATE hourly_totals SET input_tokens = 1.8446744073709552e19;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(db);
    let server = TestServer::start_sqlite_in(dir, |_| {});
    let list = server.get("/api/v1/sessions", &[("X-Agentops-Api-Key", API_KEY)]);
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.body));
    let session = &list.json()["sessions"][0];
    assert_eq!(session["input_tokens"], 9_200_000_000_000_000_000_i64);
    assert_eq!(session["output_tokens"], 0);
    let stats = server.get("/api/v1/stats", &[("X-Agentops-Api-Key", API_KEY)]);
    assert_eq!(
        stats.status,
        200,
        "{}",
        String::from_utf8_lossy(&stats.body)
    );
}

#[test]
#[cfg(unix)]
fn the_database_and_its_directory_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir().join("private");
    let server = TestServer::start_sqlite_in(dir.clone(), |_| {});
    // Something written, so that the WAL and shared-memory files exist.
    server.post_json(
        "/v2/create_session",
        &[("X-Agentops-Api-Key", API_KEY)],
        &fixture("v03_v2_create_session.json")["body"],
    );
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    for name in ["agentops.db", "agentops.db-wal", "agentops.db-shm"] {
        let path = dir.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        } else {
            assert_ne!(name, "agentops.db", "the database exists");
        }
    }
}

#[test]
fn a_developer_error_report_with_a_wide_character_at_the_cut_is_answered() {
    let server = TestServer::start();
    // The report's text puts a two-byte character across byte 2000, where the log cuts it.
    let report = json!({"message": format!("{}é", "a".repeat(1987))});
    assert_eq!(report.to_string().find('é'), Some(1999));
    let reply = server.post_json(
        "/v2/developer_errors",
        &[("X-Agentops-Api-Key", API_KEY)],
        &report,
    );
    assert_eq!(reply.status, 204);
    assert_eq!(server.get("/health", &[]).status, 200, "still serving");
}

#[test]
fn limits_on_tags_ids_and_times_are_enforced_with_clear_errors() {
    let (server, jwt) = seeded();
    let key = ("X-Agentops-Api-Key", API_KEY);
    let auth = format!("Bearer {jwt}");
    let bearer = ("Authorization", auth.as_str());
    let before = server.snapshot();

    // v2: too many tags, a tag too long, the nil UUID, an event ending before it starts.
    let session = |tags: Value, id: &str| {
        json!({"session": {"session_id": id, "init_timestamp": "2026-11-22T01:30:22.776840+00:00",
            "tags": tags}})
    };
    let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let msg = server
        .post_json(
            "/v2/create_session",
            &[key],
            &session(json!(many), "0d5b7c1e-55a4-4e5e-8f1e-444444444444"),
        )
        .error(400);
    assert!(
        msg.contains("session.tags") && msg.contains("at most 100"),
        "{msg}"
    );
    let msg = server
        .post_json(
            "/v2/create_session",
            &[key],
            &session(
                json!(["x".repeat(201)]),
                "0d5b7c1e-55a4-4e5e-8f1e-444444444444",
            ),
        )
        .error(400);
    assert!(msg.contains("at most 200"), "{msg}");
    let msg = server
        .post_json(
            "/v2/create_session",
            &[key],
            &session(json!([]), "00000000-0000-0000-0000-000000000000"),
        )
        .error(400);
    assert!(msg.contains("nil UUID"), "{msg}");
    let mut backwards = one_event(
        "0d5b7c1e-55a4-4e5e-8f1e-555555555555",
        "2026-11-22T01:30:23.000000+00:00",
    );
    backwards["events"][0]["end_timestamp"] = json!("2026-11-22T01:30:22.000000+00:00");
    let msg = server
        .post_json("/v2/create_events", &[key, bearer], &backwards)
        .error(400);
    assert!(
        msg.contains("ends") && msg.contains("before it starts"),
        "{msg}"
    );

    // OTLP: each such span is rejected in partial_success, the others are kept.
    let trace = "6b8efff798038103d269b633813fc60c";
    let span = |id: &str, start: &str, end: &str, attributes: Value| {
        json!({"traceId": trace, "spanId": id, "name": "s", "kind": 1,
            "startTimeUnixNano": start, "endTimeUnixNano": end, "attributes": attributes})
    };
    let body = json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": [
        span("aaa92b0c8a9c3b01", "1795311032720470384", "1795311032720470385", json!([])),
        span("aaa92b0c8a9c3b02", "1795311032720470384", "1795311032720470000", json!([])),
        span("aaa92b0c8a9c3b03", "1795311032720470384", "1795311032720470385",
            json!([{"key": "session.id", "value": {"stringValue": "x".repeat(129)}}])),
        span("aaa92b0c8a9c3b04", "1795311032720470384", "1795311032720470385",
            json!([{"key": "agentops.tags", "value": {"arrayValue": {"values":
                many.iter().map(|t| json!({"stringValue": t})).collect::<Vec<_>>()}}}]))
    ]}]}]});
    let reply = server.post_json("/v1/traces", &[key], &body);
    assert_eq!(reply.status, 200);
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedSpans"], "3", "{partial}");
    let detail = server.session("6b8efff7-9803-8103-d269-b633813fc60c");
    assert_eq!(detail["event_count"], 1);
    // Nothing of the refused v2 requests was written.
    let missing = server.get(
        "/api/v1/sessions/0d5b7c1e-55a4-4e5e-8f1e-444444444444",
        &[key],
    );
    assert_eq!(missing.status, 404);
    let seeded_before = before["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == V03_SESSION)
        .unwrap()
        .clone();
    assert_eq!(server.session(V03_SESSION), seeded_before);
}

#[test]
fn list_filters_are_bounded() {
    let server = TestServer::start();
    let key = ("X-Agentops-Api-Key", API_KEY);
    let long_q = format!("/api/v1/sessions?q={}", "a".repeat(50_000));
    assert!(server
        .get(&long_q, &[key])
        .error(400)
        .contains("at most 1000"));
    let tags: Vec<String> = (0..934).map(|i| format!("t{i}")).collect();
    let many_tags = format!("/api/v1/sessions?tag={}", tags.join(","));
    assert!(server
        .get(&many_tags, &[key])
        .error(400)
        .contains("at most 20"));
    assert_eq!(server.get("/api/v1/sessions?tag=a,b", &[key]).status, 200);
}

#[test]
fn open_read_access_answers_only_requests_addressed_to_loopback() {
    let server = TestServer::start_in(temp_dir(), |config| config.open_read_access = true);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            server
                .get("/api/v1/sessions", &[("Host", host.as_str())])
                .status,
            200,
            "{host}"
        );
    }
    let rebinding = format!("attacker.example:{port}");
    let msg = server
        .get("/api/v1/sessions", &[("Host", rebinding.as_str())])
        .error(403);
    assert!(msg.contains("localhost"), "{msg}");
    // With credentials, any Host is fine.
    assert_eq!(
        server
            .get(
                "/api/v1/sessions",
                &[
                    ("Host", rebinding.as_str()),
                    ("X-Agentops-Api-Key", API_KEY)
                ]
            )
            .status,
        200
    );
}

#[test]
fn a_session_token_writes_spans_into_its_own_session_only() {
    let (server, jwt) = seeded();
    let auth = format!("Bearer {jwt}");
    let span = |id: &str, session: &str| {
        json!({"traceId": "7b8efff798038103d269b633813fc60c", "spanId": id, "name": "s", "kind": 1,
            "startTimeUnixNano": "1795311032720470384", "endTimeUnixNano": "1795311032720470385",
            "attributes": [{"key": "session.id", "value": {"stringValue": session}}]})
    };
    let other = "0d5b7c1e-55a4-4e5e-8f1e-777777777777";
    let body = json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": [
        span("bbb92b0c8a9c3b01", V03_SESSION),
        span("bbb92b0c8a9c3b02", other),
    ]}]}]});
    let before = server.session(V03_SESSION)["event_count"].as_i64().unwrap();
    let reply = server.post_json("/v1/traces", &[("Authorization", auth.as_str())], &body);
    assert_eq!(reply.status, 200);
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedSpans"], "1", "{partial}");
    assert!(partial["errorMessage"]
        .as_str()
        .unwrap()
        .contains("another session"));
    assert_eq!(server.session(V03_SESSION)["event_count"], before + 1);
    let missing = server.get(
        &format!("/api/v1/sessions/{other}"),
        &[("X-Agentops-Api-Key", API_KEY)],
    );
    assert_eq!(missing.status, 404);
}

#[test]
fn an_api_key_is_accepted_as_a_bearer_token_too() {
    let server = TestServer::start();
    let bearer = format!("Bearer {API_KEY}");
    let auth = ("Authorization", bearer.as_str());
    assert_eq!(server.get("/api/v1/sessions", &[auth]).status, 200);
    let body = json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": [
        {"traceId": "8b8efff798038103d269b633813fc60c", "spanId": "ccc92b0c8a9c3b01", "name": "s", "kind": 1,
         "startTimeUnixNano": "1795311032720470384", "endTimeUnixNano": "1795311032720470385"}]}]}]});
    assert_eq!(server.post_json("/v1/traces", &[auth], &body).status, 200);
    let created = server.post_json(
        "/v2/create_session",
        &[auth],
        &json!({"session": {"session_id": "0d5b7c1e-55a4-4e5e-8f1e-888888888888"}}),
    );
    assert_eq!(created.status, 200);
    // A wrong key that way is refused as a key, not taken for a malformed token.
    let wrong = "Bearer 0d5b7c1e-55a4-4e5e-8f1e-000000000001";
    let msg = server
        .get("/api/v1/sessions", &[("Authorization", wrong)])
        .error(401);
    assert!(msg.contains("unknown API key"), "{msg}");
}
