//! `/v1/sending`: whether messages are going out, and starting or stopping them.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use crate::domain::Module;

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
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/sending").route(web::get().to(get)))
        .service(super::resource("/v1/sending/start").route(web::post().to(start)))
        .service(super::resource("/v1/sending/stop").route(web::post().to(stop)));
}

fn view(state: &AppState) -> SendingView {
    let window = state.sending.window();
    let now = Utc::now();
    let open = window.contains(now);
    SendingView {
        started: state.sending.is_started(),
        window: window.to_string(),
        time_zone: state.tz.name().to_owned(),
        window_open: open,
        opens_at: (!open)
            .then(|| super::time::show(window.next_open(now).timestamp_millis(), state.tz)),
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
