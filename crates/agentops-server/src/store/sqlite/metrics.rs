//! OTLP metric data points: stored once each (by fingerprint), read back by metric and time.

use rusqlite::{params, Connection};

use crate::store::decode::{metric_info_from, metric_point_from, METRIC_POINT_COLUMNS};
use crate::store::{MetricInfo, MetricPoint, Outcome, StoreError, MAX_METRIC_POINTS};

/// Stores the points not stored yet; how many were new.
pub(super) fn insert_points(
    tx: &Connection,
    project_id: &str,
    points: &[MetricPoint],
) -> Result<Outcome, StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO metric_points (project_id, name, kind, unit, temporality, monotonic,
             attributes, start_time, time, value, count, sum, min, max, buckets, fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    let mut inserted = 0;
    for p in points {
        let attributes = p.attributes.to_string();
        let buckets = p.buckets.as_ref().map(|b| b.to_string());
        inserted += insert.execute(params![
            project_id,
            p.name,
            p.kind,
            p.unit,
            p.temporality,
            p.monotonic,
            attributes,
            p.start_time,
            p.time,
            p.value,
            p.count.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
            p.sum,
            p.min,
            p.max,
            buckets,
            crate::store::fingerprint::metric_point(p, &attributes, buckets.as_deref()),
        ])?;
    }
    Ok(Outcome::Inserted(inserted))
}

/// The project's metrics by name.
pub(super) fn metric_names(
    c: &Connection,
    project_id: &str,
) -> Result<Vec<MetricInfo>, StoreError> {
    let rows = c
        .prepare_cached(
            "SELECT name, kind, unit, COUNT(*), MAX(time) FROM metric_points
             WHERE project_id = ?1 GROUP BY name ORDER BY name",
        )?
        .query_map([project_id], |r| metric_info_from(r))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A metric's points in `[from, to)` by time.
pub(super) fn metric_points(
    c: &Connection,
    project_id: &str,
    name: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<MetricPoint>, StoreError> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {METRIC_POINT_COLUMNS}
             FROM metric_points
             WHERE project_id = ?1 AND name = ?2 AND (?3 IS NULL OR time >= ?3)
               AND (?4 IS NULL OR time < ?4)
             ORDER BY time, seq LIMIT ?5"
        ))?
        .query_map(
            params![project_id, name, from, to, MAX_METRIC_POINTS as i64],
            |r| metric_point_from(r),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
