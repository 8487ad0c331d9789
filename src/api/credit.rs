//! `/v1/credit` and `/v1/modems/{id}/balance`: the credit of each modem's prepaid line (the
//! segment counter and its reset, the balance asked by USSD, its history and settings, the
//! codes of each operator).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use super::modems::fleet_error;
use super::time::show;
use crate::credit::{CreditError, CreditSettings, Preset, check_presets};
use crate::domain::Module;
use crate::store::BalanceCheckRecord;

/// One modem's credit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditView {
    /// The modem.
    pub modem_id: String,
    /// Segments the network accepted since `since` (test messages included).
    pub segments_sent: i64,
    /// When the counter was last reset; null when it never counted anything.
    pub since: Option<String>,
    /// The last balance read, if any.
    pub balance: Option<BalanceView>,
    /// Whether sending from the modem is paused because its balance is low.
    pub paused: bool,
}

/// A balance check.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    /// Identifier.
    pub id: i64,
    /// The modem.
    pub modem_id: String,
    /// When it was asked.
    pub checked_at: String,
    /// The USSD code asked.
    #[schema(example = "*105#")]
    pub code: String,
    /// `api` or `daily`.
    pub cause: String,
    /// The operator's answer, decoded.
    #[schema(example = "Tu saldo es Bs 25,50 vigente hasta 31/12/2026")]
    pub text: Option<String>,
    /// Whether an amount could be read out of it; when not, `text` is all there is.
    pub parsed: bool,
    /// The amount, as a decimal number.
    #[schema(example = "25.50")]
    pub amount: Option<String>,
    /// The currency, as the operator wrote it.
    #[schema(example = "Bs")]
    pub currency: Option<String>,
    /// When the credit expires, `yyyy-mm-dd`.
    #[schema(example = "2026-12-31")]
    pub expires: Option<String>,
    /// Why no answer came.
    pub error: Option<String>,
}

impl BalanceView {
    fn new(r: BalanceCheckRecord, tz: chrono_tz::Tz) -> BalanceView {
        BalanceView {
            id: r.id,
            checked_at: show(r.at, tz),
            parsed: r.check.amount.is_some(),
            modem_id: r.check.modem_id,
            code: r.check.code,
            cause: r.check.cause,
            text: r.check.answer,
            amount: r.check.amount,
            currency: r.check.currency,
            expires: r.check.expires,
            error: r.check.error,
        }
    }
}

/// What a check asked now found.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceChecked {
    /// The check.
    #[serde(flatten)]
    pub check: BalanceView,
    /// Whether the balance is under the modem's threshold.
    pub low: bool,
    /// Whether sending from the modem is paused now.
    pub paused: bool,
}

/// A page of a modem's balance checks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalancePage {
    /// The checks.
    pub items: Vec<BalanceView>,
    /// Pass as `cursor` for the next page; null when this page is not full.
    pub next_cursor: Option<String>,
}

/// Paging of the balance history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// Page size, 1–500 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The USSD presets: which code asks the balance on which operator's lines.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Presets {
    /// One entry an operator.
    pub presets: Vec<Preset>,
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
        .service(super::resource("/v1/credit/reset").route(web::post().to(reset)))
        .service(
            super::resource("/v1/credit/presets")
                .route(web::get().to(get_presets))
                .route(web::put().to(put_presets)),
        )
        .service(
            super::resource("/v1/modems/{id}/balance")
                .route(web::get().to(history))
                .route(web::post().to(check)),
        )
        .service(
            super::resource("/v1/modems/{id}/balance/settings")
                .route(web::get().to(get_settings))
                .route(web::put().to(put_settings)),
        );
}

async fn counters(state: &AppState) -> Result<Vec<CreditView>, ApiError> {
    let counters = state.store.segment_counters(&state.fleet.ids()).await?;
    let mut out = Vec::with_capacity(counters.len());
    for c in counters {
        let balance = state.store.last_balance(&c.modem_id).await?;
        out.push(CreditView {
            paused: state.fleet.is_paused(&c.modem_id).map_err(fleet_error)?,
            balance: balance.map(|b| BalanceView::new(b, state.tz)),
            modem_id: c.modem_id,
            segments_sent: c.segments,
            since: (c.since > 0).then(|| show(c.since, state.tz)),
        });
    }
    Ok(out)
}

fn known_modem(state: &AppState, id: &str) -> Result<(), ApiError> {
    state.fleet.status(id).map(|_| ()).map_err(fleet_error)
}

fn credit_error(err: CreditError) -> ApiError {
    match err {
        CreditError::Fleet(err) => fleet_error(err),
        err @ CreditError::NoCode { .. } => ApiError::Conflict {
            field: Some("ussd_code".into()),
            detail: err.to_string(),
        },
        CreditError::Store(err) => err.into(),
    }
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

/// Ask a modem's balance now by USSD. The answer is recorded (history), mailed and sent to
/// webhooks as `balance.checked` (and `balance.low` under the threshold); an answer that cannot
/// be read as a balance is kept as text with `parsed: false`.
#[utoipa::path(
    post, path = "/v1/modems/{id}/balance", tag = "credit",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "The operator's answer", body = BalanceChecked),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 502, response = error::BadGateway),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn check(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    known_modem(&state, &id)?;
    let checked = state.credit.check(&id, "api").await.map_err(credit_error)?;
    Ok(HttpResponse::Ok().json(BalanceChecked {
        check: BalanceView::new(checked.record, state.tz),
        low: checked.low,
        paused: checked.paused,
    }))
}

/// A modem's balance checks, newest first.
#[utoipa::path(
    get, path = "/v1/modems/{id}/balance", tag = "credit",
    params(("id" = String, Path, description = "The modem's id"), BalanceQuery),
    responses(
        (status = 200, description = "A page of checks", body = BalancePage),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<BalanceQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    known_modem(&state, &id)?;
    let query = query.into_inner();
    let limit = super::paging::limit(query.limit.as_deref(), 50, 500)?;
    let before = super::paging::cursor(query.cursor.as_deref(), |c| c.parse::<i64>().ok())?;
    let checks = state.store.balance_checks(&id, before, limit).await?;
    let next_cursor = (checks.len() == limit as usize)
        .then(|| checks.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(BalancePage {
        items: checks
            .into_iter()
            .map(|c| BalanceView::new(c, state.tz))
            .collect(),
        next_cursor,
    }))
}

/// A modem's balance settings: its USSD code, daily check, threshold and pause.
#[utoipa::path(
    get, path = "/v1/modems/{id}/balance/settings", tag = "credit",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "The settings", body = CreditSettings),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get_settings(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    known_modem(&state, &id)?;
    Ok(HttpResponse::Ok().json(state.credit.settings(&id).await?))
}

/// Change a modem's balance settings. Pausing takes effect at once by the last balance read.
#[utoipa::path(
    put, path = "/v1/modems/{id}/balance/settings", tag = "credit",
    params(("id" = String, Path, description = "The modem's id")),
    request_body = CreditSettings,
    responses(
        (status = 200, description = "The settings now", body = CreditSettings),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_settings(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(input): JsonBody<CreditSettings>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    known_modem(&state, &id)?;
    input
        .check()
        .map_err(|(field, reason)| ApiError::invalid(field, reason))?;
    state
        .credit
        .set_settings(&id, &input)
        .await
        .map_err(credit_error)?;
    state.events.record(
        "credit.settings_changed",
        Some(&caller.label()),
        json!({"modem_id": id.as_str(), "check_at": input.check_at}),
    );
    Ok(HttpResponse::Ok().json(input))
}

/// The USSD codes that ask the balance, by operator.
#[utoipa::path(
    get, path = "/v1/credit/presets", tag = "credit",
    responses(
        (status = 200, description = "The presets", body = Presets),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get_presets(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    Ok(HttpResponse::Ok().json(Presets {
        presets: state.credit.presets().await?,
    }))
}

/// Replace the USSD presets.
#[utoipa::path(
    put, path = "/v1/credit/presets", tag = "credit",
    request_body = Presets,
    responses(
        (status = 200, description = "The presets now", body = Presets),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_presets(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<Presets>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    check_presets(&input.presets).map_err(|(field, reason)| ApiError::invalid(field, reason))?;
    state.credit.set_presets(&input.presets).await?;
    state.events.record(
        "credit.presets_changed",
        Some(&caller.label()),
        json!({"presets": input.presets.len()}),
    );
    Ok(HttpResponse::Ok().json(input))
}
