//! An agent split over services: this orchestrator plans a trip, asks a Rust tool service
//! (`examples/tool_service.rs`) for the forecast and a Python service for a summary, passing
//! its session on in each request's `traceparent` and `baggage` headers. The AgentOps server
//! shows one session with every service's work nested under the call that asked for it.
//!
//! ```sh
//! export AGENTOPS_API_KEY=<key> AGENTOPS_API_ENDPOINT=http://127.0.0.1:4318
//! TOOL_SERVICE_URL=http://127.0.0.1:PORT [SUMMARY_SERVICE_URL=http://…] \
//!   cargo run -p agentops --example orchestrator
//! ```
//!
//! Prints the session id as JSON.

use agentops::propagation::HeaderInjector;
use agentops::{Config, EndState, Event, EventSpan, SessionOptions};
use serde_json::{json, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_env()?;
    config.auto_start_session = false;
    agentops::init(config)?;
    let session =
        agentops::start_session(SessionOptions::tags(["distributed"]).baggage("user.id", "u-42"))?;
    let plan = session.start_event(Event::action("plan_trip").params(json!({"city": "Lisbon"})))?;
    let inside = plan.enter();

    let tool_service = std::env::var("TOOL_SERVICE_URL")?;
    let call = session.start_event(Event::tool("weather_service"))?;
    let forecast = post(
        &call,
        &format!("{tool_service}/forecast"),
        json!({"city": "Lisbon"}),
    )?;
    call.end_with(|event| event.returns(forecast.clone()));

    if let Ok(summary_service) = std::env::var("SUMMARY_SERVICE_URL") {
        let call = session.start_event(Event::tool("summary_service"))?;
        let summary = post(&call, &format!("{summary_service}/summarise"), forecast)?;
        call.end_with(|event| event.returns(summary));
    }
    drop(inside);
    plan.end();
    session.end(EndState::Success, "trip planned")?;
    println!("{}", json!({"session_id": session.id()}));
    Ok(())
}

/// POSTs `body` as JSON with `call`'s trace context and the session's baggage.
fn post(call: &EventSpan, url: &str, body: Value) -> Result<Value, Box<dyn std::error::Error>> {
    let mut headers = http::HeaderMap::new();
    call.inject_into(&mut HeaderInjector(&mut headers));
    let mut request = ureq::post(url).header("Content-Type", "application/json");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let answer = request
        .send(body.to_string())?
        .body_mut()
        .read_to_string()?;
    Ok(serde_json::from_str(&answer)?)
}
