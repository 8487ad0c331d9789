//! The dispatcher: one worker a modem claims due messages and hands their segments to the
//! modem, only while sending is started and the sending window is open.
//!
//! Each segment is recorded before `AT+CMGS` is written and again when the network accepts it,
//! so a crash at any moment leaves at most one segment in doubt, and that message is held for
//! review rather than sent twice (see [`Store::recover_interrupted`]). `+CMS ERROR`s that may
//! pass are retried with back-off; the others fail the message with a readable reason.

pub mod fleet;
pub mod inbound;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use crate::domain::SendingWindow;
use crate::modem::actor::{ModemError, ModemHandle};
use crate::modem::pdu::{SubmitOptions, encode_submit};
use crate::store::{MessageRecord, Store, StoreError, now_ms};

/// How long one segment may take, from `AT+CMGS` to `+CMGS:`; real modems take 2–6 s.
const SEGMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts before a message that keeps meeting passing errors is failed.
const MAX_ATTEMPTS: i64 = 5;
/// How long an idle worker waits before looking for due messages again.
const IDLE: Duration = Duration::from_millis(250);
/// How long the network keeps trying to deliver (24 hours).
const VALIDITY_MINUTES: u32 = 24 * 60;

/// The settings of sending an admin changes at run time; kept in the database under
/// [`SendingSettings::KEY`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendingSettings {
    /// When messages may go out, with its time zone.
    pub window: SendingWindow,
    /// Whether sending starts by itself once a modem is ready.
    pub auto_start: bool,
    /// Added to the end of every message (the organisation's name); may be empty.
    pub signature: String,
}

impl SendingSettings {
    /// The settings key they are stored under.
    pub const KEY: &'static str = "sending";

    /// As stored.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "window": self.window.to_string(),
            "time_zone": self.window.tz().name(),
            "auto_start": self.auto_start,
            "signature": self.signature,
        })
        .to_string()
    }

    /// Reads stored settings.
    ///
    /// # Errors
    ///
    /// Fails when the text is not such settings.
    pub fn from_json(text: &str) -> Result<SendingSettings, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let field = |key: &str| value.get(key).ok_or_else(|| format!("`{key}` is missing"));
        let tz: chrono_tz::Tz = field("time_zone")?
            .as_str()
            .and_then(|z| z.parse().ok())
            .ok_or("`time_zone` is not a zone")?;
        let window = field("window")?.as_str().ok_or("`window` is not text")?;
        Ok(SendingSettings {
            window: SendingWindow::parse_range(window, tz).map_err(|e| e.to_string())?,
            auto_start: field("auto_start")?
                .as_bool()
                .ok_or("`auto_start` is not true or false")?,
            signature: field("signature")?
                .as_str()
                .ok_or("`signature` is not text")?
                .to_owned(),
        })
    }
}

/// Whether sending is started, and the settings every worker follows, shared by the API and
/// the workers.
#[derive(Debug)]
pub struct SendingControl {
    started: AtomicBool,
    auto_start: AtomicBool,
    window: std::sync::RwLock<SendingWindow>,
    signature: std::sync::RwLock<String>,
    wake: Notify,
}

impl SendingControl {
    /// A control with sending stopped; with `auto_start` it starts once a modem is ready.
    pub fn new(auto_start: bool, window: SendingWindow) -> SendingControl {
        SendingControl {
            started: AtomicBool::new(false),
            auto_start: AtomicBool::new(auto_start),
            window: std::sync::RwLock::new(window),
            signature: std::sync::RwLock::new(String::new()),
            wake: Notify::new(),
        }
    }

    /// Whether sending starts by itself once a modem is ready.
    pub fn auto_start(&self) -> bool {
        self.auto_start.load(Ordering::Relaxed)
    }

    /// Changes the settings an admin edits: window, auto-start, signature.
    pub fn configure(&self, settings: SendingSettings) {
        *self.window.write().unwrap_or_else(|e| e.into_inner()) = settings.window;
        self.auto_start
            .store(settings.auto_start, Ordering::Relaxed);
        *self.signature.write().unwrap_or_else(|e| e.into_inner()) = settings.signature;
        self.wake.notify_waiters();
    }

    /// The settings an admin edits, as they are now.
    pub fn settings(&self) -> SendingSettings {
        SendingSettings {
            window: self.window(),
            auto_start: self.auto_start(),
            signature: self.signature(),
        }
    }

    /// Adds the signature to the end of a text, after a space, unless the text already ends
    /// with it (an ERP that signs its texts itself is not signed twice).
    pub fn sign(&self, text: &str) -> String {
        let signature = self.signature.read().unwrap_or_else(|e| e.into_inner());
        // An empty text stays empty, and is refused as such.
        if signature.is_empty()
            || text.trim().is_empty()
            || text.trim_end().ends_with(signature.as_str())
        {
            text.to_owned()
        } else {
            format!("{} {}", text.trim_end(), signature)
        }
    }

    /// The signature added to the end of every message, or an empty text.
    pub fn signature(&self) -> String {
        self.signature
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether sending is started.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    /// Starts or stops sending. A stop lets the segment in flight finish; nothing new starts.
    pub fn set_started(&self, started: bool) {
        self.started.store(started, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    /// The sending window.
    pub fn window(&self) -> SendingWindow {
        *self.window.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a message may go out now.
    pub fn may_send_now(&self) -> bool {
        self.is_started() && self.window().contains(Utc::now())
    }

    /// Wakes idle workers, e.g. after new messages were stored.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }
}

/// A worker's flags: asked to stop, and busy with a message.
#[derive(Debug, Default)]
pub struct Worker {
    stopped: AtomicBool,
    busy: AtomicBool,
    idle: Notify,
}

impl Worker {
    /// Asks the worker to stop once the message in hand is done.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Whether the worker was asked to stop.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Whether a message is in hand.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Waits until no message is in hand.
    pub async fn wait_idle(&self) {
        while self.is_busy() {
            let _ = tokio::time::timeout(Duration::from_millis(100), self.idle.notified()).await;
        }
    }
}

/// Starts the worker for one modem; it ends when `worker` is stopped.
pub fn spawn_worker(
    store: Store,
    modem_id: String,
    modem: ModemHandle,
    control: Arc<SendingControl>,
    worker: Arc<Worker>,
) {
    tokio::spawn(async move {
        while !worker.is_stopped() {
            if !control.may_send_now() || !modem.is_ready() {
                idle(&control).await;
                continue;
            }
            worker.busy.store(true, Ordering::Release);
            // Stopped between the check and the flag: nothing new is claimed.
            if worker.is_stopped() {
                break;
            }
            let claimed = store.claim_next(&modem_id).await;
            match claimed {
                Ok(Some(message)) => {
                    let id = message.id;
                    if let Err(err) = deliver(&store, &modem_id, &modem, message).await {
                        tracing::error!(message.id = id, error = ?err, "dispatch not recorded");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Ok(None) => {
                    worker.busy.store(false, Ordering::Release);
                    worker.idle.notify_waiters();
                    idle(&control).await;
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "cannot claim messages; retrying");
                    worker.busy.store(false, Ordering::Release);
                    worker.idle.notify_waiters();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        worker.busy.store(false, Ordering::Release);
        worker.idle.notify_waiters();
    });
}

async fn idle(control: &SendingControl) {
    let _ = tokio::time::timeout(IDLE, control.wake.notified()).await;
}

/// Sends one claimed message, segment by segment, recording each step.
async fn deliver(
    store: &Store,
    modem_id: &str,
    modem: &ModemHandle,
    message: MessageRecord,
) -> Result<(), StoreError> {
    let id = message.id;
    let options = SubmitOptions {
        status_report: true,
        validity_minutes: Some(VALIDITY_MINUTES),
        // The same reference on every attempt, so resumed parts join the ones already sent.
        reference: (id % 256) as u8,
    };
    let parts = match encode_submit(&message.to, &message.text, &options) {
        Ok(parts) => parts,
        Err(err) => return store.mark_failed(id, &err.to_string()).await,
    };
    if !store.start_sending(id).await? {
        return Ok(()); // Cancelled after it was claimed.
    }
    let done = store.parts_sent(id).await?;

    for part in parts.iter().filter(|p| !done.contains(&i64::from(p.part))) {
        let number = (i64::from(part.part), i64::from(part.total));
        store.part_handed(id, number, modem_id, &message.to).await?;
        let result = modem
            .send_pdu(part.tpdu_length, &part.hex, SEGMENT_TIMEOUT)
            .await;
        match result {
            Ok(mr) => {
                store.part_sent(id, number.0, mr).await?;
                store.count_segments(modem_id, 1).await?;
            }
            Err(ModemError::Timeout { .. } | ModemError::Unconfirmed { .. }) => {
                // The segment may be on the air: leave it in doubt for a person to review.
                tracing::error!(message.id = id, part = part.part, "segment unconfirmed");
                return store.mark_failed(id, crate::store::REVIEW_NOTE).await;
            }
            Err(ModemError::Cms(cms)) if !cms.is_transient() => {
                store.part_refused(id, number.0).await?;
                tracing::error!(message.id = id, error = %cms, "message failed");
                return store.mark_failed(id, &cms.to_string()).await;
            }
            Err(err) => {
                store.part_refused(id, number.0).await?;
                return retry_or_fail(store, &message, &err.to_string()).await;
            }
        }
    }
    tracing::debug!(message.id = id, segments = parts.len(), "message sent");
    store.mark_sent(id).await
}

async fn retry_or_fail(
    store: &Store,
    message: &MessageRecord,
    reason: &str,
) -> Result<(), StoreError> {
    let attempts = message.attempts + 1;
    if attempts >= MAX_ATTEMPTS {
        tracing::error!(
            message.id = message.id,
            attempts,
            "message failed after retries"
        );
        return store.mark_failed(message.id, reason).await;
    }
    // 30 s, 1 min, 2 min, 4 min...
    let delay_ms = 30_000 * (1_i64 << (attempts - 1).min(10));
    tracing::warn!(
        message.id = message.id,
        attempts,
        delay_ms,
        reason,
        "retrying later"
    );
    store
        .retry_later(message.id, now_ms() + delay_ms, reason)
        .await
}
