//! Events reach the backend exactly once, in the Python SDK's v2 shape.

mod support;

use std::collections::HashSet;

use agentops::{ChatMessage, Client, EndState, Event, SessionOptions};
use serde_json::{json, Value};
use support::{config, FakeBackend, API_KEY};

fn event_by_id<'a>(events: &'a [Value], id: &agentops::EventId) -> &'a Value {
    events
        .iter()
        .find(|e| e["id"] == id.to_string())
        .unwrap_or_else(|| panic!("event {id} not delivered"))
}

#[test]
fn a_session_speaks_the_v2_api_of_the_python_sdk() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).default_tags(["rust"]).build().unwrap()).unwrap();
    let session = client
        .start_session(SessionOptions::tags(["demo"]))
        .unwrap();
    let agent = session.create_agent("planner-agent").unwrap();

    let llm = session
        .record(
            Event::llm("gpt-4o-mini")
                .prompt_messages([
                    ChatMessage::system("be brief"),
                    ChatMessage::user("What is 2+2?"),
                ])
                .completion_message(ChatMessage::assistant("4"))
                .tokens(7, 1)
                .params(json!({"temperature": 0.0}))
                .agent(agent),
        )
        .unwrap();
    let action = session
        .start_event(Event::action("search_web").params(json!({"query": "weather in Paris"})))
        .unwrap();
    let tool = {
        let _inside = action.enter();
        session
            .record(
                Event::tool("http_get")
                    .params(json!({"url": "x"}))
                    .logs("200 OK"),
            )
            .unwrap()
    };
    let action_id = action.id();
    action.end_with(|event| event.returns("sunny, 21C").logs("looked up weather"));
    let error = session
        .record(
            Event::error("ValueError")
                .code("E42")
                .details("bad value in search")
                .trigger(action_id),
        )
        .unwrap();
    let custom = session
        .record(Event::custom("checkpoint").with_field("step", 3))
        .unwrap();
    session.add_tags(["extra"]).unwrap();

    let summary = session.end(EndState::Success, "all good").unwrap();
    assert_eq!(summary.delivery.delivered, 5);
    assert_eq!(
        (
            summary.delivery.failed,
            summary.delivery.dropped,
            summary.delivery.pending
        ),
        (0, 0, 0)
    );
    assert_eq!(summary.token_cost.as_deref(), Some("0.0123"));
    assert_eq!(summary.token_cost_usd(), Some(0.0123));
    assert_eq!(summary.event_counts["llms"], 1);
    assert_eq!(summary.event_counts["checkpoint"], 1);
    assert!(summary.backend_error.is_none());

    // create_session: API key only, the Python SDK's session body.
    let created = &backend.requests_to("/v2/create_session")[0];
    assert_eq!(created.header("x-agentops-api-key"), Some(API_KEY));
    assert!(created.header("authorization").is_none());
    let body = &created.body["session"];
    assert_eq!(body["session_id"], session.id().to_string());
    assert_eq!(body["end_state"], "Indeterminate");
    // Default tags first, then the session's (a tag added meanwhile may already be there).
    assert_eq!(body["tags"][0], "rust");
    assert_eq!(body["tags"][1], "demo");
    assert!(body["init_timestamp"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(body["host_env"]["SDK"]["Language"], "Rust");

    // create_events: both auth headers, gzip, every event once.
    let posts = backend.requests_to("/v2/create_events");
    assert!(posts
        .iter()
        .all(|r| r.header("x-agentops-api-key") == Some(API_KEY)));
    let bearer = format!("Bearer jwt-{}-1", session.id());
    assert!(posts
        .iter()
        .all(|r| r.header("authorization") == Some(bearer.as_str())));
    assert!(posts
        .iter()
        .all(|r| r.header("content-encoding") == Some("gzip")));
    let events = backend.accepted_events();
    assert_eq!(events.len(), 5);
    let ids: HashSet<_> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);

    let llm = event_by_id(&events, &llm);
    assert_eq!(llm["event_type"], "llms");
    assert_eq!(llm["model"], "gpt-4o-mini");
    assert_eq!(
        llm["prompt"][1],
        json!({"role": "user", "content": "What is 2+2?"})
    );
    assert_eq!(llm["completion"]["content"], "4");
    assert_eq!(
        (
            llm["prompt_tokens"].as_u64(),
            llm["completion_tokens"].as_u64()
        ),
        (Some(7), Some(1))
    );
    assert_eq!(llm["params"]["temperature"], 0.0);
    assert_eq!(llm["agent_id"], agent.to_string());
    assert_eq!(llm["session_id"], session.id().to_string());
    for key in ["thread_id", "cost", "returns"] {
        assert!(llm.get(key).is_some(), "llm event lacks {key}");
    }

    let action = event_by_id(&events, &action_id);
    assert_eq!(action["event_type"], "actions");
    assert_eq!(action["action_type"], "search_web");
    assert_eq!(action["returns"], "sunny, 21C");
    assert!(action.get("screenshot").is_some());
    assert!(action["init_timestamp"].as_str() < action["end_timestamp"].as_str());

    let tool = event_by_id(&events, &tool);
    assert_eq!(tool["tool_name"], "http_get");
    assert_eq!(
        tool["parent_id"],
        action_id.to_string(),
        "a tool recorded inside an action is its child"
    );

    let error = event_by_id(&events, &error);
    assert_eq!(error["error_type"], "ValueError");
    assert_eq!(error["trigger_event"], action_id.to_string());
    assert_eq!(error["code"], "E42");

    assert_eq!(event_by_id(&events, &custom)["event_type"], "checkpoint");
    assert_eq!(event_by_id(&events, &custom)["step"], 3);

    // create_agent and tags went out with the session's JWT.
    let agent_call = &backend.requests_to("/v2/create_agent")[0];
    assert_eq!(
        agent_call.body,
        json!({"id": agent.to_string(), "name": "planner-agent"})
    );
    assert_eq!(agent_call.header("authorization"), Some(bearer.as_str()));

    // The last update_session ends it; the tags update came first.
    let updates = backend.requests_to("/v2/update_session");
    let last = &updates.last().unwrap().body["session"];
    assert_eq!(last["end_state"], "Success");
    assert_eq!(last["end_state_reason"], "all good");
    assert_eq!(last["tags"], json!(["rust", "demo", "extra"]));
    assert_eq!(last["event_counts"]["tools"], 1);
    assert!(last["end_timestamp"].is_string());
    assert!(updates.len() >= 2, "the tags update is sent before the end");

    // Nothing is sent for an ended session.
    assert!(matches!(
        session.record(Event::action("late")),
        Err(agentops::Error::SessionEnded { .. })
    ));
    assert!(session.end(EndState::Fail, "").is_err());
}

#[test]
fn compression_can_be_turned_off() {
    let backend = FakeBackend::start();
    let client = Client::new(
        config(&backend)
            .compression(agentops::Compression::None)
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.record(Event::action("a")).unwrap();
    session.end(EndState::Success, "").unwrap();
    let posts = backend.requests_to("/v2/create_events");
    assert!(!posts.is_empty());
    assert!(posts.iter().all(|r| r.header("content-encoding").is_none()));
    assert_eq!(backend.accepted_events().len(), 1);
}

#[test]
fn the_parent_key_is_sent_when_configured() {
    let backend = FakeBackend::start();
    let parent = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
    let client = Client::new(config(&backend).parent_key(parent).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.end(EndState::Success, "").unwrap();
    assert_eq!(
        backend.requests_to("/v2/create_session")[0].header("x-agentops-parent-key"),
        Some(parent)
    );
}

#[test]
fn sampling_keeps_every_error_and_counts_what_it_leaves_out() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).sampling_rate(0.0).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    for _ in 0..20 {
        session.record(Event::action("noise")).unwrap();
    }
    session.record(Event::error("Boom")).unwrap();
    let summary = session.end(EndState::Fail, "boom").unwrap();
    assert_eq!(summary.delivery.sampled_out, 20);
    let events = backend.accepted_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "errors");
}

#[test]
fn custom_attributes_of_client_session_and_event_reach_the_backend() {
    let backend = FakeBackend::start();
    let client = Client::new(
        config(&backend)
            .attribute("deployment", "staging")
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client
        .start_session(SessionOptions::default().attribute("run", 7_i64))
        .unwrap();
    session
        .record(Event::tool("t").attribute("cache_hit", true))
        .unwrap();
    session.end(EndState::Success, "").unwrap();
    let events = backend.accepted_events();
    assert_eq!(
        events[0]["attributes"],
        json!({"deployment": "staging", "run": 7, "cache_hit": true})
    );
}
