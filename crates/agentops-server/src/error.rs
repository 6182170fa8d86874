//! Errors and how they are answered over HTTP: always a JSON body `{"error": "message"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Why a request was refused. Each variant has one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed body, bad field value (400). The message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// Missing, unknown, expired or forged credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not cover what was asked (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing of that id in the caller's project (404).
    #[error("{0}")]
    NotFound(String),
    /// The body (after decompression) is larger than the limit (413).
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The client took too long to send the request body (408).
    #[error("request body not received within {0} seconds")]
    RequestTimeout(u64),
    /// A content type or encoding the endpoint does not read (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The write queue is full; retry later (503 with `Retry-After`).
    #[error("server busy: write queue full, retry later")]
    Busy,
    /// The server is shutting down (503).
    #[error("server shutting down")]
    ShuttingDown,
    /// The store cannot serve this now (disk full or failing, PostgreSQL down or not
    /// answering): nothing of a write was committed (503 with `Retry-After`); details are
    /// logged, not sent.
    #[error("storage full, failing or unreachable: the server could not serve this request, retry later")]
    StorageUnavailable(String),
    /// A storage failure (500); details are logged, not sent.
    #[error("internal error")]
    Internal(String),
    /// A refusal by the HTTP layer rather than by a handler (an extractor's rejection, a URI or
    /// request head over the limits of [`crate::http_errors`]), with its own status.
    #[error("{message}")]
    Http {
        /// The status to answer (4xx).
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy | ApiError::ShuttingDown | ApiError::StorageUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Http { status, .. } => *status,
        }
    }

    /// Shorthand for [`ApiError::BadRequest`].
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }
}

impl From<crate::auth::TokenError> for ApiError {
    fn from(err: crate::auth::TokenError) -> Self {
        ApiError::Unauthorized(err.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::Unwritable(m) | StoreError::Unavailable(m) | StoreError::TimedOut(m) => {
                ApiError::StorageUnavailable(m)
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::store::WriteError> for ApiError {
    fn from(err: crate::store::WriteError) -> Self {
        use crate::store::WriteError;
        match err {
            WriteError::NotFound(m) => ApiError::NotFound(m),
            WriteError::Invalid(m) => ApiError::BadRequest(m),
            WriteError::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::AdminError> for ApiError {
    fn from(err: crate::store::AdminError) -> Self {
        use crate::store::AdminError;
        match err {
            AdminError::NotFound(m) => ApiError::NotFound(m),
            AdminError::Forbidden(m) => ApiError::Forbidden(m),
            AdminError::Invalid(m) => ApiError::BadRequest(m),
            AdminError::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::QueryError> for ApiError {
    fn from(err: crate::store::QueryError) -> Self {
        use crate::store::QueryError;
        match err {
            QueryError::Invalid(m) => ApiError::BadRequest(m),
            QueryError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        } else if let ApiError::StorageUnavailable(detail) = &self {
            tracing::warn!(%detail, "request refused: storage full, failing or unreachable");
        } else {
            tracing::debug!(%status, error = %self, "request refused");
        }
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if matches!(self, ApiError::Busy | ApiError::ShuttingDown) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::StorageUnavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        }
        // For `GET /metrics` (agentops_busy_rejections_total).
        if let Some(busy) = crate::server_metrics::BusyRejection::of(&self) {
            response.extensions_mut().insert(busy);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_answers_503_with_retry_after_and_a_json_error() {
        let response = ApiError::Busy.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let too_large = ApiError::PayloadTooLarge { limit: 10 };
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(too_large.to_string(), "request body larger than 10 bytes");
        let full = ApiError::from(crate::store::StoreError::Unwritable(
            "database or disk is full".into(),
        ));
        let response = full.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "10");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn each_store_error_answers_its_status() {
        use crate::store::{AdminError, QueryError, StoreError, WriteError};
        let unavailable = || StoreError::Unavailable("down".into());
        let cases: Vec<(ApiError, StatusCode)> = vec![
            (
                WriteError::NotFound("s".into()).into(),
                StatusCode::NOT_FOUND,
            ),
            (
                WriteError::Invalid("v".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                WriteError::Store(unavailable()).into(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                AdminError::NotFound("k".into()).into(),
                StatusCode::NOT_FOUND,
            ),
            (
                AdminError::Forbidden("k".into()).into(),
                StatusCode::FORBIDDEN,
            ),
            (
                AdminError::Invalid("k".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                AdminError::Store(unavailable()).into(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                QueryError::Invalid("c".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                QueryError::Store(unavailable()).into(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                StoreError::Config("url".into()).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                StoreError::Corrupt("row".into()).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error}");
        }
    }
}
