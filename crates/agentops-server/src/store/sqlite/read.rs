//! Reads other than the session list: a session's detail, one event, the agents and the
//! statistics.

use std::sync::LazyLock;

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{event_from_row, summary_columns, summary_from_row};
use super::schema::DURATION_SQL;
use crate::store::changes::{self, TableMark};
use crate::store::columns::event_select_list;
use crate::store::decode::{
    agent_from, call_ref_from, call_refs_sql, log_record_from, outline_from, sort_by_start,
    LOG_RECORD_COLUMNS, OUTLINE_COLUMNS,
};
use crate::store::json::parse_json;
use crate::store::rollup::{stats_spans, OPEN_END};
use crate::store::stats::{EventTotals, StatsBuilder};
use crate::store::{
    AgentRecord, AgentSummary, EventRow, LogRecord, RawStats, RowMark, SessionChanges,
    SessionDetail, SessionMark, SessionSummary, StoreError, MAX_SESSION_LOG_RECORDS,
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
    // Read in index order and sorted here (see `sort_by_start`).
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
    let mut select = c.prepare_cached(&format!(
        "SELECT {LOG_RECORD_COLUMNS}
         FROM otel_logs WHERE project_id = ?1 AND session_id = ?2 AND seq > ?3
         ORDER BY time, seq LIMIT ?4"
    ))?;
    let rows = select.query_map(
        params![
            project_id,
            session_id,
            after,
            MAX_SESSION_LOG_RECORDS as i64
        ],
        |r| log_record_from(r),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The mark of one table's rows of a session now, and whether `since` still holds for them
/// (see [`crate::store::ReadStore::session_changes`]). `table` numbers its rows by `number`.
fn row_mark(
    c: &Connection,
    table: &str,
    number: &str,
    project_id: &str,
    session_id: &str,
    since: Option<&RowMark>,
) -> Result<TableMark, StoreError> {
    let last_seen = since.map_or(0, |m| m.last);
    let (last, count, at_or_below): (i64, i64, i64) = c
        .prepare_cached(&format!(
            "SELECT COALESCE(MAX({number}), 0), COUNT(*), COALESCE(SUM({number} <= ?3), 0)
             FROM {table} WHERE project_id = ?1 AND session_id = ?2"
        ))?
        .query_row(params![project_id, session_id, last_seen], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(TableMark::new(since, last, count, at_or_below))
}

/// See [`crate::store::ReadStore::session_changes`].
pub(super) fn session_changes(
    c: &Connection,
    project_id: &str,
    session_id: &str,
    since: Option<&SessionMark>,
    payloads: bool,
) -> Result<Option<SessionChanges>, StoreError> {
    // One snapshot for the marks and the rows (a read transaction; nothing is written).
    let tx = c.unchecked_transaction()?;
    let mark = |table, number, since| row_mark(&tx, table, number, project_id, session_id, since);
    let (mark, since) = changes::marks(
        since,
        mark("events", "rowid", since.map(|m| &m.events))?,
        mark("otel_logs", "seq", since.map(|m| &m.log_records))?,
        mark("logs", "seq", since.map(|m| &m.logs))?,
    );
    let Some(since) = since else {
        let detail = session_detail(&tx, project_id, session_id, payloads)?;
        return Ok(changes::whole(detail, mark));
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
    let outline = if changes::tree_may_change(&mark, since) {
        tx.prepare_cached(&format!(
            "SELECT {OUTLINE_COLUMNS} FROM events WHERE project_id = ?1 AND session_id = ?2"
        ))?
        .query_map(params![project_id, session_id], |r| outline_from(r))?
        .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let detail = SessionDetail {
        summary,
        host_env: parse_json(host_env),
        video,
        agents: agents_of(&tx, project_id, session_id)?,
        events: new_events,
        logs: uploaded_logs_after(&tx, project_id, session_id, since.logs.last)?,
        log_records: log_records_after(&tx, project_id, session_id, since.log_records.last)?,
    };
    Ok(Some(changes::delta(detail, outline, mark)))
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
/// their span.
pub(super) fn call_refs(
    c: &Connection,
    project_id: &str,
    session_id: &str,
) -> Result<Vec<crate::store::CallRef>, StoreError> {
    let rows = c
        .prepare_cached(&call_refs_sql("?1", "?2"))?
        .query_map(params![project_id, session_id], |r| call_ref_from(r))?
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
        .query_map([project_id], |r| agent_from(r))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The events of a partial hour `[?2, ?3)` of project `?1`, by day: read through
/// `events_by_time` (`+project_id` keeps the planner off the index by project, which would
/// read all of the project's events).
pub(super) const PARTIAL_HOUR_TOTALS: &str = "SELECT substr(start_time, 1, 10), COUNT(*),
        SUM(status = 'error' OR kind = 'errors'),
        COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
        COALESCE(SUM(cost), 0.0)
     FROM events
     WHERE +project_id = ?1 AND start_time >= ?2 AND start_time < ?3
     GROUP BY 1";

/// The events of a partial hour `[?2, ?3)` of project `?1`, by model: read through
/// `events_by_time`.
pub(super) const PARTIAL_HOUR_MODELS: &str =
    "SELECT model, COUNT(*), 0, COALESCE(SUM(input_tokens), 0),
        COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost), 0.0)
     FROM events
     WHERE +project_id = ?1 AND model IS NOT NULL
       AND start_time >= ?2 AND start_time < ?3
     GROUP BY model";

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
    let mut stats = StatsBuilder::default();
    {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT substr(start_time, 1, 10), error_count, {DURATION_SQL}
             FROM sessions
             WHERE project_id = ?1 AND start_time >= ?2 AND start_time < ?3"
        ))?;
        let mut rows = stmt.query(params![project_id, from, to])?;
        while let Some(row) = rows.next()? {
            stats.add_session(row.get(0)?, row.get(1)?, row.get(2)?);
        }
    }
    // Events: the whole UTC hours from the hourly totals, the partial hours at the ends from
    // the events themselves.
    let spans = stats_spans(from, to);
    if let Some((first, end)) = &spans.hours {
        add_event_stats(
            c,
            "SELECT substr(hour, 1, 10), SUM(events), SUM(error_events), SUM(input_tokens),
                SUM(output_tokens), SUM(cost)
             FROM hourly_totals
             WHERE project_id = ?1 AND hour >= ?2 AND hour < ?3
             GROUP BY 1",
            "SELECT model, SUM(events), 0, SUM(input_tokens), SUM(output_tokens), SUM(cost)
             FROM hourly_totals
             WHERE project_id = ?1 AND model != '' AND hour >= ?2 AND hour < ?3
             GROUP BY model",
            [project_id, first, end],
            &mut stats,
        )?;
    }
    for (from, to) in &spans.partial {
        add_event_stats(
            c,
            PARTIAL_HOUR_TOTALS,
            PARTIAL_HOUR_MODELS,
            [project_id, from, to],
            &mut stats,
        )?;
    }
    Ok(stats.finish())
}

/// Adds what `days_sql` (day, then [`EventTotals`]) and `models_sql` (model, then
/// [`EventTotals`], its events being the calls) answer for `params`.
fn add_event_stats(
    c: &Connection,
    days_sql: &str,
    models_sql: &str,
    params: [&str; 3],
    stats: &mut StatsBuilder,
) -> Result<(), StoreError> {
    let totals = |row: &rusqlite::Row<'_>| -> rusqlite::Result<EventTotals> {
        Ok(EventTotals {
            events: row.get(1)?,
            error_events: row.get::<_, Option<i64>>(2)?.unwrap_or(0),
            input_tokens: row.get(3)?,
            output_tokens: row.get(4)?,
            cost: row.get(5)?,
        })
    };
    let mut stmt = c.prepare_cached(days_sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        stats.add_day(row.get(0)?, totals(row)?);
    }
    let mut stmt = c.prepare_cached(models_sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        stats.add_model(row.get(0)?, totals(row)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::read_checks;
    use crate::store::sqlite::test_support::temp_store;

    #[test]
    fn a_sessions_events_come_by_start_time_then_id() {
        let (store, dir) = temp_store();
        read_checks::events_come_by_start_time_then_id(&store);
        // the order SQLite's own sorter gives
        let expected: Vec<String> = store
            .write_conn()
            .prepare("SELECT id FROM events WHERE session_id = 's1' ORDER BY start_time, id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(expected, ["z", "b", "c", "é", "B", "a"]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn details_logs_metrics_agents_and_stats_read_back() {
        let (store, dir) = temp_store();
        read_checks::details_logs_metrics_and_agents_read_back(&store);
        read_checks::stats_agree_from_totals_and_events(&store);
        std::fs::remove_dir_all(dir).ok();
    }
}
