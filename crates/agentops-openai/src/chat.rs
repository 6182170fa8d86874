//! A chat completion as an LLM event: the request's model, messages and parameters when it
//! starts; the response's message (with its tool calls), usage and finish reason when it ends;
//! an HTTP or connection error as an Error event linked to it.

use agentops::{Event, EventSpan, Session};
use async_openai::error::OpenAIError;
use reqwest::Response;
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

/// One chat completion being recorded.
pub(crate) struct Call {
    span: EventSpan,
    stream: bool,
}

/// What is read of a chat request on the caller's thread: its model and whether it streams
/// (the rest is skipped, not parsed; the body goes to the SDK as is).
#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    stream: Option<bool>,
}

impl Call {
    /// Starts recording `request` if it is a chat completion.
    pub(crate) fn start(session: &Session, request: &reqwest::Request) -> Option<Self> {
        if request.method() != reqwest::Method::POST
            || !request.url().path().ends_with("/chat/completions")
        {
            return None;
        }
        let body = request.body()?.as_bytes()?;
        let head: ChatRequest<'_> = serde_json::from_slice(body).ok()?;
        let mut event = Event::llm(head.model.as_deref().unwrap_or("unknown"))
            .chat_request_json(String::from_utf8_lossy(body))
            .attribute("gen_ai.operation.name", "chat");
        if let Some(host) = request.url().host_str() {
            event = event.attribute("server.address", host.to_owned());
        }
        let span = session.start_event(event).ok()?;
        Some(Self {
            span,
            stream: head.stream == Some(true),
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
        // The SDK decodes the response on its delivery thread.
        let body = String::from_utf8_lossy(&bytes).into_owned();
        self.span.end_with(|event| event.chat_response_json(body));
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

    /// Ends the event with what a stream delivered, as a chat response would have said it.
    pub(crate) fn finish_stream(self, response: Value, extra: Vec<(&'static str, f64)>) {
        self.span.end_with(|event| {
            let mut event = event.chat_response_json(response.to_string());
            for (key, value) in extra {
                event = event.attribute(key, value);
            }
            event
        });
    }
}

/// What a response is besides its body, to give it back once the body has been read.
pub(crate) struct Head {
    url: reqwest::Url,
    status: reqwest::StatusCode,
    version: reqwest::Version,
    headers: reqwest::header::HeaderMap,
}

impl Head {
    pub(crate) fn of(response: &Response) -> Self {
        Self {
            url: response.url().clone(),
            status: response.status(),
            version: response.version(),
            headers: response.headers().clone(),
        }
    }

    /// A response like the original (its URL too), with `body`.
    pub(crate) fn rebuild(self, body: impl Into<reqwest::Body>) -> Response {
        use reqwest::ResponseBuilderExt as _;
        // The builder cannot fail here (it holds nothing invalid); at worst the URL is lost.
        let head = http::Response::builder().url(self.url).body(());
        let (parts, ()) = head.unwrap_or_default().into_parts();
        let mut response = http::Response::from_parts(parts, body.into());
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::ResponseBuilderExt as _;

    #[test]
    fn a_rebuilt_response_keeps_its_url_status_and_headers() {
        let url = reqwest::Url::parse("https://api.example.com/v1/chat/completions").unwrap();
        let original = http::Response::builder()
            .url(url.clone())
            .status(201)
            .header("x-request-id", "abc")
            .body("old")
            .unwrap();
        let head = Head::of(&Response::from(original));
        let rebuilt = head.rebuild("new");
        assert_eq!(rebuilt.url(), &url);
        assert_eq!(rebuilt.status(), 201);
        assert_eq!(rebuilt.headers()["x-request-id"], "abc");
    }
}
