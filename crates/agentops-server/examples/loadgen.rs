//! Load generator: OTLP/HTTP protobuf spans (and optionally v2 `create_events` batches) against
//! a server, closed loop, reporting what was acknowledged (so committed: this server answers
//! 2xx only after the commit), latency percentiles, the server's CPU and RSS, and the bytes the
//! store grew by per span.
//!
//! ```text
//! # against a running server (the figures of docs/benchmarks.md)
//! cargo run --release -p agentops-server --example loadgen -- \
//!     --url http://127.0.0.1:4318 --api-key KEY --server-pid PID --data-dir DIR
//! # in-process server on a temporary data directory
//! cargo run --release -p agentops-server --example loadgen -- --seconds 10
//! # two replicas on one PostgreSQL database: the clients take the URLs in turn
//! cargo run --release -p agentops-server --example loadgen -- \
//!     --url http://127.0.0.1:4401 --url http://127.0.0.1:4402 --server-pid PID1 --server-pid PID2 \
//!     --database-url postgres://postgres@127.0.0.1:5432/agentops
//! ```
//!
//! Two payload profiles (`--profile`):
//! - `genai` (default): what an instrumented agent sends. Traces of 20 spans: a session span, 2
//!   agent spans, 9 `chat` spans carrying `gen_ai.input.messages` (about 1.5 KB of JSON) and
//!   `gen_ai.output.messages` (about 0.3 KB), 8 `execute_tool` spans; 5 % of the spans have an
//!   ERROR status and an `exception` event. Every request has fresh trace and span ids; 500
//!   spans make about 750 KB of protobuf.
//! - `small`: one trace of short `openai.chat.completion` spans per request (the profile of the
//!   project's first figures).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use serde_json::json;

const DEFAULT_KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// Closed-loop OTLP load against an AgentOps server.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
struct Args {
    /// The server; without it, one is started in-process on a temporary data directory.
    /// Repeated (replicas of one store): client `i` sends to the `i mod n`-th.
    #[arg(long)]
    url: Vec<String>,
    /// The project's API key.
    #[arg(long, default_value = DEFAULT_KEY)]
    api_key: String,
    /// How long the load runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent OTLP clients, each sending its next request once the last is answered.
    #[arg(long, default_value_t = 4)]
    otlp_clients: usize,
    /// Spans per OTLP request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    spans: u64,
    /// What the spans look like.
    #[arg(long, value_enum, default_value_t = Profile::Genai)]
    profile: Profile,
    /// Concurrent v2 clients (25 small events per `create_events`).
    #[arg(long, default_value_t = 0)]
    v2_clients: usize,
    /// The server's process id (for an external server): its CPU time and RSS are reported.
    /// Repeated for replicas: their sums.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// The server's data directory (for an external server): the store's growth is reported.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's PostgreSQL database (for servers run with --database-url): its growth
    /// (`pg_database_size`) is reported.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Profile {
    /// Realistic GenAI agent traces with prompts and completions.
    Genai,
    /// Short chat spans in one trace.
    Small,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut in_process = None;
    let (urls, data_dir, server_pids) = if args.url.is_empty() {
        let dir = std::env::temp_dir().join(format!("agentops-loadgen-{}", uuid::Uuid::new_v4()));
        let mut config = agentops_server::Config::new(&dir);
        config.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        config.api_key = Some(args.api_key.clone());
        let server = runtime
            .block_on(agentops_server::Server::start(config))
            .map_err(|e| format!("server start: {e}"))?;
        let url = server.url();
        in_process = Some((server, dir.clone()));
        (vec![url], Some(dir), vec![std::process::id()])
    } else {
        let urls = args.url.iter().map(|u| u.trim_end_matches('/').to_owned());
        (
            urls.collect(),
            args.data_dir.clone(),
            args.server_pid.clone(),
        )
    };
    let url = urls[0].clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let bearer = project_token(&agent, &url, &args.api_key)?;

    let stored_before = data_dir.as_deref().map(dir_bytes).unwrap_or(0);
    let database_before = args
        .database_url
        .as_deref()
        .map(database_bytes)
        .transpose()?;
    let cpu_before = cpu_of(&server_pids);
    let counts = Counts::default();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..args.otlp_clients {
            let url = &urls[client % urls.len()];
            let (agent, bearer, counts) = (&agent, &bearer, &counts);
            let (spans, profile) = (args.spans as usize, args.profile);
            scope.spawn(move || {
                // Seeded from the clock: every run and client sends ids of its own.
                let mut rng = Rng((now_nanos()
                    ^ (client as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    | 1);
                while !counts.stop.load(Ordering::Relaxed) {
                    let body = match profile {
                        Profile::Genai => genai_request(spans, &mut rng),
                        Profile::Small => small_request(spans),
                    };
                    counts
                        .bytes_sent
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    let t = Instant::now();
                    let ok = agent
                        .post(format!("{url}/v1/traces"))
                        .header("Content-Type", "application/x-protobuf")
                        .header("Authorization", bearer)
                        .send(&body[..])
                        .is_ok_and(|r| r.status().is_success());
                    counts.answered(&counts.otlp, t.elapsed(), ok, spans);
                }
            });
        }
        for _ in 0..args.v2_clients {
            let (agent, url, key, counts) = (&agent, &url, &args.api_key, &counts);
            scope.spawn(move || {
                if let Err(e) = v2_client(agent, url, key, counts) {
                    eprintln!("v2 client: {e}");
                }
            });
        }
        std::thread::sleep(Duration::from_secs(args.seconds));
        counts.stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();

    let spans = counts.otlp.units.load(Ordering::Relaxed);
    let requests = counts.otlp.latencies.lock().map(|l| l.len()).unwrap_or(0);
    println!(
        "{elapsed:.1} s, profile {:?}, {} OTLP clients x {} spans/request ({:.0} KB/request), {} v2 clients",
        args.profile,
        args.otlp_clients,
        args.spans,
        counts.bytes_sent.load(Ordering::Relaxed) as f64 / requests.max(1) as f64 / 1024.0,
        args.v2_clients
    );
    println!(
        "OTLP spans committed: {spans} ({:.0} spans/s)",
        spans as f64 / elapsed
    );
    counts.otlp.report("OTLP /v1/traces");
    if args.v2_clients > 0 {
        let events = counts.v2.units.load(Ordering::Relaxed);
        println!(
            "v2 events committed: {events} ({:.0} events/s)",
            events as f64 / elapsed
        );
        counts.v2.report("v2 /v2/create_events");
    }
    println!(
        "failed requests: {}",
        counts.otlp.failed.load(Ordering::Relaxed) + counts.v2.failed.load(Ordering::Relaxed)
    );
    let whose = if in_process.is_some() {
        " (server and load generator in one process)"
    } else {
        ""
    };
    let servers = if server_pids.len() > 1 {
        format!(" ({} servers together)", server_pids.len())
    } else {
        whose.to_string()
    };
    if let (Some(before), Some(after)) = (cpu_before, cpu_of(&server_pids)) {
        println!(
            "server CPU: {:.2} cores{servers}",
            (after - before) / elapsed
        );
    }
    let memory = server_pids
        .iter()
        .try_fold((0.0, 0.0), |(rss, peak), &pid| {
            rss_mb(pid).map(|(r, p)| (rss + r, peak + p))
        });
    if let Some((rss, peak)) = memory.filter(|_| !server_pids.is_empty()) {
        println!("server RSS: {rss:.0} MB, peak {peak:.0} MB{servers}");
    }
    if let Some(dir) = data_dir.as_deref() {
        let grown = dir_bytes(dir).saturating_sub(stored_before);
        let units = spans + counts.v2.units.load(Ordering::Relaxed);
        println!(
            "store grew {:.1} MB: {:.0} bytes per span (database, WAL and all, in {})",
            grown as f64 / 1e6,
            grown as f64 / units.max(1) as f64,
            dir.display()
        );
    }
    if let (Some(url), Some(before)) = (args.database_url.as_deref(), database_before) {
        let grown = database_bytes(url)?.saturating_sub(before);
        let units = spans + counts.v2.units.load(Ordering::Relaxed);
        println!(
            "PostgreSQL database grew {:.1} MB: {:.0} bytes per span (tables, indexes and TOAST; not the WAL)",
            grown as f64 / 1e6,
            grown as f64 / units.max(1) as f64,
        );
    }
    read_side(&agent, &url, &args.api_key);
    if let Some((server, dir)) = in_process {
        let _ = runtime.block_on(server.shutdown());
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// The CPU seconds the processes `pids` have used, together.
fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}

/// `pg_database_size` of the database at `url`.
fn database_bytes(url: &str) -> Result<u64, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let driver = tokio::spawn(connection);
        let row = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .map_err(|e| format!("pg_database_size: {e}"))?;
        drop(client);
        let _ = driver.await;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    })
}

/// A project token from `/v3/auth/token`, as `Authorization` header value.
fn project_token(agent: &ureq::Agent, url: &str, api_key: &str) -> Result<String, String> {
    let text = agent
        .post(format!("{url}/v3/auth/token"))
        .header("Content-Type", "application/json")
        .send(json!({ "api_key": api_key }).to_string())
        .map_err(|e| format!("{url}/v3/auth/token: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}/v3/auth/token: {e}"))?;
    let token: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| format!("/v3/auth/token answered {text}"))?;
    token["token"]
        .as_str()
        .map(|t| format!("Bearer {t}"))
        .ok_or_else(|| format!("/v3/auth/token answered {text}"))
}

/// What the clients did, shared between their threads.
#[derive(Default)]
struct Counts {
    stop: AtomicBool,
    bytes_sent: AtomicU64,
    otlp: Route,
    v2: Route,
}

/// The answers of one kind of request.
#[derive(Default)]
struct Route {
    /// Spans or events acknowledged.
    units: AtomicU64,
    failed: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

impl Counts {
    fn answered(&self, route: &Route, took: Duration, ok: bool, units: usize) {
        if ok {
            route.units.fetch_add(units as u64, Ordering::Relaxed);
        } else {
            route.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut latencies) = route.latencies.lock() {
            latencies.push(took);
        }
    }
}

impl Route {
    fn report(&self, name: &str) {
        let mut l = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        l.sort();
        let ms = |p: f64| percentile(&l, p).as_secs_f64() * 1e3;
        println!(
            "{name}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.len(),
            ms(0.50),
            ms(0.99),
            ms(1.0)
        );
    }
}

/// One v2 client: a session, then batches of 25 small LLM events until told to stop.
fn v2_client(agent: &ureq::Agent, url: &str, key: &str, counts: &Counts) -> Result<(), String> {
    let session_id = uuid::Uuid::new_v4().to_string();
    let now = agentops_core::timestamp::now();
    let text = agent
        .post(format!("{url}/v2/create_session"))
        .header("Content-Type", "application/json")
        .header("X-Agentops-Api-Key", key)
        .send(json!({"session": {"session_id": session_id, "init_timestamp": now}}).to_string())
        .map_err(|e| format!("create_session: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("create_session: {e}"))?;
    let jwt: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| format!("create_session answered {text}"))?;
    let auth = format!("Bearer {}", jwt["jwt"].as_str().unwrap_or_default());
    while !counts.stop.load(Ordering::Relaxed) {
        let events: Vec<_> = (0..25)
            .map(|_| {
                json!({"id": uuid::Uuid::new_v4().to_string(), "event_type": "llms",
                    "init_timestamp": now, "end_timestamp": now, "session_id": session_id,
                    "model": "gpt-4o", "prompt": "hi", "completion": "hello",
                    "prompt_tokens": 10, "completion_tokens": 2})
            })
            .collect();
        let t = Instant::now();
        let ok = agent
            .post(format!("{url}/v2/create_events"))
            .header("Content-Type", "application/json")
            .header("X-Agentops-Api-Key", key)
            .header("Authorization", &auth)
            .send(json!({ "events": events }).to_string())
            .is_ok_and(|r| r.status().is_success());
        counts.answered(&counts.v2, t.elapsed(), ok, 25);
    }
    Ok(())
}

/// After the load: the session list and the largest listed session's detail, timed once.
fn read_side(agent: &ureq::Agent, url: &str, api_key: &str) {
    let timed_get = |path: &str| {
        let t = Instant::now();
        let text = agent
            .get(format!("{url}{path}"))
            .header("X-Agentops-Api-Key", api_key)
            .call()
            .ok()
            .and_then(|mut r| {
                r.body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_string()
                    .ok()
            })
            .unwrap_or_default();
        (
            t.elapsed(),
            serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
        )
    };
    let (list_time, list) = timed_get("/api/v1/sessions?limit=50");
    println!(
        "GET /api/v1/sessions?limit=50: {:.1} ms",
        list_time.as_secs_f64() * 1e3
    );
    let biggest = list["sessions"].as_array().and_then(|s| {
        s.iter()
            .max_by_key(|s| s["event_count"].as_i64().unwrap_or(0))
    });
    if let Some(session) = biggest {
        let id = session["id"].as_str().unwrap_or_default();
        let (detail_time, _) = timed_get(&format!("/api/v1/sessions/{id}"));
        println!(
            "GET /api/v1/sessions/{{id}} ({} events): {:.1} ms",
            session["event_count"],
            detail_time.as_secs_f64() * 1e3
        );
    }
}

// --- payloads -------------------------------------------------------------------------------

/// The words of [`Rng::prose`]: 277 common English words and some of travel, so that
/// payloads compress about as well as real prompts do, not as well as a tiny vocabulary would.
static WORDS: std::sync::LazyLock<Vec<&str>> = std::sync::LazyLock::new(|| {
    "the of and to in a is that for it as was with be by on not he this are or his from at which \
but have an they you were her she there one all we their been has when who will more no if \
out so said what up its about into than them can only other new some could time these two \
may then do first any my now such like our over man me even most made after also did many \
before must through back years where much your way well down should because each just those \
people how too little state good very make world still own see men work long get here \
between both life being under never day same another know while last might us great old year \
off come since against go came right used take three states himself few house use during \
without again place around however home small found thought went say part once general high \
upon school every does got united left number course war until always away something fact \
though water less public put think almost hand enough far took head yet government system \
better set told nothing night end why called didn find going look asked later knew point \
next program city business give group toward young days let room president side social given \
present several order national possible rather second face per among form important often \
things looking large members family need plan flight hotel budget price booking ticket route \
station airport museum weather rain sunny cheap option compare review guest breakfast refund \
cancel policy seat window aisle depart arrive transfer luggage itinerary"
        .split_whitespace()
        .collect()
});

/// A small, fast pseudo-random generator (xorshift64*), so that payloads vary without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn id<const N: usize>(&mut self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(N);
        while bytes.len() < N {
            bytes.extend_from_slice(&self.next().to_le_bytes());
        }
        bytes.truncate(N);
        bytes
    }

    /// About `len` bytes of English-like prose.
    fn prose(&mut self, len: usize) -> String {
        let words = &*WORDS;
        let mut text = String::with_capacity(len + 16);
        while text.len() < len {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(words[self.below(words.len() as u64) as usize]);
        }
        text
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(value: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(value.into())
}

fn int(value: i64) -> any_value::Value {
    any_value::Value::IntValue(value)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn request(spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text("trip-planner")),
                    kv("telemetry.sdk.language", text("python")),
                    kv("telemetry.sdk.name", text("opentelemetry")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// `spans` spans of realistic agent traces (20 spans a trace; the last trace may be cut short).
fn genai_request(spans: usize, rng: &mut Rng) -> Vec<u8> {
    let start = now_nanos();
    let mut out = Vec::with_capacity(spans);
    while out.len() < spans {
        let room = spans - out.len();
        out.extend(genai_trace(rng, start).into_iter().take(room));
    }
    request(out)
}

const SYSTEM_PROMPT: &str = "You are a travel planning assistant. You help the user plan trips: \
flights, trains, hotels and what to see. Always compare at least three options, state prices in \
the user's currency, prefer refundable bookings, and call the tools you are given instead of \
guessing availability. Answer concisely, as a list when you compare options.";

/// One trace: session span, 2 agents, 9 chat calls and 8 tool calls, 5 % of them failed.
fn genai_trace(rng: &mut Rng, start: u64) -> Vec<Span> {
    let trace_id = rng.id::<16>();
    let session_id = rng.id::<8>();
    let mut spans = Vec::with_capacity(20);
    let mut clock = start;
    let mut tick = |rng: &mut Rng, max_ms: u64| {
        let begin = clock;
        clock += (1 + rng.below(max_ms)) * 1_000_000;
        (begin, clock)
    };
    let agents = [rng.id::<8>(), rng.id::<8>()];
    let mut children = Vec::with_capacity(17);
    for call in 0..17 {
        let agent = &agents[call % 2];
        let mut span = if call % 2 == 0 {
            chat_span(rng)
        } else {
            tool_span(rng)
        };
        let (begin, end) = tick(rng, if call % 2 == 0 { 900 } else { 200 });
        span.trace_id = trace_id.clone();
        span.span_id = rng.id::<8>();
        span.parent_span_id = agent.clone();
        span.start_time_unix_nano = begin;
        span.end_time_unix_nano = end;
        if rng.below(100) < 5 {
            fail(&mut span, end);
        }
        children.push(span);
    }
    let end = clock + 1_000_000;
    spans.push(Span {
        trace_id: trace_id.clone(),
        span_id: session_id.clone(),
        name: "trip-planner.session".into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: vec![
            kv("agentops.span.kind", text("session")),
            kv("agentops.tags", text(r#"["travel","benchmark"]"#)),
            kv("agentops.session.end_state", text("Success")),
            kv("agentops.entity.input", text(rng.prose(160))),
        ],
        ..Default::default()
    });
    for (index, agent) in agents.iter().enumerate() {
        let name = ["planner", "booker"][index];
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: agent.clone(),
            parent_span_id: session_id.clone(),
            name: format!("invoke_agent {name}"),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: start + 500_000,
            end_time_unix_nano: end - 500_000,
            attributes: vec![
                kv("gen_ai.operation.name", text("invoke_agent")),
                kv("gen_ai.agent.name", text(name)),
                kv(
                    "gen_ai.agent.id",
                    text(format!("{name}-{}", rng.below(1000))),
                ),
            ],
            ..Default::default()
        });
    }
    // One of the three tops may fail too, so that 5 % of all spans are errors.
    if rng.below(100) < 5 {
        fail(&mut spans[1], end);
    }
    spans.extend(children);
    spans
}

/// A `chat` call: about 1.5 KB of input messages, 0.3 KB of output, tokens.
fn chat_span(rng: &mut Rng) -> Span {
    let input = json!([
        {"role": "system", "parts": [{"type": "text", "content": SYSTEM_PROMPT}]},
        {"role": "user", "parts": [{"type": "text", "content": rng.prose(420)}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": format!("call_{}", rng.below(1 << 40)),
            "name": "search_flights", "arguments": {"from": "LIS", "to": "KIX", "date": "2026-12-14"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": rng.prose(380)}]},
    ]);
    let output = json!([
        {"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": rng.prose(240)}]},
    ]);
    let input_tokens = 350 + rng.below(150) as i64;
    Span {
        name: "chat gpt-4o".into(),
        kind: span::SpanKind::Client as i32,
        attributes: vec![
            kv("gen_ai.operation.name", text("chat")),
            kv("gen_ai.provider.name", text("openai")),
            kv("gen_ai.request.model", text("gpt-4o")),
            kv("gen_ai.response.model", text("gpt-4o-2024-08-06")),
            kv(
                "gen_ai.request.temperature",
                any_value::Value::DoubleValue(0.2),
            ),
            kv(
                "gen_ai.response.id",
                text(format!("chatcmpl-{}", rng.below(1 << 48))),
            ),
            kv("gen_ai.response.finish_reasons", text(r#"["stop"]"#)),
            kv("gen_ai.usage.input_tokens", int(input_tokens)),
            kv("gen_ai.usage.output_tokens", int(60 + rng.below(40) as i64)),
            kv(
                "gen_ai.usage.cache_read.input_tokens",
                int(input_tokens / 2),
            ),
            kv("gen_ai.input.messages", text(input.to_string())),
            kv("gen_ai.output.messages", text(output.to_string())),
            kv("server.address", text("api.openai.com")),
        ],
        ..Default::default()
    }
}

/// An `execute_tool` call with its arguments and result.
fn tool_span(rng: &mut Rng) -> Span {
    let tool = ["search_flights", "search_hotels", "get_weather", "book"][rng.below(4) as usize];
    Span {
        name: format!("execute_tool {tool}"),
        kind: span::SpanKind::Internal as i32,
        attributes: vec![
            kv("gen_ai.operation.name", text("execute_tool")),
            kv("gen_ai.tool.name", text(tool)),
            kv(
                "gen_ai.tool.call.id",
                text(format!("call_{}", rng.below(1 << 40))),
            ),
            kv(
                "gen_ai.tool.call.arguments",
                text(json!({"query": rng.prose(60), "limit": 5}).to_string()),
            ),
            kv(
                "gen_ai.tool.call.result",
                text(json!({"results": [rng.prose(120), rng.prose(120)]}).to_string()),
            ),
        ],
        ..Default::default()
    }
}

/// Marks `span` failed: ERROR status and an `exception` event.
fn fail(span: &mut Span, at: u64) {
    span.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: "upstream timed out".into(),
    });
    span.events.push(span::Event {
        time_unix_nano: at,
        name: "exception".into(),
        attributes: vec![
            kv("exception.type", text("TimeoutError")),
            kv("exception.message", text("upstream timed out after 30 s")),
            kv(
                "exception.stacktrace",
                text("Traceback (most recent call last):\n  File \"agent.py\", line 88, in run\n    result = tool(**args)\nTimeoutError: upstream timed out after 30 s"),
            ),
        ],
        ..Default::default()
    });
}

/// `spans` short chat spans, all in one fresh trace.
fn small_request(spans: usize) -> Vec<u8> {
    let trace_id = uuid::Uuid::new_v4().as_bytes().to_vec();
    let now = now_nanos();
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: trace_id.clone(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            parent_span_id: if i == 0 {
                vec![]
            } else {
                1u64.to_be_bytes().to_vec()
            },
            name: "openai.chat.completion".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: now + i as u64 * 1000,
            end_time_unix_nano: now + i as u64 * 1000 + 500,
            attributes: vec![
                kv("gen_ai.system", text("openai")),
                kv("gen_ai.request.model", text("gpt-4o-mini")),
                kv("gen_ai.usage.input_tokens", int(120)),
                kv("gen_ai.usage.output_tokens", int(40)),
                kv("gen_ai.prompt.0.role", text("user")),
                kv(
                    "gen_ai.prompt.0.content",
                    text("Summarize the quarterly report in three bullet points."),
                ),
                kv("gen_ai.completion.0.role", text("assistant")),
                kv(
                    "gen_ai.completion.0.content",
                    text("- Revenue up\n- Costs flat\n- Outlook good"),
                ),
            ],
            ..Default::default()
        })
        .collect();
    request(spans)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// User plus system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Resident and peak resident memory of a process, MB.
fn rss_mb(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The bytes of the files in `dir` (not recursing: the store's files sit at its top).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
