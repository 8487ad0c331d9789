//! `/health`, `/metrics`, Swagger UI, and the answers for unknown routes and methods.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn health_needs_no_credentials_and_reports_the_database() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn metrics_count_requests_and_messages_by_status() {
    let app = spawn_app().await;
    app.send(
        json!({"to": "71234567", "text": "uno"}),
        StatusCode::CREATED,
    )
    .await;
    app.send(
        json!({"to": "71234567", "text": "dos"}),
        StatusCode::CREATED,
    )
    .await;
    let bad = app
        .post(
            "/v1/messages",
            &app.admin_token,
            json!({"to": "1", "text": "x"}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let res = app.get("/metrics", &app.admin_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains("pregonero_messages{status=\"pending\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("pregonero_messages{status=\"sent\"} 0\n"));
    assert!(text.contains("pregonero_http_requests_total{status=\"201\"} 2\n"));
    assert!(text.contains("pregonero_http_requests_total{status=\"422\"} 1\n"));
}

#[tokio::test]
async fn unknown_routes_answer_problem_json() {
    let app = spawn_app().await;
    let res = app.get("/v1/nothing-here", &app.admin_token).await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/swagger-ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("swagger-ui"));
    let init = app
        .client
        .get(app.url("/swagger-ui/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn a_wrong_method_answers_problem_json() {
    let app = spawn_app().await;
    let res = app.patch("/v1/messages", &app.admin_token, json!({})).await;
    assert_problem(res, StatusCode::METHOD_NOT_ALLOWED, None).await;
}
