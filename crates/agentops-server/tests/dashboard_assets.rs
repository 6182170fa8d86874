//! The dashboard is served by the server itself: `/` and every file of `assets/` answer 200 with
//! the right content type, a strict Content-Security-Policy and revalidation headers; the
//! assets build their DOM without HTML parsing (so stored strings are always shown as text).

mod common;

use std::path::PathBuf;

use common::{Reply, TestServer};

fn assets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// Every file in `assets/`, by name.
fn asset_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(assets_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn expected_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("unexpected asset type {other:?} ({name}): add it to dashboard.rs"),
    }
}

fn assert_secure(reply: &Reply, what: &str) {
    let csp = reply
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: CSP allows inline or eval: {csp}"
    );
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

#[test]
fn page_and_every_asset_are_served_with_type_csp_and_cache_headers() {
    let server = TestServer::start();
    let page = server.get("/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_secure(&page, "/");
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/assets/app.js\">"));
    // No inline script: every <script> has a src (the CSP would block it anyway).
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..html[i..].find('>').map_or(html.len(), |e| i + e)];
        assert!(tag.contains("src="), "inline script in index.html: {tag}");
    }
    assert!(
        !html.contains(" style=\""),
        "inline style attribute in index.html"
    );

    let files = asset_files();
    assert!(files.len() >= 5, "assets: {files:?}");
    for name in &files {
        let reply = server.get(&format!("/assets/{name}"), &[]);
        assert_eq!(reply.status, 200, "/assets/{name}");
        assert_eq!(
            reply.header("content-type"),
            Some(expected_type(name)),
            "/assets/{name}"
        );
        assert_secure(&reply, name);
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{name}");
        let on_disk = std::fs::read(assets_dir().join(name)).unwrap();
        assert_eq!(reply.body, on_disk, "/assets/{name} differs from the file");
    }

    // Every asset the page or a module refers to exists.
    let mut referenced: Vec<String> = Vec::new();
    for name in files
        .iter()
        .filter(|n| n.ends_with(".js") || n.ends_with(".html"))
    {
        let text = std::fs::read_to_string(assets_dir().join(name)).unwrap();
        for part in text.split(['"', '\'']) {
            if let Some(rest) = part.strip_prefix("/assets/").or(part.strip_prefix("./")) {
                if rest.ends_with(".js") || rest.ends_with(".css") || rest.ends_with(".svg") {
                    referenced.push(rest.to_owned());
                }
            }
        }
    }
    assert!(referenced.iter().any(|r| r == "app.js"));
    for r in &referenced {
        assert!(files.contains(r), "{r} is referenced but not in assets/");
    }
    server.stop();
}

#[test]
fn etag_revalidation_unknown_assets_and_api_routes() {
    let server = TestServer::start();
    let first = server.get("/assets/app.js", &[]);
    let etag = first.header("etag").expect("an ETag").to_owned();
    let again = server.get("/assets/app.js", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let page = server.get("/index.html", &[]);
    assert_eq!(page.status, 200);

    for path in [
        "/assets/nope.js",
        "/assets/..%2FCargo.toml",
        "/assets/%2E%2E%2Fsrc%2Flib.rs",
    ] {
        let reply = server.get(path, &[]);
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.json()["error"].is_string(), "{path}");
    }
    // The API and the JSON fallback are untouched by the dashboard's routes.
    assert_eq!(server.get("/api/v1/sessions", &[]).status, 401);
    assert_eq!(
        server.get("/no/such/page", &[]).error(404),
        "no such endpoint"
    );
    server.stop();
}

/// The escaping rule of the dashboard, checked on its source: no HTML parsing of strings.
#[test]
fn assets_never_parse_strings_as_html() {
    for name in asset_files().iter().filter(|n| n.ends_with(".js")) {
        let text = std::fs::read_to_string(assets_dir().join(name)).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "createContextualFragment",
            "DOMParser",
        ] {
            assert!(!text.contains(sink), "{name} uses {sink}");
        }
    }
}
