//! `GET /api/v1/metrics`: the project's OTLP metrics, as time series.
//!
//! Without `name`: the metrics stored (`{"metrics": [{"name", "kind", "unit", "points",
//! "last_time"}]}`). With `name`: that metric's points in `[from, to)` (default: the last 24
//! hours), filtered by `attr.<key>=<value>` (all must match), summed per time bucket (`bucket`
//! seconds, or `1m`, `5m`, `1h`, `1d`; default: about 60 buckets) and per value of the
//! `group_by` attributes (repeatable, or `a,b`; an array attribute such as `session.tags` puts a
//! point in one series per element, and `attr.session.tags=x` matches the arrays holding `x`);
//! `attribute_keys` lists the keys seen in the range:
//! - sums: what was added in the bucket (cumulative sums are turned into their increases,
//!   series by series; a reset starts again from its value); an up-down counter's last value;
//! - gauges: the mean of the bucket's values (`min`, `max` beside it);
//! - histograms, exponential histograms, summaries: `count` and `sum` added (cumulative ones as
//!   increases), `min` and `max`, and `value` = the mean.

use std::collections::{BTreeMap, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::caller::Reader;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::MetricPoint;

/// The most buckets a query may ask for.
pub const MAX_BUCKETS: i64 = 10_000;

/// What a metrics query asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsQuery {
    /// The metric; `None` lists the metrics.
    pub name: Option<String>,
    /// From (stored timestamp form).
    pub from: Option<String>,
    /// To, exclusive.
    pub to: Option<String>,
    /// Bucket width in seconds; `None`: about 60 buckets over the range.
    pub bucket_seconds: Option<i64>,
    /// Attributes a point must have, with these values.
    pub filters: Vec<(String, String)>,
    /// Attributes the series are split by.
    pub group_by: Vec<String>,
}

fn parse_bucket(text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match digits.parse::<i64>() {
        Ok(n) if n > 0 && scale > 0 && n <= 366 * 86_400 / scale => Ok(n * scale),
        _ => Err(ApiError::bad(format!(
            "bucket: expected seconds or a number with s, m, h or d (at most a year), got {text:?}"
        ))),
    }
}

/// Parses the query string of `/api/v1/metrics`.
pub fn parse_metrics_query(pairs: &[(String, String)]) -> Result<MetricsQuery, ApiError> {
    let mut query = MetricsQuery::default();
    let mut range = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "name" if !value.trim().is_empty() => query.name = Some(value.trim().to_owned()),
            "name" => return Err(ApiError::bad("name: must not be empty")),
            "from" | "to" => range.push((key.clone(), value.clone())),
            "bucket" => query.bucket_seconds = Some(parse_bucket(value)?),
            "group_by" => query.group_by.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
            ),
            other => match other.strip_prefix("attr.") {
                Some(attr) if !attr.is_empty() => query.filters.push((attr.to_owned(), value.clone())),
                _ => {
                    return Err(ApiError::bad(format!(
                        "{other}: unknown parameter (expected name, from, to, bucket, group_by, attr.<key>)"
                    )))
                }
            },
        }
    }
    let (from, to) = super::params::parse_range(&range)?;
    query.from = from;
    query.to = to;
    Ok(query)
}

/// `GET /api/v1/metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    caller: Reader,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = caller.project()?.to_owned();
    let pairs = query
        .map(|Query(pairs)| pairs)
        .map_err(|e| ApiError::bad(format!("query string: {e}")))?;
    let mut query = parse_metrics_query(&pairs)?;
    let Some(name) = query.name.clone() else {
        let metrics = state.read(move |s| s.metric_names(&project)).await?;
        return Ok(Json(json!({ "metrics": metrics })));
    };
    let now = chrono::Utc::now();
    let to = query
        .to
        .clone()
        .unwrap_or_else(|| agentops_core::timestamp::format(now));
    let from = query.from.clone().unwrap_or_else(|| {
        let end = agentops_core::timestamp::parse(&to).unwrap_or(now);
        agentops_core::timestamp::format(end - chrono::Duration::hours(24))
    });
    let span_secs = seconds(&to) - seconds(&from);
    let bucket = query
        .bucket_seconds
        .unwrap_or_else(|| (span_secs / 60).max(1));
    if span_secs / bucket > MAX_BUCKETS {
        return Err(ApiError::bad(format!(
            "bucket: {bucket} s over this range makes more than {MAX_BUCKETS} buckets"
        )));
    }
    query.bucket_seconds = Some(bucket);
    let (f, t) = (from.clone(), to.clone());
    let points = state
        .read(move |s| s.metric_points(&project, &name, Some(&f), Some(&t)))
        .await?;
    let series = aggregate(&points, &query);
    let attribute_keys = attribute_keys(&points);
    let first = points.first();
    Ok(Json(json!({
        "name": query.name,
        "kind": first.map(|p| p.kind.clone()),
        "unit": first.and_then(|p| p.unit.clone()),
        "temporality": first.and_then(|p| p.temporality.clone()),
        "from": from,
        "to": to,
        "bucket_seconds": bucket,
        "attribute_keys": attribute_keys,
        "series": series,
    })))
}

fn seconds(time: &str) -> i64 {
    agentops_core::timestamp::parse(time)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn attribute_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One bucket of a series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// The bucket's start.
    pub time: String,
    /// The sum added, the gauge's mean, or a distribution's mean.
    pub value: Option<f64>,
    /// Distributions: observations added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Distributions: their sum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// The least value seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The greatest value seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip)]
    gauge_values: u64,
}

/// One series: the values of the `group_by` attributes, and its buckets by time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The `group_by` attributes' values (absent ones left out).
    pub attributes: Map<String, Value>,
    /// Buckets with data, by time.
    pub points: Vec<Bucket>,
}

/// A series' buckets by their start (seconds since the epoch).
type Buckets = BTreeMap<i64, Bucket>;

/// A point's own contribution, cumulative values turned into increases.
#[derive(Debug, Clone, Copy, Default)]
struct Contribution {
    value: Option<f64>,
    count: Option<u64>,
    sum: Option<f64>,
}

/// The series of `points` (sorted by time) for `query` (its `bucket_seconds` set).
pub fn aggregate(points: &[MetricPoint], query: &MetricsQuery) -> Vec<Series> {
    let bucket = query.bucket_seconds.unwrap_or(60).max(1);
    // the last point of each raw series, for cumulative increases
    let mut previous: HashMap<String, &MetricPoint> = HashMap::new();
    let mut groups: BTreeMap<String, (Map<String, Value>, Buckets)> = BTreeMap::new();
    for point in points {
        let attrs = point.attributes.as_object();
        let matches = query.filters.iter().all(|(k, v)| {
            attrs
                .and_then(|a| a.get(k))
                .is_some_and(|value| values_of(value).any(|one| attribute_text(one) == *v))
        });
        if !matches {
            continue;
        }
        let contribution = contribution(point, &mut previous);
        let start = seconds(&point.time).div_euclid(bucket) * bucket;
        for group in groups_of(attrs, &query.group_by) {
            let key = Value::Object(group.clone()).to_string();
            let (_, buckets) = groups
                .entry(key)
                .or_insert_with(|| (group, BTreeMap::new()));
            let b = buckets.entry(start).or_insert_with(|| Bucket {
                time: chrono::DateTime::from_timestamp(start, 0)
                    .map(agentops_core::timestamp::format)
                    .unwrap_or_default(),
                ..Bucket::default()
            });
            add(b, point, contribution);
        }
    }
    groups
        .into_values()
        .map(|(attributes, buckets)| Series {
            attributes,
            points: buckets.into_values().map(finish).collect(),
        })
        .collect()
}

/// An attribute's values: an array's elements (a point tagged `["a", "b"]` counts for `a` and
/// for `b`), or the value itself.
fn values_of(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        one => Box::new(std::iter::once(one)),
    }
}

/// The groups a point belongs to for `group_by`: one, unless an attribute is an array, which
/// puts the point in one group per element (an empty array counts as absent).
fn groups_of(attrs: Option<&Map<String, Value>>, group_by: &[String]) -> Vec<Map<String, Value>> {
    let mut groups = vec![Map::new()];
    for key in group_by {
        let Some(value) = attrs
            .and_then(|a| a.get(key))
            .filter(|v| v.as_array().is_none_or(|items| !items.is_empty()))
        else {
            continue;
        };
        groups = groups
            .into_iter()
            .flat_map(|group| {
                values_of(value).map(move |one| {
                    let mut group = group.clone();
                    group.insert(key.clone(), one.clone());
                    group
                })
            })
            .collect();
    }
    groups
}

/// The attribute keys of `points`, sorted: what a query may filter or group by.
pub fn attribute_keys(points: &[MetricPoint]) -> Vec<String> {
    let keys: std::collections::BTreeSet<&str> = points
        .iter()
        .filter_map(|p| p.attributes.as_object())
        .flat_map(|a| a.keys().map(String::as_str))
        .collect();
    keys.into_iter().map(str::to_owned).collect()
}

fn contribution<'a>(
    point: &'a MetricPoint,
    previous: &mut HashMap<String, &'a MetricPoint>,
) -> Contribution {
    let own = Contribution {
        value: point.value,
        count: point.count,
        sum: point.sum,
    };
    let cumulative = point.temporality.as_deref() == Some("cumulative")
        && !(point.kind == "sum" && point.monotonic == Some(false));
    if !cumulative {
        return own;
    }
    let series = format!("{}\u{0}{}", point.attributes, point.kind);
    let before = previous.insert(series, point);
    let Some(before) = before.filter(|b| b.start_time == point.start_time) else {
        return own;
    };
    let increase = |now: Option<f64>, then: Option<f64>| match (now, then) {
        (Some(n), Some(t)) if n >= t => Some(n - t),
        (n, _) => n,
    };
    let reset = point.count.zip(before.count).is_some_and(|(n, t)| n < t);
    if reset {
        return own;
    }
    Contribution {
        value: increase(point.value, before.value),
        count: point
            .count
            .zip(before.count)
            .map(|(n, t)| n - t)
            .or(point.count),
        sum: increase(point.sum, before.sum),
    }
}

fn add(b: &mut Bucket, point: &MetricPoint, c: Contribution) {
    let min_of = |a: Option<f64>, v: Option<f64>| match (a, v) {
        (Some(a), Some(v)) => Some(a.min(v)),
        (a, v) => a.or(v),
    };
    let max_of = |a: Option<f64>, v: Option<f64>| match (a, v) {
        (Some(a), Some(v)) => Some(a.max(v)),
        (a, v) => a.or(v),
    };
    let plus = |a: Option<f64>, v: Option<f64>| match (a, v) {
        (Some(a), Some(v)) => Some(a + v),
        (a, v) => a.or(v),
    };
    match point.kind.as_str() {
        "gauge" => {
            b.value = plus(b.value, c.value);
            b.gauge_values += u64::from(c.value.is_some());
            b.min = min_of(b.min, point.value);
            b.max = max_of(b.max, point.value);
        }
        "sum"
            if point.monotonic == Some(false)
                && point.temporality.as_deref() == Some("cumulative") =>
        {
            // an up-down counter: its latest value
            b.value = c.value.or(b.value);
        }
        "sum" => b.value = plus(b.value, c.value),
        _ => {
            b.count = match (b.count, c.count) {
                (Some(a), Some(v)) => Some(a.saturating_add(v)),
                (a, v) => a.or(v),
            };
            b.sum = plus(b.sum, c.sum);
            b.min = min_of(b.min, point.min);
            b.max = max_of(b.max, point.max);
        }
    }
}

fn finish(mut b: Bucket) -> Bucket {
    if b.gauge_values > 0 {
        b.value = b.value.map(|total| total / b.gauge_values as f64);
    } else if let (Some(count), Some(sum)) = (b.count, b.sum) {
        b.value = (count > 0).then(|| sum / count as f64);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(kind: &str, temporality: &str, time: &str, value: f64, model: &str) -> MetricPoint {
        MetricPoint {
            name: "m".into(),
            kind: kind.into(),
            temporality: Some(temporality.into()).filter(|t: &String| !t.is_empty()),
            monotonic: Some(true),
            attributes: json!({"model": model}),
            start_time: Some("2026-11-22T00:00:00.000000+00:00".into()),
            time: format!("2026-11-22T{time}.000000+00:00"),
            value: Some(value),
            ..MetricPoint::default()
        }
    }

    fn query(group_by: &[&str]) -> MetricsQuery {
        MetricsQuery {
            bucket_seconds: Some(60),
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            ..MetricsQuery::default()
        }
    }

    #[test]
    fn cumulative_sums_become_increases_per_bucket_and_group() {
        let points = [
            point("sum", "cumulative", "10:00:10", 5.0, "a"),
            point("sum", "cumulative", "10:00:40", 8.0, "a"),
            point("sum", "cumulative", "10:01:10", 20.0, "a"),
            point("sum", "cumulative", "10:00:20", 1.0, "b"),
            // lower than before: a restart, counted from its value again
            point("sum", "cumulative", "10:01:30", 0.5, "b"),
        ];
        let series = aggregate(&points, &query(&["model"]));
        assert_eq!(series.len(), 2);
        let values = |s: &Series| {
            s.points
                .iter()
                .map(|p| p.value.unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(values(&series[0]), [8.0, 12.0]);
        assert_eq!(values(&series[1]), [1.0, 0.5]);
        assert_eq!(series[0].points[1].time, "2026-11-22T10:01:00.000000+00:00");
        // all series together
        let total = aggregate(&points, &query(&[]));
        assert_eq!(values(&total[0]), [9.0, 12.5]);
    }

    #[test]
    fn delta_sums_add_gauges_average_and_filters_select() {
        let points = [
            point("sum", "delta", "10:00:10", 5.0, "a"),
            point("sum", "delta", "10:00:40", 8.0, "b"),
        ];
        let mut q = query(&[]);
        assert_eq!(aggregate(&points, &q)[0].points[0].value, Some(13.0));
        q.filters = vec![("model".into(), "b".into())];
        assert_eq!(aggregate(&points, &q)[0].points[0].value, Some(8.0));
        let gauges = [
            point("gauge", "", "10:00:10", 2.0, "a"),
            point("gauge", "", "10:00:20", 4.0, "a"),
        ];
        let g = &aggregate(&gauges, &query(&[]))[0].points[0];
        assert_eq!((g.value, g.min, g.max), (Some(3.0), Some(2.0), Some(4.0)));
    }

    #[test]
    fn array_attributes_split_into_one_series_per_element_and_filter_by_membership() {
        let mut a = point("sum", "delta", "10:00:10", 5.0, "m1");
        a.attributes = json!({"model": "m1", "session.tags": ["prod", "eu"]});
        let mut b = point("sum", "delta", "10:00:20", 2.0, "m1");
        b.attributes = json!({"model": "m1", "session.tags": ["prod"]});
        let mut c = point("sum", "delta", "10:00:30", 1.0, "m2");
        c.attributes = json!({"model": "m2", "session.tags": []});
        let points = [a, b, c];
        let series = aggregate(&points, &query(&["session.tags"]));
        let by_tag: Vec<(Value, f64)> = series
            .iter()
            .map(|s| (json!(s.attributes), s.points[0].value.unwrap()))
            .collect();
        // the untagged point keeps its own series, without the key
        assert_eq!(
            by_tag,
            [
                (json!({"session.tags": "eu"}), 5.0),
                (json!({"session.tags": "prod"}), 7.0),
                (json!({}), 1.0)
            ]
        );
        let mut q = query(&["model"]);
        q.filters = vec![("session.tags".into(), "prod".into())];
        let series = aggregate(&points, &q);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].points[0].value, Some(7.0));
        assert_eq!(attribute_keys(&points), ["model", "session.tags"]);
    }

    #[test]
    fn histograms_add_counts_and_sums_and_give_the_mean() {
        let mut a = point("histogram", "cumulative", "10:00:10", 0.0, "a");
        (a.value, a.count, a.sum) = (None, Some(2), Some(1.0));
        let mut b = a.clone();
        (b.time, b.count, b.sum) = (
            "2026-11-22T10:00:50.000000+00:00".into(),
            Some(6),
            Some(5.0),
        );
        let h = &aggregate(&[a, b], &query(&[]))[0].points[0];
        assert_eq!(
            (h.count, h.sum, h.value),
            (Some(6), Some(5.0), Some(5.0 / 6.0))
        );
    }

    #[test]
    fn the_query_string_is_checked() {
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let q = parse_metrics_query(&pairs(&[
            ("name", "gen_ai.client.token.usage"),
            ("bucket", "5m"),
            ("group_by", "gen_ai.request.model,gen_ai.token.type"),
            ("attr.service.name", "planner"),
        ]))
        .unwrap();
        assert_eq!(q.bucket_seconds, Some(300));
        assert_eq!(q.group_by.len(), 2);
        assert_eq!(
            q.filters,
            [("service.name".to_string(), "planner".to_string())]
        );
        for bad in [
            ("bucket", "0"),
            ("bucket", "5w"),
            ("name", " "),
            ("colour", "red"),
            ("attr.", "x"),
        ] {
            assert!(parse_metrics_query(&pairs(&[bad])).is_err(), "{bad:?}");
        }
    }
}
