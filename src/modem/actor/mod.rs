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
//!
//! The thread itself is in [`line`]: it sleeps on one channel that carries both the requests and
//! the bytes a reader thread takes off the port, so a request is served the moment it comes and
//! an idle modem costs nothing.

mod line;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::at::Urc;
use super::cms::CmsError;
use super::simulated::SimulatedModem;
use super::transport::PortSettings;
use line::{Actor, Event, Request};

/// AT exchanges kept for the trace view.
const TRACE_LEN: usize = 300;
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
    /// What had to be written down before the segment went out could not be, so it was not
    /// sent.
    #[error("the segment was not sent: its journal entry failed: {reason}")]
    NotRecorded {
        /// Why the entry failed.
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

/// The handle callers use; cheap to clone. The actor stops when every handle is dropped.
#[derive(Clone)]
pub struct ModemHandle {
    requests: std::sync::mpsc::Sender<Event>,
    trace: Arc<Mutex<VecDeque<Exchange>>>,
    link: Arc<Link>,
    /// Alive while any handle is: the actor stops once only its weak twin is left.
    _alive: Arc<()>,
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
        let (requests, inbox) = std::sync::mpsc::channel();
        let (events, urcs) = mpsc::unbounded_channel();
        let trace = Arc::new(Mutex::new(VecDeque::with_capacity(TRACE_LEN)));
        let link = Arc::new(Link::default());
        let alive = Arc::new(());
        let actor = Actor::new(
            settings,
            simulated,
            (requests.clone(), inbox),
            events,
            trace.clone(),
            link.clone(),
            Arc::downgrade(&alive),
        );
        std::thread::Builder::new()
            .name("modem".into())
            .spawn(move || actor.run())
            .ok();
        (
            ModemHandle {
                requests,
                trace,
                link,
                _alive: alive,
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
        let _ = self.requests.send(Event::Request(Request::Close));
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
            .send(Event::Request(Request::Command {
                command: command.to_owned(),
                expect: expect.iter().map(|s| (*s).to_owned()).collect(),
                timeout,
                reply,
            }))
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
        self.send_pdu_on(tpdu_length, hex, timeout, None).await
    }

    /// Like [`ModemHandle::send_pdu`], with `record` run on the actor's thread after `AT+CMGS`
    /// is written and before the PDU is: the journal entry that says the segment may be on the
    /// air is made durable while the modem answers with its prompt. When `record` fails the
    /// PDU is not written, and the error is [`ModemError::NotRecorded`].
    ///
    /// # Errors
    ///
    /// As [`ModemHandle::send_pdu`], and when `record` fails.
    pub async fn send_pdu_recorded(
        &self,
        tpdu_length: usize,
        hex: &str,
        timeout: Duration,
        record: impl FnOnce() -> std::io::Result<()> + Send + 'static,
    ) -> Result<u8, ModemError> {
        self.send_pdu_on(tpdu_length, hex, timeout, Some(Box::new(record)))
            .await
    }

    async fn send_pdu_on(
        &self,
        tpdu_length: usize,
        hex: &str,
        timeout: Duration,
        record: Option<line::Record>,
    ) -> Result<u8, ModemError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Event::Request(Request::SendPdu {
                tpdu_length,
                hex: hex.to_owned(),
                timeout,
                record,
                reply,
            }))
            .map_err(|_| ModemError::Stopped)?;
        answer.await.map_err(|_| ModemError::Stopped)?
    }

    /// The last AT exchanges, oldest first.
    pub fn trace(&self) -> Vec<Exchange> {
        let trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        trace.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::line::{redact, refusal};
    use super::*;
    use crate::modem::at::Final;

    #[test]
    fn pins_never_reach_the_trace() {
        assert_eq!(redact("AT+CPIN=\"1234\""), "AT+CPIN=\"****\"");
        assert_eq!(redact("at+cpin=1234"), "AT+CPIN=\"****\"");
        assert_eq!(redact("AT+CSQ"), "AT+CSQ");
    }

    #[tokio::test]
    async fn a_hang_up_while_a_segment_is_answered_is_not_its_answer() {
        use crate::modem::simulator::SimConfig;
        let sim = SimulatedModem::new(SimConfig {
            segment_time_ms: 300,
            ..SimConfig::default()
        });
        let (modem, _urcs) = ModemHandle::spawn_simulated(PortSettings::new("sim"), sim.clone());
        assert!(modem.wait_ready(Duration::from_secs(10)).await);
        let options = crate::modem::pdu::SubmitOptions {
            status_report: false,
            validity_minutes: None,
            reference: 1,
        };
        let part = crate::modem::pdu::encode_submit("+59171234567", "hola", &options).unwrap();
        let sending = tokio::spawn({
            let modem = modem.clone();
            let (length, hex) = (part[0].tpdu_length, part[0].hex.clone());
            async move { modem.send_pdu(length, &hex, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        sim.with_simulator(|s, now| s.hang_up(now));
        // Taken for a refusal, the segment (which is on the air) would be sent again.
        assert!(sending.await.unwrap().is_ok());
        assert_eq!(sim.with_simulator(|s, _| s.accepted()), 1);
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
