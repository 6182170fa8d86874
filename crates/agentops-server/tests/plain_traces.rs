//! Plain OpenTelemetry traces (no AgentOps session span) over real loopback HTTP: their session
//! ends by itself after the quiet window with the root span's outcome, is named after its root
//! span, and reads as messages; OTLP log records attach to their span's event and feed its
//! messages; tool calls link the LLM event and the tool event both ways.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, API_KEY};
use serde_json::{json, Value};

const KEY: (&str, &str) = ("X-Agentops-Api-Key", API_KEY);
const T0: u64 = 1_795_311_032_000_000_000;

fn server() -> TestServer {
    TestServer::start_in(common::temp_dir(), |c| {
        c.session_quiet_window = Duration::from_secs(1);
    })
}

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn span(trace: &str, id: &str, parent: Option<&str>, name: &str, attrs: Vec<Value>) -> Value {
    let offset = u64::from_str_radix(&id[12..], 16).unwrap() * 1_000_000;
    let mut s = json!({
        "traceId": trace, "spanId": id, "name": name,
        "startTimeUnixNano": (T0 + offset).to_string(),
        "endTimeUnixNano": (T0 + offset + 500_000_000).to_string(),
        "attributes": attrs,
    });
    if let Some(parent) = parent {
        s["parentSpanId"] = json!(parent);
    }
    s
}

fn send_spans(server: &TestServer, service: &str, spans: Vec<Value>) {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", service)]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
    }]});
    let reply = server.post_json("/v1/traces", &[KEY], &body);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

fn uuid_of(trace: &str) -> String {
    uuid::Uuid::parse_str(trace).unwrap().to_string()
}

/// The session once `done` holds, within 15 s.
fn wait_for(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let session = server.session(id);
        if done(&session) {
            return session;
        }
        assert!(Instant::now() < deadline, "never happened: {session:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_plain_trace_ends_after_its_quiet_window_with_its_root_outcome_and_name() {
    let server = server();
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let id = uuid_of(trace);
    // the child first, as exporters often send them
    send_spans(
        &server,
        "trip-service",
        vec![span(
            trace,
            "00f067aa0ba90002",
            Some("00f067aa0ba90001"),
            "chat",
            vec![],
        )],
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        server.session(&id)["end_state"].is_null(),
        "no root span yet: still running"
    );
    send_spans(
        &server,
        "trip-service",
        vec![span(
            trace,
            "00f067aa0ba90001",
            None,
            "trip-planner",
            vec![],
        )],
    );
    let ended = wait_for(&server, &id, |s| !s["end_state"].is_null());
    assert_eq!(ended["end_state"], "Success");
    assert_eq!(ended["name"], "trip-planner");
    // the latest end among its events: the child's, 1 ms after the root's
    assert_eq!(ended["end_time"], "2026-11-22T01:30:32.502000+00:00");

    // a late child joins without reopening; the session's end moves to it
    send_spans(
        &server,
        "trip-service",
        vec![span(
            trace,
            "00f067aa0ba90fff",
            Some("00f067aa0ba90001"),
            "late",
            vec![],
        )],
    );
    let late = server.session(&id);
    assert_eq!(late["end_state"], "Success");
    assert_eq!(late["events"].as_array().unwrap().len(), 3);
    assert_eq!(late["end_time"], "2026-11-22T01:30:36.595000+00:00");

    // the state is stored: a restarted server answers the same
    let dir = server.stop();
    let again = TestServer::start_in(dir, |c| c.session_quiet_window = Duration::from_secs(1));
    assert_eq!(again.session(&id)["end_state"], "Success");
}

#[test]
fn a_failed_root_span_ends_its_session_as_fail_with_the_reason() {
    let server = server();
    let trace = "1af7651916cd43dd8448eb211c80319c";
    let mut root = span(trace, "10f067aa0ba90001", None, "nightly-eval", vec![]);
    root["status"] = json!({"code": 2, "message": "rate limited"});
    send_spans(&server, "evals", vec![root]);
    let ended = wait_for(&server, &uuid_of(trace), |s| !s["end_state"].is_null());
    assert_eq!(ended["end_state"], "Fail");
    assert_eq!(ended["end_state_reason"], "rate limited");
}

#[test]
fn names_come_from_the_best_source_whatever_the_order() {
    let server = server();
    // session.name on a child beats the root span's name, sent later
    let trace = "2af7651916cd43dd8448eb211c80319c";
    send_spans(
        &server,
        "svc",
        vec![span(
            trace,
            "20f067aa0ba90002",
            Some("20f067aa0ba90001"),
            "step",
            vec![attr("session.name", "Customer 42 refund")],
        )],
    );
    send_spans(
        &server,
        "svc",
        vec![span(trace, "20f067aa0ba90001", None, "root", vec![])],
    );
    assert_eq!(
        server.session(&uuid_of(trace))["name"],
        "Customer 42 refund"
    );

    // no root yet: the agent's name, then the service's is not taken over it
    let trace = "3af7651916cd43dd8448eb211c80319c";
    send_spans(
        &server,
        "svc",
        vec![span(
            trace,
            "30f067aa0ba90002",
            Some("30f067aa0ba90001"),
            "invoke_agent",
            vec![attr("gen_ai.agent.name", "Planner")],
        )],
    );
    send_spans(
        &server,
        "svc",
        vec![span(
            trace,
            "30f067aa0ba90003",
            Some("30f067aa0ba90001"),
            "x",
            vec![],
        )],
    );
    assert_eq!(server.session(&uuid_of(trace))["name"], "Planner");

    // only a service name
    let trace = "4af7651916cd43dd8448eb211c80319c";
    send_spans(
        &server,
        "billing-worker",
        vec![span(
            trace,
            "40f067aa0ba90002",
            Some("40f067aa0ba90001"),
            "x",
            vec![],
        )],
    );
    assert_eq!(server.session(&uuid_of(trace))["name"], "billing-worker");

    // names are searchable
    let found = server.get("/api/v1/sessions?q=refund", &[KEY]).json();
    let ids: Vec<&str> = found["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [uuid_of("2af7651916cd43dd8448eb211c80319c")]);
}

#[test]
fn a_v2_session_is_named_after_its_tags_then_its_first_agent() {
    let server = server();
    let session = "5f0c2a9e-3b1d-4c6e-8f7a-9b0c1d2e3f4a";
    let reply = server.post_json(
        "/v2/create_session",
        &[KEY],
        &json!({"session": {"session_id": session, "init_timestamp": "2026-11-22T01:30:00+00:00",
                             "tags": ["support", "refunds"]}}),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(server.session(session)["name"], "support, refunds");
    let jwt = reply.json()["jwt"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {jwt}");
    let reply = server.post_json(
        "/v2/create_agent",
        &[KEY, ("Authorization", &auth)],
        &json!({"id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "name": "Refund agent"}),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(server.session(session)["name"], "Refund agent");
}

fn log_record(trace: &str, span: &str, event_name: &str, body: Value) -> Value {
    json!({"timeUnixNano": (T0 + 1_000_000).to_string(), "severityNumber": 9,
           "eventName": event_name, "traceId": trace, "spanId": span, "body": body})
}

fn kv(pairs: Vec<(&str, Value)>) -> Value {
    json!({"kvlistValue": {"values": pairs.into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}})
}

fn s(text: &str) -> Value {
    json!({"stringValue": text})
}

#[test]
fn genai_log_records_feed_messages_and_tool_calls_link_both_ways() {
    let server = server();
    let trace = "6af7651916cd43dd8448eb211c80319c";
    let (root, llm, tool) = ("60f067aa0ba90001", "60f067aa0ba90002", "60f067aa0ba90003");
    send_spans(
        &server,
        "svc",
        vec![
            span(trace, root, None, "trip-planner", vec![]),
            span(
                trace,
                llm,
                Some(root),
                "chat gpt-4o-mini",
                vec![
                    attr("gen_ai.operation.name", "chat"),
                    attr("gen_ai.request.model", "gpt-4o-mini"),
                ],
            ),
            span(
                trace,
                tool,
                Some(root),
                "execute_tool get_weather",
                vec![
                    attr("gen_ai.operation.name", "execute_tool"),
                    attr("gen_ai.tool.call.id", "call_weather_1"),
                ],
            ),
        ],
    );
    let tool_call = kv(vec![
        ("id", s("call_weather_1")),
        ("type", s("function")),
        (
            "function",
            kv(vec![
                ("name", s("get_weather")),
                ("arguments", s("{\"city\": \"Paris\"}")),
            ]),
        ),
    ]);
    let logs = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        log_record(trace, llm, "gen_ai.system.message", kv(vec![("content", s("You plan trips."))])),
        log_record(trace, llm, "gen_ai.user.message", kv(vec![("content", s("What is the weather in Paris?"))])),
        log_record(trace, llm, "gen_ai.choice", kv(vec![
            ("index", json!({"intValue": "0"})), ("finish_reason", s("tool_calls")),
            ("message", kv(vec![("tool_calls", json!({"arrayValue": {"values": [tool_call]}}))])),
        ])),
        {"timeUnixNano": (T0 + 2_000_000).to_string(), "severityText": "WARN", "traceId": trace,
         "body": s("cache miss for Paris")},
        {"body": s("belongs nowhere")},
    ]}]}]});
    let reply = server.post_json("/v1/logs", &[KEY], &logs);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["partialSuccess"]["rejectedLogRecords"], "1");
    // an exporter's retry stores nothing twice
    assert_eq!(server.post_json("/v1/logs", &[KEY], &logs).status, 200);

    let session = server.session(&uuid_of(trace));
    let records = session["log_records"].as_array().unwrap();
    assert_eq!(records.len(), 4, "{records:#?}");
    assert_eq!(records[0]["event_id"], llm);
    assert_eq!(records[3]["severity"], "WARN");
    assert!(records[3]["event_id"].is_null());
    let event = |id: &str| {
        session["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap()
            .clone()
    };
    let llm_event = event(llm);
    assert_eq!(
        llm_event["messages"]["input"],
        json!([
            {"role": "system", "parts": [{"type": "text", "content": "You plan trips."}]},
            {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
        ])
    );
    assert_eq!(
        llm_event["messages"]["output"][0]["parts"][0],
        json!({"type": "tool_call", "id": "call_weather_1", "name": "get_weather", "arguments": {"city": "Paris"}})
    );
    assert_eq!(
        llm_event["tool_links"],
        json!([{"call_id": "call_weather_1", "event_id": tool, "direction": "calls"}])
    );
    assert_eq!(
        event(tool)["tool_links"],
        json!([{"call_id": "call_weather_1", "event_id": llm, "direction": "called_by"}])
    );
    // the tree carries the links too, and the event detail its own records and links
    let tree = server
        .get(
            &format!("/api/v1/sessions/{}?events=tree", uuid_of(trace)),
            &[KEY],
        )
        .json();
    let node = tree["event_tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == tool)
        .unwrap()
        .clone();
    assert_eq!(node["tool_links"][0]["event_id"], llm);
    assert_eq!(tree["log_records"].as_array().unwrap().len(), 4);
    let detail = server
        .get(
            &format!("/api/v1/sessions/{}/events/{tool}", uuid_of(trace)),
            &[KEY],
        )
        .json();
    assert_eq!(detail["tool_links"][0]["event_id"], llm);
    let detail = server
        .get(
            &format!("/api/v1/sessions/{}/events/{llm}", uuid_of(trace)),
            &[KEY],
        )
        .json();
    assert_eq!(detail["log_records"].as_array().unwrap().len(), 3);
    assert_eq!(
        detail["messages"]["output"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn bad_log_requests_get_clear_errors() {
    let server = server();
    let no_key = server.post_json("/v1/logs", &[], &json!({"resourceLogs": []}));
    no_key.error(401);
    let malformed = server.post(
        "/v1/logs",
        &[KEY, ("Content-Type", "application/x-protobuf")],
        b"\xff\xff\xff",
    );
    assert!(malformed.error(400).contains("protobuf"));
    let not_an_object = server.post_json(
        "/v1/logs",
        &[KEY],
        &json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [3]}]}]}),
    );
    assert!(not_an_object.error(400).contains("logRecords[0]"));
    // protobuf, gzip-compressed, as the OTLP exporters send it
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: T0,
                    trace_id: vec![7; 16],
                    span_id: vec![8; 8],
                    severity_text: "INFO".into(),
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let reply = server.post(
        "/v1/logs",
        &[
            KEY,
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        common::gzip(&request.encode_to_vec()),
    );
    assert_eq!(reply.status, 200);
    let session = server.session(&uuid::Uuid::from_bytes([7; 16]).to_string());
    assert_eq!(session["log_records"][0]["span_id"], "0808080808080808");
}
