//! The OTLP protocol: the session's spans as OTLP/HTTP protobuf to `/v1/traces` after
//! `/v3/auth/token`, as agentops 0.4 sends them, decoded here with `opentelemetry-proto` (the
//! OpenTelemetry Collector's own types). Retries, gzip, the 413 split and the accounting are
//! the v2 protocol's.

mod support;

use std::time::Duration;

use agentops::{ChatMessage, Client, EndState, Event, Protocol, SessionOptions};
use serde_json::{json, Value};
use support::{FakeBackend, Reply, API_KEY};

const TRACES: &str = "/v1/traces";

fn otlp(backend: &FakeBackend) -> agentops::ConfigBuilder {
    agentops::Config::builder()
        .ignore_env()
        .protocol(Protocol::Otlp)
        .api_key(API_KEY)
        .endpoint(backend.endpoint())
        .max_wait_time(Duration::from_millis(50))
        .retry_min_backoff(Duration::from_millis(20))
        .retry_max_backoff(Duration::from_millis(200))
}

fn span_named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|span| span["name"] == name)
        .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
}

#[test]
fn a_session_is_sent_as_agentops_0_4_sends_it() {
    let backend = FakeBackend::start();
    let client = Client::new(otlp(&backend).default_tags(["otlp"]).build().unwrap()).unwrap();
    let session = client
        .start_session(SessionOptions::tags(["demo"]))
        .unwrap();
    session
        .record(
            Event::llm("gpt-4o-mini")
                .prompt_messages([ChatMessage::user("2+2?")])
                .completion("4")
                .tokens(7, 1),
        )
        .unwrap();
    let plan = session.start_event(Event::action("plan")).unwrap();
    let tool = {
        let _inside = plan.enter();
        session
            .record(Event::tool("calculator").returns("4"))
            .unwrap()
    };
    plan.end();
    session
        .record(Event::error("Timeout").details("too slow").trigger(tool))
        .unwrap();
    let summary = session.end(EndState::Success, "answered").unwrap();
    assert_eq!(summary.delivery.delivered, 4, "{summary:?}");
    assert!(summary.delivery.is_balanced());
    assert!(summary.backend_error.is_none(), "{summary:?}");
    assert_eq!(summary.token_cost, None, "OTLP answers no cost");

    let tokens = backend.requests_to("/v3/auth/token");
    assert_eq!(tokens.len(), 1, "one token per client");
    assert_eq!(tokens[0].body, json!({"api_key": API_KEY}));
    let exports = backend.requests_to(TRACES);
    assert!(!exports.is_empty());
    for export in &exports {
        assert_eq!(export.header("authorization"), Some("Bearer otlp-token-1"));
        assert_eq!(
            export.header("content-type"),
            Some("application/x-protobuf")
        );
        assert_eq!(export.header("content-encoding"), Some("gzip"));
        assert!(
            export.header("x-agentops-api-key").is_none(),
            "the key stays home"
        );
        assert_eq!(export.body["resource"]["agentops.sdk.language"], "rust");
    }
    assert!(backend
        .requests()
        .iter()
        .all(|r| !r.path.starts_with("/v2/")));

    let spans = backend.accepted_spans();
    assert_eq!(spans.len(), 5, "four events and the session");
    let trace_id = session.id().simple().to_string();
    assert!(spans.iter().all(|span| span["trace_id"] == trace_id));
    let root = span_named(&spans, "session");
    assert_eq!(root["parent_span_id"], "");
    assert_eq!(root["attributes"]["agentops.span.kind"], "session");
    assert_eq!(root["attributes"]["agentops.session.end_state"], "Success");
    assert_eq!(
        root["attributes"]["agentops.session.end_state_reason"],
        "answered"
    );
    assert_eq!(root["attributes"]["agentops.tags"], json!(["otlp", "demo"]));
    assert_eq!(root["attributes"]["session.id"], session.id().to_string());
    assert_eq!(
        spans.last().unwrap()["name"],
        "session",
        "the session span comes last"
    );

    let llm = span_named(&spans, "gpt-4o-mini");
    assert_eq!(
        llm["parent_span_id"], root["span_id"],
        "root events hang from the session"
    );
    assert_eq!(llm["attributes"]["event.type"], "llms");
    assert_eq!(llm["attributes"]["gen_ai.request.model"], "gpt-4o-mini");
    assert_eq!(llm["attributes"]["gen_ai.usage.input_tokens"], 7);
    assert_eq!(llm["attributes"]["gen_ai.usage.output_tokens"], 1);
    let plan = span_named(&spans, "plan");
    let calculator = span_named(&spans, "calculator");
    assert_eq!(calculator["parent_span_id"], plan["span_id"]);
    assert_eq!(calculator["attributes"]["gen_ai.tool.name"], "calculator");
    let error = span_named(&spans, "Timeout");
    assert_eq!(error["status"]["code"], 2);
    assert_eq!(error["status"]["message"], "too slow");
}

#[test]
fn a_refused_token_is_renewed_once_and_the_batch_resent() {
    let backend = FakeBackend::start();
    let mut refused = false;
    backend.script(move |request| {
        (request.path == TRACES && !std::mem::replace(&mut refused, true))
            .then(|| Reply::status(401))
    });
    let session = Client::new(otlp(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    session.record(Event::action("x")).unwrap();
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1);
    assert_eq!(backend.requests_to("/v3/auth/token").len(), 2);
    let last = backend.requests_to(TRACES);
    assert_eq!(
        last.last().unwrap().header("authorization"),
        Some("Bearer otlp-token-2")
    );
}

#[test]
fn any_opentelemetry_backend_is_reached_with_its_own_headers_and_no_key() {
    let backend = FakeBackend::start();
    let config = agentops::Config::builder()
        .ignore_env()
        .protocol(Protocol::Otlp)
        .otlp_endpoint(format!("{}/v1/traces", backend.endpoint()))
        .otlp_header("x-honeycomb-team", "secret")
        .compression(agentops::Compression::None)
        .max_wait_time(Duration::from_millis(50))
        .build()
        .unwrap();
    assert_eq!(config.api_key, None);
    let session = Client::new(config)
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    session.wait_until_created(Duration::from_secs(5)).unwrap();
    session.record(Event::tool("search")).unwrap();
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1);
    assert!(backend.requests_to("/v3/auth/token").is_empty());
    for export in backend.requests_to(TRACES) {
        assert_eq!(export.header("x-honeycomb-team"), Some("secret"));
        assert!(export.header("authorization").is_none());
        assert!(export.header("content-encoding").is_none());
    }
    assert_eq!(backend.accepted_spans().len(), 2);
}

#[test]
fn batches_are_retried_split_and_accounted_for_as_over_v2() {
    let backend = FakeBackend::start();
    let mut failures = 2;
    backend.script(move |request| {
        if request.path != TRACES {
            return None;
        }
        let spans = request.body["spans"].as_array().map_or(0, Vec::len);
        if spans > 4 {
            return Some(Reply::status(413));
        }
        (failures > 0).then(|| {
            failures -= 1;
            Reply::status(503)
        })
    });
    let session = Client::new(
        otlp(&backend)
            .max_wait_time(Duration::from_secs(60))
            .build()
            .unwrap(),
    )
    .unwrap()
    .start_session(SessionOptions::default())
    .unwrap();
    for i in 0..20 {
        session.record(Event::action("step").params(i)).unwrap();
    }
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 20, "{summary:?}");
    assert!(summary.delivery.retried >= 2);
    assert!(summary.delivery.is_balanced());
    let steps = backend
        .accepted_spans()
        .into_iter()
        .filter(|span| span["name"] == "step")
        .count();
    assert_eq!(steps, 20, "each once");
}

#[test]
fn a_refused_api_key_fails_every_session_of_the_client_fast() {
    let backend = FakeBackend::start();
    backend.script(|request| (request.path == "/v3/auth/token").then(|| Reply::status(401)));
    let client = Client::new(otlp(&backend).build().unwrap()).unwrap();
    let first = client.start_session(SessionOptions::default()).unwrap();
    let err = first
        .wait_until_created(Duration::from_secs(5))
        .unwrap_err();
    assert!(
        matches!(err, agentops::BackendError::Refused { status: 401, .. }),
        "{err}"
    );
    let second = client.start_session(SessionOptions::default()).unwrap();
    second.record(Event::action("x")).unwrap();
    let summary = second.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.failed, 1);
    assert_eq!(
        backend.requests_to("/v3/auth/token").len(),
        1,
        "not asked again"
    );
    assert!(backend.requests_to(TRACES).is_empty());
}

#[test]
fn a_backend_without_a_token_endpoint_gets_spans_without_a_token() {
    let backend = FakeBackend::start();
    backend.script(|request| (request.path == "/v3/auth/token").then(|| Reply::status(404)));
    let session = Client::new(otlp(&backend).build().unwrap())
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    session.wait_until_created(Duration::from_secs(5)).unwrap();
    session.record(Event::action("x")).unwrap();
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1, "{summary:?}");
    assert!(backend
        .requests_to(TRACES)
        .iter()
        .all(|r| r.header("authorization").is_none()));
}
