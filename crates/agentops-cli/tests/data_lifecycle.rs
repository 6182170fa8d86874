//! Retention (`--retention-days`, a project's own with `agentops projects set-retention`),
//! `agentops backup` and `agentops migrate`, against the real binary over loopback HTTP.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    agentops, create_session, event_ids, get_json, health, post_events, spawn_server,
    spawn_server_with, stop_server, temp_dir,
};
use serde_json::{json, Value};

const KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// A session id: `n` as the last digits of a UUID.
fn session_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// `n` tool events starting at `at`, with exact costs and token counts, ids `{prefix}-{i}`.
fn events(prefix: &str, at: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": format!("{prefix}{i:012}"), "event_type": "llms", "init_timestamp": at,
                   "end_timestamp": at, "model": "gpt-4o", "prompt_tokens": 10,
                   "completion_tokens": 2, "cost": 0.25})
        })
        .collect()
}

/// A session of `key`'s project from `start` to `end` (running if `None`) with `n` events at
/// its start, posted in batches.
fn seed(url: &str, key: &str, n_id: u32, start: &str, end: Option<&str>, n: usize) -> String {
    let id = session_id(n_id);
    let mut session = json!({"session_id": id, "init_timestamp": start});
    if let Some(end) = end {
        session["end_timestamp"] = json!(end);
        session["end_state"] = json!("Success");
    }
    let jwt = create_session(url, key, session);
    let all = events(&format!("00000000-0000-4000-{n_id:04}-"), start, n);
    for batch in all.chunks(200) {
        let posted = post_events(url, key, &jwt, batch);
        assert_eq!(posted.status, 200, "{}", posted.body);
    }
    id
}

/// The status of `GET /api/v1/sessions/{id}` with `key`, and its body.
fn session(url: &str, key: &str, id: &str) -> (u16, Value) {
    let answer = get_json(
        &format!("{url}/api/v1/sessions/{id}"),
        &[("X-Agentops-Api-Key", key)],
    );
    (answer.status, answer.body)
}

/// Waits until the server has finished its first retention pass (the hang guard is not an
/// assertion about time: a pass that never ends fails here).
fn after_first_retention_pass(url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = health(url)["retention"].clone();
        if status["passes"].as_u64().unwrap_or(0) >= 1 {
            return status;
        }
        assert!(Instant::now() < deadline, "no retention pass: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_ok(args: &[&str], dir: &Path) -> String {
    let mut command = agentops();
    command.args(args).arg("--data-dir").arg(dir);
    // the server's own store: its PostgreSQL database when the tests run on one
    if let Some(database) = common::test_database(dir) {
        command.arg("--database-url").arg(database);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A time `days` ago, in the API's form.
fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::TimeDelta::days(days))
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

#[cfg(unix)]
#[test]
fn retention_deletes_old_sessions_with_their_events_and_projects_may_keep_their_own() {
    let dir = temp_dir();
    let (server, url) = spawn_server(&dir, KEY);
    let created = run_ok(&["create-project", "team-b"], &dir);
    let key_b = created
        .lines()
        .find_map(|l| l.strip_prefix("AGENTOPS_API_KEY="))
        .unwrap()
        .to_owned();
    let long_ago = "2000-01-01T00:00:00.000000+00:00";
    // 1,200 events: more than one retention write deletes
    let old = seed(
        &url,
        KEY,
        1,
        long_ago,
        Some("2000-01-02T00:00:00.000000+00:00"),
        1200,
    );
    let running_old = seed(&url, KEY, 2, "2000-01-03T00:00:00.000000+00:00", None, 3);
    // started long ago but ended yesterday: the end counts, it stays
    let long = seed(&url, KEY, 3, long_ago, Some(&days_ago(1)), 2);
    let recent = seed(&url, KEY, 4, &days_ago(1), None, 2);
    let old_b = seed(
        &url,
        &key_b,
        5,
        long_ago,
        Some("2000-01-02T00:00:00.000000+00:00"),
        2,
    );
    let set = run_ok(&["projects", "set-retention", "team-b", "forever"], &dir);
    assert!(set.contains("kept forever"), "{set}");
    let list = run_ok(&["projects", "list"], &dir);
    assert!(
        list.contains("team-b") && list.contains("forever") && list.contains("server default"),
        "{list}"
    );
    let stats_before = get_json(
        &format!("{url}/api/v1/stats"),
        &[("X-Agentops-Api-Key", KEY)],
    );
    assert_eq!(stats_before.status, 200);
    stop_server(server);

    // 30 days for the server; team-b keeps its own (forever)
    let (server, url) = spawn_server_with(&dir, KEY, |c| {
        c.args(["--retention-days", "30"]);
    });
    let status = after_first_retention_pass(&url);
    assert_eq!(status["days"], 30, "{status}");
    assert_eq!(status["sessions_deleted"], 2, "{status}");
    assert!(status["last_error"].is_null(), "{status}");
    assert!(status["rows_deleted"].as_u64().unwrap() >= 1203, "{status}");
    for gone in [&old, &running_old] {
        assert_eq!(session(&url, KEY, gone).0, 404, "{gone} is deleted");
    }
    for kept in [&long, &recent] {
        let (code, body) = session(&url, KEY, kept);
        assert_eq!(code, 200, "{kept} is kept");
        assert_eq!(body["events"].as_array().unwrap().len(), 2);
        assert_eq!(body["event_count"], 2);
    }
    assert_eq!(
        session(&url, &key_b, &old_b).0,
        200,
        "team-b keeps its sessions"
    );
    // The hourly totals lost exactly the deleted events: statistics from the totals alone and
    // over a range whose first partial hour is read from the events agree.
    let stats = |query: &str| {
        let answer = get_json(
            &format!("{url}/api/v1/stats{query}"),
            &[("X-Agentops-Api-Key", KEY)],
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    };
    let by_totals = stats("");
    let by_events = stats("?from=1999-12-31T12:00:00Z");
    assert_eq!(by_totals["days"], by_events["days"]);
    assert_eq!(by_totals["models"], by_events["models"]);
    let events: i64 = by_totals["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["events"].as_i64().unwrap())
        .sum();
    assert_eq!(events, 4, "{by_totals}");
    assert_ne!(by_totals["days"], stats_before.body["days"]);
    stop_server(server);

    // The other way round: the server keeps everything, team-b only 30 days.
    run_ok(&["projects", "set-retention", "team-b", "30"], &dir);
    let (server, url) = spawn_server(&dir, KEY);
    let status = after_first_retention_pass(&url);
    assert!(status["days"].is_null(), "{status}");
    assert_eq!(status["sessions_deleted"], 1, "{status}");
    assert_eq!(session(&url, &key_b, &old_b).0, 404);
    assert_eq!(session(&url, KEY, &long).0, 200);
    stop_server(server);

    let back = run_ok(&["projects", "set-retention", "team-b", "default"], &dir);
    assert!(back.contains("follow the server"), "{back}");
    let bad = agentops()
        .args(["projects", "set-retention", "team-b", "0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid retention"));
    std::fs::remove_dir_all(dir).ok();
}

#[cfg(unix)]
#[test]
fn retention_days_comes_from_the_flag_then_the_variable_then_the_file() {
    let dir = temp_dir();
    let file = dir.join("agentops.toml");
    std::fs::write(&file, "retention_days = 10\n").unwrap();
    let days = |flag: Option<&str>, env: Option<&str>, config: bool| {
        let (server, url) = spawn_server_with(&dir, KEY, |c| {
            if let Some(flag) = flag {
                c.args(["--retention-days", flag]);
            }
            if let Some(env) = env {
                c.env("AGENTOPS_RETENTION_DAYS", env);
            }
            if config {
                c.arg("--config").arg(&file);
            }
        });
        let days = health(&url)["retention"]["days"].clone();
        stop_server(server);
        days
    };
    assert_eq!(days(Some("30"), Some("20"), true), 30);
    assert_eq!(days(None, Some("20"), true), 20);
    assert_eq!(days(None, None, true), 10);
    assert_eq!(days(Some("forever"), None, true), Value::Null);
    assert_eq!(days(None, None, false), Value::Null);
    let out = agentops()
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .env("AGENTOPS_RETENTION_DAYS", "a week")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--retention-days"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

/// The ids of a session's stored events (each once, checked) and its `event_count`.
fn stored(url: &str, id: &str) -> (HashSet<String>, i64) {
    let (code, body) = session(url, KEY, id);
    assert_eq!(code, 200, "{body}");
    event_ids(&body)
}

/// The session list of the default project, every field.
fn session_list(url: &str) -> Value {
    let answer = get_json(
        &format!("{url}/api/v1/sessions?limit=1000"),
        &[("X-Agentops-Api-Key", KEY)],
    );
    assert_eq!(answer.status, 200);
    answer.body["sessions"].clone()
}

#[cfg(unix)]
#[test]
fn a_backup_taken_while_serving_is_a_private_valid_store_with_the_same_sessions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let (server, url) = spawn_server(&dir, KEY);
    let at = "2026-11-22T01:30:23.000000+00:00";
    let first = seed(&url, KEY, 11, at, Some(at), 300);
    // A load on another session goes on during the backup.
    let loaded = session_id(12);
    let jwt = create_session(
        &url,
        KEY,
        json!({"session_id": loaded, "init_timestamp": at}),
    );
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (url, jwt, acknowledged, stop) =
            (url.clone(), jwt.clone(), acknowledged.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && n < 0xffff {
                let batch = events(&format!("00000000-0000-4001-{n:04x}-"), at, 20);
                if post_events(&url, KEY, &jwt, &batch).status == 200 {
                    let mut acked = acknowledged.lock().unwrap();
                    acked.extend(batch.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
                }
                n += 1;
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before_backup = acknowledged.lock().unwrap().clone();

    let copy_dir = temp_dir();
    let copy = copy_dir.join("agentops.db");
    let out = agentops()
        .arg("backup")
        .arg(&copy)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("backup: ") && stderr.contains("pages (100%)"),
        "progress on stderr: {stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Backed up"));
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup is its owner's only");
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();

    // The backup serves as a data directory of its own: a consistent snapshot, with
    // everything acknowledged before it started.
    let (copy_server, copy_url) = spawn_server(&copy_dir, KEY);
    let (ids, count) = stored(&copy_url, &loaded);
    assert_eq!(
        count as usize,
        ids.len(),
        "totals match the events: one snapshot"
    );
    assert!(
        before_backup.is_subset(&ids),
        "acknowledged before the backup"
    );
    let all = acknowledged.lock().unwrap().clone();
    assert!(ids.is_subset(&all), "nothing that was not acknowledged");
    assert_eq!(stored(&copy_url, &first), stored(&url, &first));
    stop_server(copy_server);

    // Taken at rest, a backup has exactly the server's sessions.
    let again = copy_dir.join("again.db");
    let out = agentops()
        .arg("backup")
        .arg(&again)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let again_dir = temp_dir();
    std::fs::rename(&again, again_dir.join("agentops.db")).unwrap();
    let (again_server, again_url) = spawn_server(&again_dir, KEY);
    assert_eq!(session_list(&again_url), session_list(&url));
    assert_eq!(stored(&again_url, &loaded), stored(&url, &loaded));
    stop_server(again_server);

    // An existing file is not overwritten; a directory without data is named.
    let out = agentops()
        .arg("backup")
        .arg(&copy)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = agentops()
        .arg("backup")
        .arg(copy_dir.join("x.db"))
        .arg("--data-dir")
        .arg(dir.join("nothing"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no AgentOps data in"));

    stop_server(server);
    for d in [dir, copy_dir, again_dir] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[cfg(unix)]
#[test]
fn a_sqlite_store_migrated_to_postgresql_serves_the_same_sessions() {
    let dir = temp_dir();
    let (server, url) = spawn_server(&dir, KEY);
    let ended = seed(
        &url,
        KEY,
        1,
        "2026-11-20T10:00:00.000000+00:00",
        Some("2026-11-20T10:05:00.000000+00:00"),
        450,
    );
    let running = seed(&url, KEY, 2, "2026-12-01T09:00:00.000000+00:00", None, 3);
    let list = |url: &str| {
        let answer = get_json(
            &format!("{url}/api/v1/sessions?limit=100"),
            &[("X-Agentops-Api-Key", KEY)],
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["sessions"].clone()
    };
    let before = list(&url);
    let (_, ended_before) = session(&url, KEY, &ended);
    stop_server(server);

    let server_url = std::env::var("AGENTOPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let database = format!(
        "{}/agentops_it_migrate_{}",
        server_url.rsplit_once('/').unwrap().0,
        uuid::Uuid::new_v4().simple()
    );
    agentops_server::store::postgres::create_database_if_missing(&database).unwrap();
    let migrate = |expect_copied: bool| {
        let out = agentops()
            .args(["migrate", "--from"])
            .arg(&dir)
            .args(["--to", &database, "--batch-rows", "100"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("counts match"), "{text}");
        assert_eq!(
            !text.contains(" 0 copied by this run"),
            expect_copied,
            "{text}"
        );
    };
    migrate(true);
    // run again: nothing is copied twice
    migrate(false);

    let pg_dir = temp_dir();
    let (server, url) = spawn_server_with(&pg_dir, KEY, |command| {
        command.arg("--database-url").arg(&database);
    });
    assert_eq!(list(&url), before);
    let (status, ended_after) = session(&url, KEY, &ended);
    assert_eq!(status, 200);
    assert_eq!(ended_after["event_count"], 450);
    assert_eq!(ended_after["events"], ended_before["events"]);
    assert_eq!(ended_after["cost"], ended_before["cost"]);
    let (status, _) = session(&url, KEY, &running);
    assert_eq!(status, 200);
    // the migrated store takes new writes
    seed(&url, KEY, 3, "2026-12-02T09:00:00.000000+00:00", None, 2);
    assert_eq!(list(&url).as_array().unwrap().len(), 3);
    stop_server(server);
    agentops_server::store::postgres::drop_database(&database).unwrap();
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_dir_all(pg_dir).ok();
}
