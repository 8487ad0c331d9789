//! The HTTP API: shared state, the routes of each resource, errors, and the OpenAPI document.

mod api_keys;
mod auth;
pub mod caller;
mod credit;
pub mod error;
mod events;
mod health;
mod inbox;
pub mod json;
mod loads;
mod logs;
mod mails;
mod messages;
mod modems;
mod notifications;
pub mod openapi;
mod paging;
mod sending;
mod suppressions;
mod templates;
pub mod time;
mod users;
mod webhooks;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono_tz::Tz;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::auth::TokenKeys;
use crate::domain::Region;
use crate::eventlog::EventLog;
use crate::metrics::Metrics;
use crate::store::{MessageWriter, Store};
use error::ApiError;

pub use messages::MAX_BATCH;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The group-commit writer for new messages.
    pub writer: MessageWriter,
    /// Session token keys.
    pub tokens: TokenKeys,
    /// The daily event log.
    pub events: Arc<EventLog>,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// The time zone times are shown in.
    pub tz: Tz,
    /// The region phone numbers default to.
    pub region: Region,
    /// Callers recently authenticated.
    pub callers: caller::CallerCache,
    /// Whether sending is started, and the window.
    pub sending: Arc<crate::dispatch::SendingControl>,
    /// The modems of this node.
    pub fleet: Arc<crate::dispatch::fleet::Fleet>,
    /// Loads from sheets and the ERP.
    pub loads: Arc<crate::loads::Loader>,
    /// The live feed of events.
    pub feed: crate::notify::feed::Feed,
    /// The numbers that get no messages.
    pub suppressions: Arc<crate::optout::SuppressionList>,
    /// Balance checks of the modems' prepaid lines.
    pub credit: Arc<crate::credit::Credit>,
    /// Wakes the mail sender (new settings, a retry asked for).
    pub mail_wake: Arc<tokio::sync::Notify>,
}

/// Mounts every route, Swagger UI and the error handlers for malformed input.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(json::MAX_BODY))
        .app_data(web::QueryConfig::default().error_handler(json::query_error))
        .app_data(web::PathConfig::default().error_handler(json::path_error))
        .configure(auth::configure)
        .configure(messages::configure)
        .configure(users::configure)
        .configure(api_keys::configure)
        .configure(logs::configure)
        .configure(sending::configure)
        .configure(inbox::configure)
        .configure(credit::configure)
        .configure(modems::configure)
        .configure(templates::configure)
        .configure(loads::configure)
        .configure(webhooks::configure)
        .configure(events::configure)
        .configure(suppressions::configure)
        .configure(notifications::configure)
        .configure(mails::configure)
        .configure(health::configure)
        .route("/", web::get().to(root))
        .route("/openapi.json", web::get().to(openapi_json))
        // Swagger UI fetches the document from /openapi.json like any client, so no worker keeps
        // a copy of its own (a few MiB each, and the code that builds it touched at start-up).
        .service(SwaggerUi::new("/swagger-ui/{_:.*}").config(Config::new(["/openapi.json"])));
}

/// `GET /openapi.json`: the OpenAPI document, built on the first request.
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi::cached_json())
}

/// `GET /` sends a person to Swagger UI.
async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/swagger-ui/"))
        .finish()
}

/// A resource whose unsupported methods answer 405 as problem+json.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// The answer for paths no route serves.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    tracing::debug!(path = %req.path(), method = %req.method(), "no route");
    Err(ApiError::NotFound("route"))
}
