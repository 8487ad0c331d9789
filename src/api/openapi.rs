//! The OpenAPI 3.1 document: every route, its schemas, the bearer scheme and the errors.
//! `openapi/openapi.json` in the repository is this document, checked by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    api_keys, auth, credit, error, events, health, inbox, loads, logs, mails, messages, modems,
    notifications, sending, suppressions, templates, users, webhooks,
};
use crate::domain;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pregonero",
        description = "SMS gateway for GSM modems. Sign in with `POST /v1/auth/login` (or make an \
API key) and send `Authorization: Bearer <token or key>`. Each route names, as its security \
scope, the module the caller needs: `operators`, `reports`, `dashboard` or `admin`. Errors are \
`application/problem+json`; for bad input, `field` names the field at fault.",
    ),
    paths(
        auth::login, auth::me,
        messages::send, messages::send_batch, messages::list, messages::get, messages::cancel,
        users::list, users::create, users::get, users::update, users::delete,
        api_keys::list, api_keys::create, api_keys::get, api_keys::revoke,
        logs::list, logs::day, logs::clear,
        sending::get, sending::put, sending::start, sending::stop,
        credit::get, credit::reset, credit::check, credit::history, credit::get_settings,
        credit::put_settings, credit::get_presets, credit::put_presets,
        inbox::list, inbox::get,
        modems::list, modems::ports, modems::get, modems::get_settings, modems::put_settings,
        modems::default_settings, modems::connect, modems::disconnect, modems::test_sms,
        modems::trace, modems::simulate_inbound, modems::simulate_ussd,
        templates::list, templates::create, templates::get, templates::update, templates::delete,
        templates::render, templates::test,
        loads::excel, loads::erp_load, loads::list, loads::get, loads::delete, loads::report,
        loads::summary, loads::get_source, loads::put_source, loads::test_source,
        loads::get_settings, loads::put_settings,
        webhooks::list, webhooks::create, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::deliveries, webhooks::replay, webhooks::ping,
        events::stream,
        suppressions::list, suppressions::add, suppressions::get, suppressions::remove,
        suppressions::get_keywords, suppressions::put_keywords,
        notifications::get_email, notifications::put_email, notifications::test_email,
        mails::list_rules, mails::create_rule, mails::get_rule, mails::update_rule,
        mails::delete_rule, mails::list_mails, mails::get_mail, mails::retry_mail,
        health::health, health::metrics,
    ),
    components(
        schemas(
            error::Problem, domain::Module, domain::MessageStatus, domain::Encoding,
            domain::Channel,
        ),
        responses(
            error::BadRequest, error::Unauthenticated, error::Forbidden, error::NotFound,
            error::Conflict, error::Invalid, error::Unavailable, error::BadGateway,
        )
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Sessions"),
        (name = "messages", description = "Outbound SMS"),
        (name = "users", description = "People and their modules"),
        (name = "api-keys", description = "Credentials for machines"),
        (name = "logs", description = "The daily event log"),
        (name = "sending", description = "Starting and stopping the sending of messages"),
        (name = "inbox", description = "Received texts and calls"),
        (name = "modems", description = "The GSM modems and their ports"),
        (name = "credit", description = "Prepaid lines: segments sent, balances asked by USSD"),
        (name = "templates", description = "Message texts with <token> fields"),
        (name = "loads", description = "Messages from spreadsheets and the ERP's database"),
        (name = "webhooks", description = "Signed POSTs of events to other systems"),
        (name = "events", description = "The live stream of events (Server-Sent Events)"),
        (name = "suppressions", description = "Numbers that opted out, and the keywords"),
        (name = "notifications", description = "Email: SMTP settings, rules and the mail queue"),
        (name = "service", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from `POST /v1/auth/login`, or an API key (`pgn_…`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served, built once on first use and kept.
pub fn cached_json() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(document_json)
}

/// The document as pretty JSON, as committed in `openapi/openapi.json`.
pub fn document_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut json = doc.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
