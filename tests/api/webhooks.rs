//! Webhooks against real HTTP receivers on loopback: a healthy one, one that answers 500 for a
//! while, and one that never answers. Signatures are checked as a receiver would.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, poll, spawn_app};

/// What a receiver got: headers of interest and the body.
#[derive(Clone, Debug)]
struct Received {
    event_id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

/// How a receiver answers.
#[derive(Clone, Copy)]
enum Behaviour {
    Healthy,
    /// 500 for the first n requests, then 200.
    FailFirst(usize),
    /// Never answers within the gateway's timeout.
    Hang,
}

struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until it has got `n` requests, for at most ten seconds.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver got {} of {n} requests", self.got().len());
    }
}

async fn receiver(behaviour: Behaviour) -> Receiver {
    receiver_on(behaviour, 0).await
}

/// A receiver on `port` (0: any free one).
async fn receiver_on(behaviour: Behaviour, port: u16) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: String| {
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let count = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Received {
                        event_id: header("pregonero-event-id"),
                        timestamp: header("pregonero-timestamp").parse().unwrap_or(0),
                        signature: header("pregonero-signature"),
                        body,
                    });
                    seen.len()
                };
                match behaviour {
                    Behaviour::Healthy => HttpResponse::Ok().body("ok"),
                    Behaviour::FailFirst(n) if count <= n => {
                        HttpResponse::InternalServerError().body("down for maintenance")
                    }
                    Behaviour::FailFirst(_) => HttpResponse::Ok().body("back"),
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        HttpResponse::Ok().finish()
                    }
                }
            }
        }))
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    Receiver {
        url: format!("http://127.0.0.1:{port}/hook"),
        got,
    }
}

async fn webhook(app: &TestApp, url: &str, events: Value) -> Value {
    let res = app
        .post(
            "/v1/webhooks",
            &app.admin_token,
            json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

fn check_signature(secret: &str, got: &Received) {
    assert_eq!(
        got.signature,
        pregonero::notify::webhooks::signature(secret, got.timestamp, &got.body),
        "signature of {}",
        got.body
    );
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - got.timestamp).abs() < 60,
        "timestamp {}",
        got.timestamp
    );
}

#[tokio::test]
async fn a_ping_arrives_signed_and_its_delivery_is_listed() {
    let app = spawn_app().await;
    // The ping goes to its webhook whatever events it asks for; this one asks for none that
    // happen here.
    let rx = receiver(Behaviour::Healthy).await;
    let hook = webhook(&app, &rx.url, json!(["load.finished"])).await;
    let id = hook["id"].as_str().unwrap();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let shown = app
        .get_json(&format!("/v1/webhooks/{id}"), &app.admin_token)
        .await;
    assert!(shown.get("secret").is_none(), "{shown}");

    let res = app
        .post(
            &format!("/v1/webhooks/{id}/ping"),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let ping: Value = res.json().await.unwrap();
    let got = rx.wait_for(1).await;
    check_signature(&secret, &got[0]);
    assert_eq!(got[0].event_id, ping["event_id"].as_str().unwrap());
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "webhook.ping");
    assert_eq!(body["id"], ping["event_id"]);
    assert_eq!(body["data"]["webhook_id"], id);

    let list = poll(&app, &format!("/v1/webhooks/{id}/deliveries"), |d| {
        d[0]["status"] == "delivered"
    })
    .await;
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["tries"][0]["status_code"], 200);
    assert_eq!(list[0]["tries"][0]["excerpt"], "ok");

    // A replay sends the same event again.
    let delivery = list[0]["id"].as_i64().unwrap();
    let res = app
        .post(
            &format!("/v1/webhooks/{id}/deliveries/{delivery}/replay"),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].event_id, got[0].event_id);
}

#[tokio::test]
async fn messages_and_received_texts_reach_the_webhooks_that_want_them() {
    let app = spawn_app().await;
    let all = receiver(Behaviour::Healthy).await;
    let inbound = receiver(Behaviour::Healthy).await;
    webhook(&app, &all.url, json!(["message.sent", "message.delivered"])).await;
    webhook(&app, &inbound.url, json!(["sms.received"])).await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;

    let sent = app
        .send(
            json!({"to": "71234567", "text": "Su cuota vence mañana", "ref": "wh-1"}),
            StatusCode::CREATED,
        )
        .await;
    let res = app
        .post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    assert!(res.status().is_success());
    let got = all.wait_for(2).await;
    let secret_free: Vec<Value> = got
        .iter()
        .map(|g| serde_json::from_str(&g.body).unwrap())
        .collect();
    let kinds: Vec<&str> = secret_free
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message.sent", "message.delivered"]);
    assert_eq!(secret_free[0]["data"]["ref"], "wh-1");
    assert_eq!(secret_free[0]["data"]["message_id"], sent["id"]);
    assert_eq!(secret_free[1]["data"]["to"], "+59171234567");

    let res = app
        .post(
            "/v1/modems/modem-1/simulator/inbound",
            &app.admin_token,
            json!({"from": "+59171234567", "text": "Ya pagué"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let got = inbound.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "sms.received");
    assert_eq!(body["data"]["text"], "Ya pagué");
    assert_eq!(body["data"]["from"], "+59171234567");
    assert_eq!(body["data"]["last_message_id"], sent["id"]);
    // The healthy receiver of message events got nothing it did not ask for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(all.got().len(), 2);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_takes_the_event() {
    let app = spawn_app().await;
    let rx = receiver(Behaviour::FailFirst(2)).await;
    let hook = webhook(&app, &rx.url, json!(["load.finished"])).await;
    let id = hook["id"].as_str().unwrap();
    app.post(
        &format!("/v1/webhooks/{id}/ping"),
        &app.admin_token,
        json!({}),
    )
    .await;
    let got = rx.wait_for(3).await;
    assert!(got.iter().all(|g| g.event_id == got[0].event_id));
    let list = poll(&app, &format!("/v1/webhooks/{id}/deliveries"), |d| {
        d[0]["status"] == "delivered"
    })
    .await;
    let tries = list[0]["tries"].as_array().unwrap();
    let codes: Vec<i64> = tries
        .iter()
        .map(|t| t["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(tries[0]["excerpt"], "down for maintenance");
    assert!(tries[0]["error"].as_str().unwrap().contains("500"));
}

#[tokio::test]
async fn a_receiver_that_hangs_does_not_hold_up_another() {
    let app = spawn_app().await;
    let stuck = receiver(Behaviour::Hang).await;
    let healthy = receiver(Behaviour::Healthy).await;
    let stuck_hook = webhook(&app, &stuck.url, json!(["load.finished"])).await;
    let healthy_hook = webhook(&app, &healthy.url, json!(["load.finished"])).await;
    let stuck_id = stuck_hook["id"].as_str().unwrap();
    let healthy_id = healthy_hook["id"].as_str().unwrap();
    for _ in 0..20 {
        app.post(
            &format!("/v1/webhooks/{stuck_id}/ping"),
            &app.admin_token,
            json!({}),
        )
        .await;
    }
    stuck.wait_for(1).await;
    let started = Instant::now();
    app.post(
        &format!("/v1/webhooks/{healthy_id}/ping"),
        &app.admin_token,
        json!({}),
    )
    .await;
    healthy.wait_for(1).await;
    // The other receiver keeps 32 requests hanging for ten seconds each; this one's ping
    // still goes at once.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_receiver_that_is_down_is_probed_and_gets_everything_once_back() {
    let app = spawn_app().await;
    // A port nobody listens on, for now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = webhook(
        &app,
        &format!("http://127.0.0.1:{port}/hook"),
        json!(["load.finished"]),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let ping = format!("/v1/webhooks/{id}/ping");
    app.post(&ping, &app.admin_token, json!({})).await;
    let deliveries = format!("/v1/webhooks/{id}/deliveries");
    poll(&app, &deliveries, |d| d[0]["attempts"] == 1).await;
    for _ in 0..20 {
        app.post(&ping, &app.admin_token, json!({})).await;
    }

    // Retried one by one every 100 ms and more, 21 deliveries would make dozens of attempts;
    // with the receiver taken for down, one probe goes at a time.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let list = app.get_json(&deliveries, &app.admin_token).await;
    let attempts: i64 = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .sum();
    assert!((2..=8).contains(&attempts), "{attempts} attempts: {list}");
    let error = list
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| d["tries"][0]["error"].as_str());
    assert_eq!(error, Some("the receiver cannot be reached"));

    let rx = receiver_on(Behaviour::Healthy, port).await;
    let got = rx.wait_for(21).await;
    let mut ids: Vec<&str> = got.iter().map(|g| g.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 21, "each event once");
    poll(&app, &deliveries, |d| {
        d.as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
    })
    .await;
}

#[tokio::test]
async fn bad_webhooks_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"url": "ftp://x", "events": ["*"]}), "url"),
        (
            json!({"url": "https://erp.local/x", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://erp.local/x", "events": ["sms.received", "sms.sent"]}),
            "events[1]",
        ),
        (
            json!({"url": "https://erp.local/x", "events": ["*"], "secret": "short"}),
            "secret",
        ),
    ];
    for (body, field) in cases {
        let res = app.post("/v1/webhooks", &app.admin_token, body).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }
    let list = app.get_json("/v1/webhooks", &app.admin_token).await;
    assert_eq!(list, json!([]));
}
