//! A local server that speaks the OpenAI chat-completions API (plain and streamed), for tests
//! and the offline example: a weather question gets a `get_weather` tool call, a tool result
//! gets the answer, the model `overloaded` is rate-limited (429) on its first call, and every
//! answer reports usage with cached and reasoning tokens.

#![allow(dead_code)] // each user takes what it needs

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The fake server, serving until the runtime that started it stops.
pub struct FakeOpenAi {
    /// Its base URL, for `OpenAIConfig::with_api_base` (ends with `/v1`).
    pub base: String,
    state: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Value>>,
    rate_limited: AtomicUsize,
}

impl FakeOpenAi {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let state = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{address}/v1"),
            state,
        }
    }

    /// The request bodies it received.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().unwrap().clone()
    }
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": prompt / 4},
        "completion_tokens_details": {"reasoning_tokens": completion / 5},
    })
}

/// The assistant's turn for `messages`: a tool call, or text.
fn reply(messages: &[Value]) -> (Option<Value>, String) {
    let after_tool = messages.last().is_some_and(|m| m["role"] == "tool");
    let asks_weather = messages.iter().any(|m| {
        m["role"] == "user" && m["content"].as_str().is_some_and(|c| c.contains("weather"))
    });
    if asks_weather && !after_tool {
        let call = json!({"id": "call_weather_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
        (Some(call), String::new())
    } else if after_tool {
        (None, "It is sunny in Paris, 21°C.".to_owned())
    } else {
        (None, "Hello! How can I help?".to_owned())
    }
}

async fn chat(State(state): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    state.requests.lock().unwrap().push(body.clone());
    let model = body["model"].as_str().unwrap_or("gpt-4o-mini").to_owned();
    if model == "overloaded" && state.rate_limited.fetch_add(1, Ordering::SeqCst) == 0 {
        return Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::RETRY_AFTER, "0")
            .body(Body::from(
                json!({"error": {"message": "Rate limit reached for requests",
                    "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
                .to_string(),
            ))
            .unwrap();
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let (tool_call, text) = reply(&messages);
    let prompt_tokens = 20 + 10 * messages.len() as u64;
    let completion_tokens = 5 + text.split_whitespace().count() as u64;
    let id = format!("chatcmpl-{}", messages.len());
    if body["stream"] == true {
        let include_usage = body["stream_options"]["include_usage"] == true;
        return stream(
            &id,
            &model,
            tool_call,
            &text,
            include_usage.then(|| usage(prompt_tokens, completion_tokens)),
        );
    }
    let mut message = json!({"role": "assistant", "content": text});
    let finish = if let Some(call) = tool_call {
        message["content"] = Value::Null;
        message["tool_calls"] = json!([call]);
        "tool_calls"
    } else {
        "stop"
    };
    let answer = json!({
        "id": id, "object": "chat.completion", "created": 1_795_311_032, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": usage(prompt_tokens, completion_tokens),
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(answer.to_string()))
        .unwrap()
}

/// The same answer as server-sent events, a few words per chunk.
fn stream(
    id: &str,
    model: &str,
    tool_call: Option<Value>,
    text: &str,
    usage: Option<Value>,
) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_795_311_032,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if let Some(call) = tool_call {
        events.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}]}),
            Value::Null,
        ));
        events.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": call["function"]["arguments"]}}]}),
            Value::Null,
        ));
        events.push(chunk(json!({}), json!("tool_calls")));
    } else {
        for word in text.split_inclusive(' ') {
            events.push(chunk(json!({"content": word}), Value::Null));
        }
        events.push(chunk(json!({}), json!("stop")));
    }
    if let Some(usage) = usage {
        events.push(
            json!({"id": id, "object": "chat.completion.chunk", "created": 1_795_311_032,
            "model": model, "choices": [], "usage": usage}),
        );
    }
    let mut body = String::new();
    for event in events {
        body.push_str(&format!("data: {event}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from(body))
        .unwrap()
}
