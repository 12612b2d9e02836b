//! Helpers shared by the SQL stores (SQLite and PostgreSQL): the same
//! conversions between the store's types and SQL columns.

use super::{SessionId, StoreError};
use crate::tagged;
use crate::value::Value;

pub(super) fn db(error: sqlx::Error) -> StoreError {
    StoreError::unavailable(error)
}

pub(super) fn parse_id(text: &str) -> Result<SessionId, StoreError> {
    SessionId::parse(text)
        .ok_or_else(|| StoreError::Corrupt("a stored session id is malformed".to_owned()))
}

pub(super) fn parse_value(key: &str, text: &str) -> Result<Value, StoreError> {
    tagged::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("the value under {key:?}: {error}")))
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
