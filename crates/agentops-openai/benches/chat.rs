//! What recording a chat completion costs: the same `chat().create(..)` call through
//! async-openai against a local OpenAI-compatible server, with and without
//! `agentops_openai::default_service()`, in alternating rounds of one run.
//!
//! ```sh
//! cargo bench -p agentops-openai --bench chat
//! ```
//!
//! The calls run one after another on a current-thread runtime, so that the caller's thread
//! does all the client-side work and its CPU time (`CLOCK_THREAD_CPUTIME_ID`) is the work a call
//! costs the caller; the fake OpenAI server and the AgentOps sink run on another runtime. The
//! session's delivery thread sends the recorded events to the sink during the run.

#[path = "../tests/support/fake_openai.rs"]
mod fake_openai;

use std::time::{Duration, Instant};

use agentops::{Client, Config, SessionOptions};
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::CreateChatCompletionRequest;
use serde_json::json;

const ROUNDS: usize = 30;
const CALLS: usize = 200;
const API_KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// An AgentOps v2 sink: answers every request as the v2 API would.
async fn start_sink() -> String {
    use axum::routing::post;
    let answer = json!({"status": "success", "jwt": "x", "session_url": "u", "token_cost": "0"});
    let app = axum::Router::new().fallback(post(move || {
        let answer = answer.clone();
        async move { axum::Json(answer) }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}")
}

fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (fake, sink) =
        servers.block_on(async { (fake_openai::FakeOpenAi::start().await, start_sink().await) });
    let config = Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(sink)
        .env_data_opt_out(true)
        .max_queue_size(100_000)
        .build()
        .unwrap();
    let agentops = Client::new(config).unwrap();
    let session = agentops.start_session(SessionOptions::default()).unwrap();
    let openai_config = OpenAIConfig::new().with_api_base(&fake.base);
    let plain = async_openai::Client::with_config(openai_config.clone());
    let recorded = async_openai::Client::with_config(openai_config)
        .with_http_service(agentops_openai::default_service());
    let request: CreateChatCompletionRequest = serde_json::from_value(json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a travel agent."},
            {"role": "user", "content": "Plan three days in Paris for a family of four."}
        ],
        "temperature": 0.2
    }))
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // One round: CALLS calls, their wall time and the caller thread's CPU time, per call.
    let round = |client: &async_openai::Client<OpenAIConfig>| {
        let started = (Instant::now(), thread_cpu());
        runtime.block_on(session.scope(async {
            for _ in 0..CALLS {
                let answer = client.chat().create(request.clone()).await.unwrap();
                std::hint::black_box(answer);
            }
        }));
        let wall = started.0.elapsed().as_secs_f64() * 1e6 / CALLS as f64;
        let cpu = (thread_cpu() - started.1).as_secs_f64() * 1e6 / CALLS as f64;
        (wall, cpu)
    };
    // Warm up both (connections, allocations).
    round(&plain);
    round(&recorded);
    let (mut wall_plain, mut wall_recorded, mut cpu_plain, mut cpu_recorded) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for i in 0..ROUNDS {
        let (a, b) = if i % 2 == 0 {
            let a = round(&plain);
            (a, round(&recorded))
        } else {
            let b = round(&recorded);
            (round(&plain), b)
        };
        wall_plain.push(a.0);
        cpu_plain.push(a.1);
        wall_recorded.push(b.0);
        cpu_recorded.push(b.1);
        ratios.push(b.0 / a.0);
    }
    // The layer alone: a session that does not record LLM calls.
    let off = Client::new(
        Config::builder()
            .ignore_env()
            .api_key(API_KEY)
            .endpoint("http://127.0.0.1:9")
            .instrument_llm_calls(false)
            .build()
            .unwrap(),
    )
    .unwrap()
    .start_session(SessionOptions::default())
    .unwrap();
    let mut cpu_off = Vec::new();
    for _ in 0..ROUNDS / 3 {
        let started = thread_cpu();
        runtime.block_on(off.scope(async {
            for _ in 0..CALLS {
                std::hint::black_box(recorded.chat().create(request.clone()).await.unwrap());
            }
        }));
        cpu_off.push((thread_cpu() - started).as_secs_f64() * 1e6 / CALLS as f64);
    }
    println!(
        "layer without recording: caller-thread CPU {:.1} us/call",
        median(&mut cpu_off)
    );
    let delivered = session.flush();
    let (wp, wr) = (median(&mut wall_plain), median(&mut wall_recorded));
    let (cp, cr) = (median(&mut cpu_plain), median(&mut cpu_recorded));
    println!(
        "chat completion ({ROUNDS} alternating rounds of {CALLS} calls): \
         plain {wp:.1} us/call, recorded {wr:.1} us/call, ratio median {:.3}x ({:+.1} %); \
         caller-thread CPU plain {cp:.1} us, recorded {cr:.1} us ({:+.1} us/call); \
         {} events recorded, {} delivered",
        median(&mut ratios),
        (median(&mut ratios) - 1.0) * 100.0,
        cr - cp,
        delivered.recorded,
        delivered.delivered,
    );
}
