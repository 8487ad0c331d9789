//! The daily event log through the API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn sign_ins_and_changes_reach_the_days_log() {
    let app = spawn_app().await;
    app.user_with("reporter", &["reports"]).await;

    let days: Value = app.get_json("/v1/logs", &app.admin_token).await;
    let day = days[0]["day"].as_str().unwrap().to_owned();
    let res = app.get(&format!("/v1/logs/{day}"), &app.admin_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let events: Vec<&str> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"service.started"));
    assert!(events.contains(&"user.created"));
    assert!(events.contains(&"auth.login"));
    // Passwords never reach the log.
    let raw = serde_json::to_string(&body).unwrap();
    assert!(!raw.contains("reporter-password"));
    assert!(!raw.contains(crate::helpers::ADMIN_PASSWORD));
}

#[tokio::test]
async fn the_log_is_cleared_by_admins_only() {
    let app = spawn_app().await;
    // The modem's arrival is logged too; it must come before the clearing.
    crate::helpers::poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let (_, reporter) = app.user_with("reporter", &["reports"]).await;
    let res = app.delete("/v1/logs", &reporter).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;

    let res = app.delete("/v1/logs", &app.admin_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["removed"], json!(1));
    let days: Value = app.get_json("/v1/logs", &reporter).await;
    let day = days[0]["day"].as_str().unwrap();
    let body: Value = app.get_json(&format!("/v1/logs/{day}"), &reporter).await;
    assert_eq!(body["entries"].as_array().unwrap().len(), 1);
    assert_eq!(body["entries"][0]["event"], "logs.cleared");
}

#[tokio::test]
async fn a_day_that_is_not_a_date_is_named() {
    let app = spawn_app().await;
    let res = app.get("/v1/logs/yesterday", &app.admin_token).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("day")).await;
    let res = app.get("/v1/logs/1999-01-01", &app.admin_token).await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
}
