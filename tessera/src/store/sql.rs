//! Helpers shared by the SQL stores (SQLite and PostgreSQL): the same
//! conversions between the store's types and SQL columns.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{SessionId, SessionInfo, StoreError};
use crate::map::Map;
use crate::tagged;
use crate::value::Value;

pub(super) fn db(error: sqlx::Error) -> StoreError {
    match error {
        // What a row holds, not whether the store answers: a column of
        // another type than tessera writes (a file edited by hand, say).
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(error.to_string())
        }
        error => StoreError::unavailable(error),
    }
}

/// A listing of sessions, without those whose row cannot be read (logged):
/// loading counts such a session absent, and one bad row must not hide
/// the others.
pub(super) fn listing(
    infos: impl Iterator<Item = Result<SessionInfo, StoreError>>,
) -> Result<Vec<SessionInfo>, StoreError> {
    let mut listed = Vec::new();
    for info in infos {
        match info {
            Ok(info) => listed.push(info),
            Err(StoreError::Corrupt(reason)) => {
                tracing::error!(%reason, "a stored session is unreadable; left out of the listing");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(listed)
}

pub(super) fn parse_id(text: &str) -> Result<SessionId, StoreError> {
    SessionId::parse(text)
        .ok_or_else(|| StoreError::Corrupt("a stored session id is malformed".to_owned()))
}

pub(super) fn parse_value(key: &str, text: &str) -> Result<Value, StoreError> {
    tagged::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("the value under {key:?}: {error}")))
}

/// A session's data from its value rows (`key`, `value` columns). Rows come
/// in no particular order: collected, then sorted once. A session without
/// values comes back as one row of NULLs.
pub(super) fn data_from_rows<R>(rows: &[R]) -> Result<Map, StoreError>
where
    R: Row,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let key: Option<String> = row.try_get("key").map_err(db)?;
        let text: Option<String> = row.try_get("value").map_err(db)?;
        if let (Some(key), Some(text)) = (key, text) {
            let value = parse_value(&key, &text)?;
            entries.push((key, value));
        }
    }
    Ok(entries.into_iter().collect())
}

pub(super) fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn sql_time(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

pub(super) fn time_from_sql(seconds: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(seconds).map_err(|_| {
        StoreError::Corrupt(format!("negative {column} {seconds} in a stored session"))
    })
}

/// Runs a store operation in a task of its own and waits for it. Dropping
/// the caller's future (a request whose client went away) then cannot stop
/// a transaction between two statements, which would hand its connection
/// back to the pool still inside the transaction and fail every later one.
pub(super) async fn to_completion<T: Send + 'static>(
    operation: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(operation)
        .await
        .map_err(StoreError::unavailable)?
}
