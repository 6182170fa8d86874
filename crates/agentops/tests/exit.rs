//! Single-session mode at exit: a program that returns from `main` (or calls
//! `std::process::exit`, or panics) without ending its session still delivers its events and
//! its end state. Each scenario runs this test binary again as a child program with a real
//! `main` (hence `harness = false`).

mod support;

use std::process::Command;
use std::time::Duration;

use agentops::Event;
use serde_json::Value;
use support::{FakeBackend, API_KEY};

const CHILD: &str = "AGENTOPS_EXIT_TEST_CHILD";
const ENDPOINT: &str = "AGENTOPS_EXIT_TEST_ENDPOINT";

fn main() {
    match std::env::var(CHILD) {
        Ok(scenario) => child(&scenario),
        Err(_) => parent(),
    }
}

/// The child program: records three actions into the default session and leaves.
fn child(scenario: &str) {
    let config = agentops::Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(std::env::var(ENDPOINT).expect("endpoint"))
        // Nothing is exported before exit unless exit does it.
        .max_wait_time(Duration::from_secs(600))
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .expect("config");
    agentops::init(config).expect("init");
    for step in 0..3 {
        agentops::record(Event::action("step").params(step)).expect("record");
    }
    match scenario {
        "return" => {}
        "exit" => std::process::exit(3),
        "panic" => panic!("boom in main"),
        "panic-in-a-thread" => {
            let _ = std::thread::spawn(|| panic!("boom in a worker thread")).join();
        }
        other => panic!("unknown scenario {other}"),
    }
}

struct Expected {
    scenario: &'static str,
    exit_code: i32,
    end_state: &'static str,
    reason: &'static str,
    panic_events: usize,
}

fn parent() {
    let cases = [
        Expected {
            scenario: "return",
            exit_code: 0,
            end_state: "Indeterminate",
            reason: "the process exited without ending the session",
            panic_events: 0,
        },
        Expected {
            scenario: "exit",
            exit_code: 3,
            end_state: "Indeterminate",
            reason: "the process exited without ending the session",
            panic_events: 0,
        },
        Expected {
            scenario: "panic",
            exit_code: 101,
            end_state: "Fail",
            reason: "panicked: boom in main",
            panic_events: 1,
        },
        Expected {
            scenario: "panic-in-a-thread",
            exit_code: 0,
            end_state: "Indeterminate",
            reason: "the process exited without ending the session",
            panic_events: 1,
        },
    ];
    for case in &cases {
        let backend = FakeBackend::start();
        let output = Command::new(std::env::current_exe().expect("this test binary"))
            .env(CHILD, case.scenario)
            .env(ENDPOINT, backend.endpoint())
            .output()
            .expect("run the child");
        let scenario = case.scenario;
        assert_eq!(
            output.status.code(),
            Some(case.exit_code),
            "{scenario}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let events = backend.accepted_events();
        let steps = events.iter().filter(|e| e["action_type"] == "step").count();
        assert_eq!(steps, 3, "{scenario}: {events:?}");
        let panics: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "errors" && e["error_type"] == "panic")
            .collect();
        assert_eq!(panics.len(), case.panic_events, "{scenario}: {events:?}");
        if let Some(panic) = panics.first() {
            assert!(
                panic["details"].as_str().unwrap().starts_with("boom"),
                "{panic}"
            );
            assert!(
                panic["exception"].as_str().unwrap().contains("exit.rs"),
                "the location: {panic}"
            );
        }
        let ends = backend.requests_to("/v2/update_session");
        let end = &ends
            .last()
            .unwrap_or_else(|| panic!("{scenario}: never ended"))
            .body["session"];
        assert_eq!(end["end_state"], case.end_state, "{scenario}");
        assert_eq!(end["end_state_reason"], case.reason, "{scenario}");
        println!("exit: {scenario}: ok");
    }
    println!("test result: ok. {} scenarios passed", cases.len());
}
