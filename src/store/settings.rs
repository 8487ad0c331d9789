//! Settings kept in the database, shared by every gateway node that uses it.

use super::{Store, StoreError, now_ms};

impl Store {
    /// The stored value of `key`, if any.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(value,)| value))
    }

    /// Stores `value` under `key` unless a value is already there, and returns the value that is
    /// stored afterwards. Two nodes racing to generate the same secret both end up with the
    /// winner's.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(self.setting(key).await?.unwrap_or_else(|| value.to_owned()))
    }

    /// Sets a setting, replacing its value.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a setting; `false` when there was none.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
