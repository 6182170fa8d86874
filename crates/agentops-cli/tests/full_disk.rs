//! A full disk, for real: the server's data directory on a small tmpfs, filled up. Writes get
//! `503` with `Retry-After` and a JSON error (never `500`), nothing acknowledged is lost, and
//! once space is back the next writes succeed without a restart.
//!
//! Mounting needs root (or `CAP_SYS_ADMIN`). When the mount fails the test fails, saying why;
//! on a machine where that cannot work, `AGENTOPS_SKIP_MOUNT_TESTS=1` skips it, loudly.

mod common;

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::{create_session, event_ids, get_json, health, post_events, spawn_server, stop_server};
use serde_json::{json, Value};

const KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const SESSION: &str = "0b0e7c7e-5d3a-4f0e-9a51-3c2f3b4d5e6f";
/// The file system's size: room for the server's files and a few megabytes of events.
const TMPFS_SIZE: &str = "8m";
/// Events per request, and the size of each one's payload.
const EVENTS_PER_BATCH: usize = 20;
const PAYLOAD_BYTES: usize = 4000;

/// A tmpfs mounted on a new directory, unmounted (and the directory removed) on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!("agentops-full-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .output();
        match out {
            Ok(out) if out.status.success() => Ok(Self { path }),
            Ok(out) => {
                let _ = std::fs::remove_dir(&path);
                Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
            }
            Err(err) => {
                let _ = std::fs::remove_dir(&path);
                Err(format!("cannot run mount: {err}"))
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A server process, killed on drop unless stopped (so that the file system can be unmounted).
struct Running(Option<Child>);

impl Running {
    fn stop(mut self) {
        if let Some(child) = self.0.take() {
            stop_server(child);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Batch `n`: its event ids and the events.
fn batch(n: usize) -> (Vec<String>, Vec<Value>) {
    let ids: Vec<String> = (0..EVENTS_PER_BATCH)
        .map(|i| format!("00000000-0000-4000-8000-{n:06}{i:06}"))
        .collect();
    let events = ids
        .iter()
        .map(|id| {
            json!({"id": id, "event_type": "tools", "init_timestamp": "2026-11-22T01:30:23.000000+00:00",
                   "params": {"payload": "x".repeat(PAYLOAD_BYTES)}})
        })
        .collect();
    (ids, events)
}

/// The stored event ids of the session (each once, checked), and its `event_count`.
fn stored(url: &str) -> (HashSet<String>, i64) {
    let answer = get_json(
        &format!("{url}/api/v1/sessions/{SESSION}"),
        &[("X-Agentops-Api-Key", KEY)],
    );
    assert_eq!(
        answer.status, 200,
        "reads work on a full disk: {}",
        answer.body
    );
    event_ids(&answer.body)
}

/// Writes `path` until the file system says it is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_data()) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(28) => return, // ENOSPC
            Err(err) => panic!("filling the disk: {err}"),
        }
    }
}

#[cfg(unix)]
#[test]
fn a_full_disk_answers_503_loses_nothing_acknowledged_and_recovers_by_itself() {
    if std::env::var_os("AGENTOPS_SKIP_MOUNT_TESTS").is_some() {
        eprintln!("SKIPPED: the full-disk test (AGENTOPS_SKIP_MOUNT_TESTS is set)");
        return;
    }
    let disk = Tmpfs::mount(TMPFS_SIZE).unwrap_or_else(|err| {
        panic!(
            "cannot mount a {TMPFS_SIZE} tmpfs for the full-disk test ({err}). It needs root or \
             CAP_SYS_ADMIN; where that is impossible, set AGENTOPS_SKIP_MOUNT_TESTS=1 to skip it"
        )
    });
    let data = disk.path.join("data");
    let (child, url) = spawn_server(&data, KEY);
    let server = Running(Some(child));
    let jwt = create_session(&url, KEY, json!({"session_id": SESSION}));

    let mut acknowledged: HashSet<String> = HashSet::new();
    let mut next = 0;
    for _ in 0..3 {
        let (ids, events) = batch(next);
        next += 1;
        assert_eq!(post_events(&url, KEY, &jwt, &events).status, 200);
        acknowledged.extend(ids);
    }

    let filler = disk.path.join("filler");
    fill(&filler);
    // Until the WAL has to grow, writes may still fit in its reusable part; then they fail.
    let mut refused: Vec<(Vec<String>, Vec<Value>)> = Vec::new();
    let mut refused_in_a_row = 0;
    while refused_in_a_row < 3 {
        assert!(next < 1000, "the full disk never refused a write");
        let (ids, events) = batch(next);
        next += 1;
        let answer = post_events(&url, KEY, &jwt, &events);
        match answer.status {
            200 => {
                acknowledged.extend(ids);
                refused_in_a_row = 0;
            }
            503 => {
                assert!(
                    answer.retry_after.is_some(),
                    "a 503 says when to retry: {}",
                    answer.body
                );
                let message = answer.body["error"].as_str().unwrap_or_default();
                assert!(message.contains("storage full"), "{}", answer.body);
                refused.push((ids, events));
                refused_in_a_row += 1;
            }
            other => panic!("a write on a full disk answered {other}: {}", answer.body),
        }
    }
    eprintln!(
        "full disk: {} events acknowledged, {} requests refused after {next} requests",
        acknowledged.len(),
        refused.len()
    );
    // On the full disk: the server answers, reads work, and exactly the acknowledged events
    // are stored (a refused request stored nothing).
    assert_eq!(health(&url)["status"], "ok");
    let (ids, count) = stored(&url);
    assert_eq!(ids, acknowledged);
    assert_eq!(count as usize, ids.len());

    // Space is back: the very next writes succeed, with no restart.
    std::fs::remove_file(&filler).unwrap();
    for (ids, events) in &refused {
        let answer = post_events(&url, KEY, &jwt, events);
        assert_eq!(
            answer.status, 200,
            "a retry once space is back: {}",
            answer.body
        );
        acknowledged.extend(ids.iter().cloned());
    }
    for _ in 0..3 {
        let (ids, events) = batch(next);
        next += 1;
        assert_eq!(post_events(&url, KEY, &jwt, &events).status, 200);
        acknowledged.extend(ids);
    }
    let (ids, count) = stored(&url);
    assert_eq!(ids, acknowledged, "every acknowledged event, once");
    assert_eq!(count as usize, ids.len());

    // And it all survives a restart.
    server.stop();
    let (child, url) = spawn_server(&data, KEY);
    let server = Running(Some(child));
    let (ids, count) = stored(&url);
    assert_eq!(ids, acknowledged);
    assert_eq!(count as usize, ids.len());
    server.stop();
    drop(disk);
}
