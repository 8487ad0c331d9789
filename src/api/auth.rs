//! `/v1/auth`: sign in with a password for a session token, and ask who you are.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::{Caller, Principal};
use super::error::{self, ApiError};
use super::json::JsonBody;
use crate::auth::{decoy_hash, verify_password};
use crate::domain::Module;

/// Username and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "admin", "password": "a long passphrase"}))]
pub struct Login {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A session token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the token stays valid (`jwt_ttl_minutes`, 60 minutes by default).
    pub expires_in: i64,
    /// When it expires, in the configured time zone.
    pub expires_at: String,
}

/// The caller as the service sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// The user's or key's id.
    pub id: String,
    /// The username or the key's name.
    pub name: String,
    /// The modules it may use.
    pub modules: Vec<Module>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/auth/login").route(web::post().to(login)))
        .service(super::resource("/v1/auth/me").route(web::get().to(me)));
}

/// Sign in.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in", body = Token),
        (status = 401, response = error::Unauthenticated),
        (status = 422, response = error::Invalid),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { username, password } = body.0;
    // No stored username holds a control character, and PostgreSQL refuses NUL outright.
    let user = if username.chars().any(char::is_control) {
        None
    } else {
        state.store.user_by_username(&username).await?
    };
    // An unknown username is checked against a decoy hash so that it takes as long to refuse
    // as a wrong password, and does not tell which usernames exist.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let matches = web::block(move || {
        verify_password(&password, hash.as_deref().unwrap_or_else(|| decoy_hash()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;

    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let user = match user {
        Some(user) if matches && user.enabled => user,
        _ => {
            tracing::info!(peer = %peer, "sign-in refused");
            // Only a name that is a user's is written down: what people type into the name
            // field is sometimes their password.
            let known = user.as_ref().map(|u| u.username.as_str());
            state.events.record(
                "auth.login_failed",
                known,
                json!({ "peer": peer, "known_user": known.is_some() }),
            );
            return Err(ApiError::Unauthenticated(
                "wrong username or password, or the user is disabled",
            ));
        }
    };

    let (access_token, expires_at) = state
        .tokens
        .issue(&user.id)
        .map_err(|e| ApiError::Internal(e.into()))?;
    tracing::info!(user.id = %user.id, "signed in");
    state
        .events
        .record("auth.login", Some(&user.username), json!({ "peer": peer }));
    Ok(HttpResponse::Ok().json(Token {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_seconds(),
        expires_at: super::time::show(expires_at * 1000, state.tz),
    }))
}

/// Who am I.
#[utoipa::path(
    get, path = "/v1/auth/me", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, response = error::Unauthenticated),
    ),
    security(("bearer" = []))
)]
pub async fn me(caller: Caller) -> HttpResponse {
    let modules = caller.modules.to_vec();
    let (kind, id, name) = match caller.principal {
        Principal::User { id, username } => ("user", id, username),
        Principal::ApiKey { id, name } => ("api_key", id, name),
    };
    HttpResponse::Ok().json(Me {
        kind,
        id,
        name,
        modules,
    })
}
