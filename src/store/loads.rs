//! Loads: their records, rows that made no message, keys per reference date, and the daily runs
//! that keep the schedule to one node.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::writer::{insert_chunk, new_record};
use super::{Backend, NewMessage, Store, StoreError, now_ms};
use crate::domain::MessageStatus;

/// Rows written by one statement; a key row binds 4 values, an issue row 5.
const CHUNK: usize = 1_000;

/// A stored load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRecord {
    /// Identifier.
    pub id: String,
    /// `excel`, `manual` or `automatic`.
    pub kind: String,
    /// `running`, `committed`, `failed` or `deleted`.
    pub status: String,
    /// The template its messages were written from.
    pub template_id: Option<String>,
    /// The uploaded file's name.
    pub file_name: Option<String>,
    /// The reference date of an ERP load, `yyyy-mm-dd`.
    pub reference_date: Option<String>,
    /// The day its messages go out, `yyyy-mm-dd`.
    pub send_date: String,
    /// Who started it: a username, `key:<name>` or `schedule`.
    pub created_by: String,
    /// When it started, in ms.
    pub created_at: i64,
    /// When it was committed or failed, in ms.
    pub finished_at: Option<i64>,
    /// Rows looked at.
    pub rows_processed: i64,
    /// Messages made.
    pub messages_loaded: i64,
    /// Rows left out as already loaded.
    pub rows_skipped: i64,
    /// Rows that made no message.
    pub rows_failed: i64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// When it was deleted, in ms.
    pub deleted_at: Option<i64>,
    /// Who deleted it.
    pub deleted_by: Option<String>,
    /// When its report was mailed.
    pub report_sent_at: Option<i64>,
}

/// A load about to run.
#[derive(Clone, Debug)]
pub struct NewLoad {
    /// Its id, made by the caller so that progress can be followed under it from the start.
    pub id: String,
    /// `excel`, `manual` or `automatic`.
    pub kind: &'static str,
    /// The template.
    pub template_id: Option<String>,
    /// The uploaded file's name.
    pub file_name: Option<String>,
    /// The reference date, `yyyy-mm-dd`.
    pub reference_date: Option<String>,
    /// The send date, `yyyy-mm-dd`.
    pub send_date: String,
    /// Who started it.
    pub created_by: String,
    /// The node that runs it (see [`Store::fail_interrupted_loads`]).
    pub node: String,
}

/// A row that made no message, or was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRowRecord {
    /// The row number.
    pub row: u64,
    /// Left out as already loaded, rather than failed.
    pub skipped: bool,
    /// The column at fault.
    pub column: Option<String>,
    /// Why.
    pub reason: String,
}

/// A message of a load, with the row it came from and the row's key.
#[derive(Clone, Debug)]
pub struct LoadMessage {
    /// The message.
    pub message: NewMessage,
    /// Its row.
    pub row: u64,
    /// The row's key, when the source has a key column.
    pub key: Option<String>,
}

/// What committing a load wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Messages stored.
    pub loaded: i64,
    /// Rows left out, counting those whose key another load took while this one ran.
    pub skipped: i64,
    /// Rows that made no message.
    pub failed: i64,
}

/// What deleting a load did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// The load was deleted now: so many of its messages were cancelled, so many had gone.
    Now {
        /// Messages cancelled.
        cancelled: i64,
        /// Messages already handed to a modem or ended.
        already_gone: i64,
    },
    /// The load is still running and cannot be deleted yet.
    Running,
    /// No such load, or deleted before.
    NotFound,
}

const COLUMNS: &str = "id, kind, status, template_id, file_name, reference_date, send_date, \
    created_by, created_at, finished_at, rows_processed, messages_loaded, rows_skipped, \
    rows_failed, error, deleted_at, deleted_by, report_sent_at";

fn from_row(row: &AnyRow) -> Result<LoadRecord, sqlx::Error> {
    Ok(LoadRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        status: row.try_get("status")?,
        template_id: row.try_get("template_id")?,
        file_name: row.try_get("file_name")?,
        reference_date: row.try_get("reference_date")?,
        send_date: row.try_get("send_date")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
        rows_processed: row.try_get("rows_processed")?,
        messages_loaded: row.try_get("messages_loaded")?,
        rows_skipped: row.try_get("rows_skipped")?,
        rows_failed: row.try_get("rows_failed")?,
        error: row.try_get("error")?,
        deleted_at: row.try_get("deleted_at")?,
        deleted_by: row.try_get("deleted_by")?,
        report_sent_at: row.try_get("report_sent_at")?,
    })
}

/// The placeholders of a multi-row insert: `width` values a row, `rows` rows. SQLite gets
/// plain `?` (it finds a numbered one by a linear scan, which makes thousands quadratic),
/// PostgreSQL `$1`, `$2`, ….
fn values(rows: usize, width: usize, backend: Backend) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..width {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(r * width + c + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Records a load as running.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn start_load(&self, load: &NewLoad) -> Result<LoadRecord, StoreError> {
        let now = now_ms();
        let _gate = self.write_gate().await;
        sqlx::query(
            "INSERT INTO loads (id, kind, status, template_id, file_name, reference_date, \
             send_date, created_by, node, created_at, rows_processed, messages_loaded, \
             rows_skipped, rows_failed) \
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9, 0, 0, 0, 0)",
        )
        .bind(&load.id)
        .bind(load.kind)
        .bind(&load.template_id)
        .bind(&load.file_name)
        .bind(&load.reference_date)
        .bind(&load.send_date)
        .bind(&load.created_by)
        .bind(&load.node)
        .bind(now)
        .execute(self.pool())
        .await?;
        drop(_gate);
        self.load(&load.id).await?.ok_or(StoreError::GroupFailed(
            "a load just stored could not be read".into(),
        ))
    }

    /// The keys already loaded for `reference_date`, each with the load that took it.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn loaded_keys(
        &self,
        reference_date: &str,
    ) -> Result<HashMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT row_key, load_id FROM load_keys WHERE reference_date = $1")
                .bind(reference_date)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Stores a load's messages, keys and row issues in one transaction, and marks it
    /// committed: all of it is stored or none. A key another load of the same reference date
    /// took in the meantime turns its row into a skipped one.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing of the load was stored.
    pub async fn commit_load(
        &self,
        load_id: &str,
        reference_date: Option<&str>,
        messages: Vec<LoadMessage>,
        mut issues: Vec<LoadRowRecord>,
        rows_processed: u64,
    ) -> Result<Committed, StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.begin_write().await?;
        let mut messages = messages;
        if let Some(day) = reference_date {
            // In key order, so that two loads of one date racing on PostgreSQL take the keys'
            // row locks in the same order and cannot deadlock.
            let mut keyed: Vec<(&str, u64)> = messages
                .iter()
                .filter_map(|m| m.key.as_deref().map(|k| (k, m.row)))
                .collect();
            keyed.sort_unstable();
            let mut taken_now: std::collections::HashSet<String> = Default::default();
            for chunk in keyed.chunks(CHUNK) {
                let sql = format!(
                    "INSERT INTO load_keys (reference_date, row_key, load_id, row_number) \
                     VALUES {} ON CONFLICT (reference_date, row_key) DO NOTHING \
                     RETURNING row_key",
                    values(chunk.len(), 4, self.backend())
                );
                let mut q = sqlx::query(&sql);
                for (key, row) in chunk {
                    q = q
                        .bind(day)
                        .bind(*key)
                        .bind(load_id)
                        .bind(i64::try_from(*row).unwrap_or(i64::MAX));
                }
                for row in q.fetch_all(&mut *tx).await? {
                    taken_now.insert(row.try_get::<String, _>("row_key")?);
                }
            }
            let (kept, lost): (Vec<LoadMessage>, Vec<LoadMessage>) = messages
                .into_iter()
                .partition(|m| m.key.as_ref().is_none_or(|k| taken_now.contains(k)));
            messages = kept;
            issues.extend(lost.into_iter().map(|m| LoadRowRecord {
                row: m.row,
                skipped: true,
                column: None,
                reason: format!(
                    "`{}` was loaded for this reference date by another load at the same time",
                    m.key.unwrap_or_default()
                ),
            }));
        }

        let keys_done = started.elapsed();
        let now = now_ms();
        let backend = self.backend();
        let records: Vec<_> = messages
            .iter()
            .map(|m| new_record(&m.message, now))
            .collect();
        for chunk in records.chunks(CHUNK) {
            let stored = insert_chunk(&mut tx, backend, chunk).await?;
            if stored.len() != chunk.len() {
                // A reference of this load is taken: nothing of the load is stored.
                return Err(StoreError::GroupFailed(format!(
                    "{} of the load's message references were already taken",
                    chunk.len() - stored.len()
                )));
            }
        }
        let inserted = started.elapsed();

        issues.sort_by_key(|i| i.row);
        for chunk in issues.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO load_rows (load_id, row_number, skipped, column_name, reason) \
                 VALUES {}",
                values(chunk.len(), 5, self.backend())
            );
            let mut q = sqlx::query(&sql);
            for issue in chunk {
                q = q
                    .bind(load_id)
                    .bind(i64::try_from(issue.row).unwrap_or(i64::MAX))
                    .bind(i64::from(issue.skipped))
                    .bind(&issue.column)
                    .bind(&issue.reason);
            }
            q.execute(&mut *tx).await?;
        }

        let skipped = issues.iter().filter(|i| i.skipped).count() as i64;
        let committed = Committed {
            loaded: records.len() as i64,
            skipped,
            failed: issues.len() as i64 - skipped,
        };
        let marked = sqlx::query(
            "UPDATE loads SET status = 'committed', finished_at = $1, rows_processed = $2, \
             messages_loaded = $3, rows_skipped = $4, rows_failed = $5 \
             WHERE id = $6 AND status = 'running'",
        )
        .bind(now)
        .bind(i64::try_from(rows_processed).unwrap_or(i64::MAX))
        .bind(committed.loaded)
        .bind(committed.skipped)
        .bind(committed.failed)
        .bind(load_id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 1 {
            let payload = serde_json::json!({
                "load_id": load_id,
                "status": "committed",
                "messages_loaded": committed.loaded,
                "rows_skipped": committed.skipped,
                "rows_failed": committed.failed,
            });
            super::event_on(&mut tx, "load.finished", &payload, now).await?;
        } else {
            // Marked failed meanwhile (another node thought it interrupted) or gone: its
            // messages must not appear now, whoever may have deleted it since.
            return Err(StoreError::GroupFailed(
                "the load was marked failed while it ran; nothing of it was stored".into(),
            ));
        }
        tx.commit().await?;
        tracing::debug!(
            load.id = %load_id,
            keys_ms = keys_done.as_millis() as u64,
            messages_ms = (inserted - keys_done).as_millis() as u64,
            rest_ms = (started.elapsed() - inserted).as_millis() as u64,
            "load stored"
        );
        Ok(committed)
    }

    /// Marks a running load failed, with the reason and the rows it had looked at.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn fail_load(&self, load_id: &str, reason: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE loads SET status = 'failed', finished_at = $1, error = $2, \
             messages_loaded = 0 WHERE id = $3 AND status = 'running'",
        )
        .bind(now)
        .bind(reason)
        .bind(load_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let payload =
                serde_json::json!({"load_id": load_id, "status": "failed", "error": reason});
            super::event_on(&mut tx, "load.finished", &payload, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks failed the loads a stopped process left running: this node's, and any node's that
    /// started more than `stale_ms` ago (a node that never came back). A load is committed in
    /// one transaction, so none of them stored anything; a load another node is still running
    /// is left alone. Returns how many there were.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn fail_interrupted_loads(
        &self,
        node: &str,
        stale_ms: i64,
    ) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE loads SET status = 'failed', finished_at = $1, \
             error = 'interrupted: the gateway stopped while the load ran; nothing was stored' \
             WHERE status = 'running' AND (node = $2 OR created_at < $3)",
        )
        .bind(now)
        .bind(node)
        .bind(now - stale_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// The load with this id.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn load(&self, id: &str) -> Result<Option<LoadRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM loads WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Loads started before `before` (ms), newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn loads(
        &self,
        before: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<LoadRecord>, StoreError> {
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM loads \
             WHERE created_at < $1 OR (created_at = $1 AND id < $2) \
             ORDER BY created_at DESC, id DESC LIMIT {limit}"
        ))
        .bind(at)
        .bind(if id.is_empty() {
            "\u{10FFFF}".to_owned()
        } else {
            id
        })
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Loads started in `[from, until)` (ms), oldest first.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn loads_between(
        &self,
        from: i64,
        until: i64,
    ) -> Result<Vec<LoadRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM loads WHERE created_at >= $1 AND created_at < $2 \
             ORDER BY created_at, id"
        ))
        .bind(from)
        .bind(until)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The rows of a load that made no message, in row order.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn load_rows(&self, load_id: &str) -> Result<Vec<LoadRowRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT row_number, skipped, column_name, reason FROM load_rows \
             WHERE load_id = $1 ORDER BY row_number",
        )
        .bind(load_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LoadRowRecord {
                    row: u64::try_from(r.try_get::<i64, _>("row_number")?).unwrap_or(0),
                    skipped: r.try_get::<i64, _>("skipped")? != 0,
                    column: r.try_get("column_name")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// How many of a load's messages are in each state that has any.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn load_statuses(
        &self,
        load_id: &str,
    ) -> Result<Vec<(MessageStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM messages WHERE load_id = $1 GROUP BY status",
        )
        .bind(load_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| MessageStatus::parse(&s).map(|s| (s, n)))
            .collect())
    }

    /// Deletes a load: cancels every message of it not yet handed to a modem and frees the
    /// keys of their rows, so that a later load of the same date may take them again.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing changed.
    pub async fn delete_load(&self, load_id: &str, by: &str) -> Result<Deleted, StoreError> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM loads WHERE id = $1 AND deleted_at IS NULL")
                .bind(load_id)
                .fetch_optional(&mut *tx)
                .await?;
        match status.as_deref() {
            None => return Ok(Deleted::NotFound),
            Some("running") => return Ok(Deleted::Running),
            Some(_) => {}
        }
        let now = now_ms();
        // The same conditional update a single cancel makes: a modem claiming one of these
        // messages at this moment either sees it cancelled or is not matched here.
        let cancelled: Vec<String> = sqlx::query_scalar(
            "UPDATE messages SET status = 'cancelled', updated_at = $1 \
             WHERE load_id = $2 AND status IN ('pending', 'queued') RETURNING client_ref",
        )
        .bind(now)
        .bind(load_id)
        .fetch_all(&mut *tx)
        .await?;
        let already_gone: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE load_id = $1 AND status <> 'cancelled'",
        )
        .bind(load_id)
        .fetch_one(&mut *tx)
        .await?;
        // Every cancelled message frees its row's key, also one cancelled by itself before.
        let all_cancelled: Vec<String> = sqlx::query_scalar(
            "SELECT client_ref FROM messages WHERE load_id = $1 AND status = 'cancelled'",
        )
        .bind(load_id)
        .fetch_all(&mut *tx)
        .await?;
        let rows: Vec<i64> = all_cancelled
            .iter()
            .filter_map(|r| r.rsplit_once('-').and_then(|(_, n)| n.parse().ok()))
            .collect();
        for chunk in rows.chunks(CHUNK) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            sqlx::query(&format!(
                "DELETE FROM load_keys WHERE load_id = $1 AND row_number IN ({})",
                list.join(",")
            ))
            .bind(load_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE loads SET status = 'deleted', deleted_at = $1, deleted_by = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(by)
        .bind(load_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Deleted::Now {
            cancelled: cancelled.len() as i64,
            already_gone,
        })
    }

    /// Takes the run of `job` for `day`: true for exactly one caller, whichever node it is on.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn claim_run(&self, job: &str, day: &str, node: &str) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "INSERT INTO schedule_runs (job, day, node, started_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job, day) DO NOTHING",
        )
        .bind(job)
        .bind(day)
        .bind(node)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Where a daily run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// No node has claimed it.
    Unclaimed,
    /// A node claimed it at this time (ms) and has not finished.
    Running(i64),
    /// Its work is done.
    Finished,
}

impl Store {
    /// Where the run of `job` for `day` stands.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn run_state(&self, job: &str, day: &str) -> Result<RunState, StoreError> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT started_at, finished_at FROM schedule_runs WHERE job = $1 AND day = $2",
        )
        .bind(job)
        .bind(day)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => RunState::Unclaimed,
            Some((_, Some(_))) => RunState::Finished,
            Some((started, None)) => RunState::Running(started),
        })
    }

    /// Takes over a run claimed before `stale_before` (ms) and never finished: its node died.
    /// `true` when this node has it now.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn take_over_run(
        &self,
        job: &str,
        day: &str,
        node: &str,
        stale_before: i64,
    ) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE schedule_runs SET node = $1, started_at = $2 \
             WHERE job = $3 AND day = $4 AND finished_at IS NULL AND started_at < $5",
        )
        .bind(node)
        .bind(now_ms())
        .bind(job)
        .bind(day)
        .bind(stale_before)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a run's work done.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn finish_run(&self, job: &str, day: &str) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        sqlx::query("UPDATE schedule_runs SET finished_at = $1 WHERE job = $2 AND day = $3")
            .bind(now_ms())
            .bind(job)
            .bind(day)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Gives up this node's unfinished claim of a run, so that it is tried again.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn release_run(&self, job: &str, day: &str, node: &str) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "DELETE FROM schedule_runs WHERE job = $1 AND day = $2 AND node = $3 \
             AND finished_at IS NULL",
        )
        .bind(job)
        .bind(day)
        .bind(node)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether the run of `job` for `day` was claimed more than `older_than_ms` ago and no
    /// automatic load for that day was recorded since: its node stopped before starting it.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn lost_claim(
        &self,
        job: &str,
        day: &str,
        older_than_ms: i64,
    ) -> Result<bool, StoreError> {
        let claimed: Option<i64> =
            sqlx::query_scalar("SELECT started_at FROM schedule_runs WHERE job = $1 AND day = $2")
                .bind(job)
                .bind(day)
                .fetch_optional(self.pool())
                .await?;
        let Some(claimed) = claimed else {
            return Ok(false);
        };
        if claimed > now_ms() - older_than_ms {
            return Ok(false);
        }
        let loads: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM loads WHERE kind = 'automatic' AND reference_date = $1",
        )
        .bind(day)
        .fetch_one(self.pool())
        .await?;
        Ok(loads == 0)
    }
}

/// How the references of loads' messages begin; the messages API refuses them.
pub const LOAD_REF_PREFIX: &str = "load-";

/// The reference a load's message is stored under: the load and the row it came from.
pub fn load_message_ref(load_id: &str, row: u64) -> String {
    format!("{LOAD_REF_PREFIX}{load_id}-{row}")
}
