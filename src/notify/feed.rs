//! The live feed of events: one task a node reads new events from the database and hands them
//! to every open stream (`GET /v1/events`, Server-Sent Events). Reading the table, rather than
//! hearing of events inside this process, means a dashboard connected to one node also sees
//! what the other nodes sharing the database record.
//!
//! The reader looks again whenever this process commits a write, and every second for what other
//! nodes write.
//!
//! On PostgreSQL, events can commit out of the order of their numbers: a transaction that took
//! number 41 may commit after the one that took 42. The reader therefore keeps a floor (every
//! event at or below it has been handed on or given up on) and the numbers above it that it has
//! seen; a gap is waited for [`GAP_WAIT`] before the floor passes it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::store::{EventRecord, Store};

/// How often the table is read while a gap waits for its late commit.
const POLL: Duration = Duration::from_millis(100);

/// How long a missing number is waited for before it is taken for a rolled-back transaction.
const GAP_WAIT: Duration = Duration::from_secs(5);

/// Events a slow stream may fall behind by before it goes back to reading the table.
const BUFFER: usize = 4_096;

/// The node's live feed of events.
#[derive(Debug, Clone)]
pub struct Feed {
    sender: broadcast::Sender<Arc<EventRecord>>,
}

impl Feed {
    /// Starts reading events recorded from now on.
    pub fn spawn(store: Store) -> (Feed, tokio::task::JoinHandle<()>) {
        let (sender, _) = broadcast::channel(BUFFER);
        let feed = Feed {
            sender: sender.clone(),
        };
        let task = tokio::spawn(async move {
            let start = loop {
                match store.last_event_seq().await {
                    Ok(seq) => break seq,
                    Err(err) => {
                        tracing::warn!(error = %err, "event feed not started; will retry");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            let mut reader = Reader::new(start);
            let mut writes = store.watch_writes();
            loop {
                writes.borrow_and_update();
                let limit = 1_000 + reader.seen.len() as u32;
                let mut full = false;
                match store.events_after(reader.floor, limit).await {
                    Ok(events) => {
                        full = events.len() as u32 == limit;
                        for event in reader.take(events, Instant::now()) {
                            // Nobody listening is not an error.
                            let _ = sender.send(Arc::new(event));
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "events not read for the feed"),
                }
                if full {
                    continue;
                }
                // A gap waits for its late commit, which may be another node's.
                if reader.seen.is_empty() {
                    super::wait_for_writes(&mut writes).await;
                } else {
                    tokio::time::sleep(POLL).await;
                }
            }
        });
        (feed, task)
    }

    /// A receiver of the events recorded from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.sender.subscribe()
    }
}

/// What the feed has handed on, and which new events are news.
#[derive(Debug)]
struct Reader {
    floor: i64,
    seen: BTreeSet<i64>,
    /// Since when the number after the floor has been missing.
    gap_since: Option<Instant>,
}

impl Reader {
    fn new(floor: i64) -> Reader {
        Reader {
            floor,
            seen: BTreeSet::new(),
            gap_since: None,
        }
    }

    /// The events of `read` (events above the floor, in order) not handed on before; then moves
    /// the floor up as far as no gap younger than [`GAP_WAIT`] holds it.
    fn take(&mut self, read: Vec<EventRecord>, now: Instant) -> Vec<EventRecord> {
        let news: Vec<EventRecord> = read
            .into_iter()
            .filter(|e| e.seq > self.floor && self.seen.insert(e.seq))
            .collect();
        loop {
            while self.seen.remove(&(self.floor + 1)) {
                self.floor += 1;
                self.gap_since = None;
            }
            let Some(&next) = self.seen.first() else {
                self.gap_since = None;
                break;
            };
            let since = *self.gap_since.get_or_insert(now);
            if now.duration_since(since) < GAP_WAIT {
                break;
            }
            // Waited long enough: that number was rolled back.
            self.floor = next - 1;
            self.gap_since = None;
        }
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> EventRecord {
        EventRecord {
            seq,
            id: format!("evt_{seq}"),
            kind: "message.sent".into(),
            at: 0,
            payload: "{}".into(),
        }
    }

    fn seqs(events: &[EventRecord]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn events_in_order_pass_once_and_raise_the_floor() {
        let t0 = Instant::now();
        let mut r = Reader::new(10);
        assert_eq!(seqs(&r.take(vec![event(11), event(12)], t0)), [11, 12]);
        assert_eq!(r.floor, 12);
        assert!(r.seen.is_empty());
        assert!(r.take(vec![event(12)], t0).is_empty());
    }

    #[test]
    fn an_event_that_commits_late_is_still_handed_on() {
        let t0 = Instant::now();
        let mut r = Reader::new(10);
        // 11 took its number first but commits after 12.
        assert_eq!(seqs(&r.take(vec![event(12)], t0)), [12]);
        assert_eq!(r.floor, 10);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(seqs(&r.take(vec![event(11), event(12)], later)), [11]);
        assert_eq!(r.floor, 12);
    }

    #[test]
    fn a_gap_that_never_fills_is_passed_after_a_while() {
        let t0 = Instant::now();
        let mut r = Reader::new(10);
        r.take(vec![event(12), event(13)], t0);
        assert_eq!(r.floor, 10);
        r.take(vec![event(12), event(13)], t0 + Duration::from_secs(1));
        assert_eq!(r.floor, 10);
        r.take(vec![event(12), event(13)], t0 + GAP_WAIT);
        assert_eq!(r.floor, 13);
        assert!(r.seen.is_empty());
    }
}
