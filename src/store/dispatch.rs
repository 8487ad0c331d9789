//! What the dispatcher records: claiming a due message for a modem, each segment handed to the
//! modem and confirmed, and the end of a message's way (sent, retried later, failed, or held for
//! review). Every step is one conditional statement, so a message cancelled through the API in
//! the meantime is never picked up again, and two gateway nodes never claim the same message.

use sqlx::AnyConnection;

use super::messages::{COLUMNS, from_row};
use super::{Backend, MessageRecord, Store, StoreError, now_ms};

/// A segment the network accepted, waiting to be recorded with the worker's next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The message.
    pub message_id: i64,
    /// The segment's number, from 1.
    pub part: i64,
    /// The message reference `+CMGS` answered.
    pub mr: u8,
    /// Whether it was the message's last segment: the message is then `sent`.
    pub last: bool,
}

/// One step of a worker, in one transaction: the segment the network just accepted is
/// recorded, and the next segment is recorded as handed to the modem, before `AT+CMGS` is
/// written for it. One commit a segment keeps a modem fed without ever leaving more than the
/// segment on the air in doubt.
pub struct Step {
    tx: super::WriteTx,
    backend: Backend,
}

impl Step {
    /// Records an accepted segment, counts it, and ends its message as `sent` when it was the
    /// last.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn record_accepted(
        &mut self,
        modem_id: &str,
        accepted: &Accepted,
    ) -> Result<(), StoreError> {
        let conn = &mut *self.tx;
        part_sent_on(conn, accepted.message_id, accepted.part, accepted.mr).await?;
        count_segments_on(conn, modem_id, 1).await?;
        if accepted.last {
            mark_sent_on(conn, accepted.message_id).await?;
        }
        Ok(())
    }

    /// Claims the next due message for `modem_id`, straight to `sending`, with the segments
    /// of it the network already accepted (when an earlier attempt was interrupted).
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn claim(
        &mut self,
        modem_id: &str,
    ) -> Result<Option<(MessageRecord, Vec<i64>)>, StoreError> {
        let conn = &mut *self.tx;
        let Some(message) = claim_on(conn, self.backend, modem_id, "sending").await? else {
            return Ok(None);
        };
        let done = parts_sent_on(conn, message.id).await?;
        Ok(Some((message, done)))
    }

    /// Records a segment as handed to the modem.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn hand(
        &mut self,
        id: i64,
        part: (i64, i64),
        modem_id: &str,
        recipient: &str,
    ) -> Result<(), StoreError> {
        part_handed_on(&mut self.tx, id, part, modem_id, recipient).await
    }

    /// Ends a claimed message as `sent` (every segment had gone out before).
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mark_sent(&mut self, id: i64) -> Result<(), StoreError> {
        mark_sent_on(&mut self.tx, id).await
    }

    /// Ends a claimed message as `failed`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mark_failed(&mut self, id: i64, reason: &str) -> Result<(), StoreError> {
        mark_failed_on(&mut self.tx, id, reason).await
    }

    /// Makes the step durable.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing of the step happened.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }
}

async fn claim_on(
    conn: &mut AnyConnection,
    backend: Backend,
    modem_id: &str,
    status: &str,
) -> Result<Option<MessageRecord>, StoreError> {
    let now = now_ms();
    // PostgreSQL nodes skip rows another node is claiming; SQLite has one writer anyway.
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE messages SET status = $3, modem_id = $1, updated_at = $2 \
         WHERE id = (SELECT id FROM messages WHERE status = 'pending' \
         AND scheduled_for <= $2 ORDER BY scheduled_for, id LIMIT 1{lock}) \
         AND status = 'pending' RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(modem_id)
        .bind(now)
        .bind(status)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

async fn parts_sent_on(conn: &mut AnyConnection, id: i64) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT part FROM message_parts WHERE message_id = $1 AND state IN ('sent', \
         'delivered', 'failed')",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(part,)| part).collect())
}

async fn part_handed_on(
    conn: &mut AnyConnection,
    id: i64,
    (part, total): (i64, i64),
    modem_id: &str,
    recipient: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO message_parts (message_id, part, total, modem_id, recipient, state, \
         handed_at) VALUES ($1, $2, $3, $4, $5, 'sending', $6) \
         ON CONFLICT (message_id, part) DO UPDATE SET state = 'sending', \
         modem_id = $4, handed_at = $6",
    )
    .bind(id)
    .bind(part)
    .bind(total)
    .bind(modem_id)
    .bind(recipient)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn part_sent_on(
    conn: &mut AnyConnection,
    id: i64,
    part: i64,
    mr: u8,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE message_parts SET state = 'sent', mr = $1, sent_at = $2 \
         WHERE message_id = $3 AND part = $4",
    )
    .bind(i64::from(mr))
    .bind(now_ms())
    .bind(id)
    .bind(part)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn mark_sent_on(conn: &mut AnyConnection, id: i64) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "UPDATE messages SET status = 'sent', sent_at = $1, updated_at = $1, \
         attempts = attempts + 1, error = NULL WHERE id = $2 AND status = 'sending'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn mark_failed_on(conn: &mut AnyConnection, id: i64, reason: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE messages SET status = 'failed', updated_at = $1, attempts = attempts + 1, \
         error = $2 WHERE id = $3 AND status IN ('queued', 'sending')",
    )
    .bind(now_ms())
    .bind(reason)
    .bind(id)
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

    /// Claims the next due message for `modem_id`, oldest schedule first, as `queued`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn claim_next(&self, modem_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        claim_on(&mut conn, self.backend(), modem_id, "queued").await
    }

    /// Begins a worker's step; see [`Step`].
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn begin_step(&self) -> Result<Step, StoreError> {
        Ok(Step {
            tx: self.begin_write().await?,
            backend: self.backend(),
        })
    }

    /// Moves a claimed message to `sending`; `false` when it was cancelled meanwhile.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn start_sending(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET status = 'sending', updated_at = $1 \
             WHERE id = $2 AND status = 'queued'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The segments of a message the network has already accepted.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn parts_sent(&self, id: i64) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        parts_sent_on(&mut conn, id).await
    }

    /// Records that a segment is being handed to the modem, before `AT+CMGS` is written.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then the segment must not be sent.
    pub async fn part_handed(
        &self,
        id: i64,
        (part, total): (i64, i64),
        modem_id: &str,
        recipient: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        part_handed_on(&mut conn, id, (part, total), modem_id, recipient).await
    }

    /// Records the network's acceptance of a segment and its message reference.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn part_sent(&self, id: i64, part: i64, mr: u8) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        part_sent_on(&mut conn, id, part, mr).await
    }

    /// Forgets a segment the modem refused: it did not go out.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn part_refused(&self, id: i64, part: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM message_parts WHERE message_id = $1 AND part = $2")
            .bind(id)
            .bind(part)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every segment went out: the message is `sent`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mark_sent(&self, id: i64) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        mark_sent_on(&mut conn, id).await
    }

    /// The attempt failed for a passing reason: back to `pending`, due again at `at` (ms).
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn retry_later(&self, id: i64, at: i64, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET status = 'pending', scheduled_for = $1, updated_at = $2, \
             attempts = attempts + 1, error = $3, modem_id = NULL \
             WHERE id = $4 AND status IN ('queued', 'sending')",
        )
        .bind(at)
        .bind(now_ms())
        .bind(reason)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The message will not go out: `failed`, with the reason.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn mark_failed(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        mark_failed_on(&mut conn, id, reason).await
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
    /// Applies one status report; see [`Store::apply_reports`].
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn apply_report(
        &self,
        modem_id: &str,
        mr: u8,
        recipient: &str,
        delivered: Option<bool>,
        status: u8,
    ) -> Result<ReportEffect, StoreError> {
        let report = Report {
            modem_id: modem_id.to_owned(),
            mr,
            recipient: recipient.to_owned(),
            delivered,
            status,
        };
        let mut effects = self.apply_reports(std::slice::from_ref(&report)).await?;
        Ok(effects.pop().unwrap_or(ReportEffect::Unmatched))
    }

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
        sqlx::query(
            "UPDATE messages SET status = 'failed', updated_at = $1, error = $2 \
             WHERE id = $3 AND status IN ('sending', 'sent')",
        )
        .bind(now)
        .bind(format!(
            "status report: not delivered (TP-ST 0x{:02X})",
            report.status
        ))
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
        return Ok(ReportEffect::Failed { message_id });
    }

    // Delivered once every segment of the message is: the total is on each part row.
    let done = sqlx::query(
        "UPDATE messages SET status = 'delivered', delivered_at = $1, updated_at = $1 \
         WHERE id = $2 AND status IN ('sending', 'sent') AND \
         (SELECT MAX(total) FROM message_parts WHERE message_id = $2) = \
         (SELECT COUNT(*) FROM message_parts WHERE message_id = $2 AND state = 'delivered')",
    )
    .bind(now)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    Ok(if done.rows_affected() == 1 {
        ReportEffect::Delivered { message_id }
    } else {
        ReportEffect::Part { message_id }
    })
}
