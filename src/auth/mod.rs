//! Credentials: password hashes, session tokens and API key secrets.
//!
//! Passwords are hashed with argon2id and its default parameters (19 MiB, 2 passes), which takes
//! tens of milliseconds on purpose; callers run it on a blocking thread. Session tokens are
//! HS256 JWTs that carry only the user's id: modules and the enabled flag are read from the
//! database on every request, so disabling a user takes effect at once. API key secrets are
//! random, shown once, and stored as a SHA-256 hash (they are long and random, so a slow hash
//! would add nothing but latency to every machine request).

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Checks that a username has 3 to 64 letters, digits, `.`, `_`, `-` or `@`.
///
/// # Errors
///
/// Says what a username must look like.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    let ok = (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err("use 3 to 64 letters, digits, `.`, `_`, `-` or `@`")
    }
}

/// Every API key secret starts with this, so a leaked one is easy to recognise and to scan for.
pub const API_KEY_PREFIX: &str = "pgn_";

/// Why a credential operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The password hash could not be computed or read.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A session token could not be made, or its key is not usable.
    #[error("session token could not be signed")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Hashes a password with argon2id and a fresh salt, in PHC string form.
///
/// # Errors
///
/// Fails only when argon2 rejects its own parameters.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC `hash`. A hash that cannot be read matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The hash an unknown username is checked against, made on first use (not at start-up, where
/// it would cost every start an argon2 run).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_password()).unwrap_or_default())
}

/// A random secret of `bytes` bytes, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    to_hex(&buf)
}

/// A random password a person can type: 20 characters without look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| ALPHABET[(OsRng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// A new API key secret: the prefix and 32 random bytes in hex.
pub fn new_api_key_secret() -> String {
    format!("{API_KEY_PREFIX}{}", random_hex(32))
}

/// The stored form of an API key secret: its SHA-256 in hex.
pub fn hash_api_key(secret: &str) -> String {
    sha256_hex(secret)
}

/// The SHA-256 of a text, in hex.
pub fn sha256_hex(text: &str) -> String {
    to_hex(&Sha256::digest(text.as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What a session token says.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// Issued at, in seconds since the epoch.
    pub iat: i64,
    /// Expires at, in seconds since the epoch.
    pub exp: i64,
}

/// Signs and checks session tokens with one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: i64,
}

impl TokenKeys {
    /// Keys for `secret`, making tokens that live `ttl_minutes`.
    ///
    /// # Errors
    ///
    /// Fails when the secret cannot serve as an HMAC key (it is empty).
    pub fn new(secret: &str, ttl_minutes: u32) -> Result<TokenKeys, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()).map_err(AuthError::Sign)?,
            decoding: DecodingKey::from_secret(secret.as_bytes()).map_err(AuthError::Sign)?,
            validation,
            ttl_seconds: i64::from(ttl_minutes) * 60,
        })
    }

    /// How long a new token lives, in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// A token for `user_id` and the time it expires (seconds since the epoch).
    ///
    /// # Errors
    ///
    /// Fails only when signing fails.
    pub fn issue(&self, user_id: &str) -> Result<(String, i64), AuthError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now + self.ttl_seconds,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AuthError::Sign)?;
        Ok((token, claims.exp))
    }

    /// The claims of a token that is well signed and not expired.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn tokens_verify_with_their_own_secret_only() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef", 60).unwrap();
        let (token, exp) = keys.issue("user-1").unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.exp, exp);

        let other = TokenKeys::new("fedcba9876543210fedcba9876543210", 60).unwrap();
        assert!(other.verify(&token).is_none());
        assert!(keys.verify("not.a.token").is_none());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef", 60).unwrap();
        let claims = Claims {
            sub: "user-1".into(),
            iat: 0,
            exp: chrono::Utc::now().timestamp() - 60,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token).is_none());
    }

    #[test]
    fn api_key_secrets_are_prefixed_random_and_hashed() {
        let a = new_api_key_secret();
        let b = new_api_key_secret();
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
        assert_eq!(hash_api_key(&a).len(), 64);
    }
}
