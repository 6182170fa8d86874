//! Decoding PostgreSQL rows: through the engine-independent decoders of
//! `crate::store::decode` (session summaries, events, log records, metric points), and the
//! list's sort keys.

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::store::payload::UnpackError;
use crate::store::{SessionSortKey, SortValue, StoreError};

/// A value at `index` of `row` that is not of the type asked for (the schema's types are
/// strict, so only a schema this server did not make has them).
fn wrong_type(row: &Row, index: usize, e: &tokio_postgres::Error) -> StoreError {
    let column = row
        .columns()
        .get(index)
        .map_or_else(|| format!("#{index}"), |c| c.name().to_owned());
    StoreError::Corrupt(format!("column {column}: {e}"))
}

/// The value at `index`, as `T`.
fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(|e| wrong_type(row, index, &e))
}

/// A PostgreSQL row, read by the engine-independent decoders.
impl crate::store::decode::Columns for Row {
    type Error = StoreError;

    fn opt_str(&self, index: usize) -> Result<Option<&str>, StoreError> {
        get(self, index)
    }

    fn str(&self, index: usize) -> Result<&str, StoreError> {
        get(self, index)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        get(self, index)
    }

    fn int(&self, index: usize) -> Result<i64, StoreError> {
        get(self, index)
    }

    fn opt_real(&self, index: usize) -> Result<Option<f64>, StoreError> {
        get(self, index)
    }

    fn real(&self, index: usize) -> Result<f64, StoreError> {
        get(self, index)
    }

    fn opt_bool(&self, index: usize) -> Result<Option<bool>, StoreError> {
        get(self, index)
    }

    fn opt_blob(&self, index: usize) -> Result<Option<&[u8]>, StoreError> {
        get(self, index)
    }

    fn unpack_failed(&self, index: usize, error: UnpackError) -> StoreError {
        let column = self.columns().get(index).map_or("packed", |c| c.name());
        StoreError::Corrupt(format!("column {column}: {error}"))
    }
}

/// The sort key of a list row at `index`, of the type of `sort`'s expression, as a
/// pagination cursor carries it.
pub(super) fn sort_value(
    row: &Row,
    index: usize,
    sort: SessionSortKey,
) -> Result<SortValue, StoreError> {
    Ok(match sort {
        SessionSortKey::StartTime => SortValue::Text(get(row, index)?),
        SessionSortKey::Cost => SortValue::Real(get(row, index)?),
        SessionSortKey::Events | SessionSortKey::Duration => SortValue::Int(get(row, index)?),
    })
}
