//! `/v1/inbox`: texts and calls the modems received, each with the last message sent to that
//! number.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::time::{parse_time_or_date, show, show_opt};
use crate::domain::{Module, PhoneNumber};
use crate::store::{InboxFilter, InboxRecord};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// A received text or call.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItemView {
    /// Identifier.
    pub id: i64,
    /// `sms` or `call`.
    #[schema(example = "sms")]
    pub kind: String,
    /// The modem it came in on.
    pub modem_id: String,
    /// The sender or caller: E.164 for numbers, or the name an alphanumeric sender gave.
    #[schema(example = "+59171234567")]
    pub from: String,
    /// The text; null for a call.
    pub text: Option<String>,
    /// How many parts the text came in.
    pub parts: i64,
    /// False when parts of a long text never came; `[…]` marks where they belong.
    pub complete: bool,
    /// The service centre's time stamp.
    pub network_time: Option<String>,
    /// When the gateway stored it.
    pub received_at: String,
    /// The last message the gateway sent to this number before it came, if any.
    pub last_message: Option<LastMessageView>,
}

/// The message last sent to a number.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastMessageView {
    /// Its id.
    pub id: i64,
    /// Its text.
    pub text: String,
    /// Its state.
    pub status: String,
    /// When it went out.
    pub sent_at: Option<String>,
}

impl InboxItemView {
    fn new(record: InboxRecord, tz: chrono_tz::Tz) -> InboxItemView {
        InboxItemView {
            id: record.id,
            kind: record.kind,
            modem_id: record.modem_id,
            from: record.number,
            text: record.body,
            parts: record.parts,
            complete: record.complete,
            network_time: show_opt(record.network_time, tz),
            received_at: show(record.received_at, tz),
            last_message: record.last_message.map(|m| LastMessageView {
                id: m.id,
                text: m.body,
                status: m.status,
                sent_at: show_opt(m.sent_at, tz),
            }),
        }
    }
}

/// Filters for the inbox.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// `sms` or `call`.
    pub kind: Option<String>,
    /// Only from this number (any form; normalised like a recipient).
    pub number: Option<String>,
    /// Received at or after this time or date.
    pub from: Option<String>,
    /// Received before this time or date.
    pub until: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the inbox, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// The items.
    pub items: Vec<InboxItemView>,
    /// Pass as `cursor` for the next page; null when this page is not full.
    pub next_cursor: Option<String>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/inbox").route(web::get().to(list)))
        .service(super::resource("/v1/inbox/{id}").route(web::get().to(get)));
}

/// List received texts and calls, newest first.
#[utoipa::path(
    get, path = "/v1/inbox", tag = "inbox",
    params(InboxQuery),
    responses(
        (status = 200, description = "A page of the inbox", body = InboxPage),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let filter = filter_from(query.into_inner(), &state)?;
    let items = state.store.list_inbox(&filter).await?;
    let next_cursor = (items.len() as i64 == filter.limit)
        .then(|| items.last().map(|i| format!("{}.{}", i.received_at, i.id)))
        .flatten();
    Ok(HttpResponse::Ok().json(InboxPage {
        items: items
            .into_iter()
            .map(|i| InboxItemView::new(i, state.tz))
            .collect(),
        next_cursor,
    }))
}

fn filter_from(query: InboxQuery, state: &AppState) -> Result<InboxFilter, ApiError> {
    if let Some(kind) = &query.kind
        && kind != "sms"
        && kind != "call"
    {
        return Err(ApiError::invalid("kind", "must be `sms` or `call`"));
    }
    let number = query
        .number
        .map(|n| {
            PhoneNumber::parse(&n, state.region)
                .map(|p| p.as_str().to_owned())
                .map_err(|e| ApiError::invalid("number", e))
        })
        .transpose()?;
    let time = |value: Option<String>, name: &str| {
        value
            .map(|v| {
                parse_time_or_date(&v, state.tz)
                    .ok_or_else(|| ApiError::invalid(name, format!("`{v}` is not a date or time")))
            })
            .transpose()
    };
    let from = time(query.from, "from")?;
    let until = time(query.until, "until")?;
    if let (Some(from), Some(until)) = (from, until)
        && until <= from
    {
        return Err(ApiError::invalid("until", "`until` must be after `from`"));
    }
    let limit = i64::from(super::paging::limit(
        query.limit.as_deref(),
        DEFAULT_PAGE,
        MAX_PAGE,
    )?);
    let after = super::paging::cursor(query.cursor.as_deref(), super::paging::two_numbers)?;
    Ok(InboxFilter {
        kind: query.kind,
        number,
        from,
        until,
        after,
        limit,
    })
}

/// Read one received text or call.
#[utoipa::path(
    get, path = "/v1/inbox/{id}", tag = "inbox",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item", body = InboxItemView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("inbox item"))?;
    let item = state
        .store
        .inbox_item(id)
        .await?
        .ok_or(ApiError::NotFound("inbox item"))?;
    Ok(HttpResponse::Ok().json(InboxItemView::new(item, state.tz)))
}
