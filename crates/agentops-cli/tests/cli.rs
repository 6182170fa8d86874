//! The `agentops` binary: configuration errors, first start, graceful stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn agentops() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentops"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AGENTOPS_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("agentops-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bad_values_are_reported_clearly() {
    let dir = temp_dir();
    let out = agentops()
        .args(["serve", "--listen", "localhost:notaport"])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid --listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = agentops()
        .args(["serve", "--api-key", "secret"])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("UUID"));

    let out = agentops()
        .args(["serve"])
        .arg("--data-dir")
        .arg(&dir)
        .env("AGENTOPS_MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max-body-bytes"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = agentops()
        .args(["serve", "--listen", &addr])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

#[cfg(unix)]
#[test]
fn serves_prints_the_key_once_and_stops_on_sigterm() {
    let dir = temp_dir();
    let mut child = agentops()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AGENTOPS_DATA_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut key = None;
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.trim().strip_prefix("AGENTOPS_API_KEY=") {
            key = Some(k.to_owned());
        }
        if let Some(u) = line.strip_prefix("AgentOps server listening on ") {
            url = Some(u.trim().to_owned());
            break;
        }
    }
    let (key, url) = (
        key.expect("key printed on first start"),
        url.expect("url printed"),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let reply = agent
        .post(format!("{url}/v3/auth/token"))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"api_key": key}).to_string())
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");

    // The second start prints no key, and a new project can be created offline.
    let out = agentops()
        .args(["create-project", "team-b"])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("AGENTOPS_API_KEY="));
    std::fs::remove_dir_all(dir).ok();
}

/// Starts `agentops serve` on a free port; returns the child and its URL.
#[cfg(unix)]
fn spawn_server(dir: &std::path::Path, key: &str) -> (std::process::Child, String) {
    let mut child = agentops()
        .args(["serve", "--listen", "127.0.0.1:0", "--api-key", key])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if let Some(u) = line.unwrap().strip_prefix("AgentOps server listening on ") {
            return (child, u.trim().to_owned());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

#[cfg(unix)]
#[test]
fn acknowledged_events_survive_kill_9() {
    let dir = temp_dir();
    let key = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let session = "ec025968-28a1-40dc-a031-44309d8be760";
    let (mut child, url) = spawn_server(&dir, key);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |path: &str, auth: Option<&str>, body: serde_json::Value| {
        let mut request = agent
            .post(format!("{url}{path}"))
            .header("Content-Type", "application/json")
            .header("X-Agentops-Api-Key", key);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let mut reply = request.send(body.to_string()).unwrap();
        assert_eq!(reply.status().as_u16(), 200);
        serde_json::from_str::<serde_json::Value>(&reply.body_mut().read_to_string().unwrap())
            .unwrap()
    };
    let created = post(
        "/v2/create_session",
        None,
        serde_json::json!({"session": {"session_id": session, "init_timestamp": "2026-11-22T01:30:22.721555+00:00"}}),
    );
    let auth = format!("Bearer {}", created["jwt"].as_str().unwrap());
    for batch in 0..20 {
        let events: Vec<serde_json::Value> = (0..25)
            .map(|i| {
                serde_json::json!({"id": format!("00000000-0000-4000-8000-{:012}", batch * 100 + i),
                    "event_type": "tools", "init_timestamp": "2026-11-22T01:30:23.000000+00:00"})
            })
            .collect();
        post(
            "/v2/create_events",
            Some(&auth),
            serde_json::json!({ "events": events }),
        );
    }
    // No graceful stop: SIGKILL right after the last acknowledgement.
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let (mut child, url) = spawn_server(&dir, key);
    let mut reply = agent
        .get(format!("{url}/api/v1/sessions/{session}"))
        .header("X-Agentops-Api-Key", key)
        .call()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let detail: serde_json::Value =
        serde_json::from_str(&reply.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(detail["event_count"], 500);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_config_file_sets_defaults_that_flags_and_variables_override() {
    let dir = temp_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let file = dir.join("agentops.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"{addr}\"\ndata-dir = \"{}\"\nmax_body_bytes = 10\n",
            dir.display()
        ),
    )
    .unwrap();
    let stderr = |out: std::process::Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // The file's value is used…
    let out = agentops()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(stderr(out).contains("--max-body-bytes"));
    // …a flag overrides it (and the file's listen address is then used)…
    let out = agentops()
        .args(["serve", "--max-body-bytes", "4096"])
        .arg(format!("--config={}", file.display()))
        .output()
        .unwrap();
    let message = stderr(out);
    assert!(
        message.contains("cannot listen on") && message.contains(&addr),
        "{message}"
    );
    // …and so does a variable.
    let out = agentops()
        .args(["serve", "--max-body-bytes", "4096"])
        .env("AGENTOPS_CONFIG", &file)
        .env("AGENTOPS_LISTEN", "nowhere")
        .output()
        .unwrap();
    assert!(stderr(out).contains("invalid --listen"));

    std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = agentops()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let message = stderr(out);
    assert!(message.contains("unknown setting \"lisen\""), "{message}");
    std::fs::remove_dir_all(dir).ok();
}
