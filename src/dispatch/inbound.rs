//! What a modem says unprompted: received texts (announced with `+CMTI`, or routed straight as
//! `+CMT`), status reports (`+CDS`, or stored and announced with `+CDSI`), and calls (`RING`
//! with `+CLIP`). Texts and reports kept in the SIM are read, recorded, and only then deleted,
//! so a crash in between reads them again (and the inbox stores a text read twice once). A
//! sweep with `AT+CMGL=4` picks up whatever the announcements missed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::domain::{PhoneNumber, Region};
use crate::eventlog::EventLog;
use crate::modem::actor::{ModemError, ModemHandle};
use crate::modem::at::Urc;
use crate::modem::pdu::{self, Address, AddressKind, Received as Pdu, ReportOutcome};
use crate::store::{Received, ReceivedText, ReportEffect, Store};

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
}

impl Inbound {
    /// A handler for the modem `modem_id`.
    pub fn new(store: Store, modem_id: String, region: Region, events: Arc<EventLog>) -> Inbound {
        Inbound {
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
                let store = self.store.clone();
                let modem_id = self.modem_id.clone();
                let recipient = report.recipient.value.clone();
                let (mr, status) = (report.message_reference, report.status);
                // A report may overtake the record of its own `+CMGS`: it is retried for a
                // while off this task, so that received texts are not held up meanwhile.
                tokio::spawn(async move {
                    apply_report(store, &modem_id, mr, &recipient, delivered, status).await;
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

/// Records a status report. A report can overtake the record of its segment's `+CMGS` (the
/// network may answer within milliseconds), so one that matches nothing is tried again a few
/// times before it is let go.
async fn apply_report(
    store: Store,
    modem_id: &str,
    mr: u8,
    recipient: &str,
    delivered: Option<bool>,
    status: u8,
) {
    let mut wait = Duration::from_millis(200);
    for _ in 0..6 {
        match store
            .apply_report(modem_id, mr, recipient, delivered, status)
            .await
        {
            Ok(ReportEffect::Unmatched) if delivered.is_some() => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Ok(effect) => {
                tracing::debug!(modem.id = %modem_id, effect = ?effect, "status report");
                return;
            }
            Err(err) => {
                // A busy or restarting database: the report is worth another try.
                tracing::warn!(error = ?err, "status report not recorded; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    tracing::info!(modem.id = %modem_id, mr, "status report not applied");
}
