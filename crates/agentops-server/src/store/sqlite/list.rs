//! The session list: the newest sessions, and filtered, ordered pages of them built as SQL
//! (by `crate::store::list_sql`) that walks one of the list indexes (see `schema`).

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};

use super::rows::{sort_value_from_row, summary_from_row, SORT_KEY_INDEX};
use super::schema::session_duration_sql;
use crate::store::list_sql::{self, Arg, Dialect};
use crate::store::{SessionPage, SessionQuery, SessionSummary, StoreError};

/// SQLite's SQL of the list.
struct Sqlite;

impl Dialect for Sqlite {
    fn placeholder(&self, n: usize) -> String {
        format!("?{n}")
    }

    fn duration(&self) -> String {
        session_duration_sql()
    }

    fn has_tag(&self, param: &str) -> String {
        format!("EXISTS (SELECT 1 FROM json_each(s.tags) t WHERE t.value = {param})")
    }

    fn like(&self, column: &str, param: &str) -> String {
        // SQLite's LIKE ignores the case of ASCII letters
        format!("{column} LIKE {param} ESCAPE '\\'")
    }
}

/// The project's sessions, newest first, at most `limit`.
pub(super) fn list_sessions(
    c: &Connection,
    project_id: &str,
    limit: usize,
) -> Result<Vec<SessionSummary>, StoreError> {
    let mut stmt = c.prepare_cached(&list_sql::newest_sessions_sql(&Sqlite))?;
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
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |row| {
        Ok((
            summary_from_row(row)?,
            sort_value_from_row(row, SORT_KEY_INDEX),
        ))
    })?;
    let rows = rows.map(|row| -> Result<_, StoreError> {
        let (summary, key) = row?;
        Ok((summary, key?))
    });
    list_sql::page(rows, query.limit)
}

/// The SQL and arguments of a session list query; the last column is the sort key.
fn session_list_sql(project_id: &str, query: &SessionQuery) -> (String, Vec<SqlValue>) {
    let (sql, args) = list_sql::session_list_sql(&Sqlite, project_id, query);
    let args = args
        .into_iter()
        .map(|arg| match arg {
            Arg::Text(t) => SqlValue::Text(t),
            Arg::Int(i) => SqlValue::Integer(i),
            Arg::Real(r) => SqlValue::Real(r),
        })
        .collect();
    (sql, args)
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::session_list_sql;
    use crate::store::columns::event_select_list;
    use crate::store::sqlite::test_support::{seed_one, temp_store};
    use crate::store::AdminStore;

    #[test]
    fn lists_filter_sort_and_page() {
        let (store, dir) = temp_store();
        crate::store::read_checks::list_filters_sorts_and_pages(&store);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn list_queries_walk_an_index_in_order() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        seed_one(&store, &project);
        for (query, index) in crate::store::read_checks::list_queries_and_their_indexes() {
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
