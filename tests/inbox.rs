//! Received texts through the production serial-port code and the simulated modem: parts out
//! of order and across a restart, the same text twice, texts left in the SIM, and parts that
//! never come. Runs on SQLite, or PostgreSQL with `PREGONERO_TEST_POSTGRES_URL`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use pregonero::dispatch::inbound::Inbound;
use pregonero::domain::Region;
use pregonero::eventlog::EventLog;
use pregonero::modem::actor::ModemHandle;
use pregonero::modem::pdu::{encode_deliver, encode_deliver_parts};
use pregonero::modem::simulated::PtyModem;
use pregonero::modem::simulator::SimConfig;
use pregonero::modem::transport::PortSettings;
use pregonero::store::{InboxFilter, InboxRecord, Store};
use tokio::sync::Mutex;

const FROM: &str = "+59171234567";

struct Listener {
    modem: ModemHandle,
    inbound: Arc<Mutex<Inbound>>,
}

/// A modem actor on `sim` with its unsolicited lines handled, as the service wires them.
async fn listen(sim: &PtyModem, store: &Store, logs: &std::path::Path) -> Listener {
    let (modem, mut urcs) = ModemHandle::spawn(PortSettings::new(sim.path()));
    assert!(modem.wait_ready(Duration::from_secs(5)).await);
    let events = Arc::new(EventLog::open(logs, chrono_tz::UTC).unwrap());
    let inbound = Arc::new(Mutex::new(Inbound::new(
        store.clone(),
        "modem-1".into(),
        Region::parse("BO").unwrap(),
        events,
    )));
    tokio::spawn({
        let (modem, inbound) = (modem.clone(), inbound.clone());
        async move {
            while let Some(urc) = urcs.recv().await {
                inbound.lock().await.handle(&modem, urc).await;
            }
        }
    });
    Listener { modem, inbound }
}

async fn inbox(store: &Store) -> Vec<InboxRecord> {
    store
        .list_inbox(&InboxFilter {
            limit: 100,
            ..InboxFilter::default()
        })
        .await
        .unwrap()
}

/// Waits until the SIM is empty: everything announced was read, recorded and deleted.
async fn until_sim_empty(sim: &PtyModem) {
    for _ in 0..200 {
        if sim.with_simulator(|s, _| s.stored()) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the SIM still holds messages");
}

#[tokio::test]
async fn parts_out_of_order_and_across_a_restart_make_one_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&common::fresh_database_url(dir.path()).await)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let at = DateTime::parse_from_rfc3339("2026-12-03T10:00:00-04:00").unwrap();
    let text =
        "Ya pagué la cuota número 4 en la agencia central, adjunto el comprobante. ".repeat(2);
    let parts = encode_deliver_parts(FROM, &text, 42, at).unwrap();
    assert_eq!(parts.len(), 3);

    // Part 3, then part 1; then the service stops.
    let sim = PtyModem::start(SimConfig::default()).unwrap();
    let first = listen(&sim, &store, dir.path()).await;
    sim.with_simulator(|s, now| {
        s.receive_pdu(parts[2].clone(), now);
        s.receive_pdu(parts[0].clone(), now);
    });
    until_sim_empty(&sim).await;
    assert!(inbox(&store).await.is_empty(), "stored before it was whole");
    first.modem.close();
    drop(first);

    // After the restart: part 1 again (the network repeats itself), then part 2.
    let second = listen(&sim, &store, dir.path()).await;
    sim.with_simulator(|s, now| {
        s.receive_pdu(parts[0].clone(), now);
        s.receive_pdu(parts[1].clone(), now);
    });
    until_sim_empty(&sim).await;
    let mut items = inbox(&store).await;
    for _ in 0..50 {
        if !items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        items = inbox(&store).await;
    }
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].body.as_deref(), Some(text.as_str()));
    assert_eq!((items[0].parts, items[0].complete), (3, true));
    assert_eq!(items[0].number, FROM);
    assert_eq!(items[0].network_time, Some(at.timestamp_millis()));

    // The whole text delivered again is still one text.
    sim.with_simulator(|s, now| {
        for part in &parts {
            s.receive_pdu(part.clone(), now);
        }
    });
    until_sim_empty(&sim).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(inbox(&store).await.len(), 1);

    // A text that came while nobody listened is found by the sweep.
    let quiet = encode_deliver("+59170000002", "sin aviso", at).unwrap();
    sim.with_simulator(|s, _| s.store_silently(quiet));
    let taken = second
        .inbound
        .lock()
        .await
        .sweep(&second.modem)
        .await
        .unwrap();
    assert_eq!(taken, 1);
    assert_eq!(sim.with_simulator(|s, _| s.stored()), 0);
    let items = inbox(&store).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].body.as_deref(), Some("sin aviso"));
}

#[tokio::test]
async fn a_part_that_never_comes_leaves_a_marked_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&common::fresh_database_url(dir.path()).await)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let at = DateTime::parse_from_rfc3339("2026-12-03T10:00:00-04:00").unwrap();
    let text = "a".repeat(200) + &"b".repeat(100);
    let parts = encode_deliver_parts(FROM, &text, 7, at).unwrap();
    assert_eq!(parts.len(), 2);

    let sim = PtyModem::start(SimConfig::default()).unwrap();
    let _listener = listen(&sim, &store, dir.path()).await;
    sim.with_simulator(|s, now| s.receive_pdu(parts[1].clone(), now));
    until_sim_empty(&sim).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Not yet stale: kept waiting.
    assert!(
        store
            .flush_stale_fragments(60_000)
            .await
            .unwrap()
            .is_empty()
    );
    let flushed = store.flush_stale_fragments(0).await.unwrap();
    assert_eq!(flushed.len(), 1);
    let items = inbox(&store).await;
    assert_eq!(items.len(), 1);
    assert!(!items[0].complete);
    let body = items[0].body.clone().unwrap();
    assert!(body.starts_with("[…]"), "{body}");
    assert!(body.ends_with(&"b".repeat(100)));
}
