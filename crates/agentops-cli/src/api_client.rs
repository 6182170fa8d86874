//! A small blocking client of the server's read API, for the `sessions` commands.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// Where the server is and how to authenticate to it.
pub struct ApiClient {
    agent: ureq::Agent,
    base: String,
    api_key: Option<String>,
}

impl ApiClient {
    pub fn new(base: &str, api_key: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            api_key,
        }
    }

    /// `GET {base}{path}` with `query`, answered as JSON; errors say what to do about them.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        for (name, value) in query {
            request = request.query(*name, value);
        }
        if let Some(key) = &self.api_key {
            request = request.header("X-Agentops-Api-Key", key);
        }
        let mut response = request.call().map_err(|err| {
            anyhow!(
                "cannot reach the AgentOps server at {}: {err} (is `agentops serve` running? set --url or AGENTOPS_API_ENDPOINT)",
                self.base
            )
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .context("cannot read the server's answer")?;
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        match status {
            200..=299 => Ok(json),
            401 => bail!(
                "the server refused the credentials: {} (pass --api-key or set AGENTOPS_API_KEY)",
                message(&json)
            ),
            _ => bail!("the server answered {status}: {}", message(&json)),
        }
    }
}

fn message(json: &Value) -> String {
    json["error"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| json.to_string())
}
