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
use crate::modem::pdu::{Submit, SubmitOptions, encode_submit};
use crate::store::{Accepted, MessageRecord, Store, StoreError, now_ms};

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

impl Worker {
    fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Release);
        if !busy {
            self.idle.notify_waiters();
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
        let mut run = Run {
            store,
            modem_id,
            modem,
            current: None,
            accepted: None,
        };
        loop {
            // A message begun is finished even after a stop; nothing new is claimed.
            let claiming = !worker.is_stopped() && control.may_send_now() && run.modem.is_ready();
            if !claiming && run.current.is_none() && run.accepted.is_none() {
                worker.set_busy(false);
                if worker.is_stopped() {
                    break;
                }
                idle(&control).await;
                continue;
            }
            worker.set_busy(true);
            match run.step(claiming).await {
                Ok(Some((id, part))) => run.send(id, part).await,
                Ok(None) => {
                    worker.set_busy(false);
                    idle(&control).await;
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "dispatch step not recorded; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        worker.set_busy(false);
    });
}

/// The message a worker is sending, encoded.
struct InHand {
    message: MessageRecord,
    parts: Vec<Submit>,
    /// Index in `parts` of the next segment to hand over.
    next: usize,
    /// Part numbers the network accepted in an earlier, interrupted attempt.
    done: Vec<i64>,
}

impl InHand {
    /// Moves `next` past segments that went out before.
    fn skip_done(&mut self) {
        while self
            .parts
            .get(self.next)
            .is_some_and(|p| self.done.contains(&i64::from(p.part)))
        {
            self.next += 1;
        }
    }
}

/// One worker's state between steps.
struct Run {
    store: Store,
    modem_id: String,
    modem: ModemHandle,
    current: Option<InHand>,
    /// The last segment the network accepted, recorded with the next step.
    accepted: Option<Accepted>,
}

impl Run {
    /// Records the last accepted segment and hands over the next one (claiming a message when
    /// the current one is done and `claiming` allows), in one commit. Returns the message id
    /// and the segment to write, or `None` when there is nothing to send.
    async fn step(&mut self, claiming: bool) -> Result<Option<(i64, Submit)>, StoreError> {
        let mut step = self.store.begin_step().await?;
        if let Some(accepted) = &self.accepted {
            step.record_accepted(&self.modem_id, accepted).await?;
        }
        let continuing = self
            .current
            .as_ref()
            .is_some_and(|c| c.next < c.parts.len());
        let mut claimed = None;
        if !continuing && claiming {
            while let Some((message, done)) = step.claim(&self.modem_id).await? {
                let options = SubmitOptions {
                    status_report: true,
                    validity_minutes: Some(VALIDITY_MINUTES),
                    // The same reference on every attempt, so resumed parts join the ones sent.
                    reference: (message.id % 256) as u8,
                };
                let parts = match encode_submit(&message.to, &message.text, &options) {
                    Ok(parts) => parts,
                    Err(err) => {
                        step.mark_failed(message.id, &err.to_string()).await?;
                        continue;
                    }
                };
                let mut in_hand = InHand {
                    message,
                    parts,
                    next: 0,
                    done,
                };
                in_hand.skip_done();
                if in_hand.next == in_hand.parts.len() {
                    // Every segment went out before the interruption.
                    step.mark_sent(in_hand.message.id).await?;
                    continue;
                }
                claimed = Some(in_hand);
                break;
            }
        }
        let next = match (&claimed, &self.current) {
            (Some(c), _) => Some(c),
            (None, Some(c)) if continuing => Some(c),
            _ => None,
        }
        .map(|c| (c.message.id, c.message.to.clone(), c.parts[c.next].clone()));
        if let Some((id, to, part)) = &next {
            let number = (i64::from(part.part), i64::from(part.total));
            step.hand(*id, number, &self.modem_id, to).await?;
        }
        step.commit().await?;

        self.accepted = None;
        if claimed.is_some() {
            self.current = claimed;
        } else if !continuing {
            self.current = None;
        }
        Ok(next.map(|(id, _, part)| (id, part)))
    }

    /// Writes one segment and keeps the outcome: accepted (recorded with the next step), or a
    /// failure recorded now.
    async fn send(&mut self, id: i64, part: Submit) {
        let result = self
            .modem
            .send_pdu(part.tpdu_length, &part.hex, SEGMENT_TIMEOUT)
            .await;
        let Some(current) = self.current.as_mut() else {
            return;
        };
        let number = i64::from(part.part);
        let ended = match result {
            Ok(mr) => {
                current.next += 1;
                current.skip_done();
                self.accepted = Some(Accepted {
                    message_id: id,
                    part: number,
                    mr,
                    last: current.next == current.parts.len(),
                });
                return;
            }
            Err(ModemError::Timeout { .. } | ModemError::Unconfirmed { .. }) => {
                // The segment may be on the air: leave it in doubt for a person to review.
                tracing::error!(message.id = id, part = part.part, "segment unconfirmed");
                self.store.mark_failed(id, crate::store::REVIEW_NOTE).await
            }
            Err(ModemError::Cms(cms)) if !cms.is_transient() => {
                tracing::error!(message.id = id, error = %cms, "message failed");
                match self.store.part_refused(id, number).await {
                    Ok(()) => self.store.mark_failed(id, &cms.to_string()).await,
                    Err(err) => Err(err),
                }
            }
            Err(err) => match self.store.part_refused(id, number).await {
                Ok(()) => retry_or_fail(&self.store, &current.message, &err.to_string()).await,
                Err(store_err) => Err(store_err),
            },
        };
        self.current = None;
        if let Err(err) = ended {
            // The message stays `sending`; the next start-up's recovery settles it.
            tracing::error!(message.id = id, error = ?err, "dispatch not recorded");
        }
    }
}

async fn idle(control: &SendingControl) {
    let _ = tokio::time::timeout(IDLE, control.wake.notified()).await;
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
