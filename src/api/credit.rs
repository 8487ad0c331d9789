//! `/v1/credit`: the segment counter of each modem, for prepaid lines, and its reset.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use super::time::show;
use crate::domain::Module;

/// One modem's counter.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditView {
    /// The modem.
    pub modem_id: String,
    /// Segments the network accepted since `since` (test messages included).
    pub segments_sent: i64,
    /// When the counter was last reset; null when it never counted anything.
    pub since: Option<String>,
}

/// Which counter to reset.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditReset {
    /// The modem whose counter to reset; absent resets every modem's.
    pub modem_id: Option<String>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/credit").route(web::get().to(get)))
        .service(super::resource("/v1/credit/reset").route(web::post().to(reset)));
}

async fn counters(state: &AppState) -> Result<Vec<CreditView>, ApiError> {
    let counters = state.store.segment_counters(&state.fleet.ids()).await?;
    Ok(counters
        .into_iter()
        .map(|c| CreditView {
            modem_id: c.modem_id,
            segments_sent: c.segments,
            since: (c.since > 0).then(|| show(c.since, state.tz)),
        })
        .collect())
}

/// Segments sent by each modem since its counter was reset.
#[utoipa::path(
    get, path = "/v1/credit", tag = "credit",
    responses(
        (status = 200, description = "The counters", body = [CreditView]),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    Ok(HttpResponse::Ok().json(counters(&state).await?))
}

/// Reset the segment counter of one modem, or of all (after a recharge).
#[utoipa::path(
    post, path = "/v1/credit/reset", tag = "credit",
    request_body = CreditReset,
    responses(
        (status = 200, description = "The counters after the reset", body = [CreditView]),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn reset(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreditReset>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let ids = state.fleet.ids();
    let chosen = match body.modem_id {
        Some(id) if ids.contains(&id) => vec![id],
        Some(id) => {
            return Err(ApiError::invalid(
                "modem_id",
                format!("no modem has the id `{id}`"),
            ));
        }
        None => ids,
    };
    for id in &chosen {
        state.store.reset_segments(id).await?;
    }
    state.events.record(
        "credit.reset",
        Some(&caller.label()),
        json!({"modems": chosen}),
    );
    Ok(HttpResponse::Ok().json(counters(&state).await?))
}
