//! OpenAI-compatible chat payloads, decoded on the delivery thread.
//!
//! An LLM event may carry the raw body of its chat-completions request and response
//! ([`crate::Event::chat_request_json`], [`crate::Event::chat_response_json`]) instead of its
//! fields: recording then costs the caller a copy of the bytes, and the parsing happens here,
//! before export: the messages become the prompt, the parameters the params, the assistant's
//! message (with its tool calls) the completion, and the usage the token counts; the response's
//! model, id and finish reason become GenAI attributes.

use std::borrow::Cow;

use agentops_core::attributes as attr;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SpanData;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The span attribute holding a raw chat request.
pub(crate) const REQUEST: &str = "agentops.chat.request";
/// The span attribute holding a raw chat response.
pub(crate) const RESPONSE: &str = "agentops.chat.response";

/// The request's fields that are not its parameters.
const NOT_PARAMETERS: &[&str] = &["model", "messages", "stream", "stream_options"];

#[derive(Deserialize)]
struct ChatResponse<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Value>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

/// Decodes the raw chat payloads a span carries into its `event.data` and attributes.
pub(crate) fn expand(span: &mut SpanData) {
    let mut request = None;
    let mut response = None;
    span.attributes.retain(|kv| match kv.key.as_str() {
        REQUEST => {
            request = Some(kv.value.as_str().into_owned());
            false
        }
        RESPONSE => {
            response = Some(kv.value.as_str().into_owned());
            false
        }
        _ => true,
    });
    if request.is_none() && response.is_none() {
        return;
    }
    let Some(data_at) = span
        .attributes
        .iter()
        .position(|kv| kv.key.as_str() == attr::EVENT_DATA)
    else {
        return;
    };
    let mut data: Map<String, Value> =
        serde_json::from_str(&span.attributes[data_at].value.as_str()).unwrap_or_default();
    if let Some(Ok(Value::Object(mut body))) = request.map(|r| serde_json::from_str::<Value>(&r)) {
        if let Some(messages) = body.remove("messages") {
            data.insert("prompt".into(), messages);
        }
        if let Some(model) = body.get("model").filter(|model| model.is_string()) {
            if data.get("model").is_none_or(Value::is_null) {
                data.insert("model".into(), model.clone());
            }
        }
        let params: Map<String, Value> = body
            .into_iter()
            .filter(|(key, _)| !NOT_PARAMETERS.contains(&key.as_str()))
            .collect();
        if !params.is_empty() && data.get("params").is_none_or(Value::is_null) {
            data.insert("params".into(), Value::Object(params));
        }
    }
    if let Some(Ok(answer)) = response
        .as_deref()
        .map(serde_json::from_str::<ChatResponse<'_>>)
    {
        let choice = answer.choices.into_iter().next();
        if let Some(choice) = choice {
            if let Some(message) = choice.message {
                data.insert("completion".into(), message);
            }
            if let Some(reason) = choice.finish_reason {
                span.attributes
                    .push(KeyValue::new("gen_ai.response.finish_reasons", reason));
            }
        }
        if let Some(model) = answer.model {
            span.attributes
                .push(KeyValue::new("gen_ai.response.model", model.into_owned()));
        }
        if let Some(id) = answer.id {
            span.attributes
                .push(KeyValue::new("gen_ai.response.id", id.into_owned()));
        }
        let usage = answer.usage.unwrap_or_default();
        let counts = [
            ("prompt_tokens", usage.prompt_tokens),
            ("completion_tokens", usage.completion_tokens),
            (
                "cached_tokens",
                usage.prompt_tokens_details.and_then(|d| d.cached_tokens),
            ),
            (
                "reasoning_tokens",
                usage
                    .completion_tokens_details
                    .and_then(|d| d.reasoning_tokens),
            ),
        ];
        for (field, count) in counts {
            if let Some(count) = count {
                data.insert(field.into(), Value::from(count));
            }
        }
    }
    if let Ok(text) = serde_json::to_string(&data) {
        span.attributes[data_at] = KeyValue::new(attr::EVENT_DATA, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn raw_payloads_become_the_event_fields() {
        let event = Event::llm("gpt-4o-mini");
        let data = event.data_json();
        let mut span = SpanData {
            span_context: opentelemetry::trace::SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Internal,
            name: "gpt-4o-mini".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![
                KeyValue::new(attr::EVENT_DATA, data),
                KeyValue::new(
                    REQUEST,
                    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"stream":false}"#,
                ),
                KeyValue::new(
                    RESPONSE,
                    r#"{"id":"c1","model":"gpt-4o-mini-2024-07-18","choices":[{"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}}"#,
                ),
            ],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: Default::default(),
        };
        expand(&mut span);
        let data: Value = serde_json::from_str(
            &span
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == attr::EVENT_DATA)
                .unwrap()
                .value
                .as_str(),
        )
        .unwrap();
        assert_eq!(data["prompt"][0]["content"], "hi");
        assert_eq!(data["params"], serde_json::json!({"temperature": 0.2}));
        assert_eq!(data["completion"]["content"], "hello");
        assert_eq!(
            (
                &data["prompt_tokens"],
                &data["completion_tokens"],
                &data["cached_tokens"],
                &data["reasoning_tokens"]
            ),
            (
                &Value::from(9),
                &Value::from(2),
                &Value::from(4),
                &Value::from(1)
            )
        );
        assert!(span
            .attributes
            .iter()
            .all(|kv| kv.key.as_str() != REQUEST && kv.key.as_str() != RESPONSE));
        assert!(span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "gen_ai.response.id"));
    }
}
