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

/// Starts `agentops serve` on a free loopback port with `key`; returns it and its base URL.
pub fn spawn_server(dir: &std::path::Path, key: &str) -> (Child, String) {
    let mut child = agentops()
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
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if let Some(url) = line.unwrap().strip_prefix("AgentOps server listening on ") {
            return (child, url.trim().to_owned());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
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
