//! `kill -9` during a load: after a restart every acknowledged event is stored, exactly once,
//! and client retries of what was not acknowledged complete the session without duplicates.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{spawn_server, stop_server};
use serde_json::{json, Value};

const KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const SESSION: &str = "ec025968-28a1-40dc-a031-44309d8be760";
const EVENTS_PER_BATCH: usize = 25;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn batch(thread: usize, n: usize) -> Vec<String> {
    (0..EVENTS_PER_BATCH)
        .map(|i| format!("00000000-0000-4000-8000-{:04}{:04}{:04}", thread, n, i))
        .collect()
}

/// POSTs one batch; true only when the server acknowledged it.
fn post_batch(agent: &ureq::Agent, url: &str, jwt: &str, ids: &[String]) -> bool {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "event_type": "tools", "init_timestamp": "2026-11-22T01:30:23.000000+00:00",
                   "params": {"payload": "x".repeat(20)}})
        })
        .collect();
    agent
        .post(format!("{url}/v2/create_events"))
        .header("Content-Type", "application/json")
        .header("X-Agentops-Api-Key", KEY)
        .header("Authorization", format!("Bearer {jwt}"))
        .send(json!({ "events": events }).to_string())
        .is_ok_and(|reply| reply.status().as_u16() == 200)
}

fn stored_ids(url: &str) -> (Vec<String>, i64) {
    let mut reply = agent()
        .get(format!("{url}/api/v1/sessions/{SESSION}"))
        .header("X-Agentops-Api-Key", KEY)
        .call()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let body = reply
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap();
    let detail: Value = serde_json::from_str(&body).unwrap();
    let ids = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, detail["event_count"].as_i64().unwrap())
}

#[cfg(unix)]
#[test]
fn every_acknowledged_event_survives_kill_9_during_a_load_exactly_once() {
    let dir = std::env::temp_dir().join(format!("agentops-kill9-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut server, url) = spawn_server(&dir, KEY);
    let mut created = agent()
        .post(format!("{url}/v2/create_session"))
        .header("Content-Type", "application/json")
        .header("X-Agentops-Api-Key", KEY)
        .send(json!({"session": {"session_id": SESSION}}).to_string())
        .unwrap();
    let created: Value =
        serde_json::from_str(&created.body_mut().read_to_string().unwrap()).unwrap();
    let jwt = created["jwt"].as_str().unwrap().to_owned();

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let unacknowledged = Arc::new(Mutex::new(Vec::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (url, jwt) = (url.clone(), jwt.clone());
            let (acknowledged, unacknowledged, killed) =
                (acknowledged.clone(), unacknowledged.clone(), killed.clone());
            thread::spawn(move || {
                let agent = agent();
                for n in 0..10_000 {
                    let ids = batch(t, n);
                    if post_batch(&agent, &url, &jwt, &ids) {
                        acknowledged.lock().unwrap().extend(ids);
                    } else {
                        unacknowledged.lock().unwrap().push(ids);
                        if killed.load(Ordering::SeqCst) {
                            return;
                        }
                    }
                }
            })
        })
        .collect();

    // Let the load run, then kill the server mid-flight, with no chance to flush anything.
    thread::sleep(Duration::from_millis(1500));
    killed.store(true, Ordering::SeqCst);
    Command::new("kill")
        .args(["-KILL", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let unacknowledged = unacknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 10 * EVENTS_PER_BATCH,
        "the load ran: {} acknowledged",
        acknowledged.len()
    );
    assert!(
        !unacknowledged.is_empty(),
        "the kill interrupted requests in flight"
    );

    let (server, url) = spawn_server(&dir, KEY);
    let (ids, count) = stored_ids(&url);
    let stored: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(stored.len(), ids.len(), "no event stored twice");
    assert_eq!(count as usize, ids.len());
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    // A batch in flight at the kill is stored whole or not at all.
    for ids in &unacknowledged {
        let present = ids.iter().filter(|id| stored.contains(*id)).count();
        assert!(
            present == 0 || present == ids.len(),
            "a batch was half-written: {present} of {}",
            ids.len()
        );
    }

    // The clients retry what was not acknowledged: the session ends up with every event once.
    let agent = agent();
    for ids in &unacknowledged {
        assert!(post_batch(&agent, &url, &jwt, ids));
    }
    let (ids, count) = stored_ids(&url);
    let expected = acknowledged.len() + unacknowledged.iter().map(Vec::len).sum::<usize>();
    assert_eq!(ids.len(), expected);
    assert_eq!(count as usize, expected);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), expected);

    stop_server(server);
    std::fs::remove_dir_all(dir).ok();
}
