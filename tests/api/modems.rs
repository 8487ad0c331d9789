//! `/v1/modems`: status of the simulated modem, its settings, connecting and disconnecting,
//! a test message and the trace.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, poll, spawn_app};

#[tokio::test]
async fn the_simulated_modem_shows_its_identity_and_network() {
    let app = spawn_app().await;
    let modem = poll(&app, "/v1/modems/modem-1", |m| {
        m["connected"] == true && m["registration"].is_string()
    })
    .await;
    assert_eq!(modem["port"], "sim");
    assert_eq!(modem["simulated"], true);
    assert_eq!(modem["manufacturer"], "huawei");
    assert_eq!(modem["model"], "E303");
    assert_eq!(modem["imei"].as_str().unwrap().len(), 15);
    assert_eq!(modem["operator"], "Sim Movil");
    assert_eq!(modem["registration"], "home");
    assert_eq!(modem["signal_dbm"], -73);
    assert_eq!(modem["signal_bars"], 4);

    let all = app.get_json("/v1/modems", &app.admin_token).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let res = app.get("/v1/modems/modem-9", &app.admin_token).await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;

    // The trace shows the init sequence and the identity queries.
    let trace = app
        .get_json("/v1/modems/modem-1/trace", &app.admin_token)
        .await;
    let lines: Vec<&str> = trace
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == ">")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(lines.contains(&"AT+CMGF=0"), "{lines:?}");
    assert!(lines.contains(&"AT+CGSN"));
}

#[tokio::test]
async fn a_test_message_goes_out_at_once_and_shows_in_the_trace() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let res = app
        .post(
            "/v1/modems/modem-1/test-sms",
            &app.admin_token,
            json!({"to": "71234567", "text": "prueba"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["to"], "+59171234567");
    assert_eq!(body["references"].as_array().unwrap().len(), 1);
    let trace = app
        .get_json("/v1/modems/modem-1/trace", &app.admin_token)
        .await;
    assert!(
        trace
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().unwrap().starts_with("AT+CMGS="))
    );
    let res = app
        .post(
            "/v1/modems/modem-1/test-sms",
            &app.admin_token,
            json!({"to": "no"}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("to")).await;
}

#[tokio::test]
async fn a_disconnected_modem_sends_nothing_until_it_is_connected_again() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let res = app
        .post("/v1/modems/modem-1/disconnect", &app.admin_token, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let modem: Value = res.json().await.unwrap();
    assert_eq!(
        (modem["enabled"].clone(), modem["connected"].clone()),
        (json!(false), json!(false))
    );

    let m = app
        .send(
            json!({"to": "71234567", "text": "espera"}),
            StatusCode::CREATED,
        )
        .await;
    app.post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let still = app
        .get_json(&format!("/v1/messages/{}", m["id"]), &app.admin_token)
        .await;
    assert_eq!(still["status"], "pending");
    let res = app.get("/v1/modems/modem-1/trace", &app.admin_token).await;
    assert_problem(res, StatusCode::CONFLICT, None).await;

    app.post("/v1/modems/modem-1/connect", &app.admin_token, json!({}))
        .await;
    crate::helpers::wait_for(&app, m["id"].as_i64().unwrap(), "delivered").await;
}

#[tokio::test]
async fn port_settings_are_checked_kept_and_reset() {
    let app = spawn_app().await;
    let settings = app
        .get_json("/v1/modems/modem-1/settings", &app.admin_token)
        .await;
    assert_eq!(settings["port"], "sim");
    assert_eq!(settings["baud_rate"], 115200);
    assert_eq!(settings["is_default"], true);

    for (body, field) in [
        (json!({"baud_rate": 12}), "baud_rate"),
        (json!({"parity": "mark"}), "parity"),
        (json!({"stop_bits": 3}), "stop_bits"),
        (json!({"data_bits": 9}), "data_bits"),
        (json!({"flow_control": "magic"}), "flow_control"),
        (json!({"pin": "12ab"}), "pin"),
        (json!({"port": ""}), "port"),
    ] {
        let res = app
            .client
            .put(app.url("/v1/modems/modem-1/settings"))
            .bearer_auth(&app.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }

    let res = app
        .client
        .put(app.url("/v1/modems/modem-1/settings"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"baud_rate": 9600, "pin": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["baud_rate"], 9600);
    assert_eq!(changed["pin_set"], true);
    assert_eq!(changed["is_default"], false);
    assert!(changed.get("pin").is_none());
    // The modem comes back with the new settings.
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;

    let res = app
        .post(
            "/v1/modems/modem-1/settings/defaults",
            &app.admin_token,
            json!({}),
        )
        .await;
    let reset: Value = res.json().await.unwrap();
    assert_eq!(reset["baud_rate"], 115200);
    assert_eq!(reset["pin_set"], false);

    let (_, token) = app.user_with("mirona", &["dashboard"]).await;
    let res = app.get("/v1/modems/modem-1/settings", &token).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
    assert_eq!(
        app.get("/v1/modems/modem-1", &token).await.status(),
        StatusCode::OK
    );
}
