//! `agentops demo` and `agentops sessions list | show | export` against a real server.

mod common;

use std::process::Output;

use common::{agentops, spawn_server, stop_server, temp_dir};

const KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn run(url: &str, args: &[&str]) -> Output {
    agentops()
        .args(args)
        .args(["--url", url, "--api-key", KEY])
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[cfg(unix)]
#[test]
fn the_demo_lands_and_the_session_commands_show_it() {
    let dir = temp_dir();
    let (server, url) = spawn_server(&dir, KEY);

    let demo = stdout(&run(&url, &["demo"]));
    assert!(demo.contains("10 delivered"), "{demo}");
    let id = demo
        .split("Done: session ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo names its session")
        .to_owned();

    let list = stdout(&run(&url, &["sessions", "list"]));
    let row = list
        .lines()
        .find(|line| line.starts_with(&id))
        .expect("the session is listed");
    for cell in ["Success", "10", "demo, multi-agent, travel"] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }
    let none = stdout(&run(&url, &["sessions", "list", "--end-state", "Fail"]));
    assert_eq!(none.trim(), "No sessions match.");
    let errors = stdout(&run(
        &url,
        &["sessions", "list", "--has-errors", "--tag", "travel"],
    ));
    assert!(errors.contains(&id));

    let show = stdout(&run(&url, &["sessions", "show", &id]));
    assert!(show.contains("itinerary written"), "{show}");
    assert!(
        show.contains("  • web_search [tools]"),
        "tools are nested in the plan:\n{show}"
    );
    assert!(show.contains("✗ RateLimitError [errors]"), "{show}");

    let export: serde_json::Value =
        serde_json::from_str(&stdout(&run(&url, &["sessions", "export", &id]))).unwrap();
    assert_eq!(export["event_count"], 10);
    assert_eq!(export["agents"].as_array().unwrap().len(), 2);
    assert!(export["cost"].as_f64().unwrap() > 0.0);

    let missing = run(
        &url,
        &["sessions", "show", "00000000-0000-4000-8000-000000000000"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    let bad = run(&url, &["sessions", "list", "--sort", "size"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sort"));

    stop_server(server);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn client_commands_say_what_is_wrong() {
    let refused = agentops()
        .args([
            "sessions",
            "list",
            "--url",
            "http://127.0.0.1:1",
            "--api-key",
            KEY,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is `agentops serve` running?"));

    let no_key = agentops()
        .args(["demo", "--url", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("needs the project's API key"));
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// A token exchanged for `key`: `(what it is, its reader)`, each reading or writing with it.
fn derived_tokens(url: &str, key: &str) -> Vec<(&'static str, String)> {
    let post = |path: &str, body: serde_json::Value| -> serde_json::Value {
        let mut response = agent()
            .post(format!("{url}{path}"))
            .header("X-Agentops-Api-Key", key)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
    };
    let session = uuid::Uuid::new_v4().to_string();
    let session_token = post(
        "/v2/create_session",
        serde_json::json!({"session": {"session_id": session}}),
    );
    let project_token = post("/v3/auth/token", serde_json::json!({"api_key": key}));
    let dashboard_token = post("/api/v1/auth/dashboard-token", serde_json::json!({}));
    vec![
        (
            "session token",
            session_token["jwt"].as_str().unwrap().to_owned(),
        ),
        (
            "project token",
            project_token["token"].as_str().unwrap().to_owned(),
        ),
        (
            "dashboard token",
            dashboard_token["token"].as_str().unwrap().to_owned(),
        ),
    ]
}

/// The status of reading with a token: the session list, or (a session token) its session.
fn status_with_token(url: &str, what: &str, token: &str) -> u16 {
    let path = if what == "session token" {
        // A session token reads only its own session: write to it instead.
        return agent()
            .post(format!("{url}/v2/update_session"))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({"session": {"session_id": session_of(token)}}).to_string())
            .unwrap()
            .status()
            .as_u16();
    } else {
        "/api/v1/sessions"
    };
    agent()
        .get(format!("{url}{path}"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .status()
        .as_u16()
}

/// The session id (`sub`) of a session token.
fn session_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

fn status_with_key(url: &str, key: &str) -> u16 {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(format!("{url}/api/v1/sessions"))
        .header("X-Agentops-Api-Key", key)
        .call()
        .unwrap()
        .status()
        .as_u16()
}

#[cfg(unix)]
#[test]
fn keys_are_created_listed_and_revoked_while_the_server_runs() {
    let dir = temp_dir();
    let (server, url) = spawn_server(&dir, KEY);
    let keys = |args: &[&str]| {
        let mut command = agentops();
        command.arg("keys").args(args).arg("--data-dir").arg(&dir);
        // the server's own store: its PostgreSQL database when the tests run on one
        if let Some(database) = common::test_database(&dir) {
            command.arg("--database-url").arg(database);
        }
        command.output().unwrap()
    };

    let created = stdout(&keys(&["create"]));
    let new_key = created
        .split("AGENTOPS_API_KEY=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the new key is printed")
        .to_owned();
    let id = created.split("key id: ").nth(1).unwrap().trim().to_owned();
    assert_eq!(
        status_with_key(&url, &new_key),
        200,
        "a new key works at once"
    );

    let list = stdout(&keys(&["list"]));
    assert_eq!(list.lines().count(), 3, "a header and two keys:\n{list}");
    assert!(
        list.contains(&id) && !list.contains(&new_key),
        "ids only, never keys:\n{list}"
    );

    let tokens = derived_tokens(&url, &new_key);
    for (what, token) in &tokens {
        assert_eq!(status_with_token(&url, what, token), 200, "{what} works");
    }
    let revoked = stdout(&keys(&["revoke", &id]));
    assert!(revoked.contains("Revoked"), "{revoked}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while status_with_key(&url, &new_key) != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    // What the key was exchanged for stops working too.
    for (what, token) in &tokens {
        assert_eq!(
            status_with_token(&url, what, token),
            401,
            "the {what} of a revoked key"
        );
    }
    assert_eq!(status_with_key(&url, KEY), 200, "the other key still works");

    let again = keys(&["revoke", &id]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("no API key with id"));
    let short = keys(&["revoke", "abc"]);
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8 hex digits"));
    let unknown = keys(&["create", "--project", "nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no project with id or name"));
    let empty = agentops()
        .args(["keys", "list", "--data-dir"])
        .arg(dir.join("nothing"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no AgentOps data in"));

    stop_server(server);
    std::fs::remove_dir_all(dir).ok();
}
