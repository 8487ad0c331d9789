//! The modem actor driving the simulated E303 through a pseudo-terminal, with the production
//! serial-port code in between.

use std::time::Duration;

use pregonero::modem::actor::{ModemError, ModemHandle};
use pregonero::modem::at::Urc;
use pregonero::modem::cms::CmsError;
use pregonero::modem::pdu::{SubmitOptions, encode_submit};
use pregonero::modem::simulated::PtyModem;
use pregonero::modem::simulator::SimConfig;
use pregonero::modem::transport::PortSettings;
use tokio::sync::mpsc::UnboundedReceiver;

const SECOND: Duration = Duration::from_secs(1);

async fn connect(config: SimConfig) -> (PtyModem, ModemHandle, UnboundedReceiver<Urc>) {
    let sim = PtyModem::start(config).unwrap();
    let (modem, events) = ModemHandle::spawn(PortSettings::new(sim.path()));
    assert!(
        modem.wait_ready(5 * SECOND).await,
        "{:?}",
        modem.last_error()
    );
    (sim, modem, events)
}

fn pdu(to: &str, text: &str) -> (usize, String) {
    let options = SubmitOptions {
        status_report: true,
        ..SubmitOptions::default()
    };
    let part = encode_submit(to, text, &options).unwrap().remove(0);
    (part.tpdu_length, part.hex)
}

#[tokio::test]
async fn identity_and_status_are_read() {
    let (_sim, modem, _) = connect(SimConfig::default()).await;
    assert_eq!(
        modem.command("AT+CGMI", &[], SECOND).await.unwrap(),
        ["huawei"]
    );
    assert_eq!(
        modem.command("AT+CSQ", &["+CSQ"], SECOND).await.unwrap(),
        ["+CSQ: 20,99"]
    );
    let refused = modem.command("AT+NONSENSE", &[], SECOND).await;
    assert!(matches!(refused, Err(ModemError::Refused { .. })));
    assert!(modem.trace().iter().any(|e| e.text == "AT+CSQ"));
}

#[tokio::test]
async fn unsolicited_lines_during_a_send_are_events_not_answers() {
    let config = SimConfig {
        segment_time_ms: 200,
        report_delay_ms: 50,
        ..SimConfig::default()
    };
    let (sim, modem, mut events) = connect(config).await;
    let (length, hex) = pdu("+59171234567", "Su cuota vence hoy");

    let sending = tokio::spawn({
        let modem = modem.clone();
        async move { modem.send_pdu(length, &hex, 5 * SECOND).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.with_simulator(|s, now| {
        s.noise(now);
        s.receive_sms("+59170000001", "BAJA", now);
    });

    assert_eq!(sending.await.unwrap(), Ok(0));
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(2 * SECOND, events.recv()).await;
        seen.push(event.expect("an event in time").expect("the channel open"));
    }
    assert!(seen.contains(&Urc::Rssi(20)));
    assert!(seen.iter().any(|e| matches!(e, Urc::NewMessage { .. })));
    assert!(seen.iter().any(|e| matches!(e, Urc::StatusReport { .. })));
}

#[tokio::test]
async fn a_cms_error_fails_the_send_with_its_code() {
    let config = SimConfig {
        segment_time_ms: 10,
        failing_numbers: [("+59170000000".to_owned(), 21)].into(),
        ..SimConfig::default()
    };
    let (_sim, modem, _) = connect(config).await;
    let (length, hex) = pdu("+59170000000", "hola");
    let result = modem.send_pdu(length, &hex, SECOND).await;
    assert_eq!(result, Err(ModemError::Cms(CmsError(21))));
    assert!(!CmsError(21).is_transient());
}

#[tokio::test]
async fn after_a_timeout_the_late_answer_is_not_taken_for_the_next_one() {
    let config = SimConfig {
        segment_time_ms: 300,
        ..SimConfig::default()
    };
    let (_sim, modem, _) = connect(config).await;
    let (length, hex) = pdu("+59171234567", "tarde");
    let result = modem
        .send_pdu(length, &hex, Duration::from_millis(100))
        .await;
    assert!(matches!(result, Err(ModemError::Timeout { .. })));

    // The port is reset: the +CMGS and OK that arrive late are drained when it is opened again,
    // and the next command gets its own answer.
    assert!(modem.wait_ready(5 * SECOND).await);
    assert!(modem.generation() >= 2, "the port was not reopened");
    assert_eq!(
        modem.command("AT+CSQ", &["+CSQ"], SECOND).await.unwrap(),
        ["+CSQ: 20,99"]
    );
}

#[tokio::test]
async fn a_vanished_port_fails_requests_fast() {
    let (sim, modem, _) = connect(SimConfig::default()).await;
    drop(sim);
    let mut last = None;
    for _ in 0..40 {
        match modem.command("AT", &[], Duration::from_millis(100)).await {
            Err(ModemError::Disconnected) => return,
            other => last = Some(other),
        }
    }
    panic!("still not disconnected: {last:?}");
}

#[tokio::test]
async fn the_session_reads_identity_and_network_status() {
    let sim = PtyModem::start(SimConfig::default()).unwrap();
    let (modem, _) = ModemHandle::spawn(PortSettings::new(sim.path()));
    assert!(modem.wait_ready(5 * SECOND).await);
    let identity = pregonero::modem::session::initialize(&modem).await.unwrap();
    assert_eq!(identity.manufacturer, "huawei");
    assert_eq!(identity.model, "E303");
    assert_eq!(identity.imei.len(), 15);

    let status = pregonero::modem::session::network_status(&modem)
        .await
        .unwrap();
    assert!(status.registration.is_registered());
    assert_eq!(status.signal.dbm, Some(-73));
    assert_eq!(status.signal.bars, 4);
    assert_eq!(status.operator.as_deref(), Some("Sim Movil"));
}

#[tokio::test]
async fn a_replugged_modem_is_initialised_again_before_it_sends() {
    // The port is opened by a path that, like a udev symlink, points at whichever device is
    // there now; the second simulator starts like a modem just switched on (echo on, text mode).
    let folder = tempfile::tempdir().unwrap();
    let link = folder.path().join("ttyGSM0");
    let first = PtyModem::start(SimConfig::default()).unwrap();
    std::os::unix::fs::symlink(first.path(), &link).unwrap();
    let (modem, _) = ModemHandle::spawn(PortSettings::new(link.to_str().unwrap()));
    assert!(modem.wait_ready(5 * SECOND).await);
    let generation = modem.generation();

    drop(first);
    let second = PtyModem::start(SimConfig {
        segment_time_ms: 10,
        ..SimConfig::default()
    })
    .unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(second.path(), &link).unwrap();

    let mut waited = 0;
    while modem.generation() == generation || !modem.is_ready() {
        // Requests meanwhile fail fast instead of hanging.
        let _ = modem.command("AT", &[], Duration::from_millis(100)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 200, "not reopened: {:?}", modem.last_error());
    }
    let (length, hex) = pdu("+59171234567", "de nuevo");
    assert_eq!(modem.send_pdu(length, &hex, 5 * SECOND).await, Ok(0));
    assert_eq!(second.with_simulator(|s, _| s.sent().len()), 1);
}
