//! Events and webhooks: events stored with the change they tell of, fanned out to one delivery
//! per webhook that wants them, and each delivery's attempts.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError, new_id, now_ms};

/// A webhook's ping: delivered to that webhook only, never fanned out.
pub const PING: &str = "webhook.ping";

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// Its place in the order of events.
    pub seq: i64,
    /// Its stable id, `evt_…`.
    pub id: String,
    /// Its type, e.g. `message.sent`.
    pub kind: String,
    /// When it happened, in ms.
    pub at: i64,
    /// Its JSON payload, as text.
    pub payload: String,
}

/// A stored webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// Identifier.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The event types it wants; `*` for all.
    pub events: Vec<String>,
    /// The key of its signatures.
    pub secret: String,
    /// Whether it gets events.
    pub enabled: bool,
    /// Who made it.
    pub created_by: String,
    /// When it was made, in ms.
    pub created_at: i64,
    /// When it last changed, in ms.
    pub updated_at: i64,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"[redacted]")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl WebhookRecord {
    /// Whether it wants events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.enabled && kind != PING && self.events.iter().any(|e| e == "*" || e == kind)
    }
}

/// A delivery due to be attempted, with what it carries.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    /// The delivery.
    pub id: i64,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it was made, in ms.
    pub created_at: i64,
    /// The event.
    pub event: EventRecord,
}

/// A delivery as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Identifier.
    pub id: i64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_kind: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due, in ms.
    pub next_at: i64,
    /// When it was made, in ms.
    pub created_at: i64,
    /// When a 2xx came, in ms.
    pub delivered_at: Option<i64>,
    /// Each attempt, oldest first.
    pub tries: Vec<AttemptRecord>,
}

/// One attempt of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Its number, from 1.
    pub attempt: i64,
    /// When it was made, in ms.
    pub at: i64,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i64>,
    /// What went wrong, if it did.
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub excerpt: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// What an attempt leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// A 2xx: done.
    Delivered,
    /// Try again at this time (ms).
    RetryAt(i64),
    /// Given up: dead-lettered.
    Dead,
}

/// The outcome of one attempt, to be recorded.
#[derive(Clone, Debug)]
pub struct Attempted {
    /// The delivery.
    pub delivery_id: i64,
    /// Its webhook.
    pub webhook_id: String,
    /// The node that claimed it: an outcome counts only while the claim is this node's.
    pub node: String,
    /// The attempt, as recorded.
    pub attempt: AttemptRecord,
    /// What follows.
    pub next: Next,
}

pub(super) fn event_from(row: &AnyRow) -> Result<EventRecord, sqlx::Error> {
    Ok(EventRecord {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        at: row.try_get("at")?,
        payload: row.try_get("payload")?,
    })
}

fn webhook_from(row: &AnyRow) -> Result<WebhookRecord, sqlx::Error> {
    let events: String = row.try_get("events")?;
    Ok(WebhookRecord {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        secret: row.try_get("secret")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A new event's stable id.
fn event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

/// Stores an event inside the caller's transaction, so that it exists exactly when the change
/// it tells of does.
///
/// # Errors
///
/// Fails when the database does.
pub(crate) async fn event_on(
    conn: &mut AnyConnection,
    kind: &str,
    payload: &serde_json::Value,
    at: i64,
) -> Result<String, StoreError> {
    let id = event_id();
    sqlx::query("INSERT INTO events (id, kind, at, payload) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(kind)
        .bind(at)
        .bind(payload.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

const WEBHOOK_COLUMNS: &str =
    "id, url, events, secret, enabled, created_by, created_at, updated_at";

impl Store {
    /// Stores an event on its own.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn record_event(
        &self,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<String, StoreError> {
        let mut tx = self.begin_write().await?;
        let id = event_on(&mut tx, kind, payload, now_ms()).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Events after `seq`, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT seq, id, kind, at, payload FROM events WHERE seq > $1 \
             ORDER BY seq LIMIT {limit}"
        ))
        .bind(seq)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(event_from).collect::<Result<_, _>>()?)
    }

    /// The number of the newest event, or 0 when there is none.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(self.pool())
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// The number of the newest event recorded before `at` (ms), or 0: where to resume after
    /// an event that is no longer stored.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn event_seq_before(&self, at: i64) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE at < $1")
            .bind(at)
            .fetch_one(self.pool())
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// The sequence number of the event with this id.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn event_seq(&self, id: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT seq FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Makes one delivery for each enabled webhook that wants each event not yet fanned out,
    /// at most `limit` events, and marks them fanned out in the same transaction. Returns how
    /// many events it looked at.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing changed.
    pub async fn fan_out(&self, limit: u32) -> Result<usize, StoreError> {
        // A look without the write lock first: an idle gateway asks often, and finds nothing.
        let any: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM events WHERE fanned = 0 LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        if any.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        // Of two nodes fanning out at once on PostgreSQL, each takes other events.
        let lock = match self.backend() {
            super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "SELECT seq, id, kind, at, payload FROM events WHERE fanned = 0 \
             ORDER BY seq LIMIT {limit} {lock}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let events: Vec<EventRecord> = rows.iter().map(event_from).collect::<Result<_, _>>()?;
        if events.is_empty() {
            return Ok(0);
        }
        let hooks = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled = 1"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let hooks: Vec<WebhookRecord> = hooks.iter().map(webhook_from).collect::<Result<_, _>>()?;
        let now = now_ms();
        let pairs: Vec<(&str, i64)> = events
            .iter()
            .flat_map(|e| {
                hooks
                    .iter()
                    .filter(|h| h.wants(&e.kind))
                    .map(move |h| (h.id.as_str(), e.seq))
            })
            .collect();
        for chunk in pairs.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO webhook_deliveries (webhook_id, event_seq, status, attempts, \
                 next_at, created_at) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let n = i * 2;
                sql.push_str(&format!(
                    "(${}, ${}, 'pending', 0, {now}, {now})",
                    n + 1,
                    n + 2
                ));
            }
            let mut q = sqlx::query(&sql);
            for (hook, seq) in chunk {
                q = q.bind(*hook).bind(*seq);
            }
            q.execute(&mut *tx).await?;
        }
        let list: Vec<String> = events.iter().map(|e| e.seq.to_string()).collect();
        sqlx::query(&format!(
            "UPDATE events SET fanned = 1 WHERE seq IN ({})",
            list.join(",")
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(events.len())
    }

    /// Claims up to `limit` due deliveries of one webhook for `lease_ms` on behalf of `node`: no
    /// other claim gets them until the lease ends, an outcome is recorded, or `node` starts
    /// again (see [`Store::release_claims`]).
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn claim_deliveries(
        &self,
        webhook_id: &str,
        limit: u32,
        lease_ms: i64,
        node: &str,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let now = now_ms();
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending' \
             AND next_at <= $2 ORDER BY next_at, id LIMIT {limit}"
        ))
        .bind(webhook_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let gate = self.write_gate().await;
        // Only rows still due are taken: of two nodes claiming at once, each row goes to one.
        let claimed: Vec<i64> = sqlx::query_scalar(&format!(
            "UPDATE webhook_deliveries SET next_at = $1, claimed_by = $3 \
             WHERE id IN ({}) AND status = 'pending' AND next_at <= $2 RETURNING id",
            list.join(",")
        ))
        .bind(now + lease_ms)
        .bind(now)
        .bind(node)
        .fetch_all(self.pool())
        .await?;
        drop(gate);
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = claimed.iter().map(i64::to_string).collect();
        let rows = sqlx::query(&format!(
            "SELECT d.id AS delivery_id, d.attempts, d.created_at AS delivery_created, \
             e.seq, e.id, e.kind, e.at, e.payload \
             FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.id IN ({}) ORDER BY d.id",
            list.join(",")
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueDelivery {
                    id: r.try_get("delivery_id")?,
                    attempts: r.try_get("attempts")?,
                    created_at: r.try_get("delivery_created")?,
                    event: event_from(r)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Records attempts and their consequences, all in one transaction. An attempt counts only
    /// while its node still holds the delivery's claim: one whose lease ended and was taken by
    /// another node, or that was replayed or given up meanwhile, is dropped. Returns how many
    /// counted.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then none is recorded, and the leases bring the
    /// deliveries back.
    pub async fn record_attempts(&self, attempts: &[Attempted]) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut counted = 0;
        for a in attempts {
            let (status, next_at, delivered_at) = match a.next {
                Next::Delivered => ("delivered", a.attempt.at, Some(a.attempt.at)),
                Next::RetryAt(at) => ("pending", at, None),
                Next::Dead => ("dead", a.attempt.at, None),
            };
            let done = sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_at = $3, \
                 delivered_at = $4, last_status = $5, last_error = $6, claimed_by = NULL \
                 WHERE id = $7 AND webhook_id = $8 AND status = 'pending' AND claimed_by = $9",
            )
            .bind(status)
            .bind(a.attempt.attempt)
            .bind(next_at)
            .bind(delivered_at)
            .bind(a.attempt.status_code)
            .bind(&a.attempt.error)
            .bind(a.delivery_id)
            .bind(&a.webhook_id)
            .bind(&a.node)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                continue;
            }
            counted += 1;
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, \
                 excerpt, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (delivery_id, attempt) DO NOTHING",
            )
            .bind(a.delivery_id)
            .bind(a.attempt.attempt)
            .bind(a.attempt.at)
            .bind(a.attempt.status_code)
            .bind(&a.attempt.error)
            .bind(&a.attempt.excerpt)
            .bind(a.attempt.duration_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(counted)
    }

    /// Stores a new webhook.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[String],
        secret: &str,
        enabled: bool,
        created_by: &str,
    ) -> Result<WebhookRecord, StoreError> {
        let now = now_ms();
        let record = WebhookRecord {
            id: new_id(),
            url: url.to_owned(),
            events: events.to_vec(),
            secret: secret.to_owned(),
            enabled,
            created_by: created_by.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let _gate = self.write_gate().await;
        sqlx::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&record.id)
        .bind(&record.url)
        .bind(serde_json::to_string(&record.events).unwrap_or_default())
        .bind(&record.secret)
        .bind(i64::from(record.enabled))
        .bind(&record.created_by)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(record)
    }

    /// Every webhook, oldest first.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(webhook_from).collect::<Result<_, _>>()?)
    }

    /// The webhook with this id.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(webhook_from).transpose()?)
    }

    /// Replaces a webhook's fields.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn update_webhook(&self, record: &WebhookRecord) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE webhooks SET url = $1, events = $2, secret = $3, enabled = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(&record.url)
        .bind(serde_json::to_string(&record.events).unwrap_or_default())
        .bind(&record.secret)
        .bind(i64::from(record.enabled))
        .bind(now_ms())
        .bind(&record.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a webhook and its deliveries.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE webhook_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// A ping: an event for this webhook alone, and its delivery.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn ping_webhook(&self, webhook_id: &str) -> Result<String, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let payload = serde_json::json!({"webhook_id": webhook_id});
        let id = event_on(&mut tx, PING, &payload, now).await?;
        sqlx::query("UPDATE events SET fanned = 1 WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event_seq, status, attempts, next_at, \
             created_at) SELECT $1, seq, 'pending', 0, $2, $2 FROM events WHERE id = $3",
        )
        .bind(webhook_id)
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A webhook's deliveries, newest first, with their attempts.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn deliveries(
        &self,
        webhook_id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT d.id, d.status, d.attempts, d.next_at, d.created_at, d.delivered_at, \
             e.id AS event_id, e.kind FROM webhook_deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE d.webhook_id = $1 \
             ORDER BY d.id DESC LIMIT {limit}"
        ))
        .bind(webhook_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let tries = sqlx::query(
                "SELECT attempt, at, status_code, error, excerpt, duration_ms \
                 FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
            )
            .bind(id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|a| {
                Ok(AttemptRecord {
                    attempt: a.try_get("attempt")?,
                    at: a.try_get("at")?,
                    status_code: a.try_get("status_code")?,
                    error: a.try_get("error")?,
                    excerpt: a.try_get("excerpt")?,
                    duration_ms: a.try_get("duration_ms")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            out.push(DeliveryRecord {
                id,
                event_id: r.try_get("event_id")?,
                event_kind: r.try_get("kind")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                next_at: r.try_get("next_at")?,
                created_at: r.try_get("created_at")?,
                delivered_at: r.try_get("delivered_at")?,
                tries,
            });
        }
        Ok(out)
    }

    /// Makes the deliveries and mails `node` had claimed when it stopped due again now: their
    /// POSTs and SMTP conversations died with it. Run at start-up, before anything is claimed.
    /// Returns how many deliveries and mails.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn release_claims(&self, node: &str) -> Result<(u64, u64), StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let deliveries = sqlx::query(
            "UPDATE webhook_deliveries SET next_at = $1, claimed_by = NULL \
             WHERE status = 'pending' AND claimed_by = $2 AND next_at > $1",
        )
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mails = sqlx::query(
            "UPDATE mails SET next_at = $1, claimed_by = NULL \
             WHERE status = 'pending' AND claimed_by = $2 AND next_at > $1",
        )
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((deliveries, mails))
    }

    /// Gives up every pending delivery made before `before` (ms): it becomes `dead`. Returns
    /// how many did.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn expire_deliveries(&self, before: i64) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'dead', \
             last_error = 'the receiver did not take it for a day' \
             WHERE status = 'pending' AND created_at < $1 AND claimed_by IS NULL",
        )
        .bind(before)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes what is done with and older than `before` (ms): delivered and dead webhook
    /// deliveries with their attempts, sent and failed mails, and events that every webhook and
    /// mail rule has had and nothing refers to any more. In rounds of at most `batch` rows, so
    /// that SQLite's write lock is never held long; returns how many events went.
    ///
    /// # Errors
    ///
    /// Fails when the database does; what was deleted by then stays deleted.
    pub async fn prune_notifications(&self, before: i64, batch: u32) -> Result<u64, StoreError> {
        const ROUNDS: [&str; 4] = [
            "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM \
             webhook_deliveries WHERE status IN ('delivered', 'dead') AND created_at < $1 \
             ORDER BY id LIMIT {batch})",
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE status IN ('delivered', 'dead') AND created_at < $1 ORDER BY id LIMIT {batch})",
            "DELETE FROM mails WHERE id IN (SELECT id FROM mails \
             WHERE status IN ('sent', 'failed') AND created_at < $1 ORDER BY id LIMIT {batch})",
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events e WHERE e.at < $1 \
             AND e.fanned = 1 AND e.mailed = 1 \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = e.seq) \
             AND NOT EXISTS (SELECT 1 FROM mails m WHERE m.event_seq = e.seq) \
             ORDER BY seq LIMIT {batch})",
        ];
        let mut events = 0;
        for (i, round) in ROUNDS.iter().enumerate() {
            let sql = round.replace("{batch}", &batch.to_string());
            loop {
                let _gate = self.write_gate().await;
                let gone = sqlx::query(&sql)
                    .bind(before)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                if i == ROUNDS.len() - 1 {
                    events += gone;
                }
                if gone < u64::from(batch) {
                    break;
                }
            }
        }
        Ok(events)
    }

    /// Whether the webhook has this delivery.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn has_delivery(
        &self,
        webhook_id: &str,
        delivery_id: i64,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2",
        )
        .bind(delivery_id)
        .bind(webhook_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    /// Makes a delivery due again now, whatever became of it; its attempts are kept. `false`
    /// when there is no such delivery, or it is being posted right now (it is not sent twice at
    /// once).
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn replay_delivery(
        &self,
        webhook_id: &str,
        delivery_id: i64,
    ) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_at = $1, \
             created_at = $1 WHERE id = $2 AND webhook_id = $3 AND claimed_by IS NULL",
        )
        .bind(now_ms())
        .bind(delivery_id)
        .bind(webhook_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
