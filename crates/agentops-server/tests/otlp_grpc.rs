//! OTLP/gRPC over real loopback HTTP/2 with opentelemetry-proto's generated tonic clients:
//! traces, logs and metrics stored as over HTTP, gzip, partial success, and the refusals
//! (no credentials, a bad key, an oversized message).

mod common;

use common::{TestServer, API_KEY};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

const T0: u64 = 1_795_341_600_000_000_000;

fn server() -> TestServer {
    TestServer::start_in(common::temp_dir(), |c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().unwrap());
    })
}

fn spans(trace: [u8; 16], ids: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: ids
                    .iter()
                    .map(|id| Span {
                        trace_id: trace.to_vec(),
                        span_id: vec![*id; 8],
                        name: format!("step {id}"),
                        start_time_unix_nano: T0,
                        end_time_unix_nano: T0 + 1_000_000,
                        ..Span::default()
                    })
                    .collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-agentops-api-key", key.parse().unwrap());
    request
}

#[test]
fn traces_logs_and_metrics_over_grpc_are_stored_and_refusals_are_clear() {
    let server = server();
    let endpoint = format!("http://{}", server.server().grpc_addr().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut traces = TraceServiceClient::connect(endpoint.clone())
            .await
            .unwrap()
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let trace = [3; 16];
        // one span with a zero id is refused, the other two stored
        let answer = traces
            .export(with_key(spans(trace, &[1, 2, 0]), API_KEY))
            .await
            .unwrap()
            .into_inner();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 1);
        assert!(partial.error_message.contains("span id"), "{partial:?}");

        // Authorization: Bearer <api key> works too
        let mut bearer = tonic::Request::new(spans(trace, &[4]));
        bearer.metadata_mut().insert(
            "authorization",
            format!("Bearer {API_KEY}").parse().unwrap(),
        );
        traces.export(bearer).await.unwrap();

        let no_key = traces
            .export(tonic::Request::new(spans(trace, &[5])))
            .await
            .unwrap_err();
        assert_eq!(no_key.code(), tonic::Code::Unauthenticated);
        let bad_key = traces
            .export(with_key(
                spans(trace, &[6]),
                "0e0f6a1e-8b2d-4e7f-9a1c-5d6e7f8a9b0c",
            ))
            .await
            .unwrap_err();
        assert_eq!(bad_key.code(), tonic::Code::Unauthenticated);
        // larger than the server's limit (the test servers read 256 KiB at most)
        let mut huge = spans(trace, &[7]);
        huge.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(common::MAX_BODY + 1);
        let too_large = traces.export(with_key(huge, API_KEY)).await.unwrap_err();
        assert_eq!(too_large.code(), tonic::Code::ResourceExhausted);

        let mut logs = LogsServiceClient::connect(endpoint.clone()).await.unwrap();
        logs.export(with_key(
            ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            time_unix_nano: T0,
                            trace_id: trace.to_vec(),
                            span_id: vec![1; 8],
                            severity_text: "INFO".into(),
                            ..LogRecord::default()
                        }],
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            },
            API_KEY,
        ))
        .await
        .unwrap();

        let mut metrics = MetricsServiceClient::connect(endpoint).await.unwrap();
        metrics
            .export(with_key(
                ExportMetricsServiceRequest {
                    resource_metrics: vec![ResourceMetrics {
                        scope_metrics: vec![ScopeMetrics {
                            metrics: vec![Metric {
                                name: "queue.depth".into(),
                                data: Some(metric::Data::Gauge(Gauge {
                                    data_points: vec![NumberDataPoint {
                                        time_unix_nano: T0,
                                        value: Some(number_data_point::Value::AsDouble(4.0)),
                                        ..NumberDataPoint::default()
                                    }],
                                })),
                                ..Metric::default()
                            }],
                            ..ScopeMetrics::default()
                        }],
                        ..ResourceMetrics::default()
                    }],
                },
                API_KEY,
            ))
            .await
            .unwrap();
    });

    let session = server.session(&uuid::Uuid::from_bytes([3; 16]).to_string());
    let mut names: Vec<&str> = session["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["step 1", "step 2", "step 4"]);
    assert_eq!(session["log_records"][0]["event_id"], "0101010101010101");
    let gauge = server
        .get(
            "/api/v1/metrics?name=queue.depth&from=2026-11-22T10:00:00Z&to=2026-11-22T11:00:00Z",
            &[("X-Agentops-Api-Key", API_KEY)],
        )
        .json();
    assert_eq!(gauge["series"][0]["points"][0]["value"], 4.0);
}

#[test]
fn a_taken_grpc_address_stops_the_start_only_when_it_was_asked_for() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = agentops_server::Config::new(common::temp_dir());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc_listen = Some(addr);
    let refused = runtime.block_on(agentops_server::Server::start(config.clone()));
    assert!(refused.unwrap_err().to_string().contains(&addr.to_string()));
    config.grpc_required = false;
    let started = runtime
        .block_on(agentops_server::Server::start(config))
        .unwrap();
    assert_eq!(started.grpc_addr(), None);
    runtime.block_on(started.shutdown()).unwrap();
}
