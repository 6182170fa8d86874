//! Ends plain traces by themselves. A trace sent without an AgentOps session span (OpenLLMetry,
//! OpenInference, the OpenTelemetry GenAI instrumentations, any OTel SDK) has nothing that ends
//! its session; the server ends it once its root span has ended and no span of it has arrived
//! for the quiet window, so that late children still join. It ends as `Fail` when the root span's
//! status is an error, else `Success`, at the latest end of its events; the state and end time
//! are stored. A session span, a v2 `update_session` or an `agentops.session.end_state` always
//! decides over this; a new root span (a conversation's next trace) reopens a session the quiet
//! window ended, a late child span only moves its end.

use std::time::Duration;

use crate::writer::WriterHandle;

/// The default quiet window.
pub const DEFAULT_QUIET_WINDOW: Duration = Duration::from_secs(30);

/// How often sessions past their window are looked for: a fifth of the window, between 200 ms
/// and 5 s.
pub fn check_interval(window: Duration) -> Duration {
    (window / 5).clamp(Duration::from_millis(200), Duration::from_secs(5))
}

/// Ends the sessions past their quiet window, every [`check_interval`], until aborted.
pub async fn run(writer: WriterHandle, window: Duration) {
    let mut ticks = tokio::time::interval(check_interval(window));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(before) = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| chrono::Utc::now().checked_sub_signed(w))
            .map(agentops_core::timestamp::format)
        else {
            continue;
        };
        match writer
            .submit(crate::store::Write::CloseQuietSessions { before })
            .await
        {
            Ok(crate::store::Outcome::Inserted(ended)) if ended > 0 => {
                tracing::debug!(ended, "ended plain traces after their quiet window");
            }
            Ok(_) => {}
            // a busy writer: the next tick tries again
            Err(e) => tracing::debug!(error = %e, "ending quiet sessions postponed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_interval_follows_the_window_within_bounds() {
        assert_eq!(
            check_interval(Duration::from_secs(30)),
            Duration::from_secs(5)
        );
        assert_eq!(
            check_interval(Duration::from_secs(2)),
            Duration::from_millis(400)
        );
        assert_eq!(check_interval(Duration::ZERO), Duration::from_millis(200));
    }
}
