//! What every request passes through first and last: its id ([`crate::request_id`]), its
//! count, status and latency in the metrics (by route template and a closed set of methods,
//! never the raw path or method), the access log line (bounded, tokens redacted), and JSON for
//! any error another layer answered in some other shape (a browser's preflight that CORS
//! refused, for one).

use crate::ApiState;
use crate::http::error::ErrorDetail;
use crate::request_id;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use std::time::Instant;

/// The route label of a request no route matched (404s of unknown paths): one label for all
/// of them, so scanners cannot grow the number of series.
const UNMATCHED: &str = "unmatched";

/// The most bytes of a request's target (path and query) an access log line copies.
pub const LOGGED_TARGET_BYTES: usize = 512;

/// The most characters of a method a log line copies (the longest standard one is 7).
const LOGGED_METHOD_CHARS: usize = 16;

/// The most bytes of another layer's error body carried into the JSON that replaces it.
const FOREIGN_ERROR_BYTES: usize = 1024;

/// `target` (a request's path and query) as an access log line shows it: API tokens and the
/// values of query parameters named like secrets replaced by `***`, and cut to
/// [`LOGGED_TARGET_BYTES`]. No route takes a token in the query; a client that sends one
/// anyway must not find it in the logs.
pub fn loggable_target(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut shown = redact_tokens(path);
    if let Some(query) = query {
        shown.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_name(name) => format!("{name}=***"),
                _ => redact_tokens(pair),
            })
            .collect();
        shown.push_str(&pairs.join("&"));
    }
    if shown.len() > LOGGED_TARGET_BYTES {
        let mut cut = LOGGED_TARGET_BYTES;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        let total = target.len();
        shown.truncate(cut);
        shown.push_str(&format!("...({total} bytes)"));
    }
    shown
}

/// Whether a query parameter's name says it holds a secret (`p` is InfluxDB 1's password).
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name == "p" {
        return true;
    }
    [
        "token",
        "key",
        "secret",
        "password",
        "passwd",
        "auth",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// `text` with every API token ([`crate::auth::TOKEN_PREFIX`] and what follows it) replaced by
/// the prefix and `***`.
fn redact_tokens(text: &str) -> String {
    let prefix = crate::auth::TOKEN_PREFIX;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at + prefix.len()]);
        out.push_str("***");
        rest = rest[at + prefix.len()..].trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    }
    out.push_str(rest);
    out
}

/// `method` as a log line shows it: at most [`LOGGED_METHOD_CHARS`] characters, nothing that
/// could break the line.
fn loggable_method(method: &str) -> String {
    method
        .chars()
        .take(LOGGED_METHOD_CHARS)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Whether `headers` say the body is JSON.
fn is_json_body(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::http::input::is_json)
}

/// Whether a response is one of the dashboard's pages (HTML): its "not found" page is answered
/// 404 and stays the page a browser shows, where any other error becomes the API's JSON.
fn is_dashboard_page(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// An error of `status` as the API answers them, `{"detail", "request_id": id}`, keeping
/// `headers` (those another layer set: `Allow`, CORS's) but the body's own.
fn json_error(
    status: actix_web::http::StatusCode,
    detail: String,
    headers: &header::HeaderMap,
    id: &str,
) -> HttpResponse {
    let mut json = HttpResponse::build(status).json(ErrorDetail {
        detail: detail.into(),
        request_id: Some(id.to_owned()),
    });
    for (name, value) in headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().append(name.clone(), value.clone());
        }
    }
    json
}

/// `response`, an error another layer answered in some other shape than the API's JSON, with
/// its text (or its status's reason) as the `detail` of [`json_error`].
async fn as_json_error<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    id: &str,
) -> ServiceResponse<BoxBody> {
    let (req, response) = response.into_parts();
    let status = response.status();
    let headers = response.headers().clone();
    let text = actix_web::body::to_bytes_limited(response.into_body(), FOREIGN_ERROR_BYTES)
        .await
        .ok()
        .and_then(Result::ok)
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    ServiceResponse::new(req, json_error(status, text, &headers, id))
}

/// The middleware: wrap the whole app in it, outside every other layer but a path
/// normalizer (whose rewritten path it must see to name the route), so that every response
/// (errors of the other middleware too) carries the request id. The server does:
/// `App::new().wrap(actix_web::middleware::from_fn(netorch_api::observe))`.
pub async fn observe<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<ApiState>>().cloned();
    let sent = req
        .headers()
        .get(request_id::HEADER)
        .and_then(|value| value.to_str().ok());
    let id = request_id::accept_or_generate(sent);
    let header = HeaderName::from_static(request_id::HEADER);
    // Safe characters only (request_id::accept_or_generate), so this always converts.
    let value = HeaderValue::from_str(&id).ok();
    if let Some(value) = value.clone() {
        // Seen by the handlers as if the client had sent it.
        req.headers_mut().insert(header.clone(), value);
    }
    let started = Instant::now();
    let in_flight = state.as_ref().map(|s| s.metrics.http_in_flight());
    let access_log = state.as_ref().is_some_and(|s| s.access_log);
    let method = req.method().clone();
    // Only the access log needs these strings.
    let (target, peer) = if access_log {
        let target = loggable_target(
            req.uri()
                .path_and_query()
                .map_or_else(|| req.path(), |p| p.as_str()),
        );
        let peer = req
            .peer_addr()
            .map_or_else(|| "-".to_owned(), |a| a.ip().to_string());
        (target, peer)
    } else {
        (String::new(), String::new())
    };
    // The route template, matched once, before the call (the resource map matches the path;
    // the server normalizes trailing slashes outside this middleware): an error an inner layer
    // returns as `Err` leaves no request to ask afterwards.
    let route = req.match_pattern();
    let outcome = request_id::scope(id.clone(), next.call(req)).await;
    drop(in_flight);
    let (result, status) = match outcome {
        Ok(response) => {
            let foreign = response.status().as_u16() >= 400
                && !is_json_body(response.headers())
                && !is_dashboard_page(response.headers());
            let mut response = if foreign {
                as_json_error(response, &id).await.map_into_right_body()
            } else {
                response.map_into_left_body()
            };
            if let Some(value) = value {
                response.headers_mut().insert(header, value);
            }
            let status = response.status().as_u16();
            (Ok(response), status)
        }
        Err(error) => {
            // Made into its response here, with the request's id in the body and header,
            // rather than by actix later, outside the id's scope; in the API's JSON whoever
            // made the error.
            let made = request_id::sync_scope(id.clone(), || error.error_response());
            let mut response = if is_json_body(made.headers()) {
                made
            } else {
                json_error(made.status(), error.to_string(), made.headers(), &id)
            };
            if let Some(value) = value {
                response.headers_mut().insert(header, value);
            }
            let status = response.status().as_u16();
            let error = actix_web::error::InternalError::from_response(error, response);
            (Err(error.into()), status)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    if let Some(state) = &state {
        state
            .metrics
            .http_request(route, method.as_str(), status, seconds);
    }
    if access_log {
        // Method, path and query (bounded, tokens redacted), status, time: never a header
        // (the token is one).
        let method = loggable_method(method.as_str());
        log::info!(
            target: "netorch::access",
            request_id = id.as_str(), method = method.as_str(), route = route, status = status,
            duration_ms = seconds * 1e3;
            "{peer} \"{method} {target}\" {status} {:.3} ms",
            seconds * 1e3
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_targets_hide_tokens_and_are_bounded() {
        let token = format!("ntk_{}", "ab12".repeat(16));
        assert_eq!(
            loggable_target(&format!("/deployments?token={token}&limit=5")),
            "/deployments?token=***&limit=5"
        );
        assert_eq!(
            loggable_target(&format!(
                "/deployments?access_token=x&api_key=y&Auth={token}"
            )),
            "/deployments?access_token=***&api_key=***&Auth=***"
        );
        assert_eq!(
            loggable_target(&format!("/deployments/{token}/nodes?q={token}x")),
            "/deployments/ntk_***/nodes?q=ntk_***"
        );
        // InfluxDB 1's password, whatever it holds (a key made elsewhere need not start ntk_).
        assert_eq!(
            loggable_target("/write?db=x&u=me&p=hunter2&precision=s"),
            "/write?db=x&u=me&p=***&precision=s"
        );
        assert_eq!(
            loggable_target("/deployments/1/events?after=3"),
            "/deployments/1/events?after=3"
        );
        let long = format!("/{}", "é".repeat(60_000));
        let shown = loggable_target(&long);
        assert!(shown.len() < LOGGED_TARGET_BYTES + 32, "{}", shown.len());
        assert!(
            shown.ends_with(&format!("...({} bytes)", long.len())),
            "{shown}"
        );
        assert_eq!(
            loggable_method(&"X".repeat(30_000)).len(),
            LOGGED_METHOD_CHARS
        );
        assert_eq!(loggable_method("GE\nT"), "GE?T");
    }
}
