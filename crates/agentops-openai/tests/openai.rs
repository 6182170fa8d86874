//! async-openai, unmodified, against a local OpenAI-compatible server, recorded through
//! `agentops_openai::service`; what the real `agentops serve` stores is read back through its
//! query API: kinds, nesting, tokens, cost, tool calls, streaming, errors and their links.

#[path = "support/fake_openai.rs"]
mod fake_openai;

use std::time::Duration;

use agentops::{Client, Config, EndState, Event, SessionOptions};
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::CreateChatCompletionRequest;
use futures_util::StreamExt as _;
use serde_json::{json, Value};

const API_KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

struct Backend {
    server: Option<agentops_server::Server>,
    dir: std::path::PathBuf,
}

impl Backend {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("agentops-openai-{}", uuid::Uuid::new_v4()));
        let mut config = agentops_server::Config::new(&dir);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.api_key = Some(API_KEY.into());
        let server = agentops_server::Server::start(config).await.unwrap();
        Self {
            server: Some(server),
            dir,
        }
    }

    fn url(&self) -> String {
        self.server.as_ref().unwrap().url()
    }

    fn client(&self, instrument: bool) -> Client {
        let config = Config::builder()
            .ignore_env()
            .api_key(API_KEY)
            .endpoint(self.url())
            .max_wait_time(Duration::from_millis(50))
            .instrument_llm_calls(instrument)
            .build()
            .unwrap();
        Client::new(config).unwrap()
    }

    /// The session as the query API shows it.
    async fn session(&self, id: uuid::Uuid) -> Value {
        let url = format!("{}/api/v1/sessions/{id}", self.url());
        tokio::task::spawn_blocking(move || {
            let mut response = ureq::get(&url)
                .header("X-Agentops-Api-Key", API_KEY)
                .call()
                .unwrap();
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
        })
        .await
        .unwrap()
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openai(fake: &fake_openai::FakeOpenAi) -> async_openai::Client<OpenAIConfig> {
    async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(&fake.base)
            .with_api_key("sk-test"),
    )
    .with_http_service(agentops_openai::service(reqwest::Client::new()))
}

fn request(value: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(value).unwrap()
}

fn events_of_kind<'a>(detail: &'a Value, kind: &str) -> Vec<&'a Value> {
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_loop_with_tool_calls_streaming_and_a_rate_limit_is_recorded_whole() {
    let backend = Backend::start().await;
    let fake = fake_openai::FakeOpenAi::start().await;
    let client = backend.client(true);
    let session = client.start_session(SessionOptions::default()).unwrap();
    let openai = openai(&fake);

    let run = async {
        let turn = session
            .start_event(Event::action("answer_question"))
            .unwrap();
        let inside = async {
            // 1. The model asks for a tool.
            let first = openai
                .chat()
                .create(request(json!({
                    "model": "gpt-4o-mini",
                    "messages": [
                        {"role": "system", "content": "You are a travel agent."},
                        {"role": "user", "content": "What is the weather in Paris?"}
                    ],
                    "tools": [{"type": "function", "function": {"name": "get_weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                    "temperature": 0.2
                })))
                .await
                .unwrap();
            let call = first.choices[0].message.tool_calls.clone().unwrap();
            assert_eq!(call.len(), 1);
            // 2. The tool result goes back; the answer streams.
            let mut stream = openai
                .chat()
                .create_stream(request(json!({
                    "model": "gpt-4o-mini",
                    "stream": true,
                    "stream_options": {"include_usage": true},
                    "messages": [
                        {"role": "user", "content": "What is the weather in Paris?"},
                        {"role": "assistant", "content": null, "tool_calls": [
                            {"id": "call_weather_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                        {"role": "tool", "tool_call_id": "call_weather_1", "content": "sunny, 21C"}
                    ]
                })))
                .await
                .unwrap();
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                for choice in chunk.unwrap().choices {
                    text.push_str(choice.delta.content.as_deref().unwrap_or_default());
                }
            }
            assert_eq!(text, "It is sunny in Paris, 21°C.");
            // 3. A rate limit, retried by async-openai, then a success.
            let retried = openai
                .chat()
                .create(request(json!({
                    "model": "overloaded",
                    "messages": [{"role": "user", "content": "hi"}]
                })))
                .await
                .unwrap();
            assert_eq!(
                retried.choices[0].message.content.as_deref(),
                Some("Hello! How can I help?")
            );
        };
        turn.scope(inside).await;
        let turn_id = turn.id();
        turn.end();
        turn_id
    };
    let turn_id = session.scope(run).await;
    let summary = session
        .end_async(EndState::Success, "answered")
        .await
        .unwrap();
    assert!(summary.delivery.is_balanced(), "{summary:?}");
    assert_eq!(fake.requests().len(), 4, "one retry");

    let detail = backend.session(session.id()).await;
    let llms = events_of_kind(&detail, "llms");
    assert_eq!(llms.len(), 4, "{detail:#}");
    for llm in &llms {
        assert_eq!(
            llm["parent_id"],
            turn_id.to_string(),
            "nested in the action: {llm}"
        );
    }
    let tool_turn = llms
        .iter()
        .find(|e| e["completion"]["tool_calls"].is_array())
        .expect("the tool call is in the completion");
    assert_eq!(
        tool_turn["completion"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(tool_turn["model"], "gpt-4o-mini");
    assert_eq!(tool_turn["input_tokens"], 40);
    assert_eq!(tool_turn["cached_tokens"], 10);
    assert_eq!(
        tool_turn["prompt"][1]["content"],
        "What is the weather in Paris?"
    );
    assert_eq!(tool_turn["params"]["temperature"], 0.2);
    assert!(
        tool_turn["cost"].as_f64().unwrap() > 0.0,
        "priced: {tool_turn}"
    );

    let streamed = llms
        .iter()
        .find(|e| e["completion"]["content"] == "It is sunny in Paris, 21°C.")
        .expect("the streamed text is gathered");
    assert_eq!(streamed["input_tokens"], 50);
    assert_eq!(streamed["output_tokens"], 11);
    assert_eq!(streamed["reasoning_tokens"], 2);
    assert!(
        streamed["attributes"]["gen_ai.server.time_to_first_token"]
            .as_f64()
            .is_some(),
        "{streamed}"
    );

    let errors = events_of_kind(&detail, "errors");
    assert_eq!(errors.len(), 1, "{detail:#}");
    let limited = llms
        .iter()
        .find(|e| e["model"] == "overloaded" && e["id"] == errors[0]["parent_id"])
        .expect("the 429 error hangs from its own call");
    assert_eq!(errors[0]["attributes"]["error_type"], "RateLimited");
    assert_eq!(errors[0]["attributes"]["code"], "429");
    assert_eq!(errors[0]["attributes"]["trigger_event"], limited["id"]);
    assert!(llms
        .iter()
        .any(|e| e["model"] == "overloaded"
            && e["completion"]["content"] == "Hello! How can I help?"));
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instrument_llm_calls_turns_recording_off_and_on() {
    let backend = Backend::start().await;
    let fake = fake_openai::FakeOpenAi::start().await;
    let openai = openai(&fake);
    for instrument in [false, true] {
        let client = backend.client(instrument);
        let session = client.start_session(SessionOptions::default()).unwrap();
        let answer = session
            .scope(openai.chat().create(request(json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi"}]
            }))))
            .await
            .unwrap();
        assert_eq!(answer.choices.len(), 1, "the call works either way");
        session.end_async(EndState::Success, "").await.unwrap();
        let detail = backend.session(session.id()).await;
        assert_eq!(
            events_of_kind(&detail, "llms").len(),
            usize::from(instrument),
            "instrument_llm_calls = {instrument}"
        );
    }
    // Outside any session, calls are not recorded and still work.
    let answer = openai
        .chat()
        .create(request(
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        ))
        .await
        .unwrap();
    assert_eq!(answer.choices.len(), 1);
    backend.stop().await;
}
