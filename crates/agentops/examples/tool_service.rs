//! A tool service that continues its callers' sessions: each request's W3C `traceparent` and
//! `baggage` headers name the session and the caller's event, and the service's own events
//! land in that session, nested under the caller's event, carrying the baggage's entries.
//! Run it beside `examples/orchestrator.rs`:
//!
//! ```sh
//! export AGENTOPS_API_KEY=<key> AGENTOPS_API_ENDPOINT=http://127.0.0.1:4318
//! cargo run -p agentops --example tool_service      # prints: listening on http://127.0.0.1:PORT
//! ```
//!
//! `TOOL_SERVICE_LISTEN` sets the address (default `127.0.0.1:0`, any free port).

use agentops::propagation::RemoteSession;
use agentops::{Config, Event};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_env()?;
    // This service records only into the sessions its callers pass on.
    config.auto_start_session = false;
    agentops::init(config)?;
    let address = std::env::var("TOOL_SERVICE_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = axum::Router::new().route("/forecast", post(forecast));
    axum::serve(listener, app).await?;
    Ok(())
}

/// `POST /forecast {"city": …}`: looks the forecast up, recorded in the caller's session.
async fn forecast(headers: HeaderMap, Json(request): Json<Value>) -> (StatusCode, Json<Value>) {
    let city = request["city"].as_str().unwrap_or("nowhere").to_owned();
    let answer = format!("sunny in {city}");
    let Some(remote) = RemoteSession::from_headers(&headers) else {
        // A caller without a session: the work is done, just not recorded.
        return (StatusCode::OK, Json(json!({"forecast": answer})));
    };
    match record(remote, &city, &answer).await {
        Ok(()) => (StatusCode::OK, Json(json!({"forecast": answer}))),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": err.to_string()})),
        ),
    }
}

async fn record(remote: RemoteSession, city: &str, answer: &str) -> Result<(), agentops::Error> {
    let session = agentops::join_session(remote)?;
    let lookup =
        session.start_event(Event::action("lookup_forecast").params(json!({"city": city})))?;
    {
        let _inside = lookup.enter();
        session.record(
            Event::tool("forecast_api")
                .params(json!({"city": city}))
                .returns(answer),
        )?;
    }
    lookup.end_with(|event| event.returns(answer));
    // Delivers this service's events; the session itself is ended by the caller.
    session
        .end_async(agentops::EndState::Success, "request served")
        .await?;
    Ok(())
}
