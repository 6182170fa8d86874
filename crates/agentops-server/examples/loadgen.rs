//! Load generator: OTLP protobuf GenAI spans and v2 `create_events` batches against a server.
//!
//! ```text
//! cargo run --release -p agentops-server --example loadgen -- [--url http://127.0.0.1:4318 --api-key KEY]
//!     [--seconds 10] [--otlp-clients 4] [--spans 500] [--v2-clients 1]
//! ```
//! Without `--url` it starts a server in-process on a temporary data directory (then the peak
//! RSS printed covers server and clients together). Every counted request was answered 2xx,
//! which this server sends only after the data is committed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;

const DEFAULT_KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

struct Args {
    url: Option<String>,
    api_key: String,
    seconds: u64,
    otlp_clients: usize,
    spans: usize,
    v2_clients: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: None,
        api_key: DEFAULT_KEY.into(),
        seconds: 10,
        otlp_clients: 4,
        spans: 500,
        v2_clients: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("bad number {v:?}"));
        match flag.as_str() {
            "--url" => args.url = Some(value()?),
            "--api-key" => args.api_key = value()?,
            "--seconds" => args.seconds = number(value()?)?,
            "--otlp-clients" => args.otlp_clients = number(value()?)? as usize,
            "--spans" => args.spans = number(value()?)?.max(1) as usize,
            "--v2-clients" => args.v2_clients = number(value()?)? as usize,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn genai_request(spans: usize) -> Vec<u8> {
    let trace_id = uuid::Uuid::new_v4().as_bytes().to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let spans = (0..spans)
        .map(|i| {
            let s = |v: &str| any_value::Value::StringValue(v.into());
            Span {
                trace_id: trace_id.clone(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: if i == 0 {
                    vec![]
                } else {
                    1u64.to_be_bytes().to_vec()
                },
                name: "openai.chat.completion".into(),
                kind: 3,
                start_time_unix_nano: now + i as u64 * 1000,
                end_time_unix_nano: now + i as u64 * 1000 + 500,
                attributes: vec![
                    kv("gen_ai.system", s("openai")),
                    kv("gen_ai.request.model", s("gpt-4o-mini")),
                    kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(120)),
                    kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(40)),
                    kv("gen_ai.prompt.0.role", s("user")),
                    kv(
                        "gen_ai.prompt.0.content",
                        s("Summarize the quarterly report in three bullet points."),
                    ),
                    kv("gen_ai.completion.0.role", s("assistant")),
                    kv(
                        "gen_ai.completion.0.content",
                        s("- Revenue up\n- Costs flat\n- Outlook good"),
                    ),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut data_dir = None;
    let mut server = None;
    let url = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let dir =
                std::env::temp_dir().join(format!("agentops-loadgen-{}", uuid::Uuid::new_v4()));
            let mut config = agentops_server::Config::new(&dir);
            config.listen = "127.0.0.1:0".parse().expect("address");
            config.api_key = Some(args.api_key.clone());
            let s = runtime
                .block_on(agentops_server::Server::start(config))
                .expect("server start");
            let url = s.url();
            server = Some(s);
            data_dir = Some(dir);
            url
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let token: serde_json::Value = agent
        .post(format!("{url}/v3/auth/token"))
        .header("Content-Type", "application/json")
        .send(json!({"api_key": args.api_key}).to_string())
        .expect("auth/token")
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .expect("token JSON");
    let bearer = format!("Bearer {}", token["token"].as_str().expect("token"));

    let stop = Arc::new(AtomicBool::new(false));
    let spans_done = Arc::new(AtomicU64::new(0));
    let events_done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let otlp_latencies = Arc::new(Mutex::new(Vec::new()));
    let v2_latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.otlp_clients {
            let (agent, url, bearer) = (agent.clone(), url.clone(), bearer.clone());
            let (stop, spans_done, errors, lat) = (
                stop.clone(),
                spans_done.clone(),
                errors.clone(),
                otlp_latencies.clone(),
            );
            let n = args.spans;
            scope.spawn(move || {
                let mut local = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let body = genai_request(n);
                    let t = Instant::now();
                    let ok = agent
                        .post(format!("{url}/v1/traces"))
                        .header("Content-Type", "application/x-protobuf")
                        .header("Authorization", &bearer)
                        .send(&body[..])
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    local.push(t.elapsed());
                    if ok {
                        spans_done.fetch_add(n as u64, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat.lock().expect("latencies").extend(local);
            });
        }
        for _ in 0..args.v2_clients {
            let (agent, url, key) = (agent.clone(), url.clone(), args.api_key.clone());
            let (stop, events_done, errors, lat) = (
                stop.clone(),
                events_done.clone(),
                errors.clone(),
                v2_latencies.clone(),
            );
            scope.spawn(move || {
                let session_id = uuid::Uuid::new_v4().to_string();
                let now = agentops_core::timestamp::now();
                let mut created = agent
                    .post(format!("{url}/v2/create_session"))
                    .header("Content-Type", "application/json")
                    .header("X-Agentops-Api-Key", &key)
                    .send(json!({"session": {"session_id": session_id, "init_timestamp": now}}).to_string())
                    .expect("create_session");
                let jwt: serde_json::Value = created
                    .body_mut()
                    .read_to_string()
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .expect("jwt");
                let auth = format!("Bearer {}", jwt["jwt"].as_str().expect("jwt"));
                let mut local = Vec::new();
                while !stop.load(Ordering::Relaxed) {
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
                        .header("X-Agentops-Api-Key", &key)
                        .header("Authorization", &auth)
                        .send(json!({ "events": events }).to_string())
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    local.push(t.elapsed());
                    if ok {
                        events_done.fetch_add(25, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat.lock().expect("latencies").extend(local);
            });
        }
        std::thread::sleep(Duration::from_secs(args.seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let report = |name: &str, lat: &Mutex<Vec<Duration>>| {
        let mut l = lat.lock().expect("latencies").clone();
        l.sort();
        println!(
            "{name}: {} requests, p50 {:.1} ms, p99 {:.1} ms",
            l.len(),
            percentile(&l, 0.50).as_secs_f64() * 1e3,
            percentile(&l, 0.99).as_secs_f64() * 1e3
        );
    };
    let spans = spans_done.load(Ordering::Relaxed);
    let events = events_done.load(Ordering::Relaxed);
    println!(
        "{elapsed:.1} s, {} OTLP clients x {} spans/request, {} v2 clients",
        args.otlp_clients, args.spans, args.v2_clients
    );
    println!(
        "OTLP spans committed: {spans} ({:.0} spans/s)",
        spans as f64 / elapsed
    );
    println!(
        "v2 events committed:  {events} ({:.0} events/s)",
        events as f64 / elapsed
    );
    report("OTLP /v1/traces", &otlp_latencies);
    report("v2 /v2/create_events", &v2_latencies);
    println!("failed requests: {}", errors.load(Ordering::Relaxed));
    if let Some(mb) = peak_rss_mb() {
        println!(
            "peak RSS: {mb:.0} MB{}",
            if server.is_some() {
                " (server and load generator in one process)"
            } else {
                " (load generator only)"
            }
        );
    }
    // Read side after the load: the session list and the largest session's detail.
    let timed_get = |path: &str| {
        let t = Instant::now();
        let text = agent
            .get(format!("{url}{path}"))
            .header("X-Agentops-Api-Key", &args.api_key)
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
    let biggest = list["sessions"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .max_by_key(|s| s["event_count"].as_i64().unwrap_or(0))
        })
        .cloned();
    if let Some(session) = biggest {
        let id = session["id"].as_str().unwrap_or_default();
        let (detail_time, _) = timed_get(&format!("/api/v1/sessions/{id}"));
        println!(
            "GET /api/v1/sessions/{{id}} ({} events): {:.1} ms",
            session["event_count"],
            detail_time.as_secs_f64() * 1e3
        );
    }
    if let Some(s) = server {
        let _ = runtime.block_on(s.shutdown());
    }
    if let Some(dir) = data_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}
