//! Helpers shared by the binary's tests: the `agentops` command without the caller's
//! `AGENTOPS_*` variables, temporary data directories, and a started server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `agentops` binary, with no `AGENTOPS_*` variable inherited from the test's environment.
pub fn agentops() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentops"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AGENTOPS_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A new empty directory under the system's temporary directory.
pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("agentops-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The PostgreSQL database a server on `dir` stores in when the tests run on PostgreSQL
/// (`AGENTOPS_TEST_STORE=postgres`), else `None`.
pub fn test_database(dir: &std::path::Path) -> Option<String> {
    agentops_server::store::postgres::test_database_for(dir)
}

/// Starts `agentops serve` on a free loopback port with `key`; returns it and its base URL.
pub fn spawn_server(dir: &std::path::Path, key: &str) -> (Child, String) {
    spawn_server_with(dir, key, |_| {})
}

/// [`spawn_server`], with more flags or variables set on the command by `configure`.
pub fn spawn_server_with(
    dir: &std::path::Path,
    key: &str,
    configure: impl FnOnce(&mut Command),
) -> (Child, String) {
    let mut command = agentops();
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            key,
            "--log",
            "error",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = test_database(dir) {
        command.arg("--database-url").arg(url);
    }
    configure(&mut command);
    let mut child = command.spawn().unwrap();
    // What the server says on stderr is kept (and the pipe drained), to tell why it did not
    // start.
    let mut stderr = child.stderr.take().unwrap();
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if let Some(url) = line.unwrap().strip_prefix("AgentOps server listening on ") {
            return (child, url.trim().to_owned());
        }
    }
    let _ = child.kill();
    let status = child.wait();
    let said = said.join().unwrap_or_default();
    panic!("server did not start ({status:?}): {said}");
}

/// Stops a server started by [`spawn_server`] with SIGTERM and checks it exits cleanly.
pub fn stop_server(mut server: Child) {
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(
        server.wait().unwrap().success(),
        "the server did not stop cleanly"
    );
}

/// An HTTP client that returns error statuses as answers.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

/// An answer: status, `Retry-After`, and the body as JSON (`null` when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: serde_json::Value,
}

fn answer(mut reply: ureq::http::Response<ureq::Body>) -> Answer {
    let status = reply.status().as_u16();
    let retry_after = reply
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = reply
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap_or_default();
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    }
}

/// POSTs `body` as JSON to `url` with `headers`.
pub fn post_json(url: &str, headers: &[(&str, &str)], body: &serde_json::Value) -> Answer {
    let mut request = http().post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send(body.to_string()).unwrap())
}

/// GETs `url` with `headers`.
pub fn get_json(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = http().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.call().unwrap())
}

/// Creates a v2 session with the API key `key` (`session` is the body's `session` object);
/// returns its session token.
pub fn create_session(url: &str, key: &str, session: serde_json::Value) -> String {
    let created = post_json(
        &format!("{url}/v2/create_session"),
        &[("X-Agentops-Api-Key", key)],
        &serde_json::json!({ "session": session }),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    created.body["jwt"].as_str().unwrap().to_owned()
}

/// POSTs v2 events with a session token; the answer.
pub fn post_events(url: &str, key: &str, jwt: &str, events: &[serde_json::Value]) -> Answer {
    let bearer = format!("Bearer {jwt}");
    post_json(
        &format!("{url}/v2/create_events"),
        &[("X-Agentops-Api-Key", key), ("Authorization", &bearer)],
        &serde_json::json!({ "events": events }),
    )
}

/// `GET /health`.
pub fn health(url: &str) -> serde_json::Value {
    let answer = get_json(&format!("{url}/health"), &[]);
    assert_eq!(answer.status, 200);
    answer.body
}

/// The ids of a session detail's events, checking each is stored once, and its `event_count`.
pub fn event_ids(session: &serde_json::Value) -> (std::collections::HashSet<String>, i64) {
    let ids: Vec<String> = session["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let set: std::collections::HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "no event stored twice");
    (set, session["event_count"].as_i64().unwrap())
}
