//! Message templates, as an operator saved them. The text is checked before it is stored (see
//! [`crate::domain::Template`]); the store keeps it as written.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, new_id, now_ms, unique_violation};

/// A stored template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateRecord {
    /// Identifier.
    pub id: String,
    /// What operators call it, unique.
    pub name: String,
    /// The text with its `<token>` fields.
    pub body: String,
    /// The most characters a message made from it may have, signature included.
    pub max_length: i64,
    /// Who made it.
    pub created_by: String,
    /// When it was made, in ms.
    pub created_at: i64,
    /// When it was last changed, in ms.
    pub updated_at: i64,
}

/// A template's fields that can change.
#[derive(Clone, Debug, Default)]
pub struct TemplateChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new text.
    pub body: Option<String>,
    /// A new maximum length.
    pub max_length: Option<i64>,
}

const COLUMNS: &str = "id, name, body, max_length, created_by, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<TemplateRecord, sqlx::Error> {
    Ok(TemplateRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        body: row.try_get("body")?,
        max_length: row.try_get("max_length")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Stores a new template.
    ///
    /// # Errors
    ///
    /// [`StoreError::Duplicate`] when the name is taken; otherwise when the database fails.
    pub async fn create_template(
        &self,
        name: &str,
        body: &str,
        max_length: i64,
        created_by: &str,
    ) -> Result<TemplateRecord, StoreError> {
        let now = now_ms();
        let record = TemplateRecord {
            id: new_id(),
            name: name.to_owned(),
            body: body.to_owned(),
            max_length,
            created_by: created_by.to_owned(),
            created_at: now,
            updated_at: now,
        };
        sqlx::query(&format!(
            "INSERT INTO templates ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&record.id)
        .bind(&record.name)
        .bind(&record.body)
        .bind(record.max_length)
        .bind(&record.created_by)
        .bind(record.created_at)
        .bind(record.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| unique_violation(e, "name"))?;
        Ok(record)
    }

    /// Every template, by name.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn templates(&self) -> Result<Vec<TemplateRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM templates ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// One template.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn template(&self, id: &str) -> Result<Option<TemplateRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM templates WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Changes a template; `None` when there is none with this id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Duplicate`] when the new name is taken; otherwise when the database fails.
    pub async fn update_template(
        &self,
        id: &str,
        changes: TemplateChanges,
    ) -> Result<Option<TemplateRecord>, StoreError> {
        let Some(mut record) = self.template(id).await? else {
            return Ok(None);
        };
        record.name = changes.name.unwrap_or(record.name);
        record.body = changes.body.unwrap_or(record.body);
        record.max_length = changes.max_length.unwrap_or(record.max_length);
        record.updated_at = now_ms();
        let done = sqlx::query(
            "UPDATE templates SET name = $1, body = $2, max_length = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(&record.name)
        .bind(&record.body)
        .bind(record.max_length)
        .bind(record.updated_at)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(|e| unique_violation(e, "name"))?;
        Ok((done.rows_affected() == 1).then_some(record))
    }

    /// Deletes a template; `false` when there was none with this id.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn delete_template(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM templates WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
