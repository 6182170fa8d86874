//! OTLP log records and metric data points: stored once each (by fingerprint), a write's in
//! one statement.

use tokio_postgres::Transaction;

use super::write::{upsert_session, Applied};
use crate::store::fingerprint;
use crate::store::{LogRecord, MetricPoint, Outcome, SessionRecord};

/// Stores the records not stored yet, creating their sessions on first sight (a record may
/// arrive before its trace's spans); how many were new. The sessions are upserted (and so
/// locked) in id order before any record is inserted.
pub(super) async fn insert_logs(
    tx: &Transaction<'_>,
    project_id: &str,
    records: &[LogRecord],
) -> Applied<Outcome> {
    if records.is_empty() {
        return Ok(Outcome::Inserted(0));
    }
    let mut sessions: Vec<SessionRecord> = Vec::new();
    for record in records {
        match sessions.iter_mut().find(|s| s.id == record.session_id) {
            Some(session) => {
                if session.start_time.as_deref() > Some(record.time.as_str()) {
                    session.start_time = Some(record.time.clone());
                }
            }
            None => sessions.push(SessionRecord {
                id: record.session_id.clone(),
                start_time: Some(record.time.clone()),
                ..SessionRecord::default()
            }),
        }
    }
    sessions.sort_by(|a, b| a.id.cmp(&b.id));
    for session in &sessions {
        upsert_session(tx, project_id, session).await?;
    }
    let session_ids: Vec<&str> = records.iter().map(|r| r.session_id.as_str()).collect();
    let trace_ids: Vec<Option<&str>> = records.iter().map(|r| r.trace_id.as_deref()).collect();
    let span_ids: Vec<Option<&str>> = records.iter().map(|r| r.span_id.as_deref()).collect();
    let times: Vec<&str> = records.iter().map(|r| r.time.as_str()).collect();
    let severities: Vec<Option<&str>> = records.iter().map(|r| r.severity.as_deref()).collect();
    let event_names: Vec<Option<&str>> = records.iter().map(|r| r.event_name.as_deref()).collect();
    let bodies: Vec<String> = records.iter().map(|r| r.body.to_string()).collect();
    let attributes: Vec<String> = records.iter().map(|r| r.attributes.to_string()).collect();
    let call_ids: Vec<Option<&str>> = records.iter().map(|r| r.call_ids.as_deref()).collect();
    let fingerprints: Vec<String> = records.iter().map(fingerprint::log_record).collect();
    let inserted = tx
        .execute(
            "INSERT INTO otel_logs (project_id, session_id, trace_id, span_id, time, severity,
                 event_name, body, attributes, call_ids, fingerprint)
             SELECT $1, u.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
                 AS u(session_id, trace_id, span_id, time, severity, event_name, body,
                      attributes, call_ids, fingerprint)
             ON CONFLICT DO NOTHING",
            &[
                &project_id,
                &session_ids,
                &trace_ids,
                &span_ids,
                &times,
                &severities,
                &event_names,
                &bodies,
                &attributes,
                &call_ids,
                &fingerprints,
            ],
        )
        .await?;
    Ok(Outcome::Inserted(
        usize::try_from(inserted).unwrap_or(usize::MAX),
    ))
}

/// Stores the points not stored yet; how many were new.
pub(super) async fn insert_points(
    tx: &Transaction<'_>,
    project_id: &str,
    points: &[MetricPoint],
) -> Applied<Outcome> {
    if points.is_empty() {
        return Ok(Outcome::Inserted(0));
    }
    let attributes: Vec<String> = points.iter().map(|p| p.attributes.to_string()).collect();
    let buckets: Vec<Option<String>> = points
        .iter()
        .map(|p| p.buckets.as_ref().map(|b| b.to_string()))
        .collect();
    let fingerprints: Vec<String> = points
        .iter()
        .zip(attributes.iter().zip(&buckets))
        .map(|(p, (a, b))| fingerprint::metric_point(p, a, b.as_deref()))
        .collect();
    let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
    let kinds: Vec<&str> = points.iter().map(|p| p.kind.as_str()).collect();
    let units: Vec<Option<&str>> = points.iter().map(|p| p.unit.as_deref()).collect();
    let temporalities: Vec<Option<&str>> =
        points.iter().map(|p| p.temporality.as_deref()).collect();
    let monotonic: Vec<Option<bool>> = points.iter().map(|p| p.monotonic).collect();
    let starts: Vec<Option<&str>> = points.iter().map(|p| p.start_time.as_deref()).collect();
    let times: Vec<&str> = points.iter().map(|p| p.time.as_str()).collect();
    let values: Vec<Option<f64>> = points.iter().map(|p| p.value).collect();
    let counts: Vec<Option<i64>> = points
        .iter()
        .map(|p| p.count.map(|c| i64::try_from(c).unwrap_or(i64::MAX)))
        .collect();
    let sums: Vec<Option<f64>> = points.iter().map(|p| p.sum).collect();
    let mins: Vec<Option<f64>> = points.iter().map(|p| p.min).collect();
    let maxes: Vec<Option<f64>> = points.iter().map(|p| p.max).collect();
    let inserted = tx
        .execute(
            "INSERT INTO metric_points (project_id, name, kind, unit, temporality, monotonic,
                 attributes, start_time, time, value, count, sum, min, max, buckets, fingerprint)
             SELECT $1, u.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
                 $6::boolean[], $7::text[], $8::text[], $9::text[], $10::double precision[],
                 $11::bigint[], $12::double precision[], $13::double precision[],
                 $14::double precision[], $15::text[], $16::text[])
                 AS u(name, kind, unit, temporality, monotonic, attributes, start_time, time,
                      value, count, sum, min, max, buckets, fingerprint)
             ON CONFLICT DO NOTHING",
            &[
                &project_id,
                &names,
                &kinds,
                &units,
                &temporalities,
                &monotonic,
                &attributes,
                &starts,
                &times,
                &values,
                &counts,
                &sums,
                &mins,
                &maxes,
                &buckets,
                &fingerprints,
            ],
        )
        .await?;
    Ok(Outcome::Inserted(
        usize::try_from(inserted).unwrap_or(usize::MAX),
    ))
}
