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
use tokio::sync::{mpsc, watch};

use crate::store::{AttemptRecord, Attempted, DueDelivery, Next, Store, WebhookRecord, now_ms};

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long deliveries are retried before they are dead-lettered.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// The longest wait between two attempts at a delivery.
const MAX_WAIT_MS: i64 = 60 * 60 * 1000;

/// POSTs in flight to one webhook at most.
const IN_FLIGHT: usize = 32;

/// How long a claimed delivery is kept from other claims: the timeout and then some.
const LEASE_MS: i64 = 60_000;

/// How often the tasks look for work when nothing woke them.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// How often deliveries older than [`GIVE_UP_AFTER_MS`] are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

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

/// Starts the fan-out, the recorder and the supervisor of the webhooks' tasks; `node` names this
/// node in its claims.
pub fn spawn(store: Store, retry_ms: u64, node: String) -> tokio::task::JoinHandle<()> {
    let node: Arc<str> = node.into();
    let retry_ms = i64::try_from(retry_ms).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let (record, outcomes) = mpsc::channel(4 * RECORD_BATCH);
        let (wake, woken) = watch::channel(0_u64);
        let _fan = super::AbortOnDrop(tokio::spawn(fan_out(store.clone(), wake)));
        let _recorder = super::AbortOnDrop(tokio::spawn(recorder(store.clone(), outcomes)));
        supervise(store, record, woken, retry_ms, node).await;
    })
}

/// The HTTP client of every webhook: no redirects followed, the timeout of [`TIMEOUT`].
fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pregonero/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Turns new events into deliveries, and tells the webhooks' tasks each time it made some.
async fn fan_out(store: Store, wake: watch::Sender<u64>) {
    let mut writes = store.watch_writes();
    loop {
        // Writes from here on wake the wait below.
        writes.borrow_and_update();
        match store.fan_out(1_000).await {
            Ok(0) => super::wait_for_writes(&mut writes).await,
            Ok(_) => wake.send_modify(|n| *n = n.wrapping_add(1)),
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
    record: mpsc::Sender<Attempted>,
    wake: watch::Receiver<u64>,
    retry_ms: i64,
    node: Arc<str>,
) {
    // Dropping an entry (or the whole map, when this task stops) stops its task.
    let mut tasks: HashMap<String, (WebhookRecord, super::AbortOnDrop)> = HashMap::new();
    let mut last_expiry: Option<Instant> = None;
    // Made when the first webhook appears: a gateway without webhooks keeps no TLS roots and
    // connection pool in memory.
    let mut client: Option<reqwest::Client> = None;
    loop {
        // Deliveries a receiver has not taken for a day are given up, attempted lately or not
        // (the breaker holds back those of a receiver that is down).
        if last_expiry.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
            last_expiry = Some(Instant::now());
            match store.expire_deliveries(now_ms() - GIVE_UP_AFTER_MS).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(deliveries = n, "webhook deliveries dead after a day"),
                Err(err) => tracing::warn!(error = %err, "old deliveries not expired"),
            }
        }
        match store.webhooks().await {
            Ok(hooks) => {
                let wanted: HashMap<String, WebhookRecord> = hooks
                    .into_iter()
                    .filter(|h| h.enabled)
                    .map(|h| (h.id.clone(), h))
                    .collect();
                tasks.retain(|id, (hook, task)| {
                    wanted.get(id).is_some_and(|w| w == hook) && !task.0.is_finished()
                });
                if !wanted.is_empty() && client.is_none() {
                    match self::client() {
                        Ok(c) => client = Some(c),
                        Err(err) => tracing::error!(error = %err, "webhook client not built"),
                    }
                }
                let Some(client) = &client else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
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
                        node.clone(),
                    ));
                    tasks.insert(id, (hook, super::AbortOnDrop(task)));
                }
            }
            Err(err) => tracing::warn!(error = %err, "webhooks not read; will retry"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One webhook's deliveries: claim what is due, post it, a few at a time, and back off from a
/// receiver that is down as a whole (see [`Breaker`]).
async fn serve(
    store: Store,
    client: reqwest::Client,
    hook: WebhookRecord,
    record: mpsc::Sender<Attempted>,
    wake: watch::Receiver<u64>,
    retry_ms: i64,
    node: Arc<str>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let breaker = Arc::new(std::sync::Mutex::new(Breaker::new(retry_ms)));
    let mut wake = wake;
    loop {
        // 1. While the receiver is taken for down, wait for the next probe.
        let (open_for, probing) = lock(&breaker).state(Instant::now());
        if let Some(wait) = open_for {
            tokio::time::sleep(wait).await;
            continue;
        }

        // 2. Wait for room, then take as much work as there is room for (one while probing).
        let Ok(first) = slots.clone().acquire_owned().await else {
            return;
        };
        // Whatever the fan-out makes from here on wakes the wait below.
        wake.borrow_and_update();
        let room = if probing {
            1
        } else {
            1 + slots.available_permits()
        };
        let due = match store
            .claim_deliveries(&hook.id, room as u32, LEASE_MS, &node)
            .await
        {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(webhook.id = %hook.id, error = %err, "deliveries not claimed");
                Vec::new()
            }
        };
        if due.is_empty() {
            drop(first);
            let _ = tokio::time::timeout(LOOK_EVERY, wake.changed()).await;
            continue;
        }

        // 3. Post each on a task of its own; the outcome goes to the recorder and the breaker.
        if probing && let Some(probe) = due.first() {
            lock(&breaker).probe_sent(probe.id);
        }
        let mut first = Some(first);
        for delivery in due {
            let permit = match first.take() {
                Some(p) => p,
                None => match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let (client, hook, record) = (client.clone(), hook.clone(), record.clone());
            let (breaker, node) = (breaker.clone(), node.clone());
            tokio::spawn(async move {
                let (outcome, down) = attempt(&client, &hook, &delivery, retry_ms, &node).await;
                lock(&breaker).outcome(delivery.id, &outcome.next, down, Instant::now());
                drop(permit);
                let _ = record.send(outcome).await;
            });
        }
    }
}

/// Failures in a row that take a receiver for down; a connection refused or a timeout does at
/// once.
const TRIP_AFTER: u32 = 3;

/// The longest pause between two probes of a receiver that is down.
const MAX_PROBE_WAIT: Duration = Duration::from_secs(300);

/// A webhook's circuit breaker. A receiver that refuses connections, does not answer, or fails
/// [`TRIP_AFTER`] times in a row is taken for down: its deliveries wait where they are, and one
/// of them goes now and then (after the first retry interval, doubling up to five minutes) as a
/// probe. The first success resumes full speed. Without it, every due delivery of a dead
/// receiver would cost an attempt and a database write on every round of retries, and compete
/// with the healthy receivers and with sending for the database.
#[derive(Debug)]
struct Breaker {
    first_wait: Duration,
    failures: u32,
    /// While down: when the next probe may go, and the wait after that one.
    down: Option<(Instant, Duration)>,
    /// The delivery sent as a probe, while its answer is awaited.
    probe_out: Option<i64>,
}

impl Breaker {
    fn new(retry_ms: i64) -> Breaker {
        Breaker {
            first_wait: Duration::from_millis(u64::try_from(retry_ms).unwrap_or(0).max(1)),
            failures: 0,
            down: None,
            probe_out: None,
        }
    }

    /// How long to wait before claiming anything (`None`: claim now), and whether the claim is
    /// a probe.
    fn state(&self, now: Instant) -> (Option<Duration>, bool) {
        match self.down {
            None => (None, false),
            Some(_) if self.probe_out.is_some() => (Some(LOOK_EVERY), true),
            Some((at, _)) if at > now => (Some(at - now), true),
            Some(_) => (None, true),
        }
    }

    fn probe_sent(&mut self, delivery: i64) {
        self.probe_out = Some(delivery);
    }

    /// Takes in the outcome of an attempt at `delivery`; `down` when it could not reach the
    /// receiver at all.
    fn outcome(&mut self, delivery: i64, next: &Next, down: bool, now: Instant) {
        if matches!(next, Next::Delivered) {
            self.failures = 0;
            self.down = None;
            self.probe_out = None;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let tripped = down || self.failures >= TRIP_AFTER;
        match self.down {
            // The probe failed: the next one waits longer. (A failure of an attempt begun before
            // the receiver was taken for down is not the probe's.)
            Some((_, wait)) if self.probe_out == Some(delivery) => {
                self.probe_out = None;
                self.down = Some((now + wait, (wait * 2).min(MAX_PROBE_WAIT)));
            }
            // Attempts that were already out when it tripped change nothing.
            Some(_) => {}
            None if tripped => {
                let wait = self.first_wait;
                self.down = Some((now + wait, (wait * 2).min(MAX_PROBE_WAIT)));
            }
            None => {}
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Posts one delivery; the outcome, and whether the receiver could not be reached at all.
async fn attempt(
    client: &reqwest::Client,
    hook: &WebhookRecord,
    delivery: &DueDelivery,
    retry_ms: i64,
    node: &str,
) -> (Attempted, bool) {
    let body = super::event_json(&delivery.event);
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
    let unreachable = sent
        .as_ref()
        .is_err_and(|err| err.is_timeout() || err.is_connect());
    let (status_code, error, excerpt) = match sent {
        Ok(mut res) => {
            let status = res.status();
            // The start of the answer is all that is kept: a receiver that sends megabytes
            // costs no more than that.
            let mut head = Vec::new();
            while head.len() < EXCERPT * 4 {
                match res.chunk().await {
                    Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&head);
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
        Next::RetryAt(
            at + super::backoff_ms(retry_ms, delivery.attempts, MAX_WAIT_MS, super::jitter()),
        )
    };
    if matches!(next, Next::Dead) {
        tracing::warn!(webhook.id = %hook.id, delivery.id = delivery.id, "webhook delivery dead");
    }
    let attempted = Attempted {
        delivery_id: delivery.id,
        webhook_id: hook.id.clone(),
        node: node.to_owned(),
        attempt: AttemptRecord {
            attempt: attempt_no,
            at,
            status_code,
            error,
            excerpt,
            duration_ms: started.elapsed().as_millis() as i64,
        },
        next,
    };
    (attempted, unreachable)
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
    fn a_receiver_is_taken_for_down_after_failures_in_a_row() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1_000);
        let failed = Next::RetryAt(0);
        b.outcome(1, &failed, false, t0);
        b.outcome(2, &failed, false, t0);
        assert_eq!(b.state(t0), (None, false), "two failures are not enough");
        b.outcome(3, &Next::Delivered, false, t0);
        b.outcome(4, &failed, false, t0);
        b.outcome(5, &failed, false, t0);
        assert_eq!(
            b.state(t0),
            (None, false),
            "a success starts the count again"
        );
        b.outcome(6, &failed, false, t0);
        assert_eq!(b.state(t0), (Some(Duration::from_secs(1)), true));
        assert_eq!(b.state(t0 + Duration::from_secs(1)), (None, true));
    }

    #[test]
    fn probes_back_off_and_a_success_closes_the_breaker() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1_000);
        let failed = Next::RetryAt(0);
        // A refused connection trips it at once; attempts already out change nothing.
        b.outcome(1, &failed, true, t0);
        b.outcome(2, &failed, true, t0);
        assert_eq!(b.state(t0), (Some(Duration::from_secs(1)), true));

        let t1 = t0 + Duration::from_secs(1);
        b.probe_sent(10);
        assert_eq!(b.state(t1), (Some(LOOK_EVERY), true), "one probe at a time");
        // An attempt begun before the receiver was taken for down fails late: not the probe.
        b.outcome(3, &failed, true, t1);
        assert_eq!(
            b.state(t1),
            (Some(LOOK_EVERY), true),
            "still waiting for the probe"
        );
        b.outcome(10, &failed, true, t1);
        assert_eq!(b.state(t1), (Some(Duration::from_secs(2)), true));

        let t2 = t1 + Duration::from_secs(2);
        b.probe_sent(11);
        b.outcome(11, &Next::Delivered, false, t2);
        assert_eq!(b.state(t2), (None, false));
    }
}
