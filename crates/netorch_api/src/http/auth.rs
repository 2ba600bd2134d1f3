//! Access control: API keys with roles, checked in one place.
//!
//! With [`AuthMode::Keys`], every route but the open ones ([`crate::open_paths`]) is wrapped
//! by [`configure`](crate::configure) in `authorize`, which reads `Authorization: Bearer
//! <token>`, finds the key by the token's SHA-256 (the only form the database holds), takes
//! the [`Action`] the request's operation declares (`http::operation`), and lets it through
//! only if the key's [`Role`] may take it: 401 with `WWW-Authenticate: Bearer` for a missing,
//! unknown, revoked or expired token, 403 for a role that may not. The key's name goes into the request
//! as its [`Actor`], and its role beside it (for `GET /whoami`). With [`AuthMode::Off`] every
//! request is let through as `anonymous`, who may do anything.
//!
//! Tokens are 256 random bits from the operating system, so a plain SHA-256 is enough to keep
//! them safe at rest: nothing short of trying 2^256 tokens finds one from its hash, and a
//! slow password hash (bcrypt, argon2) only helps against guessable secrets, at a cost on every
//! request.

use crate::ApiState;
use crate::http::error::ApiError;
use crate::http::operation::Access;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use netorch_domain::{Action, ApiKey, DeploymentId, Role, Timestamp};
use netorch_storage::{DbConnection, StorageError, api_keys};
use sha2::{Digest, Sha256};

/// What every token starts with, so that a leaked one is recognisable (secret scanners,
/// logs).
pub const TOKEN_PREFIX: &str = "ntk_";

/// Whether the API asks for keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Every request but the open paths needs a key whose role allows it.
    Keys,
    /// No key needed: every request is let through, as `anonymous`.
    #[default]
    Off,
}

/// How long a key found in the database is trusted without looking again: a revoked key is
/// refused within this long by every server process.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Keys recently found by their token's hash, so that a burst of requests with one key reads
/// the database once a second, not once per request (which halved the request rate). Only keys
/// that exist are kept, so its size is bounded by the number of keys, whatever tokens are sent.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (ApiKey, std::time::Instant)>>,
}

impl KeyCache {
    /// The key with this token hash, if it was found within [`KEY_CACHE_TTL`].
    fn get(&self, hash: &str) -> Option<ApiKey> {
        let entries = self.entries.lock().ok()?;
        let (key, found) = entries.get(hash)?;
        (found.elapsed() < KEY_CACHE_TTL).then(|| key.clone())
    }

    fn put(&self, hash: String, key: ApiKey) {
        if let Ok(mut entries) = self.entries.lock() {
            // Forget stale entries now and then: revoked keys' hashes are never asked again.
            if entries.len() > 1_000 {
                entries.retain(|_, (_, found)| found.elapsed() < KEY_CACHE_TTL);
            }
            entries.insert(hash, (key, std::time::Instant::now()));
        }
    }
}

/// Who made a request: the key's name, or `anonymous` with auth off. Handlers read it from the
/// request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    /// The actor of requests made with auth off.
    pub const ANONYMOUS: &str = "anonymous";
}

/// The request's actor, as `authorize` put it in the request (`anonymous` where it did not
/// run).
impl actix_web::FromRequest for Actor {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let actor = req
            .extensions()
            .get::<Actor>()
            .cloned()
            .unwrap_or_else(|| Actor(Actor::ANONYMOUS.to_owned()));
        std::future::ready(Ok(actor))
    }
}

/// The deployments the request's key is limited to (`None`: every one), as `authorize` put
/// it in the request, for `GET /whoami`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(pub Option<Vec<DeploymentId>>);

/// The SHA-256 of the token a request was let in with, as `authorize` put it in the request:
/// for a long answer (the event stream) to look the key up again while it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credential(pub(crate) String);

/// Why a key that let a request in no longer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyGone {
    /// Revoked or expired (or removed) since.
    Invalid,
    /// The database could not say.
    Unknown,
}

/// Whether the key whose token hashes to `hash` still lets requests in at `now` (a key found
/// within [`KEY_CACHE_TTL`] is taken from the cache, as for a new request).
pub(crate) async fn still_valid(state: &ApiState, hash: &str) -> Result<(), KeyGone> {
    let now = chrono::Utc::now();
    match find_key(state, hash, now).await {
        Ok(Some(key)) if key.is_active(now) => Ok(()),
        Ok(_) => Err(KeyGone::Invalid),
        Err(_) => Err(KeyGone::Unknown),
    }
}

/// The key whose token hashes to `hash`, from the cache or the database.
async fn find_key(
    state: &ApiState,
    hash: &str,
    now: Timestamp,
) -> Result<Option<ApiKey>, ApiError> {
    if let Some(key) = state.keys.get(hash) {
        return Ok(Some(key));
    }
    let lookup = hash.to_owned();
    let found = crate::http::blocking::with_db(state, move |conn| {
        Ok(api_keys::authenticate(conn, &lookup, now)?)
    })
    .await?;
    if let Some(key) = &found {
        state.keys.put(hash.to_owned(), key.clone());
    }
    Ok(found)
}

/// A new token: [`TOKEN_PREFIX`] and 256 random bits as 64 lowercase hex digits.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no randomness for a token: {e}")))?;
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

/// Makes a key `name` with `role`, valid for `lifetime` from `now` if given and limited to
/// `deployments` if given: returns the token, the only time it exists outside the caller, and
/// the key as stored (by the token's hash). A name that is not a key name ([`is_key_name`]) or
/// is taken already, by a key revoked or not, is [`ApiError::Invalid`] of the field `name`; a
/// deployment that does not exist is [`ApiError::Invalid`] of the field `deployment`.
pub fn create_key(
    conn: &mut DbConnection,
    name: &str,
    role: Role,
    lifetime: Option<chrono::Duration>,
    deployments: Option<&[DeploymentId]>,
    now: Timestamp,
) -> Result<(String, ApiKey), ApiError> {
    if !is_key_name(name) {
        return Err(ApiError::invalid(crate::http::error::FieldError::new(
            "string_pattern_mismatch",
            ["name".into()],
            "A key name is 1 to 64 letters, digits, '.', '_' or '-'",
            name,
        )));
    }
    let token = new_token()?;
    let hash = token_sha256(&token);
    let new = api_keys::NewKey {
        name,
        role,
        token_sha256: &hash,
        expires_at: lifetime.map(|l| now + l),
        deployments,
    };
    let key = api_keys::create(conn, &new, now).map_err(|error| match error {
        // The caller's mistake, said of the field, not an internal error.
        StorageError::KeyExists(name) => ApiError::invalid(crate::http::error::FieldError::new(
            "key_exists",
            ["name".into()],
            format!("An API key named {name:?} exists already (revoked keys keep their names)"),
            name,
        )),
        StorageError::DeploymentNotFound => ApiError::invalid(crate::http::error::FieldError::new(
            "deployment_not_found",
            ["deployment".into()],
            format!(
                "A key can be limited only to deployments that exist, and not all of {} do",
                deployments
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            serde_json::json!(
                deployments
                    .unwrap_or_default()
                    .iter()
                    .map(|d| d.get())
                    .collect::<Vec<_>>()
            ),
        )),
        other => other.into(),
    })?;
    Ok((token, key))
}

/// The token of an `Authorization: Bearer <token>` header, if there is one. (Never the query
/// string: a token there ends up in logs, proxies' and browsers' histories.)
fn bearer(req: &ServiceRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// Who let a request in, as [`check`] found them.
struct Admitted {
    actor: Actor,
    role: Role,
    scope: Scope,
    credential: Option<Credential>,
}

/// The access check [`configure`](crate::configure) wraps every route but the open ones in
/// (see the module's documentation).
pub(crate) async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    served: std::rc::Rc<Vec<(Method, Access)>>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<ApiState>>().cloned();
    let mode = state.as_ref().map_or(AuthMode::Off, |s| s.auth);
    let outcome = match (mode, state) {
        (AuthMode::Keys, Some(state)) => {
            let access = served
                .iter()
                .find(|(method, _)| method == req.method())
                .map_or_else(|| Access::of_unserved(req.method()), |(_, access)| *access);
            let request = Asked {
                action: match access {
                    Access::Needs(action) => Some(action),
                    // An open operation is never behind this check (`configure`).
                    Access::AnyKey | Access::Open => None,
                },
                deployment: req
                    .match_info()
                    .get("deployment_id")
                    .map(|id| id.parse::<i64>().map(DeploymentId).ok()),
                address: req.peer_addr().map(|a| a.ip()),
            };
            check(&state, bearer(&req), request).await
        }
        // With auth off anyone may do anything.
        _ => Ok(Admitted {
            actor: Actor(Actor::ANONYMOUS.to_owned()),
            role: Role::Admin,
            scope: Scope(None),
            credential: None,
        }),
    };
    // Then the caller's rate limit: per key, or per client address with auth off.
    let outcome = outcome.and_then(|admitted| {
        let limit = req
            .app_data::<web::Data<ApiState>>()
            .and_then(|state| state.rate_limit.clone());
        if let Some(limit) = limit {
            let caller = match mode {
                AuthMode::Keys => format!("key:{}", admitted.actor.0),
                AuthMode::Off => format!(
                    "address:{}",
                    req.peer_addr()
                        .map_or_else(String::new, |a| a.ip().to_string())
                ),
            };
            limit.check(&caller)?;
        }
        Ok(admitted)
    });
    match outcome {
        Ok(admitted) => {
            {
                let mut extensions = req.extensions_mut();
                extensions.insert(admitted.actor);
                extensions.insert(admitted.role);
                extensions.insert(admitted.scope);
                if let Some(credential) = admitted.credential {
                    extensions.insert(credential);
                }
            }
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(error) => {
            let response = actix_web::ResponseError::error_response(&error);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// What a request asks, as far as access control cares.
struct Asked {
    /// What it does; `None` for the operations any key may ask ([`Access::AnyKey`]).
    action: Option<Action>,
    /// The deployment its path names: `None` for a route of no deployment, `Some(None)` for
    /// an id that is not a number (the handler's 422, or a limited key's 403).
    deployment: Option<Option<DeploymentId>>,
    /// The client's address, for the budget of failed authentications.
    address: Option<std::net::IpAddr>,
}

/// Who `token` is and whether their role (and deployments) allow the request.
async fn check(
    state: &ApiState,
    token: Option<String>,
    asked: Asked,
) -> Result<Admitted, ApiError> {
    let started = std::time::Instant::now();
    let hash = token.as_deref().map(token_sha256);
    let now = chrono::Utc::now();
    let cached = hash.as_deref().and_then(|hash| state.keys.get(hash));
    // A lookup (or a missing token) from an address that has failed too often is refused
    // before it costs anything; a key found recently passes.
    if cached.is_none()
        && let Some(address) = asked.address
    {
        state.auth_failures.check(address, started)?;
    }
    let key = match (&hash, cached) {
        (_, Some(key)) => Some(key),
        (Some(hash), None) => find_key(state, hash, now).await?,
        (None, None) => None,
    };
    let key = key.filter(|key| key.is_active(now));
    let Some(key) = key else {
        if let Some(address) = asked.address {
            state.auth_failures.spend(address, started);
        }
        return Err(ApiError::Unauthorized(if token.is_none() {
            "Not authenticated: send Authorization: Bearer <token>"
        } else {
            "Invalid API key: unknown, revoked or expired"
        }));
    };
    if let Some(action) = asked.action {
        if !key.role.may(action) {
            return Err(ApiError::Forbidden(format!(
                "The key {:?} has the role {}, which may not {}",
                key.name,
                key.role,
                action.as_str()
            )));
        }
        if !key.reaches(asked.deployment.flatten()) {
            let scope = key
                .deployments
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::Forbidden(format!(
                "The key {:?} is limited to deployment(s) {scope}, and this request is about {}",
                key.name,
                match asked.deployment {
                    Some(Some(id)) => format!("deployment {id}"),
                    Some(None) => "an id that is not a deployment's".to_owned(),
                    None => "every deployment".to_owned(),
                }
            )));
        }
    }
    Ok(Admitted {
        actor: Actor(key.name),
        role: key.role,
        scope: Scope(key.deployments),
        credential: hash.map(Credential),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_to_64_hex_digits() {
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
