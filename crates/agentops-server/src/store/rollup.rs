//! What newly stored events add to the aggregates a store keeps beside them, so that listing
//! sessions and statistics over whole hours never read every event: per-session totals, the
//! session facets the list filters read, and per-hour totals by model.
//!
//! An engine inserts a write's events, feeds the ones it actually stored to a [`Rollup`], then
//! applies the rollup's sums with one statement per session, facet and (hour, model).

use std::collections::{HashMap, HashSet};

use super::{EventRecord, ModelStats};

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

/// The UTC hour (`YYYY-MM-DDTHH`) of a stored start time: its first 13 characters. Keys of
/// the hourly totals; those of one day start with the day (`YYYY-MM-DD`), so that a range of
/// days or hours is a range of keys.
pub(crate) fn hour_of(start_time: &str) -> &str {
    start_time.get(..13).unwrap_or(start_time)
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

/// The key of the hourly totals: a UTC hour and a model (`""` for events without one);
/// ordered by hour, then model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HourModel<'a> {
    /// `YYYY-MM-DDTHH` (see [`hour_of`]).
    pub hour: &'a str,
    /// The model, or `""`.
    pub model: &'a str,
}

/// What new events add to one hour and model.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HourTotals {
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
    /// Per hour and model.
    hours: HashMap<HourModel<'a>, HourTotals>,
}

impl HourTotals {
    /// Adds `other` on.
    pub(crate) fn add(&mut self, other: &HourTotals) {
        self.events += other.events;
        self.errors += other.errors;
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost += other.cost;
    }
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

        let key = HourModel {
            hour: hour_of(&e.start_time),
            model: e.model.as_deref().unwrap_or(""),
        };
        let d = self.hours.entry(key).or_default();
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

    /// Per hour and model totals, in no particular order.
    pub(crate) fn hours(&self) -> impl Iterator<Item = (&HourModel<'a>, &HourTotals)> {
        self.hours.iter()
    }
}

/// Models by cost, most first (then by calls, most first, then by name).
pub(crate) fn by_cost(models: impl IntoIterator<Item = (String, ModelStats)>) -> Vec<ModelStats> {
    let mut models: Vec<ModelStats> = models.into_iter().map(|(_, m)| m).collect();
    models.sort_by(|a, b| {
        b.cost
            .total_cmp(&a.cost)
            .then(b.calls.cmp(&a.calls))
            .then_with(|| a.model.cmp(&b.model))
    });
    models
}

/// A statistics range cut where the hourly totals can answer for it: the whole UTC hours
/// inside it, and the parts of an hour at either end, which only the events can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatsSpans {
    /// The whole hours `[first, end)`, as keys of the hourly totals (`YYYY-MM-DDTHH`; `""`
    /// and [`OPEN_END`] when open); `None` when the range holds no whole hour.
    pub hours: Option<(String, String)>,
    /// The time ranges `[from, to)` outside those hours, to read from the events.
    pub partial: Vec<(String, String)>,
}

/// The bound of a range open at its end: after every stored timestamp.
pub(crate) const OPEN_END: &str = "\u{10ffff}";
/// What follows the hour in a stored timestamp on the hour (UTC).
const ON_THE_HOUR: &str = ":00:00.000000+00:00";

/// Cuts `[from, to)` (stored timestamps; `from` `""` and `to` [`OPEN_END`] when open) into
/// whole hours and the partial hours at its ends: a 30-day range from 12:30 reads 719 hours of
/// totals and two half hours of events instead of a month of events.
pub(crate) fn stats_spans(from: &str, to: &str) -> StatsSpans {
    let scan_all = || StatsSpans {
        hours: None,
        partial: vec![(from.to_owned(), to.to_owned())],
    };
    let hour = |t: &str| {
        let key = t.get(..13)?;
        chrono::NaiveDateTime::parse_from_str(&format!("{key}:00"), "%Y-%m-%dT%H:%M").ok()
    };
    let on_the_hour = |t: &str| t.get(13..) == Some(ON_THE_HOUR);
    let key = |h: chrono::NaiveDateTime| h.format("%Y-%m-%dT%H").to_string();
    let bound = |h: chrono::NaiveDateTime| format!("{}{ON_THE_HOUR}", key(h));
    let (first, head) = if from.is_empty() {
        (String::new(), None)
    } else {
        let Some(h) = hour(from) else {
            return scan_all();
        };
        if on_the_hour(from) {
            (key(h), None)
        } else {
            let Some(next) = h.checked_add_signed(chrono::Duration::hours(1)) else {
                return scan_all();
            };
            (key(next), Some((from.to_owned(), bound(next))))
        }
    };
    let (end, tail) = if to.starts_with(OPEN_END) {
        (OPEN_END.to_owned(), None)
    } else {
        let Some(h) = hour(to) else {
            return scan_all();
        };
        let tail = (!on_the_hour(to)).then(|| (bound(h), to.to_owned()));
        (key(h), tail)
    };
    if first >= end {
        return scan_all();
    }
    StatsSpans {
        hours: Some((first, end)),
        partial: head.into_iter().chain(tail).collect(),
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
    fn sums_per_session_in_first_seen_order_and_per_hour_and_model() {
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

        let mut hours: Vec<_> = rollup.hours().map(|(k, t)| (*k, t.clone())).collect();
        hours.sort_unstable_by_key(|(k, _)| (k.hour, k.model));
        assert_eq!(hours.len(), 3);
        assert_eq!(
            hours[0],
            (
                HourModel {
                    hour: "2026-01-01T10",
                    model: "m"
                },
                HourTotals {
                    events: 1,
                    errors: 0,
                    input_tokens: i64::MAX - 1,
                    output_tokens: 3,
                    cost: 0.25,
                }
            )
        );
        assert_eq!(hours[1].0.hour, "2026-01-01T11");
        assert_eq!((hours[1].1.events, hours[1].1.errors), (1, 1));
        // a start time shorter than an hour is its own hour; no model is ""
        assert_eq!(
            hours[2].0,
            HourModel {
                hour: "short",
                model: ""
            }
        );
    }

    #[test]
    fn stats_ranges_read_whole_hours_from_the_totals_and_the_ends_from_the_events() {
        let t = |d: &str, time: &str| format!("2026-11-{d}T{time}+00:00");
        let pair = |a: String, b: String| (a, b);
        // from 12:30 to 12:30 30 days later: whole hours from 13:00 to 12:00, two half hours
        let spans = stats_spans(&t("01", "12:30:00.000000"), &t("30", "12:30:00.000000"));
        assert_eq!(
            spans.hours,
            Some(("2026-11-01T13".into(), "2026-11-30T12".into()))
        );
        assert_eq!(
            spans.partial,
            [
                pair(t("01", "12:30:00.000000"), t("01", "13:00:00.000000")),
                pair(t("30", "12:00:00.000000"), t("30", "12:30:00.000000")),
            ]
        );
        // whole hours only, days or not
        let whole = stats_spans(&t("01", "00:00:00.000000"), &t("08", "05:00:00.000000"));
        assert_eq!(
            whole.hours,
            Some(("2026-11-01T00".into(), "2026-11-08T05".into()))
        );
        assert!(whole.partial.is_empty());
        // the hour before midnight ends in the next day
        let late = stats_spans(&t("30", "23:59:00.000000"), OPEN_END);
        assert_eq!(late.hours, Some(("2026-12-01T00".into(), OPEN_END.into())));
        assert_eq!(
            late.partial,
            [pair(
                t("30", "23:59:00.000000"),
                "2026-12-01T00:00:00.000000+00:00".into()
            )]
        );
        // open ends
        let open = stats_spans("", OPEN_END);
        assert_eq!(open.hours, Some((String::new(), OPEN_END.into())));
        assert!(open.partial.is_empty());
        // no whole hour inside, or a bound that is not a stored timestamp: every event
        for (from, to) in [
            (t("01", "10:10:00.000000"), t("01", "11:05:00.000000")),
            (t("01", "10:10:00.000000"), t("01", "10:20:00.000000")),
            ("yesterday".to_owned(), t("05", "00:00:00.000000")),
        ] {
            let spans = stats_spans(&from, &to);
            assert_eq!(spans.hours, None, "{from} {to}");
            assert_eq!(spans.partial, [(from.clone(), to.clone())]);
        }
    }
}
