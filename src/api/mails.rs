//! `/v1/notifications/rules` and `/v1/notifications/mails`: the rules that send events of some
//! types to some addresses, and the queue of mails they made, with what became of each.

use actix_web::{HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use super::time::{show, show_opt};
use super::webhooks::check_events;
use crate::domain::Module;
use crate::notify::email::parse_mailbox;
use crate::store::{MailRecord, MailRuleRecord};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// Addresses a rule may hold at most.
const MAX_RECIPIENTS: usize = 20;

/// A rule: events of these types are mailed to these addresses.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    /// Identifier.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The event types, or `["*"]`.
    pub events: Vec<String>,
    /// The addresses.
    pub recipients: Vec<String>,
    /// Whether it is in force.
    pub enabled: bool,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// A new rule, or a rule's new fields (a change keeps what it leaves out).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// A name for people.
    #[schema(example = "Respuestas de clientes")]
    pub name: Option<String>,
    /// The event types, or `["*"]`.
    #[schema(example = json!(["sms.received", "call.received"]))]
    pub events: Option<Vec<String>>,
    /// The addresses (1 to 20).
    #[schema(example = json!(["cobranzas@coop.bo"]))]
    pub recipients: Option<Vec<String>>,
    /// Whether it is in force (default true).
    pub enabled: Option<bool>,
}

/// A queued mail.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailView {
    /// Identifier.
    pub id: i64,
    /// The type of the event it tells of.
    pub event: String,
    /// The rule that made it.
    pub rule_id: Option<String>,
    /// The addresses.
    pub recipients: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// `pending`, `sent` or `failed` (given up after a day of failures).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
    /// When it was queued.
    pub created_at: String,
    /// When the server took it.
    pub sent_at: Option<String>,
    /// What went wrong last, in words.
    pub last_error: Option<String>,
}

/// A page of mails, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailPage {
    /// The mails.
    pub items: Vec<MailView>,
    /// Pass as `cursor` for the next page; null when this page is not full.
    pub next_cursor: Option<String>,
}

/// Filters for the mails.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/notifications/rules")
            .route(web::get().to(list_rules))
            .route(web::post().to(create_rule)),
    )
    .service(
        super::resource("/v1/notifications/rules/{id}")
            .route(web::get().to(get_rule))
            .route(web::put().to(update_rule))
            .route(web::delete().to(delete_rule)),
    )
    .service(super::resource("/v1/notifications/mails").route(web::get().to(list_mails)))
    .service(super::resource("/v1/notifications/mails/{id}").route(web::get().to(get_mail)))
    .service(
        super::resource("/v1/notifications/mails/{id}/retry").route(web::post().to(retry_mail)),
    );
}

fn rule_view(rule: MailRuleRecord, state: &AppState) -> RuleView {
    RuleView {
        id: rule.id,
        name: rule.name,
        events: rule.events,
        recipients: rule.recipients,
        enabled: rule.enabled,
        created_by: rule.created_by,
        created_at: show(rule.created_at, state.tz),
        updated_at: show(rule.updated_at, state.tz),
    }
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "1 to 100 printable characters"));
    }
    Ok(name.to_owned())
}

fn check_recipients(list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.is_empty() || list.len() > MAX_RECIPIENTS {
        return Err(ApiError::invalid(
            "recipients",
            format!("1 to {MAX_RECIPIENTS} addresses"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            parse_mailbox(a)
                .map(|m| m.to_string())
                .map_err(|reason| ApiError::invalid(format!("recipients[{i}]"), reason))
        })
        .collect()
}

async fn found_rule(state: &AppState, id: &str) -> Result<MailRuleRecord, ApiError> {
    state
        .store
        .mail_rule(id)
        .await?
        .ok_or(ApiError::NotFound("mail rule"))
}

/// Every mail rule.
#[utoipa::path(
    get, path = "/v1/notifications/rules", tag = "notifications",
    responses(
        (status = 200, description = "The rules", body = [RuleView]),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn list_rules(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let rules: Vec<RuleView> = state
        .store
        .mail_rules()
        .await?
        .into_iter()
        .map(|r| rule_view(r, &state))
        .collect();
    Ok(HttpResponse::Ok().json(rules))
}

/// Add a rule: from now on, events of its types are mailed to its addresses.
#[utoipa::path(
    post, path = "/v1/notifications/rules", tag = "notifications",
    request_body = RuleInput,
    responses(
        (status = 201, description = "Made", body = RuleView),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_rule(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<RuleInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let name = check_name(input.name.as_deref().unwrap_or_default())?;
    let events = check_events(&input.events.unwrap_or_default())?;
    let recipients = check_recipients(&input.recipients.unwrap_or_default())?;
    let rule = state
        .store
        .create_mail_rule(
            &name,
            &events,
            &recipients,
            input.enabled.unwrap_or(true),
            &caller.label(),
        )
        .await?;
    state.events.record(
        "mail_rule.created",
        Some(&caller.label()),
        json!({"rule_id": rule.id, "events": rule.events}),
    );
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/notifications/rules/{}", rule.id),
        ))
        .json(rule_view(rule, &state)))
}

/// One rule.
#[utoipa::path(
    get, path = "/v1/notifications/rules/{id}", tag = "notifications",
    params(("id" = String, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule", body = RuleView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn get_rule(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let rule = found_rule(&state, &id).await?;
    Ok(HttpResponse::Ok().json(rule_view(rule, &state)))
}

/// Change a rule; fields left out keep their value.
#[utoipa::path(
    put, path = "/v1/notifications/rules/{id}", tag = "notifications",
    params(("id" = String, Path, description = "The rule's id")),
    request_body = RuleInput,
    responses(
        (status = 200, description = "The rule now", body = RuleView),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn update_rule(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(input): JsonBody<RuleInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let mut rule = found_rule(&state, &id).await?;
    if let Some(name) = &input.name {
        rule.name = check_name(name)?;
    }
    if let Some(events) = &input.events {
        rule.events = check_events(events)?;
    }
    if let Some(recipients) = &input.recipients {
        rule.recipients = check_recipients(recipients)?;
    }
    if let Some(enabled) = input.enabled {
        rule.enabled = enabled;
    }
    if !state.store.update_mail_rule(&rule).await? {
        return Err(ApiError::NotFound("mail rule"));
    }
    let rule = found_rule(&state, &id).await?;
    state.events.record(
        "mail_rule.changed",
        Some(&caller.label()),
        json!({"rule_id": rule.id}),
    );
    Ok(HttpResponse::Ok().json(rule_view(rule, &state)))
}

/// Delete a rule; mails it already queued still go.
#[utoipa::path(
    delete, path = "/v1/notifications/rules/{id}", tag = "notifications",
    params(("id" = String, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn delete_rule(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    if !state.store.delete_mail_rule(&id).await? {
        return Err(ApiError::NotFound("mail rule"));
    }
    state.events.record(
        "mail_rule.deleted",
        Some(&caller.label()),
        json!({"rule_id": id.as_str()}),
    );
    Ok(HttpResponse::NoContent().finish())
}

fn mail_view(mail: MailRecord, state: &AppState) -> MailView {
    MailView {
        id: mail.id,
        event: mail.kind,
        rule_id: mail.rule_id,
        recipients: mail.recipients,
        subject: mail.subject,
        text: mail.text,
        next_attempt_at: (mail.status == "pending").then(|| show(mail.next_at, state.tz)),
        status: mail.status,
        attempts: mail.attempts,
        created_at: show(mail.created_at, state.tz),
        sent_at: show_opt(mail.sent_at, state.tz),
        last_error: mail.last_error,
    }
}

/// The queued mails, newest first.
#[utoipa::path(
    get, path = "/v1/notifications/mails", tag = "notifications",
    params(MailQuery),
    responses(
        (status = 200, description = "A page of mails", body = MailPage),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn list_mails(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<MailQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let query = query.into_inner();
    if let Some(status) = &query.status
        && !["pending", "sent", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            "must be `pending`, `sent` or `failed`",
        ));
    }
    let limit = super::paging::limit(query.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?;
    let after = super::paging::cursor(query.cursor.as_deref(), |c| c.parse::<i64>().ok())?;
    let mails = state
        .store
        .list_mails(query.status.as_deref(), after, limit)
        .await?;
    let next_cursor = (mails.len() == limit as usize)
        .then(|| mails.last().map(|m| m.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(MailPage {
        items: mails.into_iter().map(|m| mail_view(m, &state)).collect(),
        next_cursor,
    }))
}

async fn found_mail(state: &AppState, raw: &str) -> Result<MailRecord, ApiError> {
    let id: i64 = raw.parse().map_err(|_| ApiError::NotFound("mail"))?;
    state
        .store
        .mail(id)
        .await?
        .ok_or(ApiError::NotFound("mail"))
}

/// One mail.
#[utoipa::path(
    get, path = "/v1/notifications/mails/{id}", tag = "notifications",
    params(("id" = i64, Path, description = "The mail's id")),
    responses(
        (status = 200, description = "The mail", body = MailView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn get_mail(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let mail = found_mail(&state, &id).await?;
    Ok(HttpResponse::Ok().json(mail_view(mail, &state)))
}

/// Try a mail that failed (or waits for a retry) again now, with a new day of retries.
#[utoipa::path(
    post, path = "/v1/notifications/mails/{id}/retry", tag = "notifications",
    params(("id" = i64, Path, description = "The mail's id")),
    responses(
        (status = 202, description = "Due again", body = MailView),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn retry_mail(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let mail = found_mail(&state, &id).await?;
    if !state.store.retry_mail(mail.id).await? {
        let detail = if mail.status == "sent" {
            "the mail was sent already"
        } else {
            "the mail is being sent right now"
        };
        return Err(ApiError::Conflict {
            field: None,
            detail: detail.into(),
        });
    }
    state.mail_wake.notify_one();
    let mail = found_mail(&state, &id).await?;
    Ok(HttpResponse::Accepted().json(mail_view(mail, &state)))
}
