//! Loads outside HTTP: progress while one runs, and the daily automatic load and summary, driven
//! through days by a clock the test moves: each runs at its hour on one node of two sharing a
//! database, catches up after a stop, and records a failure as a failed load.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use pregonero::dispatch::SendingControl;
use pregonero::domain::{Region, SendingWindow};
use pregonero::loads::schedule::{self, ManualClock};
use pregonero::loads::{Dates, LoadKind, Loader, ScheduleSettings, SourceSettings};
use pregonero::store::{LoadRecord, Store};
use sqlx::Connection;

const ZONE: &str = "America/La_Paz";

struct Setup {
    store: Store,
    loader: Arc<Loader>,
    _dir: tempfile::TempDir,
}

/// A gateway database with a template, and an ERP (an SQLite file) with two installments due
/// on 2026-12-04 and one on 2026-12-05.
async fn setup(erp_present: bool) -> Setup {
    setup_in(erp_present, ZONE, "08:00").await
}

async fn setup_in(erp_present: bool, zone: &str, at: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&common::fresh_database_url(dir.path()).await)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let template = store
        .create_template("cuota", "Hola <nombre>, vence el <vence>", 140, "admin")
        .await
        .unwrap();
    let erp = dir.path().join("erp.db");
    if erp_present {
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", erp.display()))
                .await
                .unwrap();
        for sql in [
            "CREATE TABLE cuotas (id INTEGER, nombre TEXT, celular TEXT, vence DATE)",
            "INSERT INTO cuotas VALUES (1, 'Ana', '70123456', '2026-12-04'), \
             (2, 'Eva', '71234567', '2026-12-04'), (3, 'Luis', '72345678', '2026-12-05')",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
    let source = SourceSettings {
        url: format!("sqlite://{}", erp.display()),
        password: None,
        query: "SELECT id, nombre, celular, vence FROM cuotas WHERE vence = :reference_date".into(),
        phone_column: "celular".into(),
        key_column: "id".into(),
        template_id: template.id,
        columns: vec![],
    };
    store
        .set_setting(
            SourceSettings::KEY,
            &serde_json::to_string(&source).unwrap(),
        )
        .await
        .unwrap();
    let schedule = ScheduleSettings {
        enabled: true,
        at: at.into(),
    };
    store
        .set_setting(
            ScheduleSettings::KEY,
            &serde_json::to_string(&schedule).unwrap(),
        )
        .await
        .unwrap();
    let tz: Tz = zone.parse().unwrap();
    let window = SendingWindow::parse_range("08:00-20:00", tz).unwrap();
    let sending = Arc::new(SendingControl::new(false, window));
    let loader = Arc::new(Loader::new(
        store.clone(),
        "test-node".into(),
        tz,
        Region::parse("BO").unwrap(),
        sending,
        Arc::default(),
    ));
    Setup {
        store,
        loader,
        _dir: dir,
    }
}

fn local(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    let tz: Tz = ZONE.parse().unwrap();
    tz.with_ymd_and_hms(2026, 12, day, hour, minute, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn start(setup: &Setup, node: &str, clock: &Arc<ManualClock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(schedule::run(
        setup.loader.clone(),
        setup.store.clone(),
        node.into(),
        clock.clone(),
    ))
}

async fn loads(store: &Store) -> Vec<LoadRecord> {
    let mut all = store.loads(None, 100).await.unwrap();
    all.reverse();
    all
}

/// Lets the scheduler and the database work until `n` loads have finished.
async fn until_loads(store: &Store, n: usize) -> Vec<LoadRecord> {
    for _ in 0..2_000 {
        let all = loads(store).await;
        if all.len() >= n && all.iter().all(|l| l.status != "running") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} loads never finished: {:?}", loads(store).await);
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// Gives the schedulers time to see the clock and the database to take what they write.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn day(load: &LoadRecord) -> NaiveDate {
    load.reference_date.as_deref().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_load_runs_at_its_hour_on_one_node_of_two_then_daily() {
    let setup = setup(true).await;
    let clock = Arc::new(ManualClock::starting_at(local(4, 7, 58)));
    let a = start(&setup, "node-a", &clock);
    let b = start(&setup, "node-b", &clock);

    // Before the hour nothing runs.
    clock.advance(minutes(1));
    settle().await;
    assert!(loads(&setup.store).await.is_empty());

    clock.advance(minutes(2));
    until_loads(&setup.store, 1).await;
    // The other node does not run it a moment later either.
    settle().await;
    let done = until_loads(&setup.store, 1).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].kind, "automatic");
    assert_eq!(done[0].status, "committed");
    assert_eq!(done[0].created_by, "schedule");
    assert_eq!(day(&done[0]), NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
    assert_eq!(done[0].messages_loaded, 2);

    // The next morning, again once.
    for _ in 0..24 {
        clock.advance(minutes(60));
        settle().await;
    }
    let done = until_loads(&setup.store, 2).await;
    assert_eq!(done.len(), 2, "{done:?}");
    assert_eq!(day(&done[1]), NaiveDate::from_ymd_opt(2026, 12, 5).unwrap());
    assert_eq!(done[1].messages_loaded, 1);
    a.abort();
    b.abort();
}

#[tokio::test]
async fn a_gateway_started_after_the_hour_catches_up_once() {
    let setup = setup(true).await;
    let clock = Arc::new(ManualClock::starting_at(local(4, 10, 15)));
    let first = start(&setup, "node-a", &clock);
    let done = until_loads(&setup.store, 1).await;
    assert_eq!(done[0].messages_loaded, 2);
    first.abort();

    // A restart the same day does not run it again.
    let again = start(&setup, "node-a", &clock);
    clock.advance(minutes(60));
    settle().await;
    assert_eq!(loads(&setup.store).await.len(), 1);
    again.abort();
}

#[tokio::test]
async fn a_failed_automatic_load_is_recorded_with_its_reason() {
    let setup = setup(false).await;
    let clock = Arc::new(ManualClock::starting_at(local(4, 7, 59)));
    let task = start(&setup, "node-a", &clock);
    clock.advance(minutes(2));
    let done = until_loads(&setup.store, 1).await;
    assert_eq!(done[0].status, "failed");
    assert_eq!(done[0].kind, "automatic");
    let reason = done[0].error.as_deref().unwrap();
    assert!(reason.starts_with("source.url"), "{reason}");
    task.abort();
}

#[tokio::test]
async fn a_disabled_schedule_runs_nothing() {
    let setup = setup(true).await;
    let off = ScheduleSettings {
        enabled: false,
        at: "08:00".into(),
    };
    setup
        .store
        .set_setting(ScheduleSettings::KEY, &serde_json::to_string(&off).unwrap())
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::starting_at(local(4, 7, 0)));
    let task = start(&setup, "node-a", &clock);
    for _ in 0..3 {
        clock.advance(minutes(60));
        settle().await;
    }
    assert!(loads(&setup.store).await.is_empty());
    task.abort();
}

#[tokio::test]
async fn a_running_load_shows_its_counts_until_it_is_committed() {
    let setup = setup(true).await;
    let loader = setup.loader.clone();
    let dates = Dates {
        reference: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        send: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
    };
    let (source, spec) = loader
        .erp_spec(LoadKind::Manual, dates, "ana".into())
        .await
        .unwrap();
    let (started, mut seen_started) = tokio::sync::mpsc::channel::<()>(1);
    let (go, wait_for_go) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let loader = loader.clone();
        async move {
            let rows = |progress: Arc<pregonero::loads::Progress>| {
                let loader = loader.clone();
                async move {
                    let fetched = loader
                        .erp_rows(&source, dates, None, Some(&progress))
                        .await?;
                    started.send(()).await.unwrap();
                    wait_for_go.await.unwrap();
                    Ok(fetched.table)
                }
            };
            loader.run(spec, rows).await
        }
    });
    seen_started.recv().await.unwrap();
    let now = loads(&setup.store).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].status, "running");
    let counts = loader.progress(&now[0].id).expect("counts while it runs");
    assert_eq!(counts.processed, 2);
    assert_eq!(counts.loaded, 0);

    go.send(()).unwrap();
    let record = running.await.unwrap().unwrap();
    assert_eq!(record.status, "committed");
    assert_eq!(record.messages_loaded, 2);
    assert_eq!(loader.progress(&record.id), None);
}

#[tokio::test]
async fn reading_the_erp_reports_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE t AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
         WHERE i < 2500) SELECT i AS id, '7' || (1000000 + i) AS celular FROM n",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let source = SourceSettings {
        url,
        password: None,
        query: "SELECT id, celular FROM t".into(),
        phone_column: "celular".into(),
        key_column: "id".into(),
        template_id: String::new(),
        columns: vec![],
    };
    let seen = std::sync::Mutex::new(Vec::new());
    let read = |n: u64| seen.lock().unwrap().push(n);
    let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    let dates = Dates {
        reference: day,
        send: day,
    };
    let fetched =
        pregonero::loads::erp::fetch(&source, None, dates, None, ZONE.parse().unwrap(), &read)
            .await
            .unwrap();
    assert_eq!(fetched.table.rows.len(), 2500);
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2500);
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(seen.last(), Some(&2500));
}

#[tokio::test]
async fn a_run_hour_skipped_by_a_clock_change_runs_an_hour_later() {
    // Santiago's clocks go from 00:00 to 01:00 on 2026-09-06, so 00:30 does not exist.
    let setup = setup_in(true, "America/Santiago", "00:30").await;
    let tz: Tz = "America/Santiago".parse().unwrap();
    let before = tz
        .with_ymd_and_hms(2026, 9, 5, 23, 50, 0)
        .unwrap()
        .with_timezone(&Utc);
    let clock = Arc::new(ManualClock::starting_at(before));
    let task = start(&setup, "node-a", &clock);
    // Started after 00:30 of 2026-09-05: that day's run is caught up at once.
    let done = until_loads(&setup.store, 1).await;
    assert_eq!(day(&done[0]), NaiveDate::from_ymd_opt(2026, 9, 5).unwrap());
    // 23:50 plus 30 minutes is 01:20 after the skip: not yet 01:30.
    clock.advance(minutes(30));
    settle().await;
    assert_eq!(loads(&setup.store).await.len(), 1);
    clock.advance(minutes(15));
    let done = until_loads(&setup.store, 2).await;
    assert_eq!(day(&done[1]), NaiveDate::from_ymd_opt(2026, 9, 6).unwrap());
    assert_eq!(done[1].status, "committed");
    task.abort();
}

#[tokio::test]
async fn two_loads_of_one_date_at_once_send_each_row_once() {
    let setup = setup(true).await;
    let dates = Dates {
        reference: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        send: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
    };
    let run = || {
        let loader = setup.loader.clone();
        tokio::spawn(async move {
            loader
                .run_erp(LoadKind::Manual, dates, "ana".into())
                .await
                .unwrap()
        })
    };
    let (a, b) = (run(), run());
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.messages_loaded + b.messages_loaded, 2, "{a:?} {b:?}");
    assert_eq!(a.rows_skipped + b.rows_skipped, 2, "{a:?} {b:?}");
    let keys = setup.store.loaded_keys("2026-12-04").await.unwrap();
    assert_eq!(keys.len(), 2);
}

#[tokio::test]
async fn a_restart_fails_its_own_running_loads_and_leaves_other_nodes_alone() {
    use pregonero::store::NewLoad;
    let setup = setup(true).await;
    let load = |id: &str, node: &str| NewLoad {
        id: id.into(),
        kind: "manual",
        template_id: None,
        file_name: None,
        reference_date: Some("2026-12-04".into()),
        send_date: "2026-12-04".into(),
        created_by: "ana".into(),
        node: node.into(),
    };
    setup
        .store
        .start_load(&load("mine", "node-a"))
        .await
        .unwrap();
    setup
        .store
        .start_load(&load("theirs", "node-b"))
        .await
        .unwrap();
    let failed = setup
        .store
        .fail_interrupted_loads("node-a", 15 * 60 * 1000)
        .await
        .unwrap();
    assert_eq!(failed, 1);
    let status = |id: &'static str| {
        let store = setup.store.clone();
        async move { store.load(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status("mine").await, "failed");
    assert_eq!(status("theirs").await, "running");
    // A load marked failed while it ran stores nothing when it tries to commit.
    let committed = setup
        .store
        .commit_load("mine", Some("2026-12-04"), vec![], vec![], 0)
        .await;
    assert!(committed.is_err());
    assert_eq!(status("mine").await, "failed");
    // A node that never came back: its load is failed once it is stale.
    let failed = setup
        .store
        .fail_interrupted_loads("node-a", -1)
        .await
        .unwrap();
    assert_eq!(failed, 1);
    assert_eq!(status("theirs").await, "failed");
}

/// The `loads.summary` events recorded so far, as their payloads.
async fn summaries(store: &Store) -> Vec<serde_json::Value> {
    store
        .events_after(0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "loads.summary")
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect()
}

#[tokio::test]
async fn the_daily_summary_is_recorded_once_a_day_at_its_hour() {
    let setup = setup(true).await;
    let clock = Arc::new(ManualClock::starting_at(local(4, 7, 59)));
    let loads_a = start(&setup, "node-a", &clock);
    let summary = |node: &str| {
        tokio::spawn(pregonero::loads::daily_summary(
            setup.loader.clone(),
            setup.store.clone(),
            node.into(),
            clock.clone(),
        ))
    };
    let (a, b) = (summary("node-a"), summary("node-b"));
    clock.advance(minutes(2));
    until_loads(&setup.store, 1).await;
    settle().await;
    assert!(summaries(&setup.store).await.is_empty(), "not before 20:00");

    // 20:00, the default hour.
    clock.advance(minutes(12 * 60));
    let mut got = Vec::new();
    for _ in 0..200 {
        got = summaries(&setup.store).await;
        if !got.is_empty() {
            break;
        }
        settle().await;
    }
    settle().await;
    let got_now = summaries(&setup.store).await;
    assert_eq!(got_now.len(), 1, "once, on one node: {got_now:?}");
    assert_eq!(got[0]["date"], "2026-12-04");
    assert_eq!(got[0]["loads"], 1);
    assert_eq!(got[0]["messages_loaded"], 2);

    // A day later, the next one.
    for _ in 0..24 {
        clock.advance(minutes(60));
        settle().await;
    }
    let got = summaries(&setup.store).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["date"], "2026-12-05");
    for task in [loads_a, a, b] {
        task.abort();
    }
}

#[tokio::test]
async fn a_daily_run_left_unfinished_by_a_dead_node_is_taken_over() {
    let setup = setup(true).await;
    let clock = Arc::new(ManualClock::starting_at(local(4, 19, 59)));
    // A node claimed the day's summary and died before recording it.
    assert!(
        setup
            .store
            .claim_run("loads-summary", "2026-12-04", "dead-node")
            .await
            .unwrap()
    );
    let task = tokio::spawn(pregonero::loads::daily_summary(
        setup.loader.clone(),
        setup.store.clone(),
        "node-b".into(),
        clock.clone(),
    ));
    clock.advance(minutes(2));
    for _ in 0..5 {
        clock.advance(chrono::Duration::seconds(31));
        settle().await;
    }
    assert!(
        summaries(&setup.store).await.is_empty(),
        "a fresh claim may still be at work"
    );

    // A quarter of an hour later (by the claim's own clock) it is taken for dead.
    sqlx::query("UPDATE schedule_runs SET started_at = started_at - 1000000")
        .execute(setup.store.pool())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        clock.advance(chrono::Duration::seconds(31));
        settle().await;
        got = summaries(&setup.store).await;
        if !got.is_empty() {
            break;
        }
    }
    settle().await;
    assert_eq!(summaries(&setup.store).await.len(), 1, "taken over once");
    assert_eq!(got[0]["date"], "2026-12-04");
    assert_eq!(
        setup
            .store
            .run_state("loads-summary", "2026-12-04")
            .await
            .unwrap(),
        pregonero::store::RunState::Finished
    );
    task.abort();
}
