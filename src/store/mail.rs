//! Mail: the rules that route events to addresses, and the queue of mails they made, with each
//! mail's attempts.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{EventRecord, Store, StoreError, new_id, now_ms};

/// A stored mail rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailRuleRecord {
    /// Identifier.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The event types it mails; `*` for all.
    pub events: Vec<String>,
    /// Where it mails them.
    pub recipients: Vec<String>,
    /// Whether it is in force.
    pub enabled: bool,
    /// Who made it.
    pub created_by: String,
    /// When, in ms.
    pub created_at: i64,
    /// When it last changed, in ms.
    pub updated_at: i64,
}

impl MailRuleRecord {
    /// Whether it mails events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.enabled && kind != super::PING && self.events.iter().any(|e| e == "*" || e == kind)
    }
}

/// A mail to be queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMail {
    /// The event it tells of.
    pub event_seq: Option<i64>,
    /// The rule that made it.
    pub rule_id: Option<String>,
    /// The event's type.
    pub kind: String,
    /// The addresses.
    pub recipients: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
    /// The load whose report it carries.
    pub load_id: Option<String>,
}

/// A queued mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailRecord {
    /// Identifier.
    pub id: i64,
    /// The event's type.
    pub kind: String,
    /// The rule that made it.
    pub rule_id: Option<String>,
    /// The addresses.
    pub recipients: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
    /// The load whose report it carries.
    pub load_id: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due, in ms.
    pub next_at: i64,
    /// When it was queued, in ms.
    pub created_at: i64,
    /// When its first failure was, in ms.
    pub first_failed_at: Option<i64>,
    /// When the server took it, in ms.
    pub sent_at: Option<i64>,
    /// What went wrong last, in words.
    pub last_error: Option<String>,
}

/// What an attempt at a mail led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailOutcome {
    /// The server took it.
    Sent,
    /// It failed; try again at this time (ms).
    RetryAt(i64),
    /// It failed for good.
    Failed,
}

const RULE_COLUMNS: &str =
    "id, name, events, recipients, enabled, created_by, created_at, updated_at";

const MAIL_COLUMNS: &str = "id, kind, rule_id, recipients, subject, text_body, html_body, \
    load_id, status, attempts, next_at, created_at, first_failed_at, sent_at, last_error";

fn list_of(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn rule_from(row: &AnyRow) -> Result<MailRuleRecord, sqlx::Error> {
    Ok(MailRuleRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        events: list_of(&row.try_get::<String, _>("events")?),
        recipients: list_of(&row.try_get::<String, _>("recipients")?),
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn mail_from(row: &AnyRow) -> Result<MailRecord, sqlx::Error> {
    Ok(MailRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        rule_id: row.try_get("rule_id")?,
        recipients: list_of(&row.try_get::<String, _>("recipients")?),
        subject: row.try_get("subject")?,
        text: row.try_get("text_body")?,
        html: row.try_get("html_body")?,
        load_id: row.try_get("load_id")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_at: row.try_get("next_at")?,
        created_at: row.try_get("created_at")?,
        first_failed_at: row.try_get("first_failed_at")?,
        sent_at: row.try_get("sent_at")?,
        last_error: row.try_get("last_error")?,
    })
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Stores a new mail rule.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn create_mail_rule(
        &self,
        name: &str,
        events: &[String],
        recipients: &[String],
        enabled: bool,
        created_by: &str,
    ) -> Result<MailRuleRecord, StoreError> {
        let now = now_ms();
        let rule = MailRuleRecord {
            id: new_id(),
            name: name.to_owned(),
            events: events.to_vec(),
            recipients: recipients.to_vec(),
            enabled,
            created_by: created_by.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let _gate = self.write_gate().await;
        sqlx::query(&format!(
            "INSERT INTO mail_rules ({RULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&rule.id)
        .bind(&rule.name)
        .bind(json_list(&rule.events))
        .bind(json_list(&rule.recipients))
        .bind(i64::from(rule.enabled))
        .bind(&rule.created_by)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(rule)
    }

    /// Every mail rule, oldest first.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mail_rules(&self) -> Result<Vec<MailRuleRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RULE_COLUMNS} FROM mail_rules ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(rule_from).collect::<Result<_, _>>()?)
    }

    /// One mail rule.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mail_rule(&self, id: &str) -> Result<Option<MailRuleRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RULE_COLUMNS} FROM mail_rules WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(rule_from).transpose()?)
    }

    /// Replaces a rule's fields; `false` when there is no such rule.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn update_mail_rule(&self, rule: &MailRuleRecord) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE mail_rules SET name = $1, events = $2, recipients = $3, enabled = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(&rule.name)
        .bind(json_list(&rule.events))
        .bind(json_list(&rule.recipients))
        .bind(i64::from(rule.enabled))
        .bind(now_ms())
        .bind(&rule.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a rule; the mails it made stay.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn delete_mail_rule(&self, id: &str) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query("DELETE FROM mail_rules WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Events not yet looked at by the mail rules, oldest first.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn unmailed_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT seq, id, kind, at, payload FROM events WHERE mailed = 0 \
             ORDER BY seq LIMIT {limit}"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(super::events::event_from)
            .collect::<Result<_, _>>()?)
    }

    /// Marks `events` mailed and queues the mails made of them, in one transaction. Of two
    /// nodes doing the same events at once, one queues them and the other's mails are dropped.
    /// Returns how many mails were queued.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing changed.
    pub async fn queue_mails(&self, events: &[i64], mails: &[NewMail]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let list: Vec<String> = events.iter().map(i64::to_string).collect();
        let mut tx = self.begin_write().await?;
        let won: Vec<i64> = sqlx::query_scalar(&format!(
            "UPDATE events SET mailed = 1 WHERE seq IN ({}) AND mailed = 0 RETURNING seq",
            list.join(",")
        ))
        .fetch_all(&mut *tx)
        .await?;
        let now = now_ms();
        let mut queued = 0;
        for mail in mails {
            if mail.event_seq.is_some_and(|seq| !won.contains(&seq)) {
                continue;
            }
            let done = sqlx::query(
                "INSERT INTO mails (event_seq, rule_id, kind, recipients, subject, text_body, \
                 html_body, load_id, status, attempts, next_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9) \
                 ON CONFLICT (event_seq, rule_id) DO NOTHING",
            )
            .bind(mail.event_seq)
            .bind(&mail.rule_id)
            .bind(&mail.kind)
            .bind(json_list(&mail.recipients))
            .bind(&mail.subject)
            .bind(&mail.text)
            .bind(&mail.html)
            .bind(&mail.load_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            queued += done.rows_affected();
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` due mails for `lease_ms` on behalf of `node`: no other claim gets
    /// them until the lease ends, an outcome is recorded, or `node` starts again.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn claim_mails(
        &self,
        limit: u32,
        lease_ms: i64,
        node: &str,
    ) -> Result<Vec<MailRecord>, StoreError> {
        let now = now_ms();
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM mails WHERE status = 'pending' AND next_at <= $1 \
             ORDER BY next_at, id LIMIT {limit}"
        ))
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let _gate = self.write_gate().await;
        let rows = sqlx::query(&format!(
            "UPDATE mails SET next_at = $1, claimed_by = $3 \
             WHERE id IN ({}) AND status = 'pending' AND next_at <= $2 RETURNING {MAIL_COLUMNS}",
            list.join(",")
        ))
        .bind(now + lease_ms)
        .bind(now)
        .bind(node)
        .fetch_all(self.pool())
        .await?;
        let mut mails = rows.iter().map(mail_from).collect::<Result<Vec<_>, _>>()?;
        mails.sort_by_key(|m| m.id);
        Ok(mails)
    }

    /// Records an attempt at a mail by `node`: sent, to be retried, or failed for good. A mail
    /// that carries a load's report marks the report sent. `false` when the claim was no
    /// longer this node's, and nothing was recorded.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn record_mail(
        &self,
        mail: &MailRecord,
        outcome: &MailOutcome,
        error: Option<&str>,
        node: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let (status, next_at, sent_at) = match outcome {
            MailOutcome::Sent => ("sent", now, Some(now)),
            MailOutcome::RetryAt(at) => ("pending", *at, None),
            MailOutcome::Failed => ("failed", now, None),
        };
        let first_failed = match outcome {
            MailOutcome::Sent => mail.first_failed_at,
            _ => Some(mail.first_failed_at.unwrap_or(now)),
        };
        // Only while this node still holds the claim: a late outcome after the lease went to
        // another node is dropped.
        let done = sqlx::query(
            "UPDATE mails SET status = $1, attempts = attempts + 1, next_at = $2, sent_at = $3, \
             first_failed_at = $4, last_error = $5, claimed_by = NULL \
             WHERE id = $6 AND status = 'pending' AND claimed_by = $7",
        )
        .bind(status)
        .bind(next_at)
        .bind(sent_at)
        .bind(first_failed)
        .bind(error)
        .bind(mail.id)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.commit().await?;
            return Ok(false);
        }
        if let (MailOutcome::Sent, Some(load)) = (outcome, &mail.load_id) {
            sqlx::query("UPDATE loads SET report_sent_at = $1 WHERE id = $2")
                .bind(now)
                .bind(load)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Mails, newest first, optionally of one status, after the cursor `id`, at most `limit`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn list_mails(
        &self,
        status: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MailRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MAIL_COLUMNS} FROM mails \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT {limit}"
        ))
        .bind(status)
        .bind(after)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(mail_from).collect::<Result<_, _>>()?)
    }

    /// One mail.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mail(&self, id: i64) -> Result<Option<MailRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {MAIL_COLUMNS} FROM mails WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(mail_from).transpose()?)
    }

    /// Makes every mail waiting for a retry due now (new settings may be what it waited for);
    /// returns how many.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mails_due_now(&self) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE mails SET next_at = $1 WHERE status = 'pending' AND attempts > 0 \
             AND next_at > $1 AND claimed_by IS NULL",
        )
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Makes a failed mail due again now, with a new day of retries; `false` when there is no
    /// such mail, it was sent, or it is being sent right now.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn retry_mail(&self, id: i64) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE mails SET status = 'pending', next_at = $1, first_failed_at = NULL \
             WHERE id = $2 AND status <> 'sent' AND claimed_by IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
