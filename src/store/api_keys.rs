//! API keys: secrets that machines present instead of a password. Only a SHA-256 hash of the
//! secret is stored; the secret itself is shown once, when the key is made.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, new_id, now_ms};
use crate::domain::ModuleSet;

/// A stored API key.
#[derive(Clone, Debug)]
pub struct ApiKeyRecord {
    /// Identifier.
    pub id: String,
    /// What the key is for, e.g. `erp-production`.
    pub name: String,
    /// The first characters of the secret, so a person can tell keys apart.
    pub prefix: String,
    /// The modules the key may use.
    pub scopes: ModuleSet,
    /// When the key stops working, in ms; `None` for never.
    pub expires_at: Option<i64>,
    /// When the key was revoked, in ms.
    pub revoked_at: Option<i64>,
    /// Who made it.
    pub created_by: String,
    /// When it was made, in ms.
    pub created_at: i64,
}

impl ApiKeyRecord {
    /// Whether the key may be used at `now` (ms).
    pub fn is_usable_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }
}

/// What is needed to store a key.
#[derive(Debug)]
pub struct NewApiKey {
    /// What the key is for.
    pub name: String,
    /// The first characters of the secret.
    pub prefix: String,
    /// The hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The modules it may use.
    pub scopes: ModuleSet,
    /// When it stops working, in ms.
    pub expires_at: Option<i64>,
    /// Who made it.
    pub created_by: String,
}

const COLUMNS: &str = "id, name, prefix, scopes, expires_at, revoked_at, created_by, created_at";

fn from_row(row: &AnyRow) -> Result<ApiKeyRecord, sqlx::Error> {
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: ModuleSet::from_stored(&row.try_get::<String, _>("scopes")?),
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Stores a new key.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    #[tracing::instrument(skip_all, fields(api_key.name = %key.name))]
    pub async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        let record = ApiKeyRecord {
            id: new_id(),
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes,
            expires_at: key.expires_at,
            revoked_at: None,
            created_by: key.created_by,
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, expires_at, \
             revoked_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(&record.prefix)
        .bind(&key.secret_hash)
        .bind(record.scopes.to_stored())
        .bind(record.expires_at)
        .bind(&record.created_by)
        .bind(record.created_at)
        .execute(self.pool())
        .await?;
        Ok(record)
    }

    /// The key whose secret hashes to `secret_hash`, revoked or not.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn api_key_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"
        ))
        .bind(secret_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The key with this id.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Every key, newest first.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes a key (a second revocation keeps the first time) and returns it, or `None` when
    /// it does not exist.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    #[tracing::instrument(skip(self), fields(api_key.id = %id))]
    pub async fn revoke_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        self.api_key(id).await
    }
}
