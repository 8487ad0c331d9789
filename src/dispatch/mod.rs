//! The dispatcher: one worker a modem claims due messages and hands their segments to the
//! modem, only while sending is started and the sending window is open.
//!
//! Each segment is written to the modem's journal, and synced, before its PDU is written to the
//! modem, and its outcome after (see [`journal`]); the database has both soon after, in batches.
//! So a crash at any moment leaves at most one segment in doubt, and that message is held for
//! review rather than sent twice (see [`Store::recover_interrupted`]), while the modem never
//! waits for the database between segments. A fast modem claims many messages at once, a slow
//! one the one it is about to send. `+CMS ERROR`s that may pass are retried with back-off; the
//! others fail the message with a readable reason.

pub mod fleet;
pub mod inbound;
pub mod journal;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::domain::SendingWindow;
use crate::modem::actor::{ModemError, ModemHandle};
use crate::modem::pdu::{Submit, SubmitOptions, encode_submit};
use crate::store::{MessageRecord, Progress, REVIEW_NOTE, Store, StoreError, now_ms};
use journal::Ledger;

/// How long one segment may take, from `AT+CMGS` to `+CMGS:`; real modems take 2–6 s.
const SEGMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts before a message that keeps meeting passing errors is failed.
const MAX_ATTEMPTS: i64 = 5;
/// How long an idle worker waits before looking for due messages again.
const IDLE: Duration = Duration::from_millis(250);
/// How much sending a worker claims ahead: a modem that sends a segment in 1 ms claims 250
/// messages at a time (up to [`MAX_CLAIM`]), one that takes a second claims one.
const CLAIM_AHEAD: Duration = Duration::from_millis(250);
/// The most messages a worker claims at once.
const MAX_CLAIM: usize = 256;
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
    /// Set while its modem may not begin new messages (its balance ran low); shared with the
    /// modem's slot, so it outlives reconnections.
    paused: Arc<AtomicBool>,
}

impl Worker {
    /// A worker that begins nothing new while `paused` is set.
    pub fn with_pause(paused: Arc<AtomicBool>) -> Worker {
        Worker {
            paused,
            ..Worker::default()
        }
    }

    /// Whether it may not begin new messages.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

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
    ledger: Ledger,
) {
    tokio::spawn(async move {
        let mut run = Run {
            store,
            modem_id,
            modem,
            ledger,
            ahead: VecDeque::new(),
            claiming: None,
            current: None,
            pace: None,
        };
        loop {
            // A message begun is finished even after a stop; nothing new is begun.
            let claiming = !worker.is_stopped()
                && !worker.is_paused()
                && control.may_send_now()
                && run.modem.is_ready();
            if !claiming {
                run.release_ahead().await;
            }
            // What is ahead waits while nothing new may begin (a release that failed leaves it).
            if run.current.is_none() && claiming {
                if run.ahead.is_empty() {
                    worker.set_busy(true);
                    if run.claiming.is_none() {
                        run.start_claim();
                    }
                    if let Err(err) = run.finish_claim().await {
                        tracing::warn!(error = ?err, "messages not claimed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
                run.current = run.ahead.pop_front();
            }
            if run.current.is_none() {
                worker.set_busy(false);
                if worker.is_stopped() {
                    break;
                }
                idle(&control).await;
                continue;
            }
            worker.set_busy(true);
            if claiming {
                run.claim_early();
            }
            run.send_next().await;
        }
        worker.set_busy(false);
    });
}

/// What a claim returns: messages with the segments of them that went out before.
type Claimed = Vec<(MessageRecord, Vec<i64>)>;

/// A message a worker holds, encoded.
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

/// One worker's state between segments.
struct Run {
    store: Store,
    modem_id: String,
    modem: ModemHandle,
    ledger: Ledger,
    /// Messages claimed and not begun, oldest first.
    ahead: VecDeque<InHand>,
    /// A claim under way while the modem sends.
    claiming: Option<JoinHandle<Result<Claimed, StoreError>>>,
    /// The message being sent.
    current: Option<InHand>,
    /// How long the last segment took, from `AT+CMGS` to its answer.
    pace: Option<Duration>,
}

impl Run {
    /// How many messages to claim at once: as many as the modem sends in about
    /// [`CLAIM_AHEAD`], so that a fast modem does not wait for the database between messages,
    /// and a slow one holds no more than the next one.
    fn claim_size(&self) -> usize {
        self.pace.map_or(1, |pace| {
            let ahead = CLAIM_AHEAD.as_micros() / pace.as_micros().max(1);
            usize::try_from(ahead)
                .unwrap_or(MAX_CLAIM)
                .clamp(1, MAX_CLAIM)
        })
    }

    /// Starts claiming the next due messages.
    fn start_claim(&mut self) {
        let (store, modem_id, limit) =
            (self.store.clone(), self.modem_id.clone(), self.claim_size());
        self.claiming = Some(tokio::spawn(async move {
            store.claim_for_sending(&modem_id, limit).await
        }));
    }

    /// Starts the next claim while the modem sends: for a fast modem once half of the last
    /// claim is used up, for a slow one once nothing is ahead of the message on the air. The
    /// claim is then done by the time the modem needs it, and the modem never waits for the
    /// database between two messages.
    fn claim_early(&mut self) {
        let size = self.claim_size();
        if self.claiming.is_none() && self.ahead.len() < size.div_ceil(2) {
            self.start_claim();
        }
    }

    /// Waits for the claim under way, if any, and puts what it claimed ahead, encoded.
    async fn finish_claim(&mut self) -> Result<(), StoreError> {
        let Some(claim) = self.claiming.take() else {
            return Ok(());
        };
        let claimed = match claim.await {
            Ok(claimed) => claimed?,
            Err(err) => {
                // Whatever it claimed stays `sending` until the next start-up's recovery.
                tracing::error!(error = %err, "claim task failed");
                return Ok(());
            }
        };
        for (message, done) in claimed {
            let options = SubmitOptions {
                status_report: true,
                validity_minutes: Some(VALIDITY_MINUTES),
                // The same reference on every attempt, so resumed parts join the ones sent.
                reference: (message.id % 256) as u8,
            };
            let parts = match encode_submit(&message.to, &message.text, &options) {
                Ok(parts) => parts,
                Err(err) => {
                    self.journal(failed(message.id, &err.to_string()));
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
                self.journal(Progress::Sent {
                    message: in_hand.message.id,
                    at: now_ms(),
                });
                continue;
            }
            self.ahead.push_back(in_hand);
        }
        Ok(())
    }

    /// Gives the messages claimed and not begun back to the queue (sending stopped, the window
    /// closed, or the modem went away).
    async fn release_ahead(&mut self) {
        if let Err(err) = self.finish_claim().await {
            tracing::warn!(error = ?err, "messages not claimed");
        }
        if self.ahead.is_empty() {
            return;
        }
        let ids: Vec<i64> = self.ahead.iter().map(|m| m.message.id).collect();
        match self.store.release(&self.modem_id, &ids).await {
            Ok(()) => self.ahead.clear(),
            // They stay claimed; the next try, or the next start-up's recovery, frees them.
            Err(err) => tracing::warn!(error = ?err, "claimed messages not released"),
        }
    }

    /// Hands the current message's next segment to the modem, with its journal entry made
    /// durable first, and journals the outcome.
    async fn send_next(&mut self) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        let part = current.parts[current.next].clone();
        let id = current.message.id;
        let number = i64::from(part.part);
        let handed = Progress::Handed {
            message: id,
            part: number,
            total: i64::from(part.total),
            recipient: current.message.to.clone(),
            at: now_ms(),
        };
        let ledger = self.ledger.clone();
        let started = Instant::now();
        let result = self
            .modem
            .send_pdu_recorded(part.tpdu_length, &part.hex, SEGMENT_TIMEOUT, move || {
                ledger.write(handed, true)
            })
            .await;
        self.pace = Some(started.elapsed());
        let outcome = match result {
            Ok(mr) => {
                current.next += 1;
                current.skip_done();
                let last = current.next == current.parts.len();
                let accepted = Progress::Accepted {
                    message: id,
                    part: number,
                    mr,
                    last,
                    at: now_ms(),
                };
                if !last {
                    self.journal(accepted);
                    return;
                }
                vec![accepted]
            }
            Err(ModemError::Timeout { .. } | ModemError::Unconfirmed { .. }) => {
                // The segment may be on the air: leave it in doubt for a person to review.
                tracing::error!(message.id = id, part = part.part, "segment unconfirmed");
                vec![failed(id, REVIEW_NOTE)]
            }
            Err(ModemError::Cms(cms)) if !cms.is_transient() => {
                tracing::error!(message.id = id, error = %cms, "message failed");
                vec![refused(id, number), failed(id, &cms.to_string())]
            }
            Err(err) => vec![
                refused(id, number),
                retry_or_fail(&current.message, &err.to_string()),
            ],
        };
        self.current = None;
        for step in outcome {
            self.journal(step);
        }
    }

    fn journal(&self, step: Progress) {
        // Not durable: the next segment's entry carries it to disk, and the database has it
        // soon after; a write that fails is logged and still reaches the database.
        let _ = self.ledger.write(step, false);
    }
}

fn refused(message: i64, part: i64) -> Progress {
    Progress::Refused { message, part }
}

fn failed(message: i64, reason: &str) -> Progress {
    Progress::Failed {
        message,
        reason: reason.to_owned(),
        at: now_ms(),
    }
}

async fn idle(control: &SendingControl) {
    let _ = tokio::time::timeout(IDLE, control.wake.notified()).await;
}

/// A passing error: the message is tried again later, or failed after [`MAX_ATTEMPTS`].
fn retry_or_fail(message: &MessageRecord, reason: &str) -> Progress {
    let attempts = message.attempts + 1;
    if attempts >= MAX_ATTEMPTS {
        tracing::error!(
            message.id = message.id,
            attempts,
            "message failed after retries"
        );
        return failed(message.id, reason);
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
    let at = now_ms();
    Progress::Retry {
        message: message.id,
        due: at + delay_ms,
        reason: reason.to_owned(),
        at,
    }
}
