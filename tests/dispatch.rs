//! Recovery after a crash: nothing accepted is lost, and nothing that may have gone out is sent
//! again blindly. Runs on SQLite, or PostgreSQL with `PREGONERO_TEST_POSTGRES_URL`.

mod common;

use pregonero::dispatch::journal::{self, Ledger};
use pregonero::domain::{Channel, Encoding};
use pregonero::store::{
    InsertOutcome, MessageWriter, NewMessage, Progress, REVIEW_NOTE, ReportEffect, Store,
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
    let first = store.claim_next("modem-1").await.unwrap().unwrap();
    assert!(store.start_sending(first.id).await.unwrap());
    store
        .part_handed(first.id, (1, 1), "modem-1", &first.to)
        .await
        .unwrap();
    let second = store.claim_next("modem-1").await.unwrap().unwrap();
    assert_ne!(first.id, second.id);
    // 4: handed to another node's modem, which is still sending it.
    let other = store.claim_next("other-node-1").await.unwrap().unwrap();
    assert!(store.start_sending(other.id).await.unwrap());
    store
        .part_handed(other.id, (1, 1), "other-node-1", &other.to)
        .await
        .unwrap();

    let recovered = store
        .recover_interrupted(&["modem-1".to_owned()])
        .await
        .unwrap();
    assert_eq!((recovered.requeued, recovered.for_review), (1, 1));
    let other = store.message(other.id).await.unwrap().unwrap();
    assert_eq!(other.status.as_str(), "sending");
    store.part_sent(other.id, 1, 3).await.unwrap();

    let first = store.message(first.id).await.unwrap().unwrap();
    assert_eq!(first.status.as_str(), "failed");
    assert_eq!(first.error.as_deref(), Some(REVIEW_NOTE));
    let second = store.message(second.id).await.unwrap().unwrap();
    assert_eq!(second.status.as_str(), "pending");

    // Only the two that never reached the modem are claimed again.
    let mut claimed = Vec::new();
    while let Some(m) = store.claim_next("modem-1").await.unwrap() {
        claimed.push(m.id);
    }
    assert_eq!(claimed.len(), 2);
    assert!(!claimed.contains(&first.id));
}

#[tokio::test]
async fn a_message_cancelled_after_its_claim_does_not_go_out() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    writer.insert(vec![message(1)]).await.unwrap();

    let claimed = store.claim_next("modem-1").await.unwrap().unwrap();
    store.cancel_message(claimed.id).await.unwrap();
    assert!(!store.start_sending(claimed.id).await.unwrap());
}

#[tokio::test]
async fn status_reports_deliver_a_message_part_by_part() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = fresh_store(&dir).await;
    let mut two_parts = message(1);
    two_parts.segments = 2;
    writer.insert(vec![two_parts, message(2)]).await.unwrap();

    // Message 1 goes out as two segments (references 7 and 8), message 2 as one (reference 9).
    let first = store.claim_next("modem-1").await.unwrap().unwrap();
    store.start_sending(first.id).await.unwrap();
    for (part, mr) in [(1, 7), (2, 8)] {
        store
            .part_handed(first.id, (part, 2), "modem-1", &first.to)
            .await
            .unwrap();
        store.part_sent(first.id, part, mr).await.unwrap();
    }
    store.mark_sent(first.id).await.unwrap();
    let second = store.claim_next("modem-1").await.unwrap().unwrap();
    store.start_sending(second.id).await.unwrap();
    store
        .part_handed(second.id, (1, 1), "modem-1", &second.to)
        .await
        .unwrap();
    store.part_sent(second.id, 1, 9).await.unwrap();
    store.mark_sent(second.id).await.unwrap();

    use pregonero::store::ReportEffect;
    let to = first.to.clone();
    assert_eq!(
        store
            .apply_report("modem-1", 7, &to, Some(true), 0)
            .await
            .unwrap(),
        ReportEffect::Part {
            message_id: first.id
        }
    );
    assert_eq!(
        store
            .message(first.id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "sent"
    );
    assert_eq!(
        store
            .apply_report("modem-1", 8, &to, Some(true), 0)
            .await
            .unwrap(),
        ReportEffect::Delivered {
            message_id: first.id
        }
    );
    let first = store.message(first.id).await.unwrap().unwrap();
    assert_eq!(first.status.as_str(), "delivered");
    assert!(first.delivered_at.is_some());

    // A report of failure fails the message; one for an unknown reference changes nothing.
    assert_eq!(
        store
            .apply_report("modem-1", 9, &to, Some(false), 0x41)
            .await
            .unwrap(),
        ReportEffect::Failed {
            message_id: second.id
        }
    );
    let second = store.message(second.id).await.unwrap().unwrap();
    assert_eq!(second.status.as_str(), "failed");
    assert!(second.error.unwrap().contains("0x41"));
    assert_eq!(
        store
            .apply_report("modem-1", 99, &to, Some(true), 0)
            .await
            .unwrap(),
        ReportEffect::Unmatched
    );
    assert_eq!(
        store
            .apply_report("modem-2", 7, &to, Some(true), 0)
            .await
            .unwrap(),
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
        Progress::Handed {
            message: first,
            part: 1,
            total: 1,
            recipient: "+59171234567".into(),
            at: 10,
        },
        Progress::Accepted {
            message: first,
            part: 1,
            mr: 4,
            last: true,
            at: 11,
        },
        Progress::Handed {
            message: second,
            part: 1,
            total: 1,
            recipient: "+59171234567".into(),
            at: 12,
        },
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
    let effect = store
        .apply_report("modem-1", 4, "+59171234567", Some(true), 0)
        .await
        .unwrap();
    assert_eq!(effect, ReportEffect::Delivered { message_id: first });
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
    let handed = Progress::Handed {
        message: on_air,
        part: 1,
        total: 1,
        recipient: "+59171234567".into(),
        at: 10,
    };
    ledger.write(handed, true).unwrap();
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
