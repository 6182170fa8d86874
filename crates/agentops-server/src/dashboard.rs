//! The web dashboard: static assets compiled into the binary (no build step), served at `/`
//! (the page) and `/assets/{file}` (scripts, styles, icons).
//!
//! The page is a single-page app over the read API (`/api/v1/*`); it builds its DOM with
//! `textContent` only, so stored strings are always shown as text. Every answer carries a strict
//! Content-Security-Policy (scripts and styles from this origin only, no inline script, no
//! framing), `X-Content-Type-Options: nosniff`, and an `ETag` so that browsers revalidate cheaply
//! (`Cache-Control: no-cache`: a new binary's assets are picked up at once).

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// The Content-Security-Policy of every dashboard answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

/// Everything under `assets/`; `index.html` is the page itself.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("format.js", "text/javascript; charset=utf-8"),
    asset!("sessions.js", "text/javascript; charset=utf-8"),
    asset!("session.js", "text/javascript; charset=utf-8"),
    asset!("waterfall.js", "text/javascript; charset=utf-8"),
    asset!("inspector.js", "text/javascript; charset=utf-8"),
    asset!("chat.js", "text/javascript; charset=utf-8"),
    asset!("stats.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("metrics.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The names of the embedded assets (served under `/assets/`).
#[cfg(test)]
fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.name)
}

/// Strong ETags of the assets, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// The dashboard's routes: `/`, `/index.html` and `/assets/{file}`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(
    file: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> Response {
    match file {
        Ok(Path(file)) => serve(&file, &headers),
        Err(rejection) => crate::error::ApiError::from(rejection).into_response(),
    }
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            security_headers(),
            axum::Json(serde_json::json!({ "error": format!("no such asset: {name}") })),
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut headers = security_headers();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (StatusCode::OK, headers, asset.body).into_response()
}

fn security_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_references_is_embedded() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap_or_default();
        for name in asset_names().filter(|n| *n != "index.html") {
            let referenced = page.contains(&format!("/assets/{name}"))
                || ASSETS.iter().any(|a| {
                    a.name.ends_with(".js")
                        && std::str::from_utf8(a.body)
                            .unwrap_or_default()
                            .contains(&format!("./{name}"))
                });
            assert!(referenced, "{name} is embedded but nothing loads it");
        }
        assert_eq!(etags().len(), ASSETS.len());
    }
}
