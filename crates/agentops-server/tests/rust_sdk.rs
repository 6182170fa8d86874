//! Our Rust SDK end to end against the real server: what the SDK records is what the server
//! stores, with tokens, cost, parent links and end states.

mod common;

use std::time::Duration;

use agentops::{ChatMessage, Client, Config, EndState, Event, SessionOptions};
use common::{TestServer, API_KEY};
use serde_json::{json, Value};

fn sdk_client(server: &TestServer) -> Client {
    let config = Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(&server.url)
        .max_wait_time(Duration::from_millis(100))
        .default_tags(["rust-sdk"])
        .build()
        .unwrap();
    Client::new(config).unwrap()
}

fn event<'a>(detail: &'a Value, id: &agentops::EventId) -> &'a Value {
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.to_string())
        .unwrap_or_else(|| panic!("event {id} not stored: {detail}"))
}

#[test]
fn what_the_sdk_records_is_what_the_server_stores() {
    let server = TestServer::start();
    let client = sdk_client(&server);
    let session = client
        .start_session(SessionOptions::tags(["e2e"]).attribute("run", 1_i64))
        .unwrap();
    let planner = session.create_agent("planner").unwrap();

    let plan = session
        .start_event(Event::action("plan").agent(planner))
        .unwrap();
    let (llm, tool) = {
        let _inside = plan.enter();
        let llm = session
            .record(
                Event::llm("gpt-4o-mini")
                    .prompt_messages([ChatMessage::user("Plan a trip to <Paris>")])
                    .completion("Day 1: the Louvre")
                    .tokens(1_000, 500)
                    .agent(planner),
            )
            .unwrap();
        let tool = session
            .record(
                Event::tool("search")
                    .params(json!({"q": "louvre hours"}))
                    .returns("9-18"),
            )
            .unwrap();
        (llm, tool)
    };
    let plan_id = plan.id();
    plan.end_with(|event| event.returns("planned"));
    let error = session
        .record(
            Event::error("Timeout")
                .details("search took too long")
                .trigger(tool),
        )
        .unwrap();
    let paid = session
        .record(Event::llm("my-own-model").tokens(10, 10).cost(0.5))
        .unwrap();
    session.set_tags(["e2e", "replaced"]).unwrap();

    let summary = session.end(EndState::Fail, "search timed out").unwrap();
    assert_eq!(summary.delivery.delivered, 5, "{summary:?}");
    assert!(summary.backend_error.is_none(), "{summary:?}");
    // gpt-4o-mini at $0.15 / $0.60 per million tokens, plus the client's own $0.50.
    let expected_cost = 1_000.0 * 0.15e-6 + 500.0 * 0.60e-6 + 0.5;
    let cost = summary
        .token_cost_usd()
        .expect("the server answers the cost");
    assert!(
        (cost - expected_cost).abs() < 1e-9,
        "cost {cost}, expected {expected_cost}"
    );

    let detail = server.session(&session.id().to_string());
    assert_eq!(detail["end_state"], "Fail");
    assert_eq!(detail["end_state_reason"], "search timed out");
    assert_eq!(detail["tags"], json!(["e2e", "replaced"]));
    assert_eq!(detail["event_count"], 5);
    assert_eq!(detail["agents"][0]["name"], "planner");
    assert_eq!(detail["host_env"]["SDK"]["Language"], "Rust");

    let llm = event(&detail, &llm);
    assert_eq!(llm["kind"], "llms");
    assert_eq!(llm["model"], "gpt-4o-mini");
    assert_eq!(
        (llm["input_tokens"].as_i64(), llm["output_tokens"].as_i64()),
        (Some(1_000), Some(500))
    );
    assert_eq!(llm["prompt"][0]["content"], "Plan a trip to <Paris>");
    assert_eq!(llm["parent_id"], plan_id.to_string());
    assert_eq!(llm["agent_id"], planner.to_string());
    assert_eq!(llm["attributes"]["run"], 1);

    let tool = event(&detail, &tool);
    assert_eq!(tool["parent_id"], plan_id.to_string());
    assert_eq!(tool["returns"], "9-18");

    let error = event(&detail, &error);
    assert_eq!(error["status"], "error");
    assert_eq!(error["status_message"], "search took too long");
    assert_eq!(error["attributes"]["trigger_event"], tool["id"]);

    assert_eq!(event(&detail, &plan_id)["returns"], "planned");
    assert_eq!(event(&detail, &paid)["cost"], 0.5);
}

#[test]
fn a_session_recorded_while_the_server_restarts_arrives_whole() {
    let server = TestServer::start();
    let dir = server.dir.clone();
    let url = server.url.clone();
    let client = sdk_client(&server);
    let session = client.start_session(SessionOptions::default()).unwrap();
    for i in 0..50 {
        session
            .record(Event::action("before").params(json!({"i": i})))
            .unwrap();
    }
    session.flush();
    let port = url.rsplit(':').next().unwrap().to_owned();
    server.stop();

    for i in 0..50 {
        session
            .record(Event::action("while down").params(json!({"i": i})))
            .unwrap();
    }
    let restarted = TestServer::start_in(dir, |config| {
        config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    });
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 100, "{summary:?}");
    assert_eq!(
        restarted.session(&session.id().to_string())["event_count"],
        100
    );
}

#[test]
fn a_downstream_service_joins_the_session_through_traceparent() {
    let server = TestServer::start();
    let client = sdk_client(&server);
    let session = client.start_session(SessionOptions::default()).unwrap();
    let call = session.start_event(Event::tool("billing_service")).unwrap();
    let traceparent = call.traceparent().unwrap();
    let call_id = call.id();
    call.end();

    // Another service, instrumented with plain OpenTelemetry, continues the trace and exports
    // its span over OTLP/HTTP to the same server.
    let parts: Vec<&str> = traceparent.split('-').collect();
    let body = json!({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "billing"}}]},
    "scopeSpans": [{"scope": {"name": "billing"}, "spans": [{
        "traceId": parts[1], "spanId": "00000000000000b1", "parentSpanId": parts[2],
        "name": "charge card", "kind": 2,
        "startTimeUnixNano": "1795311032720470384", "endTimeUnixNano": "1795311032820470384"
    }]}]}]});
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("X-Agentops-Api-Key", API_KEY),
        ],
        body.to_string(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    session.end(EndState::Success, "").unwrap();

    let detail = server.session(&session.id().to_string());
    assert_eq!(
        detail["event_count"], 2,
        "both services' work is in the session: {detail}"
    );
    let tree = detail["event_tree"].as_array().unwrap();
    let charge = tree.iter().find(|n| n["name"] == "charge card").unwrap();
    let call = tree
        .iter()
        .find(|n| n["id"] == call_id.to_string())
        .unwrap();
    assert_eq!(
        charge["depth"], 1,
        "the downstream span is nested under the SDK's event: {tree:?}"
    );
    assert!(call["children"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| *c == charge["id"]));
}

#[test]
fn the_otlp_protocol_lands_as_a_whole_ended_session() {
    let server = TestServer::start();
    let config = Config::builder()
        .ignore_env()
        .protocol(agentops::Protocol::Otlp)
        .api_key(API_KEY)
        .endpoint(&server.url)
        .max_wait_time(Duration::from_millis(100))
        .default_tags(["otlp"])
        .build()
        .unwrap();
    let client = Client::new(config).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.wait_until_created(Duration::from_secs(10)).unwrap();
    let plan = session.start_event(Event::action("plan")).unwrap();
    let llm = {
        let _inside = plan.enter();
        session
            .record(
                Event::llm("gpt-4o-mini")
                    .prompt_messages([ChatMessage::user("Plan a trip")])
                    .completion("Day 1")
                    .tokens(1_000, 500),
            )
            .unwrap()
    };
    let plan_id = plan.id();
    plan.end();
    let summary = session.end(EndState::Success, "planned").unwrap();
    assert_eq!(summary.delivery.delivered, 2, "{summary:?}");
    assert!(summary.backend_error.is_none(), "{summary:?}");

    let detail = server.session(&session.id().to_string());
    assert_eq!(detail["end_state"], "Success", "{detail}");
    assert_eq!(detail["end_state_reason"], "planned");
    assert_eq!(detail["tags"], json!(["otlp"]));
    let llm = event(&detail, &llm);
    assert_eq!(llm["kind"], "llms");
    assert_eq!(
        (llm["input_tokens"].as_i64(), llm["output_tokens"].as_i64()),
        (Some(1_000), Some(500))
    );
    assert!(llm["cost"].as_f64().unwrap() > 0.0, "priced by the server");
    let tree = detail["event_tree"].as_array().unwrap();
    let node = |id: &str| tree.iter().find(|n| n["id"] == id).unwrap();
    let plan_node = node(&plan_id.to_string());
    let llm_node = node(llm["id"].as_str().unwrap());
    assert_eq!(
        llm_node["depth"].as_i64(),
        plan_node["depth"].as_i64().map(|d| d + 1),
        "the LLM call is nested under the action: {tree:?}"
    );
}

fn otlp_client(server: &TestServer) -> Client {
    let config = Config::builder()
        .ignore_env()
        .protocol(agentops::Protocol::Otlp)
        .api_key(API_KEY)
        .endpoint(&server.url)
        .max_wait_time(Duration::from_millis(100))
        .build()
        .unwrap();
    Client::new(config).unwrap()
}

/// An orchestrator calls a tool service; the service continues the session from the request's
/// headers. `service` is the service's client (v2 or OTLP).
fn orchestrate(server: &TestServer, service: &Client) {
    use agentops::propagation::{HeaderInjector, RemoteSession};
    let orchestrator = sdk_client(server);
    let session = orchestrator
        .start_session(SessionOptions::tags(["multi-service"]).baggage("tenant", "acme"))
        .unwrap();
    let call = session.start_event(Event::tool("weather_service")).unwrap();
    let mut headers = http::HeaderMap::new();
    call.inject_into(&mut HeaderInjector(&mut headers));

    // The service, on receiving the request:
    let remote = RemoteSession::from_headers(&headers).expect("the session travels");
    assert_eq!(remote.session_id(), session.id());
    let joined = service.join_session(remote).unwrap();
    assert_eq!(joined.id(), session.id());
    assert_eq!(joined.tags(), ["rust-sdk", "multi-service"]);
    assert!(matches!(
        joined.add_tags(["mine"]),
        Err(agentops::Error::JoinedSession { .. })
    ));
    let lookup = joined.start_event(Event::action("lookup")).unwrap();
    let forecast = {
        let _inside = lookup.enter();
        joined
            .record(Event::tool("forecast_api").returns("sunny"))
            .unwrap()
    };
    let lookup_id = lookup.id();
    lookup.end();
    let summary = joined
        .end(EndState::Fail, "the service's end is not the session's")
        .unwrap();
    assert_eq!(summary.delivery.delivered, 2, "{summary:?}");
    assert!(summary.backend_error.is_none(), "{summary:?}");

    let call_id = call.id();
    call.end_with(|event| event.returns("sunny"));
    session.end(EndState::Success, "answered").unwrap();

    let detail = server.session(&session.id().to_string());
    assert_eq!(detail["event_count"], 3, "{detail}");
    assert_eq!(
        detail["end_state"], "Success",
        "the orchestrator's end: {detail}"
    );
    assert_eq!(detail["tags"], json!(["rust-sdk", "multi-service"]));
    let tree = detail["event_tree"].as_array().unwrap();
    let node = |id: &str| {
        tree.iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {tree:?}"))
    };
    let call_node = node(&call_id.to_string());
    let lookup_node = node(&lookup_id.to_string());
    let forecast_node = node(&forecast.to_string());
    assert_eq!(lookup_node["parent_id"], call_node["id"], "{tree:?}");
    assert_eq!(forecast_node["parent_id"], lookup_node["id"], "{tree:?}");
    // The baggage's entries are on the service's events (and the orchestrator's).
    for id in [&lookup_id, &forecast, &call_id] {
        assert_eq!(
            event(&detail, id)["attributes"]["tenant"],
            "acme",
            "{detail}"
        );
    }
}

#[test]
fn a_service_continues_the_session_over_v2() {
    let server = TestServer::start();
    let service = sdk_client(&server);
    orchestrate(&server, &service);
}

#[test]
fn a_service_continues_the_session_over_otlp() {
    let server = TestServer::start();
    let service = otlp_client(&server);
    orchestrate(&server, &service);
}

#[test]
fn a_session_joined_before_it_is_registered_waits_for_it() {
    use agentops::propagation::RemoteSession;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId};
    let server = TestServer::start();
    // The application's own trace, which a session will start in.
    let trace = uuid::Uuid::new_v4();
    let app_span = SpanContext::new(
        TraceId::from_bytes(*trace.as_bytes()),
        SpanId::from(0xab_u64),
        TraceFlags::SAMPLED,
        false,
        Default::default(),
    );
    // A worker joins the session by id before anyone registered it: its delivery waits.
    let worker = sdk_client(&server);
    let joined = worker
        .join_session(RemoteSession::from_session_id(trace))
        .unwrap();
    let early = joined.record(Event::action("early work")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    server
        .get(
            &format!("/api/v1/sessions/{trace}"),
            &[("X-Agentops-Api-Key", API_KEY)],
        )
        .error(404);

    // Then the session starts, inside the application's trace.
    let owner = sdk_client(&server);
    let cx = opentelemetry::Context::new().with_remote_span_context(app_span);
    let session = owner
        .start_session(SessionOptions::default().parent_context(&cx))
        .unwrap();
    assert_eq!(
        session.id(),
        trace,
        "the session is the application's trace"
    );
    let summary = joined.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1, "{summary:?}");
    session.end(EndState::Success, "").unwrap();
    let detail = server.session(&trace.to_string());
    assert_eq!(detail["event_count"], 1);
    event(&detail, &early);
}
