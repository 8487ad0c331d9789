//! `/v1/notifications/email`: the SMTP settings and a test mail. The rules and the mail queue are
//! in [`super::mails`].

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use crate::domain::{Language, Module};
use crate::notify::email::{EmailSettings, MailError, Outgoing, Security, parse_mailbox};
use crate::store::now_ms;

/// The email settings as shown: the password never is.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailSettingsView {
    /// Whether the settings were ever saved.
    pub configured: bool,
    /// Whether mail is sent; queued mails wait while it is off.
    pub enabled: bool,
    /// The SMTP server.
    #[schema(example = "smtp.coop.bo")]
    pub host: String,
    /// Its port.
    #[schema(example = 587)]
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub security: Security,
    /// The user to sign in as.
    pub username: Option<String>,
    /// Whether a password is kept.
    pub password_set: bool,
    /// The sender.
    #[schema(example = "Pregonero <avisos@coop.bo>")]
    pub from: String,
    /// The CA certificate (PEM) for a server whose certificate no public authority signed.
    pub ca_certificate: Option<String>,
    /// `es` or `en`: the language of mails and load reports.
    pub language: Language,
}

/// New email settings. `password` is write-only: left out, the stored one is kept as long as
/// host, port, security and user stay the same; `""` removes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSettingsInput {
    /// Whether mail is sent (default true).
    pub enabled: Option<bool>,
    /// The SMTP server's host name.
    #[schema(example = "smtp.coop.bo")]
    pub host: String,
    /// Its port (default: 587 for `starttls`, 465 for `tls`, 25 for `none`).
    pub port: Option<u16>,
    /// `none`, `starttls` (default) or `tls`.
    pub security: Option<Security>,
    /// The user to sign in as.
    pub username: Option<String>,
    /// That user's password.
    pub password: Option<String>,
    /// The sender: an address or `Name <address>`.
    #[schema(example = "Pregonero <avisos@coop.bo>")]
    pub from: String,
    /// A CA certificate in PEM form.
    pub ca_certificate: Option<String>,
    /// `es` (default) or `en`.
    pub language: Option<Language>,
}

impl std::fmt::Debug for EmailSettingsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettingsInput")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Where to send a test mail.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestMail {
    /// The address.
    #[schema(example = "sistemas@coop.bo")]
    pub to: String,
}

/// A test mail the server took.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestMailSent {
    /// Where it went.
    pub to: String,
    /// What the server answered.
    pub server_answer: String,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/notifications/email")
            .route(web::get().to(get_email))
            .route(web::put().to(put_email)),
    )
    .service(super::resource("/v1/notifications/email/test").route(web::post().to(test_email)));
}

fn settings_view(settings: Option<EmailSettings>) -> EmailSettingsView {
    let configured = settings.is_some();
    let s = settings.unwrap_or(EmailSettings {
        enabled: false,
        host: String::new(),
        port: 587,
        security: Security::Starttls,
        username: None,
        password: None,
        from: String::new(),
        ca_certificate: None,
        language: Language::Es,
    });
    EmailSettingsView {
        configured,
        enabled: s.enabled,
        host: s.host,
        port: s.port,
        security: s.security,
        username: s.username,
        password_set: s.password.is_some(),
        from: s.from,
        ca_certificate: s.ca_certificate,
        language: s.language,
    }
}

fn settings_error(err: MailError) -> ApiError {
    match err {
        MailError::Settings { field, reason } => ApiError::invalid(field, reason),
        MailError::Smtp(words) | MailError::Refused(words) => ApiError::Upstream(words),
    }
}

/// The email settings.
#[utoipa::path(
    get, path = "/v1/notifications/email", tag = "notifications",
    responses(
        (status = 200, description = "The settings; `configured` is false until they are saved",
         body = EmailSettingsView),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn get_email(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let settings = EmailSettings::load(&state.store).await?;
    Ok(HttpResponse::Ok().json(settings_view(settings)))
}

/// Set up email. Mails waiting for a retry are tried again at once with the new settings.
#[utoipa::path(
    put, path = "/v1/notifications/email", tag = "notifications",
    request_body = EmailSettingsInput,
    responses(
        (status = 200, description = "The settings now", body = EmailSettingsView),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_email(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<EmailSettingsInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let stored = EmailSettings::load(&state.store).await?;
    let security = input.security.unwrap_or_default();
    let username = input
        .username
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    let host = input.host.trim().to_owned();
    let port = input.port.unwrap_or(match security {
        Security::None => 25,
        Security::Starttls => 587,
        Security::Tls => 465,
    });
    // The stored password is kept only for the same server, user and protection: otherwise
    // whoever changes the host could have the password sent to a server of their own.
    let same_server = stored.as_ref().is_some_and(|s| {
        s.host == host && s.port == port && s.security == security && s.username == username
    });
    let password = match input.password {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(p),
        None if same_server => stored.and_then(|s| s.password),
        None => None,
    };
    let ca_certificate = input
        .ca_certificate
        .map(|pem| pem.trim().to_owned())
        .filter(|pem| !pem.is_empty());
    let settings = EmailSettings {
        enabled: input.enabled.unwrap_or(true),
        host,
        port,
        security,
        // A password with no user is of no use; one left from before a user was removed goes.
        password: password.filter(|_| username.is_some()),
        username,
        from: input.from.trim().to_owned(),
        ca_certificate,
        language: input.language.unwrap_or_default(),
    };
    settings.check().map_err(settings_error)?;
    settings.save(&state.store).await?;
    let woken = state.store.mails_due_now().await?;
    state.mail_wake.notify_one();
    tracing::info!(
        host = %settings.host,
        port = settings.port,
        enabled = settings.enabled,
        mails_retried = woken,
        "email settings saved"
    );
    state.events.record(
        "notifications.email_changed",
        Some(&caller.label()),
        json!({"host": settings.host, "port": settings.port, "enabled": settings.enabled}),
    );
    Ok(HttpResponse::Ok().json(settings_view(Some(settings))))
}

/// Send a test mail now with the stored settings. A failure answers 502 with what the server
/// said, in words: authentication refused, relay denied, host not found, certificate not
/// trusted, and which setting to look at.
#[utoipa::path(
    post, path = "/v1/notifications/email/test", tag = "notifications",
    request_body = TestMail,
    responses(
        (status = 200, description = "The server took the mail", body = TestMailSent),
        (status = 400, response = error::BadRequest),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 502, response = error::BadGateway),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn test_email(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<TestMail>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let to = parse_mailbox(&input.to).map_err(|reason| ApiError::invalid("to", reason))?;
    let Some(settings) = EmailSettings::load(&state.store).await? else {
        return Err(ApiError::Conflict {
            field: None,
            detail: "email is not set up yet: PUT /v1/notifications/email first".into(),
        });
    };
    let lang = settings.language;
    let subject = lang.pick("Correo de prueba de Pregonero", "Pregonero test mail");
    let text = lang.pick(
        "Si lee esto, Pregonero puede enviar correo con esta configuración.",
        "If you read this, Pregonero can send mail with these settings.",
    );
    let mail = Outgoing {
        to: vec![to.to_string()],
        subject: subject.to_owned(),
        text: format!("{text}\n\n{}:{}\n", settings.host, settings.port),
        html: format!(
            "<!DOCTYPE html><html><body><p>{text}</p><p>{}:{}</p></body></html>",
            settings.host, settings.port
        ),
        message_id: format!("<pregonero.test.{}@pregonero.invalid>", now_ms()),
    };
    let answer = settings.send(&mail).await.map_err(settings_error)?;
    tracing::info!(host = %settings.host, "test mail sent");
    Ok(HttpResponse::Ok().json(TestMailSent {
        to: to.to_string(),
        server_answer: answer,
    }))
}
