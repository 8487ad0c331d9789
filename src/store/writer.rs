//! The group-commit writer: one task that stores every new message.
//!
//! Requests hand their checked messages to the writer and wait. The writer takes everything that
//! is waiting, writes it in one transaction and commits once, so a single disk flush makes many
//! requests durable together; under load the groups grow by themselves and the flushes per second
//! stay few. A request is answered only after its group has committed, so a 2xx always means the
//! message is on disk.

use sqlx::{Any, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::messages::{COLUMNS, from_row};
use super::{MessageRecord, NewMessage, Store, StoreError, new_id, now_ms};
use crate::domain::MessageStatus;

/// The most messages written in one transaction; more waiting ones go in the next.
const MAX_GROUP: usize = 20_000;

/// Requests that may wait for the writer before submitters are held back.
const QUEUE_DEPTH: usize = 4_096;

const INSERT: &str = "INSERT INTO messages (id, client_ref, to_number, body, status, encoding, \
    segments, load_id, channel, created_by, send_at, created_at, scheduled_for, updated_at, \
    attempts) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $11, 0) \
    ON CONFLICT (client_ref) DO NOTHING";

/// What became of one submitted message.
#[derive(Clone, Debug)]
pub enum InsertOutcome {
    /// Stored now.
    Created(MessageRecord),
    /// Its reference was already stored with the same content: this is that message.
    Existing(MessageRecord),
    /// Its reference was already stored with different content: this is the stored message.
    Conflict(MessageRecord),
}

struct Job {
    messages: Vec<NewMessage>,
    reply: oneshot::Sender<Result<Vec<InsertOutcome>, StoreError>>,
}

/// A handle to the writer task; cheap to clone. The task ends when every handle is dropped,
/// after writing what it was given.
#[derive(Clone, Debug)]
pub struct MessageWriter {
    jobs: mpsc::Sender<Job>,
}

impl MessageWriter {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Store) -> MessageWriter {
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(store, rx));
        MessageWriter { jobs }
    }

    /// Stores `messages` durably and says, in the same order, what became of each.
    ///
    /// # Errors
    ///
    /// Fails when the transaction could not be committed; then none of them was stored.
    pub async fn insert(
        &self,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { messages, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut size = first.messages.len();
        let mut jobs = vec![first];
        while size < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.messages.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }

        match write_group(&store, &jobs).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    // A requester that went away still has its messages stored; nobody is
                    // left to tell, and that is fine.
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                tracing::error!(error = ?err, messages = size, "message group not stored");
                let reason = err.to_string();
                for job in jobs {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Database(sqlx::Error::Protocol(
                            reason.clone(),
                        ))));
                }
            }
        }
    }
    tracing::debug!("message writer stopped");
}

async fn write_group(store: &Store, jobs: &[Job]) -> Result<Vec<Vec<InsertOutcome>>, StoreError> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut job_outcomes = Vec::with_capacity(job.messages.len());
        for message in &job.messages {
            job_outcomes.push(insert_one(&mut tx, message, now).await?);
        }
        outcomes.push(job_outcomes);
    }
    tx.commit().await?;
    Ok(outcomes)
}

async fn insert_one(
    tx: &mut Transaction<'_, Any>,
    message: &NewMessage,
    now: i64,
) -> Result<InsertOutcome, StoreError> {
    let record = MessageRecord {
        id: new_id(),
        client_ref: message.client_ref.clone(),
        to: message.to.clone(),
        text: message.text.clone(),
        status: MessageStatus::Pending,
        encoding: message.encoding,
        segments: message.segments,
        load_id: message.load_id.clone(),
        channel: message.channel,
        created_by: message.created_by.clone(),
        send_at: message.send_at,
        created_at: now,
        scheduled_for: message.send_at.unwrap_or(now),
        updated_at: now,
        sent_at: None,
        delivered_at: None,
        error: None,
        attempts: 0,
    };
    let done = sqlx::query(INSERT)
        .bind(&record.id)
        .bind(&record.client_ref)
        .bind(&record.to)
        .bind(&record.text)
        .bind(record.encoding.as_str())
        .bind(record.segments)
        .bind(&record.load_id)
        .bind(record.channel.as_str())
        .bind(&record.created_by)
        .bind(record.send_at)
        .bind(record.created_at)
        .bind(record.scheduled_for)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(InsertOutcome::Created(record));
    }

    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM messages WHERE client_ref = $1"
    ))
    .bind(&message.client_ref)
    .fetch_one(&mut **tx)
    .await?;
    let stored = from_row(&row)?;
    Ok(if message.same_content_as(&stored) {
        InsertOutcome::Existing(stored)
    } else {
        InsertOutcome::Conflict(stored)
    })
}
