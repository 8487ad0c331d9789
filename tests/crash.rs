//! Durability: the real binary is killed with SIGKILL while messages pour in, and every message
//! it answered 2xx for is there after a restart; killed while a segment is on the air, that
//! message is held for review, never sent again; and killed while a webhook POST is under way or
//! a mail waits for its server, the event is delivered and the mail sent after the restart, once.

mod common;
#[allow(dead_code)]
#[path = "common/smtp.rs"]
mod smtp;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "crash-test-password";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The running binary; killed when dropped, so a failing assertion leaves no process behind.
struct Service(Child);

impl Service {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn start(dir: &Path, database_url: &str, port: u16) -> Service {
    start_with(dir, database_url, port, &[])
}

fn start_with(dir: &Path, database_url: &str, port: u16, env: &[(&str, &str)]) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_pregonero"))
        .arg("serve")
        .envs(env.iter().copied())
        .env("PREGONERO_LISTEN", format!("127.0.0.1:{port}"))
        .env("PREGONERO_DATA_DIR", dir)
        .env("PREGONERO_DATABASE_URL", database_url)
        .env("PREGONERO_ADMIN_USERNAME", "admin")
        .env("PREGONERO_ADMIN_PASSWORD", PASSWORD)
        .env("PREGONERO_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start pregonero");
    Service(child)
}

async fn wait_healthy(client: &Client, base: &str) {
    for _ in 0..200 {
        if let Ok(res) = client.get(format!("{base}/health")).send().await
            && res.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the service did not become healthy");
}

async fn token(client: &Client, base: &str) -> String {
    let res = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_acknowledged_message_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();

    let mut child = start(dir.path(), &url, port);
    wait_healthy(&client, &base).await;
    let token = token(&client, &base).await;

    // Sixteen senders keep submitting until the process dies under them.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let senders: Vec<_> = (0..16)
        .map(|sender| {
            let (client, base, token, acked) = (
                client.clone(),
                base.clone(),
                token.clone(),
                acked_tx.clone(),
            );
            tokio::spawn(async move {
                for i in 0.. {
                    let body =
                        json!({"to": "71234567", "text": "x", "ref": format!("s{sender}-{i}")});
                    let Ok(res) = client
                        .post(format!("{base}/v1/messages"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                    else {
                        return;
                    };
                    if res.status() != StatusCode::CREATED {
                        return;
                    }
                    let Ok(message) = res.json::<Value>().await else {
                        return;
                    };
                    let _ = acked.send(message["id"].as_i64().unwrap());
                }
            })
        })
        .collect();
    drop(acked_tx);

    let mut acked = Vec::new();
    while acked.len() < 300 {
        acked.push(acked_rx.recv().await.expect("acknowledgements"));
    }
    child.kill();
    for sender in senders {
        sender.await.unwrap();
    }
    while let Ok(id) = acked_rx.try_recv() {
        acked.push(id);
    }

    let mut child = start(dir.path(), &url, port);
    wait_healthy(&client, &base).await;
    let token = self::token(&client, &base).await;
    for id in &acked {
        let res = client
            .get(format!("{base}/v1/messages/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "acknowledged message {id} was lost"
        );
    }
    child.kill();
}

#[tokio::test]
async fn a_segment_on_the_air_at_the_kill_is_held_for_review_not_resent() {
    held_for_review_after_a_kill("modem-1").await;
}

/// The modem is replaced in the settings between the kill and the restart: its journal still
/// gets its messages recovered, the one on the air held for review and the one it had claimed
/// next sent by the new modem.
#[tokio::test]
async fn a_modem_gone_from_the_settings_still_has_its_messages_recovered() {
    held_for_review_after_a_kill("modem-2").await;
}

/// Kills the service while `modem-1` has a segment on the air, restarts it with the modem
/// `second`, and checks that the segment is held for review and the other message goes out
/// once, through `second`.
async fn held_for_review_after_a_kill(second: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let slow = [
        ("PREGONERO_SENDING_WINDOW", "00:00-24:00"),
        ("PREGONERO_AUTO_START", "true"),
        ("PREGONERO_SIM_SEGMENT_MS", "4000"),
    ];

    let mut child = start_with(dir.path(), &url, port, &slow);
    wait_healthy(&client, &base).await;
    let token = token(&client, &base).await;
    let mut ids = Vec::new();
    for text in ["en el aire", "en espera"] {
        let res = client
            .post(format!("{base}/v1/messages"))
            .bearer_auth(&token)
            .json(&json!({"to": "71234567", "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        ids.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let message = |id: i64, token: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!("{base}/v1/messages/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // The first message is handed to the modem, which takes four seconds to answer +CMGS.
    let mut on_air = false;
    for _ in 0..200 {
        if message(ids[0], token.clone()).await["status"] == "sending" {
            on_air = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(on_air, "the first message never reached the modem");
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill();

    let fast = [
        ("PREGONERO_SENDING_WINDOW", "00:00-24:00"),
        ("PREGONERO_AUTO_START", "true"),
        ("PREGONERO_SIM_SEGMENT_MS", "10"),
        ("PREGONERO_MODEM_ID", second),
    ];
    let mut child = start_with(dir.path(), &url, port, &fast);
    wait_healthy(&client, &base).await;
    let token = self::token(&client, &base).await;
    let mut waiting = Value::Null;
    for _ in 0..200 {
        waiting = message(ids[1], token.clone()).await;
        if waiting["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting["status"], "delivered", "{waiting}");
    let in_doubt = message(ids[0], token.clone()).await;
    assert_eq!(in_doubt["status"], "failed", "{in_doubt}");
    assert_eq!(in_doubt["error"], pregonero::store::REVIEW_NOTE);

    // The new modem was asked to send one segment only: the waiting message's.
    let trace: Value = client
        .get(format!("{base}/v1/modems/{second}/trace"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sends = trace
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["text"].as_str().unwrap().starts_with("AT+CMGS="))
        .count();
    assert_eq!(sends, 1, "{trace}");
    child.kill();
}

/// A webhook receiver on loopback that hangs on every request while `hang` is set, and notes
/// each request's event id and whether it was answered 200.
struct Receiver {
    url: String,
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>>,
}

async fn receiver() -> Receiver {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use std::sync::atomic::Ordering;

    let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let got: std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>> = Default::default();
    let (hang_in, got_in) = (hang.clone(), got.clone());
    let server = HttpServer::new(move || {
        let (hang, got) = (hang_in.clone(), got_in.clone());
        App::new().default_service(web::to(move |req: HttpRequest| {
            let (hang, got) = (hang.clone(), got.clone());
            async move {
                let id = req
                    .headers()
                    .get("pregonero-event-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let hanging = hang.load(Ordering::SeqCst);
                got.lock().unwrap().push((id, !hanging));
                if hanging {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    Receiver {
        url: format!("http://127.0.0.1:{port}/hook"),
        hang,
        got,
    }
}

async fn admin_post(client: &Client, base: &str, token: &str, path: &str, body: Value) -> Value {
    let res = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_delivery_cut_short_by_a_kill_is_made_after_the_restart_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let rx = receiver().await;

    let mut child = start(dir.path(), &url, port);
    wait_healthy(&client, &base).await;
    let token = token(&client, &base).await;
    admin_post(
        &client,
        &base,
        &token,
        "/v1/webhooks",
        json!({"url": rx.url, "events": ["sms.received"]}),
    )
    .await;
    admin_post(
        &client,
        &base,
        &token,
        "/v1/modems/modem-1/simulator/inbound",
        json!({"from": "+59171234567", "text": "Ya pagué"}),
    )
    .await;

    // The POST is under way (the receiver holds it) when the gateway dies.
    for _ in 0..200 {
        if !rx.got.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = rx.got.lock().unwrap().clone();
    assert_eq!(first.len(), 1, "the delivery never started");
    child.kill();

    rx.hang.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut child = start(dir.path(), &url, port);
    wait_healthy(&client, &base).await;
    for _ in 0..200 {
        if rx.got.lock().unwrap().iter().any(|(_, ok)| *ok) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment more, for a second delivery that must not come.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let got = rx.got.lock().unwrap().clone();
    let answered: Vec<&(String, bool)> = got.iter().filter(|(_, ok)| *ok).collect();
    assert_eq!(
        answered.len(),
        1,
        "delivered once after the restart: {got:?}"
    );
    assert_eq!(answered[0].0, first[0].0, "the same event");
    child.kill();
}

#[tokio::test]
async fn mails_queued_before_a_kill_go_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let port = free_port();
    let smtp_port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let env = [("PREGONERO_MAIL_RETRY_MS", "200")];

    let mut child = start_with(dir.path(), &url, port, &env);
    wait_healthy(&client, &base).await;
    let token = token(&client, &base).await;
    let res = client
        .put(format!("{base}/v1/notifications/email"))
        .bearer_auth(&token)
        .json(
            &json!({"host": "127.0.0.1", "port": smtp_port, "security": "none",
                      "from": "avisos@coop.bo"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    admin_post(
        &client,
        &base,
        &token,
        "/v1/notifications/rules",
        json!({"name": "respuestas", "events": ["sms.received"],
               "recipients": ["cobranzas@coop.bo"]}),
    )
    .await;
    admin_post(
        &client,
        &base,
        &token,
        "/v1/modems/modem-1/simulator/inbound",
        json!({"from": "+59171234567", "text": "¿Cuánto debo?"}),
    )
    .await;
    // The SMTP server is down: the mail waits, tried and failed.
    let mut tried = false;
    for _ in 0..200 {
        let page: Value = client
            .get(format!("{base}/v1/notifications/mails"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["items"][0]["attempts"].as_i64() >= Some(1) {
            tried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tried, "the mail was never tried");
    child.kill();

    let smtp = smtp::SmtpServer::start_on(smtp_port, smtp::SmtpOptions::default());
    let mut child = start_with(dir.path(), &url, port, &env);
    wait_healthy(&client, &base).await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0]["subject"], "SMS recibido de +59171234567");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(smtp.mails().len(), 1, "sent once");
    child.kill();
}
