//! A simulated Huawei E303: the AT subset Pregonero uses, answered the way the real modem does,
//! so that a fresh install sends "for real" and tests can drive every path without hardware.
//!
//! The simulator is a state machine with no I/O and no clock of its own: bytes written by the
//! host go in through [`Simulator::write`] with the current time, and [`Simulator::read`] gives
//! back what the modem has said by then. Sending takes `segment_time`; status reports follow a
//! moment later. A transport (in memory, or a pseudo-terminal) moves the bytes.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, Utc};

use super::pdu::{self, Received};

/// Ctrl-Z ends a PDU after the `> ` prompt; Esc cancels it.
const CTRL_Z: u8 = 0x1A;
const ESC: u8 = 0x1B;
/// How many sent segments and idle gaps are remembered for tests and benchmarks; the older
/// half is let go past this, so a simulator left running for months stays small.
const KEPT: usize = 100_000;

/// How the simulated modem behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Milliseconds from the end of a PDU to `+CMGS:` (a real modem takes 2–6 s).
    pub segment_time_ms: u64,
    /// Milliseconds from `+CMGS:` to the status report, when one was asked for.
    pub report_delay_ms: u64,
    /// Recipients whose messages fail, with the `+CMS ERROR` code they fail with.
    pub failing_numbers: HashMap<String, u16>,
    /// The signal `+CSQ` reports (0–31).
    pub signal: u8,
    /// What the operator answers a USSD request with; `None` answers `+CUSD: 4` (not
    /// supported).
    pub ussd_answer: Option<String>,
    /// How the modem hands that answer back.
    pub ussd_shape: UssdShape,
    /// Milliseconds from `AT+CUSD` to the `+CUSD` answer (the network's round trip).
    pub ussd_delay_ms: u64,
}

/// How a modem writes a USSD answer's text in `+CUSD`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UssdShape {
    /// As text, with scheme 15.
    Plain,
    /// As the hex of packed GSM 7-bit septets, with scheme 15: the E303's habit.
    #[default]
    Packed,
    /// As the hex of UCS-2, with scheme 72.
    Ucs2,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            segment_time_ms: 3_000,
            report_delay_ms: 2_000,
            failing_numbers: HashMap::new(),
            signal: 20,
            ussd_answer: Some("Tu saldo es Bs 25,50 vigente hasta 31/12/2026".into()),
            ussd_shape: UssdShape::Packed,
            ussd_delay_ms: 1_000,
        }
    }
}

/// A message in the simulated SIM's memory.
#[derive(Clone, Debug)]
struct Stored {
    /// 0 received unread, 1 received read.
    stat: u8,
    pdu: String,
}

/// Output that becomes readable at a given time.
#[derive(Debug)]
struct Scheduled {
    at_ms: u64,
    bytes: Vec<u8>,
}

/// The simulated modem.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    echo: bool,
    pdu_mode: bool,
    /// `+CNMI` `ds`: 1 routes status reports straight out as `+CDS`, 2 stores them (`+CDSI`).
    report_routing: u8,
    line: Vec<u8>,
    /// Set after `AT+CMGS=n`: the octets announced, while the PDU is being typed.
    awaiting_pdu: Option<usize>,
    storage: BTreeMap<u32, Stored>,
    next_mr: u8,
    /// The concatenation reference of the last long text received.
    inbound_reference: u8,
    /// When the last segment was answered, until the next `AT+CMGS` comes.
    last_done_ms: Option<u64>,
    /// Milliseconds from each `+CMGS` answer to the next `AT+CMGS`: the time the modem idled
    /// between two segments.
    gaps_ms: Vec<u64>,
    /// Milliseconds spent sending segments.
    air_ms: u64,
    /// When the modem is busy sending, the time it will be free again.
    busy_until_ms: u64,
    scheduled: Vec<Scheduled>,
    /// Recipients of every segment accepted, in order, for tests to inspect.
    sent: Vec<(String, String)>,
    /// Segments accepted since the start, however many `sent` still holds.
    accepted: u64,
    /// The USSD codes asked, decoded, in order.
    ussd_asked: Vec<String>,
}

impl Simulator {
    /// A modem just switched on: echo on, text mode, nothing stored.
    pub fn new(config: SimConfig) -> Simulator {
        Simulator {
            config,
            echo: true,
            pdu_mode: false,
            report_routing: 0,
            line: Vec::new(),
            awaiting_pdu: None,
            storage: BTreeMap::new(),
            next_mr: 0,
            inbound_reference: 0,
            last_done_ms: None,
            gaps_ms: Vec::new(),
            air_ms: 0,
            busy_until_ms: 0,
            scheduled: Vec::new(),
            sent: Vec::new(),
            accepted: 0,
            ussd_asked: Vec::new(),
        }
    }

    /// Bytes from the host at time `now_ms`.
    pub fn write(&mut self, bytes: &[u8], now_ms: u64) {
        for &byte in bytes {
            if self.awaiting_pdu.is_some() {
                match byte {
                    CTRL_Z => self.finish_pdu(now_ms),
                    ESC => {
                        self.awaiting_pdu = None;
                        self.line.clear();
                        self.say(now_ms, "\r\nOK\r\n");
                    }
                    _ => self.line.push(byte),
                }
                continue;
            }
            // Outside a PDU an escape or Ctrl-Z means nothing, as on the real modem.
            if matches!(byte, CTRL_Z | ESC) {
                continue;
            }
            if self.echo {
                self.emit(now_ms, vec![byte]);
            }
            match byte {
                b'\r' => {
                    let command = String::from_utf8_lossy(&self.line).trim().to_owned();
                    self.line.clear();
                    if !command.is_empty() {
                        self.command(&command, now_ms);
                    }
                }
                b'\n' => {}
                _ => self.line.push(byte),
            }
        }
    }

    /// Everything the modem has said up to `now_ms`.
    pub fn read(&mut self, now_ms: u64) -> Vec<u8> {
        self.scheduled.sort_by_key(|s| s.at_ms);
        let due = self.scheduled.partition_point(|s| s.at_ms <= now_ms);
        self.scheduled.drain(..due).flat_map(|s| s.bytes).collect()
    }

    /// When the next output becomes readable, if any is waiting.
    pub fn next_output_at(&self) -> Option<u64> {
        self.scheduled.iter().map(|s| s.at_ms).min()
    }

    /// A text arrives from `sender`: each of its parts stored in the SIM and announced with
    /// `+CMTI`.
    pub fn receive_sms(&mut self, sender: &str, text: &str, now_ms: u64) {
        self.inbound_reference = self.inbound_reference.wrapping_add(1);
        let Ok(parts) =
            pdu::encode_deliver_parts(sender, text, self.inbound_reference, network_time(now_ms))
        else {
            return;
        };
        for part in parts {
            self.receive_pdu(part, now_ms);
        }
    }

    /// An SMS-DELIVER PDU arrives as it is: stored in the SIM and announced with `+CMTI`.
    pub fn receive_pdu(&mut self, pdu: String, now_ms: u64) {
        let index = self.store(0, pdu);
        self.say(now_ms, &format!("\r\n+CMTI: \"SM\",{index}\r\n"));
    }

    /// An SMS-DELIVER PDU stored in the SIM without an announcement, as when it came while the
    /// gateway was not listening.
    pub fn store_silently(&mut self, pdu: String) {
        self.store(0, pdu);
    }

    /// The idle time between each `+CMGS` answer and the next `AT+CMGS`, for benchmarks.
    pub fn gaps_ms(&self) -> &[u64] {
        &self.gaps_ms
    }

    /// Milliseconds spent on the air, for benchmarks.
    pub fn air_ms(&self) -> u64 {
        self.air_ms
    }

    /// How many messages the SIM holds.
    pub fn stored(&self) -> usize {
        self.storage.len()
    }

    /// The caller of a ringing call hangs up: the modem says `NO CARRIER` on its own.
    pub fn hang_up(&mut self, now_ms: u64) {
        self.say(now_ms, "\r\nNO CARRIER\r\n");
    }

    /// A call rings from `caller`.
    pub fn ring(&mut self, caller: &str, now_ms: u64) {
        self.say(
            now_ms,
            &format!("\r\nRING\r\n\r\n+CLIP: \"{caller}\",145,,,,0\r\n"),
        );
    }

    /// Huawei's periodic noise: a signal report and a boot line.
    pub fn noise(&mut self, now_ms: u64) {
        let signal = self.config.signal;
        self.say(
            now_ms,
            &format!("\r\n^RSSI:{signal}\r\n\r\n^BOOT:20123,0,0,0,72\r\n"),
        );
    }

    /// How many segments were accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Sets what the operator answers USSD requests with, and how the modem writes it.
    pub fn set_ussd_answer(&mut self, answer: Option<String>, shape: UssdShape) {
        self.config.ussd_answer = answer;
        self.config.ussd_shape = shape;
    }

    /// The USSD codes asked so far, decoded (`*105#`), oldest first.
    pub fn ussd_asked(&self) -> &[String] {
        &self.ussd_asked
    }

    /// The recipients and PDUs of the segments accepted so far (the latest 100,000).
    pub fn sent(&self) -> &[(String, String)] {
        &self.sent
    }

    fn command(&mut self, command: &str, now_ms: u64) {
        let upper = command.to_ascii_uppercase();
        let reply: String = match upper.as_str() {
            "AT" => ok(""),
            "ATE0" => {
                self.echo = false;
                ok("")
            }
            "ATE1" => {
                self.echo = true;
                ok("")
            }
            "AT+CMEE=1" | "AT+CMEE=2" => ok(""),
            "AT+CMGF=0" => {
                self.pdu_mode = true;
                ok("")
            }
            "AT+CMGF=1" => {
                self.pdu_mode = false;
                ok("")
            }
            "AT+CGMI" => ok("huawei\r\n"),
            "AT+CGMM" => ok("E303\r\n"),
            "AT+CGMR" => ok("22.157.18.00.715\r\n"),
            "AT+CGSN" => ok("861234567890123\r\n"),
            "AT+CIMI" => ok("736020123456789\r\n"),
            "AT+CPIN?" => ok("+CPIN: READY\r\n"),
            "AT+CSQ" => ok(&format!("+CSQ: {},99\r\n", self.config.signal)),
            "AT+CREG?" => ok("+CREG: 0,1\r\n"),
            "AT+COPS?" => ok("+COPS: 0,0,\"Sim Movil\",2\r\n"),
            "AT+CPMS?" => ok(&format!(
                "+CPMS: \"SM\",{n},30,\"SM\",{n},30,\"SM\",{n},30\r\n",
                n = self.storage.len()
            )),
            _ if upper.starts_with("AT+CNMI=") => {
                self.report_routing = upper
                    .split(',')
                    .nth(3)
                    .and_then(|ds| ds.trim().parse().ok())
                    .unwrap_or(0);
                ok("")
            }
            _ if upper.starts_with("AT+CPMS=") => ok("+CPMS: 0,30,0,30,0,30\r\n"),
            _ if upper.starts_with("AT+CMGS=") => {
                if let Some(done) = self.last_done_ms.take() {
                    self.gaps_ms.push(now_ms.saturating_sub(done));
                    keep_recent(&mut self.gaps_ms);
                }
                match upper["AT+CMGS=".len()..].trim().parse::<usize>() {
                    Ok(length) if self.pdu_mode && (1..=176).contains(&length) => {
                        self.awaiting_pdu = Some(length);
                        "\r\n> ".to_owned()
                    }
                    _ => "\r\n+CMS ERROR: 304\r\n".to_owned(),
                }
            }
            "AT+CUSD=2" => ok(""),
            _ if upper.starts_with("AT+CUSD=1,") => {
                self.ussd(&command["AT+CUSD=1,".len()..], now_ms)
            }
            _ if upper.starts_with("AT+CMGL=") => self.list(&upper["AT+CMGL=".len()..]),
            _ if upper.starts_with("AT+CMGR=") => self.read_one(&upper["AT+CMGR=".len()..]),
            _ if upper.starts_with("AT+CMGD=") => self.delete(&upper["AT+CMGD=".len()..]),
            _ => "\r\nERROR\r\n".to_owned(),
        };
        self.say(now_ms, &reply);
    }

    /// The PDU after `> ` is complete: check it, and answer once the segment is "on the air".
    fn finish_pdu(&mut self, now_ms: u64) {
        let announced = self.awaiting_pdu.take().unwrap_or(0);
        let hex = String::from_utf8_lossy(&self.line).trim().to_owned();
        self.line.clear();

        let submit = match pdu::decode(&hex) {
            Ok(Received::Submit(submit)) if hex.len() == 2 + announced * 2 => submit,
            _ => {
                self.say(now_ms, "\r\n+CMS ERROR: 304\r\n");
                return;
            }
        };
        let recipient = submit.address.value.clone();

        // The modem sends one segment at a time: this one starts when the last one is done.
        let start = now_ms.max(self.busy_until_ms);
        let done = start + self.config.segment_time_ms;
        self.busy_until_ms = done;
        if let Some(code) = self.config.failing_numbers.get(&recipient) {
            let reply = format!("\r\n+CMS ERROR: {code}\r\n");
            self.emit(done, reply.into_bytes());
            return;
        }

        let mr = self.next_mr;
        self.next_mr = self.next_mr.wrapping_add(1);
        self.last_done_ms = Some(done);
        self.air_ms += self.config.segment_time_ms;
        self.sent.push((recipient.clone(), hex));
        self.accepted += 1;
        keep_recent(&mut self.sent);
        self.emit(done, format!("\r\n+CMGS: {mr}\r\n\r\nOK\r\n").into_bytes());

        if submit.status_report {
            self.report(mr, &recipient, done);
        }
    }

    /// Schedules the status report for message reference `mr`, routed as `+CNMI` asked.
    fn report(&mut self, mr: u8, recipient: &str, sent_ms: u64) {
        let at = sent_ms + self.config.report_delay_ms;
        let Ok((pdu, length)) =
            pdu::encode_status_report(mr, recipient, network_time(sent_ms), network_time(at), 0x00)
        else {
            return;
        };
        let announcement = if self.report_routing == 1 {
            format!("\r\n+CDS: {length}\r\n{pdu}\r\n")
        } else {
            let index = self.store(0, pdu);
            format!("\r\n+CDSI: \"SM\",{index}\r\n")
        };
        self.emit(at, announcement.into_bytes());
    }

    fn store(&mut self, stat: u8, pdu: String) -> u32 {
        let index = (0..).find(|i| !self.storage.contains_key(i)).unwrap_or(0);
        self.storage.insert(index, Stored { stat, pdu });
        index
    }

    fn list(&mut self, which: &str) -> String {
        let wanted: Option<u8> = match which.trim() {
            "0" => Some(0),
            "1" => Some(1),
            _ => None,
        };
        let mut reply = String::new();
        for (index, stored) in self.storage.iter_mut() {
            if wanted.is_none_or(|w| w == stored.stat) {
                reply.push_str(&format!(
                    "\r\n+CMGL: {index},{},,{}\r\n{}",
                    stored.stat,
                    stored.pdu.len() / 2 - 1,
                    stored.pdu
                ));
                stored.stat = 1;
            }
        }
        ok(format!("{reply}\r\n").trim_start_matches("\r\n"))
    }

    fn read_one(&mut self, index: &str) -> String {
        match index
            .trim()
            .parse()
            .ok()
            .and_then(|i| self.storage.get_mut(&i))
        {
            Some(stored) => {
                let reply = format!(
                    "+CMGR: {},,{}\r\n{}\r\n",
                    stored.stat,
                    stored.pdu.len() / 2 - 1,
                    stored.pdu
                );
                stored.stat = 1;
                ok(&reply)
            }
            None => "\r\n+CMS ERROR: 321\r\n".to_owned(),
        }
    }

    fn delete(&mut self, index: &str) -> String {
        let index = index.split(',').next().unwrap_or_default().trim();
        match index.parse::<u32>() {
            Ok(i) => {
                self.storage.remove(&i);
                ok("")
            }
            Err(_) => "\r\n+CMS ERROR: 321\r\n".to_owned(),
        }
    }

    /// `AT+CUSD=1,"<code>",<dcs>`: `OK` now, the operator's answer as `+CUSD` a moment later.
    /// The code may come as text or packed, as the gateway chooses.
    fn ussd(&mut self, args: &str, now_ms: u64) -> String {
        let code = args.split(',').next().unwrap_or_default().trim_matches('"');
        let asked = if code.starts_with('*') || code.starts_with('#') {
            code.to_owned()
        } else {
            super::ussd::unpack_hex(code).unwrap_or_else(|| code.to_owned())
        };
        self.ussd_asked.push(asked);
        keep_recent(&mut self.ussd_asked);
        let line = match &self.config.ussd_answer {
            None => "\r\n+CUSD: 4\r\n".to_owned(),
            Some(text) => {
                let (body, dcs) = match self.config.ussd_shape {
                    UssdShape::Plain => (text.clone(), 15),
                    UssdShape::Packed => (super::ussd::pack_hex(text), 15),
                    UssdShape::Ucs2 => (
                        text.encode_utf16().map(|u| format!("{u:04X}")).collect(),
                        72,
                    ),
                };
                format!("\r\n+CUSD: 0,\"{body}\",{dcs}\r\n")
            }
        };
        let at = now_ms + self.config.ussd_delay_ms;
        self.emit(at, line.into_bytes());
        ok("")
    }

    fn say(&mut self, now_ms: u64, text: &str) {
        self.emit(now_ms, text.as_bytes().to_vec());
    }

    fn emit(&mut self, at_ms: u64, bytes: Vec<u8>) {
        self.scheduled.push(Scheduled { at_ms, bytes });
    }
}

/// Lets the older half of `items` go once it holds more than [`KEPT`].
fn keep_recent<T>(items: &mut Vec<T>) {
    if items.len() > KEPT {
        items.drain(..KEPT / 2);
    }
}

/// An answer followed by `OK`, framed as the E303 frames it.
fn ok(body: &str) -> String {
    if body.is_empty() {
        "\r\nOK\r\n".to_owned()
    } else {
        format!("\r\n{body}\r\nOK\r\n")
    }
}

/// The network's clock for time stamps: the simulator's milliseconds as UTC, shown at -04:00.
fn network_time(ms: u64) -> DateTime<FixedOffset> {
    // West 4 hours is in range, so the offset always exists; UTC is the harmless fallback.
    let zone = FixedOffset::west_opt(4 * 3600)
        .or_else(|| FixedOffset::east_opt(0))
        .expect("UTC is a valid offset");
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .with_timezone(&zone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::at::{Final, Framer, Line, Urc};
    use crate::modem::pdu::{SubmitOptions, encode_submit};

    /// Sends a command and collects the lines of its answer up to the final result.
    struct Host {
        sim: Simulator,
        framer: Framer,
        now: u64,
        events: Vec<Urc>,
    }

    impl Host {
        fn new(config: SimConfig) -> Host {
            Host {
                sim: Simulator::new(config),
                framer: Framer::new(),
                now: 1_796_000_000_000,
                events: Vec::new(),
            }
        }

        fn run(&mut self, command: &str, expected: &[&str]) -> (Vec<String>, Final) {
            self.framer.sent(command);
            self.sim.write(format!("{command}\r").as_bytes(), self.now);
            self.until_final(expected)
        }

        fn until_final(&mut self, expected: &[&str]) -> (Vec<String>, Final) {
            let mut answer = Vec::new();
            for _ in 0..100 {
                let bytes = self.sim.read(self.now);
                for line in self.framer.push(&bytes, expected) {
                    match line {
                        Line::Final(f) => return (answer, f),
                        Line::Response(r) => answer.push(r),
                        Line::Urc(u) => self.events.push(u),
                        Line::Prompt => answer.push(">".into()),
                    }
                }
                match self.sim.next_output_at() {
                    Some(at) => self.now = self.now.max(at),
                    None => break,
                }
            }
            panic!("no final result; got {answer:?}");
        }

        fn send(&mut self, to: &str, text: &str, report: bool) -> Vec<Result<String, Final>> {
            let options = SubmitOptions {
                status_report: report,
                ..SubmitOptions::default()
            };
            let mut results = Vec::new();
            for part in encode_submit(to, text, &options).unwrap() {
                self.framer.sent(&format!("AT+CMGS={}", part.tpdu_length));
                self.sim.write(
                    format!("AT+CMGS={}\r", part.tpdu_length).as_bytes(),
                    self.now,
                );
                let bytes = self.sim.read(self.now);
                assert!(self.framer.push(&bytes, &[]).contains(&Line::Prompt));
                self.sim.write(part.hex.as_bytes(), self.now);
                self.sim.write(&[CTRL_Z], self.now);
                results.push(match self.until_final(&["+CMGS"]) {
                    (answer, Final::Ok) => Ok(answer.join("")),
                    (_, other) => Err(other),
                });
            }
            results
        }
    }

    #[test]
    fn the_init_sequence_is_answered_like_an_e303() {
        let mut host = Host::new(SimConfig::default());
        assert_eq!(host.run("ATE0", &[]).1, Final::Ok);
        assert_eq!(host.run("AT+CMEE=1", &[]).1, Final::Ok);
        assert_eq!(host.run("AT+CMGF=0", &[]).1, Final::Ok);
        assert_eq!(host.run("AT+CNMI=2,1,0,2,0", &[]).1, Final::Ok);
        assert_eq!(host.run("AT+CGMI", &[]).0, ["huawei"]);
        assert_eq!(host.run("AT+CSQ", &["+CSQ"]).0, ["+CSQ: 20,99"]);
        assert_eq!(host.run("AT+BOGUS", &[]).1, Final::Error);
    }

    #[test]
    fn a_segment_takes_its_time_and_gets_a_reference() {
        let mut host = Host::new(SimConfig::default());
        host.run("ATE0", &[]);
        host.run("AT+CMGF=0", &[]);
        let start = host.now;
        let results = host.send("+59171234567", "Su cuota vence hoy", false);
        assert_eq!(results, [Ok("+CMGS: 0".to_owned())]);
        assert_eq!(host.now - start, 3_000);
        assert_eq!(host.sim.sent().len(), 1);
        assert_eq!(host.sim.sent()[0].0, "+59171234567");
    }

    #[test]
    fn chosen_numbers_fail_with_their_code() {
        let config = SimConfig {
            failing_numbers: HashMap::from([("+59170000000".to_owned(), 21)]),
            ..SimConfig::default()
        };
        let mut host = Host::new(config);
        host.run("AT+CMGF=0", &[]);
        let results = host.send("+59170000000", "hola", false);
        assert_eq!(results, [Err(Final::CmsError(21))]);
        assert!(host.sim.sent().is_empty());
    }

    #[test]
    fn status_reports_are_routed_as_cnmi_asks() {
        let mut host = Host::new(SimConfig::default());
        host.run("ATE0", &[]);
        host.run("AT+CMGF=0", &[]);
        host.run("AT+CNMI=2,1,0,1,0", &[]);
        host.send("+59171234567", "hola", true);
        host.now += 2_000;
        host.run("AT", &[]);
        let report = host.events.iter().find_map(|e| match e {
            Urc::StatusReport { pdu } => Some(pdu.clone()),
            _ => None,
        });
        let Ok(Received::StatusReport(r)) = pdu::decode(&report.expect("a +CDS")) else {
            panic!("not a status report");
        };
        assert_eq!(r.message_reference, 0);
        assert_eq!(r.recipient.value, "+59171234567");
    }

    #[test]
    fn received_messages_are_listed_read_and_deleted() {
        let mut host = Host::new(SimConfig::default());
        host.run("ATE0", &[]);
        host.run("AT+CMGF=0", &[]);
        host.sim.receive_sms("+59171234567", "Ya pagué", host.now);
        host.run("AT", &[]);
        assert_eq!(
            host.events,
            [Urc::NewMessage {
                storage: "SM".into(),
                index: 0
            }]
        );

        let (lines, _) = host.run("AT+CMGR=0", &["+CMGR"]);
        let Ok(Received::Deliver(d)) = pdu::decode(&lines[1]) else {
            panic!("{lines:?}");
        };
        assert_eq!(d.text, "Ya pagué");

        host.run("AT+CMGD=0", &[]);
        assert_eq!(host.run("AT+CMGR=0", &["+CMGR"]).1, Final::CmsError(321));
    }

    #[test]
    fn segments_queue_behind_each_other() {
        let mut host = Host::new(SimConfig::default());
        host.run("ATE0", &[]);
        host.run("AT+CMGF=0", &[]);
        let start = host.now;
        let results = host.send("+59171234567", &"a".repeat(400), false);
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(host.now - start, 9_000);
    }

    #[test]
    fn calls_and_noise_are_unsolicited() {
        let mut host = Host::new(SimConfig::default());
        host.run("ATE0", &[]);
        host.sim.ring("+59171234567", host.now);
        host.sim.noise(host.now);
        host.run("AT", &[]);
        assert!(host.events.contains(&Urc::Ring));
        assert!(host.events.contains(&Urc::CallerId {
            number: "+59171234567".into()
        }));
        assert!(host.events.contains(&Urc::Rssi(20)));
    }
}
