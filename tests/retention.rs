//! Retention: old events, finished deliveries and mails go; anything still pending, and the
//! events it carries, stay. Runs on SQLite, or PostgreSQL with `PREGONERO_TEST_POSTGRES_URL`.

mod common;

use pregonero::store::{Store, now_ms};
use serde_json::json;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[tokio::test]
async fn old_finished_notifications_go_and_pending_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&common::fresh_database_url(dir.path()).await)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let hook = store
        .create_webhook(
            "http://127.0.0.1:9/x",
            &["*".into()],
            "0123456789abcdef",
            true,
            "t",
        )
        .await
        .unwrap();
    let delivered = store
        .record_event("sms.received", &json!({"n": 1}))
        .await
        .unwrap();
    let waiting = store
        .record_event("sms.received", &json!({"n": 2}))
        .await
        .unwrap();
    let recent = store
        .record_event("sms.received", &json!({"n": 3}))
        .await
        .unwrap();
    assert_eq!(store.fan_out(100).await.unwrap(), 3);
    let seqs: Vec<i64> = store
        .events_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    store.queue_mails(&seqs, &[]).await.unwrap();

    // Forty days pass for the first two; the first one's delivery was made, the second's not.
    let old = 40 * DAY_MS;
    for id in [&delivered, &waiting] {
        sqlx::query("UPDATE events SET at = at - $1 WHERE id = $2")
            .bind(old)
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query(
            "UPDATE webhook_deliveries SET created_at = created_at - $1 \
             WHERE event_seq = (SELECT seq FROM events WHERE id = $2)",
        )
        .bind(old)
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'delivered' \
         WHERE event_seq = (SELECT seq FROM events WHERE id = $1)",
    )
    .bind(&delivered)
    .execute(store.pool())
    .await
    .unwrap();

    // Rounds of one row at a time still get through everything.
    let gone = store
        .prune_notifications(now_ms() - 30 * DAY_MS, 1)
        .await
        .unwrap();
    assert_eq!(gone, 1);
    let left: Vec<String> = store
        .events_after(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, [waiting, recent]);
    let deliveries = store.deliveries(&hook.id, 10).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d.event_id != delivered));
}
