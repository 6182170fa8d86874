//! Retention ([`Write::ExpireSessions`](crate::store::Write::ExpireSessions)): deleting a
//! project's old sessions with everything that hangs off them, a bounded number of rows per
//! write, and taking what the deleted events added off the aggregates kept beside them (the
//! session totals and the hourly totals), so that every commit leaves them consistent with the
//! events that remain.
//!
//! A session whose events do not fit in one write loses them over several writes; its totals
//! follow, and it goes (with its logs, agents and facets) in the write that finds it empty. Its
//! facets, which only the list filters read, stay until then. Metric points older than the
//! cutoff go too, before the sessions.

use rusqlite::{params, Connection};

use super::schema::SESSION_AGE_SQL;
use crate::store::rollup::Rollup;
use crate::store::{EventRecord, Outcome, StoreError};

/// Deletes up to about `max_rows` rows of the project's sessions older than `before` (see
/// [`SESSION_AGE_SQL`]), oldest first.
pub(super) fn expire_sessions(
    tx: &Connection,
    project_id: &str,
    before: &str,
    max_rows: usize,
) -> Result<Outcome, StoreError> {
    let budget = max_rows.max(1);
    // metric points taken before the cutoff go first, as many as the budget allows
    let points = tx
        .prepare_cached(
            "DELETE FROM metric_points WHERE seq IN
                (SELECT seq FROM metric_points WHERE project_id = ?1 AND time < ?2 LIMIT ?3)",
        )?
        .execute(params![project_id, before, sql_count(budget)])?;
    if points == budget {
        return Ok(Outcome::Expired {
            sessions: 0,
            rows: points,
        });
    }
    let budget = budget - points;
    let candidates: Vec<String> = tx
        .prepare_cached(&format!(
            "SELECT id FROM sessions WHERE project_id = ?1 AND {SESSION_AGE_SQL} < ?2
             ORDER BY {SESSION_AGE_SQL}, id LIMIT ?3"
        ))?
        .query_map(params![project_id, before, sql_count(budget)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut rows = 0;
    let mut sessions = 0;
    for session_id in &candidates {
        if rows >= budget {
            break;
        }
        let left = budget - rows;
        let events = delete_events(tx, project_id, session_id, left)?;
        rows += events;
        if events == left {
            // There may be more: the next write goes on with this session.
            break;
        }
        let mut more = false;
        for table in ["logs", "otel_logs"] {
            let left = budget - rows;
            let logs = tx
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE seq IN
                        (SELECT seq FROM {table} WHERE project_id = ?1 AND session_id = ?2 LIMIT ?3)"
                ))?
                .execute(params![project_id, session_id, sql_count(left)])?;
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
            "DELETE FROM agents WHERE project_id = ?1 AND session_id = ?2",
            "DELETE FROM session_facets WHERE project_id = ?1 AND session_id = ?2",
            "DELETE FROM sessions WHERE project_id = ?1 AND id = ?2",
        ] {
            rows += tx
                .prepare_cached(sql)?
                .execute(params![project_id, session_id])?;
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
fn delete_events(
    tx: &Connection,
    project_id: &str,
    session_id: &str,
    limit: usize,
) -> Result<usize, StoreError> {
    let doomed: Vec<(i64, EventRecord)> = tx
        .prepare_cached(
            "SELECT rowid, start_time, kind, status, model, input_tokens, output_tokens, cost
             FROM events WHERE project_id = ?1 AND session_id = ?2 LIMIT ?3",
        )?
        .query_map(params![project_id, session_id, sql_count(limit)], |r| {
            Ok((
                r.get(0)?,
                EventRecord {
                    session_id: session_id.to_owned(),
                    start_time: r.get(1)?,
                    kind: r.get(2)?,
                    status: r.get(3)?,
                    model: r.get(4)?,
                    input_tokens: r.get(5)?,
                    output_tokens: r.get(6)?,
                    cost: r.get(7)?,
                    ..EventRecord::default()
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    if doomed.is_empty() {
        return Ok(0);
    }
    let mut delete = tx.prepare_cached("DELETE FROM events WHERE rowid = ?1")?;
    let mut rollup = Rollup::default();
    for (rowid, event) in &doomed {
        delete.execute([rowid])?;
        rollup.add(event);
    }
    // The same sums a write added (see `rollup`), taken off; never below zero (a total that
    // saturated cannot be taken apart exactly).
    let mut session = tx.prepare_cached(
        "UPDATE sessions SET event_count = max(event_count - ?3, 0),
            input_tokens = max(input_tokens - ?4, 0), output_tokens = max(output_tokens - ?5, 0),
            cost = max(cost - ?6, 0.0), error_count = max(error_count - ?7, 0)
         WHERE project_id = ?1 AND id = ?2",
    )?;
    for t in rollup.sessions() {
        session.execute(params![
            project_id,
            t.session_id,
            t.events,
            t.input_tokens,
            t.output_tokens,
            t.cost,
            t.errors
        ])?;
    }
    let mut hour = tx.prepare_cached(
        "UPDATE hourly_totals SET events = max(events - ?4, 0),
            error_events = max(error_events - ?5, 0), input_tokens = max(input_tokens - ?6, 0),
            output_tokens = max(output_tokens - ?7, 0), cost = max(cost - ?8, 0.0)
         WHERE project_id = ?1 AND hour = ?2 AND model = ?3",
    )?;
    let mut empty_hour = tx.prepare_cached(
        "DELETE FROM hourly_totals WHERE project_id = ?1 AND hour = ?2 AND model = ?3
            AND events <= 0",
    )?;
    for (key, t) in rollup.hours() {
        hour.execute(params![
            project_id,
            key.hour,
            key.model,
            t.events,
            t.errors,
            t.input_tokens,
            t.output_tokens,
            t.cost
        ])?;
        empty_hour.execute(params![project_id, key.hour, key.model])?;
    }
    Ok(doomed.len())
}

/// A count as an SQL integer.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use crate::store::sqlite::test_support::{store_session, temp_store};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AdminStore, Outcome, ReadStore, SessionQuery, Write, WriteStore};

    use crate::store::conformance::{expiry_events as events, expiry_session as session};

    /// The kept sessions, written again into a store of their own: what retention must leave.
    fn fill(store: &SqliteStore, project: &str, with_old: bool) {
        if with_old {
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
            let writes = [
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
            ];
            let results = store.commit(&writes).unwrap();
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        }
        // started long ago, ended recently: kept (the end counts)
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

    fn count(store: &SqliteStore, sql: &str) -> i64 {
        store.write_conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Each session's totals are its events', and the hourly totals are the events' too.
    fn assert_consistent(store: &SqliteStore, project: &str) {
        let page = store
            .query_sessions(
                project,
                &SessionQuery {
                    limit: 1000,
                    ..SessionQuery::default()
                },
            )
            .unwrap();
        for s in &page.sessions {
            let detail = store.session_detail(project, &s.id).unwrap().unwrap();
            let events = &detail.events;
            assert_eq!(s.event_count as usize, events.len(), "{}", s.id);
            assert_eq!(
                s.input_tokens,
                events
                    .iter()
                    .map(|e| e.input_tokens.unwrap_or(0))
                    .sum::<i64>()
            );
            assert_eq!(
                s.cost,
                events.iter().map(|e| e.cost.unwrap_or(0.0)).sum::<f64>()
            );
            let errors = events
                .iter()
                .filter(|e| e.status.as_deref() == Some("error") || e.kind == "errors")
                .count();
            assert_eq!(s.error_count as usize, errors, "{}", s.id);
        }
        let by_totals = store.stats(project, None, None).unwrap();
        // (a bound that is no timestamp has no whole hour: every event is read)
        let by_events = store.stats(project, Some("0"), None).unwrap();
        assert_eq!(by_totals, by_events);
    }

    #[test]
    fn deletes_old_sessions_in_bounded_writes_keeping_the_totals_true() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let other = store.create_project("q").unwrap();
        fill(&store, &project, true);
        fill(&store, &other, true);
        let other_before = store.stats(&other, None, None).unwrap();
        assert_consistent(&store, &project);

        let expire = Write::ExpireSessions {
            project_id: project.clone(),
            before: "2026-01-01T00:00:00.000000+00:00".into(),
            server_before: None,
            max_rows: 5,
        };
        let mut writes = 0;
        let mut deleted = 0;
        loop {
            let results = store.commit(std::slice::from_ref(&expire)).unwrap();
            let Ok(Outcome::Expired { sessions, rows }) = results[0] else {
                panic!("{results:?}");
            };
            // bounded: the budget, plus a finished session's agents, facets and row
            assert!(rows <= 5 + 10, "{rows} rows in one write");
            assert_consistent(&store, &project);
            writes += 1;
            deleted += sessions;
            if sessions == 0 && rows == 0 {
                break;
            }
            assert!(writes < 100, "retention does not end");
        }
        assert!(writes > 5, "23 events went over several writes ({writes})");
        assert_eq!(deleted, 2);

        let kept: Vec<String> = store
            .list_sessions(&project, 100)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(kept, ["new", "long"]);
        for (table, column) in [
            ("events", "session_id"),
            ("logs", "session_id"),
            ("otel_logs", "session_id"),
            ("agents", "session_id"),
            ("session_facets", "session_id"),
        ] {
            let left = count(
                &store,
                &format!(
                    "SELECT COUNT(*) FROM {table} WHERE project_id = '{project}'
                     AND {column} IN ('old', 'running-old')"
                ),
            );
            assert_eq!(left, 0, "{table} of deleted sessions");
        }
        // what is left is exactly what a store of only the kept sessions holds
        let (reference, reference_dir) = temp_store();
        let reference_project = reference.create_project("p").unwrap();
        fill(&reference, &reference_project, false);
        assert_eq!(
            store.stats(&project, None, None).unwrap(),
            reference.stats(&reference_project, None, None).unwrap()
        );
        let summaries = |s: &SqliteStore, p: &str| {
            let mut list = s.list_sessions(p, 100).unwrap();
            list.sort_by(|a, b| a.id.cmp(&b.id));
            list
        };
        assert_eq!(
            summaries(&store, &project),
            summaries(&reference, &reference_project)
        );
        assert_eq!(
            count(
                &store,
                &format!("SELECT COUNT(*) FROM session_facets WHERE project_id = '{project}'")
            ),
            count(
                &reference,
                &format!(
                    "SELECT COUNT(*) FROM session_facets WHERE project_id = '{reference_project}'"
                )
            )
        );
        // another project's old sessions are its own business
        assert_eq!(store.stats(&other, None, None).unwrap(), other_before);
        assert_eq!(store.list_sessions(&other, 100).unwrap().len(), 4);
        std::fs::remove_dir_all(dir).ok();
        std::fs::remove_dir_all(reference_dir).ok();
    }

    #[test]
    fn projects_keep_their_own_retention() {
        use crate::store::Retention;
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let listed = store.list_projects().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].retention, None);
        assert_eq!(
            listed[0].effective_retention(Retention::Days(7)),
            Retention::Days(7)
        );
        for setting in [Some(Retention::Forever), Some(Retention::Days(30)), None] {
            store.set_project_retention(&project, setting).unwrap();
            assert_eq!(store.list_projects().unwrap()[0].retention, setting);
        }
        store
            .set_project_retention(&project, Some(Retention::Forever))
            .unwrap();
        assert_eq!(
            store.list_projects().unwrap()[0].effective_retention(Retention::Days(7)),
            Retention::Forever
        );
        let missing = store.set_project_retention("nope", None).unwrap_err();
        assert!(
            matches!(missing, crate::store::AdminError::NotFound(_)),
            "{missing}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
