//! `/v1/messages`: submit one message or a batch, list, read and cancel.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError, Problem};
use super::json::{JsonBody, from_raw};
use super::time::{current_month, month_of, parse_time, parse_time_or_date, show, show_opt};
use crate::domain::{Channel, Encoding, MessageStatus, MessageText, Module, PhoneNumber};
use crate::store::{Cancel, InsertOutcome, MessageFilter, MessageRecord, NewMessage, now_ms};

/// The most messages one batch may carry.
pub const MAX_BATCH: usize = 10_000;

/// How far in the past a `send_at` may lie and still mean "now" (clocks of ERPs drift).
const PAST_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// How far ahead a message may be scheduled.
const MAX_AHEAD_MS: i64 = 366 * 24 * 60 * 60 * 1000;

const MAX_REF_LEN: usize = 64;
const STATES: &str = "pending, queued, sending, sent, delivered, failed, cancelled";
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// A message to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "to": "71234567",
    "text": "Estimado Juan, su cuota 3 de Bs 250,00 vence el 05/12/2026.",
    "send_at": "2026-12-04T09:00:00-04:00",
    "ref": "cuota-88231-3"
}))]
pub struct SendMessage {
    /// The recipient: national (in the default region) or international with `+`.
    pub to: String,
    /// The text, at most 10 segments.
    pub text: String,
    /// When to send it: RFC 3339, or a local time in the configured zone. Absent means now.
    #[serde(default)]
    pub send_at: Option<String>,
    /// Your reference, 1–64 characters. Sending the same reference again with the same content
    /// returns the stored message instead of sending twice.
    #[serde(default, rename = "ref")]
    pub client_ref: Option<String>,
}

/// A stored message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// Identifier.
    #[schema(example = 48213)]
    pub id: i64,
    /// The client's reference, or one the server made (32 hex digits).
    #[serde(rename = "ref")]
    pub client_ref: String,
    /// Recipient in E.164.
    #[schema(example = "+59171234567")]
    pub to: String,
    /// The text as it will be sent.
    pub text: String,
    /// Where the message is on its way.
    pub status: MessageStatus,
    /// The alphabet it travels in.
    pub encoding: Encoding,
    /// Segments it takes on the air.
    pub segments: i64,
    /// The load it came from.
    pub load_id: Option<String>,
    /// How it entered the gateway.
    pub channel: Channel,
    /// Who submitted it: a username or `key:<name>`.
    pub created_by: String,
    /// When it was stored.
    pub created_at: String,
    /// When it may go out.
    pub scheduled_for: String,
    /// When it last changed.
    pub updated_at: String,
    /// When the network accepted it.
    pub sent_at: Option<String>,
    /// When a status report confirmed it.
    pub delivered_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// How many times a modem tried it.
    pub attempts: i64,
}

impl MessageView {
    fn new(m: MessageRecord, tz: chrono_tz::Tz) -> MessageView {
        MessageView {
            id: m.id,
            client_ref: m.client_ref,
            to: m.to,
            text: m.text,
            status: m.status,
            encoding: m.encoding,
            segments: m.segments,
            load_id: m.load_id,
            channel: m.channel,
            created_by: m.created_by,
            created_at: show(m.created_at, tz),
            scheduled_for: show(m.scheduled_for, tz),
            updated_at: show(m.updated_at, tz),
            sent_at: show_opt(m.sent_at, tz),
            delivered_at: show_opt(m.delivered_at, tz),
            error: m.error,
            attempts: m.attempts,
        }
    }
}

/// Up to 10,000 messages submitted together.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBatch {
    /// The messages; each is checked on its own, and a bad one does not stop the others.
    #[schema(value_type = Vec<SendMessage>)]
    pub messages: Vec<Box<RawValue>>,
}

/// What became of one message of a batch.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    /// Stored now.
    Created,
    /// Its `ref` was stored before with the same content; nothing new was stored.
    Existing,
    /// Not stored; `problem` says why.
    Rejected,
}

/// One message's outcome in a batch answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Position in the request, from 0.
    pub index: usize,
    /// What became of it.
    pub status: ItemStatus,
    /// The message's id, unless rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The message's reference, unless rejected.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<String>,
    /// Segments it takes, unless rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<i64>,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// The answer to a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// Messages stored now or found stored before.
    pub accepted: usize,
    /// Messages not stored.
    pub rejected: usize,
    /// One entry per submitted message, in order.
    pub items: Vec<BatchItem>,
}

/// Filters for listing messages.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only messages in this state.
    pub status: Option<String>,
    /// Only messages to this number (any form; it is normalised like `to`).
    pub phone: Option<String>,
    /// Only messages of this load.
    pub load_id: Option<String>,
    /// Created at or after this time or date (default: the first of the current month).
    pub from: Option<String>,
    /// Created before this time or date (default: the first of next month).
    pub until: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// The messages.
    pub items: Vec<MessageView>,
    /// Pass as `cursor` for the next page; null when this page is not full. A full page always
    /// carries one, so the page after the last may be empty.
    pub next_cursor: Option<String>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/messages")
            .route(web::post().to(send))
            .route(web::get().to(list)),
    )
    .service(super::resource("/v1/messages/batch").route(web::post().to(send_batch)))
    .service(
        super::resource("/v1/messages/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(cancel)),
    );
}

/// A submitted message that passed its checks, except perhaps the one on its time.
struct Checked {
    message: NewMessage,
    /// Set when `send_at` is too far in the past or the future and the client gave a `ref`:
    /// the message is refused unless it is a retry of one already stored, which must still get
    /// its stored answer however late the retry comes.
    late: Option<ApiError>,
}

/// Checks a submitted message and prepares it for storage. Field names are prefixed with
/// `prefix` (`messages[3]` in a batch).
fn check(
    input: SendMessage,
    state: &AppState,
    caller: &Caller,
    channel: Channel,
    prefix: &str,
) -> Result<Checked, ApiError> {
    let field = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };

    let to = PhoneNumber::parse(&input.to, state.region)
        .map_err(|e| ApiError::invalid(field("to"), e))?;
    let suppressed = state.suppressions.contains(to.as_str()).then(|| {
        ApiError::invalid(
            field("to"),
            format!(
                "{} is on the suppression list: it asked for no more messages (see \
                 GET /v1/suppressions/{})",
                to.as_str(),
                to.as_str()
            ),
        )
    });
    let text = MessageText::parse(&state.sending.sign(&input.text))
        .map_err(|e| ApiError::invalid(field("text"), e))?;

    let mut late = None;
    let send_at = match input.send_at.as_deref() {
        None => None,
        Some(raw) => {
            let at = parse_time(raw, state.tz).ok_or_else(|| {
                ApiError::invalid(
                    field("send_at"),
                    format!("`{raw}` is not a time; use RFC 3339, e.g. 2026-12-04T09:00:00-04:00"),
                )
            })?;
            let now = now_ms();
            if at < now - PAST_TOLERANCE_MS {
                late = Some(ApiError::invalid(
                    field("send_at"),
                    format!("{raw} is in the past; leave send_at out to send now"),
                ));
            } else if at > now + MAX_AHEAD_MS {
                late = Some(ApiError::invalid(
                    field("send_at"),
                    format!("{raw} is more than a year ahead"),
                ));
            }
            Some(at)
        }
    };
    // Refused, unless this is the retry of a message stored before: then it gets its answer.
    let late = suppressed.or(late);
    if input.client_ref.is_none()
        && let Some(late) = late
    {
        return Err(late);
    }

    let client_ref = match input.client_ref {
        // A UUIDv7 in hex: 32 digits as promised, and time-ordered, so the index of references
        // grows at its end instead of at random places.
        None => uuid::Uuid::now_v7().simple().to_string(),
        Some(r) => {
            let len = r.chars().count();
            if len == 0 || len > MAX_REF_LEN || r.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    field("ref"),
                    format!("a reference has 1 to {MAX_REF_LEN} printable characters"),
                ));
            }
            if r.starts_with(crate::store::LOAD_REF_PREFIX) {
                return Err(ApiError::invalid(
                    field("ref"),
                    format!(
                        "references starting with `{}` belong to loads",
                        crate::store::LOAD_REF_PREFIX
                    ),
                ));
            }
            r
        }
    };

    let message = NewMessage {
        client_ref,
        to: to.as_str().to_owned(),
        text: text.as_str().to_owned(),
        encoding: text.encoding(),
        segments: text.segments() as i64,
        load_id: None,
        channel,
        created_by: caller.label(),
        send_at,
    };
    Ok(Checked { message, late })
}

/// For a message refused for its time: the stored message when this is a retry of it.
async fn stored_retry(
    state: &AppState,
    message: &NewMessage,
) -> Result<Option<MessageRecord>, ApiError> {
    let stored = state.store.message_by_ref(&message.client_ref).await?;
    Ok(stored.filter(|m| message.same_content_as(m)))
}

/// The answer when a stored reference could not be read back to compare.
fn unresolved() -> ApiError {
    ApiError::Unavailable(crate::store::StoreError::GroupFailed(
        "the reference is stored but could not be read back; retry with the same ref".into(),
    ))
}

/// A message id from the path; anything but a number names no message.
fn message_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("message"))
}

fn conflict_detail(stored: &MessageRecord) -> String {
    format!(
        "ref `{}` was already used for a different message ({}); use a new ref",
        stored.client_ref, stored.id
    )
}

/// Submit one message.
#[utoipa::path(
    post, path = "/v1/messages", tag = "messages",
    request_body = SendMessage,
    responses(
        (status = 201, description = "Stored; it goes out at its time, in the sending window",
            body = MessageView),
        (status = 200, description = "The `ref` was seen before with the same content: the stored \
            message", body = MessageView),
        (status = 400, response = error::BadRequest),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
        (status = 503, response = error::Unavailable),
    ),
    security(("bearer" = ["operators"]))
)]
#[tracing::instrument(skip_all, fields(caller = %caller.label()))]
pub async fn send(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let checked = check(body.0, &state, &caller, Channel::Api, "")?;
    if let Some(late) = checked.late {
        return match stored_retry(&state, &checked.message).await? {
            Some(m) => Ok(HttpResponse::Ok().json(MessageView::new(m, state.tz))),
            None => Err(late),
        };
    }

    let outcome = state.writer.insert(vec![checked.message]).await?.pop();
    match outcome {
        Some(InsertOutcome::Created(m)) => {
            tracing::debug!(message.id = %m.id, segments = m.segments, "message accepted");
            Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, format!("/v1/messages/{}", m.id)))
                .json(MessageView::new(m, state.tz)))
        }
        Some(InsertOutcome::Existing(m)) => {
            Ok(HttpResponse::Ok().json(MessageView::new(m, state.tz)))
        }
        Some(InsertOutcome::Conflict(m)) => Err(ApiError::Conflict {
            field: Some("ref".into()),
            detail: conflict_detail(&m),
        }),
        Some(InsertOutcome::Unresolved) => Err(unresolved()),
        None => Err(ApiError::Internal(anyhow::anyhow!(
            "the writer answered nothing"
        ))),
    }
}

/// Submit up to 10,000 messages at once.
#[utoipa::path(
    post, path = "/v1/messages/batch", tag = "messages",
    request_body = SendBatch,
    responses(
        (status = 200, description = "Every message checked; the accepted ones are stored together",
            body = BatchResult),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
        (status = 503, response = error::Unavailable),
    ),
    security(("bearer" = ["operators"]))
)]
#[tracing::instrument(
    skip_all,
    fields(caller = %caller.label(), batch.size = body.0.messages.len())
)]
pub async fn send_batch(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<SendBatch>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let items = body.0.messages;
    if items.is_empty() {
        return Err(ApiError::invalid("messages", "the batch has no messages"));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "messages",
            format!(
                "the batch has {} messages; at most {MAX_BATCH} are allowed",
                items.len()
            ),
        ));
    }

    // Check every item; keep the position of each valid one to put the answers back in order.
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    for (index, value) in items.into_iter().enumerate() {
        let prefix = format!("messages[{index}]");
        let checked = from_raw::<SendMessage>(&value, &prefix)
            .and_then(|input| check(input, &state, &caller, Channel::Batch, &prefix));
        match checked {
            Ok(Checked {
                message,
                late: None,
            }) => {
                valid.push(message);
                positions.push(index);
                results.push(None);
            }
            Ok(Checked {
                message,
                late: Some(late),
            }) => results.push(Some(match stored_retry(&state, &message).await? {
                Some(m) => accepted(index, ItemStatus::Existing, m),
                None => rejected(index, &late),
            })),
            Err(err) => results.push(Some(rejected(index, &err))),
        }
    }

    let outcomes = if valid.is_empty() {
        Vec::new()
    } else {
        state.writer.insert(valid).await?
    };
    for (index, outcome) in positions.into_iter().zip(outcomes) {
        results[index] = Some(match outcome {
            InsertOutcome::Created(m) => accepted(index, ItemStatus::Created, m),
            InsertOutcome::Existing(m) => accepted(index, ItemStatus::Existing, m),
            InsertOutcome::Conflict(m) => rejected(
                index,
                &ApiError::Conflict {
                    field: Some(format!("messages[{index}].ref")),
                    detail: conflict_detail(&m),
                },
            ),
            InsertOutcome::Unresolved => rejected(index, &unresolved()),
        });
    }

    let items: Vec<BatchItem> = results.into_iter().flatten().collect();
    let rejected_count = items
        .iter()
        .filter(|i| matches!(i.status, ItemStatus::Rejected))
        .count();
    tracing::info!(
        accepted = items.len() - rejected_count,
        rejected = rejected_count,
        "batch stored"
    );
    Ok(HttpResponse::Ok().json(BatchResult {
        accepted: items.len() - rejected_count,
        rejected: rejected_count,
        items,
    }))
}

fn accepted(index: usize, status: ItemStatus, m: MessageRecord) -> BatchItem {
    BatchItem {
        index,
        status,
        id: Some(m.id),
        client_ref: Some(m.client_ref),
        segments: Some(m.segments),
        problem: None,
    }
}

fn rejected(index: usize, err: &ApiError) -> BatchItem {
    BatchItem {
        index,
        status: ItemStatus::Rejected,
        id: None,
        client_ref: None,
        segments: None,
        problem: Some(err.problem()),
    }
}

/// List messages, newest first.
#[utoipa::path(
    get, path = "/v1/messages", tag = "messages",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let filter = filter_from(query.into_inner(), &state)?;
    let limit = filter.limit;

    let messages = state.store.list_messages(&filter).await?;
    let next_cursor = (messages.len() as i64 == limit)
        .then(|| {
            messages
                .last()
                .map(|m| format!("{}.{}", m.created_at, m.id))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(MessagePage {
        items: messages
            .into_iter()
            .map(|m| MessageView::new(m, state.tz))
            .collect(),
        next_cursor,
    }))
}

fn filter_from(query: ListQuery, state: &AppState) -> Result<MessageFilter, ApiError> {
    let status = query
        .status
        .map(|s| {
            MessageStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    format!("`{s}` is not a state; use one of {}", STATES),
                )
            })
        })
        .transpose()?;
    let to = query
        .phone
        .map(|p| PhoneNumber::parse(&p, state.region).map_err(|e| ApiError::invalid("phone", e)))
        .transpose()?
        .map(|p| p.as_str().to_owned());

    let (month_start, month_end) = current_month(state.tz);
    let time = |value: Option<String>, name: &str, default: i64| match value {
        None => Ok(default),
        Some(v) => parse_time_or_date(&v, state.tz)
            .ok_or_else(|| ApiError::invalid(name, format!("`{v}` is not a date or time"))),
    };
    let until = time(query.until, "until", month_end)?;
    // Without `from`, the list starts at the first of the month `until` falls in.
    let from_default = if until == month_end {
        month_start
    } else {
        month_of(until - 1, state.tz).0
    };
    let from = time(query.from, "from", from_default)?;
    if until <= from {
        return Err(ApiError::invalid("until", "`until` must be after `from`"));
    }

    let limit = i64::from(super::paging::limit(
        query.limit.as_deref(),
        DEFAULT_PAGE,
        MAX_PAGE,
    )?);
    let after = super::paging::cursor(query.cursor.as_deref(), super::paging::two_numbers)?;

    if let Some(load_id) = &query.load_id
        && (load_id.is_empty() || load_id.len() > 64 || load_id.chars().any(char::is_control))
    {
        return Err(ApiError::invalid("load_id", "not a load id"));
    }

    Ok(MessageFilter {
        status,
        to,
        load_id: query.load_id,
        from,
        until,
        after,
        limit,
    })
}

/// Read one message.
#[utoipa::path(
    get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = MessageView),
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
    let message = state
        .store
        .message(message_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    Ok(HttpResponse::Ok().json(MessageView::new(message, state.tz)))
}

/// Cancel a message that has not been handed to a modem.
#[utoipa::path(
    delete, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Cancelled (or it already was)", body = MessageView),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
#[tracing::instrument(skip_all, fields(message.id = %id))]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    match state.store.cancel_message(message_id(&id)?).await? {
        Cancel::Cancelled(m) => Ok(HttpResponse::Ok().json(MessageView::new(m, state.tz))),
        Cancel::TooLate(m) => Err(ApiError::Conflict {
            field: None,
            detail: format!(
                "the message is already {}; it can no longer be cancelled",
                m.status.as_str()
            ),
        }),
        Cancel::NotFound => Err(ApiError::NotFound("message")),
    }
}
