//! What a modem says unprompted: received texts (announced with `+CMTI`, or routed straight as
//! `+CMT`), status reports (`+CDS`, or stored and announced with `+CDSI`), and calls (`RING`
//! with `+CLIP`). Texts and reports kept in the SIM are read, recorded, and only then deleted,
//! so a crash in between reads them again (and the inbox stores a text read twice once). A
//! sweep with `AT+CMGL=4` picks up whatever the announcements missed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use crate::domain::{PhoneNumber, Region};
use crate::eventlog::EventLog;
use crate::modem::actor::{ModemError, ModemHandle};
use crate::modem::at::Urc;
use crate::modem::pdu::{self, Address, AddressKind, Received as Pdu, ReportOutcome};
use crate::store::{Received, ReceivedText, Report, ReportEffect, Store};

/// How long reading or deleting one stored message may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Listing the whole SIM may take longer.
const LIST_TIMEOUT: Duration = Duration::from_secs(20);
/// Rings from the same number closer than this are one call.
const SAME_CALL: Duration = Duration::from_secs(30);

/// Handles one modem's unsolicited lines.
pub struct Inbound {
    store: Store,
    modem_id: String,
    region: Region,
    events: Arc<EventLog>,
    /// The last caller and when they last rang.
    last_call: Option<(String, Instant)>,
    /// Status reports go to a task of their own, which applies them in batches.
    reports: mpsc::UnboundedSender<Report>,
}

impl Inbound {
    /// A handler for the modem `modem_id`.
    pub fn new(store: Store, modem_id: String, region: Region, events: Arc<EventLog>) -> Inbound {
        let (reports, queue) = mpsc::unbounded_channel();
        tokio::spawn(apply_reports(store.clone(), queue));
        Inbound {
            reports,
            store,
            modem_id,
            region,
            events,
            last_call: None,
        }
    }

    /// Acts on one unsolicited line.
    pub async fn handle(&mut self, modem: &ModemHandle, urc: Urc) {
        match urc {
            Urc::NewMessage { index, .. } | Urc::NewStatusReport { index, .. } => {
                self.read_stored(modem, index).await;
            }
            Urc::Deliver { pdu } | Urc::StatusReport { pdu } => {
                self.take(&pdu).await;
            }
            Urc::CallerId { number } => self.call(&number).await,
            other => tracing::debug!(modem.id = %self.modem_id, urc = ?other, "unsolicited"),
        }
    }

    /// Reads everything the SIM holds (`AT+CMGL=4`), records it and deletes what was recorded.
    /// Returns how many stored messages were taken.
    ///
    /// # Errors
    ///
    /// Fails when the modem does not list its messages.
    pub async fn sweep(&mut self, modem: &ModemHandle) -> Result<usize, ModemError> {
        let lines = modem.command("AT+CMGL=4", &["+CMGL"], LIST_TIMEOUT).await?;
        let mut taken = 0;
        let mut lines = lines.iter();
        while let Some(line) = lines.next() {
            let Some(index) = line
                .strip_prefix("+CMGL:")
                .and_then(|fields| fields.split(',').next())
                .and_then(|i| i.trim().parse::<u32>().ok())
            else {
                continue;
            };
            let Some(pdu) = lines.next() else { break };
            if self.take(pdu).await {
                self.delete(modem, index).await;
                taken += 1;
            }
        }
        Ok(taken)
    }

    /// Reads the message at `index`, records it and deletes it from the SIM.
    async fn read_stored(&mut self, modem: &ModemHandle, index: u32) {
        let read = modem
            .command(&format!("AT+CMGR={index}"), &["+CMGR"], READ_TIMEOUT)
            .await;
        match read {
            Ok(lines) => match lines.get(1) {
                Some(pdu) => {
                    if self.take(pdu).await {
                        self.delete(modem, index).await;
                    }
                }
                None => tracing::warn!(modem.id = %self.modem_id, index, "empty SIM slot"),
            },
            // The sweep reads it later.
            Err(err) => tracing::warn!(modem.id = %self.modem_id, index, error = %err, "not read"),
        }
    }

    async fn delete(&self, modem: &ModemHandle, index: u32) {
        let command = format!("AT+CMGD={index}");
        if let Err(err) = modem.command(&command, &[], READ_TIMEOUT).await {
            tracing::warn!(modem.id = %self.modem_id, index, error = %err, "not deleted");
        }
    }

    /// Records one PDU from the modem; `true` when it may be deleted from the SIM (recorded,
    /// or not worth keeping).
    async fn take(&mut self, hex: &str) -> bool {
        match pdu::decode(hex) {
            Ok(Pdu::Deliver(deliver)) => {
                let text = ReceivedText {
                    modem_id: self.modem_id.clone(),
                    number: self.number(&deliver.address),
                    body: deliver.text,
                    network_time: deliver.timestamp.map(|t| t.timestamp_millis()),
                    concat: deliver.concat.map(|c| (c.reference, c.total, c.part)),
                };
                match self.store.store_text(&text).await {
                    Ok(Received::New(id)) => {
                        tracing::info!(
                            modem.id = %self.modem_id,
                            inbox.id = id,
                            from = %masked(&text.number),
                            "text received"
                        );
                        self.events.record(
                            "inbox.sms",
                            None,
                            json!({"id": id, "modem": self.modem_id, "from": text.number}),
                        );
                        true
                    }
                    Ok(Received::Duplicate | Received::Partial) => true,
                    Err(err) => {
                        tracing::error!(error = ?err, "received text not stored; kept on the SIM");
                        false
                    }
                }
            }
            Ok(Pdu::StatusReport(report)) => {
                let delivered = match report.outcome() {
                    ReportOutcome::Delivered => Some(true),
                    ReportOutcome::Failed => Some(false),
                    ReportOutcome::Pending => None,
                };
                // Applied off this task, so that received texts are not held up meanwhile.
                let _ = self.reports.send(Report {
                    modem_id: self.modem_id.clone(),
                    mr: report.message_reference,
                    recipient: report.recipient.value.clone(),
                    delivered,
                    status: report.status,
                });
                true
            }
            Ok(Pdu::Submit(_)) => true,
            Err(err) => {
                // Kept out of the SIM, or it would fill up; the PDU is in the trace.
                tracing::warn!(modem.id = %self.modem_id, error = %err, "PDU not understood");
                true
            }
        }
    }

    async fn call(&mut self, number: &str) {
        let number = if number.is_empty() {
            "unknown".to_owned()
        } else {
            PhoneNumber::parse(number, self.region)
                .map(|n| n.as_str().to_owned())
                .unwrap_or_else(|_| number.to_owned())
        };
        let now = Instant::now();
        let same =
            matches!(&self.last_call, Some((n, at)) if *n == number && now - *at < SAME_CALL);
        self.last_call = Some((number.clone(), now));
        if same {
            return;
        }
        match self.store.store_call(&self.modem_id, &number).await {
            Ok(id) => {
                tracing::info!(
                    modem.id = %self.modem_id,
                    inbox.id = id,
                    from = %masked(&number),
                    "call received"
                );
                self.events.record(
                    "inbox.call",
                    None,
                    json!({"id": id, "modem": self.modem_id, "from": number}),
                );
            }
            Err(err) => tracing::error!(error = ?err, "call not stored"),
        }
    }

    /// A sender in E.164 when it is a number; a name as the network gave it.
    fn number(&self, address: &Address) -> String {
        match address.kind {
            AddressKind::Alphanumeric => address.value.clone(),
            _ => PhoneNumber::parse(&address.value, self.region)
                .map(|n| n.as_str().to_owned())
                .unwrap_or_else(|_| address.value.clone()),
        }
    }
}

/// A number with its middle hidden, for logs at info level.
fn masked(number: &str) -> String {
    if number.starts_with('+') {
        PhoneNumber::from_stored(number.to_owned()).masked()
    } else {
        number.to_owned()
    }
}

/// Tries before a report that matches no segment is let go.
const REPORT_TRIES: u32 = 6;
/// Reports applied in one transaction at most.
const REPORT_BATCH: usize = 500;

/// A report waiting to be applied.
struct Waiting {
    report: Report,
    tries: u32,
    due: tokio::time::Instant,
}

/// Applies one modem's status reports until its handler is gone: everything that came
/// together in one transaction. A report can overtake the record of its segment's `+CMGS`
/// (the network may answer within milliseconds, before the worker's next step commits it), so
/// one that matches nothing is tried again a few times, after 0.2, 0.4, 0.8 s and so on, before
/// it is let go; so is one that met a busy or restarting database.
async fn apply_reports(store: Store, mut queue: mpsc::UnboundedReceiver<Report>) {
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut open = true;
    loop {
        // 1. Wait for a report, or for the first retry that is due.
        let first_due = waiting.iter().map(|w| w.due).min();
        let received = match (open, first_due) {
            (true, Some(due)) => tokio::time::timeout_at(due, queue.recv()).await.ok(),
            (true, None) => Some(queue.recv().await),
            (false, Some(due)) => {
                tokio::time::sleep_until(due).await;
                None
            }
            (false, None) => return,
        };
        let now = tokio::time::Instant::now();
        match received {
            Some(Some(report)) => waiting.push(Waiting {
                report,
                tries: 0,
                due: now,
            }),
            Some(None) => open = false,
            None => {}
        }

        // 2. Take whatever else came meanwhile.
        while open && waiting.len() < REPORT_BATCH {
            match queue.try_recv() {
                Ok(report) => waiting.push(Waiting {
                    report,
                    tries: 0,
                    due: now,
                }),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }

        // 3. Apply those that are due, together.
        let (due, later): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|w| w.due <= now);
        waiting = later;
        if due.is_empty() {
            continue;
        }
        let reports: Vec<Report> = due.iter().map(|w| w.report.clone()).collect();
        let effects = match store.apply_reports(&reports).await {
            Ok(effects) => effects.into_iter().map(Some).collect(),
            Err(err) => {
                tracing::warn!(error = ?err, count = due.len(), "status reports not recorded");
                vec![None; due.len()]
            }
        };
        for (mut report, effect) in due.into_iter().zip(effects) {
            let retry = match &effect {
                None => true,
                Some(ReportEffect::Unmatched) => report.report.delivered.is_some(),
                Some(effect) => {
                    tracing::debug!(modem.id = %report.report.modem_id, ?effect, "status report");
                    false
                }
            };
            report.tries += 1;
            if retry && report.tries < REPORT_TRIES {
                report.due = now + Duration::from_millis(100 << report.tries);
                waiting.push(report);
            } else if retry {
                tracing::info!(
                    modem.id = %report.report.modem_id,
                    mr = report.report.mr,
                    "status report not applied"
                );
            }
        }
    }
}
