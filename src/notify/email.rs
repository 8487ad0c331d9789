//! Mail through the organisation's SMTP server: the settings an admin keeps in the database, the
//! transport built from them, and what a failure means in words a person can act on.
//!
//! Certificates are always verified, against the public authorities and, for a server inside
//! the organisation, a CA certificate the admin gives; STARTTLS, once chosen, is required, so a
//! server (or a machine in the middle) that stops offering it gets no mail in the clear.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::domain::Language;
use crate::store::{Store, StoreError};

/// The settings key the email settings are kept under.
pub const SETTINGS_KEY: &str = "notify.email";

/// How long the SMTP server has for each step of a conversation.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain text (port 25 inside a trusted network).
    None,
    /// Plain connection upgraded with STARTTLS, which is then required (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// The SMTP settings.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmailSettings {
    /// Whether mail is sent at all; mails wait in the queue while it is off.
    pub enabled: bool,
    /// The SMTP server's host name (what its certificate names).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// The user to sign in as, if the server wants one.
    pub username: Option<String>,
    /// That user's password; never shown or logged.
    pub password: Option<String>,
    /// The sender: an address, or `Name <address>`.
    pub from: String,
    /// A CA certificate (PEM) that signed the server's certificate, for servers inside the
    /// organisation.
    pub ca_certificate: Option<String>,
    /// The language of the mails.
    pub language: Language,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .field("ca_certificate", &self.ca_certificate.is_some())
            .field("language", &self.language)
            .finish()
    }
}

/// A mail ready to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipients.
    pub to: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The `Message-ID`, the same on every attempt, so that a mail sent twice after a crash
    /// can be recognised.
    pub message_id: String,
}

/// Why a mail was not sent. The words are for the admin who must fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// A setting is wrong: the field and why.
    #[error("{field}: {reason}")]
    Settings {
        /// The setting at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The server could not be reached, or did not take the mail for a reason that may pass
    /// or that the settings can mend (authentication, relaying, a full queue).
    #[error("{0}")]
    Smtp(String),
    /// The server refused this mail for good (a recipient it does not know, a mail too big):
    /// trying it again cannot help, and other mails need not wait for it.
    #[error("{0}")]
    Refused(String),
}

/// Checks a mail address, `ana@coop.bo` or `Ana <ana@coop.bo>`.
///
/// # Errors
///
/// Says what is wrong with it.
pub fn parse_mailbox(address: &str) -> Result<Mailbox, String> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|_| format!("`{address}` is not a mail address like ana@coop.bo"))
}

/// The language of what reaches people: the one of the email settings, Spanish until they are
/// set.
///
/// # Errors
///
/// Fails when the database does.
pub async fn language(store: &Store) -> Result<Language, StoreError> {
    Ok(EmailSettings::load(store)
        .await?
        .map(|s| s.language)
        .unwrap_or_default())
}

impl EmailSettings {
    /// The stored settings, or `None` when email was never set up.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn load(store: &Store) -> Result<Option<EmailSettings>, StoreError> {
        Ok(store
            .setting(SETTINGS_KEY)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Stores the settings.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn save(&self, store: &Store) -> Result<(), StoreError> {
        let json = serde_json::to_string(self).unwrap_or_default();
        store.set_setting(SETTINGS_KEY, &json).await
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// The first field that is wrong.
    pub fn check(&self) -> Result<(), MailError> {
        let bad = |field, reason: &str| MailError::Settings {
            field,
            reason: reason.to_owned(),
        };
        let host = self.host.trim();
        if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace()) {
            return Err(bad("host", "a host name such as smtp.coop.bo"));
        }
        if self.port == 0 {
            return Err(bad("port", "a port from 1 to 65535"));
        }
        parse_mailbox(&self.from).map_err(|reason| MailError::Settings {
            field: "from",
            reason,
        })?;
        if self.username.is_some() != self.password.is_some() {
            return Err(bad(
                "password",
                "give both a user and a password (again, after changing the server or the user), \
                 or neither",
            ));
        }
        if self.username.is_some() && self.security == Security::None {
            return Err(bad(
                "security",
                "a password is sent only over TLS: use starttls or tls, or leave the user out",
            ));
        }
        if let Some(pem) = &self.ca_certificate {
            let parsed = Certificate::from_pem(pem.as_bytes());
            if !pem.contains("-----BEGIN CERTIFICATE-----") || parsed.is_err() {
                return Err(bad(
                    "ca_certificate",
                    "a certificate in PEM form (-----BEGIN CERTIFICATE----- …)",
                ));
            }
        }
        Ok(())
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let host = self.host.trim();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(self.port)
            .timeout(Some(SMTP_TIMEOUT));
        if self.security != Security::None {
            let mut tls = TlsParameters::builder(host.to_owned());
            if let Some(pem) = &self.ca_certificate {
                let ca =
                    Certificate::from_pem(pem.as_bytes()).map_err(|_| MailError::Settings {
                        field: "ca_certificate",
                        reason: "not a certificate in PEM form".into(),
                    })?;
                tls = tls.add_root_certificate(ca);
            }
            let tls = tls.build().map_err(|e| MailError::Settings {
                field: "ca_certificate",
                reason: format!("TLS cannot be set up: {e}"),
            })?;
            builder = builder.tls(match self.security {
                Security::Tls => Tls::Wrapper(tls),
                _ => Tls::Required(tls),
            });
        }
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }

    /// Sends one mail; the server's answer when it took it.
    ///
    /// # Errors
    ///
    /// [`MailError::Settings`] for settings that cannot work, [`MailError::Smtp`] with what went
    /// wrong, in words, otherwise.
    pub async fn send(&self, mail: &Outgoing) -> Result<String, MailError> {
        let from = parse_mailbox(&self.from).map_err(|reason| MailError::Settings {
            field: "from",
            reason,
        })?;
        let mut message = Message::builder()
            .from(from)
            .subject(&mail.subject)
            .message_id(Some(mail.message_id.clone()));
        for to in &mail.to {
            let to = parse_mailbox(to).map_err(|reason| MailError::Settings {
                field: "recipients",
                reason,
            })?;
            message = message.to(to);
        }
        let message = message
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| MailError::Refused(format!("the mail could not be put together: {e}")))?;
        let transport = self.transport()?;
        match transport.send(message).await {
            Ok(answer) => Ok(answer.message().collect::<Vec<_>>().join(" ")),
            Err(err) => {
                let words = describe(&err, self, &mail.to);
                if refuses_this_mail(&err, &words) {
                    Err(MailError::Refused(words))
                } else {
                    Err(MailError::Smtp(words))
                }
            }
        }
    }
}

/// Whether a failure is a permanent refusal of this one mail (RFC 5321 §4.2: a 5xx answer to
/// its recipients or its content) rather than of the gateway's settings or the server's state:
/// 530, 534 and 535 are about signing in, and relaying is about who may send, both mended by
/// the settings.
fn refuses_this_mail(err: &lettre::transport::smtp::Error, words: &str) -> bool {
    let Some(code) = err.status() else {
        return false;
    };
    let code = code.to_string();
    code.starts_with('5')
        && !["530", "534", "535"].contains(&code.as_str())
        && !words.starts_with("relay denied")
}

/// What an SMTP failure means, for the admin: which setting to look at, and the server's own
/// words when it gave some.
pub fn describe(
    err: &lettre::transport::smtp::Error,
    settings: &EmailSettings,
    to: &[String],
) -> String {
    use std::error::Error as _;

    let mut chain = err.to_string();
    let mut root = chain.clone();
    let mut source = err.source();
    let mut refused = false;
    while let Some(cause) = source {
        root = cause.to_string();
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        let text = cause.to_string();
        if !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    let lower = chain.to_lowercase();
    let (host, port) = (settings.host.trim(), settings.port);
    let answer = || {
        chain
            .split_once("): ")
            .map_or(chain.as_str(), |(_, words)| words)
            .to_owned()
    };

    if let Some(code) = err.status() {
        let code = code.to_string();
        let words = answer();
        return match code.as_str() {
            "535" | "534" => format!(
                "authentication refused: the server did not accept the user name or password \
                 ({code} {words}); check `username` and `password`"
            ),
            "530" => format!(
                "the server wants you to sign in first ({code} {words}); set `username` and \
                 `password`"
            ),
            _ if lower.contains("relay") || words.starts_with("5.7.1") => format!(
                "relay denied: the server will not pass mail on to {} for this sender ({code} \
                 {words}); sign in with a user allowed to send, or ask the mail admin to let \
                 this gateway relay",
                to.join(", ")
            ),
            c if c.starts_with('4') => format!(
                "the server cannot take the mail for now ({code} {words}); it will be tried \
                 again"
            ),
            _ => format!("the server refused the mail ({code} {words})"),
        };
    }
    if lower.contains("lookup address")
        || lower.contains("name or service not known")
        || lower.contains("name resolution")
        || lower.contains("nodename nor servname")
        || lower.contains("no such host")
    {
        return format!("host not found: `{host}` does not resolve to an address; check `host`");
    }
    if refused {
        return format!(
            "connection refused: nothing answers on {host} port {port}; check `host` and \
             `port`, and that the server runs"
        );
    }
    if err.is_timeout() {
        return format!(
            "no answer: the server at {host} port {port} did not answer within {} s; check \
             `port`, the firewall and `security` (TLS on 465, STARTTLS on 587)",
            SMTP_TIMEOUT.as_secs()
        );
    }
    if lower.contains("starttls is not supported") {
        return format!(
            "the server at {host} port {port} does not offer STARTTLS, so nothing was sent in \
             the clear; use `security: tls` (port 465) or ask for STARTTLS to be turned on"
        );
    }
    if lower.contains("no compatible authentication mechanism") {
        return "the server offers no way to sign in on this connection; use STARTTLS or TLS, \
                or leave the user out"
            .into();
    }
    if err.is_tls() || lower.contains("certificate") || lower.contains("handshake") {
        let why = if lower.contains("unknownissuer") {
            "certificate not trusted: no authority this gateway knows signed it".to_owned()
        } else if lower.contains("notvalidforname") {
            format!("the certificate does not name `{host}`")
        } else if lower.contains("expired") {
            "the certificate has expired".to_owned()
        } else {
            format!("TLS failed: {root}")
        };
        return format!(
            "{why} ({host} port {port}); its certificate must name `{host}` and be signed by a \
             public authority or by `ca_certificate`, and `security` must match the port (TLS \
             on 465, STARTTLS on 587)"
        );
    }
    format!("the mail could not be sent to {host} port {port}: {chain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EmailSettings {
        EmailSettings {
            enabled: true,
            host: "smtp.coop.bo".into(),
            port: 587,
            security: Security::Starttls,
            username: Some("avisos".into()),
            password: Some("secreto-del-correo".into()),
            from: "Pregonero <avisos@coop.bo>".into(),
            ca_certificate: None,
            language: Language::Es,
        }
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let shown = format!("{:?}", settings());
        assert!(!shown.contains("secreto-del-correo"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        assert_eq!(settings().check(), Ok(()));
        let field = |s: EmailSettings| match s.check() {
            Err(MailError::Settings { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(EmailSettings {
                host: "smtp coop".into(),
                ..settings()
            }),
            "host"
        );
        assert_eq!(
            field(EmailSettings {
                from: "avisos".into(),
                ..settings()
            }),
            "from"
        );
        assert_eq!(
            field(EmailSettings {
                password: None,
                ..settings()
            }),
            "password"
        );
        assert_eq!(
            field(EmailSettings {
                ca_certificate: Some("not a certificate".into()),
                ..settings()
            }),
            "ca_certificate"
        );
        assert_eq!(
            field(EmailSettings {
                security: Security::None,
                ..settings()
            }),
            "security"
        );
    }
}
