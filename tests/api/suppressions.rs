//! The suppression list: opt-outs by text through the simulated modem, numbers added and
//! removed through the API, the keywords, and messages refused, cancelled and never sent.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, poll, spawn_app};

const INBOUND: &str = "/v1/modems/modem-1/simulator/inbound";
const CUSTOMER: &str = "+59171234567";

async fn text_in(app: &TestApp, text: &str) {
    let res = app
        .post(
            INBOUND,
            &app.admin_token,
            json!({"from": CUSTOMER, "text": text}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

/// Posts a message to the customer until the answer has `status` (the list reaches the submit
/// check of this node within seconds when another path changed it), and returns the answer.
async fn send_until(app: &TestApp, status: StatusCode) -> Value {
    for _ in 0..100 {
        let res = app
            .post(
                "/v1/messages",
                &app.admin_token,
                json!({"to": CUSTOMER, "text": "Recordatorio"}),
            )
            .await;
        if res.status() == status {
            return res.json().await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("submitting never answered {status}");
}

#[tokio::test]
async fn a_customer_who_texts_baja_gets_nothing_more_until_alta() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    // Sending is stopped: this one waits in the queue.
    let waiting = app
        .send(
            json!({"to": "71234567", "text": "Su cuota vence mañana"}),
            StatusCode::CREATED,
        )
        .await;

    text_in(&app, "Baja.").await;
    let list = poll(&app, "/v1/suppressions", |l| {
        l["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    let entry = &list["items"][0];
    assert_eq!(entry["phone"], CUSTOMER);
    assert_eq!(entry["source"], "sms");
    assert_eq!(entry["keyword"], "Baja.");
    assert!(entry["inbox_id"].as_i64().is_some());
    let cancelled = app
        .get_json(&format!("/v1/messages/{}", waiting["id"]), &app.admin_token)
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["error"].as_str().unwrap().contains("suppression"));

    let refused = send_until(&app, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["field"], "to");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("suppression list")
    );
    let res = app
        .post(
            "/v1/messages/batch",
            &app.admin_token,
            json!({"messages": [{"to": "71234567", "text": "x"}, {"to": "70000001", "text": "y"}]}),
        )
        .await;
    let batch: Value = res.json().await.unwrap();
    assert_eq!(batch["items"][0]["status"], "rejected");
    assert_eq!(batch["items"][0]["problem"]["field"], "messages[0].to");
    assert_eq!(batch["items"][1]["status"], "created");

    text_in(&app, "ALTA").await;
    poll(&app, "/v1/suppressions", |l| l["items"] == json!([])).await;
    let sent = send_until(&app, StatusCode::CREATED).await;
    assert_eq!(sent["to"], CUSTOMER);
}

#[tokio::test]
async fn an_operator_can_suppress_a_number_and_only_an_admin_can_lift_it() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with("ope", &["operators", "dashboard"]).await;
    let stored = app
        .send(
            json!({"to": "71234567", "text": "Aviso", "ref": "aviso-1"}),
            StatusCode::CREATED,
        )
        .await;

    let res = app
        .post(
            "/v1/suppressions",
            &operator,
            json!({"phone": "71234567", "note": "pidió por teléfono"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let added: Value = res.json().await.unwrap();
    assert_eq!(added["cancelled"], 1);
    assert_eq!(added["suppression"]["source"], "operator");
    assert_eq!(added["suppression"]["created_by"], "ope");
    let again = app
        .post("/v1/suppressions", &operator, json!({"phone": CUSTOMER}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);

    // Refused at once on this node; the retry of the message stored before gets its answer.
    let res = app
        .post(
            "/v1/messages",
            &app.admin_token,
            json!({"to": "71234567", "text": "Otro aviso"}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("to")).await;
    let retry = app
        .post(
            "/v1/messages",
            &app.admin_token,
            json!({"to": "71234567", "text": "Aviso", "ref": "aviso-1"}),
        )
        .await;
    assert_eq!(retry.status(), StatusCode::OK);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], stored["id"]);
    assert_eq!(retry["status"], "cancelled");

    // A texted ALTA does not lift what an operator put.
    text_in(&app, "alta").await;
    poll(&app, "/v1/inbox", |p| {
        p["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    let entry = app
        .get_json("/v1/suppressions/%2B59171234567", &operator)
        .await;
    assert_eq!(entry["note"], "pidió por teléfono");

    let path = "/v1/suppressions/71234567";
    let res = app.delete(path, &operator).await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
    let res = app.delete(path, &app.admin_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.delete(path, &app.admin_token).await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
    app.send(
        json!({"to": "71234567", "text": "Aviso nuevo"}),
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn the_keywords_are_the_organisations_to_choose() {
    let app = spawn_app().await;
    poll(&app, "/v1/modems/modem-1", |m| m["connected"] == true).await;
    let defaults = app
        .get_json("/v1/suppressions/keywords", &app.admin_token)
        .await;
    assert_eq!(defaults["opt_out"], json!(["BAJA", "STOP", "NO"]));

    let res = app
        .put(
            "/v1/suppressions/keywords",
            &app.admin_token,
            json!({"opt_out": ["Cancelar", "!!"], "opt_in": ["alta"]}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("opt_out[1]")).await;
    let res = app
        .put(
            "/v1/suppressions/keywords",
            &app.admin_token,
            json!({"opt_out": ["Cancelar"], "opt_in": ["Volver"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // BAJA is no longer a keyword: it is a reply like any other.
    text_in(&app, "BAJA").await;
    text_in(&app, "cancelar").await;
    let list = poll(&app, "/v1/suppressions", |l| {
        l["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(list["items"][0]["keyword"], "cancelar");
    let inbox = poll(&app, "/v1/inbox", |p| {
        p["items"].as_array().is_some_and(|i| i.len() == 2)
    })
    .await;
    assert_eq!(inbox["items"][1]["text"], "BAJA");
}

#[tokio::test]
async fn bad_suppressions_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let res = app
        .post("/v1/suppressions", &app.admin_token, json!({"phone": "12"}))
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("phone")).await;
    let res = app
        .post(
            "/v1/suppressions",
            &app.admin_token,
            json!({"phone": "71234567", "note": "x".repeat(501)}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("note")).await;
    let res = app
        .get("/v1/suppressions?cursor=nope", &app.admin_token)
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("cursor")).await;
    let res = app.get("/v1/suppressions/71234567", &app.admin_token).await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
}
