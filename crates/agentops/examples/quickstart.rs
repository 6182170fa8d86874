//! Quickstart: record one small agent run and print what became of it.
//!
//! ```sh
//! cargo run --release -p agentops-cli -- serve     # a local backend; prints an API key once
//! export AGENTOPS_API_KEY=<the key it printed>
//! export AGENTOPS_API_ENDPOINT=http://127.0.0.1:4318   # optional: the default
//! cargo run -p agentops --example quickstart
//! ```

use std::process::ExitCode;

use agentops::{ChatMessage, Config, EndState, Event};
use serde_json::json;

fn main() -> ExitCode {
    // AGENTOPS_API_KEY is required; AGENTOPS_API_ENDPOINT defaults to the local server.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("quickstart: {err}");
            eprintln!(
                "Set AGENTOPS_API_KEY (and AGENTOPS_API_ENDPOINT if the backend is not local)."
            );
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("quickstart: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> Result<(), agentops::Error> {
    // Single-session mode: `init` starts "the" session; module-level calls record into it.
    agentops::init(config)?;
    let agent = agentops::create_agent("research-assistant")?;

    // An LLM call, with its chat messages and token counts.
    agentops::record(
        Event::llm("gpt-4o-mini")
            .agent(agent)
            .prompt_messages([
                ChatMessage::system("You are a helpful assistant."),
                ChatMessage::user("What is the weather in Paris?"),
            ])
            .completion_message(ChatMessage::assistant("Let me look that up."))
            .tokens(24, 6),
    )?;

    // An action that lasts a while; a tool recorded while it is entered becomes its child.
    let search = agentops::start_event(Event::action("search_web").agent(agent))?;
    {
        let _inside = search.enter();
        agentops::record(
            Event::tool("http_get")
                .params(json!({"url": "https://weather.example/paris"}))
                .returns("200 OK"),
        )?;
    }
    let search_id = search.id();
    search.end_with(|event| event.returns("sunny, 21C"));

    // A tool on its own, and an error that points at the action that caused it.
    agentops::record(
        Event::tool("calculator")
            .params(json!({"expr": "21 * 9 / 5 + 32"}))
            .returns("69.8"),
    )?;
    agentops::record(
        Event::error("RateLimited")
            .trigger(search_id)
            .code("429")
            .details("the weather API asked us to slow down"),
    )?;

    agentops::add_tags(["quickstart", "weather"])?;

    // Ending delivers every queued event, then reports the cost and the delivery counts.
    let summary = agentops::end_session(EndState::Success, "answered the question")?;
    let counts = &summary.event_counts;
    let delivery = &summary.delivery;
    println!(
        "Session {} ended: {:?}",
        summary.session_id, summary.end_state
    );
    println!(
        "  see it at:  {}",
        summary.session_url.as_deref().unwrap_or("(no url given)")
    );
    println!(
        "  token cost: ${}",
        summary.token_cost.as_deref().unwrap_or("?")
    );
    println!(
        "  events:     {} llms, {} actions, {} tools, {} errors",
        counts.get("llms").unwrap_or(&0),
        counts.get("actions").unwrap_or(&0),
        counts.get("tools").unwrap_or(&0),
        counts.get("errors").unwrap_or(&0),
    );
    println!(
        "  delivery:   {} recorded, {} delivered, {} dropped, {} failed, {} pending ({} requests retried)",
        delivery.recorded,
        delivery.delivered,
        delivery.dropped,
        delivery.failed,
        delivery.pending,
        delivery.retried
    );
    if let Some(err) = &summary.backend_error {
        println!("  warning:    {err}");
    }
    Ok(())
}
