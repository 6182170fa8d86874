//! A session's events as a tree: parenthood from `parent_id` (an event id, or a parent span id).

use foldhash::{HashMap, HashMapExt};

use serde::Serialize;

#[cfg(test)]
use crate::store::EventRecord;
use crate::store::EventRow;

/// One event in a session's tree, without its payloads (fetch the event for those); borrows
/// from the events it was built from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeNode<'a> {
    /// The event id.
    pub id: &'a str,
    /// The parent event's id, when the parent is in the session.
    pub parent_id: Option<&'a str>,
    /// 0 for a root.
    pub depth: usize,
    /// The children's ids, by start time.
    pub children: Vec<&'a str>,
    /// Event kind.
    pub kind: &'a str,
    /// Name.
    pub name: Option<&'a str>,
    /// Start time.
    pub start_time: &'a str,
    /// End time.
    pub end_time: Option<&'a str>,
    /// End minus start, milliseconds.
    pub duration_ms: Option<f64>,
    /// `ok`, `error` or none.
    pub status: Option<&'a str>,
    /// Whether it failed (see [`crate::store::is_failed`]).
    pub failed: bool,
    /// LLM model.
    pub model: Option<&'a str>,
    /// Input tokens.
    pub input_tokens: Option<i64>,
    /// Output tokens.
    pub output_tokens: Option<i64>,
    /// Cost, US dollars.
    pub cost: Option<f64>,
    /// Its links to other events through tool calls.
    pub tool_links: &'a [crate::store::ToolLink],
}

/// One event's place in its session's tree, without the rest of it: what a live view's
/// refresh (`since`) carries of every event, the ones it already has included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlineNode<'a> {
    /// The event id.
    pub id: &'a str,
    /// The parent event's id, when the parent is in the session.
    pub parent_id: Option<&'a str>,
    /// 0 for a root.
    pub depth: usize,
    /// Its links to other events through tool calls (left out when it has none).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tool_links: &'a [crate::store::ToolLink],
}

impl<'a> From<&TreeNode<'a>> for OutlineNode<'a> {
    fn from(node: &TreeNode<'a>) -> Self {
        Self {
            id: node.id,
            parent_id: node.parent_id,
            depth: node.depth,
            tool_links: node.tool_links,
        }
    }
}

/// Microseconds since midnight of a stored timestamp (`YYYY-MM-DDTHH:MM:SS.ffffff+00:00`).
fn micros_of_day(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() != 32 || !ts.ends_with("+00:00") || b[13] != b':' || b[16] != b':' || b[19] != b'.' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = ts.get(range)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    Some(((num(11..13)? * 60 + num(14..16)?) * 60 + num(17..19)?) * 1_000_000 + num(20..26)?)
}

/// Milliseconds from `start` to `end`, when both parse.
pub fn duration_ms(start: &str, end: Option<&str>) -> Option<f64> {
    let end_text = end?;
    // the common case, cheaply: both stored the same day
    if start.get(..10).is_some() && start.get(..10) == end_text.get(..10) {
        if let (Some(a), Some(b)) = (micros_of_day(start), micros_of_day(end_text)) {
            return Some((b - a) as f64 / 1000.0);
        }
    }
    let start = agentops_core::timestamp::parse(start).ok()?;
    let end = agentops_core::timestamp::parse(end?).ok()?;
    (end - start)
        .num_microseconds()
        .map(|us| us as f64 / 1000.0)
}

/// The tree of `events` (ordered by start time), depth first, children by start time. An event
/// whose parent is not in the session is a root; so is one caught in a parent cycle.
pub fn event_tree(events: &[EventRow]) -> Vec<TreeNode<'_>> {
    let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(events.len() * 2);
    for (i, e) in events.iter().enumerate() {
        if let Some(span) = e.span_id.as_deref() {
            by_key.entry(span).or_insert(i);
        }
    }
    for (i, e) in events.iter().enumerate() {
        by_key.insert(e.id.as_str(), i);
    }
    let parent: Vec<Option<usize>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.parent_id
                .as_deref()
                .and_then(|p| by_key.get(p).copied())
                .filter(|&p| p != i)
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    for (i, p) in parent.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(i);
        }
    }
    let mut order: Vec<(usize, usize, bool)> = Vec::with_capacity(events.len()); // (index, depth, linked)
    let mut visited = vec![false; events.len()];
    let mut stack: Vec<(usize, usize, bool)> = Vec::new();
    let roots: Vec<usize> = (0..events.len()).filter(|&i| parent[i].is_none()).collect();
    // Roots first; then whatever a cycle kept unreachable, as roots.
    for start in roots.into_iter().chain(0..events.len()) {
        if visited[start] {
            continue;
        }
        stack.push((start, 0, false));
        while let Some((i, depth, linked)) = stack.pop() {
            if visited[i] {
                continue;
            }
            visited[i] = true;
            order.push((i, depth, linked));
            for &c in children[i].iter().rev() {
                if !visited[c] {
                    stack.push((c, depth + 1, true));
                }
            }
        }
    }
    order
        .into_iter()
        .map(|(i, depth, linked)| {
            let e = &events[i];
            TreeNode {
                id: &e.id,
                parent_id: if linked {
                    parent[i].map(|p| events[p].id.as_str())
                } else {
                    None
                },
                depth,
                children: children[i].iter().map(|&c| events[c].id.as_str()).collect(),
                kind: &e.kind,
                name: e.name.as_deref(),
                start_time: &e.start_time,
                end_time: e.end_time.as_deref(),
                duration_ms: duration_ms(&e.start_time, e.end_time.as_deref()),
                status: e.status.as_deref(),
                model: e.model.as_deref(),
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cost: e.cost,
                tool_links: &e.tool_links,
                failed: e.failed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, parent: Option<&str>, start: &str) -> EventRow {
        EventRow::from(&EventRecord {
            id: id.into(),
            session_id: "s".into(),
            kind: "actions".into(),
            parent_id: parent.map(Into::into),
            start_time: format!("2026-11-22T01:30:{start}.000000+00:00"),
            end_time: Some(format!("2026-11-22T01:30:{start}.250000+00:00")),
            attributes: serde_json::json!({}),
            ..EventRecord::default()
        })
    }

    #[test]
    fn builds_a_depth_first_tree_and_survives_cycles_and_orphans() {
        let events = vec![
            event("a", None, "01"),
            event("b", Some("a"), "02"),
            event("c", Some("b"), "03"),
            event("d", Some("a"), "04"),
            event("orphan", Some("missing"), "05"),
            event("x", Some("y"), "06"),
            event("y", Some("x"), "07"),
        ];
        let tree = event_tree(&events);
        let shape: Vec<(&str, usize)> = tree.iter().map(|n| (n.id, n.depth)).collect();
        assert_eq!(
            shape,
            [
                ("a", 0),
                ("b", 1),
                ("c", 2),
                ("d", 1),
                ("orphan", 0),
                ("x", 0),
                ("y", 1)
            ]
        );
        assert_eq!(tree[0].children, ["b", "d"]);
        assert_eq!(tree[1].parent_id, Some("a"));
        assert_eq!(tree[0].duration_ms, Some(250.0));
        assert_eq!(tree.len(), events.len());
    }

    #[test]
    fn durations_agree_with_chrono() {
        let cases = [
            (
                "2026-11-22T01:30:22.721555+00:00",
                "2026-11-22T01:30:23.000000+00:00",
                278.445,
            ),
            (
                "2026-11-22T23:59:59.500000+00:00",
                "2026-11-23T00:00:00.250000+00:00",
                750.0,
            ),
            ("2026-11-22T01:00:00Z", "2026-11-22T01:00:01.5Z", 1500.0),
        ];
        for (start, end, ms) in cases {
            let got = duration_ms(start, Some(end)).unwrap();
            assert!((got - ms).abs() < 1e-9, "{start} → {end}: {got}");
        }
        assert_eq!(duration_ms("2026-11-22T01:00:00Z", None), None);
        assert_eq!(duration_ms("nope", Some("2026-11-22T01:00:00Z")), None);
    }
}
