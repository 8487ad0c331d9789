//! A real SMTP server for the tests that mail: `tests/support/smtp_server.py` (aiosmtpd) run as
//! a process on loopback, and what it accepted.

use serde_json::Value;
use tempfile::TempDir;

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
