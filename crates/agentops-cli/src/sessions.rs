//! `agentops sessions list | show | export`: the session list as a table, one session as a
//! terminal timeline, and one session as JSON.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api_client::ApiClient;

/// Filters of `sessions list`, passed to `GET /api/v1/sessions` as they are.
#[derive(clap::Args)]
pub struct ListFilters {
    /// Only sessions that ended so (Success, Fail, Indeterminate) or are `running`.
    #[arg(long)]
    pub end_state: Option<String>,
    /// Only sessions with this tag (repeat for several; all must match).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Free text over session names, tags and event names.
    #[arg(long, short = 'q')]
    pub search: Option<String>,
    /// Only sessions that called this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only sessions with at least one error.
    #[arg(long)]
    pub has_errors: bool,
    /// Order: start_time, cost, duration or events; a leading `-` for descending.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// How many sessions at most (1 to 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

pub fn list(client: &ApiClient, filters: &ListFilters) -> anyhow::Result<String> {
    let mut query = vec![("limit", filters.limit.to_string())];
    let optional = [
        ("end_state", &filters.end_state),
        ("q", &filters.search),
        ("model", &filters.model),
        ("sort", &filters.sort),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    if !filters.tag.is_empty() {
        query.push(("tag", filters.tag.join(",")));
    }
    if filters.has_errors {
        query.push(("has_errors", "true".into()));
    }
    let answer = client.get("/api/v1/sessions", &query)?;
    let sessions = answer["sessions"]
        .as_array()
        .context("the server's list has no sessions")?;
    Ok(table(sessions, Utc::now()))
}

fn table(sessions: &[Value], now: DateTime<Utc>) -> String {
    if sessions.is_empty() {
        return "No sessions match.\n".into();
    }
    let header = [
        "SESSION", "STARTED", "DURATION", "STATE", "EVENTS", "ERRORS", "TOKENS", "COST", "TAGS",
    ];
    let rows: Vec<[String; 9]> = sessions
        .iter()
        .map(|s| {
            let state = s["state"].as_str().unwrap_or("-").to_owned();
            let tokens =
                s["input_tokens"].as_i64().unwrap_or(0) + s["output_tokens"].as_i64().unwrap_or(0);
            [
                s["id"].as_str().unwrap_or("?").to_owned(),
                s["start_time"].as_str().map_or("-".into(), |t| ago(t, now)),
                s["duration_ms"].as_f64().map_or("-".into(), duration),
                state,
                s["event_count"].as_i64().unwrap_or(0).to_string(),
                s["error_count"].as_i64().unwrap_or(0).to_string(),
                tokens.to_string(),
                dollars(s["cost"].as_f64().unwrap_or(0.0)),
                strings(&s["tags"]).join(", "),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

pub fn show(client: &ApiClient, id: &str) -> anyhow::Result<String> {
    let detail = client.get(
        &format!("/api/v1/sessions/{id}"),
        &[("events", "tree".into())],
    )?;
    Ok(timeline(&detail))
}

pub fn export(client: &ApiClient, id: &str) -> anyhow::Result<String> {
    let detail = client.get(&format!("/api/v1/sessions/{id}"), &[])?;
    Ok(serde_json::to_string_pretty(&detail)? + "\n")
}

/// The session's events as an indented tree, each with a bar placing it in the session's time.
fn timeline(detail: &Value) -> String {
    let nodes = detail["event_tree"].as_array().cloned().unwrap_or_default();
    let times: Vec<(f64, f64)> = nodes
        .iter()
        .filter_map(|n| {
            let start = micros(n["start_time"].as_str()?)?;
            let end = n["end_time"].as_str().and_then(micros).unwrap_or(start);
            Some((start, end))
        })
        .collect();
    let origin = times.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
    let last = times.iter().map(|t| t.1).fold(f64::NEG_INFINITY, f64::max);
    let span = (last - origin).max(1.0);

    let mut out = String::new();
    let tokens = detail["input_tokens"].as_i64().unwrap_or(0)
        + detail["output_tokens"].as_i64().unwrap_or(0);
    let _ = writeln!(
        out,
        "Session {}  {}  {} events  {} tokens  {}",
        detail["id"].as_str().unwrap_or("?"),
        detail["state"].as_str().unwrap_or("-"),
        detail["event_count"].as_i64().unwrap_or(0),
        tokens,
        dollars(detail["cost"].as_f64().unwrap_or(0.0)),
    );
    if let Some(reason) = detail["end_state_reason"].as_str() {
        let _ = writeln!(out, "  reason: {reason}");
    }
    let tags = strings(&detail["tags"]);
    if !tags.is_empty() {
        let _ = writeln!(out, "  tags:   {}", tags.join(", "));
    }
    out.push('\n');
    for node in &nodes {
        let start = node["start_time"]
            .as_str()
            .and_then(micros)
            .unwrap_or(origin);
        let end = node["end_time"].as_str().and_then(micros).unwrap_or(start);
        let (from, to) = bar_cells(start - origin, end - origin, span);
        let bar: String = (0..BAR)
            .map(|i| if i >= from && i < to { '█' } else { '·' })
            .collect();
        let depth = node["depth"].as_u64().unwrap_or(0) as usize;
        let failed = node["failed"].as_bool() == Some(true);
        let mut label = format!(
            "{}{} {}",
            "  ".repeat(depth),
            if failed { "✗" } else { "•" },
            node["name"].as_str().unwrap_or("(unnamed)")
        );
        let _ = write!(label, " [{}]", node["kind"].as_str().unwrap_or("?"));
        let mut figures = vec![node["duration_ms"].as_f64().map_or("-".into(), duration)];
        let node_tokens = node["input_tokens"].as_i64().unwrap_or(0)
            + node["output_tokens"].as_i64().unwrap_or(0);
        if node_tokens > 0 {
            figures.push(format!("{node_tokens} tok"));
        }
        if let Some(cost) = node["cost"].as_f64().filter(|c| *c > 0.0) {
            figures.push(dollars(cost));
        }
        let _ = writeln!(
            out,
            "{bar}  {:<48} {}",
            truncate(&label, 48),
            figures.join("  ")
        );
    }
    if nodes.is_empty() {
        out.push_str("(no events)\n");
    }
    out
}

fn micros(text: &str) -> Option<f64> {
    agentops_core::timestamp::parse(text)
        .ok()
        .map(|t| t.timestamp_micros() as f64)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let cut: String = text.chars().take(width - 1).collect();
    format!("{cut}…")
}

/// `$0.0012`, `$1.23`: enough digits to see small LLM costs.
pub fn dollars(usd: f64) -> String {
    if usd == 0.0 {
        "$0".into()
    } else if usd < 0.01 {
        format!("${usd:.6}").trim_end_matches('0').to_owned()
    } else {
        format!("${usd:.2}")
    }
}

/// `850ms`, `1.2s`, `3m05s`.
pub fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        let secs = (ms / 1000.0).round() as u64;
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

fn ago(start: &str, now: DateTime<Utc>) -> String {
    let Ok(start) = agentops_core::timestamp::parse(start) else {
        return start.to_owned();
    };
    let secs = (now - start).num_seconds().max(0);
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => start.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// Cells in an event's timeline bar.
const BAR: usize = 32;

/// The cells `[from, to)` of a bar of [`BAR`] cells drawn for an event from `start` to `end`
/// (offsets from the session's first event, over `span`): at least one cell, even for an
/// event of no duration at the very end.
fn bar_cells(start: f64, end: f64, span: f64) -> (usize, usize) {
    let from = ((start / span) * BAR as f64).floor().max(0.0) as usize;
    let from = from.min(BAR - 1);
    let to = (((end / span) * BAR as f64).ceil().max(0.0) as usize).clamp(from + 1, BAR);
    (from, to)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_event_gets_a_bar_even_one_of_no_duration_at_the_very_end() {
        assert_eq!(bar_cells(0.0, 1000.0, 1000.0), (0, BAR));
        assert_eq!(bar_cells(1000.0, 1000.0, 1000.0), (BAR - 1, BAR));
        assert_eq!(bar_cells(500.0, 500.0, 1000.0), (BAR / 2, BAR / 2 + 1));
        // A session whose events all share one instant.
        assert_eq!(bar_cells(0.0, 0.0, 1.0), (0, 1));
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(dollars(0.0), "$0");
        assert_eq!(dollars(0.00012), "$0.00012");
        assert_eq!(dollars(1.234), "$1.23");
        assert_eq!(duration(850.0), "850ms");
        assert_eq!(duration(1234.0), "1.2s");
        assert_eq!(duration(185_000.0), "3m05s");
    }

    #[test]
    fn the_table_shows_running_sessions_and_aligns_columns() {
        let now = agentops_core::timestamp::parse("2026-11-22T10:00:00+00:00").unwrap();
        let sessions = [
            json!({"id": "a", "start_time": "2026-11-22T09:58:00.000000+00:00", "end_time": null,
                   "end_state": "Indeterminate", "state": "Running", "event_count": 3, "input_tokens": 10, "output_tokens": 5,
                   "cost": 0.0012, "tags": ["x", "y"]}),
            json!({"id": "bbbbbb", "start_time": "2026-11-22T07:00:00.000000+00:00",
                   "end_time": "2026-11-22T07:00:02.000000+00:00", "duration_ms": 2000.0,
                   "end_state": "Fail", "state": "Fail", "event_count": 12, "error_count": 2, "cost": 2.5, "tags": []}),
        ];
        let text = table(&sessions, now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SESSION  STARTED"), "{text}");
        assert!(
            lines[1].contains("Running")
                && lines[1].contains("2m ago")
                && lines[1].contains("$0.0012")
        );
        assert!(
            lines[2].contains("Fail") && lines[2].contains("2.0s") && lines[2].contains("$2.50")
        );
        assert_eq!(
            lines[1].find("2m ago"),
            lines[2].find("3h ago"),
            "columns align:\n{text}"
        );
    }

    #[test]
    fn the_timeline_nests_and_places_events_in_time() {
        let detail = json!({
            "id": "s", "end_state": "Success", "state": "Success", "event_count": 2, "cost": 0.5, "tags": ["t"],
            "event_tree": [
                {"id": "1", "depth": 0, "kind": "actions", "name": "plan",
                 "start_time": "2026-11-22T10:00:00.000000+00:00", "end_time": "2026-11-22T10:00:10.000000+00:00",
                 "duration_ms": 10000.0},
                {"id": "2", "depth": 1, "kind": "llms", "name": "gpt-4o", "status": "error", "failed": true,
                 "start_time": "2026-11-22T10:00:05.000000+00:00", "end_time": "2026-11-22T10:00:10.000000+00:00",
                 "duration_ms": 5000.0, "input_tokens": 100, "output_tokens": 20, "cost": 0.5}
            ]
        });
        let text = timeline(&detail);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Session s  Success  2 events"), "{text}");
        let plan = lines.iter().find(|l| l.contains("plan")).unwrap();
        let llm = lines.iter().find(|l| l.contains("gpt-4o")).unwrap();
        assert!(plan.starts_with(&"█".repeat(32)), "{plan}");
        assert!(
            llm.starts_with(&"·".repeat(16)),
            "the LLM call starts halfway: {llm}"
        );
        assert!(
            llm.contains("  ✗ gpt-4o [llms]") && llm.contains("120 tok") && llm.contains("$0.50"),
            "{llm}"
        );
    }
}
