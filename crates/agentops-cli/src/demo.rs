//! `agentops demo`: records a realistic multi-agent session through the Rust SDK into a running
//! server, so that a newcomer sees real data in one command.

use std::time::{Duration, SystemTime};

use agentops::{ChatMessage, Client, Config, EndState, Event, SessionOptions, SessionSummary};
use anyhow::Context;
use serde_json::json;

/// The demo's clock: realistic durations, played eight times faster than life, so that the
/// whole session takes about two seconds.
struct Clock(SystemTime);

impl Clock {
    const SPEED: u64 = 8;

    /// Advances by `ms` (at real-life speed) and returns the new time.
    fn after(&mut self, ms: u64) -> SystemTime {
        self.0 += Duration::from_millis(ms / Self::SPEED);
        self.0
    }

    /// Waits until the clock's time has come, so that the session ends after its events.
    fn catch_up(&self) {
        if let Ok(ahead) = self.0.duration_since(SystemTime::now()) {
            std::thread::sleep(ahead);
        }
    }
}

/// Records the demo session and ends it; `progress` is told each step.
pub fn run(
    endpoint: &str,
    api_key: &str,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<SessionSummary> {
    let config = Config::builder()
        .ignore_env()
        .api_key(api_key)
        .endpoint(endpoint)
        .max_wait_time(Duration::from_millis(200))
        .retry_attempts(3)
        .build()
        .context("invalid demo configuration")?;
    let client = Client::new(config)?;
    let session = client.start_session(SessionOptions::tags(["demo", "multi-agent", "travel"]))?;
    let researcher = session.create_agent("researcher")?;
    let writer = session.create_agent("writer")?;
    let mut clock = Clock(SystemTime::now());

    progress("planner: planning the trip");
    let plan = session.start_event(
        Event::action("plan_trip")
            .params(json!({"goal": "3 days in Lisbon in May, mid budget"}))
            .started_at(clock.after(0)),
    )?;
    {
        let _inside = plan.enter();
        session.record(
            Event::llm("gpt-4o-mini")
                .prompt_messages([
                    ChatMessage::system("You are a travel planner. Split the goal into research tasks."),
                    ChatMessage::user("3 days in Lisbon in May, mid budget"),
                ])
                .completion_message(ChatMessage::assistant(
                    "1. Weather in May\n2. Neighbourhoods to stay in\n3. Day trips\n4. Budget per day",
                ))
                .tokens(412, 38)
                .agent(researcher)
                .started_at(clock.after(120))
                .ended_at(clock.after(1_850)),
        )?;

        progress("researcher: searching the web");
        for (query, result) in [
            ("Lisbon weather May", "avg 22°C, 6 rainy days"),
            ("best Lisbon neighbourhoods", "Alfama, Baixa, Príncipe Real"),
            ("day trips from Lisbon", "Sintra, Cascais, Arrábida"),
        ] {
            session.record(
                Event::tool("web_search")
                    .params(json!({"query": query}))
                    .returns(result)
                    .agent(researcher)
                    .started_at(clock.after(200))
                    .ended_at(clock.after(900)),
            )?;
        }

        progress("researcher: an LLM call hits a rate limit, then succeeds");
        let limited = session.record(
            Event::llm("claude-sonnet-4-5")
                .prompt_messages([ChatMessage::user(
                    "Estimate a mid-range daily budget in Lisbon.",
                )])
                .agent(researcher)
                .started_at(clock.after(150))
                .ended_at(clock.after(300)),
        )?;
        session.record(
            Event::error("RateLimitError")
                .code("429")
                .details("rate limit reached for claude-sonnet-4-5; retrying in 2 s")
                .trigger(limited)
                .agent(researcher)
                .started_at(clock.after(1))
                .ended_at(clock.after(1)),
        )?;
        session.record(
            Event::llm("claude-sonnet-4-5")
                .prompt_messages([ChatMessage::user(
                    "Estimate a mid-range daily budget in Lisbon.",
                )])
                .completion("About €120 a day: €70 lodging, €35 food, €15 transport and sights.")
                .tokens(96, 41)
                .agent(researcher)
                .started_at(clock.after(2_000))
                .ended_at(clock.after(2_400)),
        )?;
    }
    plan.end_with(|event| {
        event
            .returns(json!({"tasks": 4, "done": 4}))
            .ended_at(clock.after(100))
    });

    progress("writer: drafting the itinerary");
    session.record(
        Event::llm("gpt-4o")
            .prompt_messages([
                ChatMessage::system("Write a friendly 3-day itinerary from the research notes."),
                ChatMessage::user("Weather: 22°C. Stay: Alfama. Trips: Sintra. Budget: €120/day."),
            ])
            .completion(
                "Day 1: Alfama and the Castelo… Day 2: Sintra… Day 3: Belém and LX Factory…",
            )
            .tokens(1_250, 640)
            .agent(writer)
            .started_at(clock.after(300))
            .ended_at(clock.after(6_200)),
    )?;
    session.record(
        Event::tool("save_document")
            .params(json!({"path": "itinerary.md"}))
            .returns("saved, 2.1 KB")
            .agent(writer)
            .started_at(clock.after(50))
            .ended_at(clock.after(120)),
    )?;

    progress("ending the session");
    clock.catch_up();
    Ok(session.end(EndState::Success, "itinerary written")?)
}
