//! What the dispatcher records: claiming due messages for a modem, each segment handed to the
//! modem and confirmed, and the end of a message's way (sent, retried later, failed, or held for
//! review). Claims are conditional statements, so a message cancelled through the API in the
//! meantime is never picked up, and two gateway nodes never claim the same message. The steps
//! of a claimed message reach the database from the modem's journal, in batches (see
//! [`Progress`]).

use sqlx::AnyConnection;

use super::messages::{COLUMNS, from_row};
use super::{Backend, MessageRecord, Store, StoreError, now_ms};

/// One step of a message's way through a modem, as the dispatcher journals it (see
/// `dispatch::journal`) and then applies it to the database, in order. Applying the same step
/// twice changes nothing the second time, so a journal replayed after a crash may overlap with
/// what had already been applied. Times are when the step happened, in ms since the epoch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Progress {
    /// A segment was handed to the modem: from now on it may be on the air.
    Handed {
        /// The message.
        message: i64,
        /// The segment's number, from 1.
        part: i64,
        /// How many segments the message has.
        total: i64,
        /// The number it goes to.
        recipient: String,
        /// When.
        at: i64,
    },
    /// The network accepted a handed segment; the message is `sent` when it was the last.
    Accepted {
        /// The message.
        message: i64,
        /// The segment's number.
        part: i64,
        /// The message reference `+CMGS` answered.
        mr: u8,
        /// Whether it was the message's last segment.
        last: bool,
        /// When.
        at: i64,
    },
    /// Every segment of a resumed message had gone out before: it is `sent`.
    Sent {
        /// The message.
        message: i64,
        /// When.
        at: i64,
    },
    /// The modem refused a handed segment: it did not go out.
    Refused {
        /// The message.
        message: i64,
        /// The segment's number.
        part: i64,
    },
    /// The message will not go out (or, with [`REVIEW_NOTE`], may have and is not resent).
    Failed {
        /// The message.
        message: i64,
        /// Why, readably.
        reason: String,
        /// When.
        at: i64,
    },
    /// The attempt met a passing error: the message is due again at `due`.
    Retry {
        /// The message.
        message: i64,
        /// When it is due again.
        due: i64,
        /// The error it met.
        reason: String,
        /// When.
        at: i64,
    },
}

async fn claim_on(
    conn: &mut AnyConnection,
    backend: Backend,
    modem_id: &str,
    limit: i64,
) -> Result<Vec<MessageRecord>, StoreError> {
    let now = now_ms();
    // PostgreSQL nodes skip rows another node is claiming; SQLite has one writer anyway.
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // Numbers on the suppression list are passed over: a message accepted by a node that had
    // not yet heard of the entry waits there until the list's sweep cancels it.
    // The pick is materialised: evaluated once. As a plain `IN (subquery)`, PostgreSQL may run
    // it again for each row it scans, and with SKIP LOCKED each run picks other rows.
    let sql = format!(
        "WITH picked (pick) AS MATERIALIZED (SELECT id FROM messages \
         WHERE status = 'pending' AND scheduled_for <= $2 \
         AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.phone = messages.to_number) \
         ORDER BY scheduled_for, id LIMIT $3{lock}) \
         UPDATE messages SET status = 'sending', modem_id = $1, updated_at = $2 \
         FROM picked WHERE id = pick AND status = 'pending' RETURNING {COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(modem_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let mut claimed = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    // RETURNING keeps no order; the oldest schedule goes first.
    claimed.sort_by_key(|m| (m.scheduled_for, m.id));
    Ok(claimed)
}

/// The segments of `messages` the network already accepted, as (message, part): those of a
/// message resumed after an interruption. One look for them all.
async fn parts_sent_of(
    conn: &mut AnyConnection,
    messages: &[MessageRecord],
) -> Result<Vec<(i64, i64)>, StoreError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let list = (1..=messages.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT message_id, part FROM message_parts WHERE message_id IN ({list}) \
         AND state IN ('sent', 'delivered', 'failed')"
    );
    let mut query = sqlx::query_as(&sql);
    for message in messages {
        query = query.bind(message.id);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// Writes a segment's row as handed (`sent` = `None`) or as handed and accepted (with its
/// message reference and when). Returns 1, or 0 when the row was already past that, or belongs
/// to another modem: a step applied again, or a stale one, changes nothing.
async fn write_part(
    conn: &mut AnyConnection,
    (id, part, total): (i64, i64, i64),
    (modem_id, recipient): (&str, &str),
    handed_at: i64,
    sent: Option<(u8, i64)>,
) -> Result<i64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO message_parts (message_id, part, total, modem_id, recipient, state, \
         mr, handed_at, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (message_id, part) DO UPDATE SET state = $6, modem_id = $4, \
         mr = $7, handed_at = $8, sent_at = $9 \
         WHERE message_parts.state NOT IN ('sent', 'delivered', 'failed') \
         AND message_parts.modem_id = excluded.modem_id",
    )
    .bind(id)
    .bind(part)
    .bind(total)
    .bind(modem_id)
    .bind(recipient)
    .bind(if sent.is_some() { "sent" } else { "sending" })
    .bind(sent.map(|(mr, _)| i64::from(mr)))
    .bind(handed_at)
    .bind(sent.map(|(_, at)| at))
    .execute(&mut *conn)
    .await?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(0))
}

/// Records a handed segment as accepted; returns 1, or 0 when it already was.
async fn part_sent_on(
    conn: &mut AnyConnection,
    id: i64,
    part: i64,
    mr: u8,
    at: i64,
) -> Result<i64, StoreError> {
    let done = sqlx::query(
        "UPDATE message_parts SET state = 'sent', mr = $1, sent_at = $2 \
         WHERE message_id = $3 AND part = $4 AND state = 'sending'",
    )
    .bind(i64::from(mr))
    .bind(at)
    .bind(id)
    .bind(part)
    .execute(&mut *conn)
    .await?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(0))
}

// The steps below touch a message only while `modem_id` holds it: a journalled step of one
// modem never changes a message another modem has claimed since.

async fn mark_sent_on(
    conn: &mut AnyConnection,
    id: i64,
    at: i64,
    modem_id: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE messages SET status = 'sent', sent_at = $1, updated_at = $1, \
         attempts = attempts + 1, error = NULL \
         WHERE id = $2 AND status = 'sending' AND modem_id = $3 {EVENT_RETURNING}"
    ))
    .bind(at)
    .bind(id)
    .bind(modem_id)
    .fetch_optional(&mut *conn)
    .await?;
    message_event(conn, "message.sent", row, at).await
}

/// What a message's event tells of it.
const EVENT_RETURNING: &str = "RETURNING id, client_ref, to_number, modem_id, error";

/// Stores the event of a message's change, when the update changed it (`row` is what it
/// returned).
async fn message_event(
    conn: &mut AnyConnection,
    kind: &str,
    row: Option<sqlx::any::AnyRow>,
    at: i64,
) -> Result<(), StoreError> {
    use sqlx::Row;
    let Some(row) = row else {
        return Ok(());
    };
    let payload = serde_json::json!({
        "message_id": row.try_get::<i64, _>("id")?,
        "ref": row.try_get::<String, _>("client_ref")?,
        "to": row.try_get::<String, _>("to_number")?,
        "modem_id": row.try_get::<Option<String>, _>("modem_id")?,
        "error": row.try_get::<Option<String>, _>("error")?,
    });
    super::event_on(conn, kind, &payload, at).await?;
    Ok(())
}

async fn mark_failed_on(
    conn: &mut AnyConnection,
    id: i64,
    (reason, at): (&str, i64),
    modem_id: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE messages SET status = 'failed', updated_at = $1, attempts = attempts + 1, \
         error = $2 WHERE id = $3 AND status IN ('queued', 'sending') AND modem_id = $4 \
         {EVENT_RETURNING}"
    ))
    .bind(at)
    .bind(reason)
    .bind(id)
    .bind(modem_id)
    .fetch_optional(&mut *conn)
    .await?;
    message_event(conn, "message.failed", row, at).await
}

async fn retry_later_on(
    conn: &mut AnyConnection,
    id: i64,
    (due, reason, at): (i64, &str, i64),
    modem_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE messages SET status = 'pending', scheduled_for = $1, updated_at = $2, \
         attempts = attempts + 1, error = $3, modem_id = NULL \
         WHERE id = $4 AND status IN ('queued', 'sending') AND modem_id = $5",
    )
    .bind(due)
    .bind(at)
    .bind(reason)
    .bind(id)
    .bind(modem_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn count_segments_on(
    conn: &mut AnyConnection,
    modem_id: &str,
    segments: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO segment_counters (modem_id, segments, since) VALUES ($1, $2, $3) \
         ON CONFLICT (modem_id) DO UPDATE \
         SET segments = segment_counters.segments + excluded.segments",
    )
    .bind(modem_id)
    .bind(segments)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What start-up recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Claimed or half-sent messages put back to `pending`.
    pub requeued: u64,
    /// Messages whose segment was with the modem when the process stopped: failed for review.
    pub for_review: u64,
}

impl Store {
    /// Puts back what a crash left half-done on this node's modems (`modem_ids`). Run at
    /// start-up, before they send. Messages of other modems are left alone: on a shared
    /// PostgreSQL database another node may be sending them right now.
    ///
    /// A message whose segment was handed to the modem (`sending` part) may have reached the
    /// network: it is failed with a note to review it rather than sent again. Messages claimed
    /// but not started, or stopped between two segments, go back to `pending`; the segments
    /// already confirmed are not sent again when they resume.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn recover_interrupted(&self, modem_ids: &[String]) -> Result<Recovered, StoreError> {
        if modem_ids.is_empty() {
            return Ok(Recovered::default());
        }
        let now = now_ms();
        // $1 and $2 are taken; the ids follow.
        let ids = |first: usize| {
            (first..first + modem_ids.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "UPDATE messages SET status = 'failed', updated_at = $1, error = $2 \
             WHERE status = 'sending' AND id IN \
             (SELECT message_id FROM message_parts WHERE state = 'sending' \
              AND modem_id IN ({}))",
            ids(3)
        );
        let mut query = sqlx::query(&sql).bind(now).bind(REVIEW_NOTE);
        for id in modem_ids {
            query = query.bind(id);
        }
        let for_review = query.execute(self.pool()).await?.rows_affected();

        let sql = format!(
            "UPDATE message_parts SET state = 'unknown' \
             WHERE state = 'sending' AND modem_id IN ({})",
            ids(1)
        );
        let mut query = sqlx::query(&sql);
        for id in modem_ids {
            query = query.bind(id);
        }
        query.execute(self.pool()).await?;

        let sql = format!(
            "UPDATE messages SET status = 'pending', updated_at = $1 \
             WHERE status IN ('queued', 'sending') AND modem_id IN ({})",
            ids(2)
        );
        let mut query = sqlx::query(&sql).bind(now);
        for id in modem_ids {
            query = query.bind(id);
        }
        let requeued = query.execute(self.pool()).await?.rows_affected();
        Ok(Recovered {
            requeued,
            for_review,
        })
    }

    /// Claims up to `limit` due messages for `modem_id`, oldest schedule first, straight to
    /// `sending` (a message in a modem's hands is no longer cancelled), each with the segments
    /// of it the network already accepted in an earlier, interrupted attempt.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing was claimed.
    pub async fn claim_for_sending(
        &self,
        modem_id: &str,
        limit: usize,
    ) -> Result<Vec<(MessageRecord, Vec<i64>)>, StoreError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let mut tx = self.begin_write().await?;
        let claimed = claim_on(&mut tx, self.backend(), modem_id, limit).await?;
        let done = parts_sent_of(&mut tx, &claimed).await?;
        tx.commit().await?;
        Ok(claimed
            .into_iter()
            .map(|message| {
                let parts = done
                    .iter()
                    .filter(|(id, _)| *id == message.id)
                    .map(|(_, part)| *part)
                    .collect();
                (message, parts)
            })
            .collect())
    }

    /// Gives claimed messages of `modem_id` that it did not begin back to the queue.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn release(&self, modem_id: &str, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let list = (3..3 + ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE messages SET status = 'pending', modem_id = NULL, updated_at = $1 \
             WHERE modem_id = $2 AND status = 'sending' AND id IN ({list})"
        );
        let mut query = sqlx::query(&sql).bind(now_ms()).bind(modem_id);
        for id in ids {
            query = query.bind(id);
        }
        let mut tx = self.begin_write().await?;
        query.execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Applies a modem's journalled steps, in order and in one transaction. A segment handed
    /// and accepted within the same batch is written once, as sent.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then none of them was applied.
    pub async fn record_progress(
        &self,
        modem_id: &str,
        steps: &[Progress],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let mut counted = 0;
        let mut index = 0;
        while let Some(step) = steps.get(index) {
            index += 1;
            match step {
                Progress::Handed {
                    message,
                    part,
                    total,
                    recipient,
                    at,
                } => {
                    // Handed and accepted in the same batch: one write, as sent.
                    let accepted = match steps.get(index) {
                        Some(Progress::Accepted {
                            message: m,
                            part: p,
                            mr,
                            last,
                            at: sent_at,
                        }) if m == message && p == part => Some((*mr, *last, *sent_at)),
                        _ => None,
                    };
                    if accepted.is_some() {
                        index += 1;
                    }
                    let segment = (*message, *part, *total);
                    let sent = accepted.map(|(mr, _, sent_at)| (mr, sent_at));
                    let written =
                        write_part(&mut tx, segment, (modem_id, recipient), *at, sent).await?;
                    if let Some((_, last, sent_at)) = accepted {
                        counted += written;
                        if written > 0 && last {
                            mark_sent_on(&mut tx, *message, sent_at, modem_id).await?;
                        }
                    }
                }
                Progress::Accepted {
                    message,
                    part,
                    mr,
                    last,
                    at,
                } => {
                    let written = part_sent_on(&mut tx, *message, *part, *mr, *at).await?;
                    counted += written;
                    if written > 0 && *last {
                        mark_sent_on(&mut tx, *message, *at, modem_id).await?;
                    }
                }
                Progress::Sent { message, at } => {
                    mark_sent_on(&mut tx, *message, *at, modem_id).await?
                }
                Progress::Refused { message, part } => {
                    sqlx::query(
                        "DELETE FROM message_parts WHERE message_id = $1 AND part = $2 \
                         AND state = 'sending' AND modem_id = $3",
                    )
                    .bind(message)
                    .bind(part)
                    .bind(modem_id)
                    .execute(&mut *tx)
                    .await?;
                }
                Progress::Failed {
                    message,
                    reason,
                    at,
                } => mark_failed_on(&mut tx, *message, (reason, *at), modem_id).await?,
                Progress::Retry {
                    message,
                    due,
                    reason,
                    at,
                } => retry_later_on(&mut tx, *message, (*due, reason, *at), modem_id).await?,
            }
        }
        if counted > 0 {
            count_segments_on(&mut tx, modem_id, counted).await?;
        }
        tx.commit().await
    }
}

/// The error of a message interrupted while the modem had one of its segments.
pub const REVIEW_NOTE: &str = "review: the service stopped while the modem was sending this \
    message; a segment may have gone out, so it was not sent again";

/// What a status report changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportEffect {
    /// No sent segment matches the report (it is old, or for another gateway's message).
    Unmatched,
    /// The segment was updated; the message is not final yet.
    Part {
        /// The message.
        message_id: i64,
    },
    /// Every segment is delivered: the message is `delivered`.
    Delivered {
        /// The message.
        message_id: i64,
    },
    /// The network gave up on a segment: the message is `failed`.
    Failed {
        /// The message.
        message_id: i64,
    },
}

/// A status report as the dispatcher hands it to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The modem that received it.
    pub modem_id: String,
    /// The message reference of the segment it is about (TP-MR).
    pub mr: u8,
    /// The recipient of that segment, as the report gives it.
    pub recipient: String,
    /// The report's verdict: `None` while the service centre is still trying.
    pub delivered: Option<bool>,
    /// Its TP-ST.
    pub status: u8,
}

impl Store {
    /// Applies status reports, each to the segment it is about: the latest segment sent through
    /// its modem with its message reference to its recipient. All of them in one transaction:
    /// one commit for however many reports came together, and no message seen half-updated.
    /// Returns what each one changed, in order.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then none of them was applied.
    pub async fn apply_reports(&self, reports: &[Report]) -> Result<Vec<ReportEffect>, StoreError> {
        if reports.iter().all(|r| r.delivered.is_none()) {
            return Ok(vec![ReportEffect::Unmatched; reports.len()]);
        }
        let mut tx = self.begin_write().await?;
        let mut effects = Vec::with_capacity(reports.len());
        for report in reports {
            effects.push(apply_report_on(&mut tx, report).await?);
        }
        tx.commit().await?;
        Ok(effects)
    }
}

async fn apply_report_on(
    conn: &mut AnyConnection,
    report: &Report,
) -> Result<ReportEffect, StoreError> {
    let Some(delivered) = report.delivered else {
        return Ok(ReportEffect::Unmatched);
    };
    let part: Option<(i64, i64)> = sqlx::query_as(
        "SELECT message_id, part FROM message_parts WHERE modem_id = $1 AND mr = $2 \
         AND recipient = $3 AND state = 'sent' ORDER BY sent_at DESC LIMIT 1",
    )
    .bind(&report.modem_id)
    .bind(i64::from(report.mr))
    .bind(&report.recipient)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((message_id, part)) = part else {
        return Ok(ReportEffect::Unmatched);
    };

    let now = now_ms();
    sqlx::query(
        "UPDATE message_parts SET state = $1, reported_at = $2, report_status = $3 \
         WHERE message_id = $4 AND part = $5",
    )
    .bind(if delivered { "delivered" } else { "failed" })
    .bind(now)
    .bind(i64::from(report.status))
    .bind(message_id)
    .bind(part)
    .execute(&mut *conn)
    .await?;

    if !delivered {
        let row = sqlx::query(&format!(
            "UPDATE messages SET status = 'failed', updated_at = $1, error = $2 \
             WHERE id = $3 AND status IN ('sending', 'sent') {EVENT_RETURNING}"
        ))
        .bind(now)
        .bind(format!(
            "status report: not delivered (TP-ST 0x{:02X})",
            report.status
        ))
        .bind(message_id)
        .fetch_optional(&mut *conn)
        .await?;
        message_event(conn, "message.failed", row, now).await?;
        return Ok(ReportEffect::Failed { message_id });
    }

    // Delivered once every segment of the message is: the total is on each part row.
    let row = sqlx::query(&format!(
        "UPDATE messages SET status = 'delivered', delivered_at = $1, updated_at = $1 \
         WHERE id = $2 AND status IN ('sending', 'sent') AND \
         (SELECT MAX(total) FROM message_parts WHERE message_id = $2) = \
         (SELECT COUNT(*) FROM message_parts WHERE message_id = $2 AND state = 'delivered') \
         {EVENT_RETURNING}"
    ))
    .bind(now)
    .bind(message_id)
    .fetch_optional(&mut *conn)
    .await?;
    let delivered = row.is_some();
    message_event(conn, "message.delivered", row, now).await?;
    Ok(if delivered {
        ReportEffect::Delivered { message_id }
    } else {
        ReportEffect::Part { message_id }
    })
}
