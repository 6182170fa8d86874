//! The engine-independent parts of [`super::ReadStore::session_changes`]: whether a reader's mark
//! still holds, and the answer made of what an engine read.

use super::{EventOutline, RowMark, SessionChanges, SessionDetail, SessionMark};

/// What one table of a session holds now, and whether a reader's mark of it still holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableMark {
    /// The mark of the table's rows of the session now.
    pub now: RowMark,
    /// Whether the reader's mark of them holds.
    pub holds: bool,
}

impl TableMark {
    /// The table's rows of the session now numbered up to `last`, `count` of them, of which
    /// `at_or_below` numbered at most `since.last`: `since` holds when it is at most `last`
    /// and counted exactly those.
    pub(crate) fn new(since: Option<&RowMark>, last: i64, count: i64, at_or_below: i64) -> Self {
        TableMark {
            now: RowMark { last, count },
            holds: since.is_some_and(|m| m.last <= last && m.count == at_or_below),
        }
    }
}

/// The mark now of a session's events, OTLP log records and uploaded logs, and `since` if it
/// holds for all three (else the answer is the whole session).
pub(crate) fn marks(
    since: Option<&SessionMark>,
    events: TableMark,
    log_records: TableMark,
    logs: TableMark,
) -> (SessionMark, Option<&SessionMark>) {
    let mark = SessionMark {
        events: events.now,
        log_records: log_records.now,
        logs: logs.now,
    };
    let holds = events.holds && log_records.holds && logs.holds;
    (mark, since.filter(|_| holds))
}

/// The answer that is the whole session (`detail`, as the session detail has it).
pub(crate) fn whole(detail: Option<SessionDetail>, mark: SessionMark) -> Option<SessionChanges> {
    detail.map(|detail| SessionChanges {
        detail,
        outline: Vec::new(),
        mark,
        whole: true,
    })
}

/// Whether the tree of the session may have changed since `since` (an event or an OTLP log
/// record is new), so that the answer carries the outline of every event.
pub(crate) fn tree_may_change(mark: &SessionMark, since: &SessionMark) -> bool {
    mark.events.count > since.events.count || mark.log_records.count > since.log_records.count
}

/// The answer that is what was stored after the mark: `detail` with the new rows only, and
/// `outline` (sorted here) when [`tree_may_change`].
pub(crate) fn delta(
    detail: SessionDetail,
    mut outline: Vec<EventOutline>,
    mark: SessionMark,
) -> SessionChanges {
    super::decode::sort_outline(&mut outline);
    SessionChanges {
        detail,
        outline,
        mark,
        whole: false,
    }
}
