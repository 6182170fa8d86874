//! One message model for every producer: an LLM call's input and output as chat messages in the
//! newest GenAI semantic-convention form, whatever shape the producer sent them in.
//!
//! A message is `{"role", "parts": [...], "name"?, "finish_reason"?}`; a part is one of
//! - `{"type": "text", "content"}`
//! - `{"type": "tool_call", "id", "name", "arguments"}` (arguments parsed when they are JSON text)
//! - `{"type": "tool_call_response", "id", "response"}`
//! - `{"type": "reasoning", "content"}`
//! - media by reference: `{"type": "blob" | "uri" | "file", "modality"?, "mime_type"?, "uri"?,
//!   "size"?}` (inline data is not repeated: `size` says how many bytes it had)
//! - any other typed part as sent.
//!
//! Read from, in this order (the first source that yields messages wins, per direction):
//! 1. the stored prompt and completion, which the span mapping took from `gen_ai.input.messages`
//!    / `gen_ai.output.messages` (with `parts`), indexed `gen_ai.prompt.N.*` /
//!    `gen_ai.completion.N.*`, OpenInference `llm.input_messages.N.message.*`, the AgentOps v2
//!    `prompt` / `completion` (strings, OpenAI or Anthropic messages, a choice) and the Rust SDK;
//! 2. `gen_ai.system_instructions` (a system message put first);
//! 3. span events and OTLP log records of the GenAI event conventions: `gen_ai.content.prompt`
//!    / `gen_ai.content.completion`, `gen_ai.{system,user,assistant,tool}.message`,
//!    `gen_ai.choice`, and `gen_ai.client.inference.operation.details`.
//!
//! Normalising happens when an event is read, so rows stored before a producer's shape was
//! understood read right too; the raw prompt, completion and attributes stay as sent.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::maybe_json;

/// An LLM call's messages: what it was given and what it answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Messages {
    /// The prompt: system, user, assistant (history) and tool messages.
    pub input: Vec<Value>,
    /// The answer, one message per choice.
    pub output: Vec<Value>,
}

impl Messages {
    /// The ids of the tool calls the answer asks for.
    pub fn output_call_ids(&self) -> Vec<String> {
        call_ids(&self.output)
    }
}

/// A GenAI event record (a span event or an OTLP log record) as the normaliser reads it.
#[derive(Debug, Clone, Copy)]
pub struct GenAiRecord<'a> {
    /// Its name (`gen_ai.user.message`, `gen_ai.choice`, …).
    pub name: &'a str,
    /// A log record's body (`Null` for a span event).
    pub body: &'a Value,
    /// Its attributes, an object.
    pub attributes: &'a Value,
}

/// The messages of an event from its stored `prompt`, `completion` and `attributes` (which hold
/// the span events as `otel.events`), and the GenAI `records` logged for it; `None` when there
/// are none.
pub fn for_event(
    prompt: Option<&Value>,
    completion: Option<&Value>,
    attributes: &Value,
    records: &[GenAiRecord<'_>],
) -> Option<Messages> {
    let mut messages = Messages {
        input: prompt.map(|p| from_value(p, "user")).unwrap_or_default(),
        output: completion
            .map(|c| from_value(c, "assistant"))
            .unwrap_or_default(),
    };
    if let Some(instructions) = attributes.get("gen_ai.system_instructions") {
        prepend_instructions(&mut messages.input, instructions);
    }
    let span_events: Vec<GenAiRecord<'_>> = attributes
        .get("otel.events")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .filter_map(|e| {
                    Some(GenAiRecord {
                        name: e.get("name")?.as_str()?,
                        body: &Value::Null,
                        attributes: e.get("attributes")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let from_records = from_records(span_events.iter().chain(records));
    if messages.input.is_empty() {
        messages.input = from_records.input;
    }
    if messages.output.is_empty() {
        messages.output = from_records.output;
    }
    fill_finish_reasons(&mut messages.output, attributes);
    (!messages.input.is_empty() || !messages.output.is_empty()).then_some(messages)
}

/// Gives the answer's messages that lack one the finish reason the span states beside them:
/// `gen_ai.response.finish_reasons` (one per choice) or OpenInference's `llm.finish_reason`.
fn fill_finish_reasons(output: &mut [Value], attributes: &Value) {
    let reasons: Vec<String> = match attributes
        .get("gen_ai.response.finish_reasons")
        .or_else(|| attributes.get("llm.finish_reason"))
        .map(maybe_json)
    {
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_owned())
            .collect(),
        Some(Value::String(one)) => vec![one],
        _ => return,
    };
    for (message, reason) in output.iter_mut().zip(reasons) {
        if message.get("finish_reason").is_none() && !reason.is_empty() {
            message["finish_reason"] = Value::String(reason);
        }
    }
}

/// Messages from any stored shape; `default_role` for bare strings and role-less messages.
pub fn from_value(value: &Value, default_role: &str) -> Vec<Value> {
    match maybe_json(value) {
        Value::Null => Vec::new(),
        Value::String(text) if text.trim().is_empty() => Vec::new(),
        Value::String(text) => vec![message_of(default_role, vec![text_part(text)])],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match maybe_json(item) {
                Value::Object(obj) => message(&unflatten(&obj), default_role),
                Value::String(text) if !text.is_empty() => {
                    Some(message_of(default_role, vec![text_part(text)]))
                }
                _ => None,
            })
            .collect(),
        Value::Object(obj) => {
            let obj = unflatten(&obj);
            if let Some(inner) = obj.get("messages").filter(|m| m.is_array()) {
                return from_value(inner, default_role);
            }
            if let Some(choices) = obj.get("choices").filter(|c| c.is_array()) {
                return from_value(choices, default_role);
            }
            message(&obj, default_role).into_iter().collect()
        }
        other => vec![message_of(default_role, vec![text_part(other.to_string())])],
    }
}

fn message_of(role: &str, parts: Vec<Value>) -> Value {
    json!({"role": role, "parts": parts})
}

fn text_part(text: impl Into<String>) -> Value {
    json!({"type": "text", "content": text.into()})
}

fn str_of<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// One message from an object of any producer's shape; `None` when it says nothing.
fn message(obj: &Map<String, Value>, default_role: &str) -> Option<Value> {
    // a choice: `{"index", "finish_reason", "message": {...}}`
    if let Some(Value::Object(inner)) = obj.get("message") {
        let mut inner = unflatten(inner);
        // OpenLLMetry's `gen_ai.choice` puts the tool calls beside the message
        if let Some(calls) = obj.get("tool_calls").filter(|c| c.is_array()) {
            if !inner.get("tool_calls").is_some_and(Value::is_array) {
                inner.insert("tool_calls".into(), calls.clone());
            }
        }
        let mut m = message(&inner, default_role)?;
        if let Some(reason) = str_of(obj, &["finish_reason"]) {
            m["finish_reason"] = Value::String(reason.to_owned());
        }
        return Some(m);
    }
    let role = str_of(obj, &["role"])
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| default_role.to_owned());
    let mut parts = Vec::new();
    if let Some(Value::Array(given)) = obj.get("parts") {
        parts.extend(given.iter().filter_map(part));
    }
    if let Some(reasoning) = str_of(obj, &["reasoning_content", "reasoning"]) {
        parts.push(json!({"type": "reasoning", "content": reasoning}));
    }
    let tool_call_id = str_of(obj, &["tool_call_id", "id"]).filter(|_| role == "tool");
    match (obj.get("content"), tool_call_id) {
        (Some(content), Some(id)) if !content.is_null() => {
            parts.push(
                json!({"type": "tool_call_response", "id": id, "response": maybe_json(content)}),
            );
        }
        (Some(content), _) => parts.extend(content_parts(content)),
        (None, _) => {}
    }
    if let Some(Value::Array(contents)) = obj.get("contents") {
        // OpenInference: `contents.N.message_content.{type,text,image}`
        for c in contents {
            let c = c.get("message_content").unwrap_or(c);
            parts.extend(block_part(c));
        }
    }
    if let Some(Value::Array(calls)) = obj.get("tool_calls") {
        parts.extend(calls.iter().filter_map(tool_call_part));
    }
    if let Some(call) = obj.get("function_call").filter(|c| c.is_object()) {
        parts.extend(tool_call_part(call));
    }
    if parts.is_empty() && !obj.contains_key("role") {
        return None;
    }
    let mut m = message_of(&role, parts);
    if let Some(name) = str_of(obj, &["name"]) {
        m["name"] = Value::String(name.to_owned());
    }
    if let Some(reason) = str_of(obj, &["finish_reason", "stop_reason"]) {
        m["finish_reason"] = Value::String(reason.to_owned());
    }
    Some(m)
}

/// The parts of a message's `content`: text, or a list of content blocks.
fn content_parts(content: &Value) -> Vec<Value> {
    match content {
        Value::Null => Vec::new(),
        Value::String(text) => {
            let parsed = maybe_json(content);
            match parsed {
                Value::Array(blocks) if blocks.iter().all(|b| b.get("type").is_some()) => {
                    blocks.iter().flat_map(block_part).collect()
                }
                _ if text.is_empty() => Vec::new(),
                _ => vec![text_part(text.clone())],
            }
        }
        Value::Array(blocks) => blocks
            .iter()
            .flat_map(|b| match b {
                Value::String(text) => vec![text_part(text.clone())],
                other => block_part(other),
            })
            .collect(),
        other => vec![text_part(other.to_string())],
    }
}

/// One content block (OpenAI, Anthropic, OpenInference, or already a part) as parts.
fn block_part(block: &Value) -> Vec<Value> {
    let Some(kind) = block.get("type").and_then(Value::as_str) else {
        return match block.get("text").and_then(Value::as_str) {
            Some(text) => vec![text_part(text)],
            None => Vec::new(),
        };
    };
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| block.get(*k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned()
    };
    match kind {
        "text" | "input_text" | "output_text" => {
            let text = text(&["text", "content"]);
            if text.trim().is_empty() {
                Vec::new()
            } else {
                vec![text_part(text)]
            }
        }
        "thinking" | "reasoning" => {
            vec![json!({"type": "reasoning", "content": text(&["thinking", "content", "text"])})]
        }
        "tool_use" => tool_call_part(block).into_iter().collect(),
        "tool_result" => vec![json!({
            "type": "tool_call_response",
            "id": block.get("tool_use_id").cloned().unwrap_or(Value::Null),
            "response": block.get("content").map(maybe_json).unwrap_or(Value::Null),
        })],
        "image_url" | "image" | "input_image" => {
            let url = block
                .pointer("/image_url/url")
                .or_else(|| block.pointer("/image/image/url"))
                .or_else(|| block.pointer("/image/url"))
                .or_else(|| block.get("image_url"))
                .or_else(|| block.get("url"))
                .and_then(Value::as_str);
            vec![media_reference("image", url, block)]
        }
        _ => part(block).into_iter().collect(),
    }
}

/// A part of the `parts` form, checked: tool-call arguments parsed, inline data left out.
fn part(value: &Value) -> Option<Value> {
    let obj = value.as_object()?;
    let kind = obj.get("type")?.as_str()?;
    Some(match kind {
        // an empty text beside a tool call (OpenLLMetry's streaming) says nothing
        "text" => text_part(str_of(obj, &["content", "text"]).filter(|t| !t.trim().is_empty())?),
        "tool_call" => {
            let mut p = value.clone();
            if let Some(arguments) = obj.get("arguments") {
                p["arguments"] = maybe_json(arguments);
            }
            p
        }
        "tool_call_response" => {
            let mut p = value.clone();
            if let Some(response) = obj.get("response").or_else(|| obj.get("result")) {
                p["response"] = maybe_json(response);
            }
            p
        }
        "blob" => {
            let size = obj.get("content").and_then(Value::as_str).map(str::len);
            let mut p = value.clone();
            if let Some(map) = p.as_object_mut() {
                map.remove("content");
                if let Some(size) = size {
                    map.insert("size".into(), Value::from(size));
                }
            }
            p
        }
        _ => value.clone(),
    })
}

/// Media by reference: its URI unless it is inline data, whose size is given instead.
fn media_reference(modality: &str, url: Option<&str>, block: &Value) -> Value {
    match url {
        Some(data) if data.starts_with("data:") => {
            let mime = data
                .strip_prefix("data:")
                .and_then(|rest| rest.split([';', ',']).next())
                .unwrap_or_default();
            json!({"type": "blob", "modality": modality, "mime_type": mime, "size": data.len()})
        }
        Some(uri) => json!({"type": "uri", "modality": modality, "uri": uri}),
        None => {
            let mut p = json!({"type": "blob", "modality": modality});
            if let Some(mime) = block
                .get("mime_type")
                .or_else(|| block.pointer("/source/media_type"))
            {
                p["mime_type"] = mime.clone();
            }
            p
        }
    }
}

/// A tool call of any shape: OpenAI `{id, function: {name, arguments}}`, flat `{id, name,
/// arguments}`, Anthropic `tool_use` `{id, name, input}`, OpenInference `{tool_call: {...}}`.
fn tool_call_part(value: &Value) -> Option<Value> {
    let value = value.get("tool_call").unwrap_or(value);
    let function = value.get("function").filter(|f| f.is_object());
    let field = |key: &str| {
        function
            .and_then(|f| f.get(key))
            .or_else(|| value.get(key))
            .filter(|v| !v.is_null())
    };
    let name = field("name").and_then(Value::as_str)?;
    let arguments = field("arguments")
        .or_else(|| value.get("input"))
        .map(maybe_json)
        .unwrap_or(Value::Null);
    Some(json!({
        "type": "tool_call",
        "id": value.get("id").cloned().unwrap_or(Value::Null),
        "name": name,
        "arguments": arguments,
    }))
}

/// `gen_ai.system_instructions` (parts, or text) as a system message at the front, unless the
/// input already starts with one.
fn prepend_instructions(input: &mut Vec<Value>, instructions: &Value) {
    if input
        .first()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("system")
    {
        return;
    }
    let parts = match maybe_json(instructions) {
        Value::Array(parts) => parts
            .iter()
            .flat_map(|p| match p {
                Value::String(text) => vec![text_part(text.clone())],
                other => part(other).into_iter().collect(),
            })
            .collect(),
        Value::String(text) if !text.is_empty() => vec![text_part(text)],
        _ => Vec::new(),
    };
    if !parts.is_empty() {
        input.insert(0, message_of("system", parts));
    }
}

/// Messages from GenAI event records, in their order.
fn from_records<'a>(records: impl Iterator<Item = &'a GenAiRecord<'a>>) -> Messages {
    let mut messages = Messages::default();
    for record in records {
        let fields = record_fields(record);
        match record.name {
            "gen_ai.content.prompt" => {
                if let Some(prompt) = record.attributes.get("gen_ai.prompt") {
                    messages.input.extend(from_value(prompt, "user"));
                }
            }
            "gen_ai.content.completion" => {
                if let Some(completion) = record.attributes.get("gen_ai.completion") {
                    messages.output.extend(from_value(completion, "assistant"));
                }
            }
            "gen_ai.choice" => {
                let mut obj = fields;
                if let Some(Value::Object(inner)) = obj.get("message").cloned() {
                    let mut inner = inner;
                    inner.entry("role").or_insert_with(|| "assistant".into());
                    obj.insert("message".into(), Value::Object(inner));
                }
                messages.output.extend(message(&obj, "assistant"));
            }
            "gen_ai.client.inference.operation.details" => {
                let attrs = record.attributes;
                if let Some(input) = attrs.get("gen_ai.input.messages") {
                    messages.input.extend(from_value(input, "user"));
                }
                if let Some(instructions) = attrs.get("gen_ai.system_instructions") {
                    prepend_instructions(&mut messages.input, instructions);
                }
                if let Some(output) = attrs.get("gen_ai.output.messages") {
                    messages.output.extend(from_value(output, "assistant"));
                }
            }
            name => {
                let Some(role) = name
                    .strip_prefix("gen_ai.")
                    .and_then(|rest| rest.strip_suffix(".message"))
                else {
                    continue;
                };
                let mut obj = fields;
                obj.entry("role").or_insert_with(|| role.into());
                messages.input.extend(message(&obj, role));
            }
        }
    }
    messages
}

/// A record's message fields: its body when that is an object, else its attributes, with the
/// `gen_ai.*` attribute prefix taken off (`gen_ai.event.content` → `content`).
fn record_fields(record: &GenAiRecord<'_>) -> Map<String, Value> {
    let source = match maybe_json(record.body) {
        Value::Object(body) => body,
        Value::String(text) if !text.is_empty() => {
            let mut m = Map::new();
            m.insert("content".into(), Value::String(text));
            m
        }
        _ => record.attributes.as_object().cloned().unwrap_or_default(),
    };
    let mut fields = Map::new();
    for (key, value) in source {
        let key = key
            .strip_prefix("gen_ai.event.")
            .or_else(|| key.strip_prefix("gen_ai."))
            .unwrap_or(&key)
            .to_owned();
        fields.insert(key, value);
    }
    unflatten(&fields)
}

/// Dotted keys (`tool_calls.0.function.name`) made nested, numeric segments as arrays in index
/// order; other keys kept. A flat key that clashes with a nested one keeps the first seen.
fn unflatten(obj: &Map<String, Value>) -> Map<String, Value> {
    if !obj.keys().any(|k| k.contains('.')) {
        return obj.clone();
    }
    let mut tree = Map::new();
    for (key, value) in obj {
        let segments: Vec<&str> = key.split('.').collect();
        insert_path(&mut tree, &segments, value.clone());
    }
    arrays_of_numbered(Value::Object(tree))
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn insert_path(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            map.entry(*last).or_insert(value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry(*first)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Objects whose keys are all numbers become arrays ordered by them.
fn arrays_of_numbered(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let numbered = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if numbered {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, arrays_of_numbered(v))))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, arrays_of_numbered(v)))
                        .collect(),
                )
            }
        }
        other => other,
    }
}

/// The ids of the tool calls in `messages`.
pub fn call_ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| m.get("parts").and_then(Value::as_array))
        .flatten()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("tool_call"))
        .filter_map(|p| p.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(role: &str, content: &str) -> Value {
        json!({"role": role, "parts": [{"type": "text", "content": content}]})
    }

    #[test]
    fn the_parts_form_is_kept_and_its_arguments_parsed() {
        let input = json!([
            {"role": "system", "parts": [{"type": "text", "content": "You plan trips."}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
        ]);
        let m = from_value(&input, "user");
        assert_eq!(m[0], text("system", "You plan trips."));
        assert_eq!(m[1]["parts"][0]["arguments"], json!({"city": "Paris"}));
        assert_eq!(m[2]["parts"][0]["response"], "sunny");
        assert_eq!(call_ids(&m), vec!["c1"]);
    }

    #[test]
    fn indexed_genai_attributes_with_tool_calls() {
        // what the span mapping builds from gen_ai.completion.0.*
        let completion = json!([{
            "role": "assistant", "finish_reason": "tool_calls",
            "tool_calls.0.id": "call_1", "tool_calls.0.name": "get_weather",
            "tool_calls.0.arguments": "{\"city\": \"Paris\"}",
        }]);
        let m = from_value(&completion, "assistant");
        assert_eq!(
            m,
            vec![
                json!({"role": "assistant", "finish_reason": "tool_calls", "parts": [
                    {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
                ]})
            ]
        );
        let prompt = json!([
            {"role": "user", "content": "Weather?"},
            {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        ]);
        let m = from_value(&prompt, "user");
        assert_eq!(m[0], text("user", "Weather?"));
        assert_eq!(
            m[1]["parts"][0],
            json!({"type": "tool_call_response", "id": "call_1", "response": "sunny"})
        );
    }

    #[test]
    fn openinference_messages_contents_and_tool_calls() {
        let prompt = json!([
            {"role": "user", "contents.0.message_content.type": "text",
             "contents.0.message_content.text": "Look",
             "contents.1.message_content.type": "image",
             "contents.1.message_content.image.image.url": "https://x/cat.png"},
            {"role": "assistant",
             "tool_calls.0.tool_call.id": "c9",
             "tool_calls.0.tool_call.function.name": "lookup",
             "tool_calls.0.tool_call.function.arguments": "{\"q\": 1}"},
        ]);
        let m = from_value(&prompt, "user");
        assert_eq!(m[0]["parts"][0], json!({"type": "text", "content": "Look"}));
        assert_eq!(
            m[0]["parts"][1],
            json!({"type": "uri", "modality": "image", "uri": "https://x/cat.png"})
        );
        assert_eq!(m[1]["parts"][0]["name"], "lookup");
        assert_eq!(m[1]["parts"][0]["arguments"], json!({"q": 1}));
    }

    #[test]
    fn openai_and_anthropic_messages_and_plain_strings() {
        let m = from_value(
            &json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm"},
                    {"type": "tool_use", "id": "tu1", "name": "calc", "input": {"x": 2}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": "4"}]}
            ]),
            "user",
        );
        assert_eq!(m[0]["parts"][1]["type"], "blob");
        assert_eq!(m[0]["parts"][1]["mime_type"], "image/png");
        assert_eq!(
            m[1]["parts"][0],
            json!({"type": "reasoning", "content": "hmm"})
        );
        assert_eq!(m[1]["parts"][1]["arguments"], json!({"x": 2}));
        assert_eq!(m[2]["parts"][0]["type"], "tool_call_response");
        assert_eq!(
            from_value(&json!("hello"), "assistant"),
            vec![text("assistant", "hello")]
        );
        // an OpenAI choice, and a completion object as agentops 0.3 sends it
        let choice = json!({"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}});
        assert_eq!(from_value(&choice, "assistant")[0]["finish_reason"], "stop");
        assert_eq!(
            from_value(&json!({"role": "assistant", "content": "Hi"}), "assistant"),
            vec![text("assistant", "Hi")]
        );
        assert!(from_value(&json!({"temperature": 0.2}), "user").is_empty());
    }

    #[test]
    fn tool_calls_beside_a_choices_message_are_its_own() {
        // OpenLLMetry 0.47 / 0.62 in event mode
        let body = json!({"index": 0, "finish_reason": "tool_calls", "message": {"content": null},
            "tool_calls": [{"id": "call_weather_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]});
        let record = GenAiRecord {
            name: "gen_ai.choice",
            body: &body,
            attributes: &json!({"gen_ai.system": "openai"}),
        };
        let m = for_event(None, None, &Value::Null, &[record]).unwrap();
        assert_eq!(m.output_call_ids(), ["call_weather_1"]);
        assert_eq!(
            m.output[0]["parts"][0]["arguments"],
            json!({"city": "Paris"})
        );
        assert_eq!(m.output[0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn finish_reasons_beside_the_messages_fill_the_answer() {
        let completion = json!([{"role": "assistant", "content": "Sunny."}]);
        for attributes in [
            json!({"llm.finish_reason": "stop"}),
            json!({"gen_ai.response.finish_reasons": ["stop"]}),
        ] {
            let m = for_event(None, Some(&completion), &attributes, &[]).unwrap();
            assert_eq!(m.output[0]["finish_reason"], "stop", "{attributes}");
        }
        // the message's own reason wins
        let own = json!([{"role": "assistant", "content": "x", "finish_reason": "length"}]);
        let m = for_event(None, Some(&own), &json!({"llm.finish_reason": "stop"}), &[]).unwrap();
        assert_eq!(m.output[0]["finish_reason"], "length");
    }

    #[test]
    fn empty_text_parts_are_left_out() {
        let output = json!([{"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "text", "content": ""},
            {"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}]}]);
        let m = from_value(&output, "assistant");
        let parts = m[0]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0]["type"], "tool_call");
        let blocks = json!([{"role": "assistant", "content": [{"type": "text", "text": " "}]}]);
        assert_eq!(from_value(&blocks, "assistant")[0]["parts"], json!([]));
    }

    #[test]
    fn genai_event_records_and_system_instructions() {
        let attrs = json!({});
        let user_body = json!({"content": "What is the weather?"});
        let choice_body = json!({"index": 0, "finish_reason": "tool_calls", "message": {"tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
        ]}});
        let records = [
            GenAiRecord {
                name: "gen_ai.system.message",
                body: &json!({"content": "You plan trips."}),
                attributes: &attrs,
            },
            GenAiRecord {
                name: "gen_ai.user.message",
                body: &user_body,
                attributes: &attrs,
            },
            GenAiRecord {
                name: "gen_ai.choice",
                body: &choice_body,
                attributes: &attrs,
            },
        ];
        let m = for_event(None, None, &json!({}), &records).unwrap();
        assert_eq!(
            m.input,
            vec![
                text("system", "You plan trips."),
                text("user", "What is the weather?")
            ]
        );
        assert_eq!(m.output[0]["role"], "assistant");
        assert_eq!(m.output[0]["finish_reason"], "tool_calls");
        assert_eq!(m.output_call_ids(), vec!["call_1"]);

        let with_instructions = for_event(
            Some(&json!([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}])),
            None,
            &json!({"gen_ai.system_instructions": "[{\"type\":\"text\",\"content\":\"Be brief.\"}]"}),
            &[],
        )
        .unwrap();
        assert_eq!(with_instructions.input[0], text("system", "Be brief."));

        // span events of the older conventions
        let attributes = json!({"otel.events": [
            {"name": "gen_ai.content.prompt", "attributes": {"gen_ai.prompt": "[{\"role\":\"user\",\"content\":\"Q\"}]"}},
            {"name": "gen_ai.content.completion", "attributes": {"gen_ai.completion": "[{\"role\":\"assistant\",\"content\":\"A\"}]"}}
        ]});
        let m = for_event(None, None, &attributes, &[]).unwrap();
        assert_eq!(
            (m.input[0].clone(), m.output[0].clone()),
            (text("user", "Q"), text("assistant", "A"))
        );
        assert!(for_event(None, None, &json!({}), &[]).is_none());
    }
}
