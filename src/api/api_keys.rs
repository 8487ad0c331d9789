//! `/v1/api-keys`: credentials for machines (admin only). The secret is shown once, at creation.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use super::time::{parse_time, show, show_opt};
use crate::auth::{hash_api_key, new_api_key_secret};
use crate::domain::{Module, ModuleSet};
use crate::store::{ApiKeyRecord, NewApiKey, now_ms};

/// Characters of the secret kept in clear to tell keys apart (`pgn_` and 8 hex digits).
const SHOWN_PREFIX: usize = 12;

/// An API key as the API shows it; never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Identifier.
    pub id: String,
    /// What the key is for.
    #[schema(example = "erp-production")]
    pub name: String,
    /// The first characters of the secret.
    #[schema(example = "pgn_1a2b3c4d")]
    pub prefix: String,
    /// The modules the key may use.
    pub scopes: Vec<Module>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
    /// When it stops working; null for never.
    pub expires_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: String,
}

impl ApiKeyView {
    fn new(k: ApiKeyRecord, tz: chrono_tz::Tz) -> ApiKeyView {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.is_usable_at(now_ms()) {
            "active"
        } else {
            "expired"
        };
        ApiKeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.to_vec(),
            state,
            expires_at: show_opt(k.expires_at, tz),
            revoked_at: show_opt(k.revoked_at, tz),
            created_by: k.created_by,
            created_at: show(k.created_at, tz),
        }
    }
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "erp-production", "scopes": ["operators", "reports"]}))]
pub struct CreateApiKey {
    /// What the key is for, 1–100 characters.
    pub name: String,
    /// The modules it may use; at least one.
    pub scopes: Vec<Module>,
    /// When it stops working (RFC 3339 or local time); absent for never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A key just made, with its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The secret: send as `Authorization: Bearer <secret>`. It is shown only now.
    #[schema(example = "pgn_1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80")]
    pub secret: String,
    /// The key.
    #[serde(flatten)]
    pub key: ApiKeyView,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/api-keys")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        super::resource("/v1/api-keys/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(revoke)),
    );
}

/// List API keys.
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "api-keys",
    responses(
        (status = 200, description = "Every key, newest first", body = Vec<ApiKeyView>),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let keys = state.store.api_keys().await?;
    Ok(HttpResponse::Ok().json(
        keys.into_iter()
            .map(|k| ApiKeyView::new(k, state.tz))
            .collect::<Vec<_>>(),
    ))
}

/// Make an API key.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "api-keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Made; the secret is in this answer only",
            body = CreatedApiKey),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let input = body.0;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "a name has 1 to 100 characters"));
    }
    let scopes: ModuleSet = input.scopes.into_iter().collect();
    if scopes.to_vec().is_empty() {
        return Err(ApiError::invalid(
            "scopes",
            "give the key at least one module",
        ));
    }
    let expires_at = input
        .expires_at
        .map(|raw| match parse_time(&raw, state.tz) {
            Some(at) if at > now_ms() => Ok(at),
            Some(_) => Err(ApiError::invalid("expires_at", "the expiry is in the past")),
            None => Err(ApiError::invalid(
                "expires_at",
                format!("`{raw}` is not a time"),
            )),
        })
        .transpose()?;

    let secret = new_api_key_secret();
    let key = state
        .store
        .create_api_key(NewApiKey {
            name,
            prefix: secret[..SHOWN_PREFIX].to_owned(),
            secret_hash: hash_api_key(&secret),
            scopes,
            expires_at,
            created_by: caller.label(),
        })
        .await?;
    state.events.record(
        "api_key.created",
        Some(&caller.label()),
        json!({ "name": key.name, "prefix": key.prefix, "scopes": key.scopes.to_stored() }),
    );
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/api-keys/{}", key.id)))
        .json(CreatedApiKey {
            secret,
            key: ApiKeyView::new(key, state.tz),
        }))
}

/// Read an API key.
#[utoipa::path(
    get, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key", body = ApiKeyView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let key = state
        .store
        .api_key(&id)
        .await?
        .ok_or(ApiError::NotFound("API key"))?;
    Ok(HttpResponse::Ok().json(ApiKeyView::new(key, state.tz)))
}

/// Revoke an API key; it is refused from the next request on.
#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked (or it already was)", body = ApiKeyView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(api_key.id = %id))]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let key = state
        .store
        .revoke_api_key(&id)
        .await?
        .ok_or(ApiError::NotFound("API key"))?;
    state.callers.clear();
    state.events.record(
        "api_key.revoked",
        Some(&caller.label()),
        json!({ "name": key.name, "prefix": key.prefix }),
    );
    Ok(HttpResponse::Ok().json(ApiKeyView::new(key, state.tz)))
}
