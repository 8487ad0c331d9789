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
    assert_eq!(state["window"], "00:00-23:59");
    assert_eq!(state["time_zone"], "America/La_Paz");

    let (_, reporter) = app.user_with("reporter", &["reports"]).await;
    let res = app.post("/v1/sending/start", &reporter, json!({})).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}
