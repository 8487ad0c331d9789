//! Users: creation, changes, deletion, and the last admin.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, login, spawn_app};

#[tokio::test]
async fn users_are_created_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/users",
            &app.admin_token,
            json!({
                "username": "mlopez", "name": "María López",
                "password": "una-clave-larga", "modules": ["reports"]
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let user: Value = res.json().await.unwrap();
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["modules"], json!(["reports"]));
    assert_eq!(user["enabled"], true);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());

    let listed = app
        .get("/v1/users", &app.admin_token)
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains("mlopez"));
    assert!(!listed.contains("argon2"));

    let res = app
        .patch(
            &format!("/v1/users/{id}"),
            &app.admin_token,
            json!({"password": "otra-clave-larga", "modules": ["reports", "dashboard"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["modules"],
        json!(["reports", "dashboard"])
    );
    login(&app.client, &app.base, "mlopez", "otra-clave-larga").await;

    let res = app
        .delete(&format!("/v1/users/{id}"), &app.admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get(&format!("/v1/users/{id}"), &app.admin_token).await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
}

#[tokio::test]
async fn a_taken_username_is_a_conflict() {
    let app = spawn_app().await;
    let body =
        json!({"username": "admin", "name": "Other", "password": "long-enough-pw", "modules": []});
    let res = app.post("/v1/users", &app.admin_token, body).await;
    assert_problem(res, StatusCode::CONFLICT, Some("username")).await;
}

#[tokio::test]
async fn bad_user_fields_are_named() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "a", "name": "A", "password": "long-enough-pw", "modules": []}),
            "username",
        ),
        (
            json!({"username": "ana", "name": "", "password": "long-enough-pw", "modules": []}),
            "name",
        ),
        (
            json!({"username": "ana", "name": "Ana", "password": "short", "modules": []}),
            "password",
        ),
        (
            json!({"username": "ana", "name": "Ana", "password": "long-enough-pw"}),
            "modules",
        ),
    ];
    for (body, field) in cases {
        let res = app.post("/v1/users", &app.admin_token, body).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_disabled_demoted_or_deleted() {
    let app = spawn_app().await;
    let me: Value = app.get_json("/v1/auth/me", &app.admin_token).await;
    let id = me["id"].as_str().unwrap();

    for change in [json!({"enabled": false}), json!({"modules": ["reports"]})] {
        let res = app
            .patch(&format!("/v1/users/{id}"), &app.admin_token, change)
            .await;
        assert_problem(res, StatusCode::CONFLICT, None).await;
    }
    let res = app
        .delete(&format!("/v1/users/{id}"), &app.admin_token)
        .await;
    assert_problem(res, StatusCode::CONFLICT, None).await;

    // With a second admin, the first may step down.
    app.user_with("second", &["admin"]).await;
    let res = app
        .patch(
            &format!("/v1/users/{id}"),
            &app.admin_token,
            json!({"modules": ["reports"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}
