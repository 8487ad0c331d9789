//! The SQLite write-ahead log is restarted instead of growing without end.

use std::time::Duration;

use pregonero::domain::{Channel, Encoding};
use pregonero::store::{MessageWriter, NewMessage, Store};

fn message(n: usize) -> NewMessage {
    NewMessage {
        client_ref: format!("wal-{n}"),
        to: format!("+5917{:07}", n),
        text: format!("mensaje {n}"),
        encoding: Encoding::Gsm7,
        segments: 1,
        load_id: None,
        channel: Channel::Batch,
        created_by: "test".into(),
        send_at: None,
    }
}

async fn log_pages(store: &Store) -> i64 {
    let (_, pages, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(store.pool())
        .await
        .unwrap();
    pages
}

#[tokio::test]
async fn the_log_restarts_once_writing_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wal.db").display());
    let store = Store::connect(&url)
        .await
        .unwrap()
        .with_wal_restart_pages(64);
    store.migrate().await.unwrap();
    store.spawn_checkpointer();
    let writer = MessageWriter::spawn(store.clone());

    // Many small groups, each a commit that appends pages to the log.
    for group in 0..200 {
        let messages = (0..20).map(|i| message(group * 20 + i)).collect();
        writer.insert(messages).await.unwrap();
    }
    let written = log_pages(&store).await;

    // After a quiet second the checkpointer restarts the log: the next commit writes from its
    // beginning, so the log then holds only that commit's pages.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    writer.insert(vec![message(4_000)]).await.unwrap();
    let after_pause = log_pages(&store).await;
    assert!(
        after_pause < 64 && after_pause < written,
        "log had {written} pages after writing and {after_pause} after a pause"
    );

    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 4_001);
}
