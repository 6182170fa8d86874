//! A chat completion as an LLM event: the request's model, messages and parameters when it
//! starts; the response's message (with its tool calls), usage and finish reason when it ends;
//! an HTTP or connection error as an Error event linked to it.

use agentops::{Event, EventSpan, Session};
use async_openai::error::OpenAIError;
use reqwest::Response;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// One chat completion being recorded.
pub(crate) struct Call {
    span: EventSpan,
    stream: bool,
}

/// What the SDK reads of a chat request: borrowed from its body, the messages and parameters
/// kept as raw JSON (nothing is parsed into a tree on the caller's thread).
#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    stream: Option<bool>,
    #[serde(borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    n: Option<&'a RawValue>,
    #[serde(borrow)]
    seed: Option<&'a RawValue>,
    #[serde(borrow)]
    stop: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow)]
    response_format: Option<&'a RawValue>,
    #[serde(borrow)]
    reasoning_effort: Option<&'a RawValue>,
    #[serde(borrow)]
    user: Option<&'a RawValue>,
}

/// The request's parameters that describe the call, as sent.
#[derive(Serialize)]
struct Params<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a RawValue>,
}

impl<'a> ChatRequest<'a> {
    fn params(&self) -> Params<'a> {
        Params {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            max_completion_tokens: self.max_completion_tokens,
            n: self.n,
            seed: self.seed,
            stop: self.stop,
            tools: self.tools,
            tool_choice: self.tool_choice,
            response_format: self.response_format,
            reasoning_effort: self.reasoning_effort,
            user: self.user,
        }
    }
}

impl Call {
    /// Starts recording `request` if it is a chat completion.
    pub(crate) fn start(session: &Session, request: &reqwest::Request) -> Option<Self> {
        if request.method() != reqwest::Method::POST
            || !request.url().path().ends_with("/chat/completions")
        {
            return None;
        }
        let body: ChatRequest<'_> = serde_json::from_slice(request.body()?.as_bytes()?).ok()?;
        let mut event = Event::llm(body.model.as_deref().unwrap_or("unknown"))
            .params(body.params())
            .attribute("gen_ai.operation.name", "chat");
        if let Some(messages) = body.messages {
            event = event.prompt_json(messages);
        }
        if let Some(host) = request.url().host_str() {
            event = event.attribute("server.address", host.to_owned());
        }
        let span = session.start_event(event).ok()?;
        Some(Self {
            span,
            stream: body.stream == Some(true),
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
        match serde_json::from_slice::<ChatResponse<'_>>(&bytes) {
            Ok(completion) => self.span.end_with(|event| completion.apply(event)),
            Err(_) => self.span.end(),
        }
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
    pub(crate) fn finish_stream(self, completion: Completion, extra: Vec<(&'static str, f64)>) {
        self.span.end_with(|event| {
            let mut event = completion.apply(event);
            for (key, value) in extra {
                event = event.attribute(key, value);
            }
            event
        });
    }
}

/// What the SDK reads of a chat response (borrowed; the message kept as raw JSON).
#[derive(Deserialize)]
struct ChatResponse<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<ChatChoice<'a>>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChatChoice<'a> {
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

/// Token usage, as the chat API reports it.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default, Clone)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl ChatResponse<'_> {
    fn apply(self, event: Event) -> Event {
        let choice = self.choices.into_iter().next();
        Completion {
            id: self.id.map(Cow::into_owned),
            model: self.model.map(Cow::into_owned),
            message: choice
                .as_ref()
                .and_then(|choice| choice.message)
                .map(|message| serde_json::value::to_raw_value(message).unwrap_or_default()),
            finish_reason: choice.and_then(|choice| choice.finish_reason.map(Cow::into_owned)),
            usage: self.usage,
        }
        .apply(event)
    }
}

/// What a call ended with: the assistant's message, usage, model, id and finish reason.
#[derive(Default)]
pub(crate) struct Completion {
    pub(crate) id: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) message: Option<Box<RawValue>>,
    pub(crate) finish_reason: Option<String>,
    pub(crate) usage: Option<Usage>,
}

impl Completion {
    pub(crate) fn apply(self, mut event: Event) -> Event {
        if let Some(message) = &self.message {
            event = event.completion_json(message);
        }
        if let Some(reason) = self.finish_reason {
            event = event.attribute("gen_ai.response.finish_reasons", reason);
        }
        if let Some(model) = self.model {
            event = event.attribute("gen_ai.response.model", model);
        }
        if let Some(id) = self.id {
            event = event.attribute("gen_ai.response.id", id);
        }
        let usage = self.usage.unwrap_or_default();
        if let (Some(input), Some(output)) = (usage.prompt_tokens, usage.completion_tokens) {
            event = event.tokens(input, output);
        }
        if let Some(cached) = usage.prompt_tokens_details.and_then(|d| d.cached_tokens) {
            event = event.cached_tokens(cached);
        }
        if let Some(reasoning) = usage
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
        {
            event = event.reasoning_tokens(reasoning);
        }
        event
    }
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
