//! The modem actor: one thread owns a modem's serial port, and every AT command to that modem
//! goes through it, one at a time.
//!
//! A modem answers one command at a time and interleaves unsolicited lines with the answers, so
//! only one owner can make sense of its bytes. Callers hold a [`ModemHandle`]: they send a
//! request with a `oneshot` for its answer and wait. Each request carries a timeout; a modem that
//! does not answer in time fails that request, and a port that fails (a USB modem pulled out) is
//! closed and reopened by its path with back-off, while requests fail fast with
//! [`ModemError::Disconnected`] so that nothing waits on a dead port. Unsolicited result codes
//! go out on an event channel, never mixed into an answer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::at::{Final, Framer, Line, Urc};
use super::cms::CmsError;
use super::simulated::SimulatedModem;
use super::transport::{Port, PortSettings};

/// How long the thread waits for a byte before looking at its queue again.
const POLL: Duration = Duration::from_millis(5);
/// AT exchanges kept for the trace view.
const TRACE_LEN: usize = 300;
/// Ctrl-Z, which ends the PDU after the prompt; Esc abandons it.
const CTRL_Z: u8 = 0x1A;
const ESC: u8 = 0x1B;
/// Longest pause between attempts to reopen a port that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a command of the init sequence may take.
const INIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The init sequence, in order: echo off, numeric errors, PDU mode, new messages stored and
/// announced with `+CMTI`, status reports routed straight out as `+CDS`, messages kept on the SIM.
/// It runs every time the port is opened, before any request, so a modem that was replugged or
/// rebooted is never asked to send in a mode it forgot.
pub const INIT: [&str; 5] = [
    "ATE0",
    "AT+CMEE=1",
    "AT+CMGF=0",
    "AT+CNMI=2,1,0,1,0",
    "AT+CPMS=\"SM\",\"SM\",\"SM\"",
];

/// Why a request to the modem failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModemError {
    /// The modem did not finish answering in time.
    #[error("the modem did not answer `{command}` within {timeout:?}")]
    Timeout {
        /// The command.
        command: String,
        /// How long it was given.
        timeout: Duration,
    },
    /// The modem answered `+CMS ERROR`.
    #[error("{0}")]
    Cms(CmsError),
    /// The modem answered `+CME ERROR: n`.
    #[error("`{command}` failed with +CME ERROR {code}")]
    Cme {
        /// The command.
        command: String,
        /// The code.
        code: u16,
    },
    /// The modem answered `ERROR` (or a call result).
    #[error("the modem refused `{command}`: {result}")]
    Refused {
        /// The command.
        command: String,
        /// What it answered.
        result: String,
    },
    /// The PDU was written, but the modem neither confirmed nor refused it: the segment may have
    /// gone out.
    #[error("the segment may have gone out unconfirmed: {reason}")]
    Unconfirmed {
        /// What happened instead of `+CMGS`.
        reason: String,
    },
    /// The port is closed or gone; the actor is trying to reopen it.
    #[error("the modem's port is not open")]
    Disconnected,
    /// The actor has stopped.
    #[error("the modem actor has stopped")]
    Stopped,
}

/// One AT exchange, for the trace view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Milliseconds since the actor started.
    pub at_ms: u64,
    /// `>` for what was written, `<` for what was read.
    pub direction: char,
    /// The text, cut to 512 characters.
    pub text: String,
}

/// The state of the line, shared by the actor and its handles.
#[derive(Debug, Default)]
struct Link {
    /// Counts the times the port was opened and initialised.
    generation: AtomicU64,
    /// Whether the port is open and initialised now.
    ready: AtomicBool,
    /// Why the port last failed or could not be initialised.
    last_error: Mutex<Option<String>>,
}

impl Link {
    fn failed(&self, reason: String) {
        self.ready.store(false, Ordering::Release);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }
}

enum Request {
    Close,
    Command {
        command: String,
        expect: Vec<String>,
        timeout: Duration,
        reply: oneshot::Sender<Result<Vec<String>, ModemError>>,
    },
    SendPdu {
        tpdu_length: usize,
        hex: String,
        timeout: Duration,
        reply: oneshot::Sender<Result<u8, ModemError>>,
    },
}

/// The handle callers use; cheap to clone. The actor stops when every handle is dropped.
#[derive(Clone)]
pub struct ModemHandle {
    requests: mpsc::UnboundedSender<Request>,
    trace: Arc<Mutex<VecDeque<Exchange>>>,
    link: Arc<Link>,
}

impl ModemHandle {
    /// Starts the actor for the port in `settings` and returns its handle and the channel of
    /// unsolicited result codes. The port is opened (and reopened) by the actor's thread.
    pub fn spawn(settings: PortSettings) -> (ModemHandle, mpsc::UnboundedReceiver<Urc>) {
        Self::spawn_on(settings, None)
    }

    /// Like [`ModemHandle::spawn`], on the in-memory port of a simulated modem; `settings`
    /// give the PIN, and their path names the modem in logs.
    pub fn spawn_simulated(
        settings: PortSettings,
        simulated: SimulatedModem,
    ) -> (ModemHandle, mpsc::UnboundedReceiver<Urc>) {
        Self::spawn_on(settings, Some(simulated))
    }

    fn spawn_on(
        settings: PortSettings,
        simulated: Option<SimulatedModem>,
    ) -> (ModemHandle, mpsc::UnboundedReceiver<Urc>) {
        let (requests, inbox) = mpsc::unbounded_channel();
        let (events, urcs) = mpsc::unbounded_channel();
        let trace = Arc::new(Mutex::new(VecDeque::with_capacity(TRACE_LEN)));
        let link = Arc::new(Link::default());
        let actor = Actor {
            settings,
            simulated,
            inbox,
            events,
            trace: trace.clone(),
            link: link.clone(),
            started: Instant::now(),
            framer: Framer::new(),
        };
        std::thread::Builder::new()
            .name("modem".into())
            .spawn(move || actor.run())
            .ok();
        (
            ModemHandle {
                requests,
                trace,
                link,
            },
            urcs,
        )
    }

    /// Whether the port is open and the init sequence has run on it.
    pub fn is_ready(&self) -> bool {
        self.link.ready.load(Ordering::Acquire)
    }

    /// Counts the times the port was opened and initialised; a change means the modem came
    /// back (replugged, rebooted, or reset after it stopped answering).
    pub fn generation(&self) -> u64 {
        self.link.generation.load(Ordering::Acquire)
    }

    /// Why the port last failed, if it has.
    pub fn last_error(&self) -> Option<String> {
        self.link
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the port is ready, for at most `timeout`; `false` when it is not by then.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Closes the port and stops the actor; requests made after this fail with
    /// [`ModemError::Stopped`].
    pub fn close(&self) {
        let _ = self.requests.send(Request::Close);
    }

    /// Sends `command` and returns the lines of its answer that start with one of `expect`
    /// (all lines when `expect` is empty).
    ///
    /// # Errors
    ///
    /// Fails on a timeout, an error result, or a closed port.
    pub async fn command(
        &self,
        command: &str,
        expect: &[&str],
        timeout: Duration,
    ) -> Result<Vec<String>, ModemError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Command {
                command: command.to_owned(),
                expect: expect.iter().map(|s| (*s).to_owned()).collect(),
                timeout,
                reply,
            })
            .map_err(|_| ModemError::Stopped)?;
        answer.await.map_err(|_| ModemError::Stopped)?
    }

    /// Sends one SMS-SUBMIT PDU with `AT+CMGS` and returns the message reference.
    ///
    /// # Errors
    ///
    /// Fails on a timeout, a `+CMS ERROR`, or a closed port.
    pub async fn send_pdu(
        &self,
        tpdu_length: usize,
        hex: &str,
        timeout: Duration,
    ) -> Result<u8, ModemError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::SendPdu {
                tpdu_length,
                hex: hex.to_owned(),
                timeout,
                reply,
            })
            .map_err(|_| ModemError::Stopped)?;
        answer.await.map_err(|_| ModemError::Stopped)?
    }

    /// The last AT exchanges, oldest first.
    pub fn trace(&self) -> Vec<Exchange> {
        let trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        trace.iter().cloned().collect()
    }
}

struct Actor {
    settings: PortSettings,
    /// The simulated modem whose memory port is opened instead of `settings.path`.
    simulated: Option<SimulatedModem>,
    inbox: mpsc::UnboundedReceiver<Request>,
    events: mpsc::UnboundedSender<Urc>,
    trace: Arc<Mutex<VecDeque<Exchange>>>,
    link: Arc<Link>,
    started: Instant,
    framer: Framer,
}

/// What the actor is waiting for on the port.
enum Phase {
    /// The final result of a command; the lines of its answer so far.
    Answer(Vec<String>),
    /// The `> ` prompt of `AT+CMGS`.
    Prompt,
}

impl Actor {
    fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut port = match self.open() {
                Ok(port) => port,
                Err(err) => {
                    tracing::debug!(port = %self.settings.path, error = %err, "port not open");
                    self.link
                        .failed(format!("cannot open {}: {err}", self.settings.path));
                    if !self.refuse_until(Instant::now() + backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            self.framer = Framer::new();
            if let Err(err) = self.prepare(port.as_mut()) {
                tracing::warn!(port = %self.settings.path, error = %err, "modem not initialised");
                self.link.failed(err.to_string());
                drop(port);
                if !self.refuse_until(Instant::now() + backoff) {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            tracing::info!(port = %self.settings.path, "modem port opened and initialised");
            backoff = Duration::from_millis(100);
            self.link.generation.fetch_add(1, Ordering::AcqRel);
            self.link.ready.store(true, Ordering::Release);
            match self.serve(port.as_mut()) {
                Ok(()) => {
                    self.link.ready.store(false, Ordering::Release);
                    return;
                }
                Err(err) => {
                    tracing::error!(port = %self.settings.path, error = %err, "modem port failed");
                    self.link.failed(err.to_string());
                }
            }
        }
    }

    /// Opens the port: the serial device at the settings' path, or the simulator's memory.
    fn open(&self) -> Result<Box<dyn Port>, serialport::Error> {
        match &self.simulated {
            Some(simulated) => Ok(Box::new(simulated.open_port(POLL))),
            None => Ok(Box::new(self.settings.open(POLL)?)),
        }
    }

    /// Brings a freshly opened modem to a known state: whatever it was still saying (a late
    /// answer from before a reset) is read and dropped, the SIM PIN is given if it asks for
    /// one, and the init sequence runs.
    fn prepare(&mut self, port: &mut dyn Port) -> Result<(), ModemError> {
        let as_modem = |failure: Failure| match failure {
            Failure::Modem(err) => err,
            Failure::Port(_) => ModemError::Disconnected,
        };
        // Esc abandons a PDU the modem may still be waiting for; `AT` then gets an `OK` once
        // the modem listens, and what follows in a quiet moment is dropped.
        port.write_all(&[ESC])
            .map_err(|_| ModemError::Disconnected)?;
        self.exchange(port, "AT", &[], INIT_TIMEOUT)
            .map_err(as_modem)?;
        self.drain(port, Duration::from_millis(200))
            .map_err(|_| ModemError::Disconnected)?;

        let pin_state = self.exchange(port, "AT+CPIN?", &["+CPIN"], INIT_TIMEOUT);
        if let Ok(lines) = pin_state
            && lines.iter().any(|l| l.contains("SIM PIN"))
        {
            let Some(pin) = self.settings.pin.clone() else {
                return Err(ModemError::Refused {
                    command: "AT+CPIN?".into(),
                    result: "the SIM asks for a PIN and none is set".into(),
                });
            };
            let command = format!("AT+CPIN=\"{}\"", pin.expose());
            self.exchange(port, &command, &[], INIT_TIMEOUT)
                .map_err(as_modem)?;
        }
        for command in INIT {
            self.exchange(port, command, &[], INIT_TIMEOUT)
                .map_err(as_modem)?;
        }
        Ok(())
    }

    /// Answers every request with `Disconnected` until `until`; `false` once every handle is
    /// gone or the port was closed on purpose.
    fn refuse_until(&mut self, until: Instant) -> bool {
        while Instant::now() < until {
            match self.inbox.try_recv() {
                Ok(Request::Close) | Err(mpsc::error::TryRecvError::Disconnected) => return false,
                Ok(request) => fail(request, ModemError::Disconnected),
                Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(POLL),
            }
        }
        true
    }

    /// Serves requests on an open port; returns `Ok` when every handle is gone and `Err` when
    /// the port fails.
    fn serve(&mut self, port: &mut dyn Port) -> std::io::Result<()> {
        loop {
            let request = match self.inbox.try_recv() {
                Ok(Request::Close) => return Ok(()),
                Ok(request) => request,
                Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Idle: still read, so that URCs flow while nothing is asked.
                    self.read_lines(port, &[])?;
                    continue;
                }
            };
            match request {
                Request::Close => return Ok(()),
                Request::Command {
                    command,
                    expect,
                    timeout,
                    reply,
                } => {
                    let expect: Vec<&str> = expect.iter().map(String::as_str).collect();
                    let result = self.exchange(port, &command, &expect, timeout);
                    let (answer, port_error) = self.settle(port, result);
                    let _ = reply.send(answer);
                    if let Some(err) = port_error {
                        return Err(err);
                    }
                }
                Request::SendPdu {
                    tpdu_length,
                    hex,
                    timeout,
                    reply,
                } => {
                    let result = self.send_pdu(port, tpdu_length, &hex, timeout);
                    if matches!(result, Err(Failure::Modem(_))) {
                        // Whatever went wrong, the modem must not stay waiting for PDU text.
                        let _ = port.write_all(&[ESC]);
                    }
                    let (answer, port_error) = self.settle(port, result);
                    let _ = reply.send(answer);
                    if let Some(err) = port_error {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// Turns a request's outcome into its answer, and the port's failure, if that was the
    /// cause. A modem that did not answer in time is reset: an escape cancels a PDU it may be
    /// waiting for, and the port is closed and opened again, so that a late answer is read and
    /// dropped by [`Actor::prepare`] instead of being taken for the next command's.
    fn settle<T>(
        &mut self,
        port: &mut dyn Port,
        result: Result<T, Failure>,
    ) -> (Result<T, ModemError>, Option<std::io::Error>) {
        match result {
            Ok(value) => (Ok(value), None),
            Err(Failure::Port(err)) => (Err(ModemError::Disconnected), Some(err)),
            Err(Failure::Modem(err @ ModemError::Timeout { .. })) => {
                tracing::warn!(error = %err, "modem timeout; resetting the port");
                let _ = port.write_all(&[ESC]);
                let reset = std::io::Error::other(format!("{err}; the port was reset"));
                (Err(err), Some(reset))
            }
            Err(Failure::Modem(err)) => (Err(err), None),
        }
    }

    /// Reads and drops answer lines until the modem has been quiet for `quiet`.
    fn drain(&mut self, port: &mut dyn Port, quiet: Duration) -> std::io::Result<()> {
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            if !self.read_lines(port, &[])?.is_empty() {
                last = Instant::now();
            }
        }
        Ok(())
    }

    fn send_pdu(
        &mut self,
        port: &mut dyn Port,
        tpdu_length: usize,
        hex: &str,
        timeout: Duration,
    ) -> Result<u8, Failure> {
        let command = format!("AT+CMGS={tpdu_length}");
        let deadline = Instant::now() + timeout;
        self.write(port, &command, format!("{command}\r").as_bytes())?;
        self.wait(port, &command, &[], Phase::Prompt, (deadline, timeout))?;

        // From here the segment may reach the network: a failure that does not say the modem
        // refused it leaves it unconfirmed, never simply failed.
        let mut pdu = hex.as_bytes().to_vec();
        pdu.push(CTRL_Z);
        let unconfirmed = |reason: String| {
            Failure::Modem(ModemError::Unconfirmed {
                reason: reason.clone(),
            })
        };
        self.write(port, hex, &pdu)
            .map_err(|_| unconfirmed("the port failed while the PDU was written".into()))?;
        let lines = self
            .wait(
                port,
                &command,
                &["+CMGS"],
                Phase::Answer(Vec::new()),
                (deadline, timeout),
            )
            .map_err(|failure| match failure {
                Failure::Port(_) => unconfirmed("the port failed before +CMGS".into()),
                other => other,
            })?;
        // `+CMGS: <mr>[,<scts or ackpdu>]`: the reference is the first field.
        lines
            .iter()
            .find_map(|l| {
                let fields = l.strip_prefix("+CMGS:")?;
                fields.split(',').next()?.trim().parse::<u8>().ok()
            })
            .ok_or_else(|| unconfirmed("OK without a message reference".into()))
    }

    fn exchange(
        &mut self,
        port: &mut dyn Port,
        command: &str,
        expect: &[&str],
        timeout: Duration,
    ) -> Result<Vec<String>, Failure> {
        self.write(port, command, format!("{command}\r").as_bytes())?;
        let deadline = Instant::now() + timeout;
        self.wait(
            port,
            command,
            expect,
            Phase::Answer(Vec::new()),
            (deadline, timeout),
        )
    }

    /// Reads until the phase completes or the deadline passes. URCs go to the event channel.
    fn wait(
        &mut self,
        port: &mut dyn Port,
        command: &str,
        expect: &[&str],
        mut phase: Phase,
        (deadline, timeout): (Instant, Duration),
    ) -> Result<Vec<String>, Failure> {
        loop {
            for line in self.read_lines(port, expect).map_err(Failure::Port)? {
                match (&mut phase, line) {
                    (Phase::Prompt, Line::Prompt) => return Ok(Vec::new()),
                    (Phase::Answer(lines), Line::Response(text)) => lines.push(text),
                    (Phase::Answer(lines), Line::Final(Final::Ok)) => {
                        return Ok(std::mem::take(lines));
                    }
                    (_, Line::Final(result)) => {
                        return Err(Failure::Modem(refusal(command, result)));
                    }
                    _ => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(Failure::Modem(ModemError::Timeout {
                    command: command.to_owned(),
                    timeout,
                }));
            }
        }
    }

    /// One read from the port, framed; URCs are sent out as events here.
    fn read_lines(&mut self, port: &mut dyn Port, expect: &[&str]) -> std::io::Result<Vec<Line>> {
        let mut buffer = [0u8; 512];
        let n = match port.read(&mut buffer) {
            Ok(0) => return Err(std::io::Error::other("the port was closed")),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut lines = self.framer.push(&buffer[..n], expect);
        for line in &lines {
            self.record('<', &describe(line));
        }
        lines.retain(|line| match line {
            Line::Urc(urc) => {
                let _ = self.events.send(urc.clone());
                false
            }
            _ => true,
        });
        Ok(lines)
    }

    fn write(&mut self, port: &mut dyn Port, shown: &str, bytes: &[u8]) -> Result<(), Failure> {
        self.framer.sent(shown);
        self.record('>', shown);
        port.write_all(bytes).map_err(Failure::Port)
    }

    fn record(&self, direction: char, text: &str) {
        let mut trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        if trace.len() == TRACE_LEN {
            trace.pop_front();
        }
        trace.push_back(Exchange {
            at_ms: self.started.elapsed().as_millis() as u64,
            direction,
            text: redact(text).chars().take(512).collect(),
        });
        let shown: String = redact(text).chars().take(120).collect();
        tracing::debug!(direction = %direction, line = %shown, "AT");
    }
}

/// A request that failed because of the modem, or because of the port itself.
enum Failure {
    Modem(ModemError),
    Port(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Port(e)
    }
}

fn fail(request: Request, error: ModemError) {
    match request {
        Request::Close => {}
        Request::Command { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Request::SendPdu { reply, .. } => {
            let _ = reply.send(Err(error));
        }
    }
}

fn refusal(command: &str, result: Final) -> ModemError {
    match result {
        Final::CmsError(code) => ModemError::Cms(CmsError(code)),
        Final::CmeError(code) => ModemError::Cme {
            command: command.to_owned(),
            code,
        },
        other => ModemError::Refused {
            command: command.to_owned(),
            result: format!("{other:?}"),
        },
    }
}

fn describe(line: &Line) -> String {
    match line {
        Line::Final(f) => format!("{f:?}"),
        Line::Prompt => ">".into(),
        Line::Urc(u) => format!("{u:?}"),
        Line::Response(r) => r.clone(),
    }
}

/// Hides a SIM PIN in `AT+CPIN="1234"`; PINs never reach the trace or the log.
fn redact(text: &str) -> String {
    if text.to_ascii_uppercase().starts_with("AT+CPIN=") {
        "AT+CPIN=\"****\"".into()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_never_reach_the_trace() {
        assert_eq!(redact("AT+CPIN=\"1234\""), "AT+CPIN=\"****\"");
        assert_eq!(redact("at+cpin=1234"), "AT+CPIN=\"****\"");
        assert_eq!(redact("AT+CSQ"), "AT+CSQ");
    }

    #[test]
    fn error_results_become_modem_errors() {
        assert_eq!(
            refusal("AT+CMGS=20", Final::CmsError(42)),
            ModemError::Cms(CmsError(42))
        );
        assert!(matches!(
            refusal("AT+CPIN?", Final::CmeError(10)),
            ModemError::Cme { code: 10, .. }
        ));
    }
}
