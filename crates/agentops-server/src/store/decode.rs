//! Decoding read rows into the model, for every engine: an engine gives access to a row's
//! values by index ([`Columns`]) and these functions build the session summaries, events (their
//! payloads kept as raw JSON text, unpacked when packed), log records and metric points from
//! them, so that what a read answers does not depend on the engine.

use serde_json::value::RawValue;

use super::json::{parse_json, raw_attributes, raw_payload};
use super::payload::{unpack, UnpackError};
use super::{
    AgentSummary, CallRef, EventOutline, EventRow, LogRecord, MetricInfo, MetricPoint,
    SessionSummary,
};

/// One row of a result, read by column index. The borrowed getters read text and bytes
/// without copying them.
pub(crate) trait Columns {
    /// What a value that cannot be read as asked fails with.
    type Error;

    /// Text, possibly `NULL`.
    fn opt_str(&self, index: usize) -> Result<Option<&str>, Self::Error>;
    /// Text that is never `NULL`.
    fn str(&self, index: usize) -> Result<&str, Self::Error>;
    /// An integer, possibly `NULL`.
    fn opt_int(&self, index: usize) -> Result<Option<i64>, Self::Error>;
    /// An integer that is never `NULL`.
    fn int(&self, index: usize) -> Result<i64, Self::Error>;
    /// A real number, possibly `NULL`.
    fn opt_real(&self, index: usize) -> Result<Option<f64>, Self::Error>;
    /// A real number that is never `NULL`.
    fn real(&self, index: usize) -> Result<f64, Self::Error>;
    /// A boolean, possibly `NULL`.
    fn opt_bool(&self, index: usize) -> Result<Option<bool>, Self::Error>;
    /// Bytes, possibly `NULL`.
    fn opt_blob(&self, index: usize) -> Result<Option<&[u8]>, Self::Error>;
    /// The error of packed payloads at `index` that do not unpack.
    fn unpack_failed(&self, index: usize, error: UnpackError) -> Self::Error;

    /// Text, possibly `NULL`, owned.
    fn opt_text(&self, index: usize) -> Result<Option<String>, Self::Error> {
        Ok(self.opt_str(index)?.map(str::to_owned))
    }
    /// Text that is never `NULL`, owned.
    fn text(&self, index: usize) -> Result<String, Self::Error> {
        Ok(self.str(index)?.to_owned())
    }
}

/// Where a list query has its sort key: right after the [`summary_columns`].
pub(crate) const SORT_KEY_INDEX: usize = 15;

/// The columns [`summary_from`] reads, over `sessions s`, `duration` being the engine's SQL of
/// a session's duration in milliseconds over `s`; `host_env` and `video` are at indexes 11 and
/// 12.
pub(crate) fn summary_columns(duration: &str) -> String {
    format!(
        "s.id, s.name, s.start_time, s.end_time, s.end_state, s.end_state_reason,
         s.tags, s.event_count, s.input_tokens, s.output_tokens, s.cost, s.host_env, s.video,
         s.error_count, {duration}"
    )
}

/// A session list row, read from [`summary_columns`].
pub(crate) fn summary_from<R: Columns + ?Sized>(row: &R) -> Result<SessionSummary, R::Error> {
    let end_time = row.opt_text(3)?;
    let end_state = row.opt_text(4)?;
    let state = super::session_state(end_time.as_deref(), end_state.as_deref()).to_owned();
    let error_count = row.int(13)?;
    Ok(SessionSummary {
        id: row.text(0)?,
        name: row.opt_text(1)?,
        start_time: row.opt_text(2)?,
        end_time,
        end_state,
        end_state_reason: row.opt_text(5)?,
        tags: row
            .opt_str(6)?
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default(),
        event_count: row.int(7)?,
        input_tokens: row.int(8)?,
        output_tokens: row.int(9)?,
        cost: row.real(10)?,
        error_count,
        has_errors: error_count > 0,
        duration_ms: row.opt_int(14)?,
        state,
    })
}

/// The stored payload at `index`, unparsed (see [`raw_payload`]); `None` when `NULL`.
fn payload_at<R: Columns + ?Sized>(
    row: &R,
    index: usize,
) -> Result<Option<Box<RawValue>>, R::Error> {
    Ok(row.opt_str(index)?.map(raw_payload))
}

/// The index of `packed` among the columns [`event_from`] reads.
pub(crate) const PACKED: usize = 24;

/// An event, read from the columns of [`crate::store::columns::event_select_list`] (with or
/// without payloads): packed payloads are unpacked, rows stored before packing read from
/// their text columns.
pub(crate) fn event_from<R: Columns + ?Sized>(row: &R) -> Result<EventRow, R::Error> {
    let kind = row.text(2)?;
    let status = row.opt_text(9)?;
    let failed = super::is_failed(&kind, status.as_deref());
    let mut event = EventRow {
        id: row.text(0)?,
        session_id: row.text(1)?,
        kind,
        name: row.opt_text(3)?,
        parent_id: row.opt_text(4)?,
        trace_id: row.opt_text(5)?,
        span_id: row.opt_text(6)?,
        start_time: row.text(7)?,
        end_time: row.opt_text(8)?,
        status,
        status_message: row.opt_text(10)?,
        agent_id: row.opt_text(11)?,
        model: row.opt_text(12)?,
        provider: row.opt_text(13)?,
        prompt: payload_at(row, 14)?,
        completion: payload_at(row, 15)?,
        params: payload_at(row, 16)?,
        returns: payload_at(row, 17)?,
        input_tokens: row.opt_int(18)?,
        output_tokens: row.opt_int(19)?,
        cached_tokens: row.opt_int(20)?,
        reasoning_tokens: row.opt_int(21)?,
        cost: row.opt_real(22)?,
        attributes: raw_attributes(row.str(23)?),
        packed: None,
        call_ids: row.opt_text(25)?,
        messages: None,
        tool_links: Vec::new(),
        failed,
    };
    if let Some(packed) = row.opt_blob(PACKED)? {
        let payloads = unpack(packed).map_err(|e| row.unpack_failed(PACKED, e))?;
        event.prompt = payloads.prompt;
        event.completion = payloads.completion;
        event.params = payloads.params;
        event.returns = payloads.returns;
        event.attributes = payloads.attributes;
    }
    Ok(event)
}

/// The columns [`log_record_from`] reads, over `otel_logs`.
pub(crate) const LOG_RECORD_COLUMNS: &str =
    "session_id, time, severity, event_name, body, attributes, trace_id, span_id, call_ids";

/// An OTLP log record, read from [`LOG_RECORD_COLUMNS`]; `event_id` is left for the caller.
pub(crate) fn log_record_from<R: Columns + ?Sized>(row: &R) -> Result<LogRecord, R::Error> {
    let json = |text: String| parse_json(Some(text)).unwrap_or_default();
    Ok(LogRecord {
        session_id: row.text(0)?,
        time: row.text(1)?,
        severity: row.opt_text(2)?,
        event_name: row.opt_text(3)?,
        body: json(row.text(4)?),
        attributes: json(row.text(5)?),
        trace_id: row.opt_text(6)?,
        span_id: row.opt_text(7)?,
        event_id: None,
        call_ids: row.opt_text(8)?,
    })
}

/// The columns [`metric_point_from`] reads, over `metric_points`.
pub(crate) const METRIC_POINT_COLUMNS: &str =
    "name, kind, unit, temporality, monotonic, attributes, start_time, time, value, count, sum,
     min, max, buckets";

/// A metric data point, read from [`METRIC_POINT_COLUMNS`].
pub(crate) fn metric_point_from<R: Columns + ?Sized>(row: &R) -> Result<MetricPoint, R::Error> {
    Ok(MetricPoint {
        name: row.text(0)?,
        kind: row.text(1)?,
        unit: row.opt_text(2)?,
        temporality: row.opt_text(3)?,
        monotonic: row.opt_bool(4)?,
        attributes: parse_json(row.opt_text(5)?).unwrap_or_default(),
        start_time: row.opt_text(6)?,
        time: row.text(7)?,
        value: row.opt_real(8)?,
        count: row.opt_int(9)?.map(|c| c.max(0) as u64),
        sum: row.opt_real(10)?,
        min: row.opt_real(11)?,
        max: row.opt_real(12)?,
        buckets: parse_json(row.opt_text(13)?),
    })
}

/// The columns [`outline_from`] reads, over `events`.
pub(crate) const OUTLINE_COLUMNS: &str = "id, parent_id, span_id, start_time";

/// An event's outline, read from [`OUTLINE_COLUMNS`].
pub(crate) fn outline_from<R: Columns + ?Sized>(row: &R) -> Result<EventOutline, R::Error> {
    Ok(EventOutline {
        id: row.text(0)?,
        parent_id: row.opt_text(1)?,
        span_id: row.opt_text(2)?,
        start_time: row.text(3)?,
    })
}

/// Events by start time, then id, as a session's detail has them. Sorted by the reader rather
/// than the database, whose sorter would copy every row (payloads included); text compares
/// bytewise, as SQLite's `BINARY` and PostgreSQL's `"C"` collations do, and (start time, id)
/// is unique in a session.
pub(crate) fn sort_by_start(events: &mut [EventRow]) {
    events.sort_unstable_by(|a, b| {
        (a.start_time.as_str(), a.id.as_str()).cmp(&(b.start_time.as_str(), b.id.as_str()))
    });
}

/// Outlines in the order of [`sort_by_start`].
pub(crate) fn sort_outline(outline: &mut [EventOutline]) {
    outline.sort_unstable_by(|a, b| {
        (a.start_time.as_str(), a.id.as_str()).cmp(&(b.start_time.as_str(), b.id.as_str()))
    });
}

/// The events of a session that name tool calls, themselves or through the log records of
/// their span (an OTLP span's event id is its span id), `project` and `session` being the
/// placeholders of the project and session ids: the rows [`call_ref_from`] reads.
pub(crate) fn call_refs_sql(project: &str, session: &str) -> String {
    format!(
        "SELECT id, kind, span_id, call_ids FROM events
         WHERE project_id = {project} AND session_id = {session} AND call_ids IS NOT NULL
         UNION ALL
         SELECT e.id, e.kind, e.span_id, l.call_ids FROM otel_logs l
         JOIN events e ON e.project_id = l.project_id AND e.session_id = l.session_id
                      AND e.id = l.span_id
         WHERE l.project_id = {project} AND l.session_id = {session} AND l.call_ids IS NOT NULL"
    )
}

/// An event that names tool calls, read from [`call_refs_sql`].
pub(crate) fn call_ref_from<R: Columns + ?Sized>(row: &R) -> Result<CallRef, R::Error> {
    Ok(CallRef {
        event_id: row.text(0)?,
        kind: row.text(1)?,
        span_id: row.opt_text(2)?,
        call_ids: row.text(3)?,
    })
}

/// An agent of the project, read from its id, registered name and session count.
pub(crate) fn agent_from<R: Columns + ?Sized>(row: &R) -> Result<AgentSummary, R::Error> {
    Ok(AgentSummary {
        id: row.text(0)?,
        name: row.opt_text(1)?,
        session_count: row.int(2)?,
    })
}

/// A metric of the project, read from its name, kind, unit, point count and newest time.
pub(crate) fn metric_info_from<R: Columns + ?Sized>(row: &R) -> Result<MetricInfo, R::Error> {
    Ok(MetricInfo {
        name: row.text(0)?,
        kind: row.text(1)?,
        unit: row.opt_text(2)?,
        points: row.int(3)?,
        last_time: row.text(4)?,
    })
}
