//! What newly stored events add to the aggregates a store keeps beside them, so that listing
//! sessions and statistics over whole days never read every event: per-session totals, the
//! session facets the list filters read, and per-day totals by model.
//!
//! An engine inserts a write's events, feeds the ones it actually stored to a [`Rollup`], then
//! applies the rollup's sums with one statement per session, facet and (day, model).

use std::collections::{HashMap, HashSet};

use super::EventRecord;

/// The facet of a session's event names.
pub(crate) const FACET_NAME: &str = "name";
/// The facet of a session's event models.
pub(crate) const FACET_MODEL: &str = "model";
/// The facet of a session's agent ids (named by events or registered).
pub(crate) const FACET_AGENT: &str = "agent";
/// The facet of a session's registered agent names.
pub(crate) const FACET_AGENT_NAME: &str = "agent_name";

/// Whether an event counts as failed (see [`crate::store::is_failed`]).
pub(crate) fn is_error(e: &EventRecord) -> bool {
    crate::store::is_failed(&e.kind, e.status.as_deref())
}

/// The UTC day (`YYYY-MM-DD`) of a stored start time: its first 10 characters.
pub(crate) fn day_of(start_time: &str) -> &str {
    start_time.get(..10).unwrap_or(start_time)
}

/// What the new events of one session add to its totals.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionTotals<'a> {
    /// The session.
    pub session_id: &'a str,
    /// Events stored.
    pub events: i64,
    /// Input tokens (saturating).
    pub input_tokens: i64,
    /// Output tokens (saturating).
    pub output_tokens: i64,
    /// Cost, US dollars.
    pub cost: f64,
    /// Failed events (see [`is_error`]).
    pub errors: i64,
}

/// One thing a session contains: an event name, a model, an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Facet<'a> {
    /// The session.
    pub session_id: &'a str,
    /// [`FACET_NAME`], [`FACET_MODEL`] or [`FACET_AGENT`].
    pub facet: &'static str,
    /// The name, model or agent id.
    pub value: &'a str,
}

/// The key of the daily totals: a UTC day and a model (`""` for events without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DayModel<'a> {
    /// `YYYY-MM-DD` (see [`day_of`]).
    pub day: &'a str,
    /// The model, or `""`.
    pub model: &'a str,
}

/// What new events add to one day and model.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DayTotals {
    /// Events stored.
    pub events: i64,
    /// Failed events (see [`is_error`]).
    pub errors: i64,
    /// Input tokens (saturating).
    pub input_tokens: i64,
    /// Output tokens (saturating).
    pub output_tokens: i64,
    /// Cost, US dollars.
    pub cost: f64,
}

/// The sums of the events of one write, borrowed from them.
#[derive(Debug, Default)]
pub(crate) struct Rollup<'a> {
    /// Per session, in first-seen order (the order the sessions are updated in).
    sessions: Vec<SessionTotals<'a>>,
    /// Where each session is in `sessions`.
    session_index: HashMap<&'a str, usize>,
    /// Each (session, facet, value) seen, once.
    facets: HashSet<Facet<'a>>,
    /// Per day and model.
    days: HashMap<DayModel<'a>, DayTotals>,
}

impl<'a> Rollup<'a> {
    /// Adds a newly stored event.
    pub(crate) fn add(&mut self, e: &'a EventRecord) {
        let input = e.input_tokens.unwrap_or(0);
        let output = e.output_tokens.unwrap_or(0);
        let cost = e.cost.unwrap_or(0.0);
        let failed = is_error(e);

        let i = *self.session_index.entry(&e.session_id).or_insert_with(|| {
            self.sessions.push(SessionTotals {
                session_id: &e.session_id,
                events: 0,
                input_tokens: 0,
                output_tokens: 0,
                cost: 0.0,
                errors: 0,
            });
            self.sessions.len() - 1
        });
        let t = &mut self.sessions[i];
        t.events += 1;
        t.input_tokens = t.input_tokens.saturating_add(input);
        t.output_tokens = t.output_tokens.saturating_add(output);
        t.cost += cost;
        t.errors += i64::from(failed);

        let key = DayModel {
            day: day_of(&e.start_time),
            model: e.model.as_deref().unwrap_or(""),
        };
        let d = self.days.entry(key).or_default();
        d.events += 1;
        d.errors += i64::from(failed);
        d.input_tokens = d.input_tokens.saturating_add(input);
        d.output_tokens = d.output_tokens.saturating_add(output);
        d.cost += cost;

        for (facet, value) in [
            (FACET_NAME, &e.name),
            (FACET_MODEL, &e.model),
            (FACET_AGENT, &e.agent_id),
        ] {
            if let Some(value) = value {
                self.facets.insert(Facet {
                    session_id: &e.session_id,
                    facet,
                    value,
                });
            }
        }
    }

    /// Per-session totals, in the order the sessions were first seen.
    pub(crate) fn sessions(&self) -> &[SessionTotals<'a>] {
        &self.sessions
    }

    /// The distinct facets seen, in no particular order.
    pub(crate) fn facets(&self) -> impl Iterator<Item = &Facet<'a>> {
        self.facets.iter()
    }

    /// Per day and model totals, in no particular order.
    pub(crate) fn days(&self) -> impl Iterator<Item = (&DayModel<'a>, &DayTotals)> {
        self.days.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, session: &str, start: &str) -> EventRecord {
        EventRecord {
            id: id.into(),
            session_id: session.into(),
            kind: "llms".into(),
            start_time: start.into(),
            attributes: serde_json::json!({}),
            ..EventRecord::default()
        }
    }

    #[test]
    fn an_error_is_a_failed_status_or_an_error_event() {
        let mut e = event("e", "s", "2026-01-01");
        assert!(!is_error(&e));
        e.status = Some("error".into());
        assert!(is_error(&e));
        e.status = Some("ok".into());
        e.kind = "errors".into();
        assert!(is_error(&e));
    }

    #[test]
    fn sums_per_session_in_first_seen_order_and_per_day_and_model() {
        let events = vec![
            EventRecord {
                input_tokens: Some(i64::MAX - 1),
                output_tokens: Some(3),
                cost: Some(0.25),
                model: Some("m".into()),
                name: Some("call".into()),
                ..event("e1", "s2", "2026-01-01T10:00:00.000000+00:00")
            },
            EventRecord {
                input_tokens: Some(5),
                cost: Some(0.5),
                status: Some("error".into()),
                model: Some("m".into()),
                agent_id: Some("a".into()),
                ..event("e2", "s2", "2026-01-01T11:00:00.000000+00:00")
            },
            event("e3", "s1", "short"),
        ];
        let mut rollup = Rollup::default();
        for e in &events {
            rollup.add(e);
        }
        let sessions = rollup.sessions();
        assert_eq!(sessions.len(), 2);
        assert_eq!(
            sessions[0],
            SessionTotals {
                session_id: "s2",
                events: 2,
                input_tokens: i64::MAX,
                output_tokens: 3,
                cost: 0.75,
                errors: 1,
            }
        );
        assert_eq!(sessions[1].session_id, "s1");
        assert_eq!(sessions[1].events, 1);

        let mut facets: Vec<_> = rollup
            .facets()
            .map(|f| (f.session_id, f.facet, f.value))
            .collect();
        facets.sort_unstable();
        assert_eq!(
            facets,
            [
                ("s2", FACET_AGENT, "a"),
                ("s2", FACET_MODEL, "m"),
                ("s2", FACET_NAME, "call"),
            ]
        );

        let mut days: Vec<_> = rollup.days().map(|(k, t)| (*k, t.clone())).collect();
        days.sort_unstable_by_key(|(k, _)| (k.day, k.model));
        assert_eq!(days.len(), 2);
        assert_eq!(
            days[0],
            (
                DayModel {
                    day: "2026-01-01",
                    model: "m"
                },
                DayTotals {
                    events: 2,
                    errors: 1,
                    input_tokens: i64::MAX,
                    output_tokens: 3,
                    cost: 0.75,
                }
            )
        );
        // a start time shorter than a day is its own day; no model is ""
        assert_eq!(
            days[1].0,
            DayModel {
                day: "short",
                model: ""
            }
        );
    }
}
