//! The inbox: received texts (reassembled when they came in parts) and calls, each linked to the
//! last message the gateway sent to that number.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};
use crate::auth::sha256_hex;

/// A received text or one part of it, as read from a modem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedText {
    /// The modem it came in on.
    pub modem_id: String,
    /// The sender: E.164 when it is a number, otherwise as the network gave it.
    pub number: String,
    /// The text (of this part).
    pub body: String,
    /// The service centre's time stamp, in milliseconds.
    pub network_time: Option<i64>,
    /// Reference, total and part number, when the text is one part of a long one.
    pub concat: Option<(u16, u8, u8)>,
}

/// What storing a received text did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A new inbox item with this id.
    New(i64),
    /// The same text was already stored; nothing changed.
    Duplicate,
    /// A part of a long text was kept; the rest has not come yet.
    Partial,
}

/// An inbox item, with the last message sent to its number before it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxRecord {
    /// Identifier.
    pub id: i64,
    /// `sms` or `call`.
    pub kind: String,
    /// The modem it came in on.
    pub modem_id: String,
    /// The sender or caller.
    pub number: String,
    /// The text; `None` for a call.
    pub body: Option<String>,
    /// How many parts the text came in.
    pub parts: i64,
    /// `false` when parts never came and the text was stored with gaps.
    pub complete: bool,
    /// The network's time stamp.
    pub network_time: Option<i64>,
    /// When the gateway stored it.
    pub received_at: i64,
    /// The last message sent to this number, if any.
    pub last_message: Option<LastMessage>,
}

/// The message we last sent to a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastMessage {
    /// Its id.
    pub id: i64,
    /// Its text.
    pub body: String,
    /// Its state.
    pub status: String,
    /// When it went out.
    pub sent_at: Option<i64>,
}

/// Filters for listing the inbox; newest first.
#[derive(Clone, Debug, Default)]
pub struct InboxFilter {
    /// `sms` or `call`.
    pub kind: Option<String>,
    /// Only from this number.
    pub number: Option<String>,
    /// Received at or after.
    pub from: Option<i64>,
    /// Received before.
    pub until: Option<i64>,
    /// Continue after this (received_at, id).
    pub after: Option<(i64, i64)>,
    /// Page size.
    pub limit: i64,
}

/// What a gap left by a part that never came reads as.
const GAP: &str = "[…]";

const COLUMNS: &str = "i.id, i.kind, i.modem_id, i.number, i.body, i.parts, i.complete, \
    i.network_time, i.received_at, m.id AS last_id, m.body AS last_body, \
    m.status AS last_status, m.sent_at AS last_sent_at";

fn from_row(row: &AnyRow) -> Result<InboxRecord, StoreError> {
    let last_id: Option<i64> = row.try_get("last_id")?;
    Ok(InboxRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        modem_id: row.try_get("modem_id")?,
        number: row.try_get("number")?,
        body: row.try_get("body")?,
        parts: row.try_get("parts")?,
        complete: row.try_get::<i64, _>("complete")? != 0,
        network_time: row.try_get("network_time")?,
        received_at: row.try_get("received_at")?,
        last_message: match last_id {
            Some(id) => Some(LastMessage {
                id,
                body: row.try_get("last_body")?,
                status: row.try_get("last_status")?,
                sent_at: row.try_get("last_sent_at")?,
            }),
            None => None,
        },
    })
}

/// A new inbox row.
struct NewItem<'a> {
    kind: &'a str,
    modem_id: &'a str,
    number: &'a str,
    body: Option<&'a str>,
    parts: i64,
    complete: bool,
    network_time: Option<i64>,
    dedupe_key: String,
}

impl Store {
    /// Stores a received text, or keeps a part of a long one until all its parts are there.
    /// The same text (or part) stored twice is kept once.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn store_text(&self, text: &ReceivedText) -> Result<Received, StoreError> {
        let Some((reference, total, part)) = text.concat.filter(|c| c.1 > 1) else {
            let key = format!(
                "sms|{}|{}|{}",
                text.number,
                text.network_time.unwrap_or_default(),
                sha256_hex(&text.body)
            );
            let item = NewItem {
                kind: "sms",
                modem_id: &text.modem_id,
                number: &text.number,
                body: Some(&text.body),
                parts: 1,
                complete: true,
                network_time: text.network_time,
                dedupe_key: key,
            };
            return Ok(match self.insert_item(&item).await? {
                Some(id) => Received::New(id),
                None => Received::Duplicate,
            });
        };

        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO inbox_fragments \
             (modem_id, number, reference, total, part, body, network_time, stored_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (modem_id, number, reference, total, part) DO NOTHING",
        )
        .bind(&text.modem_id)
        .bind(&text.number)
        .bind(i64::from(reference))
        .bind(i64::from(total))
        .bind(i64::from(part))
        .bind(&text.body)
        .bind(text.network_time)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let fragments: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT part, body, network_time FROM inbox_fragments \
             WHERE modem_id = $1 AND number = $2 AND reference = $3 AND total = $4 \
             ORDER BY part",
        )
        .bind(&text.modem_id)
        .bind(&text.number)
        .bind(i64::from(reference))
        .bind(i64::from(total))
        .fetch_all(&mut *tx)
        .await?;
        if fragments.len() < usize::from(total) {
            tx.commit().await?;
            return Ok(Received::Partial);
        }
        let whole = Fragments {
            modem_id: text.modem_id.clone(),
            number: text.number.clone(),
            reference: i64::from(reference),
            total: i64::from(total),
            parts: fragments,
        };
        let stored = self.assemble(&mut tx, &whole).await?;
        tx.commit().await?;
        Ok(match stored {
            Some(id) => Received::New(id),
            None => Received::Duplicate,
        })
    }

    /// Stores an incoming call.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn store_call(&self, modem_id: &str, number: &str) -> Result<i64, StoreError> {
        let at = now_ms();
        let item = NewItem {
            kind: "call",
            modem_id,
            number,
            body: None,
            parts: 0,
            complete: true,
            network_time: None,
            dedupe_key: format!("call|{modem_id}|{number}|{at}|{}", super::new_id()),
        };
        match self.insert_item(&item).await? {
            Some(id) => Ok(id),
            None => Err(StoreError::Duplicate { field: "call" }),
        }
    }

    /// Stores the long texts whose missing parts have not come for `max_age_ms`, with a gap
    /// mark where each missing part belongs, so that nothing received is held back forever.
    /// Returns the ids of the items stored.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn flush_stale_fragments(&self, max_age_ms: i64) -> Result<Vec<i64>, StoreError> {
        let groups: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT modem_id, number, reference, total FROM inbox_fragments \
             GROUP BY modem_id, number, reference, total HAVING MAX(stored_at) < $1",
        )
        .bind(now_ms() - max_age_ms)
        .fetch_all(self.pool())
        .await?;
        let mut stored = Vec::new();
        for (modem_id, number, reference, total) in groups {
            let mut tx = self.begin_write().await?;
            let parts: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
                "SELECT part, body, network_time FROM inbox_fragments \
                 WHERE modem_id = $1 AND number = $2 AND reference = $3 AND total = $4 \
                 ORDER BY part",
            )
            .bind(&modem_id)
            .bind(&number)
            .bind(reference)
            .bind(total)
            .fetch_all(&mut *tx)
            .await?;
            let group = Fragments {
                modem_id,
                number,
                reference,
                total,
                parts,
            };
            if let Some(id) = self.assemble(&mut tx, &group).await? {
                stored.push(id);
            }
            tx.commit().await?;
        }
        Ok(stored)
    }

    /// Joins a long text's parts (marking gaps), stores it and forgets the parts; `None` when
    /// the same text was already stored.
    async fn assemble(
        &self,
        tx: &mut super::WriteTx,
        group: &Fragments,
    ) -> Result<Option<i64>, StoreError> {
        let mut body = String::new();
        for number in 1..=group.total {
            match group.parts.iter().find(|(part, ..)| *part == number) {
                Some((_, text, _)) => body.push_str(text),
                None => body.push_str(GAP),
            }
        }
        let complete = group.parts.len() as i64 == group.total;
        let network_time = group.parts.iter().find_map(|(_, _, at)| *at);
        let key = format!(
            "sms|{}|{}|{}|{}",
            group.number,
            group.reference,
            group.total,
            sha256_hex(&body)
        );
        let item = NewItem {
            kind: "sms",
            modem_id: &group.modem_id,
            number: &group.number,
            body: Some(&body),
            parts: group.total,
            complete,
            network_time,
            dedupe_key: key,
        };
        let id = insert_item(tx, &item).await?;
        sqlx::query(
            "DELETE FROM inbox_fragments \
             WHERE modem_id = $1 AND number = $2 AND reference = $3 AND total = $4",
        )
        .bind(&group.modem_id)
        .bind(&group.number)
        .bind(group.reference)
        .bind(group.total)
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }

    async fn insert_item(&self, item: &NewItem<'_>) -> Result<Option<i64>, StoreError> {
        // The item and its event are stored together.
        let mut tx = self.begin_write().await?;
        let id = insert_item(&mut tx, item).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// One inbox item.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn inbox_item(&self, id: i64) -> Result<Option<InboxRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM inbox i LEFT JOIN messages m ON m.id = i.last_message_id \
             WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Inbox items matching `filter`, newest first.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn list_inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut texts = Vec::new();
        let mut ints = Vec::new();
        // Text binds come first, then integers; the numbering follows that order.
        if let Some(kind) = &filter.kind {
            texts.push(kind.clone());
            conditions.push(format!("i.kind = ${}", texts.len()));
        }
        if let Some(number) = &filter.number {
            texts.push(number.clone());
            conditions.push(format!("i.number = ${}", texts.len()));
        }
        let mut int = |condition: &str, value: i64, ints: &mut Vec<i64>| {
            ints.push(value);
            conditions.push(condition.replace('?', &format!("${}", texts.len() + ints.len())));
        };
        if let Some(from) = filter.from {
            int("i.received_at >= ?", from, &mut ints);
        }
        if let Some(until) = filter.until {
            int("i.received_at < ?", until, &mut ints);
        }
        if let Some((at, id)) = filter.after {
            let a = texts.len() + ints.len() + 1;
            conditions.push(format!(
                "(i.received_at < ${a} OR (i.received_at = ${a} AND i.id < ${}))",
                a + 1
            ));
            ints.push(at);
            ints.push(id);
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM inbox i LEFT JOIN messages m ON m.id = i.last_message_id \
             {} ORDER BY i.received_at DESC, i.id DESC LIMIT {}",
            if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            },
            filter.limit
        );
        let mut query = sqlx::query(&sql);
        for text in texts {
            query = query.bind(text);
        }
        for int in ints {
            query = query.bind(int);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(from_row).collect()
    }
}

/// The parts of one long text received so far.
struct Fragments {
    modem_id: String,
    number: String,
    reference: i64,
    total: i64,
    parts: Vec<(i64, String, Option<i64>)>,
}

/// Inserts an inbox row linked to the last message sent to its number; `None` when a row with
/// the same dedupe key exists.
async fn insert_item(
    conn: &mut sqlx::AnyConnection,
    item: &NewItem<'_>,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "INSERT INTO inbox (kind, modem_id, number, body, parts, complete, network_time, \
         received_at, dedupe_key, last_message_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
           (SELECT id FROM messages WHERE to_number = $3 AND sent_at IS NOT NULL \
            ORDER BY sent_at DESC, id DESC LIMIT 1)) \
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, received_at, last_message_id",
    )
    .bind(item.kind)
    .bind(item.modem_id)
    .bind(item.number)
    .bind(item.body)
    .bind(item.parts)
    .bind(i64::from(item.complete))
    .bind(item.network_time)
    .bind(now_ms())
    .bind(&item.dedupe_key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: i64 = row.try_get("id")?;
    let at: i64 = row.try_get("received_at")?;
    let kind = if item.kind == "call" {
        "call.received"
    } else {
        "sms.received"
    };
    let keyword = match item.body {
        Some(body) if item.kind == "sms" && item.complete => {
            super::suppressions::apply_keyword_on(conn, item.number, body, id, at).await?
        }
        _ => None,
    };
    let payload = serde_json::json!({
        "inbox_id": id,
        "modem_id": item.modem_id,
        "from": item.number,
        "text": item.body,
        "complete": item.complete,
        "last_message_id": row.try_get::<Option<i64>, _>("last_message_id")?,
        "keyword": keyword.map(|k| k.as_str()),
    });
    super::event_on(conn, kind, &payload, at).await?;
    Ok(Some(id))
}
