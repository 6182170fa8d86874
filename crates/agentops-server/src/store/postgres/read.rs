//! A session's detail and changes, one event, agents, statistics, log records and metrics.
//!
//! A session's detail and its changes read everything from one snapshot: a read-only
//! `REPEATABLE READ` transaction. Events are only ever selected with their project and session
//! (the leading columns of the key and of `events_by_seq`), or, for statistics, their project
//! and start time (`events_by_time`, which also prunes the month partitions).

use std::sync::LazyLock;

use tokio_postgres::{Client, GenericClient, IsolationLevel, Row, Transaction};

use super::dictionary;
use super::list::session_duration_sql;
use super::pg_error;
use super::schema::DURATION_SQL;
use crate::store::changes::{self, TableMark};
use crate::store::columns::event_select_list_with;
use crate::store::decode::{
    agent_from, call_ref_from, call_refs_sql, event_from, log_record_from, metric_info_from,
    metric_point_from, outline_from, sort_by_start, summary_columns, summary_from, Columns,
    LOG_RECORD_COLUMNS, METRIC_POINT_COLUMNS, OUTLINE_COLUMNS, PACKED,
};
use crate::store::json::parse_json;
use crate::store::rollup::{stats_spans, OPEN_END};
use crate::store::stats::{EventTotals, StatsBuilder};
use crate::store::{
    AgentRecord, AgentSummary, CallRef, EventRow, LogRecord, MetricInfo, MetricPoint, RawStats,
    RowMark, SessionChanges, SessionDetail, SessionMark, SessionSummary, StoreError,
    MAX_METRIC_POINTS, MAX_SESSION_LOG_RECORDS,
};

/// The event columns with or without payloads (a left-out `packed` typed, so that it reads as
/// bytes).
fn event_columns(payloads: bool) -> String {
    event_select_list_with(payloads, "NULL::bytea")
}

/// A session's events (`$1` project, `$2` session), with or without payloads.
static EVENTS_OF_SESSION: LazyLock<[String; 2]> = LazyLock::new(|| {
    [false, true].map(|payloads| {
        format!(
            "SELECT {} FROM events WHERE project_id = $1 AND session_id = $2",
            event_columns(payloads)
        )
    })
});

/// A session's events numbered above `$3` (`$1` project, `$2` session), with or without
/// payloads.
static EVENTS_OF_SESSION_AFTER: LazyLock<[String; 2]> = LazyLock::new(|| {
    [false, true].map(|payloads| {
        format!(
            "SELECT {} FROM events WHERE project_id = $1 AND session_id = $2 AND seq > $3",
            event_columns(payloads)
        )
    })
});

/// One event (`$1` project, `$2` session, `$3` event); the first stored should several start
/// times hold one id.
static EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events WHERE project_id = $1 AND session_id = $2 AND id = $3
         ORDER BY seq LIMIT 1",
        event_columns(true)
    )
});

/// The session's row (`$1` project, `$2` session): its summary, then its host environment
/// and video at 11 and 12.
static SESSION_HEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM sessions s WHERE s.project_id = $1 AND s.id = $2",
        summary_columns(&session_duration_sql())
    )
});

/// Starts the read-only snapshot a session is read from.
async fn snapshot(client: &mut Client) -> Result<Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_error)
}

/// Whether the project has a session with this id.
pub(super) async fn session_exists(
    client: &mut Client,
    project_id: &str,
    session_id: &str,
) -> Result<bool, StoreError> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM sessions WHERE project_id = $1 AND id = $2",
            &[&project_id, &session_id],
        )
        .await
        .map_err(pg_error)?
        .is_some())
}

/// One session with its events (with or without their payloads), read from one snapshot.
pub(super) async fn session_detail(
    client: &mut Client,
    project_id: &str,
    session_id: &str,
    payloads: bool,
) -> Result<Option<SessionDetail>, StoreError> {
    let tx = snapshot(client).await?;
    let detail = detail_in(&tx, project_id, session_id, payloads).await?;
    tx.commit().await.map_err(pg_error)?;
    Ok(detail)
}

/// [`session_detail`] in the transaction `tx`.
async fn detail_in(
    tx: &Transaction<'_>,
    project_id: &str,
    session_id: &str,
    payloads: bool,
) -> Result<Option<SessionDetail>, StoreError> {
    let Some(head) = session_head(tx, project_id, session_id).await? else {
        return Ok(None);
    };
    // Read in index order and sorted here (see `sort_by_start`).
    let rows = tx
        .query(
            &EVENTS_OF_SESSION[usize::from(payloads)],
            &[&project_id, &session_id],
        )
        .await
        .map_err(pg_error)?;
    let mut events = events_from(tx, &rows).await?;
    sort_by_start(&mut events);
    Ok(Some(SessionDetail {
        summary: head.summary,
        host_env: parse_json(head.host_env),
        video: head.video,
        agents: agents_of(tx, project_id, session_id).await?,
        events,
        logs: uploaded_logs_after(tx, project_id, session_id, 0).await?,
        log_records: log_records_of(tx, project_id, session_id, None, 0).await?,
    }))
}

/// A session's row: its summary, host environment (JSON text) and video.
struct SessionHead {
    summary: SessionSummary,
    host_env: Option<String>,
    video: Option<String>,
}

/// The session's row, if the project has it.
async fn session_head(
    c: &impl GenericClient,
    project_id: &str,
    session_id: &str,
) -> Result<Option<SessionHead>, StoreError> {
    let Some(row) = c
        .query_opt(&*SESSION_HEAD, &[&project_id, &session_id])
        .await
        .map_err(pg_error)?
    else {
        return Ok(None);
    };
    Ok(Some(SessionHead {
        summary: summary_from(&row)?,
        host_env: row.opt_text(11)?,
        video: row.opt_text(12)?,
    }))
}

/// The agents registered in a session, in the order they were.
async fn agents_of(
    c: &impl GenericClient,
    project_id: &str,
    session_id: &str,
) -> Result<Vec<AgentRecord>, StoreError> {
    // `agents` has no row number: its key (project, id) is the order SQLite's rowid gives
    // agents registered in one write, and registration order is not kept across writes.
    let rows = c
        .query(
            "SELECT id, name FROM agents WHERE project_id = $1 AND session_id = $2
             ORDER BY seq",
            &[&project_id, &session_id],
        )
        .await
        .map_err(pg_error)?;
    rows.iter()
        .map(|r| {
            Ok(AgentRecord {
                id: r.text(0)?,
                name: r.text(1)?,
            })
        })
        .collect()
}

/// A session's uploaded logs numbered above `after`, oldest first.
async fn uploaded_logs_after(
    c: &impl GenericClient,
    project_id: &str,
    session_id: &str,
    after: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .query(
            "SELECT body FROM logs WHERE project_id = $1 AND session_id = $2 AND seq > $3
             ORDER BY seq",
            &[&project_id, &session_id, &after],
        )
        .await
        .map_err(pg_error)?;
    rows.iter().map(|r| r.text(0)).collect()
}

/// A session's OTLP log records numbered above `after` (of the span `span_id` only, when
/// given), by time then number, the oldest [`MAX_SESSION_LOG_RECORDS`]; `event_id` is left
/// for the caller.
async fn log_records_of(
    c: &impl GenericClient,
    project_id: &str,
    session_id: &str,
    span_id: Option<&str>,
    after: i64,
) -> Result<Vec<LogRecord>, StoreError> {
    let limit = MAX_SESSION_LOG_RECORDS as i64;
    let rows = c
        .query(
            &format!(
                "SELECT {LOG_RECORD_COLUMNS} FROM otel_logs
                 WHERE project_id = $1 AND session_id = $2 AND seq > $3
                   AND ($4::text IS NULL OR span_id = $4)
                 ORDER BY time, seq LIMIT $5"
            ),
            &[&project_id, &session_id, &after, &span_id, &limit],
        )
        .await
        .map_err(pg_error)?;
    rows.iter().map(log_record_from).collect()
}

/// The mark of one table's rows of a session now, and whether `since` still holds for them
/// (see [`crate::store::ReadStore::session_changes`]). `table` has a `seq` numbering its rows.
async fn row_mark(
    c: &impl GenericClient,
    table: &str,
    project_id: &str,
    session_id: &str,
    since: Option<&RowMark>,
) -> Result<TableMark, StoreError> {
    let last_seen = since.map_or(0, |m| m.last);
    let row: Row = c
        .query_one(
            &format!(
                "SELECT COALESCE(MAX(seq), 0), COUNT(*), COUNT(*) FILTER (WHERE seq <= $3)
                 FROM {table} WHERE project_id = $1 AND session_id = $2"
            ),
            &[&project_id, &session_id, &last_seen],
        )
        .await
        .map_err(pg_error)?;
    Ok(TableMark::new(since, row.int(0)?, row.int(1)?, row.int(2)?))
}

/// See [`crate::store::ReadStore::session_changes`]: the marks and the rows from one snapshot.
pub(super) async fn session_changes(
    client: &mut Client,
    project_id: &str,
    session_id: &str,
    since: Option<&SessionMark>,
    payloads: bool,
) -> Result<Option<SessionChanges>, StoreError> {
    let tx = snapshot(client).await?;
    let changes = changes_in(&tx, project_id, session_id, since, payloads).await?;
    tx.commit().await.map_err(pg_error)?;
    Ok(changes)
}

/// [`session_changes`] in the transaction `tx`.
async fn changes_in(
    tx: &Transaction<'_>,
    project_id: &str,
    session_id: &str,
    since: Option<&SessionMark>,
    payloads: bool,
) -> Result<Option<SessionChanges>, StoreError> {
    let (mark, since) = changes::marks(
        since,
        row_mark(
            tx,
            "events",
            project_id,
            session_id,
            since.map(|m| &m.events),
        )
        .await?,
        row_mark(
            tx,
            "otel_logs",
            project_id,
            session_id,
            since.map(|m| &m.log_records),
        )
        .await?,
        row_mark(tx, "logs", project_id, session_id, since.map(|m| &m.logs)).await?,
    );
    let Some(since) = since else {
        let detail = detail_in(tx, project_id, session_id, payloads).await?;
        return Ok(changes::whole(detail, mark));
    };
    let Some(head) = session_head(tx, project_id, session_id).await? else {
        return Ok(None);
    };
    let rows = tx
        .query(
            &EVENTS_OF_SESSION_AFTER[usize::from(payloads)],
            &[&project_id, &session_id, &since.events.last],
        )
        .await
        .map_err(pg_error)?;
    let mut new_events = events_from(tx, &rows).await?;
    sort_by_start(&mut new_events);
    let outline = if changes::tree_may_change(&mark, since) {
        let rows = tx
            .query(
                &format!(
                    "SELECT {OUTLINE_COLUMNS} FROM events
                     WHERE project_id = $1 AND session_id = $2"
                ),
                &[&project_id, &session_id],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(outline_from)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let detail = SessionDetail {
        summary: head.summary,
        host_env: parse_json(head.host_env),
        video: head.video,
        agents: agents_of(tx, project_id, session_id).await?,
        events: new_events,
        logs: uploaded_logs_after(tx, project_id, session_id, since.logs.last).await?,
        log_records: log_records_of(tx, project_id, session_id, None, since.log_records.last)
            .await?,
    };
    Ok(Some(changes::delta(detail, outline, mark)))
}

/// One event.
pub(super) async fn event_detail(
    client: &mut Client,
    project_id: &str,
    session_id: &str,
    event_id: &str,
) -> Result<Option<EventRow>, StoreError> {
    let rows = client
        .query(&*EVENT, &[&project_id, &session_id, &event_id])
        .await
        .map_err(pg_error)?;
    Ok(events_from(client, &rows).await?.pop())
}

/// The events of `rows` (of [`event_columns`]), their payloads unpacked: with the
/// dictionaries of the database, should another replica have trained one since.
async fn events_from(
    client: &impl GenericClient,
    rows: &[Row],
) -> Result<Vec<EventRow>, StoreError> {
    dictionary::know_those_of(client, rows, PACKED).await?;
    rows.iter().map(event_from).collect()
}

/// A session's OTLP log records by time (the oldest [`MAX_SESSION_LOG_RECORDS`]), or only
/// those of one span; `event_id` is left for the caller.
pub(super) async fn log_records(
    client: &mut Client,
    project_id: &str,
    session_id: &str,
    span_id: Option<&str>,
) -> Result<Vec<LogRecord>, StoreError> {
    log_records_of(&*client, project_id, session_id, span_id, 0).await
}

/// The events of a session that name tool calls, themselves or through the log records of
/// their span (an OTLP span's event id is its span id).
pub(super) async fn call_refs(
    client: &mut Client,
    project_id: &str,
    session_id: &str,
) -> Result<Vec<CallRef>, StoreError> {
    let rows = client
        .query(&call_refs_sql("$1", "$2"), &[&project_id, &session_id])
        .await
        .map_err(pg_error)?;
    rows.iter().map(call_ref_from).collect()
}

/// The metrics the project has points of, by name; each with the kind and unit of its
/// newest point.
pub(super) async fn metric_names(
    client: &mut Client,
    project_id: &str,
) -> Result<Vec<MetricInfo>, StoreError> {
    let rows = client
        .query(
            "SELECT g.name, l.kind, l.unit, g.points, g.last_time
             FROM (SELECT name, COUNT(*) AS points, MAX(time) AS last_time FROM metric_points
                   WHERE project_id = $1 GROUP BY name) g
             CROSS JOIN LATERAL (
                 SELECT kind, unit FROM metric_points m
                 WHERE m.project_id = $1 AND m.name = g.name
                 ORDER BY m.time DESC, m.seq DESC LIMIT 1) l
             ORDER BY g.name COLLATE \"C\"",
            &[&project_id],
        )
        .await
        .map_err(pg_error)?;
    rows.iter().map(metric_info_from).collect()
}

/// A metric's points in `[from, to)` by time (the oldest [`MAX_METRIC_POINTS`]).
pub(super) async fn metric_points(
    client: &mut Client,
    project_id: &str,
    name: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<MetricPoint>, StoreError> {
    // Open bounds as bounds that every stored timestamp passes (text in the "C" collation).
    let from = from.unwrap_or("");
    let to = to.unwrap_or(OPEN_END);
    let limit = MAX_METRIC_POINTS as i64;
    let rows = client
        .query(
            &format!(
                "SELECT {METRIC_POINT_COLUMNS} FROM metric_points
                 WHERE project_id = $1 AND name = $2 AND time >= $3 AND time < $4
                 ORDER BY time, seq LIMIT $5"
            ),
            &[&project_id, &name, &from, &to, &limit],
        )
        .await
        .map_err(pg_error)?;
    rows.iter().map(metric_point_from).collect()
}

/// The agents seen in the project, with the number of sessions each appears in, most first.
pub(super) async fn list_agents(
    client: &mut Client,
    project_id: &str,
) -> Result<Vec<AgentSummary>, StoreError> {
    // (an agent id has one registration at most: `agents` is keyed by project and id)
    let rows = client
        .query(
            "SELECT f.value, a.name, COUNT(*) FROM session_facets f
             LEFT JOIN agents a ON a.project_id = f.project_id AND a.id = f.value
             WHERE f.project_id = $1 AND f.facet = 'agent'
             GROUP BY f.value, a.name ORDER BY COUNT(*) DESC, f.value COLLATE \"C\"",
            &[&project_id],
        )
        .await
        .map_err(pg_error)?;
    rows.iter().map(agent_from).collect()
}

/// Statistics of sessions and events started in `[from, to)`: whole UTC hours from the hourly
/// totals, the partial hours at the ends from the events themselves.
pub(super) async fn stats(
    client: &mut Client,
    project_id: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<RawStats, StoreError> {
    // Open bounds as bounds that every stored timestamp passes.
    let from = from.unwrap_or("");
    let to = to.unwrap_or(OPEN_END);
    let tx = snapshot(client).await?;
    let mut stats = StatsBuilder::default();
    let rows = tx
        .query(
            &format!(
                "SELECT substr(start_time, 1, 10), error_count, {DURATION_SQL}
                 FROM sessions
                 WHERE project_id = $1 AND start_time >= $2 AND start_time < $3"
            ),
            &[&project_id, &from, &to],
        )
        .await
        .map_err(pg_error)?;
    {
        for row in &rows {
            stats.add_session(row.text(0)?, row.int(1)?, row.opt_int(2)?);
        }
    }
    let spans = stats_spans(from, to);
    if let Some((first, end)) = &spans.hours {
        add_event_stats(
            &tx,
            "SELECT left(hour, 10), SUM(events)::bigint, SUM(error_events)::bigint,
                SUM(input_tokens)::bigint, SUM(output_tokens)::bigint, SUM(cost)
             FROM hourly_totals
             WHERE project_id = $1 AND hour >= $2 AND hour < $3
             GROUP BY 1",
            "SELECT model, SUM(events)::bigint, 0::bigint, SUM(input_tokens)::bigint,
                SUM(output_tokens)::bigint, SUM(cost)
             FROM hourly_totals
             WHERE project_id = $1 AND model <> '' AND hour >= $2 AND hour < $3
             GROUP BY model",
            [project_id, first, end],
            &mut stats,
        )
        .await?;
    }
    for (from, to) in &spans.partial {
        add_event_stats(
            &tx,
            "SELECT substr(start_time, 1, 10), COUNT(*),
                COUNT(*) FILTER (WHERE status = 'error' OR kind = 'errors'),
                COALESCE(SUM(input_tokens), 0)::bigint, COALESCE(SUM(output_tokens), 0)::bigint,
                COALESCE(SUM(cost), 0.0)
             FROM events
             WHERE project_id = $1 AND start_time >= $2 AND start_time < $3
             GROUP BY 1",
            "SELECT model, COUNT(*), 0::bigint, COALESCE(SUM(input_tokens), 0)::bigint,
                COALESCE(SUM(output_tokens), 0)::bigint, COALESCE(SUM(cost), 0.0)
             FROM events
             WHERE project_id = $1 AND model IS NOT NULL
               AND start_time >= $2 AND start_time < $3
             GROUP BY model",
            [project_id, from, to],
            &mut stats,
        )
        .await?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(stats.finish())
}

/// Adds what `days_sql` (day, then [`EventTotals`]) and `models_sql` (model, then
/// [`EventTotals`], its events being the calls) answer for `params`.
async fn add_event_stats(
    tx: &Transaction<'_>,
    days_sql: &str,
    models_sql: &str,
    params: [&str; 3],
    stats: &mut StatsBuilder,
) -> Result<(), StoreError> {
    let totals = |row: &Row| -> Result<EventTotals, StoreError> {
        Ok(EventTotals {
            events: row.int(1)?,
            error_events: row.opt_int(2)?.unwrap_or(0),
            input_tokens: row.int(3)?,
            output_tokens: row.int(4)?,
            cost: row.real(5)?,
        })
    };
    let [a, b, c] = params;
    for row in tx.query(days_sql, &[&a, &b, &c]).await.map_err(pg_error)? {
        stats.add_day(row.text(0)?, totals(&row)?);
    }
    for row in tx
        .query(models_sql, &[&a, &b, &c])
        .await
        .map_err(pg_error)?
    {
        stats.add_model(row.text(0)?, totals(&row)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::list::tests::plan;
    use super::super::test_support::temp_store;
    use super::super::{pg_error, PgStore};
    use super::{EVENTS_OF_SESSION, EVENTS_OF_SESSION_AFTER};
    use crate::store::list_sql::Arg;
    use crate::store::{read_checks, AdminStore, ReadStore, SessionRecord, StoreError};

    /// Runs `sql` (statements without results).
    fn execute(store: &PgStore, sql: &str) {
        store
            .with_client(async |c| c.batch_execute(sql).await.map_err(pg_error))
            .unwrap();
    }

    #[test]
    fn a_sessions_events_come_by_start_time_then_id() {
        let (store, _db) = temp_store();
        read_checks::events_come_by_start_time_then_id(&store);
    }

    #[test]
    fn details_logs_metrics_agents_and_stats_read_back() {
        let (store, _db) = temp_store();
        read_checks::details_logs_metrics_and_agents_read_back(&store);
        read_checks::stats_agree_from_totals_and_events(&store);
    }

    #[test]
    fn events_read_back_as_raw_json_serialise_as_the_parsed_values_did() {
        let (store, _db) = temp_store();
        let project = read_checks::events_read_back_as_written(&store);
        let stored = store
            .with_client(async |c| {
                let row = c
                    .query_one(
                        "SELECT count(prompt), count(packed) FROM events WHERE project_id = $1",
                        &[&project],
                    )
                    .await
                    .map_err(pg_error)?;
                Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
            })
            .unwrap();
        assert_eq!(stored, (0, 3), "payloads are stored packed only");
    }

    #[test]
    fn rows_stored_without_packing_read_back_from_their_text_columns() {
        let (store, _db) = temp_store();
        let project = store.create_project("p").unwrap();
        let s1 = SessionRecord {
            id: "s1".into(),
            ..SessionRecord::default()
        };
        read_checks::store_session(&store, &project, s1, Vec::new());
        execute(&store, &read_checks::unpacked_rows_sql(&project));
        read_checks::unpacked_rows_read_back(&store, &project);
        // damaged packed bytes are a corrupt value, not a panic
        execute(
            &store,
            &format!(
                "UPDATE events SET packed = '\\x09' WHERE project_id = '{project}' AND id = 'old'"
            ),
        );
        assert!(matches!(
            store.event_detail(&project, "s1", "old"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn both_engines_answer_alike() {
        let (pg, _db) = temp_store();
        let dir = std::env::temp_dir().join(format!("agentops-alike-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = crate::store::sqlite::SqliteStore::open(&dir.join("agentops.db")).unwrap();
        read_checks::engines_answer_alike(&sqlite, &pg);
        drop(sqlite);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_sessions_rows_are_read_through_its_indexes() {
        let (store, _db) = temp_store();
        let project = store.create_project("p").unwrap();
        read_checks::seed(&store, &project);
        let args = [Arg::Text(project.clone()), Arg::Text("s1".into())];
        let after = [args[0].clone(), args[1].clone(), Arg::Int(0)];
        for (sql, args) in [
            (&EVENTS_OF_SESSION[1], &args[..]),
            (&EVENTS_OF_SESSION_AFTER[0], &after[..]),
        ] {
            // (tiny tables may be read through any index of the project: without the one by
            // time, the plan shows whether the session's rows are found through an index)
            let plan = plan(&store, "DROP INDEX events_by_time", sql, args);
            let conditions: Vec<&str> = plan.lines().filter(|l| l.contains("Index Cond")).collect();
            assert!(!conditions.is_empty(), "{sql}:\n{plan}");
            assert!(
                conditions.iter().all(|c| c.contains("session_id")),
                "{sql}:\n{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{sql}:\n{plan}");
        }
    }
}
