//! The production serial-port code talking to the simulated modem through a real
//! pseudo-terminal: the bytes go through the kernel's tty layer both ways.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pregonero::modem::at::{Final, Framer, Line, Urc};
use pregonero::modem::pdu::{Received, SubmitOptions, decode, encode_submit};
use pregonero::modem::simulated::PtyModem;
use pregonero::modem::simulator::SimConfig;
use pregonero::modem::transport::PortSettings;

struct Modem {
    port: Box<dyn serialport::SerialPort>,
    framer: Framer,
    events: Vec<Urc>,
}

impl Modem {
    fn write(&mut self, text: &[u8]) {
        self.port.write_all(text).unwrap();
    }

    /// Reads until a final result (or the prompt, when `prompt` is set).
    fn answer(&mut self, expected: &[&str], prompt: bool) -> (Vec<String>, Option<Final>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut lines = Vec::new();
        let mut buffer = [0u8; 256];
        while Instant::now() < deadline {
            let n = match self.port.read(&mut buffer) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
                Err(e) => panic!("read failed: {e}"),
            };
            for line in self.framer.push(&buffer[..n], expected) {
                match line {
                    Line::Final(f) => return (lines, Some(f)),
                    Line::Prompt if prompt => return (lines, None),
                    Line::Prompt => lines.push(">".into()),
                    Line::Response(r) => lines.push(r),
                    Line::Urc(u) => self.events.push(u),
                }
            }
        }
        panic!("no answer in time; got {lines:?}");
    }

    fn run(&mut self, command: &str, expected: &[&str]) -> (Vec<String>, Option<Final>) {
        self.framer.sent(command);
        self.write(format!("{command}\r").as_bytes());
        self.answer(expected, false)
    }
}

fn open(sim: &PtyModem) -> Modem {
    let port = PortSettings::new(sim.path())
        .open(Duration::from_millis(20))
        .expect("the pseudo-terminal opens like a serial port");
    Modem {
        port,
        framer: Framer::new(),
        events: Vec::new(),
    }
}

#[test]
fn a_message_goes_out_through_a_real_tty() {
    let sim = PtyModem::start(SimConfig {
        segment_time_ms: 100,
        report_delay_ms: 50,
        ..SimConfig::default()
    })
    .unwrap();
    assert!(sim.path().starts_with("/dev/pts/"));
    let mut modem = open(&sim);

    assert_eq!(modem.run("ATE0", &[]).1, Some(Final::Ok));
    assert_eq!(modem.run("AT+CMGF=0", &[]).1, Some(Final::Ok));
    assert_eq!(modem.run("AT+CNMI=2,1,0,1,0", &[]).1, Some(Final::Ok));
    assert_eq!(modem.run("AT+CGMM", &[]).0, ["E303"]);

    let options = SubmitOptions {
        status_report: true,
        ..SubmitOptions::default()
    };
    let part = &encode_submit("+59171234567", "Su cuota vence hoy", &options).unwrap()[0];
    modem.framer.sent(&format!("AT+CMGS={}", part.tpdu_length));
    modem.write(format!("AT+CMGS={}\r", part.tpdu_length).as_bytes());
    modem.answer(&[], true);
    modem.write(part.hex.as_bytes());
    modem.write(&[0x1A]);
    let (lines, result) = modem.answer(&["+CMGS"], false);
    assert_eq!(result, Some(Final::Ok));
    assert_eq!(lines, ["+CMGS: 0"]);

    // The status report follows as +CDS, with the reference +CMGS gave.
    std::thread::sleep(Duration::from_millis(150));
    modem.run("AT", &[]);
    let report = modem.events.iter().find_map(|e| match e {
        Urc::StatusReport { pdu } => Some(pdu.clone()),
        _ => None,
    });
    let Ok(Received::StatusReport(r)) = decode(&report.expect("a +CDS line")) else {
        panic!("not a status report");
    };
    assert_eq!(r.message_reference, 0);
}

#[test]
fn a_received_text_is_announced_and_read_back() {
    let sim = PtyModem::start(SimConfig::default()).unwrap();
    let mut modem = open(&sim);
    modem.run("ATE0", &[]);
    modem.run("AT+CMGF=0", &[]);

    sim.with_simulator(|s, now| s.receive_sms("+59171234567", "Ya pagué la cuota", now));
    modem.run("AT", &[]);
    assert!(modem.events.contains(&Urc::NewMessage {
        storage: "SM".into(),
        index: 0
    }));
    let (lines, _) = modem.run("AT+CMGR=0", &["+CMGR"]);
    let Ok(Received::Deliver(d)) = decode(&lines[1]) else {
        panic!("{lines:?}");
    };
    assert_eq!(d.text, "Ya pagué la cuota");
}
