//! Users: people who sign in with a password and the modules each may use.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, new_id, now_ms, unique_violation};
use crate::domain::{Module, ModuleSet};

/// A stored user. The password hash never leaves the store except for verification.
#[derive(Clone, Debug)]
pub struct UserRecord {
    /// Identifier.
    pub id: String,
    /// The name used to sign in, unique.
    pub username: String,
    /// The person's name.
    pub name: String,
    /// The argon2id hash in PHC form.
    pub password_hash: String,
    /// Whether the user may sign in and use the API.
    pub enabled: bool,
    /// The modules the user may use.
    pub modules: ModuleSet,
    /// When the user was created, in ms.
    pub created_at: i64,
    /// When the user last changed, in ms.
    pub updated_at: i64,
}

/// What is needed to create a user.
#[derive(Debug)]
pub struct NewUser {
    /// The name used to sign in.
    pub username: String,
    /// The person's name.
    pub name: String,
    /// The argon2id hash of the password.
    pub password_hash: String,
    /// Whether the user may sign in.
    pub enabled: bool,
    /// The modules the user may use.
    pub modules: ModuleSet,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    /// A new display name.
    pub name: Option<String>,
    /// A new password hash.
    pub password_hash: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// A new set of modules.
    pub modules: Option<ModuleSet>,
}

const COLUMNS: &str = "id, username, name, password_hash, enabled, modules, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        modules: ModuleSet::from_stored(&row.try_get::<String, _>("modules")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates a user.
    ///
    /// # Errors
    ///
    /// [`StoreError::Duplicate`] when the username is taken.
    #[tracing::instrument(skip_all, fields(user.username = %user.username))]
    pub async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        let now = now_ms();
        let record = UserRecord {
            id: new_id(),
            username: user.username,
            name: user.name,
            password_hash: user.password_hash,
            enabled: user.enabled,
            modules: user.modules,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(&format!(
            "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&record.id)
        .bind(&record.username)
        .bind(&record.name)
        .bind(&record.password_hash)
        .bind(i64::from(record.enabled))
        .bind(record.modules.to_stored())
        .bind(record.created_at)
        .bind(record.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| unique_violation(e, "username"))?;
        Ok(record)
    }

    /// The user with this id.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The user with this username.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Every user, by username.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// How many users exist.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(count)
    }

    /// How many enabled users have the admin module, other than `except_id`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn count_other_admins(&self, except_id: &str) -> Result<usize, StoreError> {
        let users = self.users().await?;
        Ok(users
            .iter()
            .filter(|u| u.id != except_id && u.enabled && u.modules.contains(Module::Admin))
            .count())
    }

    /// Applies `changes` to a user and returns it as it is now, or `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    #[tracing::instrument(skip(self, changes), fields(user.id = %id))]
    pub async fn update_user(
        &self,
        id: &str,
        changes: UserChanges,
    ) -> Result<Option<UserRecord>, StoreError> {
        let Some(mut user) = self.user(id).await? else {
            return Ok(None);
        };
        if let Some(name) = changes.name {
            user.name = name;
        }
        if let Some(hash) = changes.password_hash {
            user.password_hash = hash;
        }
        if let Some(enabled) = changes.enabled {
            user.enabled = enabled;
        }
        if let Some(modules) = changes.modules {
            user.modules = modules;
        }
        user.updated_at = now_ms();

        sqlx::query(
            "UPDATE users SET name = $1, password_hash = $2, enabled = $3, modules = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(i64::from(user.enabled))
        .bind(user.modules.to_stored())
        .bind(user.updated_at)
        .bind(&user.id)
        .execute(self.pool())
        .await?;
        Ok(Some(user))
    }

    /// Deletes a user; `false` when there was none.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
