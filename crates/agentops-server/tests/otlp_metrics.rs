//! OTLP metrics over real loopback HTTP: stored from protobuf and JSON, read back through
//! `/api/v1/metrics` (names, buckets, group_by, filters, cumulative increases), a retry stored
//! once, bad requests refused; and the Rust SDK's own metrics, exported to the server and read
//! back by model.

mod common;

use std::time::{Duration, Instant};

use agentops::{Client, Config, Event, SessionOptions};
use common::{TestServer, API_KEY};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use prost::Message;
use serde_json::{json, Value};

const KEY: (&str, &str) = ("X-Agentops-Api-Key", API_KEY);
const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");
/// 2026-11-22T10:00:00Z
const T0: u64 = 1_795_341_600_000_000_000;
const SECOND: u64 = 1_000_000_000;

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn token_sum(points: &[(u64, i64, &str)]) -> Metric {
    Metric {
        name: "tokens".into(),
        unit: "{token}".into(),
        data: Some(metric::Data::Sum(Sum {
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
            data_points: points
                .iter()
                .map(|(at, value, model)| NumberDataPoint {
                    attributes: vec![string("gen_ai.request.model", model)],
                    start_time_unix_nano: T0,
                    time_unix_nano: T0 + at * SECOND,
                    value: Some(number_data_point::Value::AsInt(*value)),
                    ..NumberDataPoint::default()
                })
                .collect(),
        })),
        ..Metric::default()
    }
}

fn request(metrics: Vec<Metric>) -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![string("service.name", "planner")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
    .encode_to_vec()
}

#[test]
fn metrics_are_stored_and_read_back_as_series() {
    let server = TestServer::start();
    let latency = Metric {
        name: "latency".into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            aggregation_temporality: AggregationTemporality::Delta as i32,
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0 + 30 * SECOND,
                count: 4,
                sum: Some(2.0),
                min: Some(0.1),
                max: Some(1.2),
                bucket_counts: vec![1, 3],
                explicit_bounds: vec![0.25],
                ..HistogramDataPoint::default()
            }],
        })),
        ..Metric::default()
    };
    let body = request(vec![
        token_sum(&[
            (10, 100, "gpt-4o"),
            (50, 160, "gpt-4o"),
            (70, 200, "gpt-4o"),
            (20, 7, "mini"),
        ]),
        latency,
    ]);
    for _ in 0..2 {
        // the second time is an exporter's retry: nothing stored twice
        let reply = server.post("/v1/metrics", &[KEY, PROTOBUF], &body);
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let names = server.get("/api/v1/metrics", &[KEY]).json();
    assert_eq!(
        names["metrics"],
        json!([
            {"name": "latency", "kind": "histogram", "unit": "s", "points": 1, "last_time": "2026-11-22T10:00:30.000000+00:00"},
            {"name": "tokens", "kind": "sum", "unit": "{token}", "points": 4, "last_time": "2026-11-22T10:01:10.000000+00:00"},
        ])
    );
    let range = "from=2026-11-22T10:00:00Z&to=2026-11-22T10:05:00Z";
    let tokens = server
        .get(
            &format!("/api/v1/metrics?name=tokens&{range}&bucket=1m&group_by=gen_ai.request.model"),
            &[KEY],
        )
        .json();
    assert_eq!(tokens["temporality"], "cumulative");
    assert_eq!(
        tokens["series"],
        json!([
            {"attributes": {"gen_ai.request.model": "gpt-4o"}, "points": [
                {"time": "2026-11-22T10:00:00.000000+00:00", "value": 160.0},
                {"time": "2026-11-22T10:01:00.000000+00:00", "value": 40.0}]},
            {"attributes": {"gen_ai.request.model": "mini"}, "points": [
                {"time": "2026-11-22T10:00:00.000000+00:00", "value": 7.0}]},
        ])
    );
    let filtered = server
        .get(
            &format!("/api/v1/metrics?name=tokens&{range}&bucket=5m&attr.gen_ai.request.model=mini&attr.service.name=planner"),
            &[KEY],
        )
        .json();
    assert_eq!(filtered["series"][0]["points"][0]["value"], 7.0);
    let latency = server
        .get(&format!("/api/v1/metrics?name=latency&{range}"), &[KEY])
        .json();
    assert_eq!(
        latency["series"][0]["points"][0],
        json!({"time": "2026-11-22T10:00:30.000000+00:00", "value": 0.5, "count": 4, "sum": 2.0, "min": 0.1, "max": 1.2})
    );

    // OTLP JSON too
    let json_body = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "queue", "gauge": {
        "dataPoints": [{"timeUnixNano": (T0 + SECOND).to_string(), "asDouble": 3.0}]}}]}]}]});
    assert_eq!(
        server.post_json("/v1/metrics", &[KEY], &json_body).status,
        200
    );
    let queue = server
        .get(&format!("/api/v1/metrics?name=queue&{range}"), &[KEY])
        .json();
    assert_eq!(queue["series"][0]["points"][0]["value"], 3.0);
}

#[test]
fn bad_metrics_requests_get_clear_errors() {
    let server = TestServer::start();
    server
        .post(
            "/v1/metrics",
            &[PROTOBUF],
            request(vec![token_sum(&[(1, 1, "m")])]),
        )
        .error(401);
    assert!(server
        .post("/v1/metrics", &[KEY, PROTOBUF], b"\xff\xff\xff")
        .error(400)
        .contains("protobuf"));
    assert!(server
        .post_json("/v1/metrics", &[KEY], &json!({"resourceMetrics": 7}))
        .error(400)
        .contains("metrics"));
    // a point without a time is refused, the others stored
    let mut untimed = token_sum(&[(1, 1, "m"), (2, 2, "m")]);
    if let Some(metric::Data::Sum(sum)) = &mut untimed.data {
        sum.data_points[0].time_unix_nano = 0;
    }
    let reply = server.post("/v1/metrics", &[KEY, PROTOBUF], request(vec![untimed]));
    let answer =
        opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse::decode(
            reply.body.as_slice(),
        )
        .unwrap();
    assert_eq!(answer.partial_success.unwrap().rejected_data_points, 1);
    for bad in [
        "bucket=0",
        "name=tokens&bucket=1s&from=2020-01-01T00:00:00Z",
        "colour=red",
    ] {
        server
            .get(&format!("/api/v1/metrics?{bad}"), &[KEY])
            .error(400);
    }
    server.get("/api/v1/metrics", &[]).error(401);
}

#[test]
fn the_rust_sdks_metrics_are_stored_and_read_back_by_model() {
    let server = TestServer::start();
    let config = Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(&server.url)
        .max_wait_time(Duration::from_millis(100))
        .metrics(true)
        .metrics_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let client = Client::new(config).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    for (model, tokens) in [
        ("gpt-4o-mini", 100),
        ("gpt-4o-mini", 50),
        ("claude-sonnet-4-5", 10),
    ] {
        session
            .record(
                Event::llm(model)
                    .prompt("q")
                    .completion("a")
                    .tokens(tokens, 5),
            )
            .unwrap();
    }
    session.end(agentops::EndState::Success, "done").unwrap();
    let tagged = client
        .start_session(SessionOptions::tags(["prod", "eu"]))
        .unwrap();
    tagged
        .record(
            Event::llm("gpt-4o-mini")
                .prompt("q")
                .completion("a")
                .tokens(7, 3),
        )
        .unwrap();
    tagged.end(agentops::EndState::Success, "done").unwrap();
    client.shutdown();

    let deadline = Instant::now() + Duration::from_secs(15);
    let by_model = loop {
        let answer: Value = server
            .get(
                "/api/v1/metrics?name=agentops.llm.calls&group_by=gen_ai.request.model",
                &[KEY],
            )
            .json();
        let calls = |model: &str| -> f64 {
            answer["series"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["attributes"]["gen_ai.request.model"] == model)
                .flat_map(|s| s["points"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| p["value"].as_f64())
                .sum()
        };
        let counts = (calls("gpt-4o-mini"), calls("claude-sonnet-4-5"));
        if counts == (3.0, 1.0) || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(by_model, (3.0, 1.0));
    // the tagged session's tokens, one series per tag; the untagged ones apart
    let by_tag: Value = server
        .get(
            "/api/v1/metrics?name=agentops.llm.tokens&group_by=session.tags",
            &[KEY],
        )
        .json();
    let tokens = |tag: Option<&str>| -> f64 {
        by_tag["series"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["attributes"].get("session.tags").and_then(Value::as_str) == tag)
            .flat_map(|s| s["points"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["value"].as_f64())
            .sum()
    };
    assert_eq!(
        (tokens(Some("prod")), tokens(Some("eu")), tokens(None)),
        (10.0, 10.0, 175.0)
    );
    let keys = by_tag["attribute_keys"].as_array().unwrap();
    assert!(keys.contains(&json!("session.tags")), "{keys:?}");
    let names = server.get("/api/v1/metrics", &[KEY]).json();
    let names: Vec<&str> = names["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    for expected in [
        "agentops.llm.tokens",
        "gen_ai.client.token.usage",
        "agentops.events",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
}
