//! Balance checks of prepaid lines: each one with the operator's answer, what was read out of
//! it, and the events it caused.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};

/// A balance check to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBalanceCheck {
    /// The modem whose line was checked.
    pub modem_id: String,
    /// The USSD code asked.
    pub code: String,
    /// `api` (asked by a person) or `daily`.
    pub cause: String,
    /// The operator's answer, decoded, when one came.
    pub answer: Option<String>,
    /// The amount read out of it, as a decimal number.
    pub amount: Option<String>,
    /// The currency read out of it.
    pub currency: Option<String>,
    /// The expiry date read out of it, `yyyy-mm-dd`.
    pub expires: Option<String>,
    /// Why no answer came.
    pub error: Option<String>,
}

/// A recorded balance check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceCheckRecord {
    /// Identifier.
    pub id: i64,
    /// When, in ms.
    pub at: i64,
    /// What was checked and found.
    pub check: NewBalanceCheck,
}

const COLUMNS: &str = "id, modem_id, at, code, cause, answer, amount, currency, expires, error";

fn from_row(row: &AnyRow) -> Result<BalanceCheckRecord, sqlx::Error> {
    Ok(BalanceCheckRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        check: NewBalanceCheck {
            modem_id: row.try_get("modem_id")?,
            code: row.try_get("code")?,
            cause: row.try_get("cause")?,
            answer: row.try_get("answer")?,
            amount: row.try_get("amount")?,
            currency: row.try_get("currency")?,
            expires: row.try_get("expires")?,
            error: row.try_get("error")?,
        },
    })
}

impl Store {
    /// Records a check and its events (`balance.checked`, and `balance.low` when given) in one
    /// transaction.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing is recorded.
    pub async fn record_balance_check(
        &self,
        check: &NewBalanceCheck,
        events: &[(&str, serde_json::Value)],
    ) -> Result<BalanceCheckRecord, StoreError> {
        let at = now_ms();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO balance_checks (modem_id, at, code, cause, answer, amount, currency, \
             expires, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
        ))
        .bind(&check.modem_id)
        .bind(at)
        .bind(&check.code)
        .bind(&check.cause)
        .bind(&check.answer)
        .bind(&check.amount)
        .bind(&check.currency)
        .bind(&check.expires)
        .bind(&check.error)
        .fetch_one(&mut *tx)
        .await?;
        let record = from_row(&row)?;
        for (kind, payload) in events {
            let mut payload = payload.clone();
            payload["check_id"] = serde_json::json!(record.id);
            super::event_on(&mut tx, kind, &payload, at).await?;
        }
        tx.commit().await?;
        Ok(record)
    }

    /// A modem's checks, newest first, at most `limit`, before the check `before` if given.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn balance_checks(
        &self,
        modem_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<BalanceCheckRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM balance_checks WHERE modem_id = $1 \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT {limit}"
        ))
        .bind(modem_id)
        .bind(before)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// A modem's last check that read an amount.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn last_balance(
        &self,
        modem_id: &str,
    ) -> Result<Option<BalanceCheckRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM balance_checks WHERE modem_id = $1 AND amount IS NOT NULL \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(modem_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }
}
