//! Messages: reading, listing with filters and cursors, and cancelling. Inserts go through the
//! group-commit [`MessageWriter`](super::MessageWriter).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};
use crate::domain::{Channel, Encoding, MessageStatus};

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    /// Identifier, growing with each stored message.
    pub id: i64,
    /// The client's reference, unique.
    pub client_ref: String,
    /// Recipient in E.164.
    pub to: String,
    /// The text as it will be sent.
    pub text: String,
    /// Where the message is on its way.
    pub status: MessageStatus,
    /// The alphabet it travels in.
    pub encoding: Encoding,
    /// Segments on the air.
    pub segments: i64,
    /// The load it came from.
    pub load_id: Option<String>,
    /// How it entered the gateway.
    pub channel: Channel,
    /// Who submitted it: a username or `key:<name>`.
    pub created_by: String,
    /// The `send_at` the client asked for, if any, in ms.
    pub send_at: Option<i64>,
    /// When it was stored, in ms.
    pub created_at: i64,
    /// When it may go out, in ms.
    pub scheduled_for: i64,
    /// When it last changed, in ms.
    pub updated_at: i64,
    /// When the network accepted it, in ms.
    pub sent_at: Option<i64>,
    /// When a status report confirmed it, in ms.
    pub delivered_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// How many times a modem tried it.
    pub attempts: i64,
}

/// A message ready to be stored: every field already checked.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The client's reference, or one the server made.
    pub client_ref: String,
    /// Recipient in E.164.
    pub to: String,
    /// The text.
    pub text: String,
    /// Its encoding.
    pub encoding: Encoding,
    /// Its segments.
    pub segments: i64,
    /// The load it belongs to.
    pub load_id: Option<String>,
    /// How it entered.
    pub channel: Channel,
    /// Who submitted it.
    pub created_by: String,
    /// The time the client asked for, in ms.
    pub send_at: Option<i64>,
}

impl NewMessage {
    /// Whether a stored message carries the same request: the same recipient, text and time.
    /// A repeated `ref` with the same content is a retry; with other content, a mistake.
    pub fn same_content_as(&self, stored: &MessageRecord) -> bool {
        self.to == stored.to && self.text == stored.text && self.send_at == stored.send_at
    }
}

/// Which messages to list. Times are in ms; `from` is inclusive, `to` exclusive.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    /// Only messages in this state.
    pub status: Option<MessageStatus>,
    /// Only messages to this number (E.164).
    pub to: Option<String>,
    /// Only messages of this load.
    pub load_id: Option<String>,
    /// Created at or after.
    pub from: i64,
    /// Created before.
    pub until: i64,
    /// Continue after this `(created_at, id)`.
    pub after: Option<(i64, i64)>,
    /// At most this many.
    pub limit: i64,
}

pub(super) const COLUMNS: &str = "id, client_ref, to_number, body, status, encoding, segments, \
    load_id, channel, created_by, send_at, created_at, scheduled_for, updated_at, sent_at, \
    delivered_at, error, attempts";

pub(super) fn from_row(row: &AnyRow) -> Result<MessageRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let encoding: String = row.try_get("encoding")?;
    let channel: String = row.try_get("channel")?;
    Ok(MessageRecord {
        id: row.try_get("id")?,
        client_ref: row.try_get("client_ref")?,
        to: row.try_get("to_number")?,
        text: row.try_get("body")?,
        status: MessageStatus::parse(&status).ok_or(StoreError::Corrupt {
            column: "status",
            value: status,
        })?,
        encoding: Encoding::parse(&encoding).ok_or(StoreError::Corrupt {
            column: "encoding",
            value: encoding,
        })?,
        segments: row.try_get("segments")?,
        load_id: row.try_get("load_id")?,
        channel: Channel::parse(&channel).ok_or(StoreError::Corrupt {
            column: "channel",
            value: channel,
        })?,
        created_by: row.try_get("created_by")?,
        send_at: row.try_get("send_at")?,
        created_at: row.try_get("created_at")?,
        scheduled_for: row.try_get("scheduled_for")?,
        updated_at: row.try_get("updated_at")?,
        sent_at: row.try_get("sent_at")?,
        delivered_at: row.try_get("delivered_at")?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
    })
}

/// A value bound to a listing query.
enum Bind {
    Int(i64),
    Text(String),
}

/// Outcome of a cancellation.
#[derive(Debug)]
pub enum Cancel {
    /// Cancelled now, or it already was.
    Cancelled(MessageRecord),
    /// Too late: it has been handed to a modem or has ended otherwise.
    TooLate(MessageRecord),
    /// No such message.
    NotFound,
}

impl Store {
    /// The message with this id.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn message(&self, id: i64) -> Result<Option<MessageRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM messages WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The message with this client reference.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn message_by_ref(
        &self,
        client_ref: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE client_ref = $1"
        ))
        .bind(client_ref)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Messages matching `filter`, newest first.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    #[tracing::instrument(skip_all)]
    pub async fn list_messages(
        &self,
        filter: &MessageFilter,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let mut conditions = vec!["created_at >= $1".to_owned(), "created_at < $2".to_owned()];
        let mut binds = vec![Bind::Int(filter.from), Bind::Int(filter.until)];
        let mut push = |column: &str, bind: Bind| {
            binds.push(bind);
            conditions.push(format!("{column} = ${}", binds.len()));
        };
        if let Some(status) = filter.status {
            push("status", Bind::Text(status.as_str().to_owned()));
        }
        if let Some(to) = &filter.to {
            push("to_number", Bind::Text(to.clone()));
        }
        if let Some(load_id) = &filter.load_id {
            push("load_id", Bind::Text(load_id.clone()));
        }
        if let Some((created_at, id)) = &filter.after {
            // Written out rather than as a row-value comparison so that both planners see a
            // plain range on the index's leading time column.
            let n = binds.len();
            conditions.push(format!(
                "(created_at < ${a} OR (created_at = ${a} AND id < ${b}))",
                a = n + 1,
                b = n + 2
            ));
            binds.push(Bind::Int(*created_at));
            binds.push(Bind::Int(*id));
        }

        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
            conditions.join(" AND "),
            filter.limit
        );
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Cancels a message that has not been handed to a modem.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    #[tracing::instrument(skip(self), fields(message.id = %id))]
    pub async fn cancel_message(&self, id: i64) -> Result<Cancel, StoreError> {
        // One conditional update decides: a modem claiming the message at the same moment
        // either sees it cancelled or makes this update match nothing.
        sqlx::query(
            "UPDATE messages SET status = 'cancelled', updated_at = $1 \
             WHERE id = $2 AND status IN ('pending', 'queued')",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;

        Ok(match self.message(id).await? {
            None => Cancel::NotFound,
            Some(m) if m.status == MessageStatus::Cancelled => Cancel::Cancelled(m),
            Some(m) => Cancel::TooLate(m),
        })
    }

    /// How many messages are in each state.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn count_messages_by_status(&self) -> Result<Vec<(MessageStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status")
                .fetch_all(self.pool())
                .await?;
        Ok(MessageStatus::ALL
            .into_iter()
            .map(|status| {
                let count = rows
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| *n);
                (status, count)
            })
            .collect())
    }
}
