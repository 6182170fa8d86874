//! A chat completion as an LLM event: the request's model, messages and parameters when it
//! starts; the response's message (with its tool calls), usage and finish reason when it ends;
//! an HTTP or connection error as an Error event linked to it.

use agentops::{Event, EventSpan, Session};
use async_openai::error::OpenAIError;
use reqwest::Response;
use serde_json::{json, Map, Value};

/// One chat completion being recorded.
pub(crate) struct Call {
    span: EventSpan,
    stream: bool,
}

impl Call {
    /// Starts recording `request` if it is a chat completion.
    pub(crate) fn start(session: &Session, request: &reqwest::Request) -> Option<Self> {
        if request.method() != reqwest::Method::POST
            || !request.url().path().ends_with("/chat/completions")
        {
            return None;
        }
        let body: Value = serde_json::from_slice(request.body()?.as_bytes()?).ok()?;
        let model = body["model"].as_str().unwrap_or("unknown");
        let parameters: Map<String, Value> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| !matches!(key.as_str(), "messages" | "model"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut event = Event::llm(model)
            .prompt_json(&body["messages"])
            .params(Value::Object(parameters))
            .attribute("gen_ai.operation.name", "chat");
        if let Some(host) = request.url().host_str() {
            event = event.attribute("server.address", host.to_owned());
        }
        let span = session.start_event(event).ok()?;
        Some(Self {
            span,
            stream: body["stream"] == Value::Bool(true),
        })
    }

    pub(crate) fn streaming(&self) -> bool {
        self.stream
    }

    /// Ends the event with the completion in `response`, and hands the response on.
    pub(crate) async fn finish_response(self, response: Response) -> Result<Response, OpenAIError> {
        let head = Head::of(&response);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                let error = OpenAIError::Reqwest(error);
                self.finish_transport_error(&error);
                return Err(error);
            }
        };
        let completion: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.span
            .end_with(|event| with_completion(event, &completion));
        Ok(head.rebuild(bytes))
    }

    /// Ends the event after an HTTP error (429, 5xx, 4xx): an Error event, child of the call,
    /// says what the provider said; the response is handed on unchanged.
    pub(crate) async fn finish_http_error(
        self,
        response: Response,
    ) -> Result<Response, OpenAIError> {
        let head = Head::of(&response);
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        let error_type = match status {
            429 => "RateLimited",
            401 | 403 => "Unauthorized",
            408 => "Timeout",
            500..=599 => "ServerError",
            _ => "ApiError",
        };
        self.fail(
            Event::error(error_type)
                .code(status.to_string())
                .details(message)
                .logs(body),
        );
        Ok(head.rebuild(bytes))
    }

    /// Ends the event after the request failed before an answer (timeout, connection).
    pub(crate) fn finish_transport_error(self, error: &OpenAIError) {
        let error_type = match error {
            OpenAIError::Reqwest(error) if error.is_timeout() => "Timeout",
            OpenAIError::Reqwest(_) => "ConnectionError",
            _ => "OpenAIError",
        };
        self.fail(Event::error(error_type).details(error.to_string()));
    }

    /// Records `error` as a child of the call naming it as its trigger, then ends the call.
    fn fail(self, error: Event) {
        let error = error.trigger(self.span.id());
        {
            let _inside = self.span.enter();
            let _ = self.span.session().record(error);
        }
        self.span.end();
    }

    /// Ends the event with what a stream delivered.
    pub(crate) fn finish_stream(self, completion: Value, extra: Vec<(&'static str, f64)>) {
        self.span.end_with(|event| {
            let mut event = with_completion(event, &completion);
            for (key, value) in extra {
                event = event.attribute(key, value);
            }
            event
        });
    }
}

/// The event with the response's message, usage, model, id and finish reason.
pub(crate) fn with_completion(mut event: Event, response: &Value) -> Event {
    let choice = &response["choices"][0];
    if !choice["message"].is_null() {
        event = event.completion_json(&choice["message"]);
    }
    if let Some(reason) = choice["finish_reason"].as_str() {
        event = event.attribute("gen_ai.response.finish_reasons", reason.to_owned());
    }
    if let Some(model) = response["model"].as_str() {
        event = event.attribute("gen_ai.response.model", model.to_owned());
    }
    if let Some(id) = response["id"].as_str() {
        event = event.attribute("gen_ai.response.id", id.to_owned());
    }
    let usage = &response["usage"];
    if let (Some(input), Some(output)) = (
        usage["prompt_tokens"].as_u64(),
        usage["completion_tokens"].as_u64(),
    ) {
        event = event.tokens(input, output);
    }
    if let Some(cached) = usage["prompt_tokens_details"]["cached_tokens"].as_u64() {
        event = event.cached_tokens(cached);
    }
    if let Some(reasoning) = usage["completion_tokens_details"]["reasoning_tokens"].as_u64() {
        event = event.reasoning_tokens(reasoning);
    }
    event
}

/// What a response is besides its body, to give it back once the body has been read.
pub(crate) struct Head {
    status: reqwest::StatusCode,
    version: reqwest::Version,
    headers: reqwest::header::HeaderMap,
}

impl Head {
    pub(crate) fn of(response: &Response) -> Self {
        Self {
            status: response.status(),
            version: response.version(),
            headers: response.headers().clone(),
        }
    }

    /// A response like the original, with `body`.
    pub(crate) fn rebuild(self, body: impl Into<reqwest::Body>) -> Response {
        let mut response = http::Response::new(body.into());
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
        Response::from(response)
    }
}

/// An assistant message as the chat API writes it.
pub(crate) fn assistant_message(content: &str, tool_calls: Vec<Value>) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    message
}
