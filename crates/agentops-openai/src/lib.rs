//! AgentOps for [async-openai]: every chat completion becomes an LLM event of the current
//! session, with its model, messages, tool calls, tokens (input, output, cached, reasoning),
//! latency and, when streamed, the time to the first token; an HTTP error (a rate limit, a
//! server error) or a failed connection becomes an Error event linked to the call. The server
//! works out the cost. It works for any OpenAI-compatible base URL (OpenAI, Azure, vLLM,
//! Ollama).
//!
//! It is a [`tower::Layer`] for async-openai's own middleware (`Client::with_http_service`),
//! so the client is used unmodified; one line installs it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use async_openai::{config::OpenAIConfig, Client};
//!
//! agentops::init(agentops::Config::from_env()?)?;
//! let openai = Client::with_config(OpenAIConfig::new().with_api_base("http://127.0.0.1:8000/v1"))
//!     .with_http_service(agentops_openai::default_service());
//! // openai.chat().create(request).await? … each call is recorded.
//! # Ok(()) }
//! ```
//!
//! [`service`] is async-openai's default stack (its retry layer, then the HTTP client) with
//! this layer under the retries, so each attempt is recorded: a 429 that async-openai retries
//! shows as an Error event, then the successful call. To build your own stack, put
//! [`AgentopsLayer`] where you want it.
//!
//! Recording follows the session's `instrument_llm_calls` (`AGENTOPS_INSTRUMENT_LLM_CALLS`),
//! read at each call; without a current session the call is not recorded.
//!
//! [async-openai]: https://docs.rs/async-openai

mod chat;
mod stream;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_openai::error::OpenAIError;
use async_openai::middleware::retry::{OpenAIRetry, OpenAIRetryLayer};
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use reqwest::Response;

/// [`service`] with a default `reqwest::Client`.
pub fn default_service() -> OpenAIRetry<AgentopsService<ReqwestService>> {
    service(reqwest::Client::new())
}

/// async-openai's default HTTP stack (its retries over `client`) with each attempt recorded.
/// TLS is whatever `reqwest` was built with (async-openai's default `rustls` feature).
pub fn service(client: reqwest::Client) -> OpenAIRetry<AgentopsService<ReqwestService>> {
    tower::ServiceBuilder::new()
        .layer(OpenAIRetryLayer::default())
        .layer(AgentopsLayer)
        .service(ReqwestService::new(client))
}

/// Records the chat completions that pass through it (see the crate's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentopsLayer;

impl<S> tower::Layer<S> for AgentopsLayer {
    type Service = AgentopsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AgentopsService { inner }
    }
}

/// The service [`AgentopsLayer`] makes.
#[derive(Debug, Clone)]
pub struct AgentopsService<S> {
    inner: S,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send + 'static>>;

impl<S> tower::Service<HttpRequestFactory> for AgentopsService<S>
where
    S: tower::Service<HttpRequestFactory, Response = Response, Error = OpenAIError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = OpenAIError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        // The ready service answers this call; a clone takes its place (tower's convention).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(session) = recording_session() else {
            return Box::pin(inner.call(factory));
        };
        Box::pin(async move {
            let request = factory.build().await?;
            let Some(call) = chat::Call::start(&session, &request) else {
                return inner.call(replay(request)).await;
            };
            let started = Instant::now();
            match inner.call(replay(request)).await {
                Ok(response) if response.status().is_success() => {
                    if call.streaming() {
                        Ok(stream::observe(call, response, started))
                    } else {
                        call.finish_response(response).await
                    }
                }
                Ok(response) => call.finish_http_error(response).await,
                Err(error) => {
                    call.finish_transport_error(&error);
                    Err(error)
                }
            }
        })
    }
}

/// The session this call is recorded in, if any and if it records LLM calls.
fn recording_session() -> Option<agentops::Session> {
    agentops::session()
        .ok()
        .filter(|session| session.config().instrument_llm_calls)
}

/// A factory that hands out the request already built (its body is in memory), so that the
/// body is not serialised twice.
fn replay(request: reqwest::Request) -> HttpRequestFactory {
    let request = std::sync::Arc::new(request);
    HttpRequestFactory::new(move || {
        let copy = request.try_clone();
        async move {
            copy.ok_or_else(|| {
                OpenAIError::InvalidArgument("the request body cannot be replayed".into())
            })
        }
    })
}
