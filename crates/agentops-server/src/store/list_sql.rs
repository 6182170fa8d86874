//! The session list's SQL, for every engine: the filters, the sort key (one of the list
//! indexes' expressions, so that a page walks an index instead of sorting) and the cursor, in
//! the engine's [`Dialect`]; and a page made of the rows it answers.

use super::decode::summary_columns;
use super::{
    EndStateFilter, SessionCursor, SessionPage, SessionQuery, SessionSortKey, SessionSummary,
    SortValue,
};

/// What differs in the list's SQL from one engine to another.
pub(crate) trait Dialect {
    /// The `n`th statement parameter (from 1).
    fn placeholder(&self, n: usize) -> String;
    /// A session's duration in milliseconds over `sessions s`, `NULL` while it runs (as in
    /// the duration index).
    fn duration(&self) -> String;
    /// The condition that `s.tags` (a JSON array as text) holds the tag `param`.
    fn has_tag(&self, param: &str) -> String;
    /// The condition that `column` matches the `LIKE` pattern `param` (escape `\`), ASCII
    /// letters of either case matching.
    fn like(&self, column: &str, param: &str) -> String;
}

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A real number.
    Real(f64),
}

impl From<&SortValue> for Arg {
    fn from(value: &SortValue) -> Self {
        match value {
            SortValue::Text(t) => Arg::Text(t.clone()),
            SortValue::Int(i) => Arg::Int(*i),
            SortValue::Real(r) => Arg::Real(*r),
        }
    }
}

/// The parameters of a statement being built, numbered in order.
struct Args<'d> {
    dialect: &'d dyn Dialect,
    args: Vec<Arg>,
}

impl Args<'_> {
    /// Adds `arg`; its placeholder.
    fn push(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        self.dialect.placeholder(self.args.len())
    }

    /// Adds text; its placeholder.
    fn text(&mut self, text: &str) -> String {
        self.push(Arg::Text(text.to_owned()))
    }
}

/// The SQL of a sort key over `sessions s`, as in the list indexes.
pub(crate) fn sort_key_sql(dialect: &dyn Dialect, key: SessionSortKey) -> String {
    match key {
        SessionSortKey::StartTime => "COALESCE(s.start_time, '')".into(),
        SessionSortKey::Cost => "s.cost".into(),
        SessionSortKey::Events => "s.event_count".into(),
        SessionSortKey::Duration => format!("COALESCE({}, -1)", dialect.duration()),
    }
}

/// The project's newest sessions (the first `limit`): the SQL, `project_id` and `limit` its
/// parameters 1 and 2.
pub(crate) fn newest_sessions_sql(dialect: &dyn Dialect) -> String {
    format!(
        "SELECT {} FROM sessions s WHERE s.project_id = {}
         ORDER BY COALESCE(s.start_time, '') DESC, s.id DESC LIMIT {}",
        summary_columns(&dialect.duration()),
        dialect.placeholder(1),
        dialect.placeholder(2)
    )
}

/// The SQL and parameters of a session list query: the rows of [`summary_columns`], then the
/// sort key (at [`super::decode::SORT_KEY_INDEX`]); one row more than the page holds, to tell
/// whether another page follows.
pub(crate) fn session_list_sql(
    dialect: &dyn Dialect,
    project_id: &str,
    query: &SessionQuery,
) -> (String, Vec<Arg>) {
    let key = sort_key_sql(dialect, query.sort);
    let mut args = Args {
        dialect,
        args: Vec::new(),
    };
    let project = args.text(project_id);
    let mut conditions: Vec<String> = vec![format!("s.project_id = {project}")];
    if let Some(from) = &query.from {
        conditions.push(format!("s.start_time >= {}", args.text(from)));
    }
    if let Some(to) = &query.to {
        conditions.push(format!("s.start_time < {}", args.text(to)));
    }
    for tag in &query.tags {
        let tag = args.text(tag);
        conditions.push(dialect.has_tag(&tag));
    }
    match query.end_state {
        Some(EndStateFilter::Ended(state)) => {
            conditions.push(format!("s.end_state = {}", args.text(state.as_str())));
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
        conditions.push(format!(
            "s.id IN (SELECT session_id FROM session_facets
                      WHERE project_id = {project} AND facet IN ('agent', 'agent_name')
                        AND value = {})",
            args.text(agent)
        ));
    }
    if let Some(model) = &query.model {
        conditions.push(format!(
            "s.id IN (SELECT session_id FROM session_facets
                      WHERE project_id = {project} AND facet = 'model' AND value = {})",
            args.text(model)
        ));
    }
    match query.has_errors {
        Some(true) => conditions.push("s.error_count > 0".into()),
        Some(false) => conditions.push("s.error_count = 0".into()),
        None => {}
    }
    if let Some(text) = &query.text {
        let pattern = args.text(&contains_pattern(text));
        conditions.push(format!(
            "({} OR {} OR {}
              OR s.id IN (SELECT session_id FROM session_facets
                          WHERE project_id = {project} AND facet = 'name' AND {}))",
            dialect.like("s.name", &pattern),
            dialect.like("s.id", &pattern),
            dialect.like("s.tags", &pattern),
            dialect.like("value", &pattern),
        ));
    }
    let (op, dir) = if query.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &query.after {
        let after_key = args.push(Arg::from(&after.key));
        let after_id = args.text(&after.id);
        conditions.push(format!("({key}, s.id) {op} ({after_key}, {after_id})"));
    }
    let sql = format!(
        "SELECT {}, {key} FROM sessions s WHERE {} ORDER BY {key} {dir}, s.id {dir} LIMIT {}",
        summary_columns(&dialect.duration()),
        conditions.join(" AND "),
        query.limit.max(1) + 1
    );
    (sql, args.args)
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

/// The page of a list query's rows (summary and sort key, in order, as
/// [`session_list_sql`] selects them): the first `limit` of them, and a cursor after the last
/// when more followed.
pub(crate) fn page<E>(
    rows: impl IntoIterator<Item = Result<(SessionSummary, SortValue), E>>,
    limit: usize,
) -> Result<SessionPage, E> {
    let limit = limit.max(1);
    let mut sessions = Vec::with_capacity(limit.min(1024));
    let mut last_key = None;
    let mut more = false;
    for row in rows {
        if sessions.len() == limit {
            more = true;
            break;
        }
        let (summary, key) = row?;
        sessions.push(summary);
        last_key = Some(key);
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

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn a_pattern_matches_its_text_literally_anywhere() {
        assert_eq!(contains_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
    }
}
