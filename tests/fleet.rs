//! The dispatcher end to end: the store (SQLite, or PostgreSQL with
//! `PREGONERO_TEST_POSTGRES_URL`), the fleet with its workers and modem actors, and simulated
//! modems that refuse chosen numbers, as the service wires them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{Timelike, Utc};
use pregonero::dispatch::fleet::Fleet;
use pregonero::dispatch::{SendingControl, SendingSettings};
use pregonero::domain::{Channel, Encoding, MessageStatus, Region, SendingWindow};
use pregonero::eventlog::EventLog;
use pregonero::modem::simulated::SimulatedModem;
use pregonero::modem::simulator::SimConfig;
use pregonero::modem::transport::PortSettings;
use pregonero::store::{InsertOutcome, MessageRecord, MessageWriter, NewMessage, Store, now_ms};
use tempfile::TempDir;

/// A refused number: +CMS ERROR 21, "short message transfer rejected", which no retry mends.
const REJECTED: &str = "+59170000021";
/// A number the network is too busy for: +CMS ERROR 42, congestion, which passes.
const CONGESTED: &str = "+59170000042";

struct Node {
    store: Store,
    writer: MessageWriter,
    control: Arc<SendingControl>,
    fleet: Fleet,
    _dir: TempDir,
}

/// A node with `modems` simulated modems, sending stopped, inside an always-open window.
async fn node(modems: usize) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&common::fresh_database_url(dir.path()).await)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let writer = MessageWriter::spawn(store.clone());
    let window = SendingWindow::parse("00:00", "24:00", chrono_tz::UTC).unwrap();
    let control = Arc::new(SendingControl::new(false, window));
    let events = Arc::new(EventLog::open(&dir.path().join("logs"), chrono_tz::UTC).unwrap());
    let sim = SimConfig {
        segment_time_ms: 20,
        report_delay_ms: 10,
        failing_numbers: [(REJECTED.to_owned(), 21), (CONGESTED.to_owned(), 42)].into(),
        ..SimConfig::default()
    };
    let ids = (1..=modems).map(|n| (format!("modem-{n}"), PortSettings::new("sim")));
    let fleet = Fleet::new(
        store.clone(),
        control.clone(),
        events,
        Region::parse("BO").unwrap(),
        sim,
        dir.path().join("journal"),
        ids.collect(),
    );
    fleet.start().await.unwrap();
    for _ in 0..250 {
        if fleet.list().iter().all(|m| m.ready) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fleet.list().iter().all(|m| m.ready), "modems not ready");
    Node {
        store,
        writer,
        control,
        fleet,
        _dir: dir,
    }
}

impl Node {
    /// Stores one single-segment message to each number, in order, and returns their ids.
    async fn submit(&self, numbers: &[&str]) -> Vec<i64> {
        let batch = numbers
            .iter()
            .enumerate()
            .map(|(n, to)| NewMessage {
                client_ref: format!("{}-{n}", now_ms()),
                to: (*to).to_owned(),
                text: format!("Recordatorio {n}"),
                encoding: Encoding::Gsm7,
                segments: 1,
                load_id: None,
                channel: Channel::Api,
                created_by: "test".into(),
                send_at: None,
            })
            .collect();
        let outcomes = self.writer.insert(batch).await.unwrap();
        outcomes
            .into_iter()
            .map(|o| match o {
                InsertOutcome::Created(m) => m.id,
                other => panic!("not stored: {other:?}"),
            })
            .collect()
    }

    async fn message(&self, id: i64) -> MessageRecord {
        self.store.message(id).await.unwrap().unwrap()
    }

    /// Waits until message `id` is no longer on its way, or fails after ten seconds.
    async fn settled(&self, id: i64, done: impl Fn(&MessageRecord) -> bool) -> MessageRecord {
        for _ in 0..500 {
            let message = self.message(id).await;
            if done(&message) {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("message {id} never settled: {:?}", self.message(id).await);
    }

    async fn simulator(&self, id: &str) -> SimulatedModem {
        self.fleet.simulator(id).await.unwrap()
    }
}

fn status_is(status: MessageStatus) -> impl Fn(&MessageRecord) -> bool {
    move |m| m.status == status
}

#[tokio::test]
async fn a_refused_number_fails_at_once_and_the_queue_goes_on() {
    let node = node(1).await;
    let ids = node.submit(&[REJECTED, "+59171234567"]).await;
    node.control.set_started(true);

    let refused = node.settled(ids[0], status_is(MessageStatus::Failed)).await;
    assert_eq!(refused.attempts, 1);
    let reason = refused.error.unwrap();
    assert!(reason.contains("21"), "{reason}");
    assert!(!reason.starts_with("review"), "{reason}");
    node.settled(ids[1], status_is(MessageStatus::Delivered))
        .await;

    // Only the second went out, and only it is counted against the prepaid line.
    let sim = node.simulator("modem-1").await;
    assert_eq!(sim.with_simulator(|s, _| s.sent().len()), 1);
    let counters = node
        .store
        .segment_counters(&["modem-1".to_owned()])
        .await
        .unwrap();
    assert_eq!(counters[0].segments, 1);
}

#[tokio::test]
async fn a_passing_error_puts_the_message_back_for_later() {
    let node = node(1).await;
    let before = now_ms();
    let ids = node.submit(&[CONGESTED]).await;
    node.control.set_started(true);

    let retried = node
        .settled(ids[0], |m| {
            m.status == MessageStatus::Pending && m.attempts == 1
        })
        .await;
    let reason = retried.error.unwrap();
    assert!(reason.contains("42"), "{reason}");
    // Back-off: due again no sooner than thirty seconds on.
    assert!(retried.scheduled_for >= before + 30_000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.message(ids[0]).await.attempts, 1, "retried too soon");
}

#[tokio::test]
async fn two_modems_share_the_queue_and_send_nothing_twice() {
    let node = node(2).await;
    let numbers: Vec<String> = (0..40).map(|n| format!("+591712{n:05}")).collect();
    let ids = node
        .submit(&numbers.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    node.control.set_started(true);
    for id in &ids {
        node.settled(*id, status_is(MessageStatus::Delivered)).await;
    }

    let mut recipients = Vec::new();
    let mut per_modem = Vec::new();
    for id in ["modem-1", "modem-2"] {
        let sent = node
            .simulator(id)
            .await
            .with_simulator(|s, _| s.sent().to_vec());
        per_modem.push(sent.len());
        recipients.extend(sent.into_iter().map(|(to, _)| to));
    }
    assert!(
        per_modem.iter().all(|n| *n > 5),
        "one modem idled: {per_modem:?}"
    );
    recipients.sort();
    recipients.dedup();
    assert_eq!(
        recipients.len(),
        40,
        "a message went out twice or not at all"
    );
    assert_eq!(per_modem.iter().sum::<usize>(), 40);
}

#[tokio::test]
async fn nothing_goes_out_while_the_window_is_closed() {
    let node = node(1).await;
    // A one-hour window that opens two hours from now: closed for the whole test.
    let hour = (Utc::now().hour() + 2) % 24;
    let closed = SendingWindow::parse(
        &format!("{hour:02}:00"),
        &format!("{:02}:00", (hour + 1) % 24),
        chrono_tz::UTC,
    )
    .unwrap();
    let settings = |window| SendingSettings {
        window,
        auto_start: false,
        signature: String::new(),
    };
    node.control.configure(settings(closed));
    node.control.set_started(true);
    let ids = node.submit(&["+59171234567"]).await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node.message(ids[0]).await.status, MessageStatus::Pending);

    // The window opens: the message that waited goes out.
    let open = SendingWindow::parse("00:00", "24:00", chrono_tz::UTC).unwrap();
    node.control.configure(settings(open));
    node.settled(ids[0], status_is(MessageStatus::Delivered))
        .await;
}

#[tokio::test]
async fn a_stop_gives_messages_claimed_ahead_back_to_the_queue() {
    let node = node(1).await;
    let numbers: Vec<String> = (0..10).map(|n| format!("+5917123{n:04}")).collect();
    let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let ids = node.submit(&numbers).await;
    node.control.set_started(true);
    // While the first is on the air the worker claims the second.
    node.settled(ids[1], |m| m.status != MessageStatus::Pending)
        .await;
    node.control.set_started(false);

    // Nothing is left `sending` once the segment on the air is answered: the one claimed
    // ahead is pending again, the rest never left the queue.
    let mut statuses = Vec::new();
    for _ in 0..250 {
        statuses.clear();
        for id in &ids {
            statuses.push(node.message(*id).await.status);
        }
        if !statuses.contains(&MessageStatus::Sending) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!statuses.contains(&MessageStatus::Sending), "{statuses:?}");
    let pending = statuses
        .iter()
        .filter(|s| **s == MessageStatus::Pending)
        .count();
    assert!(pending >= 7, "{statuses:?}");
    let gone = statuses.len() - pending;
    let sent = node
        .simulator("modem-1")
        .await
        .with_simulator(|s, _| s.accepted());
    assert_eq!(u64::try_from(gone).unwrap(), sent, "{statuses:?}");
}
