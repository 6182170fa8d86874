//! OpenTelemetry metrics of a client: its LLM calls, tokens and cost, what became of its events,
//! and how its exports went, exported as OTLP/HTTP protobuf.
//!
//! Nothing here runs on the caller's thread when an event is recorded:
//!
//! - LLM, token and cost metrics are recorded by the delivery thread from the spans it exports
//!   ([`Metrics::observe_span`]), so events left out by sampling, or dropped because their queue
//!   was full, are not in them.
//! - The event outcome counters are observed, at each collection, from the counters the
//!   sessions already keep ([`crate::delivery::DeliveryStats`]); the totals of finished
//!   sessions are kept ([`Metrics::fold`]) so that the sums never go down.
//! - Export times and batch sizes are recorded by the delivery thread around its requests.
//!
//! Collection is opentelemetry-sdk's `PeriodicReader` (one thread per client, started with the
//! client's first session). Its exporter ([`MailboxExporter`]) only encodes the collected metrics
//! and leaves them in a mailbox: the client's delivery thread sends them, with the SDK's
//! transport (TLS, timeouts, gzip, credentials) and retry classification, one attempt at a time
//! between the sessions' attempts. Temporality is cumulative, so a newer export replaces one
//! not yet sent without losing anything, and the collecting thread never waits on the network.

use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use agentops_core::attributes as attr;
use agentops_core::pricing::{PriceTable, Usage};
use opentelemetry::metrics::{
    Counter, Histogram, MeterProvider as _, ObservableCounter, ObservableGauge,
};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;
use serde::Deserialize;

use crate::backend_error::BackendError;
use crate::config::{Config, Protocol};
use crate::exporter::{otlp, v2, Attempt, Wire};
use crate::reply::{self, Answer, Replier};
use crate::state::SessionState;
use crate::sync::lock;
use crate::transport::{self, Request, Retry};

/// The name of a metrics request in logs and in `agentops.export.duration`.
pub(crate) const CALL: &str = "metrics";
const PROTOBUF: &str = "application/x-protobuf";

/// `gen_ai.client.token.usage` buckets, as the GenAI semantic conventions advise.
const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// `gen_ai.client.operation.duration` buckets (seconds), as the conventions advise; also used
/// for export durations.
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// `agentops.export.batch.size` buckets (events).
const BATCH_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A client's metrics: instruments, the sessions observed, and the exports waiting to be sent.
pub(crate) struct Metrics {
    interval: Duration,
    registry: Arc<Registry>,
    mailbox: Arc<Mailbox>,
    started: OnceLock<Started>,
    /// A failed export was logged at `warn` (later ones are logged at `debug`).
    warned: AtomicBool,
}

/// The meter provider, built with the client's first session.
struct Started {
    provider: SdkMeterProvider,
    instruments: Instruments,
}

struct Instruments {
    token_usage: Histogram<u64>,
    operation_duration: Histogram<f64>,
    llm_calls: Counter<u64>,
    llm_tokens: Counter<u64>,
    llm_cost: Counter<f64>,
    export_duration: Histogram<f64>,
    batch_size: Histogram<u64>,
    /// Kept so that their callbacks stay registered.
    _events: ObservableCounter<u64>,
    _queue_depth: ObservableGauge<u64>,
}

/// The sessions whose counters are observed, and the totals of those that finished.
#[derive(Default)]
struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    live: Vec<Arc<SessionState>>,
    ended: Totals,
}

/// Event outcomes summed over sessions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    recorded: u64,
    delivered: u64,
    dropped: u64,
    failed: u64,
    sampled_out: u64,
}

impl Totals {
    fn add(&mut self, state: &SessionState) {
        let counts = state.stats.snapshot();
        self.recorded += counts.recorded;
        self.delivered += counts.delivered;
        self.dropped += counts.dropped;
        self.failed += counts.failed;
        self.sampled_out += counts.sampled_out;
    }
}

/// Encoded exports on their way from the collecting thread to the delivery thread.
#[derive(Default)]
struct Mailbox {
    state: Mutex<MailboxState>,
}

#[derive(Default)]
struct MailboxState {
    /// Exports made so far.
    generation: u64,
    /// The latest export not yet picked up by the delivery thread.
    latest: Option<Export>,
    /// Flushes asked for and not yet seen by the delivery thread.
    flushes: Vec<FlushRequest>,
    /// The backend has no metrics endpoint: exports are discarded.
    unsupported: bool,
}

struct Export {
    generation: u64,
    body: Vec<u8>,
}

struct FlushRequest {
    deadline: Instant,
    reply: Replier<bool>,
}

impl Metrics {
    /// The metrics of a client with this configuration; `None` when they are turned off.
    pub(crate) fn new(config: &Config) -> Option<Self> {
        config.metrics.then(|| Self {
            interval: config.metrics_interval,
            registry: Arc::default(),
            mailbox: Arc::default(),
            started: OnceLock::new(),
            warned: AtomicBool::new(false),
        })
    }

    /// Builds the meter provider (and starts its collecting thread) if not done yet.
    pub(crate) fn start(&self) {
        self.started.get_or_init(|| {
            let reader = PeriodicReader::builder(MailboxExporter {
                mailbox: self.mailbox.clone(),
            })
            .with_interval(self.interval)
            .build();
            let resource = opentelemetry_sdk::Resource::builder()
                .with_attribute(KeyValue::new("agentops.sdk.language", "rust"))
                .build();
            let provider = SdkMeterProvider::builder()
                .with_resource(resource)
                .with_reader(reader)
                .build();
            let instruments = Instruments::new(&provider, &self.registry);
            Started {
                provider,
                instruments,
            }
        });
    }

    fn instruments(&self) -> Option<&Instruments> {
        self.started.get().map(|started| &started.instruments)
    }

    /// Observes a new session's counters.
    pub(crate) fn track(&self, state: &Arc<SessionState>) {
        lock(&self.registry.inner).live.push(state.clone());
    }

    /// Stops observing a session that was never handed to the worker.
    pub(crate) fn untrack(&self, state: &Arc<SessionState>) {
        lock(&self.registry.inner)
            .live
            .retain(|live| !Arc::ptr_eq(live, state));
    }

    /// Keeps the totals of finished sessions and stops observing them.
    pub(crate) fn fold(&self, finished: &[Arc<SessionState>]) {
        let mut registry = lock(&self.registry.inner);
        let RegistryInner { live, ended } = &mut *registry;
        live.retain(|state| {
            let done = finished.iter().any(|done| Arc::ptr_eq(done, state));
            if done {
                ended.add(state);
            }
            !done
        });
    }

    /// Counts an event dropped after its session closed: in the session's counters, and in the
    /// finished sessions' totals if the session has been folded into them already.
    pub(crate) fn count_late_drop(metrics: Option<&Metrics>, state: &Arc<SessionState>) {
        let Some(metrics) = metrics else {
            crate::delivery::DeliveryStats::add(&state.stats.dropped, 1);
            return;
        };
        let mut registry = lock(&metrics.registry.inner);
        crate::delivery::DeliveryStats::add(&state.stats.dropped, 1);
        if !registry.live.iter().any(|live| Arc::ptr_eq(live, state)) {
            registry.ended.dropped += 1;
        }
    }

    /// Records the LLM metrics of a span about to be exported (on the delivery thread).
    pub(crate) fn observe_span(&self, span: &SpanData) {
        let Some(instruments) = self.instruments() else {
            return;
        };
        let mut kind = None;
        let mut data = None;
        let mut operation = None;
        let mut provider = None;
        let mut system = None;
        let mut tags = None;
        for kv in &span.attributes {
            match kv.key.as_str() {
                attr::SESSION_TAGS => tags = Some(kv.value.clone()),
                attr::EVENT_TYPE => kind = Some(kv.value.as_str()),
                attr::EVENT_DATA => data = Some(kv.value.as_str()),
                "gen_ai.operation.name" => operation = Some(kv.value.as_str()),
                "gen_ai.provider.name" => provider = Some(kv.value.as_str()),
                "gen_ai.system" => system = Some(kv.value.as_str()),
                _ => {}
            }
        }
        if kind.as_deref() != Some("llms") {
            return;
        }
        let data: LlmData<'_> = match data.as_deref().map(serde_json::from_str).transpose() {
            Ok(data) => data.unwrap_or_default(),
            Err(err) => {
                tracing::debug!(target: "agentops", %err, "an LLM event without readable data is left out of the metrics");
                return;
            }
        };
        let model = data.model.as_deref().filter(|model| !model.is_empty());
        let provider = provider.or(system).filter(|name| !name.is_empty());
        let mut common = Vec::with_capacity(3);
        if let Some(model) = model {
            common.push(KeyValue::new("gen_ai.request.model", model.to_owned()));
        }
        if let Some(provider) = &provider {
            common.push(KeyValue::new("gen_ai.provider.name", provider.to_string()));
        }
        let with =
            |extra: &[KeyValue]| -> Vec<KeyValue> { common.iter().chain(extra).cloned().collect() };
        // The session's tags split the AgentOps LLM counters (not the semantic-convention
        // histograms, whose attributes the convention fixes): a chart per tag.
        let tagged = |mut attributes: Vec<KeyValue>| {
            if let Some(tags) = tags.as_ref().filter(|tags| !is_empty_array(tags)) {
                attributes.push(KeyValue::new(attr::SESSION_TAGS, tags.clone()));
            }
            attributes
        };
        let operation = KeyValue::new(
            "gen_ai.operation.name",
            operation.map_or_else(|| "chat".to_owned(), |op| op.into_owned()),
        );
        instruments.llm_calls.add(1, &tagged(common.clone()));
        if let Ok(took) = span.end_time.duration_since(span.start_time) {
            instruments
                .operation_duration
                .record(took.as_secs_f64(), &with(std::slice::from_ref(&operation)));
        }
        for (tokens, token_type, semconv) in [
            (data.prompt_tokens, "input", true),
            (data.completion_tokens, "output", true),
            (data.cached_tokens, "cached", false),
            (data.reasoning_tokens, "reasoning", false),
        ] {
            let Some(tokens) = tokens else { continue };
            let token_type = KeyValue::new("gen_ai.token.type", token_type);
            if semconv {
                instruments
                    .token_usage
                    .record(tokens, &with(&[operation.clone(), token_type.clone()]));
            }
            instruments
                .llm_tokens
                .add(tokens, &tagged(with(&[token_type])));
        }
        let cost = data
            .cost
            .filter(|usd| usd.is_finite() && *usd >= 0.0)
            .or_else(|| {
                let usage = Usage {
                    input_tokens: data.prompt_tokens?,
                    output_tokens: data.completion_tokens.unwrap_or(0),
                    cached_tokens: data.cached_tokens.unwrap_or(0),
                };
                prices().cost(model?, &usage)
            });
        if let Some(cost) = cost {
            instruments.llm_cost.add(cost, &tagged(common.clone()));
        }
    }

    /// Records one HTTP request of the delivery thread.
    pub(crate) fn request_done(
        &self,
        call: &'static str,
        answer: &transport::Answer,
        took: Duration,
    ) {
        let Some(instruments) = self.instruments() else {
            return;
        };
        let outcome = match answer {
            transport::Answer::Success(_) => "success",
            transport::Answer::Unauthorized(_) => "unauthorized",
            transport::Answer::TooLarge => "too_large",
            transport::Answer::Rejected { .. } => "rejected",
            transport::Answer::Unusable(_) => "unusable",
            transport::Answer::Retryable { .. } => "retryable_error",
        };
        instruments.export_duration.record(
            took.as_secs_f64(),
            &[
                KeyValue::new("agentops.call", call),
                KeyValue::new("agentops.outcome", outcome),
            ],
        );
    }

    /// Records a batch of events settled: delivered or failed.
    pub(crate) fn batch_settled(&self, events: usize, delivered: bool) {
        let Some(instruments) = self.instruments() else {
            return;
        };
        let outcome = if delivered { "delivered" } else { "failed" };
        instruments
            .batch_size
            .record(events as u64, &[KeyValue::new("agentops.outcome", outcome)]);
    }

    /// Asks the delivery thread to collect and send the metrics now; the answer says whether
    /// they were delivered by `deadline`. `None` when nothing was ever collected (no session
    /// has started), or the backend has no metrics endpoint.
    pub(crate) fn request_flush(&self, deadline: Instant) -> Option<Answer<bool>> {
        self.started.get()?;
        let mut mailbox = lock(&self.mailbox.state);
        if mailbox.unsupported {
            return None;
        }
        let (reply, answer) = reply::channel();
        mailbox.flushes.push(FlushRequest { deadline, reply });
        Some(answer)
    }

    /// Whether a flush waits to be seen by the delivery thread.
    pub(crate) fn flush_requested(&self) -> bool {
        !lock(&self.mailbox.state).flushes.is_empty()
    }

    fn warn_or_debug(&self, url: &str, why: &dyn std::fmt::Display) {
        if !self.warned.swap(true, Ordering::AcqRel) {
            tracing::warn!(target: "agentops", %url, %why, "metrics not exported (logged once; later failures at debug level)");
        } else {
            tracing::debug!(target: "agentops", %url, %why, "metrics not exported");
        }
    }
}

fn is_empty_array(value: &opentelemetry::Value) -> bool {
    match value {
        opentelemetry::Value::Array(array) => match array {
            opentelemetry::Array::String(items) => items.is_empty(),
            opentelemetry::Array::Bool(items) => items.is_empty(),
            opentelemetry::Array::I64(items) => items.is_empty(),
            opentelemetry::Array::F64(items) => items.is_empty(),
            _ => false,
        },
        _ => false,
    }
}

impl Instruments {
    fn new(provider: &SdkMeterProvider, registry: &Arc<Registry>) -> Self {
        let meter = provider.meter_with_scope(
            opentelemetry::InstrumentationScope::builder("agentops")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        let events_registry = registry.clone();
        let queue_registry = registry.clone();
        Self {
            token_usage: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Tokens used by each LLM call, by token type (input, output)")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            operation_duration: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_description("How long each LLM call took")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            llm_calls: meter
                .u64_counter("agentops.llm.calls")
                .with_unit("{call}")
                .with_description("LLM calls recorded and exported, by model")
                .build(),
            llm_tokens: meter
                .u64_counter("agentops.llm.tokens")
                .with_unit("{token}")
                .with_description(
                    "Tokens of LLM calls, by model and type (input, output, cached, reasoning)",
                )
                .build(),
            llm_cost: meter
                .f64_counter("agentops.llm.cost")
                .with_unit("USD")
                .with_description(
                    "Cost of LLM calls in US dollars, by model (the event's cost, else the \
                     built-in price table's)",
                )
                .build(),
            export_duration: meter
                .f64_histogram("agentops.export.duration")
                .with_unit("s")
                .with_description("HTTP requests of the delivery thread, by call and outcome")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            batch_size: meter
                .u64_histogram("agentops.export.batch.size")
                .with_unit("{event}")
                .with_description("Events per batch settled, by outcome (delivered, failed)")
                .with_boundaries(BATCH_BUCKETS.to_vec())
                .build(),
            _events: meter
                .u64_observable_counter("agentops.events")
                .with_unit("{event}")
                .with_description(
                    "Events by outcome (recorded, delivered, dropped, failed, sampled_out), \
                     as the sessions' DeliveryCounts count them",
                )
                .with_callback(move |observer| {
                    let totals = events_registry.totals();
                    for (outcome, value) in [
                        ("recorded", totals.recorded),
                        ("delivered", totals.delivered),
                        ("dropped", totals.dropped),
                        ("failed", totals.failed),
                        ("sampled_out", totals.sampled_out),
                    ] {
                        observer.observe(value, &[KeyValue::new("agentops.outcome", outcome)]);
                    }
                })
                .build(),
            _queue_depth: meter
                .u64_observable_gauge("agentops.queue.depth")
                .with_unit("{event}")
                .with_description(
                    "Events waiting for export across the open sessions (queued, being sent, \
                     or held by sampling)",
                )
                .with_callback(move |observer| observer.observe(queue_registry.queued(), &[]))
                .build(),
        }
    }
}

impl Registry {
    /// The outcomes of every session, finished or not.
    fn totals(&self) -> Totals {
        let registry = lock(&self.inner);
        let mut totals = registry.ended;
        for state in &registry.live {
            totals.add(state);
        }
        totals
    }

    fn queued(&self) -> u64 {
        lock(&self.inner)
            .live
            .iter()
            .map(|state| {
                state.stats.queued.load(Ordering::Acquire)
                    + state.stats.held.load(Ordering::Acquire)
            })
            .sum()
    }
}

/// The fields of an LLM event's `event.data` that metrics use.
#[derive(Deserialize, Default)]
struct LlmData<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
    #[serde(default)]
    cost: Option<f64>,
}

fn prices() -> &'static PriceTable {
    static PRICES: OnceLock<PriceTable> = OnceLock::new();
    PRICES.get_or_init(PriceTable::builtin)
}

/// The periodic reader's exporter: encodes the collected metrics for the delivery thread.
struct MailboxExporter {
    mailbox: Arc<Mailbox>,
}

impl MailboxExporter {
    fn hand_over(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let body = ExportMetricsServiceRequest::from(metrics).encode_to_vec();
        let mut mailbox = lock(&self.mailbox.state);
        if mailbox.unsupported {
            return Ok(());
        }
        mailbox.generation += 1;
        let generation = mailbox.generation;
        mailbox.latest = Some(Export { generation, body });
        Ok(())
    }
}

impl PushMetricExporter for MailboxExporter {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.hand_over(metrics))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// The delivery thread's side: sends the latest export, answers flushes.
#[derive(Default)]
pub(crate) struct Sender {
    current: Option<Outgoing>,
    waits: Vec<FlushWait>,
    /// The latest generation delivered, and the latest settled (delivered or given up).
    delivered: u64,
    settled: u64,
}

struct Outgoing {
    generation: u64,
    request: Request,
    retry: Retry,
    not_before: Instant,
    reauthorized: bool,
}

struct FlushWait {
    target: u64,
    deadline: Instant,
    reply: Replier<bool>,
}

/// What a round of the sender did.
pub(crate) struct Round {
    /// An attempt was made or a flush collected.
    pub worked: bool,
    /// When it next has something to do.
    pub next: Option<Instant>,
}

impl Sender {
    /// The earliest deadline of a flush someone waits for.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.waits.iter().map(|wait| wait.deadline).min()
    }

    /// Whether someone waits for a flush.
    pub(crate) fn has_waiters(&self) -> bool {
        !self.waits.is_empty()
    }

    /// Collects for the flushes asked, picks up the latest export, makes at most one attempt,
    /// and answers the flushes that are done or out of time. `limit` gives an attempt's
    /// longest time.
    pub(crate) fn round(&mut self, wire: &Wire, limit: impl Fn(Instant) -> Duration) -> Round {
        let mut round = Round {
            worked: false,
            next: None,
        };
        let Some(metrics) = wire.metrics.as_ref() else {
            return round;
        };
        let requests = std::mem::take(&mut lock(&metrics.mailbox.state).flushes);
        if !requests.is_empty() {
            round.worked = true;
            // The collecting thread never waits on the network: this returns at once.
            let collected = match metrics.started.get() {
                Some(started) => started.provider.force_flush(),
                None => Err(OTelSdkError::InternalFailure("not started".into())),
            };
            let target = lock(&metrics.mailbox.state).generation;
            for FlushRequest {
                deadline,
                mut reply,
            } in requests
            {
                match &collected {
                    Ok(()) => self.waits.push(FlushWait {
                        target,
                        deadline,
                        reply,
                    }),
                    Err(err) => {
                        tracing::debug!(target: "agentops", %err, "metrics could not be collected");
                        reply.send(false);
                    }
                }
            }
        }
        let latest = {
            let mut mailbox = lock(&metrics.mailbox.state);
            let latest = mailbox.latest.take();
            if mailbox.unsupported {
                if let Some(export) = latest {
                    self.settle(export.generation, false);
                }
                None
            } else {
                latest
            }
        };
        if let Some(export) = latest {
            if self
                .current
                .as_ref()
                .is_none_or(|current| current.generation < export.generation)
            {
                // Cumulative: the newer export holds everything the older one did.
                self.current = Some(Outgoing::new(wire, export));
            }
        }
        let now = Instant::now();
        if let Some(mut outgoing) = self.current.take() {
            if outgoing.not_before <= now {
                round.worked = true;
                match self.attempt(wire, metrics, &mut outgoing, limit(now)) {
                    Some(delivered) => self.settle(outgoing.generation, delivered),
                    None => self.current = Some(outgoing),
                }
            } else {
                self.current = Some(outgoing);
            }
        }
        let now = Instant::now();
        let (delivered, settled) = (self.delivered, self.settled);
        self.waits.retain_mut(|wait| {
            let answer = if delivered >= wait.target {
                Some(true)
            } else if settled >= wait.target || now >= wait.deadline {
                Some(false)
            } else {
                None
            };
            match answer {
                Some(answer) => {
                    wait.reply.send(answer);
                    false
                }
                None => true,
            }
        });
        round.next = self
            .current
            .as_ref()
            .map(|current| current.not_before)
            .into_iter()
            .chain(self.deadline())
            .min();
        round
    }

    fn settle(&mut self, generation: u64, delivered: bool) {
        self.settled = self.settled.max(generation);
        if delivered {
            self.delivered = self.delivered.max(generation);
        }
    }

    /// One attempt: `Some(delivered)` once the export is settled, `None` to try again at
    /// `outgoing.not_before`.
    fn attempt(
        &mut self,
        wire: &Wire,
        metrics: &Metrics,
        outgoing: &mut Outgoing,
        limit: Duration,
    ) -> Option<bool> {
        let url = &wire.config.metrics_endpoint;
        match send(wire, outgoing, limit) {
            Attempt::Answered(_) => {
                tracing::trace!(target: "agentops", %url, generation = outgoing.generation, "metrics delivered");
                Some(true)
            }
            Attempt::Again => {
                outgoing.not_before = Instant::now();
                None
            }
            Attempt::Retryable { why, retry_after } => {
                match outgoing.retry.next(&wire.config.retry, retry_after) {
                    Some(pause) => {
                        tracing::debug!(target: "agentops", %url, %why, ?pause, "retrying the metrics export");
                        outgoing.not_before = Instant::now() + pause;
                        None
                    }
                    None => {
                        metrics.warn_or_debug(url, &why);
                        Some(false)
                    }
                }
            }
            Attempt::TooLarge => {
                metrics.warn_or_debug(url, &"HTTP 413: larger than the backend accepts");
                Some(false)
            }
            Attempt::Failed(BackendError::Refused {
                status: status @ (404 | 405 | 415),
                ..
            }) => {
                lock(&metrics.mailbox.state).unsupported = true;
                tracing::warn!(target: "agentops", %url, status, "the backend does not accept OTLP metrics (an older server?): metrics are no longer exported by this client; events are not affected");
                Some(false)
            }
            Attempt::Failed(err) => {
                metrics.warn_or_debug(url, &err);
                Some(false)
            }
        }
    }
}

impl Outgoing {
    fn new(wire: &Wire, export: Export) -> Self {
        let config = &wire.config;
        let mut request =
            wire.transport
                .request(config.metrics_endpoint.clone(), PROTOBUF, &export.body);
        match config.protocol {
            Protocol::V2 => {
                if let Some(key) = config.api_key {
                    request.set_header(agentops_core::v2::API_KEY_HEADER, key.to_string());
                }
                if let Some(parent) = config.parent_key {
                    request.set_header(agentops_core::v2::PARENT_KEY_HEADER, parent.to_string());
                }
            }
            Protocol::Otlp => {
                for (name, value) in &config.otlp.metrics_headers {
                    request.set_header(name.clone(), value.clone());
                }
            }
        }
        Self {
            generation: export.generation,
            request,
            retry: Retry::default(),
            not_before: Instant::now(),
            reauthorized: false,
        }
    }
}

/// One HTTP attempt at an export, with the spans' credentials.
fn send(wire: &Wire, outgoing: &mut Outgoing, limit: Duration) -> Attempt {
    if wire.config.protocol == Protocol::V2 {
        return v2::classify(CALL, wire.send(CALL, &outgoing.request, limit));
    }
    let token = match otlp::token(wire, limit) {
        Ok(token) => token,
        Err(attempt) => return attempt,
    };
    let request = match &token {
        Some(token) => outgoing
            .request
            .clone()
            .header("Authorization", format!("Bearer {token}")),
        None => outgoing.request.clone(),
    };
    match wire.send(CALL, &request, limit) {
        transport::Answer::Unauthorized(message) => match token {
            Some(stale) if !outgoing.reauthorized => {
                outgoing.reauthorized = true;
                wire.otlp.invalidate(&stale);
                Attempt::Again
            }
            _ => Attempt::Failed(BackendError::Refused {
                call: CALL,
                status: 401,
                message,
            }),
        },
        answer => v2::classify(CALL, answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_data_reads_the_fields_metrics_use_and_ignores_the_rest() {
        let data: LlmData<'_> = serde_json::from_str(
            r#"{"model":"gpt-4o","prompt_tokens":7,"completion_tokens":null,"cost":0.5,"prompt":"x"}"#,
        )
        .unwrap();
        assert_eq!(data.model.as_deref(), Some("gpt-4o"));
        assert_eq!(data.prompt_tokens, Some(7));
        assert_eq!(data.completion_tokens, None);
        assert_eq!(data.cost, Some(0.5));
    }

    #[test]
    fn buckets_increase_strictly() {
        for buckets in [
            &TOKEN_BUCKETS[..],
            &DURATION_BUCKETS[..],
            &BATCH_BUCKETS[..],
        ] {
            assert!(
                buckets.windows(2).all(|pair| pair[0] < pair[1]),
                "{buckets:?}"
            );
        }
    }
}
