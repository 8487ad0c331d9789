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

/// A free port on loopback, for a server a test starts (or leaves down) there.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A file of `tests/fixtures/`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// How a test SMTP server behaves.
#[derive(Clone, Copy, Default)]
pub struct SmtpOptions<'a> {
    /// Require AUTH with this user and password.
    pub auth: Option<(&'a str, &'a str)>,
    /// Offer STARTTLS, and require it.
    pub starttls: bool,
    /// Speak TLS from the first byte.
    pub tls: bool,
    /// Accept recipients of this domain only.
    pub relay_domain: Option<&'a str>,
}

/// A real SMTP server process (`tests/support/smtp_server.py`, on aiosmtpd) on loopback. Its
/// certificate names `localhost` and is signed by `tests/fixtures/smtp/ca.pem`.
pub struct SmtpServer {
    pub port: u16,
    child: std::process::Child,
    out: std::path::PathBuf,
    _dir: TempDir,
}

impl SmtpServer {
    /// Starts a server on a free port.
    pub fn start(options: SmtpOptions<'_>) -> SmtpServer {
        SmtpServer::start_on(free_port(), options)
    }

    /// Starts a server on `port` and waits until it listens.
    pub fn start_on(port: u16, options: SmtpOptions<'_>) -> SmtpServer {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("mails.jsonl");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args(["--port", &port.to_string()])
            .arg("--out")
            .arg(&out);
        let (cert, key) = (fixture("smtp/server.pem"), fixture("smtp/server.key"));
        if let Some((user, password)) = options.auth {
            cmd.args(["--auth", &format!("{user}:{password}")]);
        }
        if options.starttls {
            cmd.arg("--starttls").arg(&cert).arg(&key);
        }
        if options.tls {
            cmd.arg("--tls").arg(&cert).arg(&key);
        }
        if let Some(domain) = options.relay_domain {
            cmd.args(["--relay-domain", domain]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs tests/support/smtp_server.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the SMTP server's first line");
        assert_eq!(
            line.trim(),
            "ready",
            "the test SMTP server did not start; it needs aiosmtpd: python3 -m pip install aiosmtpd"
        );
        SmtpServer {
            port,
            child,
            out,
            _dir: dir,
        }
    }

    /// The mails it accepted, oldest first.
    pub fn mails(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Waits until it has accepted `n` mails, for at most ten seconds.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the SMTP server got {} of {n} mails", self.mails().len());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
