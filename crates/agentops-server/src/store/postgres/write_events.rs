//! The events' bulk insert: a write's events in one statement (one array per column,
//! `UNNEST`ed), then what the new ones add to the aggregates kept beside them (see
//! [`crate::store::rollup`]), each aggregate in one statement too. The hourly totals, which
//! every write of a project and hour adds to, are summed over the whole transaction and added
//! at its end ([`HourlyTotals`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::write::Applied;
use crate::store::columns::EVENT_COLUMNS;
use crate::store::payload::PackedPayloads;
use crate::store::rollup::{HourModel, HourTotals, Rollup};
use crate::store::{EventRecord, StoreError};

/// How an event column is inserted: from an array parameter of this PostgreSQL type, or as a
/// constant (the payload text columns, empty once payloads are packed, as on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insert {
    /// From a `type[]` parameter.
    Array(&'static str),
    /// This SQL constant.
    Constant(&'static str),
}

/// How the column `name` of [`EVENT_COLUMNS`] is inserted.
fn insert_of(name: &str) -> Insert {
    match name {
        "prompt" | "completion" | "params" | "returns" => Insert::Constant("NULL"),
        "attributes" => Insert::Constant("''"),
        "input_tokens" | "output_tokens" | "cached_tokens" | "reasoning_tokens" => {
            Insert::Array("bigint")
        }
        "cost" => Insert::Array("double precision"),
        "packed" => Insert::Array("bytea"),
        _ => Insert::Array("text"),
    }
}

/// Inserts a write's events (`$1` the project, then one array per column inserted from one,
/// in [`EVENT_COLUMNS`] order); answers the key of each new one (events already stored, by
/// session and id, are left as they are).
static INSERT_EVENTS: LazyLock<String> = LazyLock::new(|| {
    let mut columns = vec!["project_id".to_owned()];
    let mut selected = vec!["$1".to_owned()];
    let mut arrays = Vec::new();
    let mut names = Vec::new();
    for column in &EVENT_COLUMNS {
        columns.push(column.name.to_owned());
        match insert_of(column.name) {
            Insert::Constant(value) => selected.push(value.to_owned()),
            Insert::Array(ty) => {
                arrays.push(format!("${}::{ty}[]", arrays.len() + 2));
                names.push(column.name);
                selected.push(format!("u.{}", column.name));
            }
        }
    }
    // An event's identity is its session and id. The primary key also holds `start_time`
    // (a partitioned table's keys include its partition key), so an event stored already
    // under another start time is looked for in every partition (not for the sessions of the
    // last array parameter, which have no event stored: their count says so, read under
    // their row lock), and a key repeated within the write is kept once (its first). Writes
    // to a session are serialised by its row lock, so no other replica inserts the same key
    // meanwhile.
    let empty_sessions = arrays.len() + 2;
    format!(
        "INSERT INTO events ({})
         SELECT {} FROM (
             SELECT DISTINCT ON (session_id, id) *
             FROM UNNEST({}) WITH ORDINALITY AS w({}, nth)
             ORDER BY session_id, id, nth
         ) AS u
         WHERE CASE WHEN u.session_id = ANY(${empty_sessions}::text[]) THEN true
             ELSE NOT EXISTS (
                 SELECT 1 FROM events e
                 WHERE e.project_id = $1 AND e.session_id = u.session_id AND e.id = u.id
             ) END
         ON CONFLICT DO NOTHING
         RETURNING session_id, id, start_time",
        columns.join(", "),
        selected.join(", "),
        arrays.join(", "),
        names.join(", "),
    )
});

/// One column's values over a write's events, as the array parameter bound to it.
fn column_values<'a>(
    name: &str,
    events: &'a [EventRecord],
    packed: &'a [&'a PackedPayloads],
) -> Result<Box<dyn ToSql + Sync + 'a>, StoreError> {
    fn text<'a>(
        events: &'a [EventRecord],
        f: impl Fn(&'a EventRecord) -> Option<&'a str>,
    ) -> Box<dyn ToSql + Sync + 'a> {
        Box::new(events.iter().map(f).collect::<Vec<Option<&str>>>())
    }
    fn int<'a>(
        events: &'a [EventRecord],
        f: impl Fn(&'a EventRecord) -> Option<i64>,
    ) -> Box<dyn ToSql + Sync + 'a> {
        Box::new(events.iter().map(f).collect::<Vec<Option<i64>>>())
    }
    Ok(match name {
        "id" => text(events, |e| Some(&e.id)),
        "session_id" => text(events, |e| Some(&e.session_id)),
        "kind" => text(events, |e| Some(&e.kind)),
        "name" => text(events, |e| e.name.as_deref()),
        "parent_id" => text(events, |e| e.parent_id.as_deref()),
        "trace_id" => text(events, |e| e.trace_id.as_deref()),
        "span_id" => text(events, |e| e.span_id.as_deref()),
        "start_time" => text(events, |e| Some(&e.start_time)),
        "end_time" => text(events, |e| e.end_time.as_deref()),
        "status" => text(events, |e| e.status.as_deref()),
        "status_message" => text(events, |e| e.status_message.as_deref()),
        "agent_id" => text(events, |e| e.agent_id.as_deref()),
        "model" => text(events, |e| e.model.as_deref()),
        "provider" => text(events, |e| e.provider.as_deref()),
        "call_ids" => text(events, |e| e.call_ids.as_deref()),
        "input_tokens" => int(events, |e| e.input_tokens),
        "output_tokens" => int(events, |e| e.output_tokens),
        "cached_tokens" => int(events, |e| e.cached_tokens),
        "reasoning_tokens" => int(events, |e| e.reasoning_tokens),
        "cost" => Box::new(events.iter().map(|e| e.cost).collect::<Vec<Option<f64>>>()),
        "packed" => Box::new(packed.iter().map(|p| p.as_bytes()).collect::<Vec<&[u8]>>()),
        other => {
            return Err(StoreError::Postgres(format!(
                "the PostgreSQL store does not insert the event column {other}"
            )))
        }
    })
}

/// `LEAST(GREATEST(a + b, i64::MIN), i64::MAX)`: `a + b` saturating at the 64-bit bounds
/// instead of failing.
fn saturating_add_sql(a: &str, b: &str) -> String {
    format!(
        "LEAST(GREATEST({a}::numeric + {b}, -9223372036854775808), 9223372036854775807)::bigint"
    )
}

/// Adds sessions' new events to their totals (`$1` project, then arrays of session ids,
/// events, input tokens, output tokens, cost, errors).
static UPDATE_SESSION_TOTALS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE sessions s SET event_count = s.event_count + u.events,
            input_tokens = {}, output_tokens = {},
            cost = s.cost + u.cost, error_count = s.error_count + u.errors
         FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                     $6::double precision[], $7::bigint[])
              AS u(id, events, input_tokens, output_tokens, cost, errors)
         WHERE s.project_id = $1 AND s.id = u.id",
        saturating_add_sql("s.input_tokens", "u.input_tokens"),
        saturating_add_sql("s.output_tokens", "u.output_tokens"),
    )
});

/// Records session facets, once each (`$1` project, then arrays of facets, values, sessions).
const INSERT_FACETS: &str = "INSERT INTO session_facets (project_id, facet, value, session_id)
     SELECT $1, u.facet, u.value, u.session_id
     FROM UNNEST($2::text[], $3::text[], $4::text[]) AS u(facet, value, session_id)
     ON CONFLICT DO NOTHING";

/// Adds events to the totals of hours and models (`$1` project, then arrays of hours, models,
/// events, errors, input tokens, output tokens, cost).
static ADD_HOURLY_TOTALS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO hourly_totals AS d (project_id, hour, model, events, error_events, input_tokens, output_tokens, cost)
         SELECT $1, u.hour, u.model, u.events, u.errors, u.input_tokens, u.output_tokens, u.cost
         FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                     $7::bigint[], $8::double precision[])
              AS u(hour, model, events, errors, input_tokens, output_tokens, cost)
         ON CONFLICT (project_id, hour, model) DO UPDATE SET
            events = d.events + excluded.events, error_events = d.error_events + excluded.error_events,
            input_tokens = {}, output_tokens = {}, cost = d.cost + excluded.cost",
        saturating_add_sql("d.input_tokens", "excluded.input_tokens"),
        saturating_add_sql("d.output_tokens", "excluded.output_tokens"),
    )
});

/// Inserts the events not stored yet, and adds those to their sessions' totals and the
/// session facets, and to `hours`; how many were new. The caller has locked the events'
/// sessions, and names those of them that have no event stored (`empty`).
pub(super) async fn insert_events<'w>(
    tx: &Transaction<'_>,
    project_id: &'w str,
    events: &'w [EventRecord],
    empty: &[&str],
    hours: &mut HourlyTotals<'w>,
) -> Applied<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    // Writes that did not come through the writer's queue (tests, tools) are packed here.
    let packed_here: Vec<Option<PackedPayloads>> = events
        .iter()
        .map(|e| {
            e.packed.is_none().then(|| {
                PackedPayloads::pack(
                    e.prompt.as_ref(),
                    e.completion.as_ref(),
                    e.params.as_ref(),
                    e.returns.as_ref(),
                    &e.attributes,
                    None,
                )
            })
        })
        .collect();
    let packed: Vec<&PackedPayloads> = events
        .iter()
        .zip(&packed_here)
        .filter_map(|(e, here)| e.packed.as_ref().or(here.as_ref()))
        .collect();
    let mut values = Vec::new();
    for column in &EVENT_COLUMNS {
        if let Insert::Array(_) = insert_of(column.name) {
            values.push(column_values(column.name, events, &packed)?);
        }
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&project_id];
    params.extend(values.iter().map(|v| v.as_ref()));
    params.push(&empty);
    let stored = tx.query(INSERT_EVENTS.as_str(), &params).await?;

    // The new events, each once (the first of a key that a write repeats, as SQLite keeps).
    let mut new: HashMap<(&str, &str, &str), bool> = HashMap::with_capacity(stored.len());
    for row in &stored {
        let key: (&str, &str, &str) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        new.insert(key, true);
    }
    let mut rollup = Rollup::default();
    for e in events {
        let key = (e.session_id.as_str(), e.id.as_str(), e.start_time.as_str());
        if let Some(unseen) = new.get_mut(&key) {
            if std::mem::take(unseen) {
                rollup.add(e);
            }
        }
    }
    add_rollup(tx, project_id, &rollup).await?;
    hours.add(project_id, &rollup);
    Ok(stored.len())
}

/// Adds what new events sum to onto the session totals and the facets.
async fn add_rollup(tx: &Transaction<'_>, project_id: &str, rollup: &Rollup<'_>) -> Applied<()> {
    let sessions = rollup.sessions();
    if sessions.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = sessions.iter().map(|t| t.session_id).collect();
    let events: Vec<i64> = sessions.iter().map(|t| t.events).collect();
    let input: Vec<i64> = sessions.iter().map(|t| t.input_tokens).collect();
    let output: Vec<i64> = sessions.iter().map(|t| t.output_tokens).collect();
    let cost: Vec<f64> = sessions.iter().map(|t| t.cost).collect();
    let errors: Vec<i64> = sessions.iter().map(|t| t.errors).collect();
    tx.execute(
        UPDATE_SESSION_TOTALS.as_str(),
        &[&project_id, &ids, &events, &input, &output, &cost, &errors],
    )
    .await?;

    let mut facets: Vec<_> = rollup.facets().collect();
    facets.sort_unstable_by_key(|f| (f.facet, f.value, f.session_id));
    let kinds: Vec<&str> = facets.iter().map(|f| f.facet).collect();
    let values: Vec<&str> = facets.iter().map(|f| f.value).collect();
    let owners: Vec<&str> = facets.iter().map(|f| f.session_id).collect();
    if !facets.is_empty() {
        tx.execute(INSERT_FACETS, &[&project_id, &kinds, &values, &owners])
            .await?;
    }
    Ok(())
}

/// What a transaction's new events add to the hourly totals, by project, hour and model.
///
/// Every write of a project in one hour adds to the same rows of `hourly_totals`, so the
/// transaction that updates them holds their locks until it commits. Added as each write went,
/// they were locked early, between session locks: two transactions could each hold a session
/// the other wanted next and an hour row it waited for (a deadlock, run again), and a second
/// writer waited on the first for nearly all of its transaction. Summed here and added once at
/// the end, in key order, they are the last locks a transaction takes.
#[derive(Debug, Default)]
pub(super) struct HourlyTotals<'w> {
    hours: BTreeMap<(&'w str, HourModel<'w>), HourTotals>,
}

impl<'w> HourlyTotals<'w> {
    /// Adds the hours of `rollup`, new events of `project_id`.
    pub(super) fn add(&mut self, project_id: &'w str, rollup: &Rollup<'w>) {
        for (key, totals) in rollup.hours() {
            self.hours
                .entry((project_id, *key))
                .or_default()
                .add(totals);
        }
    }

    /// Adds what `other` holds (a write's totals, once its savepoint is kept).
    pub(super) fn merge(&mut self, other: HourlyTotals<'w>) {
        for (key, totals) in other.hours {
            self.hours.entry(key).or_default().add(&totals);
        }
    }

    /// Adds the totals onto `hourly_totals`: a statement per project, in key order.
    ///
    /// It fails only as the database does, never for one write's values: each text here (the
    /// project, the hour and model of a stored event) was stored by that write's own statements
    /// first, which refuse a value PostgreSQL cannot hold; token sums saturate, and a cost
    /// is at most [`MAX_COST`](crate::mapping::MAX_COST) per event.
    pub(super) async fn apply(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        let hours: Vec<_> = self.hours.iter().collect();
        for project in hours.chunk_by(|((a, _), _), ((b, _), _)| a == b) {
            let ((project_id, _), _) = project[0];
            let arrays = HourArrays::from_hours(project.iter().map(|((_, key), t)| (*key, *t)));
            tx.execute(ADD_HOURLY_TOTALS.as_str(), &arrays.params(project_id))
                .await?;
        }
        Ok(())
    }
}

/// A rollup's hourly totals as one array per column (`$2`…`$8` of a statement whose `$1` is the
/// project), in key order, so that replicas writing the same hours lock their rows in one order.
pub(super) struct HourArrays<'a> {
    pub(super) hour: Vec<&'a str>,
    pub(super) model: Vec<&'a str>,
    events: Vec<i64>,
    errors: Vec<i64>,
    input: Vec<i64>,
    output: Vec<i64>,
    cost: Vec<f64>,
}

impl<'a> HourArrays<'a> {
    /// The hours of `rollup`.
    pub(super) fn of(rollup: &'a Rollup) -> Self {
        Self::from_hours(rollup.hours().map(|(key, totals)| (*key, totals)))
    }

    /// These totals by hour and model.
    fn from_hours<'d>(hours: impl Iterator<Item = (HourModel<'a>, &'d HourTotals)>) -> Self {
        let mut hours: Vec<_> = hours.collect();
        hours.sort_unstable_by_key(|(key, _)| *key);
        HourArrays {
            hour: hours.iter().map(|(k, _)| k.hour).collect(),
            model: hours.iter().map(|(k, _)| k.model).collect(),
            events: hours.iter().map(|(_, t)| t.events).collect(),
            errors: hours.iter().map(|(_, t)| t.errors).collect(),
            input: hours.iter().map(|(_, t)| t.input_tokens).collect(),
            output: hours.iter().map(|(_, t)| t.output_tokens).collect(),
            cost: hours.iter().map(|(_, t)| t.cost).collect(),
        }
    }

    /// The statement's parameters: `project_id`, then the arrays.
    pub(super) fn params<'p>(&'p self, project_id: &'p &'p str) -> [&'p (dyn ToSql + Sync); 8] {
        [
            project_id,
            &self.hour,
            &self.model,
            &self.events,
            &self.errors,
            &self.input,
            &self.output,
            &self.cost,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_but_the_payload_texts_is_bound_from_an_array() {
        let sql = INSERT_EVENTS.as_str();
        assert!(sql.contains("$22::text[]"), "{sql}");
        // then the sessions without events
        assert!(sql.contains("ANY($23::text[])"), "{sql}");
        assert!(!sql.contains("$24"), "{sql}");
        let events = [EventRecord::default()];
        let packed = PackedPayloads::pack(None, None, None, None, &serde_json::json!({}), None);
        for column in &EVENT_COLUMNS {
            if let Insert::Array(_) = insert_of(column.name) {
                assert!(column_values(column.name, &events, &[&packed]).is_ok());
            }
        }
    }
}
