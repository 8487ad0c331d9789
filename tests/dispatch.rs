//! Recovery after a crash: nothing accepted is lost, and nothing that may have gone out is sent
//! again blindly. Runs on SQLite, or PostgreSQL with `PREGONERO_TEST_POSTGRES_URL`.

mod common;

use pregonero::dispatch::journal::{self, Ledger};
use pregonero::domain::{Channel, Encoding};
use pregonero::store::{
    Cancel, InsertOutcome, MessageWriter, NewMessage, Progress, REVIEW_NOTE, Report, ReportEffect,
    Store, now_ms,
};

fn message(n: u32) -> NewMessage {
    NewMessage {
        client_ref: format!("r-{n}"),
        to: "+59171234567".into(),
        text: format!("mensaje {n}"),
        encoding: Encoding::Gsm7,
        segments: 1,
        load_id: None,
        channel: Channel::Api,
        created_by: "test".into(),
        send_at: None,
    }
}

/// A migrated database of its own (in `dir` on SQLite) and its message writer.
async fn fresh_store(dir: &tempfile::TempDir) -> (Store, MessageWriter) {
    let url = common::fresh_database_url(dir.path()).await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let writer = MessageWriter::spawn(store.clone());
    (store, writer)
}

fn handed(message: i64, part: i64, total: i64) -> Progress {
    Progress::Handed {
        message,
        part,
        total,
        recipient: "+59171234567".into(),
        at: now_ms(),
    }
}

fn accepted(message: i64, part: i64, mr: u8, last: bool) -> Progress {
    Progress::Accepted {
        message,
        part,
        mr,
        last,
        at: now_ms(),
    }
}

/// Applies one status report from `modem_id` to the number of [`message`].
async fn report(
    store: &Store,
    modem_id: &str,
    mr: u8,
    delivered: bool,
    status: u8,
) -> ReportEffect {
    let report = Report {
        modem_id: modem_id.to_owned(),
        mr,
        recipient: "+59171234567".into(),
        delivered: Some(delivered),
        status,
    };
    store.apply_reports(&[report]).await.unwrap().remove(0)
}

/// Claims one message for `modem_id`.
async fn claim_one(store: &Store, modem_id: &str) -> Option<i64> {
    let claimed = store.claim_for_sending(modem_id, 1).await.unwrap();
    claimed.first().map(|(m, _)| m.id)
}

#[tokio::test]
async fn a_segment_in_doubt_is_held_for_review_and_the_rest_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    let stored = writer
        .insert(vec![message(1), message(2), message(3), message(4)])
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|o| matches!(o, InsertOutcome::Created(_)))
    );

    // 1: handed to the modem, no +CMGS yet. 2: claimed only. 3: untouched.
    let first = claim_one(&store, "modem-1").await.unwrap();
    store
        .record_progress("modem-1", &[handed(first, 1, 1)])
        .await
        .unwrap();
    let second = claim_one(&store, "modem-1").await.unwrap();
    assert_ne!(first, second);
    // 4: handed to another node's modem, which is still sending it.
    let other = claim_one(&store, "other-node-1").await.unwrap();
    store
        .record_progress("other-node-1", &[handed(other, 1, 1)])
        .await
        .unwrap();

    let recovered = store
        .recover_interrupted(&["modem-1".to_owned()])
        .await
        .unwrap();
    assert_eq!((recovered.requeued, recovered.for_review), (1, 1));
    let status = |id| {
        let store = store.clone();
        async move { store.message(id).await.unwrap().unwrap() }
    };
    assert_eq!(status(other).await.status.as_str(), "sending");
    let first_now = status(first).await;
    assert_eq!(first_now.status.as_str(), "failed");
    assert_eq!(first_now.error.as_deref(), Some(REVIEW_NOTE));
    assert_eq!(status(second).await.status.as_str(), "pending");

    // Only the two that never reached the modem are claimed again.
    let claimed: Vec<i64> = store
        .claim_for_sending("modem-1", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(m, _)| m.id)
        .collect();
    assert_eq!(claimed.len(), 2);
    assert!(!claimed.contains(&first));
}

#[tokio::test]
async fn a_cancelled_message_is_not_claimed_and_a_claimed_one_is_not_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    let stored = writer.insert(vec![message(1), message(2)]).await.unwrap();
    let ids: Vec<i64> = stored
        .iter()
        .map(|o| match o {
            InsertOutcome::Created(m) => m.id,
            other => panic!("not stored: {other:?}"),
        })
        .collect();

    let cancelled = store.cancel_message(ids[0]).await.unwrap();
    assert!(matches!(cancelled, Cancel::Cancelled(_)));
    assert_eq!(claim_one(&store, "modem-1").await, Some(ids[1]));
    let too_late = store.cancel_message(ids[1]).await.unwrap();
    assert!(matches!(too_late, Cancel::TooLate(_)));
    assert_eq!(claim_one(&store, "modem-1").await, None);
}

#[tokio::test]
async fn status_reports_deliver_a_message_part_by_part() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    let mut two_parts = message(1);
    two_parts.segments = 2;
    writer.insert(vec![two_parts, message(2)]).await.unwrap();

    // Message 1 goes out as two segments (references 7 and 8), message 2 as one (reference 9).
    let first = claim_one(&store, "modem-1").await.unwrap();
    let second = claim_one(&store, "modem-1").await.unwrap();
    let steps = [
        handed(first, 1, 2),
        accepted(first, 1, 7, false),
        handed(first, 2, 2),
        accepted(first, 2, 8, true),
        handed(second, 1, 1),
        accepted(second, 1, 9, true),
    ];
    store.record_progress("modem-1", &steps).await.unwrap();

    let status = |id| {
        let store = store.clone();
        async move { store.message(id).await.unwrap().unwrap() }
    };
    assert_eq!(status(first).await.status.as_str(), "sent");
    assert_eq!(
        report(&store, "modem-1", 7, true, 0).await,
        ReportEffect::Part { message_id: first }
    );
    assert_eq!(status(first).await.status.as_str(), "sent");
    assert_eq!(
        report(&store, "modem-1", 8, true, 0).await,
        ReportEffect::Delivered { message_id: first }
    );
    let delivered = status(first).await;
    assert_eq!(delivered.status.as_str(), "delivered");
    assert!(delivered.delivered_at.is_some());

    // A report of failure fails the message; one for an unknown reference changes nothing.
    assert_eq!(
        report(&store, "modem-1", 9, false, 0x41).await,
        ReportEffect::Failed { message_id: second }
    );
    let failed = status(second).await;
    assert_eq!(failed.status.as_str(), "failed");
    assert!(failed.error.unwrap().contains("0x41"));
    assert_eq!(
        report(&store, "modem-1", 99, true, 0).await,
        ReportEffect::Unmatched
    );
    assert_eq!(
        report(&store, "modem-2", 7, true, 0).await,
        ReportEffect::Unmatched
    );
}

#[tokio::test]
async fn journalled_steps_applied_twice_count_and_send_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    writer.insert(vec![message(1), message(2)]).await.unwrap();
    let claimed = store.claim_for_sending("modem-1", 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|(_, done)| done.is_empty()));
    let (first, second) = (claimed[0].0.id, claimed[1].0.id);

    let steps = [
        handed(first, 1, 1),
        accepted(first, 1, 4, true),
        handed(second, 1, 1),
        Progress::Refused {
            message: second,
            part: 1,
        },
        Progress::Retry {
            message: second,
            due: 99,
            reason: "+CMS ERROR 42".into(),
            at: 13,
        },
    ];
    // A replay after a crash between the commit and emptying the journal applies them again.
    store.record_progress("modem-1", &steps).await.unwrap();
    store.record_progress("modem-1", &steps).await.unwrap();

    let sent = store.message(first).await.unwrap().unwrap();
    assert_eq!(sent.status.as_str(), "sent");
    assert_eq!(sent.attempts, 1);
    let retried = store.message(second).await.unwrap().unwrap();
    assert_eq!(retried.status.as_str(), "pending");
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.scheduled_for, 99);
    let counters = store
        .segment_counters(&["modem-1".to_owned()])
        .await
        .unwrap();
    assert_eq!(counters[0].segments, 1);

    // The report for the sent segment finds it by its reference.
    assert_eq!(
        report(&store, "modem-1", 4, true, 0).await,
        ReportEffect::Delivered { message_id: first }
    );
}

#[tokio::test]
async fn a_segment_only_the_journal_knows_of_is_held_for_review_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    writer.insert(vec![message(1), message(2)]).await.unwrap();
    let claimed = store.claim_for_sending("modem-1", 2).await.unwrap();
    let (on_air, next) = (claimed[0].0.id, claimed[1].0.id);

    // The journal got the segment's entry; the process died before the database did. (The
    // entry is applied to a scratch database here, so the real one never hears of it.)
    let journal = dir.path().join("journal");
    let scratch = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("scratch.db").display()
    ))
    .await
    .unwrap();
    scratch.migrate().await.unwrap();
    let ledger = Ledger::open(&journal, scratch, "modem-1").unwrap();
    ledger.write(handed(on_air, 1, 1), true).unwrap();
    ledger.settled().await;
    drop(ledger);

    let replayed = journal::replay(&store, &journal).await.unwrap();
    assert_eq!(replayed.steps, 1);
    assert_eq!(replayed.modems, ["modem-1"]);
    let recovered = store
        .recover_interrupted(&["modem-1".to_owned()])
        .await
        .unwrap();
    assert_eq!((recovered.for_review, recovered.requeued), (1, 1));
    let held = store.message(on_air).await.unwrap().unwrap();
    assert_eq!(held.error.as_deref(), Some(REVIEW_NOTE));
    let requeued = store.message(next).await.unwrap().unwrap();
    assert_eq!(requeued.status.as_str(), "pending");
    // A replayed journal is empty afterwards.
    assert_eq!(journal::replay(&store, &journal).await.unwrap().steps, 0);
}

#[tokio::test]
async fn a_message_accepted_after_its_number_opted_out_is_never_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    // Another node put the number on the list; this one had not heard of it yet and took a
    // message to it.
    store
        .suppress("+59171234567", None, "other-node")
        .await
        .unwrap();
    let id = match writer.insert(vec![message(1)]).await.unwrap().remove(0) {
        InsertOutcome::Created(m) => m.id,
        other => panic!("{other:?}"),
    };
    assert_eq!(claim_one(&store, "modem-1").await, None);

    assert_eq!(store.cancel_suppressed().await.unwrap(), 1);
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!(m.status.as_str(), "cancelled");
    assert_eq!(m.error.as_deref(), Some(pregonero::store::OPTED_OUT));

    // Off the list, new messages to it go out again.
    assert!(store.unsuppress("+59171234567").await.unwrap());
    writer.insert(vec![message(2)]).await.unwrap();
    assert!(claim_one(&store, "modem-1").await.is_some());
}
