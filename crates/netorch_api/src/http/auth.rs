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
//! Keys are made, listed and revoked in `netorch_service::keys`; a request's key is found
//! here by its token's SHA-256.

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

pub use netorch_service::keys::{TOKEN_PREFIX, token_sha256};

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
/// refused within this long by every server process (and so within a second of `keys revoke`
/// everywhere, with room for a busy machine; the cluster check measures it through HAProxy).
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_millis(500);

/// Keys recently found by their token's hash, so that a burst of requests with one key reads
/// the database twice a second, not once per request (which halved the request rate). Only keys
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
        Ok(netorch_service::keys::authenticate(conn, &lookup, now)?)
    })
    .await?;
    if let Some(key) = &found {
        state.keys.put(hash.to_owned(), key.clone());
    }
    Ok(found)
}

/// The token of the `Authorization` header, if there is one: `Bearer <token>`, InfluxDB's
/// `Token <token>`, or `Basic` with the token as the password (InfluxDB 1's clients; the user
/// name is not used). Without the header, the `p` query parameter of InfluxDB 1's `/write` only
/// ([`QUERY_PASSWORD_PATH`]). Never the query string elsewhere: a token there ends up in
/// logs, proxies' and browsers' histories.
fn bearer(req: &ServiceRequest) -> Option<String> {
    match req.headers().get(actix_web::http::header::AUTHORIZATION) {
        Some(value) => token_of(value.to_str().ok()?),
        None if req.path() == QUERY_PASSWORD_PATH => query_password(req.query_string()),
        None => None,
    }
}

/// The one path whose clients send the key in the query: InfluxDB 1's write, whose `u`/`p`
/// parameters Telegraf's `outputs.influxdb` and the `influxdb` client use when told a password
/// without basic auth. The access log redacts `p` (`observe::is_secret_name`).
const QUERY_PASSWORD_PATH: &str = "/write";

/// The `p` parameter of a query string, decoded, when present and not empty.
fn query_password(query: &str) -> Option<String> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query).ok()?;
    pairs
        .into_inner()
        .into_iter()
        .find(|(name, _)| name == "p")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The token an `Authorization` header's value carries (see [`bearer`]).
fn token_of(value: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        credentials.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        text.split_once(':')?.1.to_owned()
    } else {
        return None;
    };
    (!token.is_empty()).then_some(token)
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
                per_item: matches!(access, Access::NeedsForEachItem(_)),
                action: match access {
                    Access::Needs(action) | Access::NeedsForEachItem(action) => Some(action),
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
    /// Whether the handler checks a limited key's deployments item by item
    /// ([`Access::NeedsForEachItem`]).
    per_item: bool,
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
            "Not authenticated: send Authorization: Bearer <token> (or Token <token>, or the \
             token as the basic auth password)"
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
        if !asked.per_item && !key.reaches(asked.deployment.flatten()) {
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
    use super::token_of;

    #[test]
    fn a_token_comes_as_bearer_token_or_a_basic_password() {
        assert_eq!(token_of("Bearer ntk_abc").as_deref(), Some("ntk_abc"));
        assert_eq!(token_of("Token ntk_abc").as_deref(), Some("ntk_abc"));
        // "telegraf:ntk_abc", and a password holding a colon.
        assert_eq!(
            token_of("Basic dGVsZWdyYWY6bnRrX2FiYw==").as_deref(),
            Some("ntk_abc")
        );
        assert_eq!(token_of("Basic dTphOmI=").as_deref(), Some("a:b"));
        for refused in [
            "Bearer ",
            "Digest ntk_abc",
            "ntk_abc",
            "Basic !!!",
            "Basic bnRrX2FiYw==",
            "Basic dTo=",
        ] {
            assert_eq!(token_of(refused), None, "{refused}");
        }
    }
}
