//! A streamed chat completion: the response's server-sent events pass through unchanged while
//! the content, tool calls, usage (the final chunk, with `stream_options.include_usage`) and
//! the time to the first token are gathered; the event ends when the stream does (or is
//! dropped).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;
use reqwest::Response;
use serde_json::{json, Value};

use crate::chat::{assistant_message, Call, Head};

/// The response, its body observed on the way to async-openai.
pub(crate) fn observe(call: Call, response: Response, started: Instant) -> Response {
    let head = Head::of(&response);
    let observed = Observed {
        inner: Box::pin(response.bytes_stream()),
        gathered: Gathered::new(call, started),
    };
    head.rebuild(reqwest::Body::wrap_stream(observed))
}

type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Observed {
    inner: Chunks,
    gathered: Gathered,
}

impl Stream for Observed {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(bytes))) => self.gathered.feed(bytes),
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => self.gathered.finish(),
            Poll::Pending => {}
        }
        polled
    }
}

/// What the stream has said so far.
struct Gathered {
    call: Option<Call>,
    started: Instant,
    first_token: Option<Instant>,
    /// An incomplete line carried over to the next chunk.
    partial: String,
    content: String,
    /// Tool calls by index: id, name, arguments.
    tool_calls: BTreeMap<u64, (String, String, String)>,
    last: Value,
    usage: Value,
    finish_reason: Value,
}

impl Gathered {
    fn new(call: Call, started: Instant) -> Self {
        Self {
            call: Some(call),
            started,
            first_token: None,
            partial: String::new(),
            content: String::new(),
            tool_calls: BTreeMap::new(),
            last: Value::Null,
            usage: Value::Null,
            finish_reason: Value::Null,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.partial.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let Some(data) = line.trim().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                continue;
            }
            if let Ok(chunk) = serde_json::from_str::<Value>(data) {
                self.chunk(chunk);
            }
        }
    }

    fn chunk(&mut self, chunk: Value) {
        let delta = &chunk["choices"][0]["delta"];
        if let Some(text) = delta["content"].as_str() {
            if !text.is_empty() {
                self.first_token.get_or_insert_with(Instant::now);
                self.content.push_str(text);
            }
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.first_token.get_or_insert_with(Instant::now);
            let index = call["index"].as_u64().unwrap_or(0);
            let entry = self.tool_calls.entry(index).or_default();
            if let Some(id) = call["id"].as_str() {
                entry.0.push_str(id);
            }
            if let Some(name) = call["function"]["name"].as_str() {
                entry.1.push_str(name);
            }
            if let Some(arguments) = call["function"]["arguments"].as_str() {
                entry.2.push_str(arguments);
            }
        }
        if !chunk["choices"][0]["finish_reason"].is_null() {
            self.finish_reason = chunk["choices"][0]["finish_reason"].clone();
        }
        if !chunk["usage"].is_null() {
            self.usage = chunk["usage"].clone();
        }
        self.last = chunk;
    }

    fn finish(&mut self) {
        let Some(call) = self.call.take() else {
            return;
        };
        let tool_calls = std::mem::take(&mut self.tool_calls)
            .into_values()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function",
                       "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        let completion = json!({
            "id": self.last["id"],
            "model": self.last["model"],
            "choices": [{
                "message": assistant_message(&self.content, tool_calls),
                "finish_reason": self.finish_reason,
            }],
            "usage": self.usage,
        });
        let mut extra = Vec::new();
        if let Some(first) = self.first_token {
            extra.push((
                "gen_ai.server.time_to_first_token",
                first.duration_since(self.started).as_secs_f64(),
            ));
        }
        call.finish_stream(completion, extra);
    }
}

impl Drop for Gathered {
    /// A stream dropped before its end still ends its event, with what it had.
    fn drop(&mut self) {
        self.finish();
    }
}
