//! `/v1/logs`: the daily event log files, read by `reports`, cleared by `admin`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use crate::domain::Module;
use crate::eventlog::is_day;

/// One day that has a log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogDayView {
    /// The day, `YYYY-MM-DD`, in the configured time zone.
    #[schema(example = "2026-12-03")]
    pub day: String,
    /// The file's size in bytes.
    pub size_bytes: u64,
}

/// One day's events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogDayEntries {
    /// The day.
    pub day: String,
    /// The events: `time`, `event`, and when known `actor` and `detail`.
    #[schema(value_type = Vec<Object>, example = json!([{
        "time": "2026-12-03T08:00:01.000-04:00", "event": "auth.login", "actor": "admin",
        "detail": {"peer": "127.0.0.1"}
    }]))]
    pub entries: Vec<Value>,
}

/// The answer to clearing the logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cleared {
    /// How many day files were removed.
    pub removed: usize,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/logs")
            .route(web::get().to(list))
            .route(web::delete().to(clear)),
    )
    .service(super::resource("/v1/logs/{day}").route(web::get().to(day)));
}

/// List the days that have a log.
#[utoipa::path(
    get, path = "/v1/logs", tag = "logs",
    responses(
        (status = 200, description = "The days, newest first", body = Vec<LogDayView>),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let days = state.events.days()?;
    Ok(HttpResponse::Ok().json(
        days.into_iter()
            .map(|d| LogDayView {
                day: d.day,
                size_bytes: d.size_bytes,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Read one day's events.
#[utoipa::path(
    get, path = "/v1/logs/{day}", tag = "logs",
    params(("day" = String, Path, description = "The day, `YYYY-MM-DD`")),
    responses(
        (status = 200, description = "The day's events", body = LogDayEntries),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn day(
    state: web::Data<AppState>,
    caller: Caller,
    day: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let day = day.into_inner();
    if !is_day(&day) {
        return Err(ApiError::invalid(
            "day",
            format!("`{day}` is not a date (YYYY-MM-DD)"),
        ));
    }
    let entries = state
        .events
        .entries(&day)?
        .ok_or(ApiError::NotFound("log day"))?;
    Ok(HttpResponse::Ok().json(LogDayEntries { day, entries }))
}

/// Delete every day's log.
#[utoipa::path(
    delete, path = "/v1/logs", tag = "logs",
    responses(
        (status = 200, description = "Cleared; the clearing itself starts the new log",
            body = Cleared),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn clear(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let removed = state.events.clear()?;
    state.events.record(
        "logs.cleared",
        Some(&caller.label()),
        json!({ "removed": removed }),
    );
    Ok(HttpResponse::Ok().json(Cleared { removed }))
}
