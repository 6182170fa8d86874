//! Reads other than the session list: a session's detail, one event, the agents and the
//! statistics.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{event_from_row, summary_columns, summary_from_row};
use super::schema::DURATION_SQL;
use crate::store::columns::event_select_list;
use crate::store::json::parse_json;
use crate::store::rollup::{by_cost, stats_spans, OPEN_END};
use crate::store::{
    AgentRecord, AgentSummary, DayStats, EventOutline, EventRow, LogRecord, ModelStats, RawStats,
    RowMark, SessionChanges, SessionDetail, SessionMark, SessionSummary, StoreError,
    MAX_SESSION_LOG_RECORDS,
};

/// A session's events (`?1` project, `?2` session), in index order.
static EVENTS_OF_SESSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events WHERE project_id = ?1 AND session_id = ?2",
        event_select_list(true)
    )
});

/// [`EVENTS_OF_SESSION`] without the payloads.
static EVENTS_OF_SESSION_WITHOUT_PAYLOADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events WHERE project_id = ?1 AND session_id = ?2",
        event_select_list(false)
    )
});

/// A session's events numbered above `?3` (`?1` project, `?2` session).
static EVENTS_OF_SESSION_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events WHERE project_id = ?1 AND session_id = ?2 AND rowid > ?3",
        event_select_list(true)
    )
});

/// [`EVENTS_OF_SESSION_AFTER`] without the payloads.
static EVENTS_OF_SESSION_AFTER_WITHOUT_PAYLOADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events WHERE project_id = ?1 AND session_id = ?2 AND rowid > ?3",
        event_select_list(false)
    )
});

/// One event (`?1` project, `?2` session, `?3` event).
static EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events WHERE project_id = ?1 AND session_id = ?2 AND id = ?3",
        event_select_list(true)
    )
});

/// A session of the project with its events, their payloads (prompt, completion, params,
/// returns, attributes) only when `payloads`.
pub(super) fn session_detail(
    c: &Connection,
    project_id: &str,
    session_id: &str,
    payloads: bool,
) -> Result<Option<SessionDetail>, StoreError> {
    let Some((summary, host_env, video)) = session_head(c, project_id, session_id)? else {
        return Ok(None);
    };
    // Read in index order and sorted here (see sort_by_start).
    let sql = if payloads {
        &*EVENTS_OF_SESSION
    } else {
        &*EVENTS_OF_SESSION_WITHOUT_PAYLOADS
    };
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params![project_id, session_id])?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(event_from_row(row)?);
    }
    sort_by_start(&mut events);
    Ok(Some(SessionDetail {
        summary,
        host_env: parse_json(host_env),
        video,
        agents: agents_of(c, project_id, session_id)?,
        events,
        logs: uploaded_logs_after(c, project_id, session_id, 0)?,
        log_records: super::logs::log_records(c, project_id, session_id, None)?,
    }))
}

/// A session's summary, host environment and video.
type SessionHead = (SessionSummary, Option<String>, Option<String>);

/// The session's row: its summary, host environment (JSON text) and video.
fn session_head(
    c: &Connection,
    project_id: &str,
    session_id: &str,
) -> Result<Option<SessionHead>, StoreError> {
    let sql = format!(
        "SELECT {} FROM sessions s WHERE s.project_id = ?1 AND s.id = ?2",
        summary_columns()
    );
    Ok(c.prepare_cached(&sql)?
        .query_row(params![project_id, session_id], |row| {
            Ok((
                summary_from_row(row)?,
                row.get::<_, Option<String>>(11)?,
                row.get::<_, Option<String>>(12)?,
            ))
        })
        .optional()?)
}

/// By start time, then id. Sorted here rather than by SQLite's sorter, which would copy every
/// row (payloads included) and spill to temporary files. Text compares bytewise in both
/// (SQLite's BINARY collation), and (start_time, id) is unique in a session.
fn sort_by_start(events: &mut [EventRow]) {
    events.sort_unstable_by(|a: &EventRow, b: &EventRow| {
        (a.start_time.as_str(), a.id.as_str()).cmp(&(b.start_time.as_str(), b.id.as_str()))
    });
}

/// The agents registered in a session, in the order they were.
fn agents_of(
    c: &Connection,
    project_id: &str,
    session_id: &str,
) -> Result<Vec<AgentRecord>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT id, name FROM agents WHERE project_id = ?1 AND session_id = ?2 ORDER BY rowid",
    )?
    .query_map(params![project_id, session_id], |r| {
        Ok(AgentRecord {
            id: r.get(0)?,
            name: r.get(1)?,
        })
    })?
    .collect::<Result<Vec<_>, _>>()?)
}

/// A session's uploaded logs numbered above `after`, oldest first.
fn uploaded_logs_after(
    c: &Connection,
    project_id: &str,
    session_id: &str,
    after: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT body FROM logs WHERE project_id = ?1 AND session_id = ?2 AND seq > ?3
         ORDER BY seq",
    )?
    .query_map(params![project_id, session_id, after], |r| r.get(0))?
    .collect::<Result<Vec<String>, _>>()?)
}

/// A session's OTLP log records numbered above `after`, by time then number (the oldest
/// [`MAX_SESSION_LOG_RECORDS`]); `event_id` is left for the caller.
fn log_records_after(
    c: &Connection,
    project_id: &str,
    session_id: &str,
    after: i64,
) -> Result<Vec<LogRecord>, StoreError> {
    let mut select = c.prepare_cached(
        "SELECT session_id, time, severity, event_name, body, attributes, trace_id, span_id,
                call_ids
         FROM otel_logs WHERE project_id = ?1 AND session_id = ?2 AND seq > ?3
         ORDER BY time, seq LIMIT ?4",
    )?;
    let rows = select.query_map(
        params![
            project_id,
            session_id,
            after,
            MAX_SESSION_LOG_RECORDS as i64
        ],
        |r| {
            let json = |text: String| parse_json(Some(text)).unwrap_or_default();
            Ok(LogRecord {
                session_id: r.get(0)?,
                time: r.get(1)?,
                severity: r.get(2)?,
                event_name: r.get(3)?,
                body: json(r.get(4)?),
                attributes: json(r.get(5)?),
                trace_id: r.get(6)?,
                span_id: r.get(7)?,
                event_id: None,
                call_ids: r.get(8)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The mark of one table's rows of a session now (`mark`), and whether `since` still holds
/// for them (see [`crate::store::Store::session_changes`]). `sql` selects, for `?1` project
/// and `?2` session, the highest number, the count and the count numbered at most `?3`.
fn row_mark(
    c: &Connection,
    sql: &str,
    project_id: &str,
    session_id: &str,
    since: Option<&RowMark>,
) -> Result<(RowMark, bool), StoreError> {
    let last_seen = since.map_or(0, |m| m.last);
    let (last, count, at_or_below): (i64, i64, i64) = c
        .prepare_cached(sql)?
        .query_row(params![project_id, session_id, last_seen], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let holds = since.is_some_and(|m| m.last <= last && m.count == at_or_below);
    Ok((RowMark { last, count }, holds))
}

/// See [`crate::store::Store::session_changes`].
pub(super) fn session_changes(
    c: &Connection,
    project_id: &str,
    session_id: &str,
    since: Option<&SessionMark>,
    payloads: bool,
) -> Result<Option<SessionChanges>, StoreError> {
    // One snapshot for the marks and the rows (a read transaction; nothing is written).
    let tx = c.unchecked_transaction()?;
    let (events, events_hold) = row_mark(
        &tx,
        "SELECT COALESCE(MAX(rowid), 0), COUNT(*), COALESCE(SUM(rowid <= ?3), 0)
         FROM events WHERE project_id = ?1 AND session_id = ?2",
        project_id,
        session_id,
        since.map(|m| &m.events),
    )?;
    let (log_records, records_hold) = row_mark(
        &tx,
        "SELECT COALESCE(MAX(seq), 0), COUNT(*), COALESCE(SUM(seq <= ?3), 0)
         FROM otel_logs WHERE project_id = ?1 AND session_id = ?2",
        project_id,
        session_id,
        since.map(|m| &m.log_records),
    )?;
    let (logs, logs_hold) = row_mark(
        &tx,
        "SELECT COALESCE(MAX(seq), 0), COUNT(*), COALESCE(SUM(seq <= ?3), 0)
         FROM logs WHERE project_id = ?1 AND session_id = ?2",
        project_id,
        session_id,
        since.map(|m| &m.logs),
    )?;
    let mark = SessionMark {
        events,
        log_records,
        logs,
    };
    let since = since.filter(|_| events_hold && records_hold && logs_hold);
    let Some(since) = since else {
        let detail = session_detail(&tx, project_id, session_id, payloads)?;
        return Ok(detail.map(|detail| SessionChanges {
            detail,
            outline: Vec::new(),
            mark,
            whole: true,
        }));
    };
    let Some((summary, host_env, video)) = session_head(&tx, project_id, session_id)? else {
        return Ok(None);
    };
    let sql = if payloads {
        &*EVENTS_OF_SESSION_AFTER
    } else {
        &*EVENTS_OF_SESSION_AFTER_WITHOUT_PAYLOADS
    };
    let mut new_events = Vec::new();
    {
        let mut stmt = tx.prepare_cached(sql)?;
        let mut rows = stmt.query(params![project_id, session_id, since.events.last])?;
        while let Some(row) = rows.next()? {
            new_events.push(event_from_row(row)?);
        }
    }
    sort_by_start(&mut new_events);
    let tree_may_change =
        mark.events.count > since.events.count || mark.log_records.count > since.log_records.count;
    let mut outline = if !tree_may_change {
        Vec::new()
    } else {
        tx.prepare_cached(
            "SELECT id, parent_id, span_id, start_time FROM events
             WHERE project_id = ?1 AND session_id = ?2",
        )?
        .query_map(params![project_id, session_id], |r| {
            Ok(EventOutline {
                id: r.get(0)?,
                parent_id: r.get(1)?,
                span_id: r.get(2)?,
                start_time: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?
    };
    outline.sort_unstable_by(|a, b| {
        (a.start_time.as_str(), a.id.as_str()).cmp(&(b.start_time.as_str(), b.id.as_str()))
    });
    let detail = SessionDetail {
        summary,
        host_env: parse_json(host_env),
        video,
        agents: agents_of(&tx, project_id, session_id)?,
        events: new_events,
        logs: uploaded_logs_after(&tx, project_id, session_id, since.logs.last)?,
        log_records: log_records_after(&tx, project_id, session_id, since.log_records.last)?,
    };
    Ok(Some(SessionChanges {
        detail,
        outline,
        mark,
        whole: false,
    }))
}

/// One event of one of the project's sessions.
pub(super) fn event_detail(
    c: &Connection,
    project_id: &str,
    session_id: &str,
    event_id: &str,
) -> Result<Option<EventRow>, StoreError> {
    Ok(c.prepare_cached(&EVENT)?
        .query_row(params![project_id, session_id, event_id], event_from_row)
        .optional()?)
}

/// The events of a session that name tool calls, themselves or through the log records of
/// their span (an OTLP span's event id is its span id).
pub(super) fn call_refs(
    c: &Connection,
    project_id: &str,
    session_id: &str,
) -> Result<Vec<crate::store::CallRef>, StoreError> {
    let rows = c
        .prepare_cached(
            "SELECT id, kind, span_id, call_ids FROM events
             WHERE project_id = ?1 AND session_id = ?2 AND call_ids IS NOT NULL
             UNION ALL
             SELECT e.id, e.kind, e.span_id, l.call_ids FROM otel_logs l
             JOIN events e ON e.project_id = l.project_id AND e.session_id = l.session_id
                          AND e.id = l.span_id
             WHERE l.project_id = ?1 AND l.session_id = ?2 AND l.call_ids IS NOT NULL",
        )?
        .query_map(params![project_id, session_id], |r| {
            Ok(crate::store::CallRef {
                event_id: r.get(0)?,
                kind: r.get(1)?,
                span_id: r.get(2)?,
                call_ids: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The agents seen in the project, with the number of sessions each appears in, most first.
pub(super) fn list_agents(
    c: &Connection,
    project_id: &str,
) -> Result<Vec<AgentSummary>, StoreError> {
    let rows = c
        .prepare_cached(
            "SELECT f.value, a.name, COUNT(*) FROM session_facets f
             LEFT JOIN agents a ON a.project_id = f.project_id AND a.id = f.value
             WHERE f.project_id = ?1 AND f.facet = 'agent'
             GROUP BY f.value ORDER BY COUNT(*) DESC, f.value",
        )?
        .query_map([project_id], |r| {
            Ok(AgentSummary {
                id: r.get(0)?,
                name: r.get(1)?,
                session_count: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The totals of a day, created empty on first sight.
fn day(days: &mut BTreeMap<String, DayStats>, date: String) -> &mut DayStats {
    days.entry(date.clone()).or_insert_with(|| DayStats {
        date,
        sessions: 0,
        events: 0,
        error_events: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost: 0.0,
    })
}

/// Statistics of the project's sessions and events started in `[from, to)`.
pub(super) fn stats(
    c: &Connection,
    project_id: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<RawStats, StoreError> {
    // Open bounds as bounds that every stored timestamp passes.
    let from = from.unwrap_or("");
    let to = to.unwrap_or(OPEN_END);
    let mut days: BTreeMap<String, DayStats> = BTreeMap::new();
    let mut stats = RawStats::default();
    {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT substr(start_time, 1, 10), error_count, {DURATION_SQL}
             FROM sessions
             WHERE project_id = ?1 AND start_time >= ?2 AND start_time < ?3"
        ))?;
        let mut rows = stmt.query(params![project_id, from, to])?;
        while let Some(row) = rows.next()? {
            let date: String = row.get(0)?;
            let errors: i64 = row.get(1)?;
            let duration: Option<i64> = row.get(2)?;
            day(&mut days, date).sessions += 1;
            stats.sessions += 1;
            if errors > 0 {
                stats.sessions_with_errors += 1;
            }
            if let Some(duration) = duration {
                stats.durations_ms.push(duration);
            }
        }
    }
    // Events: the whole UTC days from the daily totals, the partial days at the ends from
    // the events themselves.
    let spans = stats_spans(from, to);
    let mut models: BTreeMap<String, ModelStats> = BTreeMap::new();
    if let Some((first, end)) = &spans.days {
        add_event_stats(
            c,
            "SELECT day, SUM(events), SUM(error_events), SUM(input_tokens),
                SUM(output_tokens), SUM(cost)
             FROM daily_totals
             WHERE project_id = ?1 AND day >= ?2 AND day < ?3
             GROUP BY day",
            "SELECT model, SUM(events), SUM(input_tokens), SUM(output_tokens), SUM(cost)
             FROM daily_totals
             WHERE project_id = ?1 AND model != '' AND day >= ?2 AND day < ?3
             GROUP BY model",
            [project_id, first, end],
            &mut days,
            &mut models,
        )?;
    }
    for (from, to) in &spans.partial {
        add_event_stats(
            c,
            "SELECT substr(start_time, 1, 10), COUNT(*),
                SUM(status = 'error' OR kind = 'errors'),
                COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                COALESCE(SUM(cost), 0.0)
             FROM events
             WHERE project_id = ?1 AND start_time >= ?2 AND start_time < ?3
             GROUP BY 1",
            "SELECT model, COUNT(*), COALESCE(SUM(input_tokens), 0),
                COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost), 0.0)
             FROM events
             WHERE project_id = ?1 AND model IS NOT NULL
               AND start_time >= ?2 AND start_time < ?3
             GROUP BY model",
            [project_id, from, to],
            &mut days,
            &mut models,
        )?;
    }
    stats.models = by_cost(models);
    stats.durations_ms.sort_unstable();
    stats.days = days.into_values().collect();
    Ok(stats)
}

/// Adds what `days_sql` (day, events, error events, input and output tokens, cost) and
/// `models_sql` (model, calls, input and output tokens, cost) answer for `params`.
fn add_event_stats(
    c: &Connection,
    days_sql: &str,
    models_sql: &str,
    params: [&str; 3],
    days: &mut BTreeMap<String, DayStats>,
    models: &mut BTreeMap<String, ModelStats>,
) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached(days_sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        let d = day(days, row.get(0)?);
        d.events += row.get::<_, i64>(1)?;
        d.error_events += row.get::<_, Option<i64>>(2)?.unwrap_or(0);
        d.input_tokens += row.get::<_, i64>(3)?;
        d.output_tokens += row.get::<_, i64>(4)?;
        d.cost += row.get::<_, f64>(5)?;
    }
    let mut stmt = c.prepare_cached(models_sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        let model: String = row.get(0)?;
        let m = models.entry(model.clone()).or_insert_with(|| ModelStats {
            model,
            calls: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost: 0.0,
        });
        m.calls += row.get::<_, i64>(1)?;
        m.input_tokens += row.get::<_, i64>(2)?;
        m.output_tokens += row.get::<_, i64>(3)?;
        m.cost += row.get::<_, f64>(4)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::sqlite::test_support::{store_session, temp_store};
    use crate::store::{EventRecord, SessionRecord, Store};

    #[test]
    fn a_sessions_events_come_by_start_time_then_id() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let at = |s: &str| format!("2026-11-20T10:00:{s}+00:00");
        // (id, start): index (id) order differs from time order; ties go by id
        let stored = [
            ("a", at("09.000000")),
            ("b", at("01.000000")),
            ("c", at("01.000000")),
            ("B", at("05.000000")),
            ("é", at("01.000000")),
            ("z", at("00.500000")),
        ];
        let events = stored
            .iter()
            .map(|(id, start)| EventRecord {
                id: (*id).into(),
                session_id: "s1".into(),
                kind: "actions".into(),
                start_time: start.clone(),
                attributes: serde_json::json!({}),
                ..EventRecord::default()
            })
            .collect();
        let s1 = SessionRecord {
            id: "s1".into(),
            ..SessionRecord::default()
        };
        store_session(&store, &project, s1, events);
        let expected: Vec<String> = store
            .write_conn()
            .prepare("SELECT id FROM events WHERE session_id = 's1' ORDER BY start_time, id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(expected, ["z", "b", "c", "é", "B", "a"]);
        for detail in [
            store.session_detail(&project, "s1"),
            store.session_detail_without_payloads(&project, "s1"),
        ] {
            let ids: Vec<String> = detail
                .unwrap()
                .unwrap()
                .events
                .into_iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(ids, expected);
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
