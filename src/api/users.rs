//! `/v1/users`: people who sign in, and the modules each may use (admin only).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use super::time::show;
use crate::auth::{MIN_PASSWORD_LEN, hash_password};
use crate::domain::{Module, ModuleSet};
use crate::store::{NewUser, StoreError, UserChanges, UserRecord};

const MAX_PASSWORD_LEN: usize = 256;

/// A user as the API shows it; the password hash never leaves the service.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Identifier.
    pub id: String,
    /// The name used to sign in.
    #[schema(example = "mlopez")]
    pub username: String,
    /// The person's name.
    #[schema(example = "María López")]
    pub name: String,
    /// Whether the user may sign in.
    pub enabled: bool,
    /// The modules the user may use.
    pub modules: Vec<Module>,
    /// When the user was created.
    pub created_at: String,
    /// When the user last changed.
    pub updated_at: String,
}

impl UserView {
    fn new(u: UserRecord, tz: chrono_tz::Tz) -> UserView {
        UserView {
            id: u.id,
            username: u.username,
            name: u.name,
            enabled: u.enabled,
            modules: u.modules.to_vec(),
            created_at: show(u.created_at, tz),
            updated_at: show(u.updated_at, tz),
        }
    }
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "username": "mlopez", "name": "María López", "password": "una frase larga y secreta",
    "modules": ["operators", "reports"]
}))]
pub struct CreateUser {
    /// 3–64 letters, digits, `.`, `_`, `-` or `@`.
    pub username: String,
    /// The person's name.
    pub name: String,
    /// At least 10 characters.
    pub password: String,
    /// Whether the user may sign in (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The modules the user may use.
    pub modules: Vec<Module>,
}

fn yes() -> bool {
    true
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// A new display name.
    pub name: Option<String>,
    /// A new password, at least 10 characters.
    pub password: Option<String>,
    /// Enable or disable; a disabled user is refused at once, even with a valid token.
    pub enabled: Option<bool>,
    /// A new set of modules.
    pub modules: Option<Vec<Module>>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/users")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        super::resource("/v1/users/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}

fn check_username(username: &str) -> Result<(), ApiError> {
    crate::auth::check_username(username).map_err(|e| ApiError::invalid("username", e))
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "a name has 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

async fn hash_checked(password: String) -> Result<String, ApiError> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        return Err(ApiError::invalid(
            "password",
            format!("a password has {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
        ));
    }
    web::block(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))
}

/// List users.
#[utoipa::path(
    get, path = "/v1/users", tag = "users",
    responses(
        (status = 200, description = "Every user", body = Vec<UserView>),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let users = state.store.users().await?;
    Ok(HttpResponse::Ok().json(
        users
            .into_iter()
            .map(|u| UserView::new(u, state.tz))
            .collect::<Vec<_>>(),
    ))
}

/// Create a user.
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, response = error::Conflict),
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
    body: JsonBody<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let input = body.0;
    check_username(&input.username)?;
    let name = check_name(&input.name)?;
    let password_hash = hash_checked(input.password).await?;

    let user = state
        .store
        .create_user(NewUser {
            username: input.username,
            name,
            password_hash,
            enabled: input.enabled,
            modules: input.modules.into_iter().collect(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Duplicate { .. } => ApiError::Conflict {
                field: Some("username".into()),
                detail: "that username is taken".into(),
            },
            other => other.into(),
        })?;
    state.events.record(
        "user.created",
        Some(&caller.label()),
        json!({ "username": user.username, "modules": user.modules.to_stored() }),
    );
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/users/{}", user.id)))
        .json(UserView::new(user, state.tz)))
}

/// Read a user.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserView),
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
    let user = state
        .store
        .user(&id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(HttpResponse::Ok().json(UserView::new(user, state.tz)))
}

/// Change a user: name, password, enabled, modules.
#[utoipa::path(
    patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The user as it is now", body = UserView),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(user.id = %id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let input = body.0;
    let current = state
        .store
        .user(&id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;

    let modules: Option<ModuleSet> = input.modules.map(|m| m.into_iter().collect());
    let stays_admin = input.enabled.unwrap_or(current.enabled)
        && modules.unwrap_or(current.modules).contains(Module::Admin);
    if !stays_admin && state.store.count_other_admins(&id).await? == 0 {
        return Err(ApiError::Conflict {
            field: None,
            detail: "this is the last enabled admin; make another admin first".into(),
        });
    }

    let name = input.name.as_deref().map(check_name).transpose()?;
    let password_hash = match input.password {
        Some(p) => Some(hash_checked(p).await?),
        None => None,
    };
    let changed_password = password_hash.is_some();
    let user = state
        .store
        .update_user(
            &id,
            UserChanges {
                name,
                password_hash,
                enabled: input.enabled,
                modules,
            },
        )
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    state.callers.clear();
    state.events.record(
        "user.updated",
        Some(&caller.label()),
        json!({
            "username": user.username,
            "enabled": user.enabled,
            "modules": user.modules.to_stored(),
            "password_changed": changed_password,
        }),
    );
    Ok(HttpResponse::Ok().json(UserView::new(user, state.tz)))
}

/// Delete a user.
#[utoipa::path(
    delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
#[tracing::instrument(skip_all, fields(user.id = %id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let user = state
        .store
        .user(&id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if user.enabled
        && user.modules.contains(Module::Admin)
        && state.store.count_other_admins(&id).await? == 0
    {
        return Err(ApiError::Conflict {
            field: None,
            detail: "this is the last enabled admin; make another admin first".into(),
        });
    }
    if !state.store.delete_user(&id).await? {
        return Err(ApiError::NotFound("user"));
    }
    state.callers.clear();
    state.events.record(
        "user.deleted",
        Some(&caller.label()),
        json!({ "username": user.username }),
    );
    Ok(HttpResponse::NoContent().finish())
}
