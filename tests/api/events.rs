//! `GET /v1/events`: the live stream, its filter, and resuming with `Last-Event-ID`.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, poll, spawn_app};

const INBOUND: &str = "/v1/modems/modem-1/simulator/inbound";

/// One frame of the stream.
#[derive(Debug)]
struct Frame {
    id: String,
    event: String,
    data: Value,
}

/// Reads a stream's frames until `n` events have come, for at most ten seconds.
async fn read_events(res: &mut Response, n: usize) -> Vec<Frame> {
    let mut text = String::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while frames.len() < n {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} events came: {frames:?}", frames.len()))
            .expect("stream read")
            .expect("stream open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
            };
            if let (Some(id), Some(event), Some(data)) =
                (field("id"), field("event"), field("data"))
            {
                let data = serde_json::from_str(&data).unwrap();
                frames.push(Frame { id, event, data });
            }
        }
    }
    frames
}

async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> Response {
    let mut req = app
        .client
        .get(app.url(&format!("/v1/events{query}")))
        .bearer_auth(&app.admin_token);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let res = req.send().await.expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    res
}

async fn receive_text(app: &TestApp, text: &str) {
    let res = app
        .post(
            INBOUND,
            &app.admin_token,
            json!({"from": "+59171234567", "text": text}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_stream_carries_the_events_it_asks_for_as_they_happen() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let mut texts = open(&app, "?types=sms.received", None).await;
    let mut all = open(&app, "", None).await;

    let sent = app
        .send(
            json!({"to": "71234567", "text": "Su cuota vence mañana"}),
            StatusCode::CREATED,
        )
        .await;
    app.post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    receive_text(&app, "Ya pagué").await;

    let got = read_events(&mut texts, 1).await;
    assert_eq!(got[0].event, "sms.received");
    assert_eq!(got[0].data["type"], "sms.received");
    assert_eq!(got[0].data["id"], got[0].id);
    assert_eq!(got[0].data["data"]["text"], "Ya pagué");

    let got = read_events(&mut all, 3).await;
    let kinds: Vec<&str> = got.iter().map(|f| f.event.as_str()).collect();
    assert!(kinds.contains(&"message.sent"), "{kinds:?}");
    assert!(kinds.contains(&"sms.received"), "{kinds:?}");
    let sent_event = got.iter().find(|f| f.event == "message.sent").unwrap();
    assert_eq!(sent_event.data["data"]["message_id"], sent["id"]);
}

#[tokio::test]
async fn a_stream_resumed_after_an_event_gets_what_came_after_it() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let mut first = open(&app, "?types=sms.received", None).await;
    for text in ["uno", "dos", "tres"] {
        receive_text(&app, text).await;
    }
    let got = read_events(&mut first, 3).await;
    drop(first);
    let texts: Vec<&str> = got
        .iter()
        .map(|f| f.data["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["uno", "dos", "tres"]);

    // Reconnected after the first: the other two come again, in order, then live ones.
    let mut again = open(&app, "?types=sms.received", Some(&got[0].id)).await;
    receive_text(&app, "cuatro").await;
    let resumed = read_events(&mut again, 3).await;
    let texts: Vec<&str> = resumed
        .iter()
        .map(|f| f.data["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["dos", "tres", "cuatro"]);
    assert_eq!(resumed[0].id, got[1].id);
}

#[tokio::test]
async fn an_id_no_longer_stored_resumes_by_its_time() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    // An id from 1970: everything stored comes, starting with the modem coming up.
    let mut res = open(
        &app,
        "?types=modem.connected",
        Some("evt_00000000000070008000000000000000"),
    )
    .await;
    let got = read_events(&mut res, 1).await;
    assert_eq!(got[0].data["data"]["modem_id"], "modem-1");
    assert_eq!(got[0].data["data"]["manufacturer"], "huawei");
}

#[tokio::test]
async fn bad_streams_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let res = app.get("/v1/events?types=sms.sent", &app.admin_token).await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("types")).await;
    assert!(body["detail"].as_str().unwrap().contains("sms.sent"));
    let res = app
        .get("/v1/events?last_event_id=yesterday", &app.admin_token)
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("last_event_id")).await;
    // 32 bytes after the prefix, one character of them two bytes long.
    let res = app
        .get(
            "/v1/events?last_event_id=evt_aaaaaaaaaaa%C3%A9aaaaaaaaaaaaaaaaaaa",
            &app.admin_token,
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("last_event_id")).await;
    let (_, operator) = app.user_with("ana", &["operators"]).await;
    let res = app.get("/v1/events", &operator).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}
