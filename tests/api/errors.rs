//! Bad input of every kind gets a 4xx problem that says what is wrong, and nothing is stored.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};

async fn post_raw(app: &TestApp, body: &str, content_type: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/messages"))
        .bearer_auth(&app.admin_token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400() {
    let app = spawn_app().await;
    let res = post_raw(&app, "to=71234567&text=hola", "application/json").await;
    assert_problem(res, StatusCode::BAD_REQUEST, None).await;
    let res = post_raw(
        &app,
        r#"{"to": "71234567", "text": "hola""#,
        "application/json",
    )
    .await;
    assert_problem(res, StatusCode::BAD_REQUEST, None).await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_a_415() {
    let app = spawn_app().await;
    let res = post_raw(&app, r#"{"to": "71234567", "text": "hola"}"#, "text/plain").await;
    assert_problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, None).await;
}

#[tokio::test]
async fn each_bad_field_is_named() {
    let app = spawn_app().await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let cases = [
        (json!({"to": 71234567, "text": "hola"}), "to"),
        (json!({"text": "hola"}), "to"),
        (json!({"to": "71234567"}), "text"),
        (
            json!({"to": "71234567", "text": "hola", "sendat": "x"}),
            "sendat",
        ),
        (json!({"to": "Juan", "text": "hola"}), "to"),
        (json!({"to": "12", "text": "hola"}), "to"),
        (json!({"to": "71234567", "text": ""}), "text"),
        (json!({"to": "71234567", "text": "   "}), "text"),
        (json!({"to": "71234567", "text": "x".repeat(2000)}), "text"),
        (
            json!({"to": "71234567", "text": "hola", "send_at": past}),
            "send_at",
        ),
        (
            json!({"to": "71234567", "text": "hola", "send_at": "mañana"}),
            "send_at",
        ),
        (json!({"to": "71234567", "text": "hola", "ref": ""}), "ref"),
        (
            json!({"to": "71234567", "text": "hola", "ref": "r".repeat(65)}),
            "ref",
        ),
        (json!({"to": "71234567", "text": "hola", "ref": 5}), "ref"),
        (json!(["71234567", "hola", null, "r1"]), "body"),
    ];
    for (body, field) in cases {
        let res = app
            .post("/v1/messages", &app.admin_token, body.clone())
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }

    let page: Value = app.get_json("/v1/messages", &app.admin_token).await;
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn a_send_at_a_moment_ago_is_within_tolerance() {
    let app = spawn_app().await;
    let recent = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc3339();
    app.send(
        json!({"to": "71234567", "text": "hola", "send_at": recent}),
        StatusCode::CREATED,
    )
    .await;
}
