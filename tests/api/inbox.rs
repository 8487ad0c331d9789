//! The inbox through the API: texts and calls received by the simulated modem, stored once,
//! long texts whole, each linked to the last message sent to that number.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, poll, spawn_app, wait_for};

const INBOUND: &str = "/v1/modems/modem-1/simulator/inbound";

async fn inbox_len(app: &TestApp, query: &str, len: usize) -> Value {
    poll(app, &format!("/v1/inbox{query}"), |page| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.len() == len)
    })
    .await
}

#[tokio::test]
async fn a_reply_is_stored_with_the_message_that_caused_it() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let sent = app
        .send(
            json!({"to": "71234567", "text": "Su cuota 3 vence mañana"}),
            StatusCode::CREATED,
        )
        .await;
    app.post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    wait_for(&app, sent["id"].as_i64().unwrap(), "delivered").await;

    let res = app
        .post(
            INBOUND,
            &app.admin_token,
            json!({"from": "71234567", "text": "Pagaré el viernes, gracias"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let page = inbox_len(&app, "", 1).await;
    let item = &page["items"][0];
    assert_eq!(item["kind"], "sms");
    assert_eq!(item["from"], "+59171234567");
    assert_eq!(item["text"], "Pagaré el viernes, gracias");
    assert_eq!(item["modem_id"], "modem-1");
    assert!(item["network_time"].is_string());
    assert_eq!(item["last_message"]["id"], sent["id"]);
    assert_eq!(item["last_message"]["text"], "Su cuota 3 vence mañana");

    let one = app
        .get_json(&format!("/v1/inbox/{}", item["id"]), &app.admin_token)
        .await;
    assert_eq!(one["text"], item["text"]);

    // A number we never wrote to has no last message.
    app.post(
        INBOUND,
        &app.admin_token,
        json!({"from": "+59170000001", "text": "¿Quién es?"}),
    )
    .await;
    let page = inbox_len(&app, "", 2).await;
    assert_eq!(page["items"][0]["from"], "+59170000001");
    assert!(page["items"][0]["last_message"].is_null());
}

#[tokio::test]
async fn a_long_text_arrives_whole_and_calls_are_kept_once() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let long = "Buenos días, ya deposité la cuota de noviembre en su cuenta. ".repeat(5);
    app.post(
        INBOUND,
        &app.admin_token,
        json!({"from": "+59171234567", "text": long}),
    )
    .await;
    let page = inbox_len(&app, "?kind=sms", 1).await;
    assert_eq!(page["items"][0]["text"], long.as_str());
    assert!(page["items"][0]["parts"].as_i64().unwrap() > 1);
    assert_eq!(page["items"][0]["complete"], true);

    // The phone rings three times for one call.
    for _ in 0..3 {
        let res = app
            .post(INBOUND, &app.admin_token, json!({"from": "+59172222222"}))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let calls = inbox_len(&app, "?kind=call", 1).await;
    assert_eq!(calls["items"][0]["from"], "+59172222222");
    assert!(calls["items"][0]["text"].is_null());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let all = app.get_json("/v1/inbox", &app.admin_token).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);

    let by_number = app
        .get_json("/v1/inbox?number=72222222", &app.admin_token)
        .await;
    assert_eq!(by_number["items"].as_array().unwrap().len(), 1);
    let paged = app.get_json("/v1/inbox?limit=1", &app.admin_token).await;
    let cursor = paged["next_cursor"].as_str().unwrap();
    let next = app
        .get_json(
            &format!("/v1/inbox?limit=1&cursor={cursor}"),
            &app.admin_token,
        )
        .await;
    assert_ne!(next["items"][0]["id"], paged["items"][0]["id"]);
}

#[tokio::test]
async fn bad_inbox_queries_are_named() {
    let app = spawn_app().await;
    for (query, field) in [
        ("kind=fax", "kind"),
        ("number=abc", "number"),
        ("from=ayer", "from"),
        ("limit=0", "limit"),
        ("cursor=x", "cursor"),
    ] {
        let res = app
            .get(&format!("/v1/inbox?{query}"), &app.admin_token)
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }
    let res = app.get("/v1/inbox/999", &app.admin_token).await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
    let (_, token) = app.user_with("operadora", &["operators"]).await;
    let res = app.get("/v1/inbox", &token).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}
