//! `/v1/sending`: whether messages are going out, starting or stopping them, and the settings
//! every modem follows (window, time zone, auto-start, signature).

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use crate::dispatch::SendingSettings;
use crate::domain::{Module, SendingWindow};

/// The longest signature, in characters.
const MAX_SIGNATURE: usize = 40;

/// New sending settings; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendingChange {
    /// `HH:MM-HH:MM`; may cross midnight.
    #[schema(example = "08:00-20:00")]
    pub window: Option<String>,
    /// IANA time zone of the window.
    #[schema(example = "America/La_Paz")]
    pub time_zone: Option<String>,
    /// Whether sending starts by itself once a modem is ready (also after a restart).
    pub auto_start: Option<bool>,
    /// Added after a space to the end of every message submitted from now on, before its
    /// segments are counted; at most 40 characters; empty for none.
    #[schema(example = "Cooperativa San Martín")]
    pub signature: Option<String>,
}

/// The state of sending.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendingView {
    /// Whether sending is started.
    pub started: bool,
    /// The hours when messages may go out, `HH:MM-HH:MM` in `time_zone`.
    #[schema(example = "08:00-20:00")]
    pub window: String,
    /// The time zone of the window.
    #[schema(example = "America/La_Paz")]
    pub time_zone: String,
    /// Whether the window is open now.
    pub window_open: bool,
    /// When the window next opens, if it is closed now.
    pub opens_at: Option<String>,
    /// Whether sending starts by itself once a modem is ready.
    pub auto_start: bool,
    /// Added to the end of every message; empty for none.
    pub signature: String,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/sending")
            .route(web::get().to(get))
            .route(web::put().to(put)),
    )
    .service(super::resource("/v1/sending/start").route(web::post().to(start)))
    .service(super::resource("/v1/sending/stop").route(web::post().to(stop)));
}

fn view(state: &AppState) -> SendingView {
    let settings = state.sending.settings();
    let window = settings.window;
    let now = Utc::now();
    let open = window.contains(now);
    SendingView {
        started: state.sending.is_started(),
        window: window.to_string(),
        time_zone: window.tz().name().to_owned(),
        window_open: open,
        opens_at: (!open)
            .then(|| super::time::show(window.next_open(now).timestamp_millis(), window.tz())),
        auto_start: settings.auto_start,
        signature: settings.signature,
    }
}

/// Whether messages are going out.
#[utoipa::path(
    get, path = "/v1/sending", tag = "sending",
    responses(
        (status = 200, description = "The state of sending", body = SendingView),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    Ok(HttpResponse::Ok().json(view(&state)))
}

/// Start sending: due messages go out while the window is open.
#[utoipa::path(
    post, path = "/v1/sending/start", tag = "sending",
    responses(
        (status = 200, description = "Started", body = SendingView),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn start(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    state.sending.set_started(true);
    state
        .events
        .record("sending.started", Some(&caller.label()), json!({}));
    Ok(HttpResponse::Ok().json(view(&state)))
}

/// Stop sending: the segment on the air finishes; nothing new starts.
#[utoipa::path(
    post, path = "/v1/sending/stop", tag = "sending",
    responses(
        (status = 200, description = "Stopped", body = SendingView),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn stop(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    state.sending.set_started(false);
    state
        .events
        .record("sending.stopped", Some(&caller.label()), json!({}));
    Ok(HttpResponse::Ok().json(view(&state)))
}

/// Change the window, its time zone, auto-start or the signature. Kept in the database; every
/// modem follows them at once.
#[utoipa::path(
    put, path = "/v1/sending", tag = "sending",
    request_body = SendingChange,
    responses(
        (status = 200, description = "The settings in use", body = SendingView),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(change): JsonBody<SendingChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let mut settings = state.sending.settings();
    let tz = match &change.time_zone {
        Some(zone) => zone.parse().map_err(|_| {
            ApiError::invalid("time_zone", format!("`{zone}` is not an IANA time zone"))
        })?,
        None => settings.window.tz(),
    };
    let range = change
        .window
        .clone()
        .unwrap_or_else(|| settings.window.to_string());
    settings.window =
        SendingWindow::parse_range(&range, tz).map_err(|e| ApiError::invalid("window", e))?;
    if let Some(auto_start) = change.auto_start {
        settings.auto_start = auto_start;
    }
    if let Some(signature) = change.signature {
        let signature = signature.trim().to_owned();
        if signature.chars().count() > MAX_SIGNATURE || signature.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "signature",
                format!("at most {MAX_SIGNATURE} characters, without line breaks"),
            ));
        }
        settings.signature = signature;
    }
    state
        .store
        .set_setting(SendingSettings::KEY, &settings.to_json())
        .await?;
    state.sending.configure(settings.clone());
    state.events.record(
        "sending.settings_changed",
        Some(&caller.label()),
        json!({
            "window": settings.window.to_string(),
            "time_zone": settings.window.tz().name(),
            "auto_start": settings.auto_start,
            "signature": settings.signature,
        }),
    );
    Ok(HttpResponse::Ok().json(view(&state)))
}
