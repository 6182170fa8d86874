//! The session list: the newest sessions, and filtered, ordered pages of them, built as SQL
//! (by `crate::store::list_sql`) whose order is one of the list indexes' (see `schema`).

use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::pg_error;
use super::rows::sort_value;
use super::schema::DURATION_SQL;
use crate::store::decode::{summary_from, SORT_KEY_INDEX};
use crate::store::list_sql::{self, Arg, Dialect};
use crate::store::{
    QueryError, SessionPage, SessionQuery, SessionSortKey, SessionSummary, SortValue, StoreError,
};

/// PostgreSQL's SQL of the list.
pub(super) struct Postgres;

impl Dialect for Postgres {
    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }

    fn duration(&self) -> String {
        session_duration_sql()
    }

    fn has_tag(&self, param: &str) -> String {
        // `?`: the array holds this string
        format!("(s.tags::jsonb ? {param})")
    }

    fn like(&self, column: &str, param: &str) -> String {
        // in the "C" collation ILIKE folds ASCII letters only, as SQLite's LIKE does
        format!("{column} ILIKE {param} COLLATE \"C\" ESCAPE '\\'")
    }
}

/// [`DURATION_SQL`] over the sessions of a query, `sessions s`.
pub(super) fn session_duration_sql() -> String {
    DURATION_SQL
        .replace("end_time", "s.end_time")
        .replace("start_time", "s.start_time")
}

/// The project's sessions, newest first, at most `limit`.
pub(super) async fn list_sessions(
    client: &mut Client,
    project_id: &str,
    limit: usize,
) -> Result<Vec<SessionSummary>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &list_sql::newest_sessions_sql(&Postgres),
            &[&project_id, &limit],
        )
        .await
        .map_err(pg_error)?;
    rows.iter().map(summary_from).collect()
}

/// A filtered, ordered page of the project's sessions.
pub(super) async fn query_sessions(
    client: &mut Client,
    project_id: &str,
    query: &SessionQuery,
) -> Result<SessionPage, StoreError> {
    let (sql, args) = list_sql::session_list_sql(&Postgres, project_id, query);
    let params = bound(&args);
    let rows = client.query(&sql, &params).await.map_err(pg_error)?;
    let rows = rows.iter().map(|row| {
        Ok((
            summary_from(row)?,
            sort_value(row, SORT_KEY_INDEX, query.sort)?,
        ))
    });
    list_sql::page(rows, query.limit)
}

/// Refuses a query whose cursor key is not of the type of the sort key's expression
/// (PostgreSQL compares only values of one type).
pub(super) fn check_cursor(query: &SessionQuery) -> Result<(), QueryError> {
    let (sort, Some(after)) = (query.sort, &query.after) else {
        return Ok(());
    };
    match (sort, &after.key) {
        (SessionSortKey::StartTime, SortValue::Text(_))
        | (SessionSortKey::Cost, SortValue::Real(_))
        | (SessionSortKey::Events | SessionSortKey::Duration, SortValue::Int(_)) => Ok(()),
        (_, key) => Err(QueryError::Invalid(format!(
            "a cursor key {key:?} does not continue a list sorted by {sort:?}"
        ))),
    }
}

/// The statement parameters of `args`.
pub(super) fn bound(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|arg| match arg {
            Arg::Text(t) => t as &(dyn ToSql + Sync),
            Arg::Int(i) => i,
            Arg::Real(r) => r,
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::test_support::temp_store;
    use super::super::{pg_error, PgStore};
    use super::{bound, Postgres};
    use crate::store::list_sql::{newest_sessions_sql, session_list_sql, Arg};
    use crate::store::{read_checks, SessionCursor, SessionQuery, SessionSortKey, SortValue};
    use crate::store::{AdminStore, QueryError, ReadStore};

    /// The plan of `sql` with `args` after `setup` (statements, in a transaction rolled back
    /// after), the planner neither scanning a table whole nor sorting where it can help it (so
    /// that the plan shows whether an index gives the rows and their order).
    pub(in super::super) fn plan(store: &PgStore, setup: &str, sql: &str, args: &[Arg]) -> String {
        store
            .with_client(async |c| {
                let tx = c.transaction().await.map_err(pg_error)?;
                tx.batch_execute(&format!(
                    "{setup}; SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off"
                ))
                .await
                .map_err(pg_error)?;
                let rows = tx
                    .query(&format!("EXPLAIN {sql}"), &bound(args))
                    .await
                    .map_err(pg_error)?;
                Ok(rows
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join("\n"))
            })
            .unwrap()
    }

    #[test]
    fn lists_filter_sort_and_page() {
        let (store, _db) = temp_store();
        read_checks::list_filters_sorts_and_pages(&store);
    }

    #[test]
    fn list_queries_walk_an_index_in_order() {
        let (store, _db) = temp_store();
        let project = store.create_project("p").unwrap();
        read_checks::seed(&store, &project);
        let newest = SessionQuery::default();
        let queries = read_checks::list_queries_and_their_indexes()
            .into_iter()
            .map(|(query, index)| (session_list_sql(&Postgres, &project, &query), index, query))
            .chain(std::iter::once((
                (
                    newest_sessions_sql(&Postgres),
                    vec![Arg::Text(project.clone()), Arg::Int(10)],
                ),
                "sessions_by_start_key",
                newest,
            )));
        for ((sql, args), index, query) in queries {
            let plan = plan(&store, "", &sql, &args);
            assert!(plan.contains(index), "{query:?}:\n{plan}");
            assert!(!plan.contains("Sort"), "{query:?} sorts:\n{plan}");
        }
    }

    #[test]
    fn a_cursor_of_another_sort_is_refused() {
        let (store, _db) = temp_store();
        let project = store.create_project("p").unwrap();
        let query = SessionQuery {
            sort: SessionSortKey::Cost,
            after: Some(SessionCursor {
                key: SortValue::Text("x".into()),
                id: "s".into(),
            }),
            ..SessionQuery::default()
        };
        assert!(matches!(
            store.query_sessions(&project, &query),
            Err(QueryError::Invalid(_))
        ));
    }
}
