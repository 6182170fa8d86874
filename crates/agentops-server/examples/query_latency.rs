//! Latency of the query API with many stored events: seeds a data directory directly through the
//! store's batch writes (`--events`, default 1 000 000: one session of `--big` events, default
//! 10 000, and sessions of 100 events), starts the server on it and times, over HTTP, `--requests`
//! (default 50) calls each of: the session list (default, filtered, free text, sorted by cost,
//! a deep page), the 10 000-event session detail and one event.
//!
//! ```text
//! cargo run --release -p agentops-server --example query_latency -- [--events 1000000] [--big 10000]
//!     [--requests 50] [--dir DIR (kept; reused if already seeded)]
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agentops_server::store::sqlite::SqliteStore;
use agentops_server::store::{EventRecord, SessionRecord, Store, Write};
use agentops_server::{Config, Server, DATABASE_FILE};
use serde_json::json;

const KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const BIG_SESSION: &str = "b1600000-0000-4000-8000-000000000000";
const MODELS: [&str; 5] = [
    "gpt-4o",
    "gpt-4o-mini",
    "claude-3-5-sonnet-20241022",
    "o3-mini",
    "gemini-1.5-pro",
];
const TAGS: [&str; 6] = ["prod", "staging", "dev", "nightly", "eval", "demo"];
const NAMES: [&str; 8] = [
    "plan",
    "search_web",
    "calculator",
    "summarise",
    "retrieve",
    "rerank",
    "write_report",
    "review",
];

struct Args {
    events: usize,
    big: usize,
    requests: usize,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        events: 1_000_000,
        big: 10_000,
        requests: 50,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|_| format!("bad number {v:?}"));
        match flag.as_str() {
            "--events" => args.events = number(value()?)?,
            "--big" => args.big = number(value()?)?,
            "--requests" => args.requests = number(value()?)?.max(1),
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn time(base_secs: i64, offset_ms: i64) -> String {
    let t =
        chrono::DateTime::from_timestamp_millis(base_secs * 1000 + offset_ms).unwrap_or_default();
    agentops_core::timestamp::format(t)
}

/// A deterministic pseudo-random number (xorshift).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn event(
    session: &str,
    i: usize,
    start: i64,
    rng: &mut u64,
    parent: Option<String>,
) -> EventRecord {
    let r = next(rng);
    let kind = ["llms", "llms", "tools", "actions"][(r % 4) as usize];
    let error = r % 100 == 7;
    let mut e = EventRecord {
        id: format!("{session}-{i:06}"),
        session_id: session.to_owned(),
        kind: if error { "errors".into() } else { kind.into() },
        name: Some(NAMES[(r >> 8) as usize % NAMES.len()].into()),
        parent_id: parent,
        start_time: time(start, i as i64 * 10),
        end_time: Some(time(start, i as i64 * 10 + 5)),
        status: Some(if error { "error" } else { "ok" }.into()),
        agent_id: Some(format!("agent-{}", (r >> 16) % 10)),
        params: Some(json!({"temperature": 0.2, "step": i})),
        returns: Some(json!("done")),
        attributes: json!({"seed": i}),
        ..EventRecord::default()
    };
    if kind == "llms" && !error {
        e.model = Some(MODELS[(r >> 24) as usize % MODELS.len()].into());
        e.prompt = Some(
            json!([{"role": "user", "content": "Summarise the quarterly report in three bullet points."}]),
        );
        e.completion = Some(json!("- revenue up\n- costs flat\n- outlook good"));
        e.input_tokens = Some(200 + (r >> 32) as i64 % 800);
        e.output_tokens = Some(20 + (r >> 40) as i64 % 200);
        e.cost = Some(e.input_tokens.unwrap_or(0) as f64 * 2.5e-6);
    }
    e
}

fn seed(dir: &std::path::Path, events: usize, big: usize) -> Result<(), String> {
    let store = SqliteStore::open(&dir.join(DATABASE_FILE)).map_err(|e| e.to_string())?;
    if store
        .default_project()
        .map_err(|e| e.to_string())?
        .is_some()
    {
        println!("reusing the seeded data in {}", dir.display());
        return Ok(());
    }
    let project = store.create_project("default").map_err(|e| e.to_string())?;
    let started = Instant::now();
    let base = 1_795_000_000; // 2026-11-18
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let small = events.saturating_sub(big) / 100;
    let mut writes = Vec::new();
    let mut stored = 0usize;
    for s in 0..=small {
        let (id, count) = if s == 0 {
            (BIG_SESSION.to_owned(), big)
        } else {
            (format!("5e550000-0000-4000-8000-{s:012}"), 100)
        };
        let start = base + (s as i64 * 2_592_000 / small.max(1) as i64); // over 30 days
        let r = next(&mut rng);
        let ended = r % 10 != 0;
        writes.push(Write::CreateSession {
            project_id: project.clone(),
            session: SessionRecord {
                id: id.clone(),
                name: Some(format!("run {s}")),
                start_time: Some(time(start, 0)),
                end_time: ended.then(|| time(start, count as i64 * 10 + (r % 5000) as i64)),
                end_state: ended.then(|| {
                    [
                        agentops_core::EndState::Success,
                        agentops_core::EndState::Fail,
                        agentops_core::EndState::Indeterminate,
                    ][(r >> 8) as usize % 3]
                }),
                tags: Some(vec![
                    TAGS[(r >> 16) as usize % TAGS.len()].into(),
                    TAGS[(r >> 24) as usize % TAGS.len()].into(),
                ]),
                ..SessionRecord::default()
            },
        });
        let mut batch = Vec::with_capacity(count);
        for i in 0..count {
            // a root every 10 events; the others are its children
            let parent = (i % 10 != 0).then(|| format!("{id}-{:06}", i - i % 10));
            batch.push(event(&id, i, start, &mut rng, parent));
        }
        stored += batch.len();
        writes.push(Write::CreateEvents {
            project_id: project.clone(),
            session_id: id,
            events: batch,
        });
        if writes.len() >= 200 || s == small {
            let results = store.commit(&writes).map_err(|e| e.to_string())?;
            if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                return Err(e.to_string());
            }
            writes.clear();
        }
    }
    let elapsed = started.elapsed();
    println!(
        "seeded {} sessions, {stored} events in {:.1} s ({:.0} events/s)",
        small + 1,
        elapsed.as_secs_f64(),
        stored as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn measure(
    agent: &ureq::Agent,
    url: &str,
    requests: usize,
) -> Result<(Duration, Duration, usize), String> {
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests {
        let started = Instant::now();
        let mut response = agent
            .get(url)
            .header("X-Agentops-Api-Key", KEY)
            .call()
            .map_err(|e| format!("{url}: {e}"))?;
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| format!("{url}: {e}"))?;
        times.push(started.elapsed());
        bytes = body.len();
    }
    times.sort();
    let p99 = times[((times.len() * 99).div_ceil(100)).clamp(1, times.len()) - 1];
    Ok((times[times.len() / 2], p99, bytes))
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let (dir, keep) = match &args.dir {
        Some(dir) => (dir.clone(), true),
        None => (
            std::env::temp_dir().join(format!("agentops-query-latency-{}", uuid::Uuid::new_v4())),
            false,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    seed(&dir, args.events, args.big)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut config = Config::new(&dir);
    config.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.api_key = Some(KEY.into());
    let server = runtime
        .block_on(Server::start(config))
        .map_err(|e| e.to_string())?;
    let base = server.url();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .into();

    // a cursor 20 pages deep
    let mut cursor = String::new();
    for _ in 0..20 {
        let body = agent
            .get(format!("{base}/api/v1/sessions?limit=50{cursor}"))
            .header("X-Agentops-Api-Key", KEY)
            .call()
            .map_err(|e| e.to_string())?
            .body_mut()
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        let page: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if let Some(c) = page["next_cursor"].as_str() {
            cursor = format!("&cursor={c}");
        }
    }
    let cases = [
        ("list, default (50 newest)", "/api/v1/sessions".to_owned()),
        (
            "list, 20 pages deep (cursor)",
            format!("/api/v1/sessions?limit=50{cursor}"),
        ),
        (
            "list, filtered (tag+model+has_errors)",
            "/api/v1/sessions?tag=prod&model=o3-mini&has_errors=true".to_owned(),
        ),
        (
            "list, filtered (agent+end_state)",
            "/api/v1/sessions?agent=agent-3&end_state=Fail".to_owned(),
        ),
        (
            "list, free text q=report",
            "/api/v1/sessions?q=report".to_owned(),
        ),
        (
            "list, q matching nothing",
            "/api/v1/sessions?q=zzzz-nothing".to_owned(),
        ),
        ("list, sort=-cost", "/api/v1/sessions?sort=-cost".to_owned()),
        (
            "list, sort=-duration",
            "/api/v1/sessions?sort=-duration".to_owned(),
        ),
        (
            "detail, the big session",
            format!("/api/v1/sessions/{BIG_SESSION}"),
        ),
        (
            "detail, the big session, ?events=tree",
            format!("/api/v1/sessions/{BIG_SESSION}?events=tree"),
        ),
        (
            "one event in full",
            format!(
                "/api/v1/sessions/{BIG_SESSION}/events/{BIG_SESSION}-{:06}",
                args.big / 2
            ),
        ),
        ("agents", "/api/v1/agents".to_owned()),
    ];
    println!(
        "{:<40} {:>10} {:>10} {:>12}",
        "request", "median", "p99", "bytes"
    );
    for (label, path) in cases {
        let (median, p99, bytes) = measure(&agent, &format!("{base}{path}"), args.requests)?;
        println!(
            "{label:<40} {:>8.2}ms {:>8.2}ms {bytes:>12}",
            median.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
    let (median, p99, bytes) = measure(&agent, &format!("{base}/api/v1/stats"), 5)?;
    println!(
        "{:<40} {:>8.2}ms {:>8.2}ms {bytes:>12}",
        "stats, all time (5 requests)",
        median.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    // the same detail read straight from the store (no HTTP, no JSON), to split the time
    let store = SqliteStore::open(&dir.join(DATABASE_FILE)).map_err(|e| e.to_string())?;
    let project = server.project_id().to_owned();
    let mut times = Vec::new();
    for _ in 0..args.requests.min(20) {
        let started = Instant::now();
        let detail = store
            .session_detail(&project, BIG_SESSION)
            .map_err(|e| e.to_string())?
            .ok_or("the big session is missing")?;
        times.push(started.elapsed());
        std::hint::black_box(detail);
    }
    times.sort();
    println!(
        "{:<40} {:>8.2}ms",
        "detail, store read only (median)",
        times[times.len() / 2].as_secs_f64() * 1000.0
    );
    runtime
        .block_on(server.shutdown())
        .map_err(|e| e.to_string())?;
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
