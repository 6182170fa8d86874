//! Retention ([`Write::ExpireSessions`](crate::store::Write::ExpireSessions)): dropping whole
//! month partitions of `events` that hold only expired sessions' events, then deleting a
//! project's old sessions with everything that hangs off them, a bounded number of rows per
//! write, taking what the deleted events added off the aggregates kept beside them (the session
//! totals and the hourly totals), so that every commit leaves them consistent with the events
//! that remain. The row deletes are SQLite's (`store/sqlite/expire.rs`), statement for statement.
//!
//! A partition (`events_YYYY_MM`) is dropped when every event in it belongs to a session that
//! retention deletes (or to none): every project with events in it has a cutoff after the
//! month's end (a project kept forever, or one following the server's retention when the write
//! does not tell it, keeps it), and none of those events belongs to a session that ended (or
//! started) at or after its project's cutoff. Sessions are aged by their end and events are
//! partitioned by their start, so the second check is needed: a long session that ended lately
//! keeps its old events. What the dropped events added to their sessions' totals and to the
//! hourly totals is taken off in the same write; the sessions themselves go in later writes.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use tokio_postgres::Transaction;

use super::schema::{Month, SESSION_AGE_SQL};
use super::write::Applied;
use super::write_events::HourArrays;
use crate::store::rollup::{is_error, Rollup};
use crate::store::{EventRecord, Outcome, Retention};

/// What one retention write did.
#[derive(Debug)]
pub(super) struct Expired {
    /// Its answer.
    pub outcome: Outcome,
    /// Whether it dropped a partition of `events` (the store must forget the ones it knew once
    /// the transaction commits).
    pub dropped_partitions: bool,
}

/// Drops the partitions of `events` holding only expired events (see the module's doc), then
/// deletes up to about `max_rows` rows of the project's sessions older than `before` (see
/// [`SESSION_AGE_SQL`]), oldest first. The rows of dropped partitions count among the rows.
pub(super) async fn expire(
    tx: &Transaction<'_>,
    project_id: &str,
    before: &str,
    server_before: Option<&str>,
    max_rows: usize,
) -> Applied<Expired> {
    let dropped = drop_expired_partitions(tx, project_id, before, server_before).await?;
    let outcome = match expire_sessions(tx, project_id, before, max_rows).await? {
        Outcome::Expired { sessions, rows } => Outcome::Expired {
            sessions,
            rows: rows + dropped,
        },
        other => other,
    };
    Ok(Expired {
        outcome,
        dropped_partitions: dropped > 0,
    })
}

/// Deletes up to about `max_rows` rows of the project's sessions older than `before`, oldest
/// first (see [`expire`]).
async fn expire_sessions(
    tx: &Transaction<'_>,
    project_id: &str,
    before: &str,
    max_rows: usize,
) -> Applied<Outcome> {
    let budget = max_rows.max(1);
    // metric points taken before the cutoff go first, as many as the budget allows
    let points = count(
        tx.execute(
            "DELETE FROM metric_points WHERE seq IN
                (SELECT seq FROM metric_points WHERE project_id = $1 AND time < $2 LIMIT $3)",
            &[&project_id, &before, &sql_count(budget)],
        )
        .await?,
    );
    if points >= budget {
        return Ok(Outcome::Expired {
            sessions: 0,
            rows: points,
        });
    }
    let budget = budget - points;
    // locked, so that a write adding to one of them waits, then finds it gone
    let candidates: Vec<String> = tx
        .query(
            &format!(
                "SELECT id FROM sessions WHERE project_id = $1 AND {SESSION_AGE_SQL} < $2
                 ORDER BY {SESSION_AGE_SQL}, id LIMIT $3 FOR UPDATE"
            ),
            &[&project_id, &before, &sql_count(budget)],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut rows = 0;
    let mut sessions = 0;
    for session_id in &candidates {
        if rows >= budget {
            break;
        }
        let left = budget - rows;
        let events = delete_events(tx, project_id, session_id, left).await?;
        rows += events;
        if events == left {
            // There may be more: the next write goes on with this session.
            break;
        }
        let mut more = false;
        for table in ["logs", "otel_logs"] {
            let left = budget - rows;
            let logs = count(
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE seq IN
                            (SELECT seq FROM {table} WHERE project_id = $1 AND session_id = $2 LIMIT $3)"
                    ),
                    &[&project_id, session_id, &sql_count(left)],
                )
                .await?,
            );
            rows += logs;
            if logs == left {
                more = true;
                break;
            }
        }
        if more {
            break;
        }
        // Nothing big is left: the session goes with its agents and facets.
        for sql in [
            "DELETE FROM agents WHERE project_id = $1 AND session_id = $2",
            "DELETE FROM session_facets WHERE project_id = $1 AND session_id = $2",
            "DELETE FROM sessions WHERE project_id = $1 AND id = $2",
        ] {
            rows += count(tx.execute(sql, &[&project_id, session_id]).await?);
        }
        sessions += 1;
    }
    Ok(Outcome::Expired {
        sessions,
        rows: rows + points,
    })
}

/// Deletes up to `limit` events of a session, and takes what they added off the session's
/// totals and the hourly totals; how many were deleted.
async fn delete_events(
    tx: &Transaction<'_>,
    project_id: &str,
    session_id: &str,
    limit: usize,
) -> Applied<usize> {
    let deleted = tx
        .query(
            "DELETE FROM events WHERE (project_id, session_id, id, start_time) IN
                (SELECT project_id, session_id, id, start_time FROM events
                 WHERE project_id = $1 AND session_id = $2 LIMIT $3)
             RETURNING start_time, kind, status, model, input_tokens, output_tokens, cost",
            &[&project_id, &session_id, &sql_count(limit)],
        )
        .await?;
    let mut doomed = Vec::with_capacity(deleted.len());
    for r in &deleted {
        doomed.push(EventRecord {
            session_id: session_id.to_owned(),
            start_time: r.try_get(0)?,
            kind: r.try_get(1)?,
            status: r.try_get(2)?,
            model: r.try_get(3)?,
            input_tokens: r.try_get(4)?,
            output_tokens: r.try_get(5)?,
            cost: r.try_get(6)?,
            ..EventRecord::default()
        });
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    let mut rollup = Rollup::default();
    for event in &doomed {
        rollup.add(event);
    }
    take_off_sessions(
        tx,
        project_id,
        rollup.sessions().iter().map(|t| Taken {
            session_id: t.session_id,
            events: t.events,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cost: t.cost,
            errors: t.errors,
        }),
    )
    .await?;
    // The same sums a write added (see `rollup`), taken off; never below zero (a total that
    // saturated cannot be taken apart exactly). In key order, as writes lock them.
    let hours = HourArrays::of(&rollup);
    tx.execute(
        "UPDATE hourly_totals d SET events = GREATEST(d.events - u.events, 0),
            error_events = GREATEST(d.error_events - u.errors, 0),
            input_tokens = GREATEST(d.input_tokens - u.input_tokens, 0),
            output_tokens = GREATEST(d.output_tokens - u.output_tokens, 0),
            cost = GREATEST(d.cost - u.cost, 0.0)
         FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                     $7::bigint[], $8::double precision[])
              AS u(hour, model, events, errors, input_tokens, output_tokens, cost)
         WHERE d.project_id = $1 AND d.hour = u.hour AND d.model = u.model",
        &hours.params(&project_id),
    )
    .await?;
    tx.execute(
        "DELETE FROM hourly_totals d USING UNNEST($2::text[], $3::text[]) AS u(hour, model)
         WHERE d.project_id = $1 AND d.hour = u.hour AND d.model = u.model AND d.events <= 0",
        &[&project_id, &hours.hour, &hours.model],
    )
    .await?;
    Ok(doomed.len())
}

/// What deleted events of one session added to its totals.
struct Taken<'a> {
    session_id: &'a str,
    events: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost: f64,
    errors: i64,
}

/// Takes deleted events' sums off their sessions' totals (never below zero), in one statement.
async fn take_off_sessions<'a>(
    tx: &Transaction<'_>,
    project_id: &str,
    taken: impl Iterator<Item = Taken<'a>>,
) -> Applied<()> {
    let mut taken: Vec<Taken<'a>> = taken.collect();
    if taken.is_empty() {
        return Ok(());
    }
    taken.sort_unstable_by(|a, b| a.session_id.cmp(b.session_id));
    let ids: Vec<&str> = taken.iter().map(|t| t.session_id).collect();
    let events: Vec<i64> = taken.iter().map(|t| t.events).collect();
    let input: Vec<i64> = taken.iter().map(|t| t.input_tokens).collect();
    let output: Vec<i64> = taken.iter().map(|t| t.output_tokens).collect();
    let cost: Vec<f64> = taken.iter().map(|t| t.cost).collect();
    let errors: Vec<i64> = taken.iter().map(|t| t.errors).collect();
    tx.execute(
        "UPDATE sessions s SET event_count = GREATEST(s.event_count - u.events, 0),
            input_tokens = GREATEST(s.input_tokens - u.input_tokens, 0),
            output_tokens = GREATEST(s.output_tokens - u.output_tokens, 0),
            cost = GREATEST(s.cost - u.cost, 0.0),
            error_count = GREATEST(s.error_count - u.errors, 0)
         FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                     $6::double precision[], $7::bigint[])
              AS u(id, events, input_tokens, output_tokens, cost, errors)
         WHERE s.project_id = $1 AND s.id = u.id",
        &[&project_id, &ids, &events, &input, &output, &cost, &errors],
    )
    .await?;
    Ok(())
}

/// A partition found kept: database, table, day, the write's cutoffs.
type KeptPartition = (String, String, String, String);

/// Partitions found holding events of kept sessions, by database, partition, the day of the
/// check and the write's cutoffs: checked again by the next pass (whose cutoffs have moved),
/// not on every write of one pass (the check reads the partition).
static KEPT: LazyLock<Mutex<HashSet<KeptPartition>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// Drops the partitions of `events` that hold only expired events (see the module's doc),
/// taking their events off the session and hourly totals; how many events went.
///
/// `before` is the cutoff of `project_id`, `server_before` the server's (for the projects
/// that follow it). Other projects' own cutoffs are worked out from their retention, a day
/// early (the retention pass took its time a little earlier).
async fn drop_expired_partitions(
    tx: &Transaction<'_>,
    project_id: &str,
    before: &str,
    server_before: Option<&str>,
) -> Applied<usize> {
    let partitions = tx
        .query(
            "SELECT c.relname::text, current_database()::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass ORDER BY c.relname",
            &[],
        )
        .await?;
    let mut months = Vec::new();
    let mut database = String::new();
    for row in &partitions {
        let name: String = row.try_get(0)?;
        database = row.try_get(1)?;
        if let Some(month) = partition_month(&name) {
            months.push(month);
        }
    }
    if months.is_empty() {
        return Ok(0);
    }
    let cutoffs = project_cutoffs(tx, project_id, before, server_before).await?;
    let today = agentops_core::timestamp::now()
        .get(..10)
        .unwrap_or_default()
        .to_owned();
    let mut dropped = 0;
    for month in months {
        let table = month.table();
        let end = month.next().bound();
        // the cutoffs of the day's other projects move only with the day; the write's own
        // and the server's may change within it (a new setting, a restart)
        let memo = (
            database.clone(),
            table.clone(),
            today.clone(),
            format!("{before} {server_before:?}"),
        );
        if KEPT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&memo)
        {
            continue;
        }
        // No insert into it until the transaction ends: what is checked stays true.
        tx.batch_execute(&format!("LOCK TABLE {table} IN SHARE MODE"))
            .await?;
        if !holds_only_expired_events(tx, &table, &end, &cutoffs).await? {
            let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
            kept.retain(|(_, _, day, _)| *day == today);
            kept.insert(memo);
            continue;
        }
        dropped += take_off_partition(tx, &table, &month).await?;
        tx.batch_execute(&format!("DROP TABLE {table}")).await?;
        tracing::info!(partition = %table, "retention: dropped an events partition");
    }
    Ok(dropped)
}

/// The month of a partition's table name (`events_YYYY_MM`).
fn partition_month(name: &str) -> Option<Month> {
    let rest = name.strip_prefix("events_")?;
    let (year, month) = rest.split_once('_')?;
    let month = Month::of(&format!("{year}-{month}"))?;
    (month.table() == name).then_some(month)
}

/// Each project with the cutoff retention deletes its sessions before: `None` when it keeps
/// them (forever, its own or the server's).
async fn project_cutoffs(
    tx: &Transaction<'_>,
    project_id: &str,
    before: &str,
    server_before: Option<&str>,
) -> Applied<Vec<(String, Option<String>)>> {
    let projects = tx
        .query("SELECT id, retention_days FROM projects ORDER BY id", &[])
        .await?;
    let mut settings = Vec::with_capacity(projects.len());
    for row in &projects {
        let id: String = row.try_get(0)?;
        let days: Option<i64> = row.try_get(1)?;
        settings.push((id, days));
    }
    let server = server_before.map(str::to_owned);
    let a_day_early = chrono::Utc::now() - chrono::TimeDelta::days(1);
    Ok(settings
        .into_iter()
        .map(|(id, days)| {
            let cutoff = if id == project_id {
                Some(before.to_owned())
            } else {
                match days {
                    None => server.clone(),
                    Some(days) => u32::try_from(days)
                        .ok()
                        .filter(|days| *days > 0)
                        .and_then(|days| Retention::Days(days).cutoff(a_day_early)),
                }
            };
            (id, cutoff)
        })
        .collect())
}

/// Whether every event in the partition `table` (start times before `end`) belongs to a
/// session that retention deletes, or to none: no event is of a project that keeps it (no
/// cutoff, one not after `end`, or a project not listed), nor of a session aged at or after
/// its project's cutoff. Reads the partition up to the first event kept.
async fn holds_only_expired_events(
    tx: &Transaction<'_>,
    table: &str,
    end: &str,
    cutoffs: &[(String, Option<String>)],
) -> Applied<bool> {
    let projects: Vec<&str> = cutoffs.iter().map(|(p, _)| p.as_str()).collect();
    let cutoffs: Vec<Option<&str>> = cutoffs.iter().map(|(_, c)| c.as_deref()).collect();
    let kept = tx
        .query_opt(
            &format!(
                "SELECT 1 FROM {table} e
                 LEFT JOIN UNNEST($1::text[], $2::text[]) AS c(project_id, cutoff)
                     ON c.project_id = e.project_id
                 WHERE c.cutoff IS NULL OR c.cutoff COLLATE \"C\" < $3
                    OR EXISTS (SELECT 1 FROM sessions
                               WHERE project_id = e.project_id AND id = e.session_id
                                 AND {SESSION_AGE_SQL} >= c.cutoff COLLATE \"C\")
                 LIMIT 1"
            ),
            &[&projects, &cutoffs, &end],
        )
        .await?;
    Ok(kept.is_none())
}

/// Takes what the events of the partition `table` (of `month`) added off their sessions'
/// totals, and deletes the month's hourly totals (every event of those hours is in it); how many
/// events it holds.
async fn take_off_partition(tx: &Transaction<'_>, table: &str, month: &Month) -> Applied<usize> {
    let groups = tx
        .query(
            &format!(
                "SELECT project_id, session_id, kind, status, COUNT(*),
                        LEAST(COALESCE(SUM(input_tokens), 0), 9223372036854775807)::bigint,
                        LEAST(COALESCE(SUM(output_tokens), 0), 9223372036854775807)::bigint,
                        COALESCE(SUM(cost), 0.0)::double precision
                 FROM {table} GROUP BY project_id, session_id, kind, status
                 ORDER BY project_id, session_id"
            ),
            &[],
        )
        .await?;
    let mut events = 0;
    let mut by_project: Vec<(String, Vec<Taken>)> = Vec::new();
    for row in &groups {
        let project: &str = row.try_get(0)?;
        let kind: &str = row.try_get(2)?;
        let status: Option<&str> = row.try_get(3)?;
        let n: i64 = row.try_get(4)?;
        let taken = Taken {
            session_id: row.try_get(1)?,
            events: n,
            input_tokens: row.try_get(5)?,
            output_tokens: row.try_get(6)?,
            cost: row.try_get(7)?,
            errors: if is_error(&EventRecord {
                kind: kind.to_owned(),
                status: status.map(str::to_owned),
                ..EventRecord::default()
            }) {
                n
            } else {
                0
            },
        };
        events += count(u64::try_from(n).unwrap_or(0));
        match by_project.last_mut() {
            Some((p, list)) if p == project => match list.last_mut() {
                Some(last) if last.session_id == taken.session_id => {
                    last.events += taken.events;
                    last.input_tokens = last.input_tokens.saturating_add(taken.input_tokens);
                    last.output_tokens = last.output_tokens.saturating_add(taken.output_tokens);
                    last.cost += taken.cost;
                    last.errors += taken.errors;
                }
                _ => list.push(taken),
            },
            _ => by_project.push((project.to_owned(), vec![taken])),
        }
    }
    for (project, taken) in by_project {
        take_off_sessions(tx, &project, taken.into_iter()).await?;
    }
    tx.execute(
        "DELETE FROM hourly_totals WHERE hour >= $1 AND hour < $2",
        &[&month.bound(), &month.next().bound()],
    )
    .await?;
    Ok(events)
}

/// A count as an SQL integer.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Rows a statement affected, as a count.
fn count(rows: u64) -> usize {
    usize::try_from(rows).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::temp_store;
    use super::super::write::tests::{assert_totals_match_events, number};
    use super::super::PgStore;
    use crate::store::{
        AdminStore, EventRecord, Outcome, Retention, SessionRecord, Write, WriteStore,
    };

    use crate::store::conformance::{expiry_events as events, expiry_session as session};

    /// A session of `project` that ended on 2 March 2000, with `n` events on 1 March.
    fn store_march(store: &PgStore, project: &str, n: usize) {
        store_session(
            store,
            project,
            session(
                "march",
                "2000-03-01T00:00:00.000000+00:00",
                Some("2000-03-02T00:00:00.000000+00:00"),
            ),
            events("march", "2000-03-01", n),
        );
    }

    fn store_session(store: &PgStore, project: &str, s: SessionRecord, e: Vec<EventRecord>) {
        let id = s.id.clone();
        let results = store
            .commit(&[
                Write::CreateSession {
                    project_id: project.into(),
                    session: s,
                },
                Write::CreateEvents {
                    project_id: project.into(),
                    session_id: id,
                    events: e,
                },
            ])
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    /// Old sessions (with an agent and logs), one that started long ago and ended lately, a
    /// new one.
    fn fill(store: &PgStore, project: &str) {
        store_session(
            store,
            project,
            session(
                "old",
                "2000-01-01T00:00:00.000000+00:00",
                Some("2000-01-02T00:00:00.000000+00:00"),
            ),
            events("old", "2000-01-01", 23),
        );
        store_session(
            store,
            project,
            session("running-old", "2000-01-05T00:00:00.000000+00:00", None),
            events("running-old", "2000-01-05", 2),
        );
        let results = store
            .commit(&[
                Write::CreateAgent {
                    project_id: project.into(),
                    session_id: "old".into(),
                    agent_id: "agent-old".into(),
                    name: "planner".into(),
                },
                Write::AppendLog {
                    project_id: project.into(),
                    session_id: "old".into(),
                    body: "log 1".into(),
                },
                Write::AppendLog {
                    project_id: project.into(),
                    session_id: "old".into(),
                    body: "log 2".into(),
                },
            ])
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        store_session(
            store,
            project,
            session(
                "long",
                "2000-01-01T00:00:00.000000+00:00",
                Some("2026-11-20T00:00:00.000000+00:00"),
            ),
            events("long", "2000-01-01", 4),
        );
        store_session(
            store,
            project,
            session("new", "2026-11-20T00:00:00.000000+00:00", None),
            events("new", "2026-11-20", 6),
        );
    }

    /// Runs retention writes of `max_rows` for the project until nothing is left, checking the
    /// totals after each; the sessions deleted and the writes it took.
    fn expire_all(store: &PgStore, project: &str, before: &str, max_rows: usize) -> (usize, usize) {
        let expire = Write::ExpireSessions {
            project_id: project.into(),
            before: before.into(),
            server_before: None,
            max_rows,
        };
        let (mut writes, mut deleted) = (0, 0);
        loop {
            let results = store.commit(std::slice::from_ref(&expire)).unwrap();
            let Ok(Outcome::Expired { sessions, rows }) = results[0] else {
                panic!("{results:?}");
            };
            assert_totals_match_events(store);
            writes += 1;
            deleted += sessions;
            if sessions == 0 && rows == 0 {
                return (deleted, writes);
            }
            assert!(
                rows <= max_rows + 10 || writes == 1,
                "{rows} rows in one write"
            );
            assert!(writes < 100, "retention does not end");
        }
    }

    #[test]
    fn deletes_old_sessions_in_bounded_writes_keeping_the_totals_true() {
        let (store, _db) = temp_store();
        let p = store.create_project("p").unwrap();
        let q = store.create_project("q").unwrap();
        fill(&store, &p);
        fill(&store, &q);
        let count_of = |project: &str| {
            number(
                &store,
                &format!("SELECT COUNT(*) FROM events WHERE project_id = '{project}'"),
            )
        };
        let q_events = count_of(&q);
        let (deleted, writes) = expire_all(&store, &p, "2026-01-01T00:00:00.000000+00:00", 5);
        assert!(writes > 5, "23 events went over several writes ({writes})");
        assert_eq!(deleted, 2);
        let kept = super::super::write::tests::text_of(
            &store,
            &format!(
                "SELECT string_agg(id, ',' ORDER BY id) FROM sessions WHERE project_id = '{p}'"
            ),
        );
        assert_eq!(kept.as_deref(), Some("long,new"));
        for table in ["events", "logs", "otel_logs", "agents", "session_facets"] {
            let left = number(
                &store,
                &format!(
                    "SELECT COUNT(*) FROM {table} WHERE project_id = '{p}'
                     AND session_id IN ('old', 'running-old')"
                ),
            );
            assert_eq!(left, 0, "{table} of deleted sessions");
        }
        assert_eq!(count_of(&p), 10);
        // the long session keeps its old month: no partition went; q is its own business
        assert_eq!(
            number(
                &store,
                "SELECT COUNT(*) FROM pg_class WHERE relname = 'events_2000_01'"
            ),
            1
        );
        assert_eq!(count_of(&q), q_events);
    }

    #[test]
    fn retention_in_the_transaction_of_an_ingest_takes_off_what_that_ingest_added() {
        let (store, _db) = temp_store();
        let p = store.create_project("p").unwrap();
        let ended = Some("2000-05-02T00:00:00.000000+00:00");
        store_session(
            &store,
            &p,
            session("stored", "2000-05-01T00:00:00.000000+00:00", ended),
            events("stored", "2000-05-01", 2),
        );
        // one group commit: events for a stored old session and a new old session, then the
        // retention pass that deletes both (the hourly totals of the writes before it must be
        // added before it takes them off)
        let results = store
            .commit(&[
                Write::CreateEvents {
                    project_id: p.clone(),
                    session_id: "stored".into(),
                    events: events("stored", "2000-05-01", 5),
                },
                Write::CreateSession {
                    project_id: p.clone(),
                    session: session("arrived", "2000-05-01T00:00:00.000000+00:00", ended),
                },
                Write::CreateEvents {
                    project_id: p.clone(),
                    session_id: "arrived".into(),
                    events: events("arrived", "2000-05-01", 4),
                },
                Write::ExpireSessions {
                    project_id: p.clone(),
                    before: "2026-01-01T00:00:00.000000+00:00".into(),
                    server_before: None,
                    max_rows: 1000,
                },
            ])
            .unwrap();
        assert!(
            matches!(results[3], Ok(Outcome::Expired { sessions: 2, .. })),
            "{results:?}"
        );
        assert_totals_match_events(&store);
        assert_eq!(
            number(
                &store,
                &format!("SELECT COUNT(*) FROM hourly_totals WHERE project_id = '{p}'")
            ),
            0
        );
    }

    #[test]
    fn projects_following_the_server_are_cut_at_the_servers_cutoff() {
        let (store, _db) = temp_store();
        let (p, q) = (
            store.create_project("p").unwrap(),
            store.create_project("q").unwrap(),
        );
        for project in [&p, &q] {
            store_march(&store, project, 3);
        }
        let partition = || {
            number(
                &store,
                "SELECT COUNT(*) FROM pg_class WHERE relname = 'events_2000_03'",
            )
        };
        let expire = |server_before: Option<&str>| {
            store
                .commit(&[Write::ExpireSessions {
                    project_id: p.clone(),
                    before: "2026-01-01T00:00:00.000000+00:00".into(),
                    server_before: server_before.map(str::to_owned),
                    max_rows: 1,
                }])
                .unwrap()
        };
        // a server that keeps everything: q keeps its March, so does the partition
        expire(None);
        assert_eq!(partition(), 1);
        // a server whose cutoff is past March: q's events are expired too, the month goes
        expire(Some("2026-01-01T00:00:00.000000+00:00"));
        assert_eq!(partition(), 0);
        assert_totals_match_events(&store);
    }

    #[test]
    fn a_month_of_expired_events_only_is_dropped_whole() {
        let (store, _db) = temp_store();
        let p = store.create_project("p").unwrap();
        let forever = store.create_project("forever").unwrap();
        let month = store.create_project("month").unwrap();
        store
            .set_project_retention(&forever, Some(Retention::Forever))
            .unwrap();
        store
            .set_project_retention(&month, Some(Retention::Days(30)))
            .unwrap();
        // March 2000: expired sessions of p and of the 30-day project only
        for project in [&p, &month] {
            store_march(&store, project, 7);
        }
        // February 2000: a session of p that ended lately keeps it
        store_session(
            &store,
            &p,
            session(
                "long",
                "2000-02-01T00:00:00.000000+00:00",
                Some("2026-11-20T00:00:00.000000+00:00"),
            ),
            events("long", "2000-02-01", 3),
        );
        // April 2000: the project kept forever keeps it
        store_session(
            &store,
            &forever,
            session(
                "april",
                "2000-04-01T00:00:00.000000+00:00",
                Some("2000-04-02T00:00:00.000000+00:00"),
            ),
            events("april", "2000-04-01", 2),
        );
        store_session(
            &store,
            &p,
            session(
                "april",
                "2000-04-01T00:00:00.000000+00:00",
                Some("2000-04-02T00:00:00.000000+00:00"),
            ),
            events("april", "2000-04-01", 2),
        );
        let partition = |name: &str| {
            number(
                &store,
                &format!("SELECT COUNT(*) FROM pg_class WHERE relname = '{name}'"),
            )
        };
        assert_eq!(partition("events_2000_03"), 1);

        let first = store
            .commit(&[Write::ExpireSessions {
                project_id: p.clone(),
                before: "2026-01-01T00:00:00.000000+00:00".into(),
                server_before: None,
                max_rows: 1,
            }])
            .unwrap();
        // both projects' March events went with their partition, at once
        let Ok(Outcome::Expired { rows, sessions }) = first[0] else {
            panic!("{first:?}");
        };
        assert!(rows >= 14, "{rows}");
        assert_eq!(partition("events_2000_03"), 0);
        assert_eq!(partition("events_2000_02"), 1);
        assert_eq!(partition("events_2000_04"), 1);
        assert_totals_match_events(&store);
        let (deleted, _) = expire_all(&store, &p, "2026-01-01T00:00:00.000000+00:00", 1000);
        assert_eq!(sessions + deleted, 2, "march and april");
        assert_eq!(
            number(
                &store,
                &format!("SELECT COUNT(*) FROM sessions WHERE project_id = '{p}'")
            ),
            1
        );
        // the other projects' sessions stay (the 30-day project's until its own pass)
        assert_eq!(
            number(
                &store,
                &format!("SELECT event_count FROM sessions WHERE project_id = '{month}'")
            ),
            0
        );
        assert_eq!(
            number(
                &store,
                &format!("SELECT COUNT(*) FROM events WHERE project_id = '{forever}'")
            ),
            2
        );
        // a late event of that month makes its partition again
        store_session(
            &store,
            &p,
            session("late", "2000-03-05T00:00:00.000000+00:00", None),
            events("late", "2000-03-05", 1),
        );
        assert_eq!(partition("events_2000_03"), 1);
        assert_totals_match_events(&store);
    }
}
