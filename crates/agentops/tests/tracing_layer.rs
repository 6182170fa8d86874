//! The `tracing` layer: spans of a crate that knows nothing of AgentOps (`fake-agent-framework`)
//! land as nested events; a user's own `tracing-opentelemetry` pipeline beside it is unchanged.

mod support;

use std::sync::{Arc, Mutex};

use agentops::{Client, EndState, Event, SessionOptions};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter};
use serde_json::{json, Value};
use support::{config, FakeBackend};
use tracing_subscriber::prelude::*;

fn by_name<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            e["name"] == name
                || e["model"] == name
                || e["action_type"] == name
                || e["error_type"] == name
        })
        .collect()
}

fn one<'a>(events: &'a [Value], name: &str) -> &'a Value {
    let found = by_name(events, name);
    assert_eq!(found.len(), 1, "{name}: {events:#?}");
    found[0]
}

#[test]
fn spans_of_an_agent_framework_become_nested_events() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let subscriber = tracing_subscriber::registry().with(agentops::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        let _current = session.enter();
        let answer = fake_agent_framework::answer("Weather in Paris?");
        assert!(answer.text.contains("sunny"));
        // A span outside any level filter but below INFO is left alone.
        tracing::trace_span!("noise").in_scope(|| {});
    });
    let summary = session.end(EndState::Success, "").unwrap();
    assert!(summary.delivery.is_balanced());
    let events = backend.accepted_events();
    assert_eq!(events.len(), 5, "{events:#?}");

    let agent = one(&events, "invoke_agent trip-planner");
    assert_eq!(agent["event_type"], "actions");
    assert!(agent.get("parent_id").is_none());
    assert_eq!(agent["params"]["question"], "Weather in Paris?");
    assert_eq!(agent["params"]["gen_ai.agent.name"], "trip-planner");

    let chats: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "llms")
        .collect();
    assert_eq!(chats.len(), 2);
    for chat in &chats {
        assert_eq!(chat["parent_id"], agent["id"], "{chat}");
        assert_eq!(chat["model"], "gpt-4o-mini");
    }
    let first = chats.iter().find(|c| c["prompt_tokens"] == 42).unwrap();
    assert_eq!(first["completion_tokens"], 7);
    assert_eq!(
        first["completion"][0]["tool_calls"][0]["function"]["name"], "get_weather",
        "messages recorded after the span started: {first}"
    );
    assert_eq!(
        first["attributes"]["gen_ai.operation.name"], "chat",
        "other fields are kept as attributes"
    );

    let tool = one(&events, "get_weather");
    assert_eq!(tool["event_type"], "tools");
    assert_eq!(tool["parent_id"], agent["id"]);
    assert_eq!(tool["params"], json!({"city": "Paris"}));
    assert_eq!(tool["returns"], "sunny, 21C");

    let error = one(&events, "ParseError");
    assert_eq!(error["event_type"], "errors");
    assert_eq!(error["parent_id"], agent["id"], "the nearest recorded span");
    assert_eq!(error["trigger_event"], agent["id"]);
    assert_eq!(error["details"], "the reply was not JSON; using it as text");
}

#[test]
fn spans_outside_a_session_and_the_sdk_own_are_left_alone() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let subscriber = tracing_subscriber::registry().with(agentops::tracing_layer());
    let session = client.start_session(SessionOptions::default()).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        // No session is current on this thread, and no global client exists.
        fake_agent_framework::answer("nobody listens");
        let _current = session.enter();
        tracing::info_span!(target: "agentops::internal", "ignored").in_scope(|| {});
    });
    session.end(EndState::Success, "").unwrap();
    assert!(backend.accepted_events().is_empty());
}

#[test]
fn events_recorded_by_hand_nest_under_the_entered_span_and_vice_versa() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let layer = agentops::tracing_layer()
        .with_targets(["tracing_layer"])
        .with_level(tracing::Level::DEBUG);
    let subscriber = tracing_subscriber::registry().with(layer);
    let (step_id, inner_id) = tracing::subscriber::with_default(subscriber, || {
        let _current = session.enter();
        let step = tracing::debug_span!("step");
        let _in_step = step.enter();
        let by_hand = session.record(Event::tool("by hand")).unwrap();
        let action = session.start_event(Event::action("manual")).unwrap();
        let inner = {
            let _in_action = action.enter();
            tracing::info_span!("inner")
                .in_scope(|| session.record(Event::tool("deepest")).unwrap())
        };
        let action_id = action.id();
        action.end();
        (by_hand, (action_id, inner))
    });
    session.end(EndState::Success, "").unwrap();
    let events = backend.accepted_events();
    let step = one(&events, "step");
    let by_hand = events
        .iter()
        .find(|e| e["id"] == step_id.to_string())
        .unwrap();
    assert_eq!(by_hand["parent_id"], step["id"], "recorded inside the span");
    let manual = one(&events, "manual");
    assert_eq!(manual["parent_id"], step["id"]);
    let inner = one(&events, "inner");
    assert_eq!(
        inner["parent_id"], manual["id"],
        "a span inside an entered event"
    );
    assert_eq!(manual["id"], inner_id.0.to_string());
    let deepest = events
        .iter()
        .find(|e| e["id"] == inner_id.1.to_string())
        .unwrap();
    assert_eq!(deepest["parent_id"], inner["id"], "entered last wins");
}

/// Collects what the user's own pipeline exports.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

#[test]
fn a_users_own_tracing_opentelemetry_pipeline_runs_alongside_unchanged() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(SimpleSpanProcessor::new(collected.clone()))
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("users-app")))
        .with(agentops::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        let _current = session.enter();
        fake_agent_framework::answer("Weather in Paris?");
    });
    session.end(EndState::Success, "").unwrap();
    let _ = provider.shutdown();

    // AgentOps got its events...
    assert_eq!(backend.accepted_events().len(), 5);
    // ...and the user's pipeline its own trace, untouched by the session's.
    let spans = collected.0.lock().unwrap().clone();
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let trace = spans[0].span_context.trace_id();
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
    assert_ne!(
        trace.to_bytes(),
        *session.id().as_bytes(),
        "the user's trace is not the session's"
    );
    let ids: Vec<_> = spans.iter().map(|s| s.span_context.span_id()).collect();
    for span in &spans {
        assert!(
            span.parent_span_id == opentelemetry::trace::SpanId::INVALID
                || ids.contains(&span.parent_span_id),
            "a parent from outside the user's pipeline: {span:?}"
        );
    }
}
