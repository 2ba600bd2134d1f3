//! What every request must show before anything else looks at it: a `Host` this server answers
//! to, and, for a request that changes something, an `Origin` (if the browser sent one) allowed
//! to change it.
//!
//! Loopback is not a trust boundary for browsers: any page the operator opens can send requests
//! to `127.0.0.1`. A page of another origin can send a "simple" `POST` (a form, or `fetch` with a
//! `text/plain` body) without a preflight, so the server itself must refuse it: 403 when the
//! `Origin` is neither this server's own nor one given with `--cors-origin`. A page that rebinds
//! its own name to `127.0.0.1` (DNS rebinding) is same-origin to the browser and can read and
//! delete; its requests still carry its own name in `Host`, so a `Host` that is not the bound
//! address, `localhost` or a name given with `--allowed-host` is refused with 421.
//! (`docs/SECURITY.md` has the whole threat model; the body's content type is checked where
//! bodies are read, `crate::http::input`.)
//!
//! [`check`] runs in front of every route [`crate::configure`] registers, open or not, with
//! the policies of the [`ApiState`].

use crate::ApiState;
use crate::http::error::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web;
use std::net::{IpAddr, SocketAddr};

/// The names a `Host` header may carry (its port aside: a proxy or a port forward may change
/// it, and a rebinding page cannot choose a name that is not its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    /// The address literals taken: the bound one, or any (bound to every address).
    addresses: Addresses,
    /// Names taken besides `localhost`, lower case, without a trailing dot.
    names: Vec<String>,
    /// `--allowed-host '*'`: every host.
    any: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Addresses {
    /// Only this one (the bound address).
    Exactly(IpAddr),
    /// Any address literal: the server listens on every address of the machine, and an
    /// address literal cannot be rebound to another machine's page.
    Any,
}

impl HostPolicy {
    /// For a server listening on `bound`: its address (any address literal when it is bound to
    /// every address, `0.0.0.0` or `::`), `localhost`, and `allowed` (names from
    /// `--allowed-host`; `*` takes every host).
    pub fn for_listener(bound: SocketAddr, allowed: &[String]) -> Self {
        let addresses = if bound.ip().is_unspecified() {
            Addresses::Any
        } else {
            Addresses::Exactly(bound.ip())
        };
        HostPolicy {
            addresses,
            // A port given with a name is not compared, as for the Host header.
            names: allowed
                .iter()
                .map(|name| normalize(strip_port(name)))
                .collect(),
            any: allowed.iter().any(|name| name == "*"),
        }
    }

    /// `localhost` and any address literal: what an embedding program gets until it says where
    /// it listens ([`ApiState::with_allowed_hosts`]).
    pub fn local() -> Self {
        HostPolicy {
            addresses: Addresses::Any,
            names: Vec::new(),
            any: false,
        }
    }

    /// Every host (`--allowed-host '*'`): for a server behind a proxy that checks names itself.
    pub fn any() -> Self {
        HostPolicy {
            any: true,
            ..Self::local()
        }
    }

    /// Whether the host part of `host` (a `Host` header: a name or address, maybe a port) is
    /// one this policy takes.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        // Compared without a copy: this runs on every request.
        let name = strip_port(host).trim().trim_end_matches('.');
        if name.eq_ignore_ascii_case("localhost")
            || self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
        {
            return true;
        }
        let address = name
            .strip_prefix('[')
            .and_then(|v6| v6.strip_suffix(']'))
            .unwrap_or(name)
            .parse::<IpAddr>();
        match (&self.addresses, address) {
            (Addresses::Any, Ok(_)) => true,
            (Addresses::Exactly(bound), Ok(address)) => *bound == address,
            (_, Err(_)) => false,
        }
    }

    /// What the policy takes, for the 421's message.
    fn describe(&self) -> String {
        let mut taken = vec!["localhost".to_owned()];
        taken.push(match self.addresses {
            Addresses::Exactly(IpAddr::V6(address)) => format!("[{address}]"),
            Addresses::Exactly(address) => address.to_string(),
            Addresses::Any => "any address".to_owned(),
        });
        taken.extend(self.names.iter().cloned());
        taken.join(", ")
    }
}

/// A host name as compared: lower case, without the trailing dot of a fully qualified name.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `host` without its `:port` (an IPv6 literal keeps its brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The origins whose pages may change things here besides this server's own: those of
/// `--cors-origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// As configured, for the CORS middleware ([`crate::cors`]).
    configured: Vec<String>,
    /// `scheme://host[:port]`, lower case, without a trailing slash.
    origins: Vec<String>,
    /// `--cors-origin '*'`.
    any: bool,
}

impl OriginPolicy {
    /// The origins of `--cors-origin` (each `scheme://host[:port]`, or `*` for any).
    pub fn new(origins: &[String]) -> Self {
        OriginPolicy {
            configured: origins.to_vec(),
            origins: origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            any: origins.iter().any(|o| o == "*"),
        }
    }

    /// The origins as configured (`--cors-origin`).
    pub fn configured(&self) -> &[String] {
        &self.configured
    }

    /// Whether a page of `origin` may send a request that changes something to a server the
    /// request calls `host`: when it is this server's own origin (the dashboard's) or one of
    /// the configured ones. `null` (a sandboxed page, a redirect) is nobody's.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.any || self.origins.contains(&origin) {
            return true;
        }
        host.is_some_and(|host| same_authority(&origin, host))
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host and port of a `Host` header: a
/// port absent from the header is the scheme's default (a proxy in front on 80 or 443).
fn same_authority(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let split = |text: &str| -> (String, Option<String>) {
        let name = strip_port(text);
        let port = text[name.len()..].strip_prefix(':').map(str::to_owned);
        (normalize(name), port)
    };
    let (origin_name, origin_port) = split(authority);
    let (host_name, host_port) = split(host);
    let origin_port = origin_port.unwrap_or_else(|| default_port.to_owned());
    origin_name == host_name
        && match host_port {
            Some(port) => port == origin_port,
            None => origin_port == default_port,
        }
}

/// Whether `method` can change something (everything but reads and preflights).
fn changes_something(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The host a request names: the authority of an absolute request target, else `Host`.
fn requested_host(req: &ServiceRequest) -> Result<Option<&str>, ApiError> {
    if let Some(authority) = req.uri().authority() {
        return Ok(Some(authority.as_str()));
    }
    match req.headers().get(header::HOST) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            ApiError::MisdirectedHost("The Host header is not a host name".to_owned())
        }),
    }
}

/// The checks of this module, as a middleware: [`crate::configure`] wraps every route in it.
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<ApiState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    match admit(&state, &req) {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(error) => {
            let response = actix_web::ResponseError::error_response(&error);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Whether `req` passes the checks: its host, then, if it changes something, its origin.
fn admit(state: &ApiState, req: &ServiceRequest) -> Result<(), ApiError> {
    let host = requested_host(req)?;
    // No Host at all (HTTP/1.0): no browser sends that, so no page can be behind it.
    if let Some(host) = host.filter(|host| !state.hosts.allows(host)) {
        let shown: String = strip_port(host).chars().take(100).collect();
        return Err(ApiError::MisdirectedHost(format!(
            "This server does not answer to the host {shown:?} (it answers to {}): if that is \
             its name, start it with --allowed-host {shown}",
            state.hosts.describe()
        )));
    }
    if !changes_something(req.method()) {
        return Ok(());
    }
    match req.headers().get(header::ORIGIN) {
        // Not from a browser page (curl, collectors, scripts), or a browser's same-origin
        // request that carries none.
        None => Ok(()),
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("null");
            if state.origins.allows(origin, host) {
                Ok(())
            } else {
                let shown: String = origin.chars().take(100).collect();
                Err(ApiError::Forbidden(format!(
                    "A page of {shown} may not change anything on this server: only this \
                     server's own pages and the origins of --cors-origin may"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(address: &str) -> SocketAddr {
        address.parse().expect("address")
    }

    #[test]
    fn a_loopback_server_answers_to_its_address_and_localhost_only() {
        let policy = HostPolicy::for_listener(bound("127.0.0.1:8000"), &[]);
        for taken in [
            "127.0.0.1:8000",
            "127.0.0.1",
            "localhost:8000",
            "LOCALHOST",
            "localhost.:8000",
            "127.0.0.1:9999",
        ] {
            assert!(policy.allows(taken), "{taken}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:8000",
            "127.0.0.2:8000",
            "localhost.attacker.example",
            "[::1]:8000",
            "",
            "127.0.0.1.nip.io",
        ] {
            assert!(!policy.allows(refused), "{refused}");
        }
        let v6 = HostPolicy::for_listener(bound("[::1]:8000"), &[]);
        assert!(v6.allows("[::1]:8000") && v6.allows("[::1]"));
        assert!(!v6.allows("127.0.0.1:8000"));
    }

    #[test]
    fn names_are_taken_when_given_and_any_address_when_bound_to_all() {
        let policy = HostPolicy::for_listener(
            bound("0.0.0.0:8000"),
            &[
                "NetOrch.Example.COM".to_owned(),
                "svc.internal:8000".to_owned(),
            ],
        );
        assert!(policy.allows("netorch.example.com:443"));
        assert!(policy.allows("svc.internal") && policy.allows("svc.internal:9000"));
        assert!(policy.allows("10.1.2.3:8000"));
        assert!(policy.allows("[fe80::1]:8000"));
        assert!(!policy.allows("other.example.com"));
        let any = HostPolicy::for_listener(bound("127.0.0.1:8000"), &["*".to_owned()]);
        assert!(any.allows("anything.example"));
        assert!(HostPolicy::any().allows("anything.example"));
        assert!(HostPolicy::local().allows("192.168.1.9"));
        assert!(!HostPolicy::local().allows("intranet"));
    }

    #[test]
    fn pages_may_change_things_from_this_server_or_a_configured_origin() {
        let none = OriginPolicy::new(&[]);
        assert!(none.allows("http://127.0.0.1:8000", Some("127.0.0.1:8000")));
        assert!(none.allows("http://localhost:8000", Some("localhost:8000")));
        // Behind a TLS proxy on the default port.
        assert!(none.allows("https://netorch.example", Some("netorch.example")));
        assert!(none.allows("http://netorch.example", Some("netorch.example:80")));
        for (origin, host) in [
            ("https://evil.example", Some("127.0.0.1:8000")),
            ("http://127.0.0.1:8001", Some("127.0.0.1:8000")),
            ("http://127.0.0.1", Some("127.0.0.1:8000")),
            ("null", Some("127.0.0.1:8000")),
            ("http://127.0.0.1:8000", None),
            ("file://", Some("127.0.0.1:8000")),
        ] {
            assert!(!none.allows(origin, host), "{origin} {host:?}");
        }
        let some = OriginPolicy::new(&["https://grafana.example:3000/".to_owned()]);
        assert!(some.allows("https://grafana.example:3000", Some("127.0.0.1:8000")));
        assert!(!some.allows("https://grafana.example", Some("127.0.0.1:8000")));
        assert!(OriginPolicy::new(&["*".to_owned()]).allows("https://x.example", None));
    }

    #[test]
    fn only_requests_that_change_something_need_an_allowed_origin() {
        assert!(!changes_something(&Method::GET));
        assert!(!changes_something(&Method::OPTIONS));
        for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            assert!(changes_something(&method), "{method}");
        }
        let odd = Method::from_bytes(b"PURGE").expect("a token");
        assert!(changes_something(&odd));
    }
}
