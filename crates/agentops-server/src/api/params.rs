//! Query parameters of the read API: parsing, validation (a 400 naming the parameter) and the
//! opaque pagination cursor.

use agentops_core::EndState;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::error::ApiError;
use crate::store::{
    EndStateFilter, RowMark, SessionCursor, SessionMark, SessionQuery, SessionSortKey, SortValue,
};

/// Parameters of `GET /api/v1/sessions`.
pub const SESSION_LIST_PARAMS: &[&str] = &[
    "from",
    "to",
    "tag",
    "end_state",
    "agent",
    "model",
    "has_errors",
    "q",
    "sort",
    "limit",
    "cursor",
];

/// The longest `q`, `agent` or `model` filter, in bytes.
pub const MAX_FILTER_BYTES: usize = 1000;
/// The most tags one list request filters by.
pub const MAX_TAG_FILTERS: usize = 20;

/// `value`, unless longer than `limit` bytes.
fn bounded(name: &str, value: String, limit: usize) -> Result<String, ApiError> {
    if value.len() > limit {
        return Err(ApiError::bad(format!(
            "{name}: {} bytes, at most {limit} are accepted",
            value.len()
        )));
    }
    Ok(value)
}

/// The accepted values of `sort`.
pub const SORTS: &[&str] = &[
    "start_time",
    "-start_time",
    "cost",
    "-cost",
    "duration",
    "-duration",
    "events",
    "-events",
];

/// An order of the session list: key and direction.
pub type Sort = (SessionSortKey, bool);

fn sort_name((key, descending): Sort) -> String {
    let name = match key {
        SessionSortKey::StartTime => "start_time",
        SessionSortKey::Cost => "cost",
        SessionSortKey::Duration => "duration",
        SessionSortKey::Events => "events",
    };
    if descending {
        format!("-{name}")
    } else {
        name.to_owned()
    }
}

fn parse_sort(text: &str) -> Result<Sort, ApiError> {
    let (descending, name) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let key = match name {
        "start_time" => SessionSortKey::StartTime,
        "cost" => SessionSortKey::Cost,
        "duration" => SessionSortKey::Duration,
        "events" => SessionSortKey::Events,
        _ => {
            return Err(ApiError::bad(format!(
                "sort: expected one of {}, got {text:?}",
                SORTS.join(", ")
            )))
        }
    };
    Ok((key, descending))
}

/// An RFC 3339 time as stored (UTC, microseconds), or a 400 naming `name`.
fn parse_time(name: &str, text: &str) -> Result<String, ApiError> {
    agentops_core::timestamp::parse(text)
        .map(agentops_core::timestamp::format)
        .map_err(|_| {
            ApiError::bad(format!(
                "{name}: expected an RFC 3339 time such as 2026-11-22T01:30:00Z, got {text:?}"
            ))
        })
}

fn single<'a>(seen: &mut Vec<&'a str>, name: &'a str, value: &'a str) -> Result<&'a str, ApiError> {
    if seen.contains(&name) {
        return Err(ApiError::bad(format!("{name}: given more than once")));
    }
    seen.push(name);
    Ok(value)
}

fn non_empty(name: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad(format!("{name}: must not be empty")));
    }
    Ok(value.to_owned())
}

/// Parses the query of `GET /api/v1/sessions` into a store query and its order:
///
/// - `from`, `to`: RFC 3339; sessions started in `[from, to)`;
/// - `tag`: repeatable or comma-separated; every tag must be present;
/// - `end_state`: `Success`, `Fail`, `Indeterminate` (as stored), or `running` (no end time, and
///   no end state or `Indeterminate`);
/// - `agent`: an agent id or registered name; `model`: a model of one of its events;
/// - `has_errors`: `true` or `false`;
/// - `q`: case-insensitive text in the session's name or id, its tags, or an event name;
/// - `sort`: one of [`SORTS`] (`-` = descending; default `-start_time`);
/// - `limit`: 1..=1000 (default 50); `cursor`: the previous page's `next_cursor`.
///
/// Unknown parameters and bad values are refused with a message naming the parameter.
pub fn parse_session_query(pairs: &[(String, String)]) -> Result<(SessionQuery, Sort), ApiError> {
    let mut query = SessionQuery {
        limit: DEFAULT_LIMIT,
        ..SessionQuery::default()
    };
    let mut sort: Sort = (SessionSortKey::StartTime, true);
    let mut cursor: Option<&str> = None;
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let name = name.as_str();
        match name {
            "from" => query.from = Some(parse_time(name, single(&mut seen, name, value)?)?),
            "to" => query.to = Some(parse_time(name, single(&mut seen, name, value)?)?),
            "tag" => {
                for tag in value.split(',') {
                    let tag = bounded(name, non_empty(name, tag)?, crate::mapping::MAX_TAG_BYTES)?;
                    if !query.tags.contains(&tag) {
                        query.tags.push(tag);
                    }
                }
                if query.tags.len() > MAX_TAG_FILTERS {
                    return Err(ApiError::bad(format!(
                        "tag: at most {MAX_TAG_FILTERS} tags to filter by"
                    )));
                }
            }
            "end_state" => {
                let value = single(&mut seen, name, value)?;
                query.end_state = Some(if value.eq_ignore_ascii_case("running") {
                    EndStateFilter::Running
                } else {
                    EndStateFilter::Ended(value.parse::<EndState>().map_err(|_| {
                        ApiError::bad(format!(
                            "end_state: expected Success, Fail, Indeterminate or running, got {value:?}"
                        ))
                    })?)
                });
            }
            "agent" => {
                let agent = non_empty(name, single(&mut seen, name, value)?)?;
                query.agent = Some(bounded(name, agent, MAX_FILTER_BYTES)?);
            }
            "model" => {
                let model = non_empty(name, single(&mut seen, name, value)?)?;
                query.model = Some(bounded(name, model, MAX_FILTER_BYTES)?);
            }
            "has_errors" => {
                query.has_errors = Some(match single(&mut seen, name, value)? {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(ApiError::bad(format!(
                            "has_errors: expected true or false, got {other:?}"
                        )))
                    }
                })
            }
            "q" => {
                let text = non_empty(name, single(&mut seen, name, value)?)?;
                query.text = Some(bounded(name, text, MAX_FILTER_BYTES)?);
            }
            "sort" => sort = parse_sort(single(&mut seen, name, value)?)?,
            "limit" => {
                query.limit = match single(&mut seen, name, value)?.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(ApiError::bad(format!(
                            "limit: expected an integer from 1 to {MAX_LIMIT}"
                        )))
                    }
                }
            }
            "cursor" => cursor = Some(single(&mut seen, name, value)?),
            other => {
                return Err(ApiError::bad(format!(
                    "{other}: unknown parameter (expected one of {})",
                    SESSION_LIST_PARAMS.join(", ")
                )))
            }
        }
    }
    if let (Some(from), Some(to)) = (&query.from, &query.to) {
        if from >= to {
            return Err(ApiError::bad("from: must be earlier than to"));
        }
    }
    query.sort = sort.0;
    query.descending = sort.1;
    if let Some(cursor) = cursor {
        query.after = Some(decode_cursor(cursor, sort)?);
    }
    Ok((query, sort))
}

/// Parses `from` and `to` (RFC 3339, both optional), the only parameters of `/api/v1/stats`.
pub fn parse_range(
    pairs: &[(String, String)],
) -> Result<(Option<String>, Option<String>), ApiError> {
    let (mut from, mut to) = (None, None);
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let name = name.as_str();
        match name {
            "from" => from = Some(parse_time(name, single(&mut seen, name, value)?)?),
            "to" => to = Some(parse_time(name, single(&mut seen, name, value)?)?),
            other => {
                return Err(ApiError::bad(format!(
                    "{other}: unknown parameter (expected from, to)"
                )))
            }
        }
    }
    if let (Some(f), Some(t)) = (&from, &to) {
        if f >= t {
            return Err(ApiError::bad("from: must be earlier than to"));
        }
    }
    Ok((from, to))
}

/// The opaque cursor after `cursor` in order `sort`: base64url of
/// `[sort, key type, key, session id]` (a real key is carried as its exact bits).
pub fn encode_cursor(sort: Sort, cursor: &SessionCursor) -> String {
    let (kind, key) = match &cursor.key {
        SortValue::Text(t) => ("t", t.clone()),
        SortValue::Int(i) => ("i", i.to_string()),
        SortValue::Real(r) => ("f", r.to_bits().to_string()),
    };
    URL_SAFE_NO_PAD.encode(json!([sort_name(sort), kind, key, cursor.id]).to_string())
}

/// Reads a cursor made by [`encode_cursor`] for the same `sort`, or a 400 naming `cursor`.
pub fn decode_cursor(text: &str, sort: Sort) -> Result<SessionCursor, ApiError> {
    let bad = || ApiError::bad("cursor: invalid; pass the next_cursor of the previous page as is");
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let parts: Vec<&str> = value
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(Value::as_str)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    let [made_for, kind, key, id] = parts[..] else {
        return Err(bad());
    };
    if made_for != sort_name(sort) {
        return Err(ApiError::bad(format!(
            "cursor: made for sort={made_for}, not sort={}",
            sort_name(sort)
        )));
    }
    let key = match (kind, sort.0) {
        ("t", SessionSortKey::StartTime) => SortValue::Text(key.to_owned()),
        ("i", SessionSortKey::Duration | SessionSortKey::Events) => {
            SortValue::Int(key.parse().map_err(|_| bad())?)
        }
        ("f", SessionSortKey::Cost) => {
            SortValue::Real(f64::from_bits(key.parse().map_err(|_| bad())?))
        }
        _ => return Err(bad()),
    };
    Ok(SessionCursor {
        key,
        id: id.to_owned(),
    })
}

/// The tag that starts a session detail's cursor (its format's version).
const MARK_TAG: &str = "s1";

/// The opaque cursor of a session detail (`cursor` of `GET /api/v1/sessions/{id}`, given back
/// as `since`): base64url of `["s1", events last, events count, log records last, log records
/// count, logs last, logs count]`.
pub fn encode_session_mark(mark: &SessionMark) -> String {
    let parts = [mark.events, mark.log_records, mark.logs];
    let numbers: Vec<i64> = parts.iter().flat_map(|m| [m.last, m.count]).collect();
    URL_SAFE_NO_PAD.encode(json!([MARK_TAG, numbers]).to_string())
}

/// Reads a cursor made by [`encode_session_mark`], or a 400 naming `since`.
pub fn decode_session_mark(text: &str) -> Result<SessionMark, ApiError> {
    let bad = || {
        ApiError::bad("since: invalid; pass the cursor of a previous answer for this session as is")
    };
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
    let (tag, numbers): (String, Vec<i64>) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if tag != MARK_TAG || numbers.iter().any(|n| *n < 0) {
        return Err(bad());
    }
    let [el, ec, rl, rc, ll, lc] = numbers[..] else {
        return Err(bad());
    };
    let mark = |last, count| RowMark { last, count };
    Ok(SessionMark {
        events: mark(el, ec),
        log_records: mark(rl, rc),
        logs: mark(ll, lc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_exactly_and_refuse_tampering() {
        for (sort, key) in [
            ((SessionSortKey::Cost, true), SortValue::Real(0.1 + 0.2)),
            ((SessionSortKey::Events, false), SortValue::Int(-1)),
            (
                (SessionSortKey::StartTime, true),
                SortValue::Text("2026-11-22T01:30:22.721555+00:00".into()),
            ),
        ] {
            let cursor = SessionCursor {
                key,
                id: "a\"b\nc".into(),
            };
            let text = encode_cursor(sort, &cursor);
            assert_eq!(decode_cursor(&text, sort).unwrap(), cursor);
            let other = (sort.0, !sort.1);
            assert!(decode_cursor(&text, other).is_err());
        }
        assert!(decode_cursor("!!", (SessionSortKey::Cost, true)).is_err());
        let wrong_type = URL_SAFE_NO_PAD.encode(r#"["-cost","t","x","id"]"#);
        assert!(decode_cursor(&wrong_type, (SessionSortKey::Cost, true)).is_err());
    }

    #[test]
    fn session_marks_round_trip_and_refuse_anything_else() {
        let mark = SessionMark {
            events: RowMark {
                last: 9_000_000_123,
                count: 10_000,
            },
            log_records: RowMark { last: 7, count: 2 },
            logs: RowMark::default(),
        };
        let text = encode_session_mark(&mark);
        assert_eq!(decode_session_mark(&text).unwrap(), mark);
        for bad in [
            "".to_owned(),
            "!!".to_owned(),
            URL_SAFE_NO_PAD.encode(r#"["s1",[1,2,3,4,5]]"#),
            URL_SAFE_NO_PAD.encode(r#"["s2",[1,2,3,4,5,6]]"#),
            URL_SAFE_NO_PAD.encode(r#"["s1",[1,2,3,4,5,-6]]"#),
            URL_SAFE_NO_PAD.encode(r#"["s1",[1,2,3,4,5,"6"]]"#),
            URL_SAFE_NO_PAD.encode(r#"["-cost","t","x","id"]"#),
        ] {
            let err = decode_session_mark(&bad).unwrap_err();
            assert!(err.to_string().starts_with("since"), "{bad}: {err}");
        }
    }

    #[test]
    fn parameters_are_validated_by_name() {
        let (q, sort) = parse_session_query(&pairs(&[
            ("tag", "a,b"),
            ("tag", "c"),
            ("end_state", "running"),
            ("sort", "cost"),
            ("from", "2026-11-22T02:30:00+01:00"),
        ]))
        .unwrap();
        assert_eq!(q.tags, ["a", "b", "c"]);
        assert_eq!(q.end_state, Some(EndStateFilter::Running));
        assert_eq!(sort, (SessionSortKey::Cost, false));
        assert_eq!(q.from.as_deref(), Some("2026-11-22T01:30:00.000000+00:00"));
        for (name, value) in [
            ("limit", "0"),
            ("limit", "1001"),
            ("sort", "name"),
            ("from", "yesterday"),
            ("end_state", "done"),
            ("has_errors", "yes"),
            ("cursor", "zzz"),
            ("tag", ""),
            ("bogus", "1"),
        ] {
            let err = parse_session_query(&pairs(&[(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}: {err}");
        }
    }
}
