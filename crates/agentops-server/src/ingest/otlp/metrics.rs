//! OTLP/HTTP metrics: `POST /v1/metrics` (protobuf or JSON, optionally gzip), with the same
//! credentials, limits and error rules as `/v1/traces`.
//!
//! Every data point of a sum, gauge, histogram, exponential histogram or summary is stored in
//! the sender's project with its metric's name, unit and temporality (delta or cumulative), its
//! attributes (plus the resource's `service.name`), and its value or its count, sum, min, max and
//! buckets. A point sent again (an exporter's retry) is stored once. Points without a time are
//! refused in `partial_success`. `/api/v1/metrics` reads them back ([`crate::api::metrics`]).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};
use prost::Message;
use serde_json::{json, Map, Value};

use super::values::{key_values, service_name};
use crate::caller::TraceSender;
use crate::error::ApiError;
use crate::ingest::body::{BodyFormat, RawBody};
use crate::mapping::span::format_ns;
use crate::state::AppState;
use crate::store::{MetricPoint, Write};

/// `POST /v1/metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    sender: TraceSender,
    body: RawBody,
) -> Result<Response, ApiError> {
    let format = body.format()?;
    let TraceSender::Project(claims) = sender else {
        return Err(ApiError::Unauthorized(
            "missing credentials: send X-Agentops-Api-Key or Authorization: Bearer".into(),
        ));
    };
    let request = decode(format, &body.bytes)?;
    let rejected = store_points(&state, &claims, &request).await?;
    Ok(export_response(format, rejected))
}

/// Commits a project's data points; why the others were refused. Shared by OTLP/HTTP and
/// OTLP/gRPC.
pub(crate) async fn store_points(
    state: &AppState,
    claims: &crate::auth::Claims,
    request: &ExportMetricsServiceRequest,
) -> Result<Vec<String>, ApiError> {
    let (points, rejected) = points_of(request);
    if !points.is_empty() {
        state
            .writer()
            .submit(Write::IngestMetrics {
                project_id: claims.project_id.clone(),
                points,
            })
            .await?;
    }
    Ok(rejected)
}

/// The request in either encoding (OTLP JSON: camelCase fields, integers as numbers or strings,
/// enums as numbers).
pub fn decode(format: BodyFormat, bytes: &[u8]) -> Result<ExportMetricsServiceRequest, ApiError> {
    match format {
        BodyFormat::Protobuf => ExportMetricsServiceRequest::decode(bytes)
            .map_err(|e| ApiError::bad(format!("invalid OTLP protobuf: {e}"))),
        BodyFormat::Json => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad(format!("invalid OTLP JSON metrics: {e}"))),
    }
}

/// The request's data points as stored, and why the others were refused.
pub fn points_of(request: &ExportMetricsServiceRequest) -> (Vec<MetricPoint>, Vec<String>) {
    let mut points = Vec::new();
    let mut rejected = Vec::new();
    for resource in &request.resource_metrics {
        let service = service_name(
            resource
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default(),
        );
        for scope in &resource.scope_metrics {
            for m in &scope.metrics {
                if m.name.trim().is_empty() || m.name.len() > MAX_NAME_BYTES {
                    rejected.push(format!(
                        "a metric name has 1 to {MAX_NAME_BYTES} bytes, not {}",
                        m.name.len()
                    ));
                    continue;
                }
                for point in metric_points(m, &service) {
                    match point {
                        Ok(p) => points.push(p),
                        Err(why) => rejected.push(why),
                    }
                }
            }
        }
    }
    (points, rejected)
}

/// The longest metric name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

fn temporality(value: i32) -> Option<String> {
    match value {
        1 => Some("delta".into()),
        2 => Some("cumulative".into()),
        _ => None,
    }
}

fn attributes(kvs: &[KeyValue], service: &str) -> Value {
    let mut map: Map<String, Value> = key_values(kvs).into_iter().collect();
    if !service.is_empty() {
        map.entry("service.name")
            .or_insert_with(|| Value::String(service.to_owned()));
    }
    Value::Object(map)
}

/// A point's base: its metric, attributes and times; `Err` when it has no time.
fn base(
    m: &Metric,
    kind: &str,
    temporality_value: i32,
    monotonic: Option<bool>,
    kvs: &[KeyValue],
    service: &str,
    (start_ns, time_ns): (u64, u64),
) -> Result<MetricPoint, String> {
    let time = (time_ns != 0)
        .then(|| format_ns(time_ns))
        .flatten()
        .ok_or_else(|| format!("metric {:?}: a data point without a valid time", m.name))?;
    Ok(MetricPoint {
        name: m.name.clone(),
        kind: kind.to_owned(),
        unit: Some(m.unit.clone()).filter(|u| !u.is_empty()),
        temporality: temporality(temporality_value),
        monotonic,
        attributes: attributes(kvs, service),
        start_time: (start_ns != 0).then(|| format_ns(start_ns)).flatten(),
        time,
        ..MetricPoint::default()
    })
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

fn metric_points(m: &Metric, service: &str) -> Vec<Result<MetricPoint, String>> {
    let number = |p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| match p.value {
        Some(number_data_point::Value::AsDouble(d)) => finite(d),
        Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
        None => None,
    };
    match &m.data {
        Some(metric::Data::Sum(sum)) => sum
            .data_points
            .iter()
            .map(|p| {
                let mut point = base(
                    m,
                    "sum",
                    sum.aggregation_temporality,
                    Some(sum.is_monotonic),
                    &p.attributes,
                    service,
                    (p.start_time_unix_nano, p.time_unix_nano),
                )?;
                point.value = number(p);
                Ok(point)
            })
            .collect(),
        Some(metric::Data::Gauge(gauge)) => gauge
            .data_points
            .iter()
            .map(|p| {
                let mut point = base(
                    m,
                    "gauge",
                    0,
                    None,
                    &p.attributes,
                    service,
                    (p.start_time_unix_nano, p.time_unix_nano),
                )?;
                point.value = number(p);
                Ok(point)
            })
            .collect(),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                let mut point = base(
                    m,
                    "histogram",
                    h.aggregation_temporality,
                    None,
                    &p.attributes,
                    service,
                    (p.start_time_unix_nano, p.time_unix_nano),
                )?;
                point.count = Some(p.count);
                point.sum = p.sum.and_then(finite);
                point.min = p.min.and_then(finite);
                point.max = p.max.and_then(finite);
                point.buckets = Some(json!({
                    "bounds": p.explicit_bounds.iter().map(|b| finite(*b)).collect::<Vec<_>>(),
                    "counts": p.bucket_counts,
                }));
                Ok(point)
            })
            .collect(),
        Some(metric::Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                let mut point = base(
                    m,
                    "exponential_histogram",
                    h.aggregation_temporality,
                    None,
                    &p.attributes,
                    service,
                    (p.start_time_unix_nano, p.time_unix_nano),
                )?;
                point.count = Some(p.count);
                point.sum = p.sum.and_then(finite);
                point.min = p.min.and_then(finite);
                point.max = p.max.and_then(finite);
                let side = |b: &Option<
                    opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets,
                >| {
                    b.as_ref()
                        .map(|b| json!({"offset": b.offset, "counts": b.bucket_counts}))
                };
                point.buckets = Some(json!({
                    "scale": p.scale,
                    "zero_count": p.zero_count,
                    "positive": side(&p.positive),
                    "negative": side(&p.negative),
                }));
                Ok(point)
            })
            .collect(),
        Some(metric::Data::Summary(s)) => s
            .data_points
            .iter()
            .map(|p| {
                let mut point = base(
                    m,
                    "summary",
                    0,
                    None,
                    &p.attributes,
                    service,
                    (p.start_time_unix_nano, p.time_unix_nano),
                )?;
                point.count = Some(p.count);
                point.sum = finite(p.sum);
                point.buckets = Some(json!({
                    "quantiles": p.quantile_values.iter()
                        .map(|q| json!({"quantile": finite(q.quantile), "value": finite(q.value)}))
                        .collect::<Vec<_>>(),
                }));
                Ok(point)
            })
            .collect(),
        None => vec![Err(format!("metric {:?}: no data", m.name))],
    }
}

fn export_response(format: BodyFormat, reasons: Vec<String>) -> Response {
    let rejected = i64::try_from(reasons.len()).unwrap_or(i64::MAX);
    let message = reasons.into_iter().take(5).collect::<Vec<_>>().join("; ");
    match format {
        BodyFormat::Protobuf => {
            let response = ExportMetricsServiceResponse {
                partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message: message,
                }),
            };
            (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                )],
                response.encode_to_vec(),
            )
                .into_response()
        }
        BodyFormat::Json => {
            let body = if rejected > 0 {
                json!({"partialSuccess": {"rejectedDataPoints": rejected.to_string(), "errorMessage": message}})
            } else {
                json!({})
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_points_of_every_kind() {
        let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "planner"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "gen_ai.client.token.usage", "unit": "{token}", "sum": {
                "aggregationTemporality": 1, "isMonotonic": true,
                "dataPoints": [{"timeUnixNano": "1795311032000000000", "asInt": "31",
                    "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}}]}]}},
            {"name": "queue", "gauge": {"dataPoints": [{"timeUnixNano": 1795311032000000000u64, "asDouble": 2.5}]}},
            {"name": "latency", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [{
                "startTimeUnixNano": "1795311031000000000", "timeUnixNano": "1795311032000000000",
                "count": "3", "sum": 0.6, "bucketCounts": ["1", "2"], "explicitBounds": [0.1]}]}},
            {"name": "exp", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [{
                "timeUnixNano": "1795311032000000000", "count": "2", "scale": 3,
                "positive": {"offset": 1, "bucketCounts": ["2"]}}]}},
            {"name": "untimed", "gauge": {"dataPoints": [{"asDouble": 1.0}]}}
        ]}]}]});
        let request = decode(BodyFormat::Json, body.to_string().as_bytes()).unwrap();
        let (points, rejected) = points_of(&request);
        assert_eq!(points.len(), 4);
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        let tokens = &points[0];
        assert_eq!(
            (
                tokens.kind.as_str(),
                tokens.value,
                tokens.temporality.as_deref()
            ),
            ("sum", Some(31.0), Some("delta"))
        );
        assert_eq!(tokens.attributes["service.name"], "planner");
        assert_eq!(tokens.attributes["gen_ai.request.model"], "gpt-4o-mini");
        assert_eq!(points[1].value, Some(2.5));
        assert_eq!((points[2].count, points[2].sum), (Some(3), Some(0.6)));
        assert_eq!(points[2].buckets.as_ref().unwrap()["counts"], json!([1, 2]));
        assert_eq!(points[3].buckets.as_ref().unwrap()["scale"], 3);
        assert!(decode(BodyFormat::Json, b"{\"resourceMetrics\": 3}").is_err());
        assert!(decode(BodyFormat::Protobuf, b"\xff\xff").is_err());
    }
}
