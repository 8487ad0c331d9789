//! The suppression list: numbers that get no messages, with how each came to be there.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError, now_ms};
use crate::domain::{Keyword, Keywords};

/// The settings key of the opt-out and opt-in keywords.
pub const KEYWORDS_KEY: &str = "optout.keywords";

/// The settings key of the list's version, which every change moves on: nodes compare it to
/// know when to read the list again, whatever their clocks say.
const VERSION_KEY: &str = "optout.version";

/// Moves the list's version on, inside the transaction that changes the list.
async fn bump_version_on(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, '1', $2) \
         ON CONFLICT (key) DO UPDATE SET \
         value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT), updated_at = $2",
    )
    .bind(VERSION_KEY)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The error of a message cancelled because its recipient is on the suppression list.
pub const OPTED_OUT: &str = "cancelled: the recipient is on the suppression list";

/// A number on the suppression list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressionRecord {
    /// The number, in E.164.
    pub phone: String,
    /// `sms` (the person sent an opt-out keyword) or `operator` (added through the API).
    pub source: String,
    /// The keyword the person sent.
    pub keyword: Option<String>,
    /// The received text that carried it.
    pub inbox_id: Option<i64>,
    /// Why an operator added it.
    pub note: Option<String>,
    /// Who added it: the caller, or `sms`.
    pub created_by: String,
    /// When, in ms.
    pub created_at: i64,
}

/// What adding a number did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    /// The entry, new or as it was.
    pub record: SuppressionRecord,
    /// Whether it is new.
    pub created: bool,
    /// Pending messages to the number that were cancelled.
    pub cancelled: u64,
}

const COLUMNS: &str = "phone, source, keyword, inbox_id, note, created_by, created_at";

fn from_row(row: &AnyRow) -> Result<SuppressionRecord, sqlx::Error> {
    Ok(SuppressionRecord {
        phone: row.try_get("phone")?,
        source: row.try_get("source")?,
        keyword: row.try_get("keyword")?,
        inbox_id: row.try_get("inbox_id")?,
        note: row.try_get("note")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Puts `record` on the list unless its number is there, and cancels the messages to it that
/// no modem holds yet.
async fn suppress_on(
    conn: &mut AnyConnection,
    record: &SuppressionRecord,
) -> Result<Suppressed, StoreError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO suppressions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (phone) DO NOTHING"
    ))
    .bind(&record.phone)
    .bind(&record.source)
    .bind(&record.keyword)
    .bind(record.inbox_id)
    .bind(&record.note)
    .bind(&record.created_by)
    .bind(record.created_at)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        bump_version_on(conn).await?;
    }
    let cancelled = cancel_pending_to(conn, &record.phone).await?;
    let stored = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM suppressions WHERE phone = $1"
    ))
    .bind(&record.phone)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Suppressed {
        record: from_row(&stored)?,
        created: inserted.rows_affected() == 1,
        cancelled,
    })
}

/// The same conditional update a single cancel makes, for every pending message to `phone`.
async fn cancel_pending_to(conn: &mut AnyConnection, phone: &str) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'cancelled', error = $1, updated_at = $2 \
         WHERE to_number = $3 AND status IN ('pending', 'queued')",
    )
    .bind(OPTED_OUT)
    .bind(now_ms())
    .bind(phone)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Reads the keywords inside the caller's transaction.
async fn keywords_on(conn: &mut AnyConnection) -> Result<Keywords, StoreError> {
    let stored: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(KEYWORDS_KEY)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(stored
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default())
}

/// Acts on a received text that is an opt-out or opt-in keyword, in the transaction that
/// stores it, so that the text and what it asked for are kept together or not at all. An
/// opt-in takes off only what a keyword put on: a number an operator added stays.
pub(crate) async fn apply_keyword_on(
    conn: &mut AnyConnection,
    number: &str,
    text: &str,
    inbox_id: i64,
    at: i64,
) -> Result<Option<Keyword>, StoreError> {
    // Alphanumeric senders (the operator's own notices) cannot opt out of anything.
    if !number.starts_with('+') {
        return Ok(None);
    }
    let keywords = keywords_on(conn).await?;
    let Some(keyword) = keywords.classify(text) else {
        return Ok(None);
    };
    match keyword {
        Keyword::OptOut => {
            let record = SuppressionRecord {
                phone: number.to_owned(),
                source: "sms".into(),
                keyword: Some(text.trim().to_owned()),
                inbox_id: Some(inbox_id),
                note: None,
                created_by: "sms".into(),
                created_at: at,
            };
            let done = suppress_on(conn, &record).await?;
            tracing::info!(
                inbox.id = inbox_id,
                cancelled = done.cancelled,
                "opt-out received"
            );
        }
        Keyword::OptIn => {
            let removed =
                sqlx::query("DELETE FROM suppressions WHERE phone = $1 AND source = 'sms'")
                    .bind(number)
                    .execute(&mut *conn)
                    .await?;
            if removed.rows_affected() > 0 {
                bump_version_on(conn).await?;
            }
            tracing::info!(inbox.id = inbox_id, "opt-in received");
        }
    }
    Ok(Some(keyword))
}

impl Store {
    /// The opt-out and opt-in keywords (the defaults until an admin sets them).
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn keywords(&self) -> Result<Keywords, StoreError> {
        let mut conn = self.pool().acquire().await?;
        keywords_on(&mut conn).await
    }

    /// Replaces the keywords.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn set_keywords(&self, keywords: &Keywords) -> Result<(), StoreError> {
        let json = serde_json::to_string(keywords).unwrap_or_default();
        let _gate = self.write_gate().await;
        self.set_setting(KEYWORDS_KEY, &json).await
    }

    /// Puts a number on the list (an operator's doing) and cancels its pending messages.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn suppress(
        &self,
        phone: &str,
        note: Option<&str>,
        created_by: &str,
    ) -> Result<Suppressed, StoreError> {
        let record = SuppressionRecord {
            phone: phone.to_owned(),
            source: "operator".into(),
            keyword: None,
            inbox_id: None,
            note: note.map(str::to_owned),
            created_by: created_by.to_owned(),
            created_at: now_ms(),
        };
        let mut tx = self.begin_write().await?;
        let done = suppress_on(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Takes a number off the list; `false` when it was not on it.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn unsuppress(&self, phone: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM suppressions WHERE phone = $1")
            .bind(phone)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            bump_version_on(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The entry of one number.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn suppression(&self, phone: &str) -> Result<Option<SuppressionRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM suppressions WHERE phone = $1"
        ))
        .bind(phone)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Entries newest first, after the cursor `(created_at, phone)`, at most `limit`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn list_suppressions(
        &self,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<SuppressionRecord>, StoreError> {
        let rows = match after {
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM suppressions \
                     ORDER BY created_at DESC, phone DESC LIMIT {limit}"
                ))
                .fetch_all(self.pool())
                .await?
            }
            Some((at, phone)) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM suppressions \
                     WHERE created_at < $1 OR (created_at = $1 AND phone < $2) \
                     ORDER BY created_at DESC, phone DESC LIMIT {limit}"
                ))
                .bind(at)
                .bind(phone)
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Every number on the list.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn suppressed_numbers(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT phone FROM suppressions")
            .fetch_all(self.pool())
            .await?)
    }

    /// The list's version: it moves on with every change.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn suppressions_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .setting(VERSION_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Cancels pending messages to numbers on the list: those accepted by a node that had not
    /// heard of the entry yet. Returns how many.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn cancel_suppressed(&self) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE messages SET status = 'cancelled', error = $1, updated_at = $2 \
             WHERE status IN ('pending', 'queued') \
             AND to_number IN (SELECT phone FROM suppressions)",
        )
        .bind(OPTED_OUT)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
