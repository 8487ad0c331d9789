//! Email against a real SMTP server process on loopback (aiosmtpd, see
//! `tests/support/smtp_server.py`): settings, the test mail and its explanations, rules,
//! received texts mailed with the message that caused them, load reports, and mails that wait
//! for a server that is down.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    SmtpOptions, SmtpServer, TestApp, assert_problem, fixture, free_port, poll, spawn_app, wait_for,
};
use crate::loads::{TEMPLATE, template, three_rows, upload};

const USER: &str = "avisos";
const PASSWORD: &str = "clave-del-correo";

fn ca() -> String {
    std::fs::read_to_string(fixture("smtp/ca.pem")).unwrap()
}

/// Settings for a server on loopback, by the name its certificate carries.
fn settings(port: u16, security: &str) -> Value {
    json!({
        "host": "localhost", "port": port, "security": security,
        "username": USER, "password": PASSWORD,
        "from": "Pregonero <avisos@coop.bo>", "ca_certificate": ca(),
    })
}

async fn put_settings(app: &TestApp, body: Value) -> Value {
    let res = app
        .put("/v1/notifications/email", &app.admin_token, body)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn rule(app: &TestApp, events: Value, to: &str) -> Value {
    let res = app
        .post(
            "/v1/notifications/rules",
            &app.admin_token,
            json!({"name": "regla", "events": events, "recipients": [to]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn test_mail(app: &TestApp, to: &str) -> reqwest::Response {
    app.post(
        "/v1/notifications/email/test",
        &app.admin_token,
        json!({"to": to}),
    )
    .await
}

async fn text_in(app: &TestApp, from: &str, text: &str) {
    let res = app
        .post(
            "/v1/modems/modem-1/simulator/inbound",
            &app.admin_token,
            json!({"from": from, "text": text}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_received_text_is_mailed_with_the_message_that_caused_it() {
    let app = spawn_app().await;
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((USER, PASSWORD)),
        starttls: true,
        ..SmtpOptions::default()
    });
    let shown = put_settings(&app, settings(smtp.port, "starttls")).await;
    assert_eq!(shown["password_set"], true);
    assert!(shown.get("password").is_none(), "{shown}");
    assert!(!shown.to_string().contains(PASSWORD));
    rule(
        &app,
        json!(["sms.received", "call.received"]),
        "cobranzas@coop.bo",
    )
    .await;

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
    text_in(&app, "+59171234567", "Ya pagué <en efectivo>").await;

    let mails = smtp.wait_for(1).await;
    let mail = &mails[0];
    assert_eq!(mail["to"], json!(["cobranzas@coop.bo"]));
    assert_eq!(mail["from"], "avisos@coop.bo");
    assert_eq!(mail["subject"], "SMS recibido de +59171234567");
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["user"], USER);
    let text = mail["text"].as_str().unwrap();
    assert!(text.contains("Ya pagué <en efectivo>"), "{text}");
    assert!(text.contains("Su cuota 3 vence mañana"), "{text}");
    let html = mail["html"].as_str().unwrap();
    assert!(html.contains("Ya pagué &lt;en efectivo&gt;"), "{html}");

    let list = poll(&app, "/v1/notifications/mails", |p| {
        p["items"][0]["status"] == "sent"
    })
    .await;
    assert_eq!(list["items"][0]["event"], "sms.received");
    assert_eq!(list["items"][0]["attempts"], 1);
    // Sent once, even after a while.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test]
async fn mails_wait_for_a_server_that_is_down_and_go_once_when_it_is_back() {
    let app = spawn_app().await;
    let port = free_port();
    put_settings(
        &app,
        json!({"host": "127.0.0.1", "port": port, "security": "none",
               "from": "avisos@coop.bo"}),
    )
    .await;
    rule(&app, json!(["sms.received"]), "cobranzas@coop.bo").await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    text_in(&app, "+59171234567", "¿Cuánto debo?").await;

    let list = poll(&app, "/v1/notifications/mails", |p| {
        p["items"][0]["attempts"].as_i64() >= Some(2)
    })
    .await;
    let mail = &list["items"][0];
    assert_eq!(mail["status"], "pending");
    let error = mail["last_error"].as_str().unwrap();
    assert!(error.starts_with("connection refused"), "{error}");
    assert!(mail["next_attempt_at"].as_str().is_some());

    let smtp = SmtpServer::start_on(port, SmtpOptions::default());
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0]["subject"], "SMS recibido de +59171234567");
    poll(&app, "/v1/notifications/mails?status=sent", |p| {
        p["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(smtp.mails().len(), 1, "sent once");
}

#[tokio::test]
async fn the_test_mail_says_what_went_wrong_in_words() {
    let app = spawn_app().await;
    let res = test_mail(&app, "sistemas@coop.bo").await;
    assert_problem(res, StatusCode::CONFLICT, None).await;

    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((USER, PASSWORD)),
        starttls: true,
        relay_domain: Some("coop.bo"),
        ..SmtpOptions::default()
    });
    let mut body = settings(smtp.port, "starttls");
    put_settings(&app, body.clone()).await;
    let res = test_mail(&app, "sistemas@coop.bo").await;
    assert_eq!(res.status(), StatusCode::OK);
    let ok: Value = res.json().await.unwrap();
    assert!(ok["server_answer"].as_str().unwrap().contains("accepted"));
    assert_eq!(smtp.mails()[0]["subject"], "Correo de prueba de Pregonero");

    let cases = [
        (json!({"password": "otra-clave"}), "authentication refused"),
        (json!({"ca_certificate": ""}), "certificate not trusted"),
        (json!({"host": "correo.invalid"}), "host not found"),
    ];
    for (change, words) in cases {
        let mut changed = body.clone();
        for (k, v) in change.as_object().unwrap() {
            changed[k] = v.clone();
        }
        put_settings(&app, changed).await;
        let res = test_mail(&app, "sistemas@coop.bo").await;
        let problem = assert_problem(res, StatusCode::BAD_GATEWAY, None).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{words}: {detail}");
    }

    body["language"] = json!("en");
    put_settings(&app, body).await;
    let res = test_mail(&app, "alguien@gmail.com").await;
    let problem = assert_problem(res, StatusCode::BAD_GATEWAY, None).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("relay denied"), "{detail}");
    assert!(detail.contains("alguien@gmail.com"), "{detail}");
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test]
async fn starttls_once_chosen_is_never_dropped() {
    let app = spawn_app().await;
    // A server that offers no STARTTLS, as one behind a stripping middlebox looks.
    let plain = SmtpServer::start(SmtpOptions::default());
    put_settings(
        &app,
        json!({"host": "localhost", "port": plain.port, "security": "starttls",
               "from": "avisos@coop.bo"}),
    )
    .await;
    let res = test_mail(&app, "sistemas@coop.bo").await;
    let problem = assert_problem(res, StatusCode::BAD_GATEWAY, None).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not offer STARTTLS")
    );
    assert!(plain.mails().is_empty(), "nothing went in the clear");
}

#[tokio::test]
async fn tls_from_the_first_byte_works_with_the_organisations_ca() {
    let app = spawn_app().await;
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((USER, PASSWORD)),
        tls: true,
        ..SmtpOptions::default()
    });
    put_settings(&app, settings(smtp.port, "tls")).await;
    let res = test_mail(&app, "sistemas@coop.bo").await;
    assert_eq!(res.status(), StatusCode::OK);
    let mails = smtp.mails();
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(mails[0]["user"], USER);
}

#[tokio::test]
async fn load_reports_are_mailed_in_the_chosen_language() {
    let app = spawn_app().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    put_settings(
        &app,
        json!({"host": "127.0.0.1", "port": smtp.port, "security": "none",
               "from": "avisos@coop.bo", "language": "en"}),
    )
    .await;
    rule(&app, json!(["load.finished"]), "cartera@coop.bo").await;
    let id = template(&app, TEMPLATE, 140).await;
    let res = upload(
        &app,
        ("cuotas.xlsx", three_rows()),
        &[("template_id", &id), ("phone_column", "celular")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let load: Value = res.json().await.unwrap();

    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails[0]["subject"],
        "Excel load committed: 2 messages, 1 rows with errors"
    );
    let text = mails[0]["text"].as_str().unwrap();
    assert!(text.contains("File: cuotas.xlsx"), "{text}");
    assert!(text.contains("row 3 (Celular)"), "{text}");
    let report = poll(
        &app,
        &format!("/v1/loads/{}/report", load["id"].as_str().unwrap()),
        |r| r["sent_at"].is_string(),
    )
    .await;
    assert_eq!(report["subject"], mails[0]["subject"]);
}

#[tokio::test]
async fn bad_settings_and_rules_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"host": "", "from": "a@coop.bo"}), "host"),
        (json!({"host": "smtp.coop.bo", "from": "avisos"}), "from"),
        (
            json!({"host": "smtp.coop.bo", "from": "a@coop.bo", "ca_certificate": "x"}),
            "ca_certificate",
        ),
        (
            json!({"host": "smtp.coop.bo", "from": "a@coop.bo", "security": "ssl"}),
            "security",
        ),
    ];
    for (body, field) in cases {
        let res = app
            .put("/v1/notifications/email", &app.admin_token, body)
            .await;
        let status = res.status();
        let problem: Value = res.json().await.unwrap();
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{problem}"
        );
        assert_eq!(problem["field"], field, "{problem}");
    }
    let shown = app
        .get_json("/v1/notifications/email", &app.admin_token)
        .await;
    assert_eq!(shown["configured"], false);

    let rules = [
        (
            json!({"name": "x", "events": ["sms.sent"], "recipients": ["a@coop.bo"]}),
            "events[0]",
        ),
        (
            json!({"name": "x", "events": ["*"], "recipients": ["nadie"]}),
            "recipients[0]",
        ),
        (
            json!({"name": "x", "events": ["*"], "recipients": []}),
            "recipients",
        ),
        (
            json!({"name": "", "events": ["*"], "recipients": ["a@coop.bo"]}),
            "name",
        ),
    ];
    for (body, field) in rules {
        let res = app
            .post("/v1/notifications/rules", &app.admin_token, body)
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }
    let (_, operator) = app.user_with("ope", &["operators"]).await;
    let res = app.get("/v1/notifications/rules", &operator).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}

#[tokio::test]
async fn the_password_stays_only_with_its_server_and_never_travels_in_the_clear() {
    let app = spawn_app().await;
    put_settings(&app, settings(2525, "starttls")).await;
    let mut again = settings(2525, "starttls");
    again.as_object_mut().unwrap().remove("password");
    let kept = put_settings(&app, again.clone()).await;
    assert_eq!(kept["password_set"], true);

    // Sent elsewhere, the stored password would go to whoever runs that host.
    let mut moved = again.clone();
    moved["host"] = json!("smtp.otro.bo");
    let res = app
        .put("/v1/notifications/email", &app.admin_token, moved)
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("password")).await;

    let mut plain = settings(2525, "none");
    plain["password"] = json!(PASSWORD);
    let res = app
        .put("/v1/notifications/email", &app.admin_token, plain)
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("security")).await;
    let shown = app
        .get_json("/v1/notifications/email", &app.admin_token)
        .await;
    assert_eq!(shown["host"], "localhost", "nothing refused was stored");
}
