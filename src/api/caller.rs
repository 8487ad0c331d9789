//! Who is calling: the `Authorization: Bearer …` header read as a session token or an API key.
//!
//! Every request looks its caller up again, so a user disabled a moment ago or a key just revoked
//! is refused on the very next request, on every node that shares the database.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::error::ApiError;
use crate::auth::{API_KEY_PREFIX, hash_api_key};
use crate::domain::{Module, ModuleSet};
use crate::store::now_ms;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who it is.
    pub principal: Principal,
    /// The modules it may use.
    pub modules: ModuleSet,
}

/// A user signed in with a session token, or a machine with an API key.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A person.
    User {
        /// The user's id.
        id: String,
        /// The user's username.
        username: String,
    },
    /// A machine.
    ApiKey {
        /// The key's id.
        id: String,
        /// The key's name.
        name: String,
    },
}

impl Caller {
    /// Succeeds when the caller may use `module`.
    ///
    /// # Errors
    ///
    /// [`ApiError::Forbidden`] naming the module otherwise.
    pub fn require(&self, module: Module) -> Result<(), ApiError> {
        if self.modules.contains(module) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(module))
        }
    }

    /// How the caller is written in `created_by` fields and the event log: the username, or
    /// `key:<name>`.
    pub fn label(&self) -> String {
        match &self.principal {
            Principal::User { username, .. } => username.clone(),
            Principal::ApiKey { name, .. } => format!("key:{name}"),
        }
    }

    /// The user's id when the caller is a person.
    pub fn user_id(&self) -> Option<&str> {
        match &self.principal {
            Principal::User { id, .. } => Some(id),
            Principal::ApiKey { .. } => None,
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            });

        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let token = token.ok_or(ApiError::Unauthenticated(
                "send `Authorization: Bearer <token or API key>`",
            ))?;
            authenticate(&state, &token).await
        })
    }
}

async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    if token.starts_with(API_KEY_PREFIX) {
        let key = state
            .store
            .api_key_by_hash(&hash_api_key(token))
            .await?
            .filter(|key| key.is_usable_at(now_ms()))
            .ok_or(ApiError::Unauthenticated(
                "the API key is not valid, has expired or was revoked",
            ))?;
        return Ok(Caller {
            principal: Principal::ApiKey {
                id: key.id,
                name: key.name,
            },
            modules: key.scopes,
        });
    }

    let claims = state.tokens.verify(token).ok_or(ApiError::Unauthenticated(
        "the session token is not valid or has expired; sign in again",
    ))?;
    let user = state
        .store
        .user(&claims.sub)
        .await?
        .filter(|user| user.enabled)
        .ok_or(ApiError::Unauthenticated(
            "the user is disabled or no longer exists",
        ))?;
    Ok(Caller {
        principal: Principal::User {
            id: user.id,
            username: user.username,
        },
        modules: user.modules,
    })
}
