//! Sign-in, session tokens, and the module each route needs.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, assert_problem, spawn_app};

#[tokio::test]
async fn sign_in_gives_a_token_that_says_who_you_are() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"username": ADMIN, "password": crate::helpers::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token: Value = res.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);

    let me: Value = app
        .get("/v1/auth/me", token["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["kind"], "user");
    assert_eq!(me["name"], ADMIN);
    assert_eq!(
        me["modules"],
        json!(["operators", "reports", "dashboard", "admin"])
    );
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_alike() {
    let app = spawn_app().await;
    for (username, password) in [(ADMIN, "not-the-password"), ("nobody", "whatever-it-is")] {
        let res = app
            .client
            .post(app.url("/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body = assert_problem(res, StatusCode::UNAUTHORIZED, None).await;
        assert_eq!(
            body["detail"],
            "wrong username or password, or the user is disabled"
        );
    }
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, None).await;

    for token in ["garbage", "pgn_0000", "eyJhbGciOiJIUzI1NiJ9.e30.x"] {
        let res = app.get("/v1/messages", token).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, None).await;
    }
}

#[tokio::test]
async fn a_module_is_needed_for_each_route() {
    let app = spawn_app().await;
    let (_, reporter) = app.user_with("reporter", &["reports"]).await;

    assert_eq!(
        app.get("/v1/messages", &reporter).await.status(),
        StatusCode::OK
    );
    let res = app
        .post(
            "/v1/messages",
            &reporter,
            json!({"to": "71234567", "text": "hola"}),
        )
        .await;
    let body = assert_problem(res, StatusCode::FORBIDDEN, None).await;
    assert!(body["detail"].as_str().unwrap().contains("operators"));
    assert_eq!(
        app.get("/v1/users", &reporter).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/metrics", &reporter).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn disabling_a_user_refuses_their_token_at_once() {
    let app = spawn_app().await;
    let (id, token) = app.user_with("operator", &["operators", "reports"]).await;
    assert_eq!(
        app.get("/v1/messages", &token).await.status(),
        StatusCode::OK
    );

    let res = app
        .patch(
            &format!("/v1/users/{id}"),
            &app.admin_token,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/v1/messages", &token).await;
    assert_problem(res, StatusCode::UNAUTHORIZED, None).await;

    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"username": "operator", "password": "operator-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
