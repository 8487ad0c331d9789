//! Times a 100,000-row load through the running service over HTTP and reports the process's
//! peak resident memory (service and client together, so the figure is an upper bound).
//!
//! ```text
//! cargo build --release --example load_bench
//! target/release/examples/load_bench xlsx-preview [rows]
//! target/release/examples/load_bench xlsx-commit [rows]
//! target/release/examples/load_bench erp [rows] [erp-url]
//! ```
//!
//! The gateway's database is a fresh SQLite file, or a new PostgreSQL database when
//! `PREGONERO_BENCH_POSTGRES_URL` names a server. The ERP defaults to the machine's PostgreSQL
//! (`postgres://postgres@127.0.0.1:5432/test`); a `mysql://` URL works the same. Run one mode
//! a process, so each peak is its own.

use std::time::Instant;

use pregonero::app::Application;
use pregonero::config::{Config, Secret};
use reqwest::multipart::{Form, Part};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};
use sqlx::Connection;

const PASSWORD: &str = "bench-password";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("xlsx-preview");
    let rows: u32 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    if mode == "make-xlsx" {
        // Run as a child, so that what the writer allocates is not in the measured process.
        let path = args.get(3).expect("make-xlsx <rows> <path>");
        std::fs::write(path, workbook(rows)?)?;
        return Ok(());
    }
    let erp_url = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());

    let dir = tempfile::tempdir()?;
    let database = match std::env::var("PREGONERO_BENCH_POSTGRES_URL") {
        Ok(server) => {
            let name = format!("pregonero_bench_{}", uuid::Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect(&server).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            let (base, _) = server.rsplit_once('/').expect("a URL with a database");
            format!("{base}/{name}")
        }
        Err(_) => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        database_url: Some(Secret::new(database)),
        admin_username: Some("admin".into()),
        admin_password: Some(Secret::new(PASSWORD)),
        auto_start: false,
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let template: Value = client
        .post(format!("{base}/v1/templates"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "cuota",
            "text": "Estimado <nombre>, su cuota <cuota> de Bs <monto> vence el <vence>."
        }))
        .send()
        .await?
        .json()
        .await?;
    let template_id = template["id"].as_str().unwrap_or_default().to_owned();

    let (started, answer) = match mode {
        "xlsx-preview" | "xlsx-commit" => {
            let path = dir.path().join("cuotas.xlsx");
            let made = std::process::Command::new(std::env::current_exe()?)
                .args(["make-xlsx", &rows.to_string()])
                .arg(&path)
                .status()?;
            anyhow::ensure!(made.success(), "the workbook was not made");
            let book = std::fs::read(&path)?;
            let size = book.len();
            let mut form = Form::new()
                .part("file", Part::bytes(book).file_name("cuotas.xlsx"))
                .text("template_id", template_id)
                .text("phone_column", "celular");
            if mode == "xlsx-preview" {
                form = form.text("dry_run", "true");
            }
            eprintln!("{rows} rows, {size} bytes of .xlsx");
            reset_peak_rss();
            let started = Instant::now();
            let res = client
                .post(format!("{base}/v1/loads/excel"))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await?;
            (started, res)
        }
        "erp" => {
            let table = erp_table(&erp_url, rows).await?;
            let query = format!(
                "SELECT id, nombre, celular, cuota, monto, vence FROM {table} \
                 WHERE vence >= :reference_date"
            );
            let res = client
                .put(format!("{base}/v1/loads/source"))
                .bearer_auth(&token)
                .json(&json!({
                    "url": erp_url, "query": query, "phone_column": "celular",
                    "key_column": "id", "template_id": template_id
                }))
                .send()
                .await?;
            anyhow::ensure!(res.status().is_success(), "source: {}", res.text().await?);
            reset_peak_rss();
            let started = Instant::now();
            let res = client
                .post(format!("{base}/v1/loads/erp"))
                .bearer_auth(&token)
                .json(&json!({"reference_date": "2026-01-01"}))
                .send()
                .await?;
            (started, res)
        }
        other => anyhow::bail!("unknown mode {other}; use xlsx-preview, xlsx-commit or erp"),
    };
    let status = answer.status();
    let body = answer.bytes().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    // Only the counts are read: the client's share of the peak stays the body's bytes.
    let counts: Counts = serde_json::from_slice(&body)?;
    println!(
        "{mode}: {rows} rows in {:.3} s; messages {}, row errors {}; answer {} KiB; \
         peak RSS {} MiB",
        elapsed.as_secs_f64(),
        counts.messages_loaded,
        counts.rows_failed,
        body.len() / 1024,
        peak_rss_kib() / 1024
    );
    Ok(())
}

/// A workbook as an ERP export: name, phone as a number, installment, amount, due date.
fn workbook(rows: u32) -> anyhow::Result<Vec<u8>> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    for (c, name) in ["Nombre", "Celular", "Cuota", "Monto", "Vence"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *name)?;
    }
    let due = ExcelDateTime::from_ymd(2026, 12, 10)?;
    for i in 1..=rows {
        sheet.write_string(i, 0, format!("Socio Número {i}"))?;
        sheet.write_number(i, 1, f64::from(70_000_000 + i))?;
        sheet.write_number(i, 2, f64::from(i % 24 + 1))?;
        sheet.write_number(i, 3, 100.0 + f64::from(i % 1000) / 4.0)?;
        sheet.write_datetime_with_format(i, 4, &due, &date)?;
    }
    Ok(book.save_to_buffer()?)
}

/// A table of `rows` installments in the ERP, made by the ERP itself.
async fn erp_table(url: &str, rows: u32) -> anyhow::Result<String> {
    let table = format!("bench_{}", uuid::Uuid::now_v7().simple());
    if url.starts_with("mysql") || url.starts_with("mariadb") {
        let mut conn = sqlx::MySqlConnection::connect(url).await?;
        sqlx::query("SET SESSION max_recursive_iterations = 10000000")
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, nombre VARCHAR(80), \
             celular VARCHAR(20), cuota INT, monto DECIMAL(12,2), vence DATE)"
        ))
        .execute(&mut conn)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO {table} WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
             FROM n WHERE i < {rows}) SELECT i, CONCAT('Socio Número ', i), \
             CAST(70000000 + i AS CHAR), i % 24 + 1, 100 + (i % 1000) / 4, '2026-12-10' FROM n"
        ))
        .execute(&mut conn)
        .await?;
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query(&format!(
            "CREATE TABLE {table} AS SELECT i::bigint AS id, 'Socio Número ' || i AS nombre, \
             (70000000 + i)::text AS celular, i % 24 + 1 AS cuota, \
             (100 + (i % 1000) / 4.0)::numeric(12,2) AS monto, DATE '2026-12-10' AS vence \
             FROM generate_series(1, {rows}) AS i"
        ))
        .execute(&mut conn)
        .await?;
    }
    Ok(table)
}

#[derive(serde::Deserialize)]
struct Counts {
    messages_loaded: u64,
    rows_failed: u64,
}

/// Starts the peak resident set afresh from what the process holds now, so that making the
/// workbook or the ERP table does not count.
fn reset_peak_rss() {
    if let Err(err) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("peak RSS not reset ({err}); the figure includes the set-up");
    }
}

/// The process's peak resident set, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
