//! The `agentops` binary: configuration errors, first start, graceful stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{agentops, temp_dir};

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
