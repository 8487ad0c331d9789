//! `spawn_app()` and the small vocabulary the tests speak.

use std::sync::Once;

use pregonero::app::Application;
use pregonero::config::{Config, Secret};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running service and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// Kept so the folder lives as long as the service that writes into it.
    pub _data_dir: TempDir,
    pub admin_token: String,
}

static TRACING: Once = Once::new();

/// Starts the service with a fresh database and signs the admin in.
pub async fn spawn_app() -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            tracing_subscriber::fmt().with_env_filter("debug").init();
        }
    });

    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.path().to_owned(),
        database_url: Some(Secret::new(
            crate::common::fresh_database_url(data_dir.path()).await,
        )),
        admin_username: Some(ADMIN.into()),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        // Sending waits for POST /v1/sending/start, so tests see messages as they were stored;
        // the simulated modem is quick, and the window never closes during a test.
        auto_start: false,
        sim_segment_ms: 10,
        sending_window: "00:00-24:00".into(),
        // Webhook and mail retries within a test's patience.
        webhook_retry_ms: 100,
        mail_retry_ms: 200,
        ..Config::default()
    };
    let app = Application::build(config).await.expect("service starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let client = Client::new();
    let admin_token = login(&client, &base, ADMIN, ADMIN_PASSWORD).await;
    TestApp {
        base,
        client,
        _data_dir: data_dir,
        admin_token,
    }
}

/// Signs in and returns the session token.
pub async fn login(client: &Client, base: &str, username: &str, password: &str) -> String {
    let res = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status(), StatusCode::OK, "sign-in of {username}");
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// GETs `path` and returns its JSON body, whatever the status.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Creates a user with these modules and returns its id and a session token.
    pub async fn user_with(&self, username: &str, modules: &[&str]) -> (String, String) {
        let password = format!("{username}-password");
        let res = self
            .post(
                "/v1/users",
                &self.admin_token,
                json!({
                    "username": username, "name": username,
                    "password": password, "modules": modules
                }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = login(&self.client, &self.base, username, &password).await;
        (id, token)
    }

    /// Sends one message as the admin and returns the answer's body, asserting the status.
    pub async fn send(&self, body: Value, status: StatusCode) -> Value {
        let res = self.post("/v1/messages", &self.admin_token, body).await;
        assert_eq!(res.status(), status);
        res.json().await.unwrap()
    }
}

/// Polls a message until it reaches `status`, or fails after ten seconds.
pub async fn wait_for(app: &TestApp, id: i64, status: &str) -> Value {
    let path = format!("/v1/messages/{id}");
    poll(app, &path, |m| m["status"] == status).await
}

/// GETs `path` as the admin until `ready` holds for its body, or fails after ten seconds.
pub async fn poll(app: &TestApp, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = app.get_json(path, &app.admin_token).await;
        if ready(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never became ready: {last}");
}

/// Asserts that `res` is a problem+json with `status` naming `field`, and returns it.
pub async fn assert_problem(res: Response, status: StatusCode, field: Option<&str>) -> Value {
    assert_eq!(res.status(), status);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["field"].as_str(), field, "problem: {body}");
    body
}

pub use crate::smtp::{SmtpOptions, SmtpServer, fixture, free_port};
