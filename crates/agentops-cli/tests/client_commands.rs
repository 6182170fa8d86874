//! `agentops demo` and `agentops sessions list | show | export` against a real server.

mod common;

use std::process::{Command, Output};

use common::{agentops, spawn_server, temp_dir};

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
    let (mut server, url) = spawn_server(&dir, KEY);

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

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
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
