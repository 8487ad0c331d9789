//! Who is calling: the `Authorization: Bearer …` header read as a session token or an API key.
//!
//! Callers are looked up in the database and remembered for one second, so that an ERP firing
//! thousands of requests a second does not cost a lookup each. Any change to a user or a key on
//! this node forgets every remembered caller at once, so a user disabled or a key revoked here is
//! refused on the very next request; other nodes sharing the database refuse it within a second.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a looked-up caller is trusted without asking the database again.
const REMEMBER_FOR: Duration = Duration::from_secs(1);

/// Past this many remembered callers the cache starts over, bounding its memory.
const MAX_REMEMBERED: usize = 10_000;

/// Callers recently looked up, by API key hash or user id.
#[derive(Debug, Default)]
pub struct CallerCache {
    entries: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl CallerCache {
    fn get(&self, key: &str) -> Option<Caller> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < REMEMBER_FOR)
            .map(|(caller, _)| caller.clone())
    }

    fn put(&self, key: String, caller: &Caller) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_REMEMBERED {
            entries.clear();
        }
        entries.insert(key, (caller.clone(), Instant::now()));
    }

    /// Forgets every caller; called after any change to a user or a key.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    // Signature and expiry of a session token are checked every time; only the lookup of the
    // user or key behind a credential is remembered.
    let cache_key = if token.starts_with(API_KEY_PREFIX) {
        format!("key:{}", hash_api_key(token))
    } else {
        let claims = state.tokens.verify(token).ok_or(ApiError::Unauthenticated(
            "the session token is not valid or has expired; sign in again",
        ))?;
        format!("user:{}", claims.sub)
    };
    if let Some(caller) = state.callers.get(&cache_key) {
        return Ok(caller);
    }
    let caller = look_up(state, &cache_key).await?;
    state.callers.put(cache_key, &caller);
    Ok(caller)
}

async fn look_up(state: &AppState, cache_key: &str) -> Result<Caller, ApiError> {
    if let Some(hash) = cache_key.strip_prefix("key:") {
        let key = state
            .store
            .api_key_by_hash(hash)
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

    let user_id = cache_key.trim_start_matches("user:");
    let user = state
        .store
        .user(user_id)
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
