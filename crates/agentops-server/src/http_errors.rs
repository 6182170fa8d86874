//! Every error answer is JSON `{"error": "..."}`, the HTTP layer's too: the limits of a request
//! head checked before routing ([`request_limits`]: a URI over [`MAX_URI_BYTES`] is 414, a head
//! over [`MAX_HEADERS`] headers or [`MAX_HEADER_BYTES`] bytes is 431), axum's extractor
//! rejections (`From` impls into [`ApiError`]), and a last net ([`json_errors`]) that rewrites any
//! error response that is not JSON yet.
//!
//! What hyper refuses while parsing a request, before any of this runs, it answers itself with
//! an empty body and closes the connection; hyper has no hook to change that answer. That is a
//! request line or header it cannot parse (a byte the `http` crate does not allow in a URI, such
//! as a raw `<`, `>`, `"`, `{`, `|` or a space; a bad method or version), a URI over 65,534 bytes
//! (414, the `http` crate's limit), and a head over hyper's read buffer (about 400 KiB) or with
//! more than [`crate::serve::HYPER_MAX_HEADERS`] headers (431). The limits here are below
//! hyper's, so that every head hyper can read gets a JSON answer.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The longest request target (path and query, plus the authority of an absolute URI), in bytes:
/// just below hyper's own limit (65,534), so that a long filter is still answered with a 400
/// naming it, and a URI hyper can read but this refuses gets a JSON 414.
pub const MAX_URI_BYTES: usize = 60 * 1024;
/// The most header fields a request may have.
pub const MAX_HEADERS: usize = 100;
/// The most bytes of header fields (`name: value\r\n` each) a request may have.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most bytes of a non-JSON error body that [`json_errors`] reads to make its message.
const MAX_REWRITTEN_BODY: usize = 16 * 1024;

/// The request head within [`MAX_URI_BYTES`], [`MAX_HEADERS`] and [`MAX_HEADER_BYTES`], or the
/// 414/431 refusing it; a URI with an encoded NUL character, a 400.
pub fn check_head(uri: &axum::http::Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    let uri_bytes = uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Err(ApiError::Http {
            status: StatusCode::URI_TOO_LONG,
            message: format!("URI of {uri_bytes} bytes, at most {MAX_URI_BYTES} are accepted"),
        });
    }
    // A NUL character fits no id, filter or cursor, and PostgreSQL text cannot hold it: refused
    // here the same on every engine, before any route decodes it.
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str().contains("%00"))
    {
        return Err(ApiError::bad(
            "the URI holds an encoded NUL character (%00), which no id, filter or cursor can hold",
        ));
    }
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::Http {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!(
                "{} header fields, at most {MAX_HEADERS} are accepted",
                headers.len()
            ),
        });
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::Http {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!(
                "{header_bytes} bytes of header fields, at most {MAX_HEADER_BYTES} are accepted"
            ),
        });
    }
    Ok(())
}

/// Middleware: refuses a request whose head is over the limits (see [`check_head`]) before it
/// is routed.
pub async fn request_limits(request: Request, next: Next) -> Response {
    match check_head(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Whether `headers` declare a JSON body.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Middleware: a refusal of a request that came with a body says `Connection: close`.
///
/// A write's credentials are checked before its body is read, so such a refusal may leave the
/// body unread, and the connection cannot serve another request; without the header a client
/// that keeps connections alive would send its next request on a connection the server is
/// closing ("peer disconnected"). With it, hyper closes the connection after the answer and
/// the client opens a new one.
pub async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Middleware, the last net: an error response (4xx, 5xx) that is not JSON becomes
/// `{"error": "<its text, or the status's reason>"}` with the same status and other headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !(response.status().is_client_error() || response.status().is_server_error())
        || is_json(response.headers())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REWRITTEN_BODY)
        .await
        .map(|bytes: Bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let mut json = ApiError::Http {
        status: parts.status,
        message,
    }
    .into_response();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    json.headers_mut().extend(parts.headers);
    json
}

/// An axum rejection as an [`ApiError`]: its status and text, prefixed with `what`; a 5xx (a
/// route declared wrongly) is an internal error, logged and not detailed.
fn rejection(what: &str, status: StatusCode, text: String) -> ApiError {
    if status.is_server_error() {
        ApiError::Internal(format!("{what}: {text}"))
    } else {
        ApiError::Http {
            status,
            message: format!("{what}: {text}"),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        rejection("path", r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        rejection("query string", r.status(), r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        rejection("body", r.status(), r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Uri};

    #[test]
    fn heads_over_the_limits_are_414_or_431() {
        let ok: Uri = "/api/v1/sessions?q=x".parse().unwrap();
        assert!(check_head(&ok, &HeaderMap::new()).is_ok());
        let long: Uri = format!("/api/v1/sessions?q={}", "x".repeat(MAX_URI_BYTES))
            .parse()
            .unwrap();
        let err = check_head(&long, &HeaderMap::new()).unwrap_err();
        assert_eq!(err.status(), StatusCode::URI_TOO_LONG);
        let mut many = HeaderMap::new();
        for i in 0..=MAX_HEADERS {
            many.insert(
                axum::http::HeaderName::try_from(format!("x-h{i}")).unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        let err = check_head(&ok, &many).unwrap_err();
        assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let mut big = HeaderMap::new();
        big.insert(
            "x-big",
            HeaderValue::try_from("v".repeat(MAX_HEADER_BYTES)).unwrap(),
        );
        let err = check_head(&ok, &big).unwrap_err();
        assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(err.to_string().contains("header fields"), "{err}");
    }

    #[test]
    fn a_json_content_type_is_recognised_with_parameters() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(is_json(&headers));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&headers));
    }
}
