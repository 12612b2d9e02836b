//! Helpers shared by the SQL stores (SQLite and PostgreSQL): the same
//! conversions between the store's types and SQL columns.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{Reason, SessionId, SessionInfo, StoreError};
use crate::map::Map;
use crate::tagged;
use crate::value::Value;

pub(super) fn db(error: sqlx::Error) -> StoreError {
    match error {
        // What a row holds, not whether the store answers: a column of
        // another type than tessera writes (a file edited by hand, say).
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::corrupt(Reason::caused_by(column_of_another_type(&error), error))
        }
        error => StoreError::unavailable(error),
    }
}

/// sqlx's "error occurred while decoding column "created_at": mismatched
/// types; Rust type `i64` (as SQL type `INTEGER`) is not compatible with SQL
/// type `TEXT`" as the operator can act on it, without Rust's types: which
/// column holds what type instead of which. Any other decoding error as
/// sqlx words it.
fn column_of_another_type(error: &sqlx::Error) -> String {
    let text = error.to_string();
    let sqlx::Error::ColumnDecode { index, source } = error else {
        return text;
    };
    let source = source.to_string();
    let expected = source
        .split_once("(as SQL type `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(expected, _)| expected);
    let found = source
        .split_once("is not compatible with SQL type `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(found, _)| found);
    match (expected, found) {
        (Some(expected), Some(found)) => format!(
            "column {index} holds a value of type {found} where the store keeps {expected} \
             (written by another program, or by hand?)"
        ),
        _ => text,
    }
}

/// One page of a listing being read: up to `limit` sessions after an id,
/// in id order. A row that cannot be read is left out (loading counts such
/// a session absent, and one bad row must not hide the others) and another
/// is read in its place, so that only the last page is short. The store
/// reads rows while [`wanted`](Self::wanted) asks for some.
pub(super) struct ListingPage {
    listed: Vec<SessionInfo>,
    limit: usize,
    /// The raw id of the last row read.
    cursor: String,
    exhausted: bool,
    unreadable: usize,
    /// Unreadable rows after the last one listed: the caller's next page
    /// starts after that one, so it reads them again; they are reported by
    /// the page that lists nothing after them (the last one, for a caller
    /// that pages until an empty page), not by both.
    unreadable_after_listed: usize,
    reason: String,
}

impl ListingPage {
    pub(super) fn new(after: Option<&SessionId>, limit: usize) -> Self {
        Self {
            listed: Vec::with_capacity(limit.min(1024)),
            limit,
            // Every id sorts after "", so paging from the start needs no
            // second query shape.
            cursor: after.map_or_else(String::new, |id| id.as_str().to_owned()),
            exhausted: false,
            unreadable: 0,
            unreadable_after_listed: 0,
            reason: String::new(),
        }
    }

    /// The raw id to read after and how many rows, while the page wants more.
    pub(super) fn wanted(&self) -> Option<(String, usize)> {
        let wanted = self.limit - self.listed.len();
        (wanted > 0 && !self.exhausted).then(|| (self.cursor.clone(), wanted))
    }

    /// Takes the rows read for [`wanted`](Self::wanted).
    pub(super) fn take<R>(
        &mut self,
        rows: &[R],
        wanted: usize,
        info: impl Fn(&R) -> Result<SessionInfo, StoreError>,
    ) -> Result<(), StoreError>
    where
        R: Row,
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        &'static str: ColumnIndex<R>,
    {
        for row in rows {
            match info(row) {
                Ok(info) => {
                    self.listed.push(info);
                    self.unreadable += std::mem::take(&mut self.unreadable_after_listed);
                }
                Err(StoreError::Corrupt(reason)) => {
                    self.unreadable_after_listed += 1;
                    self.reason = reason.to_string();
                }
                Err(error) => return Err(error),
            }
        }
        match rows.last() {
            Some(last) if rows.len() == wanted => self.cursor = last.try_get("id").map_err(db)?,
            _ => self.exhausted = true,
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Vec<SessionInfo> {
        if self.listed.is_empty() {
            self.unreadable += self.unreadable_after_listed;
        }
        if self.unreadable > 0 {
            tracing::error!(
                unreadable = self.unreadable,
                last_reason = %self.reason,
                "stored sessions that cannot be read were left out of a listing"
            );
        }
        self.listed
    }
}

pub(super) fn parse_id(text: &str) -> Result<SessionId, StoreError> {
    SessionId::parse(text).ok_or_else(|| StoreError::corrupt("a stored session id is malformed"))
}

pub(super) fn parse_value(key: &str, text: &str) -> Result<Value, StoreError> {
    tagged::from_str(text).map_err(|error| {
        StoreError::corrupt(Reason::caused_by(
            format!("the value under {key:?}: {error}"),
            error,
        ))
    })
}

/// A session's data from its value rows (`key`, `value` columns). Rows come
/// in no particular order: collected, then sorted once. A session without
/// values comes back as one row of NULLs. `db` says what a value that
/// cannot be read as text is: a row's (SQLite's columns take any type) or
/// the column's (PostgreSQL's are typed).
pub(super) fn data_from_rows<R>(
    rows: &[R],
    db: impl Fn(sqlx::Error) -> StoreError,
) -> Result<Map, StoreError>
where
    R: Row,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let key: Option<String> = row.try_get("key").map_err(&db)?;
        let text: Option<String> = row.try_get("value").map_err(&db)?;
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
        StoreError::corrupt(format!("negative {column} {seconds} in a stored session"))
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
