//! The group-commit writer: one task that stores every new message.
//!
//! Requests hand their checked messages to the writer and wait. The writer takes everything that
//! is waiting, writes it in one transaction and commits once, so a single disk flush makes many
//! requests durable together; under load the groups grow by themselves and the flushes per second
//! stay few. A request is answered only after its group has committed, so a 2xx always means the
//! message is on disk.

use std::collections::HashMap;
use std::fmt::Write;

use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Any, AnyConnection, Row};
use tokio::sync::{mpsc, oneshot};

use super::messages::{COLUMNS, from_row};
use super::{Backend, MessageRecord, NewMessage, Store, StoreError, now_ms};
use crate::domain::MessageStatus;

/// The most messages written in one transaction; more waiting ones go in the next.
const MAX_GROUP: usize = 20_000;

/// Requests that may wait for the writer before submitters are held back.
const QUEUE_DEPTH: usize = 4_096;

/// Rows a single statement inserts: 12 bound values each stays well under the parameter limits
/// of SQLite (32,766) and PostgreSQL (65,535).
const ROWS_PER_STATEMENT: usize = 1_000;
const BINDS_PER_ROW: usize = 12;

const INSERT_HEAD: &str = "INSERT INTO messages (client_ref, to_number, body, status, \
    encoding, segments, load_id, channel, created_by, send_at, created_at, scheduled_for, \
    updated_at, attempts) VALUES ";

/// What became of one submitted message.
#[derive(Clone, Debug)]
pub enum InsertOutcome {
    /// Stored now.
    Created(MessageRecord),
    /// Its reference was already stored with the same content: this is that message.
    Existing(MessageRecord),
    /// Its reference was already stored with different content: this is the stored message.
    Conflict(MessageRecord),
    /// Its reference was already stored, but the stored message could not be read back to
    /// compare; nothing new was stored, and a retry with the same reference will tell.
    Unresolved,
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
    // The writer keeps one connection for itself: SQLite caches pages per connection, and a
    // connection that writes every group keeps the hot index pages in its cache.
    let mut conn: Option<PoolConnection<Any>> = None;
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

        // The group waits its turn with the other writers of this process, not in SQLite's
        // busy handler.
        let gate = store.write_gate().await;
        let written = match conn.as_mut() {
            Some(c) => write_group(c, store.backend(), &jobs).await,
            None => match store.pool().acquire().await {
                Ok(c) => write_group(conn.insert(c), store.backend(), &jobs).await,
                Err(e) => Err(e.into()),
            },
        };
        if written.is_err() {
            // The connection may be what failed; the next group starts on a fresh one.
            conn = None;
        }
        if store.note_write()
            && let Some(c) = conn.as_mut()
            && let Err(err) = super::restart_log(&mut **c).await
        {
            tracing::warn!(error = %err, "write-ahead log not restarted; will retry");
        }
        drop(gate);
        match written {
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
                    let _ = job.reply.send(Err(StoreError::GroupFailed(reason.clone())));
                }
            }
        }
    }
    tracing::debug!("message writer stopped");
}

async fn write_group(
    conn: &mut AnyConnection,
    backend: Backend,
    jobs: &[Job],
) -> Result<Vec<Vec<InsertOutcome>>, StoreError> {
    let now = now_ms();
    let records: Vec<MessageRecord> = jobs
        .iter()
        .flat_map(|job| &job.messages)
        .map(|message| new_record(message, now))
        .collect();

    let mut records = records;
    let (created, stored) = if records.len() <= ROWS_PER_STATEMENT {
        // One statement is atomic by itself: no round trips for BEGIN and COMMIT.
        let new_ids = insert_chunk(conn, backend, &records).await?;
        let created = assign_ids(&mut records, new_ids);
        // The insert has committed. Should reading the rows that references met fail now, the
        // messages just stored must still be answered as stored (a client told otherwise would
        // send them again), so only the others are left unresolved.
        let taken = taken_refs(&records, &created);
        let stored = stored_by_ref(conn, backend, &taken)
            .await
            .inspect_err(|err| tracing::error!(error = ?err, "stored references not read"))
            .ok();
        (created, stored)
    } else {
        let mut tx = conn.begin().await?;
        let mut new_ids = Vec::with_capacity(records.len());
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            new_ids.extend(insert_chunk(&mut tx, backend, chunk).await?);
        }
        let created = assign_ids(&mut records, new_ids);
        let taken = taken_refs(&records, &created);
        let stored = stored_by_ref(&mut tx, backend, &taken).await?;
        tx.commit().await?;
        (created, Some(stored))
    };

    let mut records = records.into_iter().zip(created);
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut job_outcomes = Vec::with_capacity(job.messages.len());
        for (message, (record, created)) in job.messages.iter().zip(records.by_ref()) {
            let existing = stored.as_ref().and_then(|s| s.get(&record.client_ref));
            job_outcomes.push(match (created, existing) {
                (true, _) => InsertOutcome::Created(record),
                (false, Some(existing)) if message.same_content_as(existing) => {
                    InsertOutcome::Existing(existing.clone())
                }
                (false, Some(existing)) => InsertOutcome::Conflict(existing.clone()),
                (false, None) => InsertOutcome::Unresolved,
            });
        }
        outcomes.push(job_outcomes);
    }
    Ok(outcomes)
}

/// Gives each inserted record its new id and says which were inserted. Each inserted reference
/// is the first record that carries it: rows go in in order, and a repeat within the group
/// conflicts with the first.
fn assign_ids(records: &mut [MessageRecord], new_ids: Vec<(String, i64)>) -> Vec<bool> {
    let mut new_ids: HashMap<String, i64> = new_ids.into_iter().collect();
    records
        .iter_mut()
        .map(|record| match new_ids.remove(&record.client_ref) {
            Some(id) => {
                record.id = id;
                true
            }
            None => false,
        })
        .collect()
}

/// The references of the records that were not inserted, once each.
fn taken_refs<'r>(records: &'r [MessageRecord], created: &[bool]) -> Vec<&'r str> {
    let mut taken: Vec<&str> = records
        .iter()
        .zip(created)
        .filter(|(_, created)| !**created)
        .map(|(r, _)| r.client_ref.as_str())
        .collect();
    taken.sort_unstable();
    taken.dedup();
    taken
}

pub(super) fn new_record(message: &NewMessage, now: i64) -> MessageRecord {
    MessageRecord {
        // Assigned by the database on insert.
        id: 0,
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
    }
}

/// One multi-row insert for a chunk of records; returns the reference and the new id of each row
/// it inserted.
pub(super) async fn insert_chunk(
    conn: &mut AnyConnection,
    backend: Backend,
    chunk: &[MessageRecord],
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut sql = String::with_capacity(INSERT_HEAD.len() + chunk.len() * 96);
    sql.push_str(INSERT_HEAD);
    let mut n = 0;
    for i in 0..chunk.len() {
        sql.push_str(if i == 0 { "(" } else { ",(" });
        for column in 0..BINDS_PER_ROW {
            if column > 0 {
                sql.push(',');
            }
            // status and attempts are constants, written between the bound values.
            if column == 3 {
                sql.push_str("'pending',");
            }
            n += 1;
            push_placeholder(&mut sql, backend, n);
        }
        sql.push_str(",0)");
    }
    sql.push_str(" ON CONFLICT (client_ref) DO NOTHING RETURNING id, client_ref");

    let mut query = sqlx::query(&sql);
    for r in chunk {
        query = query
            .bind(&r.client_ref)
            .bind(&r.to)
            .bind(&r.text)
            .bind(r.encoding.as_str())
            .bind(r.segments)
            .bind(&r.load_id)
            .bind(r.channel.as_str())
            .bind(&r.created_by)
            .bind(r.send_at)
            .bind(r.created_at)
            .bind(r.scheduled_for)
            .bind(r.updated_at);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|row| Ok((row.try_get("client_ref")?, row.try_get("id")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Appends the `n`th placeholder. SQLite gets plain `?`: looking up a numbered one by name is a
/// linear scan inside SQLite, which makes binding thousands of them quadratic.
fn push_placeholder(sql: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => sql.push('?'),
        Backend::Postgres => {
            let _ = write!(sql, "${n}");
        }
    }
}

async fn stored_by_ref(
    conn: &mut AnyConnection,
    backend: Backend,
    refs: &[&str],
) -> Result<HashMap<String, MessageRecord>, StoreError> {
    let mut stored = HashMap::with_capacity(refs.len());
    for chunk in refs.chunks(ROWS_PER_STATEMENT) {
        let mut sql = format!("SELECT {COLUMNS} FROM messages WHERE client_ref IN (");
        for n in 1..=chunk.len() {
            if n > 1 {
                sql.push(',');
            }
            push_placeholder(&mut sql, backend, n);
        }
        sql.push(')');
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query.bind(*r);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let record = from_row(&row)?;
            stored.insert(record.client_ref.clone(), record);
        }
    }
    Ok(stored)
}
