//! The columns of the `events` table, in the one order every engine writes and reads them: the
//! statements' column lists are generated from [`EVENT_COLUMNS`] rather than written by hand.

/// One column of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventColumn {
    /// Its name, also the [`super::EventRecord`] field it holds.
    pub name: &'static str,
    /// For the columns only an event's own detail shows (its payloads, and the fields the
    /// session's tree leaves out), what a read without payloads selects instead.
    pub without_payloads: Option<&'static str>,
}

/// A column every read selects: the tree shows it, or links or orders events by it.
const fn plain(name: &'static str) -> EventColumn {
    EventColumn {
        name,
        without_payloads: None,
    }
}

/// A column only an event's own detail shows: read as `replacement` (typed, for PostgreSQL)
/// when payloads are left out, so that a session of thousands of events reads and decodes
/// only what its tree is made of.
const fn detail_only(name: &'static str, replacement: &'static str) -> EventColumn {
    EventColumn {
        name,
        without_payloads: Some(replacement),
    }
}

/// A text column left out: `NULL` reads as text on both engines.
const NO_TEXT: &str = "NULL";

/// An integer column left out.
const NO_INTEGER: &str = "CAST(NULL AS BIGINT)";

/// An event's columns, in [`super::EventRecord`] field order: a row read with
/// [`event_select_list`] has them at these indexes. The `events` table keys them by a
/// `project_id` column first.
pub(crate) const EVENT_COLUMNS: [EventColumn; 26] = [
    plain("id"),
    plain("session_id"),
    plain("kind"),
    plain("name"),
    plain("parent_id"),
    detail_only("trace_id", NO_TEXT),
    plain("span_id"),
    plain("start_time"),
    plain("end_time"),
    plain("status"),
    detail_only("status_message", NO_TEXT),
    detail_only("agent_id", NO_TEXT),
    plain("model"),
    detail_only("provider", NO_TEXT),
    detail_only("prompt", NO_TEXT),
    detail_only("completion", NO_TEXT),
    detail_only("params", NO_TEXT),
    detail_only("returns", NO_TEXT),
    plain("input_tokens"),
    plain("output_tokens"),
    detail_only("cached_tokens", NO_INTEGER),
    detail_only("reasoning_tokens", NO_INTEGER),
    plain("cost"),
    detail_only("attributes", "'{}'"),
    // the payloads above, packed (see `crate::store::payload`); the text columns are left
    // empty once they are
    detail_only("packed", "NULL"),
    // the tool calls it is about (read also without payloads: the tree links by them)
    plain("call_ids"),
];

/// The columns an event is inserted with: `project_id`, then [`EVENT_COLUMNS`].
pub(crate) const EVENT_INSERT_COLUMN_COUNT: usize = EVENT_COLUMNS.len() + 1;

/// `id, session_id, …, attributes`: what reads an event back; with `payloads` false, the
/// columns only an event's detail shows are `NULL` (see [`EventColumn::without_payloads`]) and
/// the attributes `'{}'`.
pub(crate) fn event_select_list(payloads: bool) -> String {
    event_select_list_with(payloads, "NULL")
}

/// [`event_select_list`] for an engine whose `NULL` needs a type to read as bytes: without
/// payloads, `packed` is selected as `null_packed` (PostgreSQL: `NULL::bytea`).
pub(crate) fn event_select_list_with(payloads: bool, null_packed: &str) -> String {
    EVENT_COLUMNS
        .iter()
        .map(|c| match c.without_payloads {
            Some(_) if !payloads && c.name == "packed" => null_packed,
            Some(replacement) if !payloads => replacement,
            _ => c.name,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `project_id, id, …, attributes`: the column list of an event's `INSERT`.
pub(crate) fn event_insert_list() -> String {
    std::iter::once("project_id")
        .chain(EVENT_COLUMNS.iter().map(|c| c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The numbered placeholders of an event's `INSERT`, `sigil` being the engine's prefix:
/// `?1, ?2, …` for SQLite, `$1, $2, …` for PostgreSQL.
pub(crate) fn event_insert_placeholders(sigil: char) -> String {
    (1..=EVENT_INSERT_COLUMN_COUNT)
        .map(|n| format!("{sigil}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sql` with its runs of whitespace as one space.
    fn squeezed(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_lists_are_the_ones_the_statements_always_had() {
        assert_eq!(
            event_select_list(true),
            squeezed(
                "id, session_id, kind, name, parent_id, trace_id, span_id, start_time, end_time,
                 status, status_message, agent_id, model, provider, prompt, completion, params,
                 returns, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost,
                 attributes, packed, call_ids"
            )
        );
        assert_eq!(
            event_select_list(false),
            squeezed(
                "id, session_id, kind, name, parent_id, NULL, span_id, start_time, end_time,
                 status, NULL, NULL, model, NULL, NULL, NULL, NULL, NULL,
                 input_tokens, output_tokens, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), cost,
                 '{}', NULL, call_ids"
            )
        );
        assert_eq!(
            event_insert_list(),
            format!("project_id, {}", event_select_list(true))
        );
        assert_eq!(
            event_insert_placeholders('?'),
            "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
             ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27"
        );
        assert!(event_insert_placeholders('$').ends_with("$26, $27"));
    }
}
