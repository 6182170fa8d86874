//! The client's OpenTelemetry metrics: exported as OTLP/HTTP protobuf to `/v1/metrics`, decoded
//! here with `opentelemetry-proto` (the OpenTelemetry Collector's own types). LLM metrics come
//! from the events delivered, event outcomes equal the sessions' `DeliveryCounts`, and metrics
//! never hold up a shutdown nor affect the delivery of events.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops::{Client, EndState, Event, Protocol, SessionOptions};
use agentops_core::pricing::{PriceTable, Usage};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};
use prost::Message as _;
use support::{config, eventually, FakeBackend, Recorded, Reply, API_KEY};

const METRICS: &str = "/v1/metrics";
const EVENTS: &str = "/v2/create_events";

fn decode(request: &Recorded) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest::decode(&request.raw[..]).expect("an OTLP metrics export")
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn metric<'a>(export: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Metric> {
    export
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .find(|metric| metric.name == name)
}

/// A counter or gauge's points: attributes and value.
fn points(
    export: &ExportMetricsServiceRequest,
    name: &str,
) -> Vec<(BTreeMap<String, String>, f64)> {
    let Some(metric) = metric(export, name) else {
        return Vec::new();
    };
    let points = match &metric.data {
        Some(metric::Data::Sum(sum)) => {
            assert!(sum.is_monotonic, "{name} is a monotonic counter");
            assert_eq!(sum.aggregation_temporality, 2, "{name} is cumulative");
            &sum.data_points
        }
        Some(metric::Data::Gauge(gauge)) => &gauge.data_points,
        other => panic!("{name} is not a counter or gauge: {other:?}"),
    };
    points
        .iter()
        .map(|point| {
            let value = match point.value {
                Some(number_data_point::Value::AsInt(i)) => i as f64,
                Some(number_data_point::Value::AsDouble(f)) => f,
                None => f64::NAN,
            };
            (attributes(&point.attributes), value)
        })
        .collect()
}

/// A histogram's points: attributes, count and sum.
fn histogram(
    export: &ExportMetricsServiceRequest,
    name: &str,
) -> Vec<(BTreeMap<String, String>, u64, f64)> {
    let Some(metric) = metric(export, name) else {
        return Vec::new();
    };
    let Some(metric::Data::Histogram(histogram)) = &metric.data else {
        panic!("{name} is not a histogram: {:?}", metric.data);
    };
    assert_eq!(histogram.aggregation_temporality, 2, "{name} is cumulative");
    histogram
        .data_points
        .iter()
        .map(|point| {
            (
                attributes(&point.attributes),
                point.count,
                point.sum.unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// The value of the point whose attributes include all of `wanted`.
fn value_where(points: &[(BTreeMap<String, String>, f64)], wanted: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = points
        .iter()
        .filter(|(attrs, _)| {
            wanted
                .iter()
                .all(|(k, v)| attrs.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, value)| *value)
        .collect();
    assert!(
        matching.len() <= 1,
        "several points match {wanted:?}: {points:?}"
    );
    matching.first().copied()
}

fn outcomes(export: &ExportMetricsServiceRequest) -> BTreeMap<String, u64> {
    points(export, "agentops.events")
        .into_iter()
        .map(|(attrs, value)| (attrs["agentops.outcome"].clone(), value as u64))
        .collect()
}

#[test]
fn llm_and_event_metrics_are_exported_and_match_the_delivery_counts() {
    let backend = FakeBackend::start();
    // The first batch of events is refused for good: its events fail.
    let refused = Arc::new(AtomicUsize::new(0));
    let seen = refused.clone();
    backend.script(move |request| {
        (request.path == EVENTS && seen.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| Reply::status(400))
    });
    let client = Client::new(
        config(&backend)
            .metrics_interval(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.record(Event::action("doomed")).unwrap();
    session.record(Event::action("doomed")).unwrap();
    let after_refusal = session.flush();
    assert_eq!(after_refusal.failed, 2, "{after_refusal:?}");

    session
        .record(Event::llm("gpt-4o-mini").tokens(7, 1).cost(0.01))
        .unwrap();
    session
        .record(
            Event::llm("gpt-4o-mini")
                .tokens(10, 5)
                .cached_tokens(3)
                .reasoning_tokens(2)
                .cost(0.02),
        )
        .unwrap();
    session
        .record(
            Event::llm("gpt-4o-2024-08-06")
                .tokens(1000, 100)
                .attribute("gen_ai.provider.name", "openai"),
        )
        .unwrap();
    session.record(Event::tool("search")).unwrap();
    // Still open when the session ends: dropped.
    let unfinished = session.start_event(Event::action("unfinished")).unwrap();
    // A periodic export has happened before the shutdown's.
    eventually(Duration::from_secs(10), || {
        backend
            .requests_to(METRICS)
            .iter()
            .any(|r| metric(&decode(r), "agentops.llm.calls").is_some())
    });
    let summary = session.end(EndState::Success, "").unwrap();
    drop(unfinished);
    let counts = summary.delivery;
    assert_eq!(
        (
            counts.recorded,
            counts.delivered,
            counts.failed,
            counts.dropped
        ),
        (7, 4, 2, 1),
        "{counts:?}"
    );
    assert!(counts.is_balanced());
    client.shutdown();

    let exports = backend.requests_to(METRICS);
    assert!(
        exports.len() >= 2,
        "periodic and final exports: {}",
        exports.len()
    );
    for export in &exports {
        assert_eq!(export.status, 200);
        assert_eq!(export.header("x-agentops-api-key"), Some(API_KEY));
        assert_eq!(
            export.header("content-type"),
            Some("application/x-protobuf")
        );
        assert_eq!(export.header("content-encoding"), Some("gzip"));
    }
    // Cumulative sums never go down from one export to the next.
    let mut previous = BTreeMap::new();
    for export in &exports {
        let now = outcomes(&decode(export));
        for (outcome, value) in &previous {
            assert!(
                now.get(outcome).copied().unwrap_or(0) >= *value,
                "{outcome} went down"
            );
        }
        previous = now;
    }

    let last = decode(exports.last().unwrap());
    let resource = attributes(
        &last.resource_metrics[0]
            .resource
            .as_ref()
            .expect("a resource")
            .attributes,
    );
    assert_eq!(resource["agentops.sdk.language"], "rust");
    assert_eq!(
        last.resource_metrics[0].scope_metrics[0]
            .scope
            .as_ref()
            .map(|s| s.name.as_str()),
        Some("agentops")
    );

    // Event outcomes: exactly the session's DeliveryCounts.
    let outcomes = outcomes(&last);
    assert_eq!(outcomes["recorded"], counts.recorded);
    assert_eq!(outcomes["delivered"], counts.delivered);
    assert_eq!(outcomes["failed"], counts.failed);
    assert_eq!(outcomes["dropped"], counts.dropped);
    assert_eq!(outcomes["sampled_out"], counts.sampled_out);

    let mini = ("gen_ai.request.model", "gpt-4o-mini");
    let gpt4o = ("gen_ai.request.model", "gpt-4o-2024-08-06");
    let calls = points(&last, "agentops.llm.calls");
    assert_eq!(value_where(&calls, &[mini]), Some(2.0), "{calls:?}");
    assert_eq!(
        value_where(&calls, &[gpt4o, ("gen_ai.provider.name", "openai")]),
        Some(1.0),
        "{calls:?}"
    );
    assert_eq!(calls.len(), 2, "only LLM events are calls: {calls:?}");

    let tokens = points(&last, "agentops.llm.tokens");
    for (model, token_type, expected) in [
        (mini, "input", 17.0),
        (mini, "output", 6.0),
        (mini, "cached", 3.0),
        (mini, "reasoning", 2.0),
        (gpt4o, "input", 1000.0),
        (gpt4o, "output", 100.0),
    ] {
        assert_eq!(
            value_where(&tokens, &[model, ("gen_ai.token.type", token_type)]),
            Some(expected),
            "{model:?} {token_type}: {tokens:?}"
        );
    }

    let cost = points(&last, "agentops.llm.cost");
    let given = value_where(&cost, &[mini]).expect("the given cost");
    assert!((given - 0.03).abs() < 1e-9, "{given}");
    let priced = PriceTable::builtin()
        .cost(
            "gpt-4o-2024-08-06",
            &Usage {
                input_tokens: 1000,
                output_tokens: 100,
                cached_tokens: 0,
            },
        )
        .expect("a built-in price");
    let computed = value_where(&cost, &[gpt4o]).expect("the cost from the price table");
    assert!((computed - priced).abs() < 1e-12, "{computed} != {priced}");

    let usage = histogram(&last, "gen_ai.client.token.usage");
    let usage_of = |model: (&str, &str), token_type: &str| {
        usage
            .iter()
            .find(|(attrs, _, _)| {
                attrs.get(model.0).map(String::as_str) == Some(model.1)
                    && attrs.get("gen_ai.token.type").map(String::as_str) == Some(token_type)
                    && attrs.get("gen_ai.operation.name").map(String::as_str) == Some("chat")
            })
            .map(|(_, count, sum)| (*count, *sum))
    };
    assert_eq!(usage_of(mini, "input"), Some((2, 17.0)), "{usage:?}");
    assert_eq!(usage_of(mini, "output"), Some((2, 6.0)), "{usage:?}");
    assert!(
        usage
            .iter()
            .all(|(attrs, _, _)| ["input", "output"].contains(&attrs["gen_ai.token.type"].as_str())),
        "the GenAI histogram has input and output only: {usage:?}"
    );
    assert_eq!(
        metric(&last, "gen_ai.client.token.usage").unwrap().unit,
        "{token}"
    );

    let duration = histogram(&last, "gen_ai.client.operation.duration");
    let mini_calls: u64 = duration
        .iter()
        .filter(|(attrs, _, _)| attrs.get(mini.0).map(String::as_str) == Some(mini.1))
        .map(|(_, count, _)| count)
        .sum();
    assert_eq!(mini_calls, 2, "{duration:?}");
    assert_eq!(
        metric(&last, "gen_ai.client.operation.duration")
            .unwrap()
            .unit,
        "s"
    );

    let exports_timed = histogram(&last, "agentops.export.duration");
    let timed = |call: &str, outcome: &str| {
        exports_timed
            .iter()
            .filter(|(attrs, _, _)| {
                attrs["agentops.call"] == call && attrs["agentops.outcome"] == outcome
            })
            .map(|(_, count, _)| *count)
            .sum::<u64>()
    };
    assert_eq!(timed("create_events", "rejected"), 1, "{exports_timed:?}");
    assert!(timed("create_events", "success") >= 1, "{exports_timed:?}");
    assert_eq!(timed("create_session", "success"), 1, "{exports_timed:?}");
    assert!(timed("metrics", "success") >= 1, "{exports_timed:?}");

    let batches = histogram(&last, "agentops.export.batch.size");
    let settled = |outcome: &str| {
        batches
            .iter()
            .find(|(attrs, _, _)| attrs["agentops.outcome"] == outcome)
            .map(|(_, count, sum)| (*count, *sum))
    };
    assert_eq!(settled("failed"), Some((1, 2.0)), "{batches:?}");
    let (_, delivered_events) = settled("delivered").expect("delivered batches");
    assert_eq!(delivered_events, counts.delivered as f64);

    let depth = points(&last, "agentops.queue.depth");
    assert_eq!(depth.len(), 1, "{depth:?}");
    assert_eq!(depth[0].1, 0.0, "nothing queued after shutdown");
}

#[test]
fn turned_off_no_metrics_are_sent() {
    let backend = FakeBackend::start();
    let client = Client::new(
        config(&backend)
            .metrics(false)
            .metrics_interval(Duration::from_millis(100))
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session
        .record(Event::llm("gpt-4o-mini").tokens(1, 1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1);
    client.shutdown();
    assert_eq!(backend.accepted_events().len(), 1);
    assert!(
        backend.requests_to(METRICS).is_empty(),
        "{:?}",
        backend.requests_to(METRICS)
    );
}

fn assert_shutdown_bounded(backend: &FakeBackend) {
    let timeout = Duration::from_secs(1);
    let client = Client::new(
        config(backend)
            .shutdown_timeout(timeout)
            .metrics_interval(Duration::from_millis(100))
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session
        .record(Event::llm("gpt-4o-mini").tokens(3, 4))
        .unwrap();
    // Periodic exports pile up against the backend meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let summaries = client.shutdown();
    let took = started.elapsed();
    assert_eq!(summaries.len(), 1);
    assert!(
        took <= timeout + Duration::from_secs(1),
        "shutdown took {took:?} with a {timeout:?} shutdown timeout"
    );
}

#[test]
fn a_backend_that_is_down_does_not_hold_up_the_shutdown() {
    assert_shutdown_bounded(&FakeBackend::reserve());
}

#[test]
fn a_backend_that_never_answers_does_not_hold_up_the_shutdown() {
    let backend = FakeBackend::start();
    backend.script(|_| Some(Reply::status(200).delay(Duration::from_secs(3600))));
    assert_shutdown_bounded(&backend);
}

/// Counts the `warn` events of target `agentops` whose message mentions OTLP metrics.
struct CountWarnings(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let metadata = event.metadata();
        if *metadata.level() == tracing::Level::WARN && metadata.target() == "agentops" {
            let mut message = Message(String::new());
            event.record(&mut message);
            if message.0.contains("OTLP metrics") {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn warnings() -> Arc<AtomicUsize> {
    use std::sync::OnceLock;
    use tracing_subscriber::layer::SubscriberExt as _;
    static COUNT: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    COUNT
        .get_or_init(|| {
            let count = Arc::new(AtomicUsize::new(0));
            let subscriber = tracing_subscriber::registry().with(CountWarnings(count.clone()));
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            count
        })
        .clone()
}

#[test]
fn an_older_server_without_a_metrics_endpoint_is_told_once_and_events_go_on() {
    let warned = warnings();
    for status in [404, 415] {
        let backend = FakeBackend::start();
        backend.script(move |request| (request.path == METRICS).then(|| Reply::status(status)));
        let before = warned.load(Ordering::SeqCst);
        let client = Client::new(
            config(&backend)
                .metrics_interval(Duration::from_millis(100))
                .build()
                .unwrap(),
        )
        .unwrap();
        let session = client.start_session(SessionOptions::default()).unwrap();
        for _ in 0..5 {
            session
                .record(Event::llm("gpt-4o-mini").tokens(2, 3))
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        let summary = session.end(EndState::Success, "").unwrap();
        client.shutdown();
        assert_eq!(summary.delivery.delivered, 5, "HTTP {status}: {summary:?}");
        assert!(
            summary.backend_error.is_none(),
            "HTTP {status}: {summary:?}"
        );
        assert_eq!(backend.accepted_events().len(), 5);
        assert_eq!(
            backend.requests_to(METRICS).len(),
            1,
            "HTTP {status}: asked once, not again every interval nor at shutdown"
        );
        assert_eq!(
            warned.load(Ordering::SeqCst) - before,
            1,
            "HTTP {status}: logged once"
        );
    }
}

#[test]
fn over_otlp_metrics_go_with_the_spans_credentials() {
    let backend = FakeBackend::start();
    let client = Client::new(
        agentops::Config::builder()
            .ignore_env()
            .protocol(Protocol::Otlp)
            .api_key(API_KEY)
            .endpoint(backend.endpoint())
            .max_wait_time(Duration::from_millis(50))
            .otlp_header("x-team", "agents")
            .build()
            .unwrap(),
    )
    .unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session
        .record(Event::llm("gpt-4o-mini").tokens(4, 2))
        .unwrap();
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1);
    client.shutdown();
    let exports = backend.requests_to(METRICS);
    assert_eq!(
        exports.len(),
        1,
        "the shutdown's export (the interval is 10 s)"
    );
    let export = &exports[0];
    assert_eq!(export.header("authorization"), Some("Bearer otlp-token-1"));
    assert_eq!(export.header("x-team"), Some("agents"));
    assert!(export.header("x-agentops-api-key").is_none());
    let decoded = decode(export);
    let tokens = points(&decoded, "agentops.llm.tokens");
    assert_eq!(
        value_where(
            &tokens,
            &[
                ("gen_ai.request.model", "gpt-4o-mini"),
                ("gen_ai.token.type", "output")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(outcomes(&decoded)["delivered"], 1);
    assert_eq!(
        backend.requests_to("/v3/auth/token").len(),
        1,
        "one token for both"
    );
}
