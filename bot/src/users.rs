//! Users and their API credentials: what copr-cli sends (HTTP Basic `login:token`, REFERENCE §4)
//! and how a request proves who it comes from, at the door of seed step 1 for API callers.
//!
//! A token is 32 random characters shown once, when it is made; only its SHA-256 is stored, and
//! a presented token is compared with it in constant time. Tokens expire
//! ([`TOKEN_LIFETIME`], Copr's 180 days).

use crate::texts;
use base64::Engine;
use ferrocopr_schema::Db;
use ferrocopr_schema::db::User;
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// How long an API token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(180 * 24 * 3600);

/// Credentials as copr-cli's config holds them; the token exists in clear only here.
#[derive(Clone)]
pub struct Credentials {
    pub login: String,
    pub token: String,
    /// Seconds since the epoch.
    pub expires_on: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("expires_on", &self.expires_on)
            .finish_non_exhaustive()
    }
}

/// Why a user could not be made: the caller's mistake, told as such.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{}", texts::bad_user_name(.0))]
    BadName(String),
    #[error("{}", texts::user_exists(.0))]
    Exists(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a request is not authenticated. Each becomes a 401; the texts say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{}", texts::AUTH_MISSING)]
    Missing,
    #[error("{}", texts::AUTH_MALFORMED)]
    Malformed,
    /// Unknown login or wrong token: the two are not told apart.
    #[error("{}", texts::AUTH_WRONG)]
    Wrong,
    #[error("{}", texts::AUTH_EXPIRED)]
    Expired,
}

/// A user name: what Copr and FAS allow, letters, digits, `_`, `-` and `.`, not starting with
/// `@` (that marks groups) or `.`.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Makes the user `name` with a first API token.
pub async fn create_user(
    db: &Db,
    name: &str,
    admin: bool,
) -> Result<(User, Credentials), UserError> {
    if !valid_user_name(name) {
        return Err(UserError::BadName(name.to_owned()));
    }
    let user = db
        .create_user(name, admin)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| UserError::Exists(name.to_owned()))?;
    let credentials = new_token(db, &user).await?;
    Ok((user, credentials))
}

/// A new API token for `user`, valid for [`TOKEN_LIFETIME`].
pub async fn new_token(db: &Db, user: &User) -> anyhow::Result<Credentials> {
    let login = random_text(32)?;
    let token = random_text(32)?;
    let expires_on = unix_now() + TOKEN_LIFETIME.as_secs() as i64;
    db.add_api_token(user, &login, &hash(&token), expires_on)
        .await?;
    Ok(Credentials {
        login,
        token,
        expires_on,
    })
}

/// The user an `Authorization: Basic base64(login:token)` header names, if its token is right
/// and not expired.
pub async fn authenticate(db: &Db, authorization: Option<&str>) -> Result<User, AuthenticateError> {
    let (login, token) = parse_basic(authorization)?;
    let stored = db
        .api_token(&login)
        .await
        .map_err(|e| AuthenticateError::Internal(e.into()))?;
    // An unknown login costs the same comparison as a wrong token.
    let (expected, found) = match &stored {
        Some(s) => (s.token_sha256.as_str(), true),
        None => ("", false),
    };
    let matches: bool = hash(&token).as_bytes().ct_eq(expected.as_bytes()).into();
    match stored {
        Some(stored) if matches && found => {
            if stored.expires_on <= unix_now() {
                Err(AuthError::Expired.into())
            } else {
                Ok(stored.user)
            }
        }
        _ => Err(AuthError::Wrong.into()),
    }
}

/// [`authenticate`]'s failure: the caller's ([`AuthError`]) or ours.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Internal(anyhow::Error),
}

fn parse_basic(authorization: Option<&str>) -> Result<(String, String), AuthError> {
    let value = authorization.ok_or(AuthError::Missing)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthError::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
    let (login, token) = text.split_once(':').ok_or(AuthError::Malformed)?;
    Ok((login.to_owned(), token.to_owned()))
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `len` random lower-case letters (about 4.7 bits each), as Copr's logins and tokens look.
fn random_text(len: usize) -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    let mut text = String::with_capacity(len);
    while text.len() < len {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        // 234 = 9 * 26: taking only bytes below it keeps every letter equally likely.
        for b in bytes.into_iter().filter(|b| *b < 234) {
            if text.len() < len {
                text.push(char::from(ALPHABET[usize::from(b % 26)]));
            }
        }
    }
    Ok(text)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_parsed_strictly() {
        let header = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(
            parse_basic(Some(&header("abc:def"))),
            Ok(("abc".into(), "def".into()))
        );
        assert_eq!(parse_basic(None), Err(AuthError::Missing));
        assert_eq!(parse_basic(Some("Bearer x")), Err(AuthError::Malformed));
        assert_eq!(parse_basic(Some("Basic !!!")), Err(AuthError::Malformed));
        assert_eq!(
            parse_basic(Some(&header("no-colon"))),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn names_and_tokens() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("a.b-c_d9"));
        assert!(!valid_user_name("@group"));
        assert!(!valid_user_name("../x"));
        assert!(!valid_user_name(""));
        let token = random_text(32).expect("random");
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_lowercase()));
        assert_ne!(token, random_text(32).expect("random"));
    }
}
