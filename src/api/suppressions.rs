//! `/v1/suppressions`: the numbers that get no messages (they texted an opt-out keyword, or an
//! operator put them there), and the keywords themselves.

use actix_web::{HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use super::time::show;
use crate::domain::{Keywords, Module, PhoneNumber};
use crate::store::SuppressionRecord;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// The longest note, in characters.
const MAX_NOTE: usize = 500;

/// A number on the suppression list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    /// The number, in E.164.
    #[schema(example = "+59171234567")]
    pub phone: String,
    /// `sms` (the person texted an opt-out keyword) or `operator` (added through the API).
    pub source: String,
    /// The text the person sent.
    pub keyword: Option<String>,
    /// The received text that carried it.
    pub inbox_id: Option<i64>,
    /// Why an operator added it.
    pub note: Option<String>,
    /// Who added it.
    pub created_by: String,
    /// When.
    pub created_at: String,
}

impl SuppressionView {
    fn new(r: SuppressionRecord, tz: chrono_tz::Tz) -> SuppressionView {
        SuppressionView {
            phone: r.phone,
            source: r.source,
            keyword: r.keyword,
            inbox_id: r.inbox_id,
            note: r.note,
            created_by: r.created_by,
            created_at: show(r.created_at, tz),
        }
    }
}

/// A number to put on the list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    /// The number, national (in the default region) or international with `+`.
    #[schema(example = "71234567")]
    pub phone: String,
    /// Why, for the record (at most 500 characters).
    #[schema(example = "asked by phone on 2026-12-04")]
    pub note: Option<String>,
}

/// What adding a number did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionAdded {
    /// The entry (as it was, when the number was on the list already).
    pub suppression: SuppressionView,
    /// Pending messages to the number that were cancelled.
    pub cancelled: u64,
}

/// A page of the list, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionPage {
    /// The entries.
    pub items: Vec<SuppressionView>,
    /// Pass as `cursor` for the next page; null when this page is not full.
    pub next_cursor: Option<String>,
}

/// Paging of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuppressionQuery {
    /// Page size, 1–1000 (default 100).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The opt-out and opt-in keywords.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeywordsView {
    /// A received text that is one of these (whole, in any case, with or without accents and
    /// punctuation) puts its sender on the list.
    #[schema(example = json!(["BAJA", "STOP", "NO"]))]
    pub opt_out: Vec<String>,
    /// One of these takes a sender that opted out by text off the list again.
    #[schema(example = json!(["ALTA", "START"]))]
    pub opt_in: Vec<String>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/suppressions")
            .route(web::get().to(list))
            .route(web::post().to(add)),
    )
    .service(
        super::resource("/v1/suppressions/keywords")
            .route(web::get().to(get_keywords))
            .route(web::put().to(put_keywords)),
    )
    .service(
        super::resource("/v1/suppressions/{phone}")
            .route(web::get().to(get))
            .route(web::delete().to(remove)),
    );
}

fn phone(raw: &str, state: &AppState, field: &str) -> Result<String, ApiError> {
    PhoneNumber::parse(raw, state.region)
        .map(|p| p.as_str().to_owned())
        .map_err(|e| ApiError::invalid(field, e))
}

/// List the numbers on the suppression list, newest first.
#[utoipa::path(
    get, path = "/v1/suppressions", tag = "suppressions",
    params(SuppressionQuery),
    responses(
        (status = 200, description = "A page of the list", body = SuppressionPage),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SuppressionQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let query = query.into_inner();
    let limit = super::paging::limit(query.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?;
    let after = super::paging::cursor(query.cursor.as_deref(), |c| {
        let (at, phone) = c.split_once('.')?;
        Some((at.parse::<i64>().ok()?, phone.to_owned()))
    })?;
    let items = state.store.list_suppressions(after, limit).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| {
            items
                .last()
                .map(|s| format!("{}.{}", s.created_at, s.phone))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(SuppressionPage {
        items: items
            .into_iter()
            .map(|s| SuppressionView::new(s, state.tz))
            .collect(),
        next_cursor,
    }))
}

/// Put a number on the suppression list: its pending messages are cancelled, and messages to
/// it are refused until an admin takes it off.
#[utoipa::path(
    post, path = "/v1/suppressions", tag = "suppressions",
    request_body = NewSuppression,
    responses(
        (status = 201, description = "Added", body = SuppressionAdded),
        (status = 200, description = "It was on the list already", body = SuppressionAdded),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn add(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<NewSuppression>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let phone = phone(&input.phone, &state, "phone")?;
    let note = input
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE || n.chars().any(char::is_control)) {
        return Err(ApiError::invalid(
            "note",
            format!("at most {MAX_NOTE} printable characters"),
        ));
    }
    let done = state.store.suppress(&phone, note, &caller.label()).await?;
    state.suppressions.insert(&phone);
    if done.created {
        state.events.record(
            "suppression.added",
            Some(&caller.label()),
            json!({"cancelled": done.cancelled}),
        );
    }
    let body = SuppressionAdded {
        suppression: SuppressionView::new(done.record, state.tz),
        cancelled: done.cancelled,
    };
    Ok(if done.created {
        HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/v1/suppressions/{phone}")))
            .json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// One number's entry.
#[utoipa::path(
    get, path = "/v1/suppressions/{phone}", tag = "suppressions",
    params(("phone" = String, Path, description = "The number, in any form")),
    responses(
        (status = 200, description = "The entry", body = SuppressionView),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    raw: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let phone = phone(&raw, &state, "phone")?;
    let entry = state
        .store
        .suppression(&phone)
        .await?
        .ok_or(ApiError::NotFound("suppression"))?;
    Ok(HttpResponse::Ok().json(SuppressionView::new(entry, state.tz)))
}

/// Take a number off the list: messages to it are accepted again (those cancelled stay so).
#[utoipa::path(
    delete, path = "/v1/suppressions/{phone}", tag = "suppressions",
    params(("phone" = String, Path, description = "The number, in any form")),
    responses(
        (status = 204, description = "Taken off"),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    raw: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let phone = phone(&raw, &state, "phone")?;
    if !state.store.unsuppress(&phone).await? {
        return Err(ApiError::NotFound("suppression"));
    }
    state.suppressions.remove(&phone);
    state
        .events
        .record("suppression.removed", Some(&caller.label()), json!({}));
    Ok(HttpResponse::NoContent().finish())
}

/// The opt-out and opt-in keywords.
#[utoipa::path(
    get, path = "/v1/suppressions/keywords", tag = "suppressions",
    responses(
        (status = 200, description = "The keywords", body = KeywordsView),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get_keywords(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let k = state.store.keywords().await?;
    Ok(HttpResponse::Ok().json(KeywordsView {
        opt_out: k.opt_out,
        opt_in: k.opt_in,
    }))
}

/// Replace the opt-out and opt-in keywords.
#[utoipa::path(
    put, path = "/v1/suppressions/keywords", tag = "suppressions",
    request_body = KeywordsView,
    responses(
        (status = 200, description = "The keywords now", body = KeywordsView),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_keywords(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<KeywordsView>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let k = Keywords::parse(input.opt_out, input.opt_in)
        .map_err(|e| ApiError::invalid(e.field, e.reason))?;
    state.store.set_keywords(&k).await?;
    state.events.record(
        "suppression.keywords_changed",
        Some(&caller.label()),
        json!({"opt_out": k.opt_out, "opt_in": k.opt_in}),
    );
    Ok(HttpResponse::Ok().json(KeywordsView {
        opt_out: k.opt_out,
        opt_in: k.opt_in,
    }))
}
