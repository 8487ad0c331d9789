//! Telling people and systems what happened. Every event is stored with the change it tells of
//! (see [`crate::store::EventRecord`]); from there it goes out three ways: signed POSTs to
//! webhooks ([`webhooks`]), the live stream of Server-Sent Events ([`feed`]), and mail through
//! the organisation's SMTP server ([`mail`], with the texts in [`texts`] and the server in
//! [`email`]).

pub mod email;
pub mod feed;
pub mod mail;
pub mod texts;
pub mod webhooks;

use crate::store::EventRecord;

/// The event types there are, which webhooks, mail rules and streams may ask for by name.
pub const EVENT_TYPES: [&str; 11] = [
    "message.sent",
    "message.delivered",
    "message.failed",
    "sms.received",
    "call.received",
    "load.finished",
    "loads.summary",
    "balance.checked",
    "balance.low",
    "modem.connected",
    "modem.lost",
];

/// An event as webhooks and the live stream carry it: `{"id", "type", "at", "data"}`, the time
/// in UTC with milliseconds.
pub fn event_json(event: &EventRecord) -> String {
    let data: serde_json::Value =
        serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": event.id,
        "type": event.kind,
        "at": chrono::DateTime::from_timestamp_millis(event.at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "data": data,
    })
    .to_string()
}

/// How long a notifier that found nothing new waits before it looks again, unless this process
/// writes something first: what other nodes sharing the database record reaches it this much
/// later at most.
const LOOK_AT_OTHER_NODES: std::time::Duration = std::time::Duration::from_secs(1);

/// The least time between two looks, however often the database is written: under load the
/// notifiers ask at most this often.
const MIN_LOOK_GAP: std::time::Duration = std::time::Duration::from_millis(20);

/// Waits for the next look of a notifier that found nothing: until this process writes (or
/// `LOOK_AT_OTHER_NODES` passes), and at least `MIN_LOOK_GAP`.
pub(crate) async fn wait_for_writes(writes: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::sleep(MIN_LOOK_GAP).await;
    let _ = tokio::time::timeout(LOOK_AT_OTHER_NODES, writes.changed()).await;
}

/// How often old events, deliveries and mails are looked for.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes, every hour, the events, finished deliveries and mails older than `days` (none
/// when `days` is 0), until the task is dropped. Every node may do it; it is the same delete.
pub fn spawn_pruning(store: crate::store::Store, days: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if days == 0 {
            return;
        }
        let keep_ms = i64::from(days) * 24 * 60 * 60 * 1000;
        loop {
            match store
                .prune_notifications(crate::store::now_ms() - keep_ms, 5_000)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, days, "old events deleted"),
                Err(err) => tracing::warn!(error = %err, "old events not deleted"),
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    })
}

/// A task that is stopped when this is dropped: the helpers of a notifier's task stop with it.
pub(crate) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The wait after `attempts` failures: `first_ms` doubling up to `cap_ms`, with up to a fifth
/// either way of jitter (`jitter` in [0, 1)), so that a receiver or a mail server coming back is
/// not met by every retry at once.
pub fn backoff_ms(first_ms: i64, attempts: i64, cap_ms: i64, jitter: f64) -> i64 {
    let base = first_ms
        .saturating_mul(1_i64 << attempts.clamp(0, 20))
        .min(cap_ms);
    let spread = (base as f64 * 0.2 * (jitter.clamp(0.0, 1.0) * 2.0 - 1.0)) as i64;
    base + spread
}

/// A number in [0, 1) from the clock's nanoseconds: enough to spread retries.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_bounded_jitter() {
        assert_eq!(backoff_ms(5_000, 0, 3_600_000, 0.5), 5_000);
        assert_eq!(backoff_ms(5_000, 1, 3_600_000, 0.5), 10_000);
        assert_eq!(backoff_ms(5_000, 20, 3_600_000, 0.5), 3_600_000);
        assert_eq!(backoff_ms(5_000, 0, 3_600_000, 0.0), 4_000);
        assert_eq!(backoff_ms(5_000, 0, 3_600_000, 1.0), 6_000);
        assert_eq!(backoff_ms(30_000, 12, 1_800_000, 0.5), 1_800_000);
    }
}
