//! What every request passes through first and last: its id ([`crate::request_id`]), its
//! count, status and latency in the metrics (by route template, never the raw path), and the
//! access log line.

use crate::ApiState;
use crate::request_id;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use std::time::Instant;

/// The route label of a request no route matched (404s of unknown paths): one label for all
/// of them, so scanners cannot grow the number of series.
const UNMATCHED: &str = "unmatched";

/// The middleware: wrap the whole app in it, outside every other layer but a path
/// normalizer (whose rewritten path it must see to name the route), so that every response
/// (errors of the other middleware too) carries the request id. The server does:
/// `App::new().wrap(actix_web::middleware::from_fn(netorch_api::observe))`.
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
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
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
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
        Ok(mut response) => {
            if let Some(value) = value {
                response.headers_mut().insert(header, value);
            }
            let status = response.status().as_u16();
            (Ok(response), status)
        }
        Err(error) => {
            // Made into its response here, with the request's id in the body and header,
            // rather than by actix later, outside the id's scope.
            let mut response = request_id::sync_scope(id.clone(), || error.error_response());
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
        // Method, path and query, status, time: never a header (the token is one).
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
