//! `#[agentops::action]`, `#[agentops::tool]` and `#[agentops::llm]` on sync and async
//! functions and methods: params (with skip and redact), return values, `Err` as a linked
//! error event, nesting, and nothing recorded outside a session. Misuse is a clear compile
//! error (`tests/ui`, run by trybuild).

mod support;

use std::fmt;

use agentops::{Client, EndState, SessionOptions};
use serde::Serialize;
use serde_json::{json, Value};
use support::{config, FakeBackend};

#[derive(Serialize)]
struct Query {
    text: String,
    limit: u8,
}

/// Not `Serialize`: recorded through `Debug`.
#[derive(Debug)]
struct Handle(#[allow(dead_code)] u32);

/// Neither `Serialize` nor `Debug`: recorded as its type name.
struct Opaque;

#[derive(Debug)]
struct SearchError(String);

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "search failed: {}", self.0)
    }
}

impl std::error::Error for SearchError {}

#[agentops::tool(skip(opaque), redact(api_key))]
fn search(query: Query, api_key: &str, handle: Handle, opaque: Opaque) -> Vec<String> {
    let _ = (api_key, handle, opaque);
    vec![format!("{} result(s) for {}", query.limit, query.text)]
}

#[agentops::tool(name = "fetch_page")]
async fn fetch(url: String) -> Result<String, SearchError> {
    if url.contains("bad") {
        return Err(SearchError(url));
    }
    Ok(format!("<html>{url}</html>"))
}

#[agentops::llm(model = "gpt-4o-mini")]
fn summarise(text: &str) -> String {
    format!("summary of {} chars", text.len())
}

/// `?` converts the error as it would without the attribute.
#[agentops::action]
fn parse_number(text: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let n: u32 = text.parse()?;
    Ok(n * 2)
}

struct Agent {
    name: String,
}

impl Agent {
    #[agentops::action(name = "research")]
    async fn research(&self, topic: &str) -> Result<Vec<String>, SearchError> {
        let page = fetch(format!("https://example.com/{topic}")).await?;
        let summary = summarise(&page);
        Ok(vec![self.name.clone(), summary])
    }

    #[agentops::action(skip_return)]
    fn plan(&mut self, steps: u32) -> Vec<u32> {
        self.name.push('!');
        (0..steps).collect()
    }
}

fn named<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["name"] == name || e["model"] == name || e["action_type"] == name)
        .unwrap_or_else(|| panic!("no event {name}: {events:#?}"))
}

#[test]
fn recorded_functions_become_events_with_params_returns_and_errors() {
    let backend = FakeBackend::start();
    let client = Client::new(config(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    {
        let _current = session.enter();
        let found = search(
            Query {
                text: "rust".into(),
                limit: 3,
            },
            "sk-secret",
            Handle(7),
            Opaque,
        );
        assert_eq!(found, ["3 result(s) for rust"]);
        assert_eq!(parse_number("21").unwrap(), 42);
        assert!(parse_number("x").is_err());
        let mut agent = Agent {
            name: "researcher".into(),
        };
        assert_eq!(agent.plan(3), [0, 1, 2]);
        let researched = runtime.block_on(session.scope(agent.research("ferris")));
        assert_eq!(researched.unwrap()[0], "researcher!");
        let failed = runtime.block_on(session.scope(fetch("https://bad.example".into())));
        assert!(failed.is_err());
    }
    let summary = session.end(EndState::Success, "").unwrap();
    assert!(summary.delivery.is_balanced());
    let events = backend.accepted_events();

    let search = named(&events, "search");
    assert_eq!(search["event_type"], "tools");
    assert_eq!(
        search["params"],
        json!({"query": {"text": "rust", "limit": 3}, "api_key": "[redacted]", "handle": "Handle(7)"})
    );
    assert_eq!(search["returns"], json!(["3 result(s) for rust"]));

    let parses: Vec<&Value> = events
        .iter()
        .filter(|e| e["action_type"] == "parse_number")
        .collect();
    assert_eq!(parses.len(), 2);
    let ok = parses.iter().find(|e| e["returns"] == 42).unwrap();
    assert_eq!(ok["params"], json!({"text": "21"}));
    let bad = parses.iter().find(|e| e["returns"].is_null()).unwrap();
    let error = events
        .iter()
        .find(|e| e["event_type"] == "errors" && e["trigger_event"] == bad["id"])
        .expect("the Err became an error event linked to the call");
    assert_eq!(error["parent_id"], bad["id"]);
    assert_eq!(error["error_type"], "Box");
    assert_eq!(error["details"], "invalid digit found in string");

    let plan = named(&events, "plan");
    assert_eq!(plan["params"], json!({"steps": 3}));
    assert!(plan["returns"].is_null(), "skip_return");

    let research = named(&events, "research");
    assert_eq!(research["params"], json!({"topic": "ferris"}));
    assert_eq!(research["returns"][0], "researcher!");
    let fetches: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "fetch_page")
        .collect();
    assert_eq!(fetches.len(), 2);
    let inner = fetches
        .iter()
        .find(|e| e["parent_id"] == research["id"])
        .expect("an async call inside an async call is its child");
    assert!(inner["returns"].as_str().unwrap().contains("ferris"));
    let llm = named(&events, "gpt-4o-mini");
    assert_eq!(llm["event_type"], "llms");
    assert_eq!(llm["parent_id"], research["id"]);
    assert_eq!(llm["prompt"]["text"], inner["returns"]);
    assert!(llm["completion"]
        .as_str()
        .unwrap()
        .starts_with("summary of"));

    let failed_fetch = fetches
        .iter()
        .find(|e| e.get("parent_id").is_none())
        .unwrap();
    let fetch_error = events
        .iter()
        .find(|e| e["trigger_event"] == failed_fetch["id"])
        .unwrap();
    assert_eq!(fetch_error["error_type"], "SearchError");
    assert_eq!(fetch_error["details"], "search failed: https://bad.example");
}

#[test]
fn outside_a_session_recorded_functions_just_run() {
    assert_eq!(summarise("abc"), "summary of 3 chars");
    assert_eq!(parse_number("4").unwrap(), 8);
}

#[test]
fn misuse_is_a_clear_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
