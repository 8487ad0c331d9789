//! The modems of this node: each one's actor, its supervisor (identity, signal, the SIM sweep),
//! its handler of unsolicited lines, and its dispatcher worker; connecting and disconnecting
//! them at run time, and the settings of their ports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Mutex, oneshot};

use super::inbound::Inbound;
use super::journal::Ledger;
use super::{SendingControl, Worker, spawn_worker};
use crate::domain::Region;
use crate::eventlog::EventLog;
use crate::modem::actor::{Exchange, ModemError, ModemHandle};
use crate::modem::at::Urc;
use crate::modem::session::{self, Identity, NetworkStatus};
use crate::modem::simulated::SimulatedModem;
use crate::modem::simulator::SimConfig;
use crate::modem::transport::PortSettings;
use crate::modem::ussd::{self, UssdAnswer, UssdStatus};
use crate::store::{Store, StoreError, now_ms};

/// The port name that stands for the built-in simulated modem.
pub const SIM_PORT: &str = "sim";
/// How often signal, registration and operator are read, when the modem is not sending.
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// How often the SIM is swept for texts and reports that were not announced.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// After a USSD request times out, how long its late answer is waited for and dropped before the
/// next request may go.
const USSD_GRACE: Duration = Duration::from_secs(5);
/// How long the missing parts of a long text are waited for before it is stored with gaps.
const FRAGMENT_MAX_AGE_MS: i64 = 48 * 60 * 60 * 1000;

/// What the API shows of a modem.
#[derive(Clone, Debug, Default)]
pub struct ModemStatus {
    /// Its id.
    pub id: String,
    /// The port it is opened by.
    pub port: String,
    /// Whether it is the built-in simulator.
    pub simulated: bool,
    /// Whether it is connected on purpose (not disconnected through the API).
    pub enabled: bool,
    /// Whether its port is open and initialised now.
    pub ready: bool,
    /// Who it is, once read.
    pub identity: Option<Identity>,
    /// Signal, registration and operator, last read.
    pub network: Option<NetworkStatus>,
    /// When `network` was read.
    pub network_at: Option<i64>,
    /// When it last became ready.
    pub connected_since: Option<i64>,
    /// The last thing that went wrong with it.
    pub last_error: Option<String>,
    /// Whether it is sending a message now.
    pub busy: bool,
}

/// One configured modem and, while it is connected, what runs for it.
struct Slot {
    id: String,
    /// The port settings of the start-up configuration.
    defaults: PortSettings,
    /// The settings in use: the defaults, or what an admin stored.
    settings: std::sync::RwLock<PortSettings>,
    running: Mutex<Option<Running>>,
    status: Arc<std::sync::RwLock<ModemStatus>>,
    /// The modem's journal, opened at its first connection and kept across reconnections.
    ledger: std::sync::Mutex<Option<Ledger>>,
    /// Who waits for the answer to the USSD request under way.
    ussd_reply: Arc<std::sync::Mutex<Option<oneshot::Sender<String>>>>,
    /// One USSD request at a time: the network keeps one session a line.
    ussd_turn: Mutex<()>,
    /// Whether sending from this modem is paused (its balance ran low).
    paused: Arc<AtomicBool>,
}

struct Running {
    modem: ModemHandle,
    simulator: Option<SimulatedModem>,
    worker: Arc<Worker>,
}

/// Every modem of this node.
pub struct Fleet {
    store: Store,
    control: Arc<SendingControl>,
    events: Arc<EventLog>,
    region: Region,
    sim: SimConfig,
    journal_dir: PathBuf,
    slots: BTreeMap<String, Arc<Slot>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("modems", &self.slots.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The settings key under which an admin's port settings for a modem are kept.
fn settings_key(id: &str) -> String {
    format!("modem.{id}.port")
}

impl Fleet {
    /// The fleet of `modems` (id and start-up port settings), journalling into `journal_dir`
    /// (see [`super::journal`]); nothing is opened yet.
    pub fn new(
        store: Store,
        control: Arc<SendingControl>,
        events: Arc<EventLog>,
        region: Region,
        sim: SimConfig,
        journal_dir: PathBuf,
        modems: Vec<(String, PortSettings)>,
    ) -> Fleet {
        let slots = modems
            .into_iter()
            .map(|(id, settings)| {
                let status = ModemStatus {
                    id: id.clone(),
                    port: settings.path.clone(),
                    simulated: settings.path == SIM_PORT,
                    ..ModemStatus::default()
                };
                let slot = Slot {
                    id: id.clone(),
                    defaults: settings.clone(),
                    settings: std::sync::RwLock::new(settings),
                    running: Mutex::new(None),
                    status: Arc::new(std::sync::RwLock::new(status)),
                    ledger: std::sync::Mutex::new(None),
                    ussd_reply: Arc::default(),
                    ussd_turn: Mutex::new(()),
                    paused: Arc::default(),
                };
                (id, Arc::new(slot))
            })
            .collect();
        Fleet {
            store,
            control,
            events,
            region,
            sim,
            journal_dir,
            slots,
        }
    }

    /// The ids of this node's modems.
    pub fn ids(&self) -> Vec<String> {
        self.slots.keys().cloned().collect()
    }

    /// Applies stored port settings and connects every modem.
    ///
    /// # Errors
    ///
    /// Fails when the stored settings cannot be read.
    pub async fn start(&self) -> Result<(), StoreError> {
        for slot in self.slots.values() {
            if let Some(stored) = self.store.setting(&settings_key(&slot.id)).await? {
                match PortSettings::from_json(&stored, &slot.defaults) {
                    Ok(settings) => *write(&slot.settings) = settings,
                    Err(err) => tracing::warn!(modem.id = %slot.id, error = %err,
                        "stored port settings not usable; using the configured ones"),
                }
            }
            if let Err(err) = self.connect(&slot.id).await {
                tracing::error!(modem.id = %slot.id, error = %err, "modem not started");
            }
        }
        Ok(())
    }

    /// Opens a modem (starting its simulator if it is one) and everything that runs for it;
    /// nothing happens when it is connected already.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id.
    pub async fn connect(&self, id: &str) -> Result<ModemStatus, FleetError> {
        let slot = self.slot(id)?;
        let mut running = slot.running.lock().await;
        if running.is_none() {
            let ledger = self.ledger(&slot)?;
            *running = Some(self.launch(&slot, ledger));
        }
        drop(running);
        Ok(read(&slot.status).clone())
    }

    /// Stops a modem's worker (the message on the air finishes), closes its port and stops
    /// its simulator.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id.
    pub async fn disconnect(&self, id: &str) -> Result<ModemStatus, FleetError> {
        let slot = self.slot(id)?;
        let taken = slot.running.lock().await.take();
        if let Some(running) = taken {
            running.worker.stop();
            running.worker.wait_idle().await;
            // What the worker journalled reaches the database before the answer, unless the
            // database is away; it gets there once the database is back.
            let ledger = slot
                .ledger
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(ledger) = ledger {
                let _ = tokio::time::timeout(Duration::from_secs(5), ledger.settled()).await;
            }
            running.modem.close();
            let was_ready = read(&slot.status).ready;
            mark_disconnected(&slot.status);
            tracing::info!(modem.id = %slot.id, "modem disconnected");
            if was_ready {
                let payload =
                    json!({"modem_id": slot.id, "reason": "disconnected through the API"});
                record_event(&self.store, "modem.lost", payload).await;
            }
            self.events
                .record("modem.disconnected", None, json!({"modem": slot.id}));
        }
        Ok(read(&slot.status).clone())
    }

    /// The status of every modem, in id order.
    pub fn list(&self) -> Vec<ModemStatus> {
        self.slots
            .values()
            .map(|s| read(&s.status).clone())
            .collect()
    }

    /// The status of one modem.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id.
    pub fn status(&self, id: &str) -> Result<ModemStatus, FleetError> {
        Ok(read(&self.slot(id)?.status).clone())
    }

    /// The running actor of a modem.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id, or a modem that is disconnected.
    pub async fn handle(&self, id: &str) -> Result<ModemHandle, FleetError> {
        let slot = self.slot(id)?;
        let running = slot.running.lock().await;
        running
            .as_ref()
            .map(|r| r.modem.clone())
            .ok_or(FleetError::Disconnected)
    }

    /// The last AT exchanges of a modem (kept while it is connected).
    ///
    /// # Errors
    ///
    /// Fails for an unknown id, or a modem that is disconnected.
    pub async fn trace(&self, id: &str) -> Result<Vec<Exchange>, FleetError> {
        Ok(self.handle(id).await?.trace())
    }

    /// The simulator behind a simulated modem, to deliver a text or ring a call.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id, a disconnected modem, or one that is real.
    pub async fn simulator(&self, id: &str) -> Result<SimulatedModem, FleetError> {
        let slot = self.slot(id)?;
        let running = slot.running.lock().await;
        match running.as_ref() {
            None => Err(FleetError::Disconnected),
            Some(r) => r.simulator.clone().ok_or(FleetError::NotSimulated),
        }
    }

    /// The port settings in use, and the configured ones.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id.
    pub fn settings(&self, id: &str) -> Result<(PortSettings, PortSettings), FleetError> {
        let slot = self.slot(id)?;
        let current = read(&slot.settings).clone();
        Ok((current, slot.defaults.clone()))
    }

    /// Stores new port settings (`None`: back to the configured ones) and reconnects the
    /// modem with them if it was connected.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id, or when the database does.
    pub async fn set_settings(
        &self,
        id: &str,
        settings: Option<PortSettings>,
    ) -> Result<PortSettings, FleetError> {
        let slot = self.slot(id)?;
        let key = settings_key(id);
        let settings = match settings {
            Some(settings) => {
                self.store.set_setting(&key, &settings.to_json()).await?;
                settings
            }
            None => {
                self.store.delete_setting(&key).await?;
                slot.defaults.clone()
            }
        };
        *write(&slot.settings) = settings.clone();
        set_port(&slot.status, &settings.path);
        let was_running = slot.running.lock().await.is_some();
        if was_running {
            self.disconnect(id).await?;
            self.connect(id).await?;
        }
        Ok(settings)
    }

    /// Asks the network `code` (`*105#`) by USSD through modem `id` and waits for the answer,
    /// at most `wait`. A session the network leaves open (a menu) is closed after.
    ///
    /// # Errors
    ///
    /// Fails for an unknown or disconnected modem, a modem that refuses the request, no answer
    /// in time, or an answer that says the request failed.
    pub async fn ask_ussd(
        &self,
        id: &str,
        code: &str,
        packed: bool,
        wait: Duration,
    ) -> Result<UssdAnswer, FleetError> {
        let slot = self.slot(id)?;
        let _turn = slot.ussd_turn.lock().await;
        let modem = self.handle(id).await?;
        let (reply, answer) = oneshot::channel();
        *slot.ussd_reply.lock().unwrap_or_else(|e| e.into_inner()) = Some(reply);
        let request = ussd::request(code, packed);
        modem
            .command(&request, &[], Duration::from_secs(10))
            .await
            .map_err(FleetError::Modem)?;
        let raw = match tokio::time::timeout(wait, answer).await {
            Ok(Ok(raw)) => raw,
            _ => {
                // Whatever the network is still doing, the session ends here; an answer that
                // still comes is taken by a waiter nobody reads, rather than by the next
                // request, which waits for this grace to pass.
                let (sink, _late) = oneshot::channel();
                *slot.ussd_reply.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
                let _ = modem
                    .command("AT+CUSD=2", &[], Duration::from_secs(5))
                    .await;
                tokio::time::sleep(USSD_GRACE).await;
                slot.ussd_reply
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                return Err(FleetError::Ussd(format!(
                    "the network did not answer {code} within {} s",
                    wait.as_secs()
                )));
            }
        };
        let answer = match ussd::parse(&raw) {
            Ok(answer) => answer,
            Err(err) => {
                // The session may still be open on the network's side.
                let _ = modem
                    .command("AT+CUSD=2", &[], Duration::from_secs(5))
                    .await;
                return Err(FleetError::Ussd(err.to_string()));
            }
        };
        match answer.status {
            UssdStatus::MoreWanted => {
                let _ = modem
                    .command("AT+CUSD=2", &[], Duration::from_secs(5))
                    .await;
            }
            UssdStatus::NotSupported => {
                return Err(FleetError::Ussd(format!(
                    "the network does not support {code} on this line"
                )));
            }
            UssdStatus::NetworkTimeout => {
                return Err(FleetError::Ussd(format!(
                    "the network gave up on {code} (timeout)"
                )));
            }
            UssdStatus::OtherClient => {
                return Err(FleetError::Ussd(
                    "another client answered the request".into(),
                ));
            }
            UssdStatus::Done | UssdStatus::Terminated => {}
        }
        Ok(answer)
    }

    /// Pauses or resumes sending from modem `id`; the message on the air finishes first.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id.
    pub fn set_paused(&self, id: &str, paused: bool) -> Result<(), FleetError> {
        self.slot(id)?.paused.store(paused, Ordering::Release);
        Ok(())
    }

    /// Whether sending from modem `id` is paused.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id.
    pub fn is_paused(&self, id: &str) -> Result<bool, FleetError> {
        Ok(self.slot(id)?.paused.load(Ordering::Acquire))
    }

    /// Whether modem `id` is sending a message now.
    ///
    /// # Errors
    ///
    /// Fails for an unknown id.
    pub fn is_busy(&self, id: &str) -> Result<bool, FleetError> {
        Ok(read(&self.slot(id)?.status).busy)
    }

    fn slot(&self, id: &str) -> Result<Arc<Slot>, FleetError> {
        self.slots.get(id).cloned().ok_or(FleetError::Unknown)
    }

    /// The modem's journal, opened the first time.
    fn ledger(&self, slot: &Slot) -> Result<Ledger, FleetError> {
        let mut ledger = slot.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = ledger.as_ref() {
            return Ok(open.clone());
        }
        let open =
            Ledger::open(&self.journal_dir, self.store.clone(), &slot.id).map_err(|err| {
                tracing::error!(modem.id = %slot.id, error = %err, "journal not opened");
                write(&slot.status).last_error = Some(format!("journal not opened: {err}"));
                FleetError::Journal(err.to_string())
            })?;
        *ledger = Some(open.clone());
        Ok(open)
    }

    /// Starts the actor, the supervisor, the handler of unsolicited lines and the worker.
    fn launch(&self, slot: &Arc<Slot>, ledger: Ledger) -> Running {
        let settings = read(&slot.settings).clone();
        let (simulator, (modem, mut urcs)) = if settings.path == SIM_PORT {
            let simulator = SimulatedModem::new(self.sim.clone());
            let spawned = ModemHandle::spawn_simulated(settings, simulator.clone());
            (Some(simulator), spawned)
        } else {
            (None, ModemHandle::spawn(settings))
        };
        let worker = Arc::new(Worker::with_pause(slot.paused.clone()));
        {
            let mut status = write(&slot.status);
            status.enabled = true;
            status.ready = false;
            status.identity = None;
            status.last_error = None;
        }

        let inbound = Arc::new(Mutex::new(Inbound::new(
            self.store.clone(),
            slot.id.clone(),
            self.region,
            self.events.clone(),
        )));
        tokio::spawn({
            let (modem, inbound) = (modem.clone(), inbound.clone());
            let ussd_reply = slot.ussd_reply.clone();
            async move {
                while let Some(urc) = urcs.recv().await {
                    if let Urc::Ussd { raw } = urc {
                        // The answer goes to whoever asked; one nobody waits for is dropped.
                        let waiter = ussd_reply.lock().unwrap_or_else(|e| e.into_inner()).take();
                        match waiter {
                            Some(waiter) => {
                                let _ = waiter.send(raw);
                            }
                            None => tracing::debug!("USSD answer nobody asked for"),
                        }
                        continue;
                    }
                    inbound.lock().await.handle(&modem, urc).await;
                }
            }
        });
        tokio::spawn(
            Supervisor {
                store: self.store.clone(),
                control: self.control.clone(),
                events: self.events.clone(),
                id: slot.id.clone(),
                modem: modem.clone(),
                status: slot.status.clone(),
                worker: worker.clone(),
                inbound,
            }
            .run(),
        );
        spawn_worker(
            self.store.clone(),
            slot.id.clone(),
            modem.clone(),
            self.control.clone(),
            worker.clone(),
            ledger,
        );
        Running {
            modem,
            simulator,
            worker,
        }
    }
}

/// Why a fleet request failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// No modem has this id.
    #[error("no modem has this id")]
    Unknown,
    /// The modem is disconnected.
    #[error("the modem is disconnected")]
    Disconnected,
    /// The modem is a real one.
    #[error("the modem is not simulated")]
    NotSimulated,
    /// The modem failed a request.
    #[error(transparent)]
    Modem(ModemError),
    /// A USSD request got no usable answer; the words say why.
    #[error("{0}")]
    Ussd(String),
    /// The modem's journal could not be opened, so it may not send.
    #[error("the modem's journal could not be opened: {0}")]
    Journal(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keeps one connected modem's status fresh, and notices when it comes back.
struct Supervisor {
    store: Store,
    control: Arc<SendingControl>,
    events: Arc<EventLog>,
    id: String,
    modem: ModemHandle,
    status: Arc<std::sync::RwLock<ModemStatus>>,
    worker: Arc<Worker>,
    inbound: Arc<Mutex<Inbound>>,
}

impl Supervisor {
    async fn run(self) {
        let mut seen = 0;
        let mut last_status: Option<Instant> = None;
        let mut last_sweep = Instant::now();
        while !self.worker.is_stopped() {
            if !self.modem.is_ready() {
                self.not_ready().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let generation = self.modem.generation();
            if generation != seen {
                match session::initialize(&self.modem).await {
                    Ok(identity) => {
                        seen = generation;
                        self.came_up(identity).await;
                        last_status = None;
                        last_sweep = Instant::now();
                    }
                    Err(err) => {
                        write(&self.status).last_error = Some(err.to_string());
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            // Status polls wait for a quiet moment; a modem busy for long is asked anyway, now
            // and then, between two messages.
            let quiet = !self.worker.is_busy();
            let age = last_status.map(|at| at.elapsed());
            if age.is_none_or(|age| (quiet && age >= STATUS_EVERY) || age >= 10 * STATUS_EVERY) {
                last_status = Some(Instant::now());
                match session::network_status(&self.modem).await {
                    Ok(network) => self.set_network(network),
                    Err(err) => write(&self.status).last_error = Some(err.to_string()),
                }
            }
            if quiet && last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                self.sweep().await;
            }
            write(&self.status).busy = self.worker.is_busy();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn set_network(&self, network: NetworkStatus) {
        let mut status = write(&self.status);
        status.network = Some(network);
        status.network_at = Some(now_ms());
    }

    async fn not_ready(&self) {
        let was_ready = {
            let mut status = write(&self.status);
            let was_ready = status.ready;
            status.ready = false;
            status.last_error = self.modem.last_error();
            was_ready
        };
        if was_ready {
            tracing::warn!(modem.id = %self.id, "modem lost");
            self.events
                .record("modem.lost", None, json!({"modem": self.id}));
            let reason = self.modem.last_error();
            record_event(
                &self.store,
                "modem.lost",
                json!({"modem_id": self.id, "reason": reason}),
            )
            .await;
        }
    }

    /// The modem answered its init sequence (first time, or again after it came back).
    async fn came_up(&self, identity: Identity) {
        tracing::info!(
            modem.id = %self.id,
            manufacturer = %identity.manufacturer,
            model = %identity.model,
            "modem ready"
        );
        self.events.record(
            "modem.connected",
            None,
            json!({"modem": self.id, "model": identity.model, "imei": identity.imei}),
        );
        let payload = json!({
            "modem_id": self.id,
            "manufacturer": identity.manufacturer,
            "model": identity.model,
            "imei": identity.imei,
        });
        record_event(&self.store, "modem.connected", payload).await;
        self.mark_ready(identity);
        if self.control.auto_start() {
            self.control.set_started(true);
        }
        // Whatever arrived while nobody was listening is in the SIM.
        self.sweep().await;
    }

    fn mark_ready(&self, identity: Identity) {
        let mut status = write(&self.status);
        status.ready = true;
        status.identity = Some(identity);
        status.connected_since = Some(now_ms());
        status.last_error = None;
    }

    async fn sweep(&self) {
        let swept = self.inbound.lock().await.sweep(&self.modem).await;
        match swept {
            Ok(0) => {}
            Ok(n) => tracing::info!(modem.id = %self.id, taken = n, "SIM swept"),
            Err(err) => tracing::warn!(modem.id = %self.id, error = %err, "SIM not swept"),
        }
        match self.store.flush_stale_fragments(FRAGMENT_MAX_AGE_MS).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(count = ids.len(), "long texts stored with missing parts");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = ?err, "fragments not flushed"),
        }
    }
}

/// Records an event for webhooks, mail and streams; a database that fails costs the event, not
/// the modem's work, and is logged.
async fn record_event(store: &Store, kind: &str, payload: serde_json::Value) {
    if let Err(err) = store.record_event(kind, &payload).await {
        tracing::warn!(event = kind, error = %err, "event not recorded");
    }
}

fn mark_disconnected(status: &std::sync::RwLock<ModemStatus>) {
    let mut status = write(status);
    status.enabled = false;
    status.ready = false;
    status.busy = false;
}

fn set_port(status: &std::sync::RwLock<ModemStatus>, path: &str) {
    let mut status = write(status);
    status.port = path.to_owned();
    status.simulated = path == SIM_PORT;
}

fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
