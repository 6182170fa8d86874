//! Latency of the query API with many stored events: seeds a data directory directly through the
//! store's batch writes, starts the server on it and times, over HTTP, `--requests` (default 50)
//! calls each of: the session list (default, every filter, every sort, a deep page), a
//! `--big`-event session's detail (in full, as a tree without payloads, and an unchanged live
//! refresh through `?since=`), one event, the agents and statistics.
//!
//! Two payload profiles (`--profile`):
//! - `small` (the default, the 1M figures of `docs/benchmarks.md`): one session of `--big`
//!   events (default 10 000) and sessions of 100 events with payloads of a few dozen bytes;
//! - `genai`: sessions of `--per-session MIN-MAX` events (default 1000-10000, the first one of
//!   `--big`), as a GenAI agent records them: per step an action with an LLM call (a ~1.5 KB
//!   prompt of chat messages, a ~0.3 KB completion, tokens, cost) and tool calls (params and
//!   returns of a few hundred bytes), some failing; packed with the store's trained payload
//!   dictionary, as the writer does ([`Write::pack`]).
//!
//! ```text
//! cargo run --release -p agentops-server --example query_latency -- [--events 1000000]
//!     [--profile small|genai] [--per-session 1000-10000] [--big 10000] [--requests 50]
//!     [--dir DIR (kept; reused if already seeded)]
//!     [--database-url postgres://… (the PostgreSQL store instead; reused if already seeded)]
//! ```

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentops_server::store::postgres::PgStore;
use agentops_server::store::sqlite::SqliteStore;
use agentops_server::store::{EventRecord, SessionRecord, Store, Write};
use agentops_server::{Config, Server, DATABASE_FILE};
use serde_json::{json, Value};

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
/// 2026-11-18T00:00:00Z: where the seeded sessions start (spread over the 30 days after it).
const BASE_SECS: i64 = 1_795_046_400;
const DAY_SECS: i64 = 86_400;

/// How the seeded events look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// Small payloads, 100 events a session besides the big one.
    Small,
    /// GenAI agent steps with kilobyte prompts.
    GenAi,
}

struct Args {
    events: usize,
    big: usize,
    requests: usize,
    dir: Option<PathBuf>,
    profile: Profile,
    per_session: (usize, usize),
    database_url: Option<String>,
}

/// The store the run seeds and reads: `--database-url`'s, else the data directory's.
fn open_store(dir: &std::path::Path, args: &Args) -> Result<Box<dyn Store>, String> {
    match &args.database_url {
        Some(url) => Ok(Box::new(PgStore::connect(url).map_err(|e| e.to_string())?)),
        None => Ok(Box::new(
            SqliteStore::open(&dir.join(DATABASE_FILE)).map_err(|e| e.to_string())?,
        )),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        events: 1_000_000,
        big: 10_000,
        requests: 50,
        dir: None,
        profile: Profile::Small,
        per_session: (1_000, 10_000),
        database_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: &str| v.parse::<usize>().map_err(|_| format!("bad number {v:?}"));
        match flag.as_str() {
            "--events" => args.events = number(&value()?)?,
            "--big" => args.big = number(&value()?)?,
            "--requests" => args.requests = number(&value()?)?.max(1),
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--database-url" => args.database_url = Some(value()?),
            "--profile" => {
                args.profile = match value()?.as_str() {
                    "small" => Profile::Small,
                    "genai" => Profile::GenAi,
                    other => return Err(format!("--profile: small or genai, not {other:?}")),
                }
            }
            "--per-session" => {
                let v = value()?;
                let (min, max) = v
                    .split_once('-')
                    .ok_or(format!("--per-session: MIN-MAX, not {v:?}"))?;
                let (min, max) = (number(min)?.max(1), number(max)?);
                if max < min {
                    return Err(format!("--per-session: {max} is less than {min}"));
                }
                args.per_session = (min, max);
            }
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

/// An event of the `small` profile.
fn small_event(
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

/// Words that GenAI payloads are made of (prose varies; its vocabulary repeats).
const WORDS: [&str; 64] = [
    "the",
    "report",
    "revenue",
    "quarter",
    "growth",
    "customer",
    "analysis",
    "market",
    "costs",
    "forecast",
    "summary",
    "data",
    "table",
    "result",
    "search",
    "query",
    "document",
    "section",
    "page",
    "source",
    "because",
    "however",
    "which",
    "should",
    "would",
    "could",
    "increase",
    "decrease",
    "stable",
    "risk",
    "plan",
    "step",
    "tool",
    "answer",
    "question",
    "user",
    "agent",
    "model",
    "context",
    "retrieved",
    "relevant",
    "score",
    "ranked",
    "first",
    "second",
    "third",
    "europe",
    "america",
    "asia",
    "2025",
    "2026",
    "percent",
    "million",
    "billion",
    "team",
    "product",
    "launch",
    "pricing",
    "margin",
    "supply",
    "demand",
    "weather",
    "paris",
    "berlin",
];

const SYSTEM_PROMPTS: [&str; 4] = [
    "You are a careful research assistant. Answer with facts from the retrieved documents only, cite \
     the source of every claim as [n], and say so when the documents do not contain the answer. Keep \
     answers under 200 words unless the user asks for more detail. Use the tools when a fact is \
     missing: search_web for recent events, retrieve for the internal knowledge base, calculator \
     for arithmetic. Never invent numbers.",
    "You are an analyst agent. Break the task into steps, call one tool per step, and check each \
     result before using it. When you have enough information, write the final report as markdown \
     with a summary, the key figures in a table, and the risks. Prefer primary sources; mention \
     the date of every figure you quote.",
    "You are a support agent for an e-commerce platform. Be concise and friendly. Look up the order \
     with the tools before answering anything about it. Escalate to a human when the customer asks \
     for a refund above 500 EUR or is unhappy after two answers. Never share another customer's data.",
    "You are a coding assistant. Explain your reasoning briefly, then give the code. Run the tests \
     with the run_tests tool before you answer, and fix what fails. Follow the style of the \
     repository; do not add dependencies without saying why.",
];

/// About `bytes` bytes of prose from `WORDS`.
fn prose(rng: &mut u64, bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 16);
    while text.len() < bytes {
        let r = next(rng);
        if !text.is_empty() {
            text.push(if r % 13 == 0 { '.' } else { ' ' });
            if r % 13 == 0 {
                text.push(' ');
            }
        }
        text.push_str(WORDS[(r >> 8) as usize % WORDS.len()]);
    }
    text
}

/// The events of one `genai` session of `count` events: steps of an action holding an LLM call
/// and tool calls (a root every 10 events).
fn genai_events(session: &str, count: usize, start: i64, rng: &mut u64) -> Vec<EventRecord> {
    let agent = format!("agent-{}", next(rng) % 10);
    let system = SYSTEM_PROMPTS[(next(rng) % 4) as usize];
    let mut events = Vec::with_capacity(count);
    let mut root = String::new();
    for i in 0..count {
        let r = next(rng);
        let at = i as i64 * 200;
        let id = format!("{session}-{i:06}");
        let mut e = EventRecord {
            id: id.clone(),
            session_id: session.to_owned(),
            start_time: time(start, at),
            end_time: Some(time(start, at + 150 + (r % 50) as i64)),
            status: Some("ok".into()),
            agent_id: Some(agent.clone()),
            attributes: json!({"gen_ai.system": "openai", "service.name": "research-agent"}),
            ..EventRecord::default()
        };
        if i % 10 == 0 {
            e.kind = "actions".into();
            e.name = Some(NAMES[(r >> 8) as usize % NAMES.len()].into());
            e.params = Some(json!({"step": i / 10, "goal": prose(rng, 80)}));
            root = id;
        } else {
            e.parent_id = Some(root.clone());
            if i % 10 == 1 || i % 10 == 5 {
                let model = MODELS[(r >> 24) as usize % MODELS.len()];
                e.kind = "llms".into();
                e.name = Some(format!("chat {model}"));
                e.model = Some(model.into());
                e.provider = Some("openai".into());
                e.prompt = Some(json!([
                    {"role": "system", "content": system},
                    {"role": "user", "content": prose(rng, 700)},
                    {"role": "assistant", "content": prose(rng, 120)},
                    {"role": "user", "content": prose(rng, 200)},
                ]));
                e.completion = Some(json!({"role": "assistant", "content": prose(rng, 300)}));
                e.input_tokens = Some(350 + (r >> 32) as i64 % 200);
                e.output_tokens = Some(60 + (r >> 40) as i64 % 40);
                e.cost = Some(
                    e.input_tokens.unwrap_or(0) as f64 * 2.5e-6
                        + e.output_tokens.unwrap_or(0) as f64 * 1e-5,
                );
                e.attributes = json!({
                    "gen_ai.system": "openai", "gen_ai.request.temperature": 0.2,
                    "gen_ai.response.finish_reasons": ["stop"], "service.name": "research-agent"
                });
            } else {
                let tool =
                    ["search_web", "retrieve", "calculator", "rerank"][(r >> 8) as usize % 4];
                e.kind = "tools".into();
                e.name = Some(tool.into());
                e.params = Some(json!({"query": prose(rng, 60), "top_k": 5}));
                e.returns = Some(json!({"results": [prose(rng, 120), prose(rng, 120)]}));
            }
        }
        if r % 200 == 3 {
            e.status = Some("error".into());
            e.status_message = Some(format!("{} failed: timeout after 30 s", e.kind));
        }
        events.push(e);
    }
    events
}

/// One session's writes, its payloads packed as the writer packs them.
fn session_writes(
    project: &str,
    s: usize,
    count: usize,
    start: i64,
    profile: Profile,
    rng: &mut u64,
    dictionary: Option<agentops_server::store::payload::DictionaryId>,
) -> Vec<Write> {
    let id = if s == 0 {
        BIG_SESSION.to_owned()
    } else {
        format!("5e550000-0000-4000-8000-{s:012}")
    };
    let r = next(rng);
    let ended = r % 10 != 0;
    let step_ms = if profile == Profile::Small { 10 } else { 200 };
    let session = Write::CreateSession {
        project_id: project.to_owned(),
        session: SessionRecord {
            id: id.clone(),
            name: Some(format!("run {s}")),
            start_time: Some(time(start, 0)),
            end_time: ended.then(|| time(start, count as i64 * step_ms + (r % 5000) as i64)),
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
    };
    let events = match profile {
        Profile::Small => (0..count)
            .map(|i| {
                // a root every 10 events; the others are its children
                let parent = (i % 10 != 0).then(|| format!("{id}-{:06}", i - i % 10));
                small_event(&id, i, start, rng, parent)
            })
            .collect(),
        Profile::GenAi => genai_events(&id, count, start, rng),
    };
    let mut events = Write::CreateEvents {
        project_id: project.to_owned(),
        session_id: id,
        events,
    };
    events.pack(dictionary);
    vec![session, events]
}

fn seed(dir: &std::path::Path, args: &Args) -> Result<(), String> {
    let store = open_store(dir, args)?;
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
    // The sessions and their sizes, decided up front so that they spread over 30 days.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut sizes = vec![args.big.min(args.events)];
    let mut planned = sizes[0];
    while planned < args.events {
        let size = match args.profile {
            Profile::Small => 100,
            Profile::GenAi => {
                let (min, max) = args.per_session;
                min + (next(&mut rng) as usize) % (max - min + 1)
            }
        };
        let size = size.min(args.events - planned);
        sizes.push(size);
        planned += size;
    }
    let sessions = sizes.len();
    println!(
        "seeding {sessions} sessions, {planned} events ({:?} profile) into {}",
        args.profile,
        dir.display()
    );
    // The first sessions are packed without a dictionary; once enough payloads are stored the
    // store trains one (as the server does) and the rest are packed with it.
    let train_after = sessions.min(if args.profile == Profile::Small {
        200
    } else {
        20
    });
    let (sender, batches) = mpsc::sync_channel::<Vec<Write>>(4);
    let mut stored = 0usize;
    let mut last_report = Instant::now();
    let mut committed = 0usize;
    let mut s = 0usize;
    while s < sessions {
        let phase_end = if s < train_after {
            train_after
        } else {
            sessions
        };
        let dictionary = store.payload_dictionary();
        // A thread builds and packs the writes of this phase while this one commits them.
        let (profile, project_id) = (args.profile, project.clone());
        let plan: Vec<(usize, usize)> = (s..phase_end).map(|k| (k, sizes[k])).collect();
        let sender = sender.clone();
        let mut phase_rng = rng ^ (s as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
        let producer = std::thread::spawn(move || {
            let mut batch = Vec::new();
            let mut rows = 0;
            for (k, count) in plan {
                let start = BASE_SECS + (k as i64 * 30 * DAY_SECS / sessions as i64);
                batch.extend(session_writes(
                    &project_id,
                    k,
                    count,
                    start,
                    profile,
                    &mut phase_rng,
                    dictionary,
                ));
                rows += count;
                if rows >= 20_000 {
                    if sender.send(std::mem::take(&mut batch)).is_err() {
                        return;
                    }
                    rows = 0;
                }
            }
            if !batch.is_empty() {
                sender.send(batch).ok();
            }
        });
        let mut received = 0;
        while received < phase_end - s {
            let writes = batches
                .recv()
                .map_err(|_| "the seeding thread stopped".to_owned())?;
            let results = store.commit(&writes).map_err(|e| e.to_string())?;
            if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                return Err(e.to_string());
            }
            for w in &writes {
                match w {
                    Write::CreateEvents { events, .. } => stored += events.len(),
                    Write::CreateSession { .. } => received += 1,
                    _ => {}
                }
            }
            committed += 1;
            if last_report.elapsed() > Duration::from_secs(10) {
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "  {stored} events, {received} of {} sessions of this phase, {:.0} s ({:.0} events/s)",
                    phase_end - s,
                    secs,
                    stored as f64 / secs
                );
                last_report = Instant::now();
            }
        }
        producer
            .join()
            .map_err(|_| "the seeding thread panicked".to_owned())?;
        rng = next(&mut rng);
        if s < train_after {
            let trained = store
                .train_payload_dictionary()
                .map_err(|e| e.to_string())?;
            println!("  payload dictionary trained: {trained}");
        }
        s = phase_end;
    }
    let elapsed = started.elapsed();
    let bytes = std::fs::metadata(dir.join(DATABASE_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "seeded {sessions} sessions, {stored} events in {:.1} s ({:.0} events/s, {committed} commits); database {:.2} GB",
        elapsed.as_secs_f64(),
        stored as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e9
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

/// `GET url` as JSON.
fn get_json(agent: &ureq::Agent, url: &str) -> Result<Value, String> {
    let body = agent
        .get(url)
        .header("X-Agentops-Api-Key", KEY)
        .call()
        .map_err(|e| format!("{url}: {e}"))?
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

fn print_row(label: &str, median: Duration, p99: Duration, bytes: usize) {
    println!(
        "{label:<52} {:>8.2}ms {:>8.2}ms {bytes:>12}",
        median.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
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
    seed(&dir, &args)?;
    if std::env::var_os("QUERY_LATENCY_SEED_ONLY").is_some() {
        return Ok(());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut config = Config::new(&dir);
    config.database_url = args.database_url.clone();
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
        let page = get_json(&agent, &format!("{base}/api/v1/sessions?limit=50{cursor}"))?;
        if let Some(c) = page["next_cursor"].as_str() {
            cursor = format!("&cursor={c}");
        }
    }
    // the live view's cursor of the big session (nothing is added afterwards: an unchanged poll)
    let tree = get_json(
        &agent,
        &format!("{base}/api/v1/sessions/{BIG_SESSION}?events=tree"),
    )?;
    let since = tree["cursor"].as_str().unwrap_or_default().to_owned();
    let day = |d: i64| time(BASE_SECS + d * DAY_SECS, 0).replace("+00:00", "Z");
    let noon = |d: i64| time(BASE_SECS + d * DAY_SECS + DAY_SECS / 2, 0).replace("+00:00", "Z");
    let half_past_noon =
        |d: i64| time(BASE_SECS + d * DAY_SECS + DAY_SECS / 2 + 1_800, 0).replace("+00:00", "Z");
    let mut cases: Vec<(String, String)> = vec![
        (
            "list, default (50 newest)".into(),
            "/api/v1/sessions".into(),
        ),
        (
            "list, 20 pages deep (cursor)".into(),
            format!("/api/v1/sessions?limit=50{cursor}"),
        ),
        (
            "list, from+to (7 days)".into(),
            format!("/api/v1/sessions?from={}&to={}", day(10), day(17)),
        ),
        ("list, tag=prod".into(), "/api/v1/sessions?tag=prod".into()),
        (
            "list, end_state=Fail".into(),
            "/api/v1/sessions?end_state=Fail".into(),
        ),
        (
            "list, end_state=running".into(),
            "/api/v1/sessions?end_state=running".into(),
        ),
        (
            "list, agent=agent-3".into(),
            "/api/v1/sessions?agent=agent-3".into(),
        ),
        (
            "list, model=o3-mini".into(),
            "/api/v1/sessions?model=o3-mini".into(),
        ),
        (
            "list, has_errors=true".into(),
            "/api/v1/sessions?has_errors=true".into(),
        ),
        (
            "list, has_errors=false".into(),
            "/api/v1/sessions?has_errors=false".into(),
        ),
        (
            "list, tag+model+has_errors".into(),
            "/api/v1/sessions?tag=prod&model=o3-mini&has_errors=true".into(),
        ),
        (
            "list, agent+end_state".into(),
            "/api/v1/sessions?agent=agent-3&end_state=Fail".into(),
        ),
        (
            "list, q=report (an event name)".into(),
            "/api/v1/sessions?q=report".into(),
        ),
        (
            "list, q matching nothing".into(),
            "/api/v1/sessions?q=zzzz-nothing".into(),
        ),
    ];
    for sort in [
        "start_time",
        "cost",
        "-cost",
        "duration",
        "-duration",
        "events",
        "-events",
    ] {
        cases.push((
            format!("list, sort={sort}"),
            format!("/api/v1/sessions?sort={sort}"),
        ));
    }
    cases.extend([
        (
            format!("detail, {}-event session, in full", args.big),
            format!("/api/v1/sessions/{BIG_SESSION}"),
        ),
        (
            format!("detail, {}-event session, ?events=tree", args.big),
            format!("/api/v1/sessions/{BIG_SESSION}?events=tree"),
        ),
        (
            "detail, same, ?events=tree&since= (unchanged)".into(),
            format!("/api/v1/sessions/{BIG_SESSION}?events=tree&since={since}"),
        ),
        (
            "one event in full".into(),
            format!(
                "/api/v1/sessions/{BIG_SESSION}/events/{BIG_SESSION}-{:06}",
                args.big / 2 + 1
            ),
        ),
        ("agents".into(), "/api/v1/agents".into()),
        (
            "stats, 30 days (whole UTC days)".into(),
            format!("/api/v1/stats?from={}&to={}", day(0), day(30)),
        ),
        (
            "stats, 30 days from 12:00 to 12:00 UTC".into(),
            format!("/api/v1/stats?from={}&to={}", noon(0), noon(30)),
        ),
        (
            "stats, 30 days from 12:30 to 12:30 UTC".into(),
            format!(
                "/api/v1/stats?from={}&to={}",
                half_past_noon(0),
                half_past_noon(30)
            ),
        ),
        ("stats, all time".into(), "/api/v1/stats".into()),
    ]);
    println!(
        "{:<52} {:>10} {:>10} {:>12}",
        "request", "median", "p99", "bytes"
    );
    for (label, path) in &cases {
        let (median, p99, bytes) = measure(&agent, &format!("{base}{path}"), args.requests)?;
        print_row(label, median, p99, bytes);
    }
    // the same detail read straight from the store (no HTTP, no JSON), to split the time
    let store = open_store(&dir, &args)?;
    let project = server.project_id().to_owned();
    for (label, payloads) in [
        ("detail, store read only, in full (median)", true),
        ("detail, store read only, no payloads (median)", false),
    ] {
        let mut times = Vec::new();
        for _ in 0..args.requests.min(20) {
            let started = Instant::now();
            let detail = if payloads {
                store.session_detail(&project, BIG_SESSION)
            } else {
                store.session_detail_without_payloads(&project, BIG_SESSION)
            }
            .map_err(|e| e.to_string())?
            .ok_or("the big session is missing")?;
            times.push(started.elapsed());
            std::hint::black_box(detail);
        }
        times.sort();
        println!(
            "{label:<52} {:>8.2}ms",
            times[times.len() / 2].as_secs_f64() * 1000.0
        );
    }
    runtime
        .block_on(server.shutdown())
        .map_err(|e| e.to_string())?;
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
