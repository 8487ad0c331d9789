//! The actor's thread: it opens the port, runs the init sequence, and then serves requests one at
//! a time, reopening the port with back-off when it fails.
//!
//! A blocking read cannot be interrupted by a new request, so the port is read by a second
//! thread, the reader, which forwards what it reads into the same channel the requests come
//! through. The actor sleeps on that one channel: a request is written to the modem the moment it
//! arrives (not at the end of a polling interval, which with a fast modem was most of the time
//! between two segments), and an idle modem wakes nobody. The reader stops, and is joined, before
//! the port is opened again, and bytes it sent are tagged with its number, so nothing read before
//! a reset is taken for an answer after it.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{Exchange, INIT, Link, ModemError, TRACE_LEN};
use crate::modem::at::{Final, Framer, Line, Urc};
use crate::modem::cms::CmsError;
use crate::modem::simulated::SimulatedModem;
use crate::modem::transport::{Port, PortSettings};

/// How long one read of the reader thread waits, and so how soon it notices it must stop.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// How often an idle actor checks that someone still holds a handle.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Ctrl-Z, which ends the PDU after the prompt; Esc abandons it.
const CTRL_Z: u8 = 0x1A;
const ESC: u8 = 0x1B;
/// Longest pause between attempts to reopen a port that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a command of the init sequence may take.
const INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a handle asks of the actor.
pub(super) enum Request {
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
        /// Made durable after `AT+CMGS` is written and before the PDU is: while the modem
        /// answers with its prompt.
        record: Option<Record>,
        reply: oneshot::Sender<Result<u8, ModemError>>,
    },
}

/// What must be on disk before a segment may go on the air.
pub(super) type Record = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// What wakes the actor: a request, or what the reader got from the port.
pub(super) enum Event {
    Request(Request),
    Input {
        /// The number of the reader that read it.
        reader: u64,
        bytes: io::Result<Vec<u8>>,
    },
}

/// The reader thread of the port that is open now.
struct Reader {
    id: u64,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

pub(super) struct Actor {
    settings: PortSettings,
    /// The simulated modem whose memory port is opened instead of `settings.path`.
    simulated: Option<SimulatedModem>,
    /// Given to each reader, to send what it reads.
    sender: Sender<Event>,
    inbox: Receiver<Event>,
    events: mpsc::UnboundedSender<Urc>,
    trace: Arc<Mutex<VecDeque<Exchange>>>,
    link: Arc<Link>,
    /// Gone once every handle is dropped.
    alive: Weak<()>,
    started: Instant,
    framer: Framer,
    /// Requests that came while another one was being answered, in order.
    queued: VecDeque<Request>,
    reader: Option<Reader>,
    readers: u64,
}

/// What the actor is waiting for on the port.
enum Phase {
    /// The final result of a command; the lines of its answer so far.
    Answer(Vec<String>),
    /// The `> ` prompt of `AT+CMGS`.
    Prompt,
    /// The answer to a PDU: like [`Phase::Answer`], but a call's result (`NO CARRIER` when a
    /// caller hangs up) is the modem's own news, not the answer.
    Sent(Vec<String>),
}

/// A request that failed because of the modem, or because of the port itself.
enum Failure {
    Modem(ModemError),
    Port(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Port(e)
    }
}

impl Actor {
    pub(super) fn new(
        settings: PortSettings,
        simulated: Option<SimulatedModem>,
        (sender, inbox): (Sender<Event>, Receiver<Event>),
        events: mpsc::UnboundedSender<Urc>,
        trace: Arc<Mutex<VecDeque<Exchange>>>,
        link: Arc<Link>,
        alive: Weak<()>,
    ) -> Actor {
        Actor {
            settings,
            simulated,
            sender,
            inbox,
            events,
            trace,
            link,
            alive,
            started: Instant::now(),
            framer: Framer::new(),
            queued: VecDeque::new(),
            reader: None,
            readers: 0,
        }
    }

    /// Opens, initialises and serves the port until it is closed on purpose or every handle is
    /// gone; a port that fails is opened again, with back-off while it keeps failing.
    pub(super) fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            // 1. Open the port and start reading it.
            let opened = self
                .open()
                .map_err(|e| format!("cannot open {}: {e}", self.settings.path))
                .and_then(|port| match self.start_reader(port.as_ref()) {
                    Ok(()) => Ok(port),
                    Err(e) => Err(format!("cannot read {}: {e}", self.settings.path)),
                });
            let mut port = match opened {
                Ok(port) => port,
                Err(reason) => {
                    tracing::debug!(port = %self.settings.path, error = %reason, "port not open");
                    self.link.failed(reason);
                    if !self.refuse_until(Instant::now() + backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };

            // 2. Bring the modem to a known state.
            self.framer = Framer::new();
            if let Err(err) = self.prepare(port.as_mut()) {
                tracing::warn!(port = %self.settings.path, error = %err, "modem not initialised");
                self.link.failed(err.to_string());
                self.stop_reader();
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

            // 3. Serve requests until the port fails or the actor is done.
            let served = self.serve(port.as_mut());
            self.stop_reader();
            match served {
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
            Some(simulated) => Ok(Box::new(simulated.open_port(READ_TIMEOUT))),
            None => Ok(Box::new(self.settings.open(READ_TIMEOUT)?)),
        }
    }

    /// Starts a reader thread on a second handle of `port`.
    fn start_reader(&mut self, port: &dyn Port) -> io::Result<()> {
        let mut port = port.try_clone_port()?;
        self.readers += 1;
        let id = self.readers;
        let stop = Arc::new(AtomicBool::new(false));
        let sender = self.sender.clone();
        let thread = std::thread::Builder::new()
            .name("modem-reader".into())
            .spawn({
                let stop = stop.clone();
                move || read_until_stopped(port.as_mut(), id, &sender, &stop)
            })?;
        self.reader = Some(Reader { id, stop, thread });
        Ok(())
    }

    /// Stops the reader and waits for it, so that the port can be opened again.
    fn stop_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.stop.store(true, Ordering::Relaxed);
            let _ = reader.thread.join();
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
        self.drain(Duration::from_millis(200))
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
        while let Some(request) = self.queued.pop_front() {
            if matches!(request, Request::Close) {
                return false;
            }
            fail(request, ModemError::Disconnected);
        }
        loop {
            if self.alive.strong_count() == 0 {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left.min(IDLE_CHECK)) {
                Ok(Event::Request(Request::Close)) => return false,
                Ok(Event::Request(request)) => fail(request, ModemError::Disconnected),
                Ok(Event::Input { .. }) => {}
                Err(RecvTimeoutError::Timeout) if Instant::now() >= until => return true,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Serves requests on an open port; returns `Ok` when every handle is gone or the port was
    /// closed on purpose, and `Err` when the port fails or must be reset.
    fn serve(&mut self, port: &mut dyn Port) -> io::Result<()> {
        loop {
            if self.alive.strong_count() == 0 {
                return Ok(());
            }
            let Some(request) = self.queued.pop_front() else {
                // Idle: what the modem says now is URCs (sent out as events) or stray lines.
                self.input(Instant::now() + IDLE_CHECK, &[])?;
                continue;
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
                    self.answer(reply, answer, port_error)?;
                }
                Request::SendPdu {
                    tpdu_length,
                    hex,
                    timeout,
                    record,
                    reply,
                } => {
                    let result = self.send_pdu(port, tpdu_length, &hex, timeout, record);
                    if matches!(result, Err(Failure::Modem(_))) {
                        // Whatever went wrong, the modem must not stay waiting for PDU text.
                        let _ = port.write_all(&[ESC]);
                    }
                    let (answer, port_error) = self.settle(port, result);
                    self.answer(reply, answer, port_error)?;
                }
            }
        }
    }

    /// Sends a request its answer. When the port failed or must be reset, the modem is marked
    /// not ready first, so that whoever reads the answer also sees that.
    fn answer<T>(
        &self,
        reply: oneshot::Sender<Result<T, ModemError>>,
        answer: Result<T, ModemError>,
        port_error: Option<io::Error>,
    ) -> io::Result<()> {
        if port_error.is_some() {
            self.link.ready.store(false, Ordering::Release);
        }
        let _ = reply.send(answer);
        port_error.map_or(Ok(()), Err)
    }

    /// Turns a request's outcome into its answer, and the port's failure, if that was the
    /// cause. A modem that did not answer in time is reset: an escape cancels a PDU it may be
    /// waiting for, and the port is closed and opened again, so that a late answer is read and
    /// dropped by [`Actor::prepare`] instead of being taken for the next command's.
    fn settle<T>(
        &mut self,
        port: &mut dyn Port,
        result: Result<T, Failure>,
    ) -> (Result<T, ModemError>, Option<io::Error>) {
        match result {
            Ok(value) => (Ok(value), None),
            Err(Failure::Port(err)) => (Err(ModemError::Disconnected), Some(err)),
            Err(Failure::Modem(err @ ModemError::Timeout { .. })) => {
                tracing::warn!(error = %err, "modem timeout; resetting the port");
                let _ = port.write_all(&[ESC]);
                let reset = io::Error::other(format!("{err}; the port was reset"));
                (Err(err), Some(reset))
            }
            Err(Failure::Modem(err)) => (Err(err), None),
        }
    }

    /// Reads and drops answer lines until the modem has been quiet for `quiet`.
    fn drain(&mut self, quiet: Duration) -> io::Result<()> {
        let mut until = Instant::now() + quiet;
        while Instant::now() < until {
            if self
                .input(until, &[])?
                .is_some_and(|lines| !lines.is_empty())
            {
                until = Instant::now() + quiet;
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
        record: Option<Record>,
    ) -> Result<u8, Failure> {
        let command = format!("AT+CMGS={tpdu_length}");
        let deadline = Instant::now() + timeout;
        self.write(port, &command, format!("{command}\r").as_bytes())?;
        let recorded = record.map_or(Ok(()), |record| record());
        self.wait(&command, &[], Phase::Prompt, (deadline, timeout))?;
        if let Err(err) = recorded {
            // Not written down, so not sent: the escape that follows cancels the prompt.
            return Err(Failure::Modem(ModemError::NotRecorded {
                reason: err.to_string(),
            }));
        }

        // From here the segment may reach the network: a failure that does not say the modem
        // refused it leaves it unconfirmed, never simply failed.
        let mut pdu = hex.as_bytes().to_vec();
        pdu.push(CTRL_Z);
        let unconfirmed = |reason: &str| {
            Failure::Modem(ModemError::Unconfirmed {
                reason: reason.to_owned(),
            })
        };
        self.write(port, hex, &pdu)
            .map_err(|_| unconfirmed("the port failed while the PDU was written"))?;
        let lines = self
            .wait(
                &command,
                &["+CMGS"],
                Phase::Sent(Vec::new()),
                (deadline, timeout),
            )
            .map_err(|failure| match failure {
                Failure::Port(_) => unconfirmed("the port failed before +CMGS"),
                // Only a `+CMS ERROR` says the network did not take the segment; a timeout
                // leaves it in doubt as it is.
                Failure::Modem(err @ (ModemError::Cms(_) | ModemError::Timeout { .. })) => {
                    Failure::Modem(err)
                }
                Failure::Modem(other) => unconfirmed(&format!("answered {other} instead of +CMGS")),
            })?;
        // `+CMGS: <mr>[,<scts or ackpdu>]`: the reference is the first field.
        lines
            .iter()
            .find_map(|l| {
                let fields = l.strip_prefix("+CMGS:")?;
                fields.split(',').next()?.trim().parse::<u8>().ok()
            })
            .ok_or_else(|| unconfirmed("OK without a message reference"))
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
            command,
            expect,
            Phase::Answer(Vec::new()),
            (deadline, timeout),
        )
    }

    /// Reads until the phase completes or the deadline passes. URCs go to the event channel.
    fn wait(
        &mut self,
        command: &str,
        expect: &[&str],
        mut phase: Phase,
        (deadline, timeout): (Instant, Duration),
    ) -> Result<Vec<String>, Failure> {
        loop {
            for line in self.input(deadline, expect)?.unwrap_or_default() {
                match (&mut phase, line) {
                    (Phase::Prompt, Line::Prompt) => return Ok(Vec::new()),
                    (Phase::Answer(lines) | Phase::Sent(lines), Line::Response(text)) => {
                        lines.push(text);
                    }
                    (Phase::Answer(lines) | Phase::Sent(lines), Line::Final(Final::Ok)) => {
                        return Ok(std::mem::take(lines));
                    }
                    (Phase::Sent(_), Line::Final(Final::Call(result))) => {
                        tracing::debug!(result, "call result while a segment was answered");
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

    /// Waits for the next event, until `until` at the latest. Returns the lines it framed
    /// (without the URCs, which are sent out as events here); an empty list when a request came
    /// instead (it is queued) or stale bytes were dropped; `None` when nothing came in time.
    fn input(&mut self, until: Instant, expect: &[&str]) -> io::Result<Option<Vec<Line>>> {
        let left = until.saturating_duration_since(Instant::now());
        let (reader, bytes) = match self.inbox.recv_timeout(left) {
            Ok(Event::Input { reader, bytes }) => (reader, bytes),
            Ok(Event::Request(request)) => {
                self.queued.push_back(request);
                return Ok(Some(Vec::new()));
            }
            Err(RecvTimeoutError::Timeout) => return Ok(None),
            // The actor holds a sender itself, so the channel cannot close.
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
        };
        if self.reader.as_ref().is_none_or(|r| r.id != reader) {
            return Ok(Some(Vec::new()));
        }
        let mut lines = self.framer.push(&bytes?, expect);
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
        Ok(Some(lines))
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

/// The reader thread: forwards what the port gives until it is told to stop, the port fails,
/// or the actor is gone.
fn read_until_stopped(port: &mut dyn Port, id: u64, sender: &Sender<Event>, stop: &AtomicBool) {
    let mut buffer = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let bytes = match port.read(&mut buffer) {
            Ok(0) => Err(io::Error::other("the port was closed")),
            Ok(n) => Ok(buffer[..n].to_vec()),
            Err(e) if is_quiet(&e) => continue,
            Err(e) => Err(e),
        };
        let failed = bytes.is_err();
        if sender.send(Event::Input { reader: id, bytes }).is_err() || failed {
            return;
        }
    }
}

/// A read that found nothing to read, as opposed to one that failed.
fn is_quiet(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
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

pub(super) fn refusal(command: &str, result: Final) -> ModemError {
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
pub(super) fn redact(text: &str) -> String {
    if text.to_ascii_uppercase().starts_with("AT+CPIN=") {
        "AT+CPIN=\"****\"".into()
    } else {
        text.to_owned()
    }
}
