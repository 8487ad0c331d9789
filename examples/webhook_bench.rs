//! Webhook deliveries while messages flow: the service in-process with a simulated modem that
//! takes no time on the air, `<messages>` messages sent (each makes `message.sent` and
//! `message.delivered`), and a healthy receiver on loopback that wants both. With `down`, a
//! second webhook points at a port nobody listens on, and a third at a receiver that never
//! answers, to show what they cost the healthy one.
//!
//! With `paced`, sending starts first and the messages are posted 100 every 100 ms (2,000 events
//! a second, the bar), so that the latency shows what the pipeline adds rather than a backlog.
//!
//! ```text
//! cargo build --release --example webhook_bench
//! target/release/examples/webhook_bench 5000               # 10,000 events, as fast as it goes
//! target/release/examples/webhook_bench 5000 down          # the same beside two broken receivers
//! target/release/examples/webhook_bench 5000 paced         # 2,000 events a second
//! target/release/examples/webhook_bench 5000 paced down
//! ```
//!
//! It prints the delivery rate (events received over the time from the first event to the
//! last receipt) and the latency from each event's time to its receipt.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use pregonero::app::Application;
use pregonero::config::{Config, Secret};
use serde_json::{Value, json};

const PASSWORD: &str = "bench-password";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let down = args.iter().skip(2).any(|a| a == "down");
    let paced = args.iter().skip(2).any(|a| a == "paced");
    let events = messages * 2;

    // The healthy receiver: it notes when each event arrived, and the event's own time.
    let got: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let seen = got.clone();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().default_service(web::to(move |body: String| {
            let seen = seen.clone();
            async move {
                let received = chrono::Utc::now().timestamp_millis();
                let at = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["at"].as_str().map(str::to_owned))
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                    .map_or(0, |t| t.timestamp_millis());
                seen.lock().unwrap().push((at, received));
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(2)
    .bind("127.0.0.1:0")?;
    let healthy = format!("http://127.0.0.1:{}/hook", server.addrs()[0].port());
    tokio::spawn(server.run());
    let hanging = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            tokio::time::sleep(Duration::from_secs(120)).await;
            HttpResponse::Ok().finish()
        }))
    })
    .bind("127.0.0.1:0")?;
    let hang_url = format!("http://127.0.0.1:{}/hook", hanging.addrs()[0].port());
    tokio::spawn(hanging.run());

    let dir = tempfile::tempdir()?;
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        database_url: Some(Secret::new(format!(
            "sqlite://{}",
            dir.path().join("bench.db").display()
        ))),
        admin_username: Some("admin".into()),
        admin_password: Some(Secret::new(PASSWORD)),
        auto_start: false,
        sim_segment_ms: 0,
        sending_window: "00:00-24:00".into(),
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
    let mut hooks = vec![healthy];
    if down {
        hooks.push("http://127.0.0.1:9/nobody".into());
        hooks.push(hang_url);
    }
    for url in &hooks {
        let res = client
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": url, "events": ["message.sent", "message.delivered"]}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "webhook: {}", res.text().await?);
    }
    // The webhooks' tasks start within a second of their creation; the run starts after that.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let chunk_size = if paced { 100 } else { 1_000 };
    let start_sending = || async {
        client
            .post(format!("{base}/v1/sending/start"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
    };
    let mut started = Instant::now();
    if paced {
        start_sending().await?;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for chunk in 0..messages.div_ceil(chunk_size) {
        if paced {
            tick.tick().await;
        }
        let batch: Vec<Value> = (0..chunk_size.min(messages - chunk * chunk_size))
            .map(|i| {
                json!({"to": format!("7{:07}", chunk * chunk_size + i), "text": "Recordatorio"})
            })
            .collect();
        let res = client
            .post(format!("{base}/v1/messages/batch"))
            .bearer_auth(&token)
            .json(&json!({"messages": batch}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "batch: {}", res.text().await?);
    }
    if !paced {
        started = Instant::now();
        start_sending().await?;
    }
    while got.lock().unwrap().len() < events {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "only {} of {events} events arrived",
            got.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = got.lock().unwrap().clone();
    let first = got.iter().map(|(at, _)| *at).min().unwrap_or(0);
    let last = got.iter().map(|(_, rx)| *rx).max().unwrap_or(0);
    let mut latency: Vec<i64> = got.iter().map(|(at, rx)| rx - at).collect();
    latency.sort_unstable();
    let pct = |p: f64| latency[((latency.len() as f64 - 1.0) * p) as usize];
    let span = (last - first).max(1) as f64 / 1000.0;
    println!(
        "{} events{}{} in {span:.2} s: {:.0} events/s; latency p50 {} ms, p99 {} ms, max {} ms",
        got.len(),
        if paced { ", paced," } else { "" },
        if down {
            " beside two broken receivers"
        } else {
            ""
        },
        got.len() as f64 / span,
        pct(0.5),
        pct(0.99),
        latency.last().copied().unwrap_or(0)
    );
    Ok(())
}
