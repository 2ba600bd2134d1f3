//! API keys: made (the token shown once, only its SHA-256 kept), listed and revoked. The
//! server's `keys` command and any program that provisions keys call these; the API's access
//! check finds a request's key by [`token_sha256`].
//!
//! Tokens are 256 random bits from the operating system, so a plain SHA-256 is enough to keep
//! them safe at rest: nothing short of trying 2^256 tokens finds one from its hash, and a slow
//! password hash (bcrypt, argon2) only helps against guessable secrets, at a cost on every
//! request.

use crate::ServiceError;
use chrono::TimeDelta;
use netorch_domain::{ApiKey, DeploymentId, Role, Timestamp};
use netorch_storage::{DbConnection, StorageError, api_keys};
use sha2::{Digest, Sha256};

/// What every token starts with, so that a leaked one is recognisable (secret scanners,
/// logs).
pub const TOKEN_PREFIX: &str = "ntk_";

/// A key to make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyRequest<'a> {
    /// Its name: 1 to 64 of ASCII letters, digits, `.`, `_` and `-` ([`is_key_name`]).
    pub name: &'a str,
    /// What it may do.
    pub role: Role,
    /// How long it is valid from its creation (`None`: until revoked).
    pub lifetime: Option<TimeDelta>,
    /// The only deployments it reaches (`None`: every one).
    pub deployments: Option<&'a [DeploymentId]>,
}

impl<'a> KeyRequest<'a> {
    /// A key `name` with `role`, valid until revoked, reaching every deployment.
    pub fn new(name: &'a str, role: Role) -> Self {
        KeyRequest {
            name,
            role,
            lifetime: None,
            deployments: None,
        }
    }
}

/// A key just made.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedKey {
    /// Its token: the only time it exists outside the caller.
    pub token: String,
    /// The key as stored (by the token's hash).
    pub key: ApiKey,
}

/// Makes the key `request` asks for at `now`. A name that is not a key name is
/// [`ServiceError::KeyName`]; one taken already, by a key revoked or not,
/// [`ServiceError::KeyExists`]; a deployment that does not exist,
/// [`ServiceError::KeyDeploymentsMissing`].
pub fn create(
    conn: &mut DbConnection,
    request: &KeyRequest<'_>,
    now: Timestamp,
) -> Result<CreatedKey, ServiceError> {
    if !is_key_name(request.name) {
        return Err(ServiceError::KeyName(request.name.to_owned()));
    }
    let token = new_token()?;
    let hash = token_sha256(&token);
    let new = api_keys::NewKey {
        name: request.name,
        role: request.role,
        token_sha256: &hash,
        expires_at: request.lifetime.map(|l| now + l),
        deployments: request.deployments,
    };
    let key = api_keys::create(conn, &new, now).map_err(|error| match error {
        // The caller's mistakes, said as such, not failures of the database.
        StorageError::KeyExists(name) => ServiceError::KeyExists(name),
        StorageError::DeploymentNotFound => {
            ServiceError::KeyDeploymentsMissing(request.deployments.unwrap_or_default().to_vec())
        }
        other => other.into(),
    })?;
    Ok(CreatedKey { token, key })
}

/// Every key, revoked and expired ones too, by name.
pub fn list(conn: &mut DbConnection) -> Result<Vec<ApiKey>, ServiceError> {
    Ok(api_keys::list(conn)?)
}

/// Revokes the key `name` at `now` (every server refuses it within a second);
/// `Storage(KeyNotFound)` when there is none.
pub fn revoke(conn: &mut DbConnection, name: &str, now: Timestamp) -> Result<ApiKey, ServiceError> {
    Ok(api_keys::revoke(conn, name, now)?)
}

/// The key whose token hashes to `token_sha256` ([`token_sha256`]), if it is active at `now`
/// (not revoked, not expired); records that it was used at `now` (to the minute).
pub fn authenticate(
    conn: &mut DbConnection,
    token_sha256: &str,
    now: Timestamp,
) -> Result<Option<ApiKey>, ServiceError> {
    Ok(api_keys::authenticate(conn, token_sha256, now)?)
}

/// A new token: [`TOKEN_PREFIX`] and 256 random bits as 64 lowercase hex digits.
pub fn new_token() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServiceError::NoRandomness(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// The SHA-256 of `token`, as 64 lowercase hex digits: how the database knows a token.
pub fn token_sha256(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `name` is a key name: 1 to 64 of ASCII letters, digits, `.`, `_` and `-` (it ends up
/// in events and logs, so nothing that needs quoting).
pub fn is_key_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_known_by_their_hash() {
        let (a, b) = (new_token().expect("token"), new_token().expect("token"));
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(token_sha256(&a).len(), 64);
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn key_names_are_short_and_plain() {
        assert!(is_key_name("ci-collector_1.prod"));
        assert!(!is_key_name(""));
        assert!(!is_key_name("a b"));
        assert!(!is_key_name(&"x".repeat(65)));
    }
}
