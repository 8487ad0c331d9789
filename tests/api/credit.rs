//! Balances through the API: asked now, mailed, shown with the segment counter and as metrics,
//! a low balance that pauses sending until it is back, answers that are not balances, and bad
//! settings.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{SmtpOptions, SmtpServer, TestApp, assert_problem, poll, spawn_app};

const BALANCE: &str = "/v1/modems/modem-1/balance";

async fn answer_with(app: &TestApp, text: Option<&str>) {
    let res = app
        .post(
            "/v1/modems/modem-1/simulator/ussd",
            &app.admin_token,
            json!({"text": text, "shape": "packed"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn ask(app: &TestApp) -> reqwest::Response {
    app.post(BALANCE, &app.admin_token, json!({})).await
}

async fn ready(app: &TestApp) {
    // Ready, with its operator read: the preset is chosen by it.
    poll(app, "/v1/modems/modem-1", |m| {
        m["connected"] == true && m["operator"].is_string()
    })
    .await;
}

#[tokio::test]
async fn a_balance_asked_now_is_read_kept_shown_and_mailed() {
    let app = spawn_app().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let res = app
        .put(
            "/v1/notifications/email",
            &app.admin_token,
            json!({"host": "127.0.0.1", "port": smtp.port, "security": "none",
                   "from": "avisos@coop.bo"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .post(
            "/v1/notifications/rules",
            &app.admin_token,
            json!({"name": "saldo", "events": ["balance.checked"],
                   "recipients": ["admin@coop.bo"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    ready(&app).await;

    let res = ask(&app).await;
    assert_eq!(res.status(), StatusCode::OK);
    let checked: Value = res.json().await.unwrap();
    assert_eq!(
        checked["text"],
        "Tu saldo es Bs 25,50 vigente hasta 31/12/2026"
    );
    assert_eq!(checked["parsed"], true);
    assert_eq!(checked["amount"], "25.50");
    assert_eq!(checked["currency"], "Bs");
    assert_eq!(checked["expires"], "2026-12-31");
    assert_eq!(checked["code"], "*105#");
    assert_eq!(checked["cause"], "api");
    assert_eq!(checked["low"], false);

    let credit = app.get_json("/v1/credit", &app.admin_token).await;
    assert_eq!(credit[0]["balance"]["amount"], "25.50");
    assert_eq!(credit[0]["paused"], false);
    let history = app.get_json(BALANCE, &app.admin_token).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    let metrics = app
        .get("/metrics", &app.admin_token)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pregonero_balance{modem=\"modem-1\",currency=\"Bs\"} 25.50"),
        "{metrics}"
    );

    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0]["subject"], "Saldo de modem-1: Bs 25.50");
    let text = mails[0]["text"].as_str().unwrap();
    assert!(text.contains("Vence: 2026-12-31"), "{text}");
    assert!(text.contains("Tu saldo es Bs 25,50"), "{text}");
}

#[tokio::test]
async fn a_low_balance_pauses_sending_until_it_is_back() {
    let app = spawn_app().await;
    ready(&app).await;
    let res = app
        .put(
            &format!("{BALANCE}/settings"),
            &app.admin_token,
            json!({"low_threshold": "30", "pause_when_low": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let checked: Value = ask(&app).await.json().await.unwrap();
    assert_eq!(checked["low"], true);
    assert_eq!(checked["paused"], true);

    let message = app
        .send(
            json!({"to": "71234567", "text": "Recordatorio"}),
            StatusCode::CREATED,
        )
        .await;
    app.post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let waiting = app
        .get_json(&format!("/v1/messages/{}", message["id"]), &app.admin_token)
        .await;
    assert_eq!(
        waiting["status"], "pending",
        "paused while the balance is low"
    );
    let credit = app.get_json("/v1/credit", &app.admin_token).await;
    assert_eq!(credit[0]["paused"], true);

    answer_with(&app, Some("Saldo: Bs 50,00")).await;
    let checked: Value = ask(&app).await.json().await.unwrap();
    assert_eq!(checked["low"], false);
    assert_eq!(checked["paused"], false);
    crate::helpers::wait_for(&app, message["id"].as_i64().unwrap(), "delivered").await;
}

#[tokio::test]
async fn answers_that_are_not_balances_are_kept_as_text_and_failures_said() {
    let app = spawn_app().await;
    ready(&app).await;
    answer_with(&app, Some("Servicio no disponible por el momento")).await;
    let res = ask(&app).await;
    assert_eq!(res.status(), StatusCode::OK);
    let checked: Value = res.json().await.unwrap();
    assert_eq!(checked["parsed"], false);
    assert_eq!(checked["amount"], Value::Null);
    assert_eq!(checked["text"], "Servicio no disponible por el momento");

    answer_with(&app, None).await;
    let problem = assert_problem(ask(&app).await, StatusCode::BAD_GATEWAY, None).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not support")
    );
    let history = app.get_json(BALANCE, &app.admin_token).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 2);
    assert!(history["items"][0]["error"].is_string());

    // Without a code of its own and with no preset for its operator, nothing is asked.
    let res = app
        .put(
            "/v1/credit/presets",
            &app.admin_token,
            json!({"presets": [{"operator": "Entel", "code": "*105#"}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(ask(&app).await, StatusCode::CONFLICT, Some("ussd_code")).await;
}

#[tokio::test]
async fn bad_balance_settings_and_presets_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let path = format!("{BALANCE}/settings");
    let cases = [
        (json!({"ussd_code": "saldo"}), "ussd_code"),
        (json!({"check_at": "25:00"}), "check_at"),
        (json!({"low_threshold": "diez"}), "low_threshold"),
        (json!({"pause_when_low": true}), "pause_when_low"),
    ];
    for (body, field) in cases {
        let res = app.put(&path, &app.admin_token, body).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }
    let res = app
        .put(
            "/v1/credit/presets",
            &app.admin_token,
            json!({"presets": [
                {"operator": "Tigo", "code": "*#"},
                {"operator": "", "code": "*1#"},
            ]}),
        )
        .await;
    assert_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("presets[1].operator"),
    )
    .await;
    let res = app
        .post("/v1/modems/modem-9/balance", &app.admin_token, json!({}))
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
    let (_, viewer) = app.user_with("ver", &["dashboard"]).await;
    let res = app.post(BALANCE, &viewer, json!({})).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}
