//! Storage: one pool over SQLite or PostgreSQL, the schema migrations and the repositories.
//!
//! Both databases are reached through sqlx's `Any` driver with SQL that both understand (`$n`
//! placeholders, `ON CONFLICT`, `BIGINT` times in milliseconds), so every repository has one code
//! path. SQLite runs in WAL mode with `synchronous=FULL`: a committed transaction is on disk, which
//! is what lets the API answer 2xx only for messages that a power cut cannot take back.

mod api_keys;
mod balances;
mod counters;
mod dispatch;
mod events;
mod inbox;
mod loads;
mod mail;
mod messages;
mod migrate;
mod settings;
mod suppressions;
mod templates;
mod users;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use api_keys::{ApiKeyRecord, NewApiKey};
pub use balances::{BalanceCheckRecord, NewBalanceCheck};
pub use counters::SegmentCounter;
pub use dispatch::{Progress, REVIEW_NOTE, Recovered, Report, ReportEffect};
pub(crate) use events::event_on;
pub use events::{
    AttemptRecord, Attempted, DeliveryRecord, DueDelivery, EventRecord, Next, PING, WebhookRecord,
};
pub use inbox::{InboxFilter, InboxRecord, LastMessage, Received, ReceivedText};
pub use loads::{
    Committed, Deleted, LOAD_REF_PREFIX, LoadMessage, LoadRecord, LoadRowRecord, NewLoad, RunState,
    load_message_ref,
};
pub use mail::{MailOutcome, MailRecord, MailRuleRecord, NewMail};
pub use messages::{Cancel, MessageFilter, MessageRecord, NewMessage};
pub use suppressions::{KEYWORDS_KEY, OPTED_OUT, Suppressed, SuppressionRecord};
pub use templates::{TemplateChanges, TemplateRecord};
pub use users::{NewUser, UserChanges, UserRecord};
pub use writer::{InsertOutcome, MessageWriter};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("migration {version} ({name}) failed")]
    Migration {
        /// The migration's number.
        version: i64,
        /// The migration's file name.
        name: &'static str,
        /// What the database said.
        #[source]
        source: sqlx::Error,
    },
    /// A row would repeat a value that must be unique.
    #[error("a row with this {field} already exists")]
    Duplicate {
        /// The field whose value is taken.
        field: &'static str,
    },
    /// A stored value could not be read back.
    #[error("stored value of {column} is not valid: {value}")]
    Corrupt {
        /// The column that holds it.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// The group of messages this one was written with could not be committed; nothing of the
    /// group was stored.
    #[error("the messages could not be stored: {0}")]
    GroupFailed(String),
    /// The group-commit writer has stopped, so nothing more can be stored.
    #[error("the message writer has stopped")]
    WriterGone,
}

/// Which database the pool talks to, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The database: a connection pool and the backend behind it.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// When the message writer last committed, in ms; the checkpointer waits for a quiet moment.
    last_write: Arc<AtomicI64>,
    /// Set by the checkpointer when the log should restart while the writer is busy: the writer
    /// does it itself, between two groups.
    restart_wanted: Arc<AtomicBool>,
    /// Log pages past which the log is restarted.
    wal_restart_pages: i64,
    /// See [`Store::write_gate`].
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Counts the write transactions this process committed; see [`Store::watch_writes`].
    written: Arc<tokio::sync::watch::Sender<u64>>,
}

/// A write transaction, holding the write gate until it is committed or dropped (rolled back).
/// It dereferences to the connection, so statements run on `&mut *tx`.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    written: Arc<tokio::sync::watch::Sender<u64>>,
}

impl WriteTx {
    /// Makes the transaction durable, then lets the next writer in, and tells whoever watches
    /// for writes.
    ///
    /// # Errors
    ///
    /// Fails when the database does; then nothing of the transaction happened.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        self.written.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://path` or `postgres://…`), creating an SQLite file
    /// when it does not exist.
    ///
    /// # Errors
    ///
    /// Fails when the URL is not one of those schemes or the database cannot be opened.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();

        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url(url))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                "the database URL must start with sqlite:// or postgres://".into(),
            )));
        };

        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite takes one writer at a time, and two cores read no faster with more.
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers go on while the writer commits; FULL makes each
                        // commit wait for the disk; the busy timeout lets a second writer wait
                        // its turn instead of failing at once.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // 8 MiB of page cache a connection (the default is 2): the indexes of a
                        // table of millions of messages stay in memory while they are written.
                        conn.execute("PRAGMA cache_size = -8192").await?;
                        // Checkpoints run on their own task (see `spawn_checkpointer`), not
                        // inside whichever commit happens to cross the WAL's size limit.
                        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                        conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                        // Read pages through a memory map rather than a copy per read; the
                        // mapped pages belong to the kernel's file cache, not to the process.
                        conn.execute("PRAGMA mmap_size = 268435456").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            backend,
            last_write: Arc::new(AtomicI64::new(0)),
            restart_wanted: Arc::new(AtomicBool::new(false)),
            wal_restart_pages: WAL_RESTART_PAGES,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            written: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// A receiver that changes whenever this process commits a write transaction (every event
    /// is stored in one): the notifiers wait on it instead of asking the database over and
    /// over, and look now and then anyway for what other nodes write.
    pub fn watch_writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
    }

    /// Brings the schema up to date.
    ///
    /// # Errors
    ///
    /// Fails with the first migration the database refuses.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(self).await
    }

    /// The connection pool, for repositories.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it first takes this process's write
    /// gate (see [`Store::write_gate`]) and then the database's write lock (`BEGIN IMMEDIATE`):
    /// a transaction that reads first and writes later would otherwise fail with "database is
    /// locked" whenever another connection committed in between, since SQLite cannot upgrade a
    /// read snapshot that is no longer the newest. PostgreSQL needs neither.
    ///
    /// # Errors
    ///
    /// Fails when the database does, or the write lock is not had within the busy timeout.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let gate = self.write_gate().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            _gate: gate,
            written: self.written.clone(),
        })
    }

    /// On SQLite, the turn to write, among this process's busiest writers (the message
    /// writer, the modems' journal batches and claims, status reports, the inbox). SQLite has
    /// one writer at a time; a connection that finds the lock taken sleeps in its busy handler
    /// for 1, 2, 5, 10 ms and more before it looks again. Queueing here instead hands the lock
    /// over the moment it is free. `None` on PostgreSQL, whose row locks need no such turn.
    pub(crate) async fn write_gate(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// Whether the database answers a trivial query.
    pub async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// On SQLite, starts the task that copies the write-ahead log back into the database once a
    /// second. A passive checkpoint never waits for the writer, so a commit is never held up by
    /// a checkpoint it happened to trigger; the log stays small as long as this task runs.
    /// Nothing to do on PostgreSQL.
    pub fn spawn_checkpointer(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let pool = self.pool.clone();
        let last_write = self.last_write.clone();
        let restart_wanted = self.restart_wanted.clone();
        let limit = self.wal_restart_pages;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !pool.is_closed() {
                tick.tick().await;
                let quiet = now_ms() - last_write.load(Ordering::Relaxed) > 1_000;
                if let Err(err) = checkpoint(&pool, limit, quiet, &restart_wanted).await {
                    tracing::warn!(error = %err, "WAL checkpoint failed; will retry");
                }
            }
        });
    }

    /// Sets the log size, in pages, past which the write-ahead log is restarted (default 16,384,
    /// 64 MiB); tests use a small one to see it happen.
    pub fn with_wal_restart_pages(mut self, pages: i64) -> Store {
        self.wal_restart_pages = pages;
        self
    }

    /// Notes that the message writer committed just now, and says whether it should restart
    /// the write-ahead log before its next group.
    pub(crate) fn note_write(&self) -> bool {
        self.last_write.store(now_ms(), Ordering::Relaxed);
        self.restart_wanted.swap(false, Ordering::Relaxed)
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Pages of write-ahead log (4 KiB each) past which the log is restarted at the next quiet
/// moment: 64 MiB.
const WAL_RESTART_PAGES: i64 = 16_384;

/// One round of the checkpointer. A passive checkpoint copies what it can without blocking
/// anybody; but under steady writing it never catches up with the end of the log, so the log
/// would keep growing, and a long log slows every read of a page that is not in it (SQLite
/// searches the whole log index first). Past [`WAL_RESTART_PAGES`] the log is restarted: here
/// when nothing has been written for a second, otherwise by the writer itself between two
/// groups, where no lock has to be waited for. `journal_size_limit` then trims the file.
async fn checkpoint(
    pool: &AnyPool,
    limit: i64,
    quiet: bool,
    restart_wanted: &AtomicBool,
) -> Result<(), sqlx::Error> {
    let (_busy, log_pages, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
    if log_pages <= limit {
        return Ok(());
    }
    if quiet {
        restart_log(pool).await?;
    } else {
        restart_wanted.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Copies the rest of the write-ahead log into the database and makes the next commit start the
/// log from its beginning.
///
/// # Errors
///
/// Fails when the database does.
pub(crate) async fn restart_log<'c, E>(executor: E) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let (busy, log_pages, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(executor)
        .await?;
    tracing::debug!(
        log_pages,
        restarted = busy == 0,
        "write-ahead log restarted"
    );
    Ok(())
}

/// Makes an SQLite URL create its file when missing (`mode=rwc`), unless it says otherwise.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Milliseconds since the Unix epoch, the unit every stored time uses.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new time-ordered identifier.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Turns a unique-constraint violation into [`StoreError::Duplicate`] naming `field`.
fn unique_violation(err: sqlx::Error, field: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate { field },
        _ => StoreError::Database(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_their_file() {
        assert_eq!(
            sqlite_url("sqlite://data/p.db"),
            "sqlite://data/p.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url("sqlite://p.db?cache=shared"),
            "sqlite://p.db?cache=shared&mode=rwc"
        );
        assert_eq!(sqlite_url("sqlite://p.db?mode=ro"), "sqlite://p.db?mode=ro");
    }
}
