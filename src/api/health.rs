//! `GET /health` for load balancers and `GET /metrics` for Prometheus.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use crate::domain::Module;

/// Whether the service can do its work.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    pub status: &'static str,
    /// The service's version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    /// `ok` or `unreachable`.
    pub database: &'static str,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/health").route(web::get().to(health)))
        .service(super::resource("/metrics").route(web::get().to(metrics)));
}

/// Service health; needs no credentials.
#[utoipa::path(
    get, path = "/health", tag = "service",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let reachable = state.store.is_reachable().await;
    let body = Health {
        status: if reachable { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: if reachable { "ok" } else { "unreachable" },
    };
    if reachable {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Each modem's last balance read, when it was read, and whether its sending is paused.
async fn render_credit(state: &AppState, out: &mut String) -> Result<(), ApiError> {
    let mut balances = String::new();
    let mut checked = String::new();
    let mut paused = String::new();
    for id in state.fleet.ids() {
        if let Some(last) = state.store.last_balance(&id).await? {
            let amount = last.check.amount.as_deref().unwrap_or("0");
            let currency = last.check.currency.as_deref().unwrap_or("");
            balances.push_str(&format!(
                "pregonero_balance{{modem=\"{id}\",currency=\"{currency}\"}} {amount}\n"
            ));
            checked.push_str(&format!(
                "pregonero_balance_checked_timestamp_seconds{{modem=\"{id}\"}} {}\n",
                last.at / 1000
            ));
        }
        let on = state.fleet.is_paused(&id).unwrap_or(false);
        paused.push_str(&format!(
            "pregonero_sending_paused{{modem=\"{id}\"}} {}\n",
            u8::from(on)
        ));
    }
    out.push_str("# HELP pregonero_balance The last balance read of each modem's line.\n");
    out.push_str("# TYPE pregonero_balance gauge\n");
    out.push_str(&balances);
    out.push_str("# HELP pregonero_balance_checked_timestamp_seconds When it was read.\n");
    out.push_str("# TYPE pregonero_balance_checked_timestamp_seconds gauge\n");
    out.push_str(&checked);
    out.push_str(
        "# HELP pregonero_sending_paused 1 while a modem's sending is paused (low balance).\n",
    );
    out.push_str("# TYPE pregonero_sending_paused gauge\n");
    out.push_str(&paused);
    Ok(())
}

/// Counters in the Prometheus text format: requests by status and duration, messages by state,
/// each modem's balance.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "Prometheus text format", body = String,
            content_type = "text/plain; version=0.0.4"),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn metrics(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let mut out = String::with_capacity(4096);
    state.metrics.render_requests(&mut out);

    out.push_str("# HELP pregonero_messages Messages stored, by state.\n");
    out.push_str("# TYPE pregonero_messages gauge\n");
    for (status, count) in state.store.count_messages_by_status().await? {
        out.push_str(&format!(
            "pregonero_messages{{status=\"{}\"}} {count}\n",
            status.as_str()
        ));
    }
    render_credit(&state, &mut out).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
