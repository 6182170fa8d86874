//! `GET /metrics` over real loopback HTTP: after OTLP spans, v2 events, log records and a bad
//! request, the scrape parses as the Prometheus text format 0.0.4 (a strict parser below) and
//! its counters and histograms have moved; OpenMetrics is served to scrapers that ask for it;
//! and who may scrape.

mod common;

use std::collections::{BTreeMap, HashMap};

use agentops_server::server_metrics::MetricsAccess;
use common::{fixture, temp_dir, TestServer, API_KEY};
use serde_json::{json, Value};

const KEY: (&str, &str) = ("X-Agentops-Api-Key", API_KEY);
const T0: u64 = 1_795_311_032_000_000_000;
const TRACE: &str = "5b8efff798038103d269b633813fc60c";

// ---------------------------------------------------------------------------------------------
// A strict parser of the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug)]
struct Family {
    kind: Kind,
    help: Option<String>,
    samples: Vec<Sample>,
}

#[derive(Debug, Default)]
struct Exposition {
    families: HashMap<String, Family>,
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// A sample value or timestamp as Go's `ParseFloat` reads it (plus the spellings of infinity).
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) =>
        {
            text.parse().map_err(|e| format!("bad value {text:?}: {e}"))
        }
        _ => Err(format!("bad value {text:?}")),
    }
}

/// The HELP docstring, unescaped (`\\` and `\n` only).
fn unescape_help(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            other => return Err(format!("bad escape \\{other:?} in HELP {text:?}")),
        }
    }
    Ok(out)
}

/// `{name="value",…}` at the start of `text`: the labels and what follows the `}`.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text
        .strip_prefix('{')
        .ok_or_else(|| format!("expected {{ in {text:?}"))?;
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("expected = in {text:?}"))?;
        let name = name.trim();
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = after
            .strip_prefix('"')
            .ok_or_else(|| format!("expected \" after {name}= in {text:?}"))?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated label value in {text:?}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in {text:?}")),
                },
                Some((_, '\n')) => return Err(format!("raw newline in {text:?}")),
                Some((_, c)) => value.push(c),
            }
        };
        let body = &after[1..];
        rest = &body[end + 1..];
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice in {text:?}"));
        }
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} in {text:?}"));
        }
    }
}

/// The family a sample named `name` belongs to, given the declared families.
fn family_of(name: &str, kinds: &HashMap<String, Kind>) -> Option<String> {
    if kinds.contains_key(name) {
        return Some(name.to_owned());
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            match kinds.get(base) {
                Some(Kind::Histogram) => return Some(base.to_owned()),
                Some(Kind::Summary) if suffix != "_bucket" => return Some(base.to_owned()),
                _ => {}
            }
        }
    }
    None
}

fn parse(text: &str) -> Result<Exposition, String> {
    if !text.ends_with('\n') {
        return Err("the exposition does not end with a line feed".into());
    }
    let mut exposition = Exposition::default();
    let mut kinds: HashMap<String, Kind> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut samples: HashMap<String, Vec<Sample>> = HashMap::new();
    // Every family's lines form one group: once another family's lines start, it is closed.
    let mut current: Option<String> = None;
    let mut closed: Vec<String> = Vec::new();
    let mut series = std::collections::HashSet::new();
    let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() == Some(family) {
            return Ok(());
        }
        if closed.iter().any(|f| f == family) {
            return Err(format!("the lines of {family} are not one group"));
        }
        if let Some(previous) = current.replace(family.to_owned()) {
            closed.push(previous);
        }
        Ok(())
    };
    for (number, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", number + 1);
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start_matches(' ');
            if let Some(rest) = comment.strip_prefix("HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                if !valid_metric_name(name) {
                    return Err(at(format!("bad metric name {name:?}")));
                }
                enter(name, &mut current).map_err(at)?;
                let help = unescape_help(help).map_err(at)?;
                if helps.insert(name.to_owned(), help).is_some() {
                    return Err(at(format!("a second HELP for {name}")));
                }
            } else if let Some(rest) = comment.strip_prefix("TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| at("TYPE without a type".into()))?;
                if !valid_metric_name(name) {
                    return Err(at(format!("bad metric name {name:?}")));
                }
                let kind = match kind {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    "histogram" => Kind::Histogram,
                    "summary" => Kind::Summary,
                    "untyped" => Kind::Untyped,
                    other => return Err(at(format!("unknown type {other:?}"))),
                };
                enter(name, &mut current).map_err(at)?;
                if samples.contains_key(name) {
                    return Err(at(format!("TYPE of {name} after its samples")));
                }
                if kinds.insert(name.to_owned(), kind).is_some() {
                    return Err(at(format!("a second TYPE for {name}")));
                }
            } else if comment.starts_with("EOF") || comment.starts_with("UNIT ") {
                return Err(at("an OpenMetrics line in the 0.0.4 format".into()));
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| at("a sample without a value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("expected a space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or_default()).map_err(at)?;
        if let Some(timestamp) = fields.next() {
            timestamp
                .parse::<i64>()
                .map_err(|e| at(format!("bad timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let family =
            family_of(name, &kinds).ok_or_else(|| at(format!("{name} has no TYPE before it")))?;
        enter(&family, &mut current).map_err(at)?;
        if kinds[&family] == Kind::Histogram && name.ends_with("_bucket") {
            let le = labels
                .get("le")
                .ok_or_else(|| at("a bucket without le".into()))?;
            parse_value(le).map_err(at)?;
        }
        if !series.insert(format!("{name}{labels:?}")) {
            return Err(at("the same series twice".into()));
        }
        samples.entry(family).or_default().push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for (name, kind) in kinds {
        exposition.families.insert(
            name.clone(),
            Family {
                kind,
                help: helps.remove(&name),
                samples: samples.remove(&name).unwrap_or_default(),
            },
        );
    }
    if let Some(name) = helps.keys().next() {
        return Err(format!("HELP for {name}, which has no TYPE"));
    }
    Ok(exposition)
}

impl Exposition {
    fn family(&self, name: &str, kind: Kind) -> &Family {
        let family = self
            .families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name}"));
        assert_eq!(family.kind, kind, "{name}");
        assert!(
            family.help.as_deref().is_some_and(|help| !help.is_empty()),
            "{name} has no help"
        );
        family
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    fn value(&self, family: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.families
            .get(family)?
            .samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// Checks every series of the histogram `name`: cumulative buckets, a `+Inf` bucket equal
    /// to `_count`, a `_sum`; returns the `_count`s by label set (without `le`).
    fn histogram(&self, name: &str) -> HashMap<BTreeMap<String, String>, f64> {
        let family = self.family(name, Kind::Histogram);
        let mut buckets: HashMap<BTreeMap<String, String>, Vec<(f64, f64)>> = HashMap::new();
        let mut counts = HashMap::new();
        let mut sums = HashMap::new();
        for sample in &family.samples {
            let mut labels = sample.labels.clone();
            if sample.name == format!("{name}_bucket") {
                let le = parse_value(&labels.remove("le").unwrap()).unwrap();
                buckets.entry(labels).or_default().push((le, sample.value));
            } else if sample.name == format!("{name}_count") {
                counts.insert(labels, sample.value);
            } else if sample.name == format!("{name}_sum") {
                sums.insert(labels, sample.value);
            } else {
                panic!("{} in histogram {name}", sample.name);
            }
        }
        assert!(!counts.is_empty(), "{name} has no series");
        for (labels, count) in &counts {
            assert!(sums.contains_key(labels), "{name}{labels:?} has no _sum");
            let mut series = buckets
                .remove(labels)
                .unwrap_or_else(|| panic!("{name}{labels:?} has no buckets"));
            series.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (last_le, last) = *series.last().unwrap();
            assert_eq!(last_le, f64::INFINITY, "{name}{labels:?}: no le=\"+Inf\"");
            assert_eq!(last, *count, "{name}{labels:?}: +Inf bucket != _count");
            assert!(
                series.windows(2).all(|w| w[0].1 <= w[1].1),
                "{name}{labels:?}: buckets not cumulative: {series:?}"
            );
        }
        assert!(buckets.is_empty(), "{name}: buckets without _count");
        counts
    }
}

// ---------------------------------------------------------------------------------------------

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// `n` spans of one trace, as OTLP JSON.
fn spans(n: u64) -> Value {
    let spans: Vec<Value> = (1..=n)
        .map(|i| {
            json!({"traceId": TRACE, "spanId": format!("60f067aa0ba9{i:04x}"), "name": format!("step {i}"),
                "startTimeUnixNano": (T0 + i * 1_000_000).to_string(),
                "endTimeUnixNano": (T0 + i * 1_000_000 + 500_000).to_string()})
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", "metrics-test")]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
    }]})
}

/// Scrapes `/metrics` with these headers; asserts a 0.0.4 answer and parses it.
fn scrape(server: &TestServer, headers: &[(&str, &str)]) -> (String, Exposition) {
    let reply = server.get("/metrics", headers);
    let text = String::from_utf8(reply.body.clone()).unwrap();
    assert_eq!(reply.status, 200, "{text}");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let exposition = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, exposition)
}

#[test]
fn the_scrape_parses_and_its_counters_and_histograms_move() {
    let server = TestServer::start();
    let (_, before) = scrape(&server, &[]);
    assert_eq!(
        before.value(
            "agentops_spans_ingested_total",
            "agentops_spans_ingested_total",
            &[]
        ),
        Some(0.0)
    );

    let reply = server.post_json("/v1/traces", &[KEY], &spans(5));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // A bad request: not JSON.
    server
        .post(
            "/v1/traces",
            &[KEY, ("Content-Type", "application/json")],
            "{not json",
        )
        .error(400);
    // v2 events.
    let created = server.post_json(
        "/v2/create_session",
        &[KEY],
        &fixture("v03_v2_create_session.json")["body"],
    );
    assert_eq!(created.status, 200);
    let auth = format!("Bearer {}", created.json()["jwt"].as_str().unwrap());
    let events = fixture("v03_v2_create_events.json")["body"].clone();
    let event_count = events["events"].as_array().unwrap().len();
    let reply = server.post_json(
        "/v2/create_events",
        &[KEY, ("Authorization", &auth)],
        &events,
    );
    assert_eq!(reply.status, 200);
    // An OTLP log record of the trace.
    let logs = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": T0.to_string(), "traceId": TRACE, "body": {"stringValue": "hello"}}
    ]}]}]});
    assert_eq!(server.post_json("/v1/logs", &[KEY], &logs).status, 200);
    // Raw paths that must not become labels.
    server
        .get("/api/v1/sessions/no-such-session-1234", &[KEY])
        .error(404);
    server.get("/no/such/endpoint-5678", &[]).error(404);

    let (text, after) = scrape(&server, &[]);
    let counter = |name: &str, labels: &[(&str, &str)]| {
        after.family(name, Kind::Counter);
        after
            .value(name, name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    assert!(counter("agentops_spans_ingested_total", &[]) >= 5.0);
    assert!(counter("agentops_events_ingested_total", &[("source", "otlp")]) >= 5.0);
    assert!(counter("agentops_events_ingested_total", &[("source", "v2")]) >= event_count as f64);
    assert!(counter("agentops_events_ingested_total", &[("source", "logs")]) >= 1.0);
    let requests = "agentops_http_requests_total";
    let route = |route, method, status| [("route", route), ("method", method), ("status", status)];
    assert_eq!(counter(requests, &route("/v1/traces", "POST", "200")), 1.0);
    assert_eq!(counter(requests, &route("/v1/traces", "POST", "400")), 1.0);
    assert_eq!(
        counter(requests, &route("/api/v1/sessions/{id}", "GET", "404")),
        1.0
    );
    assert_eq!(counter(requests, &route("other", "GET", "404")), 1.0);
    // the first scrape is counted too
    assert!(counter(requests, &route("/metrics", "GET", "200")) >= 1.0);
    for raw in ["no-such-session-1234", "endpoint-5678"] {
        assert!(!text.contains(raw), "{raw} is a label:\n{text}");
    }
    assert_eq!(
        counter(
            "agentops_busy_rejections_total",
            &[("reason", "queue_full")]
        ),
        0.0
    );
    assert_eq!(
        counter("agentops_busy_rejections_total", &[("reason", "storage")]),
        0.0
    );

    let durations = after.histogram("agentops_http_request_duration_seconds");
    let traces: BTreeMap<String, String> = [("route".to_owned(), "/v1/traces".to_owned())].into();
    assert_eq!(durations[&traces], 2.0, "the 200 and the 400");
    let commits = after.histogram("agentops_commit_duration_seconds");
    assert!(commits[&BTreeMap::new()] >= 3.0, "{commits:?}");
    let batches = after.histogram("agentops_commit_batch_requests");
    assert!(batches[&BTreeMap::new()] >= 3.0, "{batches:?}");

    after.family("agentops_write_queue_depth", Kind::Gauge);
    assert_eq!(
        after.value(
            "agentops_write_queue_depth",
            "agentops_write_queue_depth",
            &[]
        ),
        Some(0.0)
    );
    after.family("agentops_database_bytes", Kind::Gauge);
    let database = after
        .value("agentops_database_bytes", "agentops_database_bytes", &[])
        .unwrap();
    // the file (a page at least) and its WAL
    assert!(database >= 4096.0, "{database}");
    after.family("agentops_build_info", Kind::Gauge);
    assert_eq!(
        after.value(
            "agentops_build_info",
            "agentops_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    if cfg!(target_os = "linux") {
        after.family("process_resident_memory_bytes", Kind::Gauge);
        let rss = after
            .value(
                "process_resident_memory_bytes",
                "process_resident_memory_bytes",
                &[],
            )
            .unwrap();
        assert!(rss > 1_000_000.0, "{rss}");
    }
}

#[test]
fn openmetrics_is_served_to_a_scraper_that_asks_for_it() {
    let server = TestServer::start();
    let accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2";
    let reply = server.get("/metrics", &[("Accept", accept)]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = String::from_utf8(reply.body).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE agentops_spans_ingested counter\n"),
        "{text}"
    );
    assert!(
        text.contains("\nagentops_spans_ingested_total 0\n"),
        "{text}"
    );
}

#[test]
fn who_may_scrape() {
    // A loopback listener: no credentials, for requests addressed to a loopback host name.
    let server = TestServer::start();
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        scrape(&server, &[("Host", host.as_str())]);
    }
    // Addressed to another name (DNS rebinding), it needs read credentials.
    let rebinding = format!("attacker.example:{port}");
    server
        .get("/metrics", &[("Host", rebinding.as_str())])
        .error(401);
    server
        .get(
            "/metrics",
            &[
                ("Host", rebinding.as_str()),
                ("X-Agentops-Api-Key", "00000000-0000-4000-8000-000000000000"),
            ],
        )
        .error(401);
    scrape(&server, &[("Host", rebinding.as_str()), KEY]);
    // A session token reads its own session only, not the server's figures.
    let created = server.post_json(
        "/v2/create_session",
        &[KEY],
        &fixture("v03_v2_create_session.json")["body"],
    );
    let session_token = format!("Bearer {}", created.json()["jwt"].as_str().unwrap());
    server
        .get(
            "/metrics",
            &[
                ("Host", rebinding.as_str()),
                ("Authorization", session_token.as_str()),
            ],
        )
        .error(403);

    // --metrics-public: anyone.
    let public = TestServer::start_in(temp_dir(), |config| config.metrics_public = true);
    scrape(&public, &[("Host", "attacker.example")]);

    // A listener other hosts can reach needs read credentials unless public.
    for listen in ["0.0.0.0:4318", "[::]:4318", "192.0.2.7:4318"] {
        let listen = listen.parse().unwrap();
        let rule = MetricsAccess::for_listen(listen, false);
        assert_eq!(rule, MetricsAccess::Credentials, "{listen}");
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:4318".parse().unwrap());
        assert!(rule.needs_credentials(&headers), "{listen}");
        assert_eq!(
            MetricsAccess::for_listen(listen, true),
            MetricsAccess::Public
        );
        assert!(!MetricsAccess::for_listen(listen, true).needs_credentials(&headers));
    }
    assert_eq!(
        MetricsAccess::for_listen("[::1]:4318".parse().unwrap(), false),
        MetricsAccess::Loopback
    );
}

#[test]
fn the_parser_refuses_what_the_format_does_not_allow() {
    for bad in [
        "# TYPE a counter\na 1",                     // no final line feed
        "a 1\n",                                     // no TYPE
        "# TYPE a counter\n# TYPE a counter\na 1\n", // two TYPEs
        "# TYPE a counter\na{b=\"c} 1\n",            // unterminated label value
        "# TYPE a counter\na{b=c} 1\n",              // unquoted label value
        "# TYPE a counter\na one\n",                 // bad value
        "# TYPE a counter\na 1\na 2\n",              // a series twice
        "# TYPE a counter\n# EOF\n",                 // OpenMetrics
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n", // not one group
        "# TYPE a histogram\na_bucket 1\n",          // a bucket without le
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
    let good = "# HELP a_total A \\\\ help\\n.\n# TYPE a_total counter\n\
                a_total{b=\"x\\\"y\",c=\"\"} 1.5e3 1700000000000\n\
                # HELP h A histogram.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";
    let parsed = parse(good).unwrap();
    assert_eq!(
        parsed.value("a_total", "a_total", &[("b", "x\"y"), ("c", "")]),
        Some(1500.0)
    );
    assert_eq!(
        parsed.families["a_total"].help.as_deref(),
        Some("A \\ help\n.")
    );
    assert_eq!(parsed.histogram("h")[&BTreeMap::new()], 2.0);
}
