//! A tool-using agent observed by AgentOps with three lines beyond `init`: async-openai goes
//! through `agentops_openai::default_service()`, the tools carry `#[agentops::tool]`, and the
//! agent's turn is an `#[agentops::action]`. It talks to a local OpenAI-compatible server that
//! it starts itself, so it runs offline.
//!
//! ```sh
//! cargo run --release -p agentops-cli -- serve           # prints an API key once
//! AGENTOPS_API_KEY=<the key> cargo run -p agentops-openai --example agent_loop
//! cargo run -p agentops-cli -- sessions show <the session id it prints>
//! ```

#[path = "../tests/support/fake_openai.rs"]
mod fake_openai;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::CreateChatCompletionRequest;
use serde_json::{json, Value};

/// A tool the model can call.
#[agentops::tool]
fn get_weather(city: &str) -> String {
    match city {
        "Paris" => "sunny, 21C".to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// One question, answered by a loop of model turns and tool calls.
#[agentops::action]
async fn answer(
    question: &str,
    openai: &async_openai::Client<OpenAIConfig>,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a travel agent. Use tools for facts."}),
        json!({"role": "user", "content": question}),
    ];
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    loop {
        let request: CreateChatCompletionRequest = serde_json::from_value(
            json!({"model": "gpt-4o-mini", "messages": messages, "tools": tools}),
        )?;
        let response = openai.chat().create(request).await?;
        let message = &response.choices[0].message;
        let Some(calls) = &message.tool_calls else {
            return Ok(message.content.clone().unwrap_or_default());
        };
        messages.push(serde_json::to_value(message)?);
        for call in calls {
            let async_openai::types::chat::ChatCompletionMessageToolCalls::Function(call) = call
            else {
                continue;
            };
            let arguments: Value = serde_json::from_str(&call.function.arguments)?;
            let result = get_weather(arguments["city"].as_str().unwrap_or_default());
            messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": result}));
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let fake = fake_openai::FakeOpenAi::start().await;
    let session = agentops::init(agentops::Config::from_env()?)?.ok_or("no session started")?;
    let openai = async_openai::Client::with_config(OpenAIConfig::new().with_api_base(&fake.base))
        .with_http_service(agentops_openai::default_service());

    let reply = answer("What is the weather in Paris?", &openai).await?;
    println!("agent: {reply}");

    let summary = session
        .end_async(agentops::EndState::Success, "answered")
        .await?;
    println!(
        "session {}: {} events delivered, cost ${}",
        summary.session_id,
        summary.delivery.delivered,
        summary.token_cost.as_deref().unwrap_or("?")
    );
    Ok(())
}
