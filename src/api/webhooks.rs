//! `/v1/webhooks`: receivers of signed event POSTs, their deliveries, replays and pings.

use actix_web::{HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use crate::domain::Module;
use crate::store::{DeliveryRecord, WebhookRecord};

use crate::notify::EVENT_TYPES;

/// Deliveries a listing shows.
const DELIVERY_PAGE: u32 = 100;

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookInput {
    /// Where events are posted: `http://` or `https://`.
    #[schema(example = "https://erp.example.org/pregonero/events")]
    pub url: String,
    /// The event types it wants, or `["*"]` for all.
    #[schema(example = json!(["sms.received", "message.failed"]))]
    pub events: Vec<String>,
    /// The key of the signatures, 16 to 200 characters; one is made when absent.
    pub secret: Option<String>,
    /// Whether it gets events (default true).
    pub enabled: Option<bool>,
}

/// Changes to a webhook; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// A new secret.
    pub secret: Option<String>,
    /// On or off.
    pub enabled: Option<bool>,
}

/// A webhook. The secret is shown once, when the webhook is made.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Identifier.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The event types it wants.
    pub events: Vec<String>,
    /// Whether it gets events.
    pub enabled: bool,
    /// The signing secret: only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// Its number, from 1.
    pub attempt: i64,
    /// When it was made.
    pub at: String,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i64>,
    /// What went wrong.
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub excerpt: Option<String>,
    /// How long it took, in ms.
    pub duration_ms: i64,
}

/// A delivery of an event to the webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Identifier.
    pub id: i64,
    /// The event's id (also in the `Pregonero-Event-Id` header).
    pub event_id: String,
    /// The event's type.
    pub event: String,
    /// `pending`, `delivered` or `dead` (given up after a day of failures).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When the receiver took it.
    pub delivered_at: Option<String>,
    /// Each attempt, oldest first.
    pub tries: Vec<AttemptView>,
}

/// A ping on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingSent {
    /// The ping event's id.
    pub event_id: String,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/webhooks")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        super::resource("/v1/webhooks/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    )
    .service(super::resource("/v1/webhooks/{id}/deliveries").route(web::get().to(deliveries)))
    .service(
        super::resource("/v1/webhooks/{id}/deliveries/{delivery}/replay")
            .route(web::post().to(replay)),
    )
    .service(super::resource("/v1/webhooks/{id}/ping").route(web::post().to(ping)));
}

fn view(record: WebhookRecord, state: &AppState, secret: bool) -> WebhookView {
    WebhookView {
        id: record.id,
        url: record.url,
        events: record.events,
        enabled: record.enabled,
        secret: secret.then_some(record.secret),
        created_by: record.created_by,
        created_at: super::time::show(record.created_at, state.tz),
        updated_at: super::time::show(record.updated_at, state.tz),
    }
}

fn check_url(url: &str) -> Result<String, ApiError> {
    let url = url.trim();
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 2_000
        && !url.chars().any(char::is_whitespace)
        && reqwest::Url::parse(url).is_ok_and(|u| u.host_str().is_some());
    if !ok {
        return Err(ApiError::invalid(
            "url",
            "an http:// or https:// URL with a host, e.g. https://erp.example.org/events",
        ));
    }
    Ok(url.to_owned())
}

/// Checks a list of event types (or `*`), naming the entry at fault; sorted, each once.
pub(super) fn check_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "name at least one event type, or \"*\"",
        ));
    }
    for (i, e) in events.iter().enumerate() {
        if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::invalid(
                format!("events[{i}]"),
                format!(
                    "`{e}` is not an event type; use * or {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    Ok(events)
}

fn check_secret(secret: &str) -> Result<String, ApiError> {
    let n = secret.chars().count();
    if !(16..=200).contains(&n) || secret.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "secret",
            "16 to 200 printable characters",
        ));
    }
    Ok(secret.to_owned())
}

async fn found(state: &AppState, id: &str) -> Result<WebhookRecord, ApiError> {
    state
        .store
        .webhook(id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
}

/// Every webhook; secrets are not shown.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The webhooks", body = [WebhookView]),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let hooks: Vec<WebhookView> = state
        .store
        .webhooks()
        .await?
        .into_iter()
        .map(|h| view(h, &state, false))
        .collect();
    Ok(HttpResponse::Ok().json(hooks))
}

/// Add a webhook. The answer carries its secret, this once.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = NewWebhookInput,
    responses(
        (status = 201, description = "Made", body = WebhookView),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<NewWebhookInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let url = check_url(&input.url)?;
    let events = check_events(&input.events)?;
    let secret = match input.secret.as_deref() {
        Some(s) => check_secret(s)?,
        None => crate::auth::random_hex(32),
    };
    let record = state
        .store
        .create_webhook(
            &url,
            &events,
            &secret,
            input.enabled.unwrap_or(true),
            &caller.label(),
        )
        .await?;
    state.events.record(
        "webhook.created",
        Some(&caller.label()),
        json!({"webhook_id": record.id, "url": record.url}),
    );
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/webhooks/{}", record.id)))
        .json(view(record, &state, true)))
}

/// One webhook.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    Ok(HttpResponse::Ok().json(view(found(&state, &id).await?, &state, false)))
}

/// Change a webhook.
#[utoipa::path(
    put, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    request_body = WebhookChange,
    responses(
        (status = 200, description = "Changed", body = WebhookView),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(input): JsonBody<WebhookChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let mut record = found(&state, &id).await?;
    if let Some(url) = &input.url {
        record.url = check_url(url)?;
    }
    if let Some(events) = &input.events {
        record.events = check_events(events)?;
    }
    if let Some(secret) = &input.secret {
        record.secret = check_secret(secret)?;
    }
    if let Some(enabled) = input.enabled {
        record.enabled = enabled;
    }
    if !state.store.update_webhook(&record).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    let record = found(&state, &id).await?;
    Ok(HttpResponse::Ok().json(view(record, &state, false)))
}

/// Remove a webhook and its deliveries.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    if !state.store.delete_webhook(&id).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    Ok(HttpResponse::NoContent().finish())
}

fn delivery_view(d: DeliveryRecord, state: &AppState) -> DeliveryView {
    let tz = state.tz;
    DeliveryView {
        id: d.id,
        event_id: d.event_id,
        event: d.event_kind,
        next_attempt_at: (d.status == "pending").then(|| super::time::show(d.next_at, tz)),
        status: d.status,
        attempts: d.attempts,
        created_at: super::time::show(d.created_at, tz),
        delivered_at: super::time::show_opt(d.delivered_at, tz),
        tries: d
            .tries
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                at: super::time::show(a.at, tz),
                status_code: a.status_code,
                error: a.error,
                excerpt: a.excerpt,
                duration_ms: a.duration_ms,
            })
            .collect(),
    }
}

/// The webhook's latest 100 deliveries, newest first, each with its attempts.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The deliveries", body = [DeliveryView]),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    found(&state, &id).await?;
    let list: Vec<DeliveryView> = state
        .store
        .deliveries(&id, DELIVERY_PAGE)
        .await?
        .into_iter()
        .map(|d| delivery_view(d, &state))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Send a delivery again now, whatever became of it.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{delivery}/replay", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
        ("delivery" = i64, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 202, description = "Due again"),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn replay(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let (id, delivery) = path.into_inner();
    let delivery: i64 = delivery
        .parse()
        .map_err(|_| ApiError::NotFound("delivery"))?;
    if !state.store.replay_delivery(&id, delivery).await? {
        if state.store.has_delivery(&id, delivery).await? {
            return Err(ApiError::Conflict {
                field: None,
                detail: "the delivery is being posted right now; replay it once it ends".into(),
            });
        }
        return Err(ApiError::NotFound("delivery"));
    }
    Ok(HttpResponse::Accepted().json(json!({"id": delivery, "status": "pending"})))
}

/// Send the webhook a `webhook.ping` event, to try the receiver and its signature check.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/ping", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 202, description = "On its way", body = PingSent),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn ping(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    found(&state, &id).await?;
    let event_id = state.store.ping_webhook(&id).await?;
    Ok(HttpResponse::Accepted().json(PingSent { event_id }))
}
