//! The session list: the newest sessions, and filtered, ordered pages of them built as SQL
//! that walks one of the list indexes (see `schema`).

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};

use super::rows::{sort_value_from_row, summary_columns, summary_from_row, SORT_KEY_INDEX};
use super::schema::session_duration_sql;
use crate::store::{
    EndStateFilter, SessionCursor, SessionPage, SessionQuery, SessionSortKey, SessionSummary,
    SortValue, StoreError,
};

/// The project's sessions, newest first, at most `limit`.
pub(super) fn list_sessions(
    c: &Connection,
    project_id: &str,
    limit: usize,
) -> Result<Vec<SessionSummary>, StoreError> {
    let sql = format!(
        "SELECT {} FROM sessions s WHERE s.project_id = ?1
         ORDER BY COALESCE(s.start_time, '') DESC, s.id DESC LIMIT ?2",
        summary_columns()
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![project_id, limit as i64], summary_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A filtered, ordered page of the project's sessions.
pub(super) fn query_sessions(
    c: &Connection,
    project_id: &str,
    query: &SessionQuery,
) -> Result<SessionPage, StoreError> {
    let (sql, args) = session_list_sql(project_id, query);
    let limit = query.limit.max(1);
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut sessions = Vec::with_capacity(limit.min(1024));
    let mut last_key = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if sessions.len() == limit {
            more = true;
            break;
        }
        sessions.push(summary_from_row(row)?);
        last_key = Some(sort_value_from_row(row, SORT_KEY_INDEX)?);
    }
    let next = match (more, last_key, sessions.last()) {
        (true, Some(key), Some(last)) => Some(SessionCursor {
            key,
            id: last.id.clone(),
        }),
        _ => None,
    };
    Ok(SessionPage { sessions, next })
}

/// The SQL and arguments of a session list query; the last column is the sort key.
fn session_list_sql(project_id: &str, query: &SessionQuery) -> (String, Vec<SqlValue>) {
    let key = sort_key_sql(query.sort);
    let mut conditions: Vec<String> = vec!["s.project_id = ?".into()];
    let mut args: Vec<SqlValue> = vec![SqlValue::Text(project_id.to_owned())];
    if let Some(from) = &query.from {
        conditions.push("s.start_time >= ?".into());
        args.push(SqlValue::Text(from.clone()));
    }
    if let Some(to) = &query.to {
        conditions.push("s.start_time < ?".into());
        args.push(SqlValue::Text(to.clone()));
    }
    for tag in &query.tags {
        conditions.push("EXISTS (SELECT 1 FROM json_each(s.tags) t WHERE t.value = ?)".into());
        args.push(SqlValue::Text(tag.clone()));
    }
    match query.end_state {
        Some(EndStateFilter::Ended(state)) => {
            conditions.push("s.end_state = ?".into());
            args.push(SqlValue::Text(state.as_str().to_owned()));
        }
        // Not ended: no end time, and no decisive state (the 0.3 SDK creates its sessions as
        // Indeterminate).
        Some(EndStateFilter::Running) => conditions.push(
            "(s.end_time IS NULL AND (s.end_state IS NULL OR s.end_state = 'Indeterminate'))"
                .into(),
        ),
        None => {}
    }
    if let Some(agent) = &query.agent {
        conditions.push(
            "s.id IN (SELECT session_id FROM session_facets
                          WHERE project_id = ? AND facet IN ('agent', 'agent_name') AND value = ?)"
                .into(),
        );
        args.push(SqlValue::Text(project_id.to_owned()));
        args.push(SqlValue::Text(agent.clone()));
    }
    if let Some(model) = &query.model {
        conditions.push(
            "s.id IN (SELECT session_id FROM session_facets
                          WHERE project_id = ? AND facet = 'model' AND value = ?)"
                .into(),
        );
        args.push(SqlValue::Text(project_id.to_owned()));
        args.push(SqlValue::Text(model.clone()));
    }
    match query.has_errors {
        Some(true) => conditions.push("s.error_count > 0".into()),
        Some(false) => conditions.push("s.error_count = 0".into()),
        None => {}
    }
    if let Some(text) = &query.text {
        let pattern = contains_pattern(text);
        conditions.push(
                "(s.name LIKE ?1x ESCAPE '\\' OR s.id LIKE ?1x ESCAPE '\\' OR s.tags LIKE ?1x ESCAPE '\\'
                  OR s.id IN (SELECT session_id FROM session_facets
                              WHERE project_id = ? AND facet = 'name' AND value LIKE ?1x ESCAPE '\\'))"
                    .replace("?1x", "?"),
            );
        args.push(SqlValue::Text(pattern.clone()));
        args.push(SqlValue::Text(pattern.clone()));
        args.push(SqlValue::Text(pattern.clone()));
        args.push(SqlValue::Text(project_id.to_owned()));
        args.push(SqlValue::Text(pattern));
    }
    let (op, dir) = if query.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &query.after {
        conditions.push(format!("({key}, s.id) {op} (?, ?)"));
        args.push(sort_value_sql(&after.key));
        args.push(SqlValue::Text(after.id.clone()));
    }
    let sql = format!(
        "SELECT {}, {key} FROM sessions s WHERE {} ORDER BY {key} {dir}, s.id {dir} LIMIT {}",
        summary_columns(),
        conditions.join(" AND "),
        query.limit.max(1) + 1
    );
    (sql, args)
}

/// The SQL of a sort key over `sessions s`, as in the list indexes.
fn sort_key_sql(key: SessionSortKey) -> String {
    match key {
        SessionSortKey::StartTime => "COALESCE(s.start_time, '')".into(),
        SessionSortKey::Cost => "s.cost".into(),
        SessionSortKey::Events => "s.event_count".into(),
        SessionSortKey::Duration => format!("COALESCE({}, -1)", session_duration_sql()),
    }
}

/// A cursor's sort key as a statement argument.
fn sort_value_sql(value: &SortValue) -> SqlValue {
    match value {
        SortValue::Text(t) => SqlValue::Text(t.clone()),
        SortValue::Int(i) => SqlValue::Integer(*i),
        SortValue::Real(r) => SqlValue::Real(*r),
    }
}

/// `LIKE` pattern matching `text` anywhere, with `\` as the escape character.
fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::session_list_sql;
    use crate::store::columns::event_select_list;
    use crate::store::sqlite::test_support::{seed_one, temp_store};
    use crate::store::{SessionCursor, SessionQuery, SessionSortKey, SortValue, Store};

    #[test]
    fn list_queries_walk_an_index_in_order() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        seed_one(&store, &project);
        let after = |key| SessionCursor {
            key,
            id: "s0".into(),
        };
        for (sort, key, index) in [
            (
                SessionSortKey::StartTime,
                SortValue::Text("x".into()),
                "sessions_by_start_key",
            ),
            (
                SessionSortKey::Cost,
                SortValue::Real(1.0),
                "sessions_by_cost",
            ),
            (
                SessionSortKey::Events,
                SortValue::Int(1),
                "sessions_by_event_count",
            ),
            (
                SessionSortKey::Duration,
                SortValue::Int(1),
                "sessions_by_duration",
            ),
        ] {
            for descending in [true, false] {
                for cursor in [None, Some(after(key.clone()))] {
                    let query = SessionQuery {
                        sort,
                        descending,
                        after: cursor,
                        tags: vec!["prod".into()],
                        ..SessionQuery::default()
                    };
                    let (sql, args) = session_list_sql(&project, &query);
                    let conn = store.write_conn();
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                    let plan: Vec<String> = stmt
                        .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(3))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    let plan = plan.join("\n");
                    assert!(plan.contains(index), "{query:?}:\n{plan}");
                    assert!(!plan.contains("TEMP B-TREE"), "{query:?} sorts:\n{plan}");
                }
            }
        }
        // the detail reads one session's events through the unique index
        let conn = store.write_conn();
        let plan: String = conn
            .query_row(
                &format!(
                    "EXPLAIN QUERY PLAN SELECT {} FROM events WHERE project_id = ?1 AND session_id = ?2 ORDER BY start_time, id",
                    event_select_list(true)
                ),
                params![project, "s1"],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("INDEX"), "{plan}");
        drop(conn);
        std::fs::remove_dir_all(dir).ok();
    }
}
