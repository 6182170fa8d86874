//! OTLP/gRPC (`agentops serve --grpc-listen`, by default `127.0.0.1:4317`): the trace, logs
//! and metrics services of the OpenTelemetry collector protocol, on tonic and
//! opentelemetry-proto's generated services.
//!
//! They answer as OTLP/HTTP does, through the same code ([`crate::ingest::otlp`]): the same
//! credentials (metadata `x-agentops-api-key`, or `authorization: Bearer` with a token or an API
//! key), gzip, the same message size limit (`--max-body-bytes`), partial success for refused
//! items, and committed before the answer. Errors map onto gRPC codes: a malformed or oversized
//! message is `INTERNAL` (tonic's answer to a message it cannot decode, not retried) /
//! `RESOURCE_EXHAUSTED`, missing or bad credentials
//! `UNAUTHENTICATED`, a credential used beyond its scope `PERMISSION_DENIED`, a full queue, a full
//! disk or a shutdown `UNAVAILABLE` (which OTLP exporters retry), a storage failure `INTERNAL`.
//! Senders without credentials are refused (the HTTP endpoint's holding of such spans is for
//! agentops 0.4, which sends over HTTP).

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::auth::Claims;
use crate::error::ApiError;
use crate::ingest::otlp;
use crate::state::AppState;

/// The gRPC status of an ingest error.
pub fn status_of(error: ApiError) -> Status {
    let message = error.to_string();
    match error {
        ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_) => {
            Status::invalid_argument(message)
        }
        ApiError::PayloadTooLarge { .. } => Status::resource_exhausted(message),
        ApiError::Unauthorized(_) => Status::unauthenticated(message),
        ApiError::Forbidden(_) => Status::permission_denied(message),
        ApiError::NotFound(_) => Status::not_found(message),
        ApiError::RequestTimeout(_) => Status::deadline_exceeded(message),
        ApiError::Busy | ApiError::ShuttingDown | ApiError::StorageUnavailable(_) => {
            Status::unavailable(message)
        }
        ApiError::Internal(detail) => {
            tracing::error!(%detail, "OTLP/gRPC request failed");
            Status::internal(message)
        }
        ApiError::Http { .. } => Status::invalid_argument(message),
    }
}

/// The project of a request, from its metadata.
async fn claims_of<T>(state: &AppState, request: &Request<T>) -> Result<Claims, Status> {
    let headers = request.metadata().clone().into_headers();
    if !crate::caller::has_credentials(&headers) {
        return Err(Status::unauthenticated(
            "missing credentials: send x-agentops-api-key or authorization: Bearer metadata",
        ));
    }
    crate::caller::project_claims(&headers, state)
        .await
        .map_err(status_of)
}

/// The first few reasons, joined, and how many there were.
fn partial(reasons: &[String]) -> (i64, String) {
    (
        i64::try_from(reasons.len()).unwrap_or(i64::MAX),
        reasons
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// The three OTLP services over the server's state.
#[derive(Clone)]
pub struct Otlp {
    state: AppState,
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let claims = claims_of(&self.state, &request).await?;
        let request = request.into_inner();
        let prices = self.state.clone();
        let (mapped, rejected) = tokio::task::spawn_blocking(move || {
            crate::mapping::span::map_each(&otlp::spans_of(&request), prices.prices())
        })
        .await
        .map_err(|e| Status::internal(format!("mapping task failed: {e}")))?;
        let (count, reasons) = otlp::store_spans(&self.state, claims, mapped, rejected)
            .await
            .map_err(status_of)?;
        let (_, message) = partial(&reasons);
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(count).unwrap_or(i64::MAX),
                error_message: message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let claims = claims_of(&self.state, &request).await?;
        let records = otlp::logs::records_of(request.get_ref());
        let reasons = otlp::logs::store_records(&self.state, &claims, &records)
            .await
            .map_err(status_of)?;
        let (rejected, message) = partial(&reasons);
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let claims = claims_of(&self.state, &request).await?;
        let reasons = otlp::metrics::store_points(&self.state, &claims, request.get_ref())
            .await
            .map_err(status_of)?;
        let (rejected, message) = partial(&reasons);
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            }),
        }))
    }
}

/// A message over the size limit is `OUT_OF_RANGE` in tonic, a code OTLP exporters retry (for
/// ever, as it is always too large): answered `RESOURCE_EXHAUSTED` instead, as gRPC's own
/// servers do.
fn oversized_is_resource_exhausted(
    mut response: axum::http::Response<tonic::body::Body>,
) -> axum::http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    let too_large = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains("too%20large") || m.contains("too large"));
    if too_large {
        headers.insert(
            "grpc-status",
            axum::http::HeaderValue::from(tonic::Code::ResourceExhausted as i32),
        );
    }
    response
}

/// Serves OTLP/gRPC on `listener` until `stop` resolves; messages larger than `max_message`
/// bytes (after decompression) are refused.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    max_message: usize,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let otlp = Otlp { state };
    tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            oversized_is_resource_exhausted,
        ))
        .add_service(
            TraceServiceServer::new(otlp.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max_message),
        )
        .add_service(
            LogsServiceServer::new(otlp.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max_message),
        )
        .add_service(
            MetricsServiceServer::new(otlp)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max_message),
        )
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_codes_exporters_expect() {
        assert_eq!(
            status_of(ApiError::bad("x")).code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(status_of(ApiError::Busy).code(), tonic::Code::Unavailable);
        assert_eq!(
            status_of(ApiError::Unauthorized("no".into())).code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            status_of(ApiError::StorageUnavailable("disk".into())).code(),
            tonic::Code::Unavailable
        );
    }
}
