//! Replays the requests captured from the real AgentOps Python SDK (0.3.26 over v2, 0.4.21 over
//! OTLP) against a real server over loopback HTTP, and checks what the read API shows.

mod common;

use common::{fixture, gzip, otlp_json_to_protobuf, TestServer, API_KEY};
use serde_json::{json, Value};

const V03_SESSION: &str = "ec025968-28a1-40dc-a031-44309d8be760";
/// The 0.4 trace `Rlnhu86r9SgvFyBNvFpstQ==` as a UUID.
const V04_SESSION: &str = "4659e1bb-ceab-f528-2f17-204dbc5a6cb5";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// create_session with the captured body; returns the JWT.
fn create_session(server: &TestServer, body: &Value) -> String {
    let reply = server.post_json(
        "/v2/create_session",
        &[("X-Agentops-Api-Key", API_KEY)],
        body,
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer = reply.json();
    assert_eq!(answer["status"], "success");
    assert!(answer["session_url"]
        .as_str()
        .unwrap()
        .contains(body["session"]["session_id"].as_str().unwrap()));
    answer["jwt"].as_str().unwrap().to_owned()
}

#[test]
fn v03_session_lifecycle_is_stored_as_sent() {
    let server = TestServer::start();
    let jwt = create_session(&server, &fixture("v03_v2_create_session.json")["body"]);
    let auth = bearer(&jwt);
    let headers = [
        ("X-Agentops-Api-Key", API_KEY),
        ("Authorization", auth.as_str()),
    ];

    let events = fixture("v03_v2_create_events.json")["body"].clone();
    let sent = events["events"].as_array().unwrap().len();
    let reply = server.post_json("/v2/create_events", &headers, &events);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["inserted"], sent);

    // A retry of the same batch stores nothing twice.
    let reply = server.post_json("/v2/create_events", &headers, &events);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["inserted"], 0);

    let agent = fixture("v03_v2_create_agent.json")["body"].clone();
    assert_eq!(
        server
            .post_json("/v2/create_agent", &headers, &agent)
            .status,
        200
    );

    let tags = server.post_json(
        "/v2/update_session",
        &headers,
        &fixture("v03_v2_update_session_tags.json")["body"],
    );
    assert_eq!(tags.status, 200);
    let end = server.post_json(
        "/v2/update_session",
        &headers,
        &fixture("v03_v2_update_session_end_Success.json")["body"],
    );
    assert_eq!(end.status, 200);
    let answer = end.json();
    assert_eq!(answer["status"], "success");
    // gpt-4o-mini 7+1 tokens and 12+5 tokens priced from the table, plus the client's 0.0001
    let expected = (7.0 * 0.15 + 0.6 + 12.0 * 0.15 + 5.0 * 0.6) / 1e6 + 0.0001;
    let token_cost: f64 = answer["token_cost"].as_str().unwrap().parse().unwrap();
    assert!(
        (token_cost - expected).abs() < 1e-9,
        "{token_cost} vs {expected}"
    );
    assert_eq!(answer["token_cost"], "0.00010645");

    let session = server.session(V03_SESSION);
    assert_eq!(session["end_state"], "Success");
    assert_eq!(session["end_state_reason"], "all good");
    assert_eq!(session["tags"], json!(["replaced-tag-1", "replaced-tag-2"]));
    assert_eq!(session["start_time"], "2026-11-22T01:30:22.721555+00:00");
    assert_eq!(session["end_time"], "2026-11-22T01:30:26.360559+00:00");
    assert_eq!(session["host_env"]["OS"]["OS"], "Linux");
    assert_eq!(session["event_count"], sent);
    assert_eq!(
        session["agents"],
        json!([{"id": "9fb5f955-5fa1-4a13-9dcf-5b1f77b1fb46", "name": "planner-agent"}])
    );
    let stored = session["events"].as_array().unwrap();
    assert_eq!(stored.len(), sent);
    let starts: Vec<&str> = stored
        .iter()
        .map(|e| e["start_time"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "events ordered by start time"
    );
    let count = |kind: &str| stored.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(
        (
            count("actions"),
            count("tools"),
            count("llms"),
            count("errors")
        ),
        (17, 2, 3, 3)
    );

    let llm = stored
        .iter()
        .find(|e| e["id"] == "47500752-2125-4908-9953-16853a0379fc")
        .unwrap();
    assert_eq!(llm["model"], "gpt-4o");
    assert_eq!(
        (llm["input_tokens"].as_i64(), llm["output_tokens"].as_i64()),
        (Some(11), Some(2))
    );
    assert_eq!(llm["cost"], 0.0001);
    assert_eq!(
        llm["prompt"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(
        llm["completion"],
        json!({"role": "assistant", "content": "hello"})
    );

    let error = stored
        .iter()
        .find(|e| e["id"] == "8cf628b4-da28-4796-89d4-a1d4983217e4")
        .unwrap();
    assert_eq!(error["kind"], "errors");
    assert_eq!(error["status"], "error");
    assert_eq!(error["name"], "RateLimit");
    assert_eq!(error["attributes"]["code"], "429");

    let tool = stored
        .iter()
        .find(|e| e["id"] == "7f2cc33c-d62a-4f3c-9232-d33a36925d83")
        .unwrap();
    assert_eq!(tool["name"], "calculator");
    assert_eq!(tool["params"], json!({"expr": "2+2"}));
    assert_eq!(tool["returns"], "4");
}

#[test]
fn v03_end_states_and_reauthorization() {
    let server = TestServer::start();
    for (file, state, reason) in [
        (
            "v03_v2_update_session_end_Fail.json",
            "Fail",
            Some("simulated failure"),
        ),
        (
            "v03_v2_update_session_end_Indeterminate.json",
            "Indeterminate",
            None,
        ),
    ] {
        let body = fixture(file)["body"].clone();
        let id = body["session"]["session_id"].as_str().unwrap().to_owned();
        // start the session as the SDK did, then end it with the captured request
        let mut start = body.clone();
        start["session"]["end_state"] = json!("Indeterminate");
        start["session"]["end_timestamp"] = Value::Null;
        start["session"]["end_state_reason"] = Value::Null;
        let jwt = create_session(&server, &start);

        // a fresh JWT for the same session works as well as the first
        let reauth = server.post_json(
            "/v2/reauthorize_jwt",
            &[("X-Agentops-Api-Key", API_KEY)],
            &json!({"session_id": id}),
        );
        assert_eq!(reauth.status, 200);
        let fresh = reauth.json()["jwt"].as_str().unwrap().to_owned();
        assert_ne!(fresh, "");
        let _ = jwt;

        let auth = bearer(&fresh);
        let reply = server.post_json(
            "/v2/update_session",
            &[("X-Agentops-Api-Key", API_KEY), ("Authorization", &auth)],
            &body,
        );
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["token_cost"], "0.00");
        let session = server.session(&id);
        assert_eq!(session["end_state"], state);
        assert_eq!(session["end_state_reason"].as_str(), reason);
        assert_eq!(session["tags"], body["session"]["tags"]);
    }
    let list = server
        .get("/api/v1/sessions", &[("X-Agentops-Api-Key", API_KEY)])
        .json();
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    // newest first
    assert_eq!(
        ids,
        [
            "bb6f9eed-b702-4b55-98a4-77d5c1f619c0",
            "bff980d9-1ed7-4355-b15e-5492e74ff7bd"
        ]
    );
    let limited = server
        .get(
            "/api/v1/sessions?limit=1",
            &[("X-Agentops-Api-Key", API_KEY)],
        )
        .json();
    assert_eq!(limited["sessions"].as_array().unwrap().len(), 1);

    // developer_errors: 204
    let reply = server.post_json(
        "/v2/developer_errors",
        &[("X-Agentops-Api-Key", API_KEY)],
        &json!({"error": "x"}),
    );
    assert_eq!(reply.status, 204);
}

fn v3_token(server: &TestServer, key: &str) -> Value {
    let reply = server.post_json("/v3/auth/token", &[], &json!({"api_key": key}));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn check_v04_session(server: &TestServer) -> Value {
    let session = server.session(V04_SESSION);
    assert_eq!(session["event_count"], 10);
    assert_eq!(session["end_state"], "Success");
    assert_eq!(session["tags"], json!(["decorated"]));
    assert_eq!(session["name"], "decorated-trace");
    let events = session["events"].as_array().unwrap();
    let by_name = |name: &str| {
        events
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };

    let llm = by_name("openai.chat.completion");
    assert_eq!(llm["kind"], "llms");
    assert_eq!(llm["model"], "gpt-4o-mini");
    assert_eq!(llm["provider"], "openai");
    assert_eq!(
        (llm["input_tokens"].as_i64(), llm["output_tokens"].as_i64()),
        (Some(12), Some(5))
    );
    assert!((llm["cost"].as_f64().unwrap() - (12.0 * 0.15 + 5.0 * 0.6) / 1e6).abs() < 1e-15);
    assert_eq!(
        llm["prompt"][1],
        json!({"role": "user", "content": "Summarize otel"})
    );
    assert_eq!(llm["completion"][0]["content"], "Echo: Summarize otel");
    assert_eq!(llm["status"], "ok");
    assert_eq!(llm["parent_id"], "4e6d8fc5ec1d1309");

    let tool = by_name("calculator");
    assert_eq!(tool["kind"], "tools");
    assert_eq!(tool["cost"], 0.01);
    assert_eq!(tool["params"], json!({"args": ["6*7"], "kwargs": {}}));
    assert_eq!(tool["returns"], "42");

    let failing = by_name("failing_tool");
    assert_eq!(failing["status"], "error");
    assert_eq!(
        failing["status_message"],
        "ValueError: tool failed on purpose: 3"
    );
    assert_eq!(failing["attributes"]["otel.events"][0]["name"], "exception");

    assert_eq!(by_name("my-workflow")["kind"], "workflow");
    assert_eq!(by_name("ResearchAgent")["kind"], "agent");
    assert_eq!(by_name("input_guard")["kind"], "guardrail");
    let root = by_name("decorated-trace");
    assert_eq!(root["kind"], "session");
    assert_eq!(root["span_id"], "4e6d8fc5ec1d1309");
    // session cost = llm + the tool's client-sent 0.01
    assert!((session["cost"].as_f64().unwrap() - (0.01 + 4.8e-6)).abs() < 1e-12);
    session
}

#[test]
fn v04_otlp_json_then_protobuf_then_logs() {
    let server = TestServer::start();
    let token = v3_token(&server, API_KEY);
    assert_eq!(token["project_prem_status"], "free");
    assert_eq!(token["project_id"], server.server().project_id());
    let auth = bearer(token["token"].as_str().unwrap());

    let capture = fixture("v04_v1_traces.json");
    let otlp = capture["body_decoded_otlp"].clone();
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        otlp.to_string(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json(), json!({}));
    let from_json = check_v04_session(&server);

    // The same export in protobuf (what the Python exporter really sends) changes nothing.
    let proto = otlp_json_to_protobuf(&otlp);
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Authorization", &auth),
        ],
        &proto,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
    assert!(reply.body.is_empty(), "no partial success");
    assert_eq!(check_v04_session(&server), from_json);

    // Into a fresh server, the protobuf alone gives the very same session.
    let other = TestServer::start();
    let token2 = v3_token(&other, API_KEY);
    let auth2 = bearer(token2["token"].as_str().unwrap());
    let reply = other.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
            ("Authorization", &auth2),
        ],
        gzip(&proto),
    );
    assert_eq!(reply.status, 200);
    let mut a = check_v04_session(&other);
    let mut b = from_json.clone();
    for v in [&mut a, &mut b] {
        v.as_object_mut().unwrap().remove("logs");
    }
    assert_eq!(a, b);

    // Logs upload: stored with its trace.
    let logs = fixture("v04_v4_logs_upload.json");
    let trace_id = logs["headers"]["Trace-Id"].as_str().unwrap();
    let reply = server.post_json(
        "/v4/logs/upload/",
        &[("Authorization", &auth), ("Trace-Id", trace_id)],
        &logs["body"],
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["status"], "success");
    let session = server.session(V04_SESSION);
    assert_eq!(session["logs"][0], logs["body"]["body"]);

    // Metrics are accepted and dropped.
    let reply = server.post(
        "/v1/metrics",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Authorization", &auth),
        ],
        b"",
    );
    assert_eq!(reply.status, 200);
}

#[test]
fn otlp_json_with_hex_ids_and_rust_sdk_attributes() {
    let server = TestServer::start();
    let token = v3_token(&server, API_KEY);
    let auth = bearer(token["token"].as_str().unwrap());
    let session_id = "0f8e2a51-43a4-4a3d-9df7-3f8a6b1f0c11";
    let body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "agentops.project.id", "value": {"stringValue": "someone-else"}}]},
    "scopeSpans": [{"scope": {"name": "agentops"}, "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "llms", "kind": 1, "startTimeUnixNano": "1795311032720470384", "endTimeUnixNano": "1795311033720470384",
        "attributes": [
            {"key": "event.id", "value": {"stringValue": "c3a0f1e2-7b6d-4c5e-9f8a-1b2c3d4e5f60"}},
            {"key": "event.type", "value": {"stringValue": "llms"}},
            {"key": "event.timestamp", "value": {"stringValue": "2026-11-22T01:30:22.844324+00:00"}},
            {"key": "event.end_timestamp", "value": {"stringValue": "2026-11-22T01:30:22.847766+00:00"}},
            {"key": "session.id", "value": {"stringValue": session_id}},
            {"key": "event.data", "value": {"stringValue": "{\"model\":\"claude-sonnet-4-5\",\"prompt\":\"hi\",\"completion\":\"hello\",\"prompt_tokens\":1000,\"completion_tokens\":100}"}}
        ]}, {
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000000", "name": "bad",
        "startTimeUnixNano": "1795311032720470384"
    }]}]}]});
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        body.to_string(),
    );
    assert_eq!(reply.status, 200);
    let answer = reply.json();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1");
    assert!(answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("span id"));

    let session = server.session(session_id);
    let event = &session["events"][0];
    assert_eq!(event["id"], "c3a0f1e2-7b6d-4c5e-9f8a-1b2c3d4e5f60");
    assert_eq!(event["model"], "claude-sonnet-4-5");
    assert_eq!(event["start_time"], "2026-11-22T01:30:22.844324+00:00");
    assert!((event["cost"].as_f64().unwrap() - (1000.0 * 3.0 + 100.0 * 15.0) / 1e6).abs() < 1e-12);
    // the project comes from the token, never from the resource
    assert_eq!(session["event_count"], 1);
}

#[test]
fn any_otel_sdk_can_send_with_the_api_key_header() {
    let server = TestServer::start();
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("X-Agentops-Api-Key", API_KEY),
        ],
        otlp_json_to_protobuf(&otlp),
    );
    assert_eq!(reply.status, 200);
    check_v04_session(&server);
}

#[test]
fn equal_span_ids_in_different_traces_are_different_events() {
    let server = TestServer::start();
    let token = v3_token(&server, API_KEY);
    let auth = bearer(token["token"].as_str().unwrap());
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].to_string();
    // the same spans in another trace (16 bytes 0x01..0x10 in base64)
    let other = otlp.replace("Rlnhu86r9SgvFyBNvFpstQ==", "AQIDBAUGBwgJCgsMDQ4PEA==");
    for body in [otlp, other] {
        let reply = server.post(
            "/v1/traces",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            body,
        );
        assert_eq!(reply.status, 200);
    }
    check_v04_session(&server);
    let second = server.session("01020304-0506-0708-090a-0b0c0d0e0f10");
    assert_eq!(second["event_count"], 10);
    assert_eq!(second["events"].as_array().unwrap().len(), 10);
}

#[test]
fn unauthenticated_traces_only_when_configured() {
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    let proto = otlp_json_to_protobuf(&otlp);
    let protobuf = ("Content-Type", "application/x-protobuf");

    // By default spans without credentials are held (202), not stored, until an authenticated
    // request claims their trace (see the next test).
    let strict = TestServer::start();
    assert_eq!(strict.post("/v1/traces", &[protobuf], &proto).status, 202);
    assert_eq!(
        strict
            .get("/api/v1/sessions", &[("X-Agentops-Api-Key", API_KEY)])
            .json()["sessions"],
        json!([])
    );

    // With the flag they are stored in the default project at once.
    let lenient = TestServer::start_in(common::temp_dir(), |c| {
        c.accept_unauthenticated_traces = true
    });
    assert_eq!(lenient.post("/v1/traces", &[protobuf], &proto).status, 200);
    check_v04_session(&lenient);
    // wrong credentials are still refused
    lenient
        .post(
            "/v1/traces",
            &[protobuf, ("Authorization", "Bearer forged")],
            &proto,
        )
        .error(401);
}

/// The 0.4 fixture's spans split in two exports: the first `split` spans, then the rest.
fn split_fixture(split: usize) -> (Value, Value) {
    let otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"].clone();
    let mut first = otlp.clone();
    let mut rest = otlp;
    let spans = |body: &mut Value| -> Vec<Value> {
        body["resourceSpans"][0]["scopeSpans"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .flat_map(|scope| scope["spans"].as_array_mut().unwrap().drain(..))
            .collect()
    };
    let all = spans(&mut first);
    spans(&mut rest);
    first["resourceSpans"][0]["scopeSpans"] = json!([{"spans": all[..split]}]);
    rest["resourceSpans"][0]["scopeSpans"] = json!([{"spans": all[split..]}]);
    (first, rest)
}

#[test]
fn spans_sent_before_the_token_are_stored_when_their_trace_is_claimed() {
    let server = TestServer::start();
    let (early, late) = split_fixture(9);
    let protobuf = [("Content-Type", "application/x-protobuf")];
    // agentops 0.4 exports what ended before its token arrived without credentials.
    let reply = server.post("/v1/traces", &protobuf, otlp_json_to_protobuf(&early));
    assert_eq!(
        reply.status,
        202,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        server
            .get("/api/v1/sessions", &[("X-Agentops-Api-Key", API_KEY)])
            .json()["sessions"],
        json!([])
    );
    // A trace no authenticated request ever names waits, and is not stored.
    let mut stray = early.clone();
    for span in stray["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
    {
        span["traceId"] = json!("AQIDBAUGBwgJCgsMDQ4PEA==");
    }
    let reply = server.post("/v1/traces", &protobuf, otlp_json_to_protobuf(&stray));
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let health = server.get("/health", &[]).json();
    assert_eq!(
        health["credential_less_spans"],
        json!({"waiting": 18, "stored": 0, "discarded": 0})
    );

    // Then the token, and the rest of the trace with it.
    let token = v3_token(&server, API_KEY);
    let auth = bearer(token["token"].as_str().unwrap());
    let reply = server.post(
        "/v1/traces",
        &[protobuf[0], ("Authorization", &auth)],
        otlp_json_to_protobuf(&late),
    );
    assert_eq!(reply.status, 200);
    let session = server.session(V04_SESSION);
    assert_eq!(session["event_count"], 10);
    assert_eq!(session["end_state"], "Success");
    assert_eq!(session["events"].as_array().unwrap().len(), 10);
    assert_eq!(
        server.get("/health", &[]).json()["credential_less_spans"],
        json!({"waiting": 9, "stored": 9, "discarded": 0})
    );
    // Sent again (a retry), nothing is stored twice.
    let reply = server.post(
        "/v1/traces",
        &[protobuf[0], ("Authorization", &auth)],
        otlp_json_to_protobuf(&late),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(server.session(V04_SESSION)["event_count"], 10);
}

#[test]
fn a_session_token_claims_only_its_own_sessions_spans() {
    let server = TestServer::start();
    let (early, _) = split_fixture(9);
    let protobuf = ("Content-Type", "application/x-protobuf");
    let reply = server.post("/v1/traces", &[protobuf], otlp_json_to_protobuf(&early));
    assert_eq!(reply.status, 202);
    // A v2 session token names another session; its spans carry the held trace's id.
    let jwt = create_session(&server, &fixture("v03_v2_create_session.json")["body"]);
    let mut own = early.clone();
    let span = &mut own["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    span["spanId"] = json!("1111111111111111");
    span["attributes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "session.id", "value": {"stringValue": V03_SESSION}}));
    own["resourceSpans"][0]["scopeSpans"][0]["spans"] = json!([span.clone()]);
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer(&jwt)),
        ],
        own.to_string(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(server.session(V03_SESSION)["event_count"], 1);
    assert_eq!(
        server.get("/health", &[]).json()["credential_less_spans"],
        json!({"waiting": 0, "stored": 0, "discarded": 9})
    );
    server
        .get(
            &format!("/api/v1/sessions/{V04_SESSION}"),
            &[("X-Agentops-Api-Key", API_KEY)],
        )
        .error(404);
}
