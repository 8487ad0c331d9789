//! Delivering events to webhooks. A fan-out task turns new events into deliveries; each webhook
//! has a task of its own that claims its due deliveries and posts them, a few at a time, so a
//! slow or dead receiver holds up only itself; a recorder writes the attempts in batches.
//!
//! Each POST carries the event as JSON and three headers: `Pregonero-Event-Id`,
//! `Pregonero-Timestamp` (Unix seconds) and `Pregonero-Signature: v1=<hex>`, the HMAC-SHA256 of
//! `<timestamp>.<body>` under the webhook's secret.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{Notify, mpsc};

use crate::store::{AttemptRecord, Attempted, DueDelivery, Next, Store, WebhookRecord, now_ms};

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long deliveries are retried before they are dead-lettered.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// POSTs in flight to one webhook at most.
const IN_FLIGHT: usize = 16;

/// How long a claimed delivery is kept from other claims: the timeout and then some.
const LEASE_MS: i64 = 60_000;

/// How often the tasks look for work when nothing woke them.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// Attempts recorded in one transaction at most.
const RECORD_BATCH: usize = 500;

/// The most of a receiver's answer kept with an attempt.
const EXCERPT: usize = 300;

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(3 + bytes.len() * 2);
    hex.push_str("v1=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The body a delivery posts.
pub fn body(delivery: &DueDelivery) -> String {
    let data: serde_json::Value =
        serde_json::from_str(&delivery.event.payload).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": delivery.event.id,
        "type": delivery.event.kind,
        "at": chrono::DateTime::from_timestamp_millis(delivery.event.at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "data": data,
    })
    .to_string()
}

/// The wait before attempt `attempts + 1`: `first_ms` doubling to at most an hour, with up to a
/// fifth either way of jitter so that receivers coming back are not hit by every retry at once.
pub fn backoff_ms(first_ms: i64, attempts: i64, jitter: f64) -> i64 {
    let base = first_ms
        .saturating_mul(1_i64 << attempts.clamp(0, 20))
        .min(3_600_000);
    let spread = (base as f64 * 0.2 * (jitter.clamp(0.0, 1.0) * 2.0 - 1.0)) as i64;
    base + spread
}

/// Starts the fan-out, the recorder and the supervisor of the webhooks' tasks.
pub fn spawn(store: Store, retry_ms: u64) -> tokio::task::JoinHandle<()> {
    let retry_ms = i64::try_from(retry_ms).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pregonero/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(err) => {
                tracing::error!(error = %err, "webhook client not built; no webhook will be sent");
                return;
            }
        };
        let (record, outcomes) = mpsc::channel(4 * RECORD_BATCH);
        let wake = Arc::new(Notify::new());
        tokio::spawn(fan_out(store.clone(), wake.clone()));
        tokio::spawn(recorder(store.clone(), outcomes));
        supervise(store, client, record, wake, retry_ms).await;
    })
}

async fn fan_out(store: Store, wake: Arc<Notify>) {
    loop {
        match store.fan_out(1_000).await {
            Ok(0) => tokio::time::sleep(LOOK_EVERY).await,
            Ok(_) => wake.notify_waiters(),
            Err(err) => {
                tracing::warn!(error = %err, "events not fanned out; will retry");
                tokio::time::sleep(LOOK_EVERY).await;
            }
        }
    }
}

async fn recorder(store: Store, mut outcomes: mpsc::Receiver<Attempted>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        // A failed write leaves the deliveries leased; they come back when the lease ends.
        if let Err(err) = store.record_attempts(&batch).await {
            tracing::error!(error = %err, attempts = batch.len(), "webhook attempts not recorded");
        }
        batch.clear();
    }
}

/// Keeps one task a webhook, starting and stopping them as webhooks come and go.
async fn supervise(
    store: Store,
    client: reqwest::Client,
    record: mpsc::Sender<Attempted>,
    wake: Arc<Notify>,
    retry_ms: i64,
) {
    let mut tasks: HashMap<String, (WebhookRecord, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        match store.webhooks().await {
            Ok(hooks) => {
                let wanted: HashMap<String, WebhookRecord> = hooks
                    .into_iter()
                    .filter(|h| h.enabled)
                    .map(|h| (h.id.clone(), h))
                    .collect();
                tasks.retain(|id, (hook, task)| {
                    let keep = wanted.get(id).is_some_and(|w| w == hook) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (id, hook) in wanted {
                    if tasks.contains_key(&id) {
                        continue;
                    }
                    let task = tokio::spawn(serve(
                        store.clone(),
                        client.clone(),
                        hook.clone(),
                        record.clone(),
                        wake.clone(),
                        retry_ms,
                    ));
                    tasks.insert(id, (hook, task));
                }
            }
            Err(err) => tracing::warn!(error = %err, "webhooks not read; will retry"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One webhook's deliveries: claim what is due, post it, a few at a time.
async fn serve(
    store: Store,
    client: reqwest::Client,
    hook: WebhookRecord,
    record: mpsc::Sender<Attempted>,
    wake: Arc<Notify>,
    retry_ms: i64,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    loop {
        let free = slots.available_permits();
        let due = if free == 0 {
            Vec::new()
        } else {
            match store
                .claim_deliveries(&hook.id, free as u32, LEASE_MS)
                .await
            {
                Ok(due) => due,
                Err(err) => {
                    tracing::warn!(webhook.id = %hook.id, error = %err, "deliveries not claimed");
                    Vec::new()
                }
            }
        };
        if due.is_empty() {
            let _ = tokio::time::timeout(LOOK_EVERY, wake.notified()).await;
            continue;
        }
        for delivery in due {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (client, hook, record) = (client.clone(), hook.clone(), record.clone());
            tokio::spawn(async move {
                let outcome = attempt(&client, &hook, &delivery, retry_ms).await;
                drop(permit);
                let _ = record.send(outcome).await;
            });
        }
    }
}

async fn attempt(
    client: &reqwest::Client,
    hook: &WebhookRecord,
    delivery: &DueDelivery,
    retry_ms: i64,
) -> Attempted {
    let body = body(delivery);
    let at = now_ms();
    let timestamp = at / 1000;
    let started = Instant::now();
    let sent = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("pregonero-event-id", &delivery.event.id)
        .header("pregonero-timestamp", timestamp.to_string())
        .header(
            "pregonero-signature",
            signature(&hook.secret, timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    let (status_code, error, excerpt) = match sent {
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            let excerpt: String = text.chars().take(EXCERPT).collect();
            let error = (!status.is_success()).then(|| format!("the receiver answered {status}"));
            (Some(i64::from(status.as_u16())), error, Some(excerpt))
        }
        Err(err) if err.is_timeout() => (
            None,
            Some(format!("no answer within {} s", TIMEOUT.as_secs())),
            None,
        ),
        Err(err) if err.is_connect() => (None, Some("the receiver cannot be reached".into()), None),
        Err(err) => (None, Some(format!("the request failed: {err}")), None),
    };
    let attempt_no = delivery.attempts + 1;
    let next = if error.is_none() {
        Next::Delivered
    } else if at - delivery.created_at >= GIVE_UP_AFTER_MS {
        Next::Dead
    } else {
        Next::RetryAt(at + backoff_ms(retry_ms, delivery.attempts, jitter()))
    };
    if matches!(next, Next::Dead) {
        tracing::warn!(webhook.id = %hook.id, delivery.id = delivery.id, "webhook delivery dead");
    }
    Attempted {
        delivery_id: delivery.id,
        attempt: AttemptRecord {
            attempt: attempt_no,
            at,
            status_code,
            error,
            excerpt,
            duration_ms: started.elapsed().as_millis() as i64,
        },
        next,
    }
}

/// A number in [0, 1) from the clock's nanoseconds: enough to spread retries.
fn jitter() -> f64 {
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
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // The expected value is Python's hmac.new(b"secreto", b'1796385600.{"id":"evt_1"}',
        // hashlib.sha256).hexdigest().
        let sig = signature("secreto", 1_796_385_600, r#"{"id":"evt_1"}"#);
        assert_eq!(
            sig,
            "v1=3e3208a9f3e6d2c11c6172cf86f15b042c7332484bdd0bb834940d7bad2dee44"
        );
        assert_ne!(sig, signature("otro", 1_796_385_600, r#"{"id":"evt_1"}"#));
        assert_ne!(
            sig,
            signature("secreto", 1_796_385_601, r#"{"id":"evt_1"}"#)
        );
    }

    #[test]
    fn backoff_doubles_to_an_hour_with_bounded_jitter() {
        assert_eq!(backoff_ms(5_000, 0, 0.5), 5_000);
        assert_eq!(backoff_ms(5_000, 1, 0.5), 10_000);
        assert_eq!(backoff_ms(5_000, 20, 0.5), 3_600_000);
        assert_eq!(backoff_ms(5_000, 0, 0.0), 4_000);
        assert_eq!(backoff_ms(5_000, 0, 1.0), 6_000);
    }
}
