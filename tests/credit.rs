//! Balance checks through the production serial-port code: the fleet opens a pseudo-terminal
//! like a USB modem, asks `*105#` by USSD, and the simulated E303 on the other end answers the
//! way the real one does (packed GSM 7-bit hex, UCS-2 or plain text) a moment later. The daily
//! check is driven through days by a clock the test moves.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pregonero::credit::{Credit, CreditError, CreditSettings};
use pregonero::dispatch::SendingControl;
use pregonero::dispatch::fleet::Fleet;
use pregonero::domain::{Region, SendingWindow};
use pregonero::eventlog::EventLog;
use pregonero::jobs::ManualClock;
use pregonero::modem::simulated::PtyModem;
use pregonero::modem::simulator::{SimConfig, UssdShape};
use pregonero::modem::transport::PortSettings;
use pregonero::store::Store;
use tempfile::TempDir;

struct Line {
    store: Store,
    credit: Arc<Credit>,
    pty: PtyModem,
    _dir: TempDir,
}

/// A node whose one modem is the simulator behind a pseudo-terminal, ready.
async fn line() -> Line {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&common::fresh_database_url(dir.path()).await)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pty = PtyModem::start(SimConfig {
        ussd_delay_ms: 300,
        ..SimConfig::default()
    })
    .unwrap();
    let window = SendingWindow::parse("00:00", "24:00", chrono_tz::UTC).unwrap();
    let control = Arc::new(SendingControl::new(false, window));
    let events = Arc::new(EventLog::open(&dir.path().join("logs"), chrono_tz::UTC).unwrap());
    let fleet = Arc::new(Fleet::new(
        store.clone(),
        control,
        events,
        Region::parse("BO").unwrap(),
        SimConfig::default(),
        dir.path().join("journal"),
        vec![("modem-1".into(), PortSettings::new(pty.path()))],
    ));
    fleet.start().await.unwrap();
    // Ready, and its operator read (the preset is chosen by it).
    for _ in 0..250 {
        let status = fleet.status("modem-1").unwrap();
        if status.ready && status.network.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fleet.status("modem-1").unwrap().ready, "modem not ready");
    let credit = Arc::new(Credit::new(store.clone(), fleet));
    Line {
        store,
        credit,
        pty,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_balance_is_asked_through_a_real_tty_and_read_in_each_shape() {
    let line = line().await;
    let shapes = [
        (
            UssdShape::Packed,
            "Tu saldo es Bs 25,50 vigente hasta 31/12/2026",
            "25.50",
        ),
        (UssdShape::Ucs2, "Crédito disponible: Bs 3,00", "3.00"),
        (UssdShape::Plain, "Your balance is USD 3.75", "3.75"),
    ];
    for (shape, text, amount) in shapes {
        line.pty
            .with_simulator(|s, _| s.set_ussd_answer(Some(text.into()), shape));
        let checked = line.credit.check("modem-1", "api").await.unwrap();
        let check = &checked.record.check;
        assert_eq!(check.answer.as_deref(), Some(text), "{shape:?}");
        assert_eq!(check.amount.as_deref(), Some(amount), "{shape:?}");
        assert_eq!(check.code, "*105#");
    }
    assert_eq!(
        line.pty.with_simulator(|s, _| s.ussd_asked().to_vec()),
        ["*105#", "*105#", "*105#"]
    );

    // A modem that wants the code packed gets it packed, and the same answer.
    let packed = CreditSettings {
        packed: true,
        ..CreditSettings::default()
    };
    line.credit.set_settings("modem-1", &packed).await.unwrap();
    line.credit.check("modem-1", "api").await.unwrap();
    let asked = line.pty.with_simulator(|s, _| s.ussd_asked().to_vec());
    assert_eq!(asked.last().map(String::as_str), Some("*105#"));

    let history = line
        .store
        .balance_checks("modem-1", None, 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 4);
    let events = line.store.events_after(0, 100).await.unwrap();
    let checked: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "balance.checked")
        .collect();
    assert_eq!(checked.len(), 4);
    let payload: serde_json::Value = serde_json::from_str(&checked[0].payload).unwrap();
    assert_eq!(payload["currency"], "Bs");
    assert_eq!(payload["expires"], "2026-12-31");
}

#[tokio::test]
async fn a_line_without_ussd_or_without_a_code_is_said_so() {
    let line = line().await;
    line.pty
        .with_simulator(|s, _| s.set_ussd_answer(None, UssdShape::Plain));
    let err = line.credit.check("modem-1", "api").await.unwrap_err();
    assert!(err.to_string().contains("does not support"), "{err}");
    // The failed check is recorded, with its reason.
    let history = line
        .store
        .balance_checks("modem-1", None, 10)
        .await
        .unwrap();
    assert!(
        history[0]
            .check
            .error
            .as_deref()
            .unwrap()
            .contains("does not support")
    );

    line.credit.set_presets(&[]).await.unwrap();
    let err = line.credit.check("modem-1", "api").await.unwrap_err();
    assert!(matches!(err, CreditError::NoCode { .. }), "{err}");
    assert!(err.to_string().contains("Sim Movil"), "{err}");
}

#[tokio::test]
async fn the_daily_check_runs_at_its_hour_each_day() {
    let line = line().await;
    let tz: chrono_tz::Tz = "America/La_Paz".parse().unwrap();
    let settings = CreditSettings {
        check_at: Some("07:30".into()),
        ..CreditSettings::default()
    };
    line.credit
        .set_settings("modem-1", &settings)
        .await
        .unwrap();
    let start = tz
        .with_ymd_and_hms(2026, 12, 4, 7, 29, 0)
        .unwrap()
        .with_timezone(&Utc);
    let clock = Arc::new(ManualClock::starting_at(start));
    let task = line
        .credit
        .clone()
        .spawn("node-a".into(), tz, clock.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        line.store
            .balance_checks("modem-1", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let checks = |n: usize| {
        let store = line.store.clone();
        async move {
            for _ in 0..100 {
                let got = store.balance_checks("modem-1", None, 10).await.unwrap();
                if got.len() >= n {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("{n} checks never came");
        }
    };
    clock.advance(chrono::Duration::minutes(2));
    let got = checks(1).await;
    assert_eq!(got[0].check.cause, "daily");
    assert_eq!(got[0].check.amount.as_deref(), Some("25.50"));

    for _ in 0..24 {
        clock.advance(chrono::Duration::hours(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = checks(2).await;
    assert_eq!(got.len(), 2, "once a day");
    task.abort();
}
