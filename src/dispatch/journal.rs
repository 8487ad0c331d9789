//! The dispatcher's journal: one file a modem, in which each step of a message's way through
//! the modem ([`Progress`]) is written before the database hears of it.
//!
//! A segment may go on the air only once its `handed` entry is on disk; that entry is written
//! and synced while the modem answers `AT+CMGS` with its prompt, so keeping it costs the modem
//! little time. The other entries are written without a sync of their own: the next `handed`
//! entry's sync carries them, and the database has them soon after anyway. A task a modem
//! applies the entries to the database in batches, in order. The file is written ahead with
//! zeros, so an entry's sync is a sync of data alone; once everything in it is applied and it
//! is well filled, it is emptied on disk and starts over, and sequence numbers tell a current
//! entry from an old one. After a crash, [`replay`] applies whatever a journal still holds
//! before recovery looks at the database, so a segment that may have gone out is always known,
//! however far the database was behind.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::check_modem_id;
use crate::store::{Progress, Store};

/// The most entries applied in one transaction.
const BATCH: usize = 1_000;
/// The first wait before a batch the database refused is tried again; it doubles up to
/// [`MAX_RETRY_WAIT`].
const RETRY_WAIT: Duration = Duration::from_millis(100);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// How long the steps that follow the first are gathered into its batch.
const GATHER: Duration = Duration::from_millis(25);
/// How much room the file is given at a time, written with zeros ahead of the entries.
const SPACE: u64 = 1 << 20;
/// Past this, the file starts over once every entry in it is applied; before, it need not.
const START_OVER_AT: u64 = 256 << 10;
/// The name every journal file ends with.
const SUFFIX: &str = ".journal";

/// One modem's journal, shared by its worker, its actor's thread (which writes the `handed`
/// entries) and the task that applies them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Ledger {
    book: Arc<Mutex<Book>>,
    queue: mpsc::UnboundedSender<Progress>,
}

#[derive(Debug)]
struct Book {
    file: File,
    path: PathBuf,
    /// Where the next entry goes.
    position: u64,
    /// The next entry's sequence number; it never goes back, so that entries left from before
    /// the file last started over are never read as a continuation.
    seq: u64,
    /// Entries written (or queued) and not yet applied to the database.
    unapplied: usize,
    /// A write or sync failed: what the file holds may have a gap, so no entry may be trusted
    /// to it until it is rebuilt (once everything is in the database).
    broken: bool,
}

/// One line of the journal.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    seq: u64,
    #[serde(flatten)]
    step: Progress,
}

impl Ledger {
    /// Opens the journal of `modem_id` in `dir` (creating both when missing) and starts the
    /// task that applies it to `store`. Entries an earlier run left are applied first.
    ///
    /// # Errors
    ///
    /// Fails when the id is not a modem id, or the file cannot be opened or read.
    pub fn open(dir: &Path, store: Store, modem_id: &str) -> io::Result<Ledger> {
        check_modem_id(modem_id).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{modem_id}{SUFFIX}"));
        let (left, book) = Book::open(&path)?;
        let (queue, entries) = mpsc::unbounded_channel();
        let book = Arc::new(Mutex::new(book));
        for step in left {
            let _ = queue.send(step);
        }
        tokio::spawn(apply(store, modem_id.to_owned(), book.clone(), entries));
        Ok(Ledger { book, queue })
    }

    /// Writes a step, synced to disk when `durable`, and queues it for the database. A step
    /// that could not be written is still queued unless it had to be durable; then nothing
    /// happened and the error says why.
    ///
    /// # Errors
    ///
    /// Fails when a durable step could not be written and synced.
    pub fn write(&self, step: Progress, durable: bool) -> io::Result<()> {
        let mut book = self.lock();
        let written = book.append(&step, durable);
        match written {
            Err(err) if durable => return Err(err),
            Err(err) => {
                tracing::error!(journal = %book.path.display(), error = %err,
                    "journal entry not written; the database will have it");
            }
            Ok(()) => {}
        }
        book.unapplied += 1;
        // The receiving task lives as long as any ledger does.
        let _ = self.queue.send(step);
        Ok(())
    }

    /// How many written steps the database has not had yet.
    pub fn unapplied(&self) -> usize {
        self.lock().unapplied
    }

    /// Waits until the database has every step written so far.
    pub async fn settled(&self) {
        while self.unapplied() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Book {
    /// Opens a journal, creating it when missing, with the steps it still holds: the chain of
    /// entries from its start whose sequence numbers follow one another. A torn last entry
    /// (the process stopped while writing it; that segment was never sent) ends the chain, as
    /// do zeros and entries left from before the file started over.
    fn open(path: &Path) -> io::Result<(Vec<Progress>, Book)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut steps = Vec::new();
        let mut position: u64 = 0;
        let mut last: Option<u64> = None;
        let mut highest: u64 = 0;
        let mut in_chain = true;
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            let entry = if line.last() == Some(&b'\n') {
                serde_json::from_slice::<Entry>(&line).ok()
            } else {
                None
            };
            let Some(entry) = entry else {
                in_chain = false;
                continue;
            };
            highest = highest.max(entry.seq);
            if in_chain && last.is_none_or(|last| entry.seq == last + 1) {
                last = Some(entry.seq);
                steps.push(entry.step);
                position += read as u64;
            } else {
                in_chain = false;
            }
        }
        drop(reader);
        let book = Book {
            file,
            path: path.to_owned(),
            position,
            seq: highest + 1,
            unapplied: steps.len(),
            broken: false,
        };
        book.reserve(position + SPACE)?;
        Ok((steps, book))
    }

    /// Makes sure the file has real blocks up to `len`, so that writing an entry changes no
    /// metadata and its sync is a sync of data alone.
    fn reserve(&self, len: u64) -> io::Result<()> {
        let have = self.file.metadata()?.len();
        if have >= len {
            return Ok(());
        }
        let zeros = vec![0_u8; usize::try_from(len - have).unwrap_or(0)];
        self.file.write_all_at(&zeros, have)?;
        self.file.sync_all()
    }

    fn append(&mut self, step: &Progress, durable: bool) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "the journal failed earlier and is rebuilt once the database has caught up",
            ));
        }
        let written = self.write_entry(step, durable);
        if written.is_err() {
            // After a failed sync the kernel may have dropped pages it had not written yet.
            self.broken = true;
        }
        written
    }

    fn write_entry(&mut self, step: &Progress, durable: bool) -> io::Result<()> {
        let entry = Entry {
            seq: self.seq,
            step: step.clone(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let end = self.position + line.len() as u64;
        self.reserve(end.next_multiple_of(SPACE))?;
        self.file.write_all_at(&line, self.position)?;
        if durable {
            self.file.sync_data()?;
        }
        self.position = end;
        self.seq += 1;
        Ok(())
    }

    /// `count` more steps reached the database. With none left and the file well filled (or
    /// broken), the next entry goes to its start again, and the old entries there are made
    /// unreadable first, on disk, so that a crash before the next entry cannot bring them back.
    fn applied(&mut self, count: usize) {
        self.unapplied = self.unapplied.saturating_sub(count);
        if self.unapplied > 0 || (self.position < START_OVER_AT && !self.broken) {
            return;
        }
        match self.clear() {
            Ok(()) => self.broken = false,
            Err(err) => {
                self.broken = true;
                tracing::error!(journal = %self.path.display(), error = %err,
                    "journal not started over; its modem sends nothing until it is");
            }
        }
    }

    /// Forgets every entry, on disk too: they are all in the database. The file is emptied and
    /// given fresh zeros, so nothing old can be read as a chain again.
    fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.reserve(SPACE)?;
        self.position = 0;
        self.unapplied = 0;
        Ok(())
    }
}

/// Applies a modem's steps to the database as they come, in batches, retrying a batch until the
/// database takes it: a step is never skipped.
async fn apply(
    store: Store,
    modem_id: String,
    book: Arc<Mutex<Book>>,
    mut entries: mpsc::UnboundedReceiver<Progress>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while entries.recv_many(&mut batch, BATCH).await > 0 {
        // A busy modem's steps are gathered for a moment, so that one commit takes many.
        tokio::time::sleep(GATHER).await;
        if batch.len() < BATCH {
            let room = BATCH - batch.len();
            let mut more = Vec::new();
            if !entries.is_empty() {
                entries.recv_many(&mut more, room).await;
            }
            batch.append(&mut more);
        }
        let mut wait = RETRY_WAIT;
        while let Err(err) = store.record_progress(&modem_id, &batch).await {
            tracing::warn!(modem.id = %modem_id, error = ?err, steps = batch.len(),
                "dispatch steps not recorded; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY_WAIT);
        }
        book.lock()
            .unwrap_or_else(|e| e.into_inner())
            .applied(batch.len());
        batch.clear();
    }
}

/// What [`replay`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Steps applied to the database.
    pub steps: usize,
    /// The modems that have a journal here, configured or not: start-up recovery covers them
    /// all.
    pub modems: Vec<String>,
}

/// Applies every journal in `dir` to the database, for modems configured or not, and empties
/// them; run at start-up before [`Store::recover_interrupted`].
///
/// # Errors
///
/// Fails when a journal cannot be read or emptied.
pub async fn replay(store: &Store, dir: &Path) -> io::Result<Replayed> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(err) => return Err(err),
    };
    let mut replayed = Replayed::default();
    for entry in listing {
        let name = entry?.file_name();
        let Some(modem_id) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        if check_modem_id(modem_id).is_err() {
            continue;
        }
        let ledger = Ledger::open(dir, store.clone(), modem_id)?;
        replayed.steps += ledger.unapplied();
        replayed.modems.push(modem_id.to_owned());
        ledger.settled().await;
        ledger.lock().clear()?;
    }
    replayed.modems.sort();
    Ok(replayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handed(message: i64) -> Progress {
        Progress::Handed {
            message,
            part: 1,
            total: 1,
            recipient: "+59170000000".into(),
            at: 1,
        }
    }

    fn held(path: &Path) -> Vec<Progress> {
        Book::open(path).unwrap().0
    }

    #[test]
    fn steps_written_are_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.journal");
        let (left, mut book) = Book::open(&path).unwrap();
        assert!(left.is_empty());
        let steps = [
            handed(1),
            Progress::Accepted {
                message: 1,
                part: 1,
                mr: 7,
                last: true,
                at: 2,
            },
            Progress::Failed {
                message: 2,
                reason: "line \"one\"\nline two".into(),
                at: 3,
            },
        ];
        for step in &steps {
            book.append(step, true).unwrap();
        }
        // The room ahead is there already: writing an entry does not grow the file.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SPACE);
        assert_eq!(held(&path), steps);
    }

    #[test]
    fn a_torn_last_entry_ends_the_chain_and_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.journal");
        let (_, mut book) = Book::open(&path).unwrap();
        book.append(&handed(1), true).unwrap();
        let torn = br#"{"seq":2,"step":"handed","mess"#;
        book.file.write_all_at(torn, book.position).unwrap();
        drop(book);

        let (left, mut book) = Book::open(&path).unwrap();
        assert_eq!(left, [handed(1)]);
        book.append(&handed(2), true).unwrap();
        assert_eq!(held(&path), [handed(1), handed(2)]);
    }

    #[test]
    fn after_starting_over_old_entries_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.journal");
        let (_, mut book) = Book::open(&path).unwrap();
        let mut n = 0;
        while book.position < START_OVER_AT {
            n += 1;
            book.append(&handed(n), false).unwrap();
            book.unapplied += 1;
        }
        book.applied(book.unapplied - 1);
        assert_ne!(book.position, 0, "one entry is not applied yet");
        book.applied(1);
        assert_eq!(book.position, 0);
        // A crash now, before the next entry, brings none of the old ones back.
        assert!(held(&path).is_empty());

        // A short entry now covers the start of a long old one; nothing old follows it.
        let new = Progress::Refused {
            message: 9,
            part: 1,
        };
        book.append(&new, true).unwrap();
        assert_eq!(held(&path), [new]);
    }

    #[test]
    fn a_cleared_journal_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.journal");
        let (_, mut book) = Book::open(&path).unwrap();
        book.append(&handed(1), true).unwrap();
        book.append(&handed(2), true).unwrap();
        book.clear().unwrap();
        assert!(held(&path).is_empty());
        let (_, mut book) = Book::open(&path).unwrap();
        book.append(&handed(3), true).unwrap();
        assert_eq!(held(&path), [handed(3)]);
    }
}
