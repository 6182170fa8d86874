//! Assembling [`RawStats`] from what an engine reads: the sessions in the range, and the
//! per-day and per-model event totals of its whole hours (hourly totals) and partial hours
//! (events), in any order and any number of parts.

use std::collections::BTreeMap;

use super::rollup::by_cost;
use super::{DayStats, ModelStats, RawStats};

/// Statistics being summed up.
#[derive(Debug, Default)]
pub(crate) struct StatsBuilder {
    stats: RawStats,
    days: BTreeMap<String, DayStats>,
    models: BTreeMap<String, ModelStats>,
}

/// What events of one day add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct EventTotals {
    /// Events.
    pub events: i64,
    /// Failed ones.
    pub error_events: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cost, US dollars.
    pub cost: f64,
}

impl StatsBuilder {
    /// The totals of a day, created empty on first sight.
    fn day(&mut self, date: String) -> &mut DayStats {
        self.days.entry(date.clone()).or_insert_with(|| DayStats {
            date,
            sessions: 0,
            events: 0,
            error_events: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost: 0.0,
        })
    }

    /// A session started on `date` (`YYYY-MM-DD`), with `errors` failed events, that lasted
    /// `duration_ms` (`None` while it runs).
    pub(crate) fn add_session(&mut self, date: String, errors: i64, duration_ms: Option<i64>) {
        self.day(date).sessions += 1;
        self.stats.sessions += 1;
        if errors > 0 {
            self.stats.sessions_with_errors += 1;
        }
        if let Some(duration) = duration_ms {
            self.stats.durations_ms.push(duration);
        }
    }

    /// Events started on `date`.
    pub(crate) fn add_day(&mut self, date: String, totals: EventTotals) {
        let d = self.day(date);
        d.events += totals.events;
        d.error_events += totals.error_events;
        d.input_tokens += totals.input_tokens;
        d.output_tokens += totals.output_tokens;
        d.cost += totals.cost;
    }

    /// Events (calls) of `model` (their error count is not kept per model).
    pub(crate) fn add_model(&mut self, model: String, totals: EventTotals) {
        let m = self
            .models
            .entry(model.clone())
            .or_insert_with(|| ModelStats {
                model,
                calls: 0,
                input_tokens: 0,
                output_tokens: 0,
                cost: 0.0,
            });
        m.calls += totals.events;
        m.input_tokens += totals.input_tokens;
        m.output_tokens += totals.output_tokens;
        m.cost += totals.cost;
    }

    /// The statistics: days oldest first, models costliest first, durations ascending.
    pub(crate) fn finish(self) -> RawStats {
        let mut stats = self.stats;
        stats.models = by_cost(self.models);
        stats.durations_ms.sort_unstable();
        stats.days = self.days.into_values().collect();
        stats
    }
}
