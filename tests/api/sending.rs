//! Starting and stopping the sending; messages going out through the simulated modem.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app, wait_for};

#[tokio::test]
async fn messages_go_out_once_sending_is_started() {
    let app = spawn_app().await;
    let short = app
        .send(
            json!({"to": "71234567", "text": "hola"}),
            StatusCode::CREATED,
        )
        .await;
    let long = app
        .send(
            json!({"to": "71234568", "text": "x".repeat(400)}),
            StatusCode::CREATED,
        )
        .await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = app
        .get_json(&format!("/v1/messages/{}", short["id"]), &app.admin_token)
        .await;
    assert_eq!(still["status"], "pending");

    let res = app
        .post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["started"], true);

    // The simulated network confirms each segment with a status report, so the messages end
    // as delivered once every segment's report is in.
    let done = wait_for(&app, short["id"].as_i64().unwrap(), "delivered").await;
    assert_eq!(done["attempts"], 1);
    assert!(done["sent_at"].is_string());
    assert!(done["delivered_at"].is_string());
    assert!(done["error"].is_null());
    let done = wait_for(&app, long["id"].as_i64().unwrap(), "delivered").await;
    assert_eq!(done["segments"], 3);
}

#[tokio::test]
async fn stopped_sending_leaves_messages_pending() {
    let app = spawn_app().await;
    app.post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    let res = app
        .post("/v1/sending/stop", &app.admin_token, json!({}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["started"], false);

    let m = app
        .send(
            json!({"to": "71234567", "text": "espera"}),
            StatusCode::CREATED,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still: Value = app
        .get_json(&format!("/v1/messages/{}", m["id"]), &app.admin_token)
        .await;
    assert_eq!(still["status"], "pending");
}

#[tokio::test]
async fn the_sending_state_shows_the_window() {
    let app = spawn_app().await;
    let state: Value = app.get_json("/v1/sending", &app.admin_token).await;
    assert_eq!(state["started"], false);
    assert_eq!(state["window"], "00:00-24:00");
    assert_eq!(state["time_zone"], "America/La_Paz");

    let (_, reporter) = app.user_with("reporter", &["reports"]).await;
    let res = app.post("/v1/sending/start", &reporter, json!({})).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}

#[tokio::test]
async fn settings_change_the_window_and_sign_new_messages() {
    let app = spawn_app().await;
    let put = |body: Value| {
        app.client
            .put(app.url("/v1/sending"))
            .bearer_auth(&app.admin_token)
            .json(&body)
            .send()
    };
    for (body, field) in [
        (json!({"window": "8-20"}), "window"),
        (json!({"window": "09:00-09:00"}), "window"),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"signature": "x".repeat(41)}), "signature"),
        (json!({"signature": "a\nb"}), "signature"),
    ] {
        let res = put(body).await.unwrap();
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }

    let res = put(json!({
        "window": "22:00-06:00",
        "time_zone": "America/Santiago",
        "auto_start": false,
        "signature": "Coop. San Martin"
    }))
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let view = app.get_json("/v1/sending", &app.admin_token).await;
    assert_eq!(view["window"], "22:00-06:00");
    assert_eq!(view["time_zone"], "America/Santiago");
    assert_eq!(view["auto_start"], false);
    assert_eq!(view["signature"], "Coop. San Martin");

    // The signature is part of the text before its segments are counted: 155 + 17 > 160, in GSM-7.
    let signed = app
        .send(
            json!({"to": "71234567", "text": "a".repeat(155)}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        signed["text"],
        format!("{} Coop. San Martin", "a".repeat(155))
    );
    assert_eq!(signed["segments"], 2);
    // A text that already ends with it is not signed twice.
    let once = app
        .send(
            json!({"to": "71234567", "text": "Hola. Coop. San Martin"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(once["text"], "Hola. Coop. San Martin");
    let empty = app.post(
        "/v1/messages",
        &app.admin_token,
        json!({"to": "71234567", "text": " "}),
    );
    assert_problem(empty.await, StatusCode::UNPROCESSABLE_ENTITY, Some("text")).await;

    let (_, token) = app.user_with("operadora", &["operators"]).await;
    let res = app
        .client
        .put(app.url("/v1/sending"))
        .bearer_auth(&token)
        .json(&json!({"auto_start": true}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}

#[tokio::test]
async fn the_segment_counter_counts_what_went_out_and_resets() {
    let app = spawn_app().await;
    let counters = app.get_json("/v1/credit", &app.admin_token).await;
    assert_eq!(counters[0]["modem_id"], "modem-1");
    assert_eq!(counters[0]["segments_sent"], 0);

    let short = app
        .send(
            json!({"to": "71234567", "text": "uno"}),
            StatusCode::CREATED,
        )
        .await;
    let long = app
        .send(
            json!({"to": "71234567", "text": "z".repeat(300)}),
            StatusCode::CREATED,
        )
        .await;
    app.post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    wait_for(&app, short["id"].as_i64().unwrap(), "delivered").await;
    wait_for(&app, long["id"].as_i64().unwrap(), "delivered").await;
    let counters = app.get_json("/v1/credit", &app.admin_token).await;
    assert_eq!(counters[0]["segments_sent"], 3);
    assert!(counters[0]["since"].is_string());

    let res = app
        .post(
            "/v1/credit/reset",
            &app.admin_token,
            json!({"modem_id": "nope"}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("modem_id")).await;
    let res = app
        .post("/v1/credit/reset", &app.admin_token, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let counters: Value = res.json().await.unwrap();
    assert_eq!(counters[0]["segments_sent"], 0);
}
