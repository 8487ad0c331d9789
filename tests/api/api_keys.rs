//! API keys: scopes, secrets shown once, expiry and revocation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_key_works_with_its_scopes_until_it_is_revoked() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/api-keys",
            &app.admin_token,
            json!({"name": "erp", "scopes": ["operators"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pgn_"));
    assert_eq!(created["state"], "active");
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));

    let res = app
        .post(
            "/v1/messages",
            &secret,
            json!({"to": "71234567", "text": "hola"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let message: Value = res.json().await.unwrap();
    assert_eq!(message["created_by"], "key:erp");
    assert_eq!(
        app.get("/v1/messages", &secret).await.status(),
        StatusCode::FORBIDDEN
    );

    // The secret is shown once: listing and reading never return it.
    let listed = app
        .get("/v1/api-keys", &app.admin_token)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&secret));
    assert!(listed.contains(&id));

    let res = app
        .delete(&format!("/v1/api-keys/{id}"), &app.admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "revoked");
    let res = app
        .post(
            "/v1/messages",
            &secret,
            json!({"to": "71234567", "text": "hola"}),
        )
        .await;
    assert_problem(res, StatusCode::UNAUTHORIZED, None).await;
}

#[tokio::test]
async fn a_key_without_scopes_or_with_a_past_expiry_is_refused() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/api-keys",
            &app.admin_token,
            json!({"name": "x", "scopes": []}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("scopes")).await;

    let res = app
        .post(
            "/v1/api-keys",
            &app.admin_token,
            json!({"name": "x", "scopes": ["reports"], "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("expires_at")).await;

    let res = app
        .post(
            "/v1/api-keys",
            &app.admin_token,
            json!({"name": "x", "scopes": ["boss"]}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("scopes[0]")).await;
}

#[tokio::test]
async fn only_admins_make_keys() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with("operator", &["operators"]).await;
    let res = app
        .post(
            "/v1/api-keys",
            &operator,
            json!({"name": "mine", "scopes": ["admin"]}),
        )
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
}
