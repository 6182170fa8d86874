//! Trace-consistent sampling: at any rate, what reaches the backend is whole trees, every
//! error is there with its parents and its trigger, and what was left out is counted.

mod support;

use std::collections::{HashMap, HashSet};

use agentops::{Client, DeliveryCounts, EndState, Event, SamplingScope, SessionOptions};
use serde_json::Value;
use support::{config, FakeBackend};

const TREES: usize = 120;
/// Events per tree: the root task, three tool calls, an LLM call inside each.
const TREE_EVENTS: usize = 7;

/// An agent run: tasks, each with tool calls and an LLM call inside them; every fifth tool call
/// fails (an error inside the task, triggered by the tool), and every tenth task is followed by
/// a top-level error that names the finished task as its trigger.
fn run(rate: f64, scope: SamplingScope) -> (Vec<Value>, DeliveryCounts, usize) {
    let backend = FakeBackend::start();
    let client = Client::new(
        config(&backend)
            .sampling_rate(rate)
            .sampling_scope(scope)
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let mut errors = 0;
    for t in 0..TREES {
        let task = session
            .start_event(Event::action("task").params(t))
            .unwrap();
        {
            let _in_task = task.enter();
            for k in 0..3 {
                let tool = session.start_event(Event::tool("search")).unwrap();
                {
                    let _in_tool = tool.enter();
                    session
                        .record(Event::llm("gpt-4o-mini").tokens(10, 2))
                        .unwrap();
                }
                let tool_id = tool.id();
                tool.end();
                if (t * 3 + k) % 5 == 0 {
                    session
                        .record(Event::error("ToolFailed").trigger(tool_id))
                        .unwrap();
                    errors += 1;
                }
            }
        }
        let task_id = task.id();
        task.end();
        if t % 10 == 9 {
            session
                .record(Event::error("TaskFailed").trigger(task_id))
                .unwrap();
            errors += 1;
        }
    }
    let summary = session.end(EndState::Success, "").unwrap();
    (backend.accepted_events(), summary.delivery, errors)
}

fn check(rate: f64, scope: SamplingScope) {
    let (events, delivery, errors) = run(rate, scope);
    let label = format!("rate {rate}, {scope:?}");
    assert!(delivery.is_balanced(), "{label}: {delivery:?}");
    assert_eq!(delivery.recorded as usize, TREES * TREE_EVENTS + errors);
    assert_eq!(
        (delivery.failed, delivery.dropped, delivery.pending),
        (0, 0, 0),
        "{label}"
    );
    assert_eq!(delivery.delivered as usize, events.len(), "{label}");

    let by_id: HashMap<&str, &Value> = events
        .iter()
        .map(|event| (event["id"].as_str().unwrap(), event))
        .collect();
    let delivered_errors = events
        .iter()
        .filter(|event| event["event_type"] == "errors")
        .count();
    assert_eq!(delivered_errors, errors, "{label}: every error is kept");
    for event in &events {
        if let Some(parent) = event["parent_id"].as_str() {
            assert!(by_id.contains_key(parent), "{label}: orphan {event}");
        }
        if let Some(trigger) = event["trigger_event"].as_str() {
            assert!(
                by_id.contains_key(trigger),
                "{label}: trigger missing for {event}"
            );
        }
    }
    // Trees are whole: each delivered task has its three tools and their LLM calls.
    let tasks: HashSet<&str> = events
        .iter()
        .filter(|event| event["action_type"] == "task")
        .map(|event| event["id"].as_str().unwrap())
        .collect();
    for task in &tasks {
        let tools: Vec<&&Value> = by_id
            .values()
            .filter(|event| event["parent_id"] == *task && event["event_type"] == "tools")
            .collect();
        assert_eq!(tools.len(), 3, "{label}: task {task} is not whole");
    }
    let kept_trees = tasks.len();
    assert_eq!(
        delivery.sampled_out as usize,
        (TREES - kept_trees) * TREE_EVENTS,
        "{label}: whole trees are left out"
    );
    if rate >= 1.0 {
        assert_eq!(kept_trees, TREES);
    }
}

#[test]
fn per_trace_sampling_never_orphans_an_event_at_any_rate() {
    for rate in [0.0, 0.3, 0.7, 1.0] {
        check(rate, SamplingScope::Trace);
    }
}

#[test]
fn per_session_sampling_keeps_errors_with_their_trees() {
    for rate in [0.0, 0.5, 1.0] {
        check(rate, SamplingScope::Session);
    }
}

#[test]
fn at_rate_zero_only_the_trees_of_errors_are_sent() {
    let (events, delivery, _) = run(0.0, SamplingScope::Trace);
    // Every task has a failing tool every 5 tool calls, so some tasks have no error.
    assert!(delivery.sampled_out > 0);
    let tasks = events
        .iter()
        .filter(|event| event["action_type"] == "task")
        .count();
    assert!(tasks > 0 && tasks < TREES, "{tasks} of {TREES} trees kept");
}

#[test]
fn held_events_stay_within_the_queue_bound_and_errors_still_get_through() {
    let backend = FakeBackend::start();
    let client = Client::new(
        config(&backend)
            .sampling_rate(0.0)
            .max_queue_size(100)
            .batch_size(50)
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let root = session.start_event(Event::action("long task")).unwrap();
    {
        let _inside = root.enter();
        for _ in 0..5_000 {
            session.record(Event::tool("step")).unwrap();
        }
        assert!(session.delivery().pending <= 51, "{:?}", session.delivery());
    }
    let unrelated = session.record(Event::error("Unrelated")).unwrap();
    root.end();
    let summary = session.end(EndState::Success, "").unwrap();
    assert!(summary.delivery.is_balanced(), "{:?}", summary.delivery);
    assert!(backend
        .accepted_events()
        .iter()
        .any(|e| e["id"] == unrelated.to_string()));
}
