//! How a session record merges into the stored session, the same on every engine: the
//! `ON CONFLICT` clause of both engines' session upserts (`excluded` the record written,
//! `sessions` the row stored).
//!
//! A name replaces the stored one when it is surer (a higher rank, see
//! [`crate::mapping::names`]) or as sure and explicit ([`EXPLICIT_NAME_RANK`] and above); the
//! start is the earliest, the end and end state the latest given; a plain trace ended by the
//! quiet window is reopened by a new root span (its next turn) but not by a late child span;
//! the root span's end, failure and reason are the latest root's; tags, host environment and
//! video replace the stored ones when given.

/// Names of this rank and above are explicit (`session.name`, a session span's): a later one
/// replaces an earlier one of the same rank. Below, the first name of a rank stays.
pub(crate) const EXPLICIT_NAME_RANK: u8 = 5;

/// The `ON CONFLICT (project_id, id) DO UPDATE SET …` clause, with the engine's names for the
/// smaller and the larger of two values (`min`/`max` on SQLite, `LEAST`/`GREATEST` on
/// PostgreSQL).
pub(crate) fn on_conflict_update(least: &str, greatest: &str) -> String {
    format!(
        "ON CONFLICT (project_id, id) DO UPDATE SET
            name = CASE WHEN excluded.name IS NOT NULL AND (sessions.name IS NULL
                             OR excluded.name_rank > sessions.name_rank
                             OR (excluded.name_rank >= {EXPLICIT_NAME_RANK} AND excluded.name_rank = sessions.name_rank))
                        THEN excluded.name ELSE sessions.name END,
            name_rank = CASE WHEN excluded.name IS NOT NULL AND (sessions.name IS NULL
                             OR excluded.name_rank > sessions.name_rank)
                        THEN excluded.name_rank ELSE sessions.name_rank END,
            start_time = CASE WHEN sessions.start_time IS NULL THEN excluded.start_time
                              WHEN excluded.start_time IS NULL THEN sessions.start_time
                              ELSE {least}(sessions.start_time, excluded.start_time) END,
            end_time = CASE
                WHEN excluded.end_time IS NOT NULL THEN excluded.end_time
                WHEN sessions.ended_by = 'quiet' AND excluded.root_end_time > sessions.root_end_time THEN NULL
                WHEN sessions.ended_by = 'quiet' AND excluded.last_event_end > sessions.end_time THEN excluded.last_event_end
                ELSE sessions.end_time END,
            end_state = CASE
                WHEN excluded.end_state IS NOT NULL THEN excluded.end_state
                WHEN sessions.ended_by = 'quiet' AND excluded.root_end_time > sessions.root_end_time THEN NULL
                ELSE sessions.end_state END,
            end_state_reason = CASE
                WHEN excluded.end_state_reason IS NOT NULL THEN excluded.end_state_reason
                WHEN sessions.ended_by = 'quiet' AND excluded.root_end_time > sessions.root_end_time THEN NULL
                ELSE sessions.end_state_reason END,
            ended_by = CASE
                WHEN excluded.end_state IS NOT NULL THEN NULL
                WHEN sessions.ended_by = 'quiet' AND excluded.root_end_time > sessions.root_end_time THEN NULL
                ELSE sessions.ended_by END,
            root_end_time = CASE WHEN excluded.root_end_time IS NULL THEN sessions.root_end_time
                                 WHEN sessions.root_end_time IS NULL THEN excluded.root_end_time
                                 ELSE {greatest}(sessions.root_end_time, excluded.root_end_time) END,
            root_failed = CASE WHEN excluded.root_end_time >= COALESCE(sessions.root_end_time, '')
                               THEN excluded.root_failed ELSE sessions.root_failed END,
            root_reason = CASE WHEN excluded.root_end_time >= COALESCE(sessions.root_end_time, '')
                               THEN excluded.root_reason ELSE sessions.root_reason END,
            last_event_end = CASE WHEN excluded.last_event_end IS NULL THEN sessions.last_event_end
                                  WHEN sessions.last_event_end IS NULL THEN excluded.last_event_end
                                  ELSE {greatest}(sessions.last_event_end, excluded.last_event_end) END,
            last_span_at = excluded.last_span_at,
            tags = COALESCE(excluded.tags, sessions.tags),
            host_env = COALESCE(excluded.host_env, sessions.host_env),
            video = COALESCE(excluded.video, sessions.video)"
    )
}
