//! What recording an event costs the caller, next to a bare opentelemetry-rust span carrying the
//! same attributes, and how many events per second a session delivers end to end.
//!
//! ```sh
//! cargo bench -p agentops --bench record
//! ```
//!
//! - `sdk_record_event`: `session.record(Event::tool(..).params(..).returns(..))`, the event built
//!   and recorded on the caller's thread.
//! - `bare_otel_span`: what a user would do by hand with opentelemetry-sdk: the same 7 attributes
//!   (`event.id`, `event.type`, `event.timestamp`, `event.end_timestamp`, `event.data`,
//!   `session.id`, `session.tags`), ids, timestamps and JSON built per event, one span started and
//!   ended, into a `BatchSpanProcessor` whose exporter does nothing.
//! - `paired` (printed, not a criterion bench): the two above in alternating chunks, their
//!   medians and the median of their ratio, so that a change in the machine's load weighs on both.
//! - `export_throughput`: a fresh session records 20,000 events and ends; the time from the first
//!   record to `end` returning, with every event acknowledged by a local HTTP sink.
//!
//! For the two per-event benches, export is kept out of the timed loop on both sides: events are
//! recorded in chunks of [`CHUNK`] (below the queue and batch sizes, so the batch processor does
//! not export mid-chunk) and the queue is flushed between chunks, untimed, on both sides. The
//! SDK's flush really posts each chunk to the sink.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use agentops::{Client, Config, EndState, Event, Session, SessionOptions};
use chrono::{SecondsFormat, Utc};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use serde_json::json;

/// Events recorded between two (untimed) flushes.
const CHUNK: u64 = 8_192;
/// Queue and batch size of the per-event benches: larger than a chunk, so nothing is dropped
/// and the batch processor exports only when flushed.
const QUEUE: usize = 16_384;
/// Pause after each flush, untimed.
const SETTLE: Duration = Duration::from_millis(20);
/// Events per session in `export_throughput`.
const N: u64 = 20_000;
const API_KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const ANSWER: &str = r#"{"status":"success","jwt":"x","session_url":"u","token_cost":"0.00"}"#;

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers every request with 200 and [`ANSWER`]
/// (one thread per connection, keep-alive). Returns its base URL.
fn start_sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let address = listener.local_addr().expect("the sink's address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve(stream);
            });
        }
    });
    format!("http://{address}")
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let (mut length, mut close) = (0usize, false);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("expect") {
                writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        writer.write_all(response.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

fn client(endpoint: &str, max_queue_size: usize, batch_size: usize) -> Client {
    let config = Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(endpoint)
        .max_queue_size(max_queue_size)
        .batch_size(batch_size)
        .max_wait_time(Duration::from_secs(3600))
        .env_data_opt_out(true)
        .build()
        .expect("a valid benchmark configuration");
    Client::new(config).expect("a client")
}

/// Runs `iters` calls of `record` in chunks, timing only the calls; `flush` runs between chunks.
fn chunked(iters: u64, mut record: impl FnMut(), mut flush: impl FnMut()) -> Duration {
    let mut measured = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let start = Instant::now();
        for _ in 0..n {
            record();
        }
        measured += start.elapsed();
        flush();
        // The exporting thread frees the exported spans after the flush has returned: let it
        // finish so that its frees do not contend with the next timed chunk.
        std::thread::sleep(SETTLE);
        left -= n;
    }
    measured
}

/// One event recorded through the SDK, as a user writes it.
fn sdk_record(session: &Session) {
    let id = session.record(
        Event::tool("calculator")
            .params(json!({"expr": "2+2"}))
            .returns("4"),
    );
    black_box(id.expect("recorded"));
}

fn sdk_flush(session: &Session) {
    session.flush();
}

fn sdk_record_event(c: &mut Criterion, session: &Session) {
    c.bench_function("sdk_record_event", |b| {
        b.iter_custom(|iters| chunked(iters, || sdk_record(session), || sdk_flush(session)))
    });
}

/// An exporter that drops every batch.
#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

/// What a user would write by hand with opentelemetry-sdk for the same event.
struct BareSpans {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// What a user keeps for the session: its id and tags.
    session_id: String,
    tags: Value,
}

impl BareSpans {
    fn new() -> Self {
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE)
            .with_max_export_batch_size(QUEUE)
            .with_scheduled_delay(Duration::from_secs(3600))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::new(NoopExporter, batch))
            .build();
        let tracer = provider.tracer("bench");
        Self {
            provider,
            tracer,
            session_id: uuid::Uuid::new_v4().to_string(),
            tags: Value::Array(Array::String(vec![StringValue::from("bench")])),
        }
    }

    fn record(&self) {
        let now = std::time::SystemTime::now();
        let at = chrono::DateTime::<Utc>::from(now);
        let data = json!({
            "params": {"expr": "2+2"},
            "returns": "4",
            "agent_id": null,
            "name": "calculator",
            "logs": null,
            "tool_name": "calculator",
        });
        let attributes = vec![
            KeyValue::new("event.id", uuid::Uuid::new_v4().to_string()),
            KeyValue::new("event.type", "tools"),
            KeyValue::new(
                "event.timestamp",
                at.to_rfc3339_opts(SecondsFormat::Micros, false),
            ),
            KeyValue::new(
                "event.end_timestamp",
                at.to_rfc3339_opts(SecondsFormat::Micros, false),
            ),
            KeyValue::new("event.data", serde_json::to_string(&data).expect("JSON")),
            KeyValue::new("session.id", self.session_id.clone()),
            KeyValue::new("session.tags", self.tags.clone()),
        ];
        let mut span = self
            .tracer
            .span_builder("calculator")
            .with_kind(SpanKind::Internal)
            .with_start_time(now)
            .with_attributes(attributes)
            .start(&self.tracer);
        span.end_with_timestamp(now);
    }

    fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

fn bare_otel_span(c: &mut Criterion, bare: &BareSpans) {
    c.bench_function("bare_otel_span", |b| {
        b.iter_custom(|iters| chunked(iters, || bare.record(), || bare.flush()))
    });
}

/// The two per-event costs measured in alternating chunks (A B B A ...), so that a change in
/// the machine's load during the run weighs on both alike. Prints the medians and their ratio.
fn paired(session: &Session, bare: &BareSpans) {
    const ROUNDS: usize = 40;
    let per_event = |measured: Duration| measured.as_nanos() as f64 / CHUNK as f64;
    let (mut sdk, mut plain, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let run_sdk = || {
            per_event(chunked(
                CHUNK,
                || sdk_record(session),
                || sdk_flush(session),
            ))
        };
        let run_bare = || per_event(chunked(CHUNK, || bare.record(), || bare.flush()));
        let (a, b) = if round % 2 == 0 {
            let a = run_sdk();
            (a, run_bare())
        } else {
            let b = run_bare();
            (run_sdk(), b)
        };
        sdk.push(a);
        plain.push(b);
        ratios.push(a / b);
    }
    println!(
        "paired ({ROUNDS} alternating rounds of {CHUNK} events): sdk_record_event median \
         {:.0} ns/event, bare_otel_span median {:.0} ns/event, ratio median {:.2}x",
        median(&mut sdk),
        median(&mut plain),
        median(&mut ratios)
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn export_throughput(c: &mut Criterion, client: &Client) {
    let mut group = c.benchmark_group("export_throughput");
    group
        .throughput(Throughput::Elements(N))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("20k_events", |b| {
        b.iter_custom(|iters| {
            let mut measured = Duration::ZERO;
            for _ in 0..iters {
                let session = client
                    .start_session(SessionOptions::tags(["bench"]))
                    .expect("a session");
                let start = Instant::now();
                for _ in 0..N {
                    sdk_record(&session);
                }
                let summary = session.end(EndState::Success, "").expect("ended");
                measured += start.elapsed();
                assert_eq!(
                    summary.delivery.delivered, N,
                    "not every event was delivered: {:?}",
                    summary.delivery
                );
            }
            measured
        })
    });
    group.finish();
}

/// Threads of this process (Linux), to show what open sessions cost.
fn threads() -> Option<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// Prints the threads of the process before and after opening 100 sessions on one client.
fn threads_per_open_sessions(sink: &str) {
    let client = client(sink, 1024, 256);
    let before = threads();
    let sessions: Vec<Session> = (0..100)
        .map(|_| {
            client
                .start_session(SessionOptions::default())
                .expect("a session")
        })
        .collect();
    for session in &sessions {
        sdk_record(session);
    }
    let after = threads();
    println!(
        "threads: {before:?} before 100 open sessions on a new client, {after:?} with them open"
    );
    let summaries = client.shutdown();
    assert_eq!(summaries.len(), 100);
}

fn benches(c: &mut Criterion) {
    let sink = start_sink();
    if runs("threads") {
        threads_per_open_sessions(&sink);
    }
    let per_event = client(&sink, QUEUE, QUEUE);
    let session = per_event
        .start_session(SessionOptions::tags(["bench"]))
        .expect("a session");
    let bare = BareSpans::new();
    sdk_record_event(c, &session);
    bare_otel_span(c, &bare);
    if runs("paired") {
        paired(&session, &bare);
    }
    let delivery = session.delivery();
    assert_eq!(
        (delivery.dropped, delivery.failed),
        (0, 0),
        "the per-event benchmark session lost events: {delivery:?}"
    );
    let _ = session.end(EndState::Success, "");
    let _ = bare.provider.shutdown();
    // Default batch size, and a queue that holds a whole run (nothing dropped).
    let throughput = client(&sink, N as usize, 256);
    export_throughput(c, &throughput);
}

/// Whether the command line asks for `name`: no filter given, or a filter that it contains.
/// (Criterion's own benches are filtered by criterion; this is for the paired comparison.)
fn runs(name: &str) -> bool {
    const WITH_VALUE: &[&str] = &[
        "--color",
        "-c",
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--format",
        "--output-format",
        "--plotting-backend",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .iter()
        .any(|arg| arg == "--profile-time" || arg == "--list")
    {
        return false;
    }
    let mut filters = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    filters.is_empty() || filters.iter().any(|filter| name.contains(filter.as_str()))
}

criterion_group! {
    name = record;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(record);
