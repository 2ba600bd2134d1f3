//! The OpenAPI document of the whole API, assembled from the resources' operations, with what
//! the shared machinery answers added in code.

use crate::ApiState;
use crate::http::operation::{Access, Effect, Operation, Verb};
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

/// The document's title, description and the schemas every error body refers to.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "netorch",
        description = "Network deployment and telemetry orchestrator: deployments, node \
            lifecycle, telemetry and bottleneck detection."
    ),
    components(schemas(
        crate::http::error::FieldError,
        crate::http::error::ErrorDetail,
        crate::http::error::ValidationError
    ))
)]
struct Base;

/// The OpenAPI document of the whole API: each resource's part, with the responses every
/// operation of a kind has written once (408, 413, 422, 507).
pub struct ApiDoc;

impl OpenApi for ApiDoc {
    fn openapi() -> Document {
        let mut document = Base::openapi();
        for resource in &crate::RESOURCES {
            document.merge((resource.document)());
        }
        shared_responses(&mut document);
        document
    }
}

/// The name of the bearer-token security scheme in the document.
const BEARER: &str = "bearer";

/// The document a server with `state`'s settings serves: [`ApiDoc`] with what each resource
/// changes for the server's limits (the largest deployment in `DeploymentCreate` and
/// `DeploymentPatch`), and, with API keys on, the bearer scheme required (and 401 and 403
/// documented) on every operation but the open ones.
pub fn document(state: &ApiState) -> Document {
    let mut document = ApiDoc::openapi();
    guarded(&mut document);
    if state.auth() == crate::auth::AuthMode::Keys || state.rate_limit.is_some() {
        protect(
            &mut document,
            state.auth() == crate::auth::AuthMode::Keys,
            state.rate_limit.is_some(),
        );
    }
    for resource in &crate::RESOURCES {
        (resource.for_server)(&mut document, state);
    }
    document
}

/// Calls `change` with each operation of the registry and its place in `document`.
fn each_registered(
    document: &mut Document,
    mut change: impl FnMut(&'static Operation, &mut utoipa::openapi::path::Operation),
) {
    for op in crate::RESOURCES.iter().flat_map(|r| r.operations) {
        let operation = document
            .paths
            .paths
            .get_mut(op.path)
            .and_then(|item| op.verb.operation_in(item));
        if let Some(operation) = operation {
            change(op, operation);
        }
    }
}

/// Adds the responses the shared machinery gives, to each operation they apply to: 408 and
/// 413 to every operation with a body (the body reader), 422 to every operation with input
/// (the input reader; "nothing was written" when a body was refused), 507 to every operation
/// that writes (a full database).
fn shared_responses(document: &mut Document) {
    each_registered(document, |op, operation| {
        let has_body = operation.request_body.is_some();
        let has_input = has_body || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
        let responses = &mut operation.responses.responses;
        if has_body {
            responses.insert(
                "408".into(),
                error_response("The body did not arrive within 30 s").into(),
            );
            responses.insert(
                "413".into(),
                error_response(
                    "The body is larger than the server takes (--max-body-bytes, 8 MiB by \
                     default)",
                )
                .into(),
            );
        }
        if has_input {
            let description = match op.effect {
                Effect::Writes(nothing_was) if has_body => {
                    format!("Invalid input; nothing was {nothing_was}")
                }
                _ => "Invalid input".to_owned(),
            };
            responses.insert(
                "422".into(),
                response(&description, "ValidationError").into(),
            );
        }
        if let Effect::Writes(nothing_was) = op.effect {
            responses.insert(
                "507".into(),
                error_response(&format!(
                    "The database is out of space; nothing was {nothing_was}"
                ))
                .into(),
            );
        }
    });
}

/// A response of `description` with an [`ErrorDetail`](crate::ErrorDetail) body.
fn error_response(description: &str) -> utoipa::openapi::Response {
    response(description, "ErrorDetail")
}

/// A response of `description` with a JSON body of the schema `schema`.
fn response(description: &str, schema: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

/// Documents what `crate::guard` and the body reader refuse before any operation runs: 421 on
/// every operation (a `Host` this server does not answer to), 403 on every operation that
/// changes something (a page of an origin not allowed to), 415 on every operation with a body
/// (a body that is not JSON).
pub(crate) fn guarded(document: &mut Document) {
    each_registered(document, |op, operation| {
        let has_body = operation.request_body.is_some();
        let responses = &mut operation.responses.responses;
        responses.insert(
            "421".into(),
            error_response(
                "The Host header names a host this server does not answer to (start it with \
                 --allowed-host NAME)",
            )
            .into(),
        );
        if op.verb != Verb::Get {
            responses.insert(
                "403".into(),
                error_response(
                    "Refused: a page of an origin that may not change anything here \
                     (--cors-origin), or a key whose role or deployments do not allow it",
                )
                .into(),
            );
        }
        // An operation that reads another media type than JSON documents its own 415.
        if has_body {
            responses.entry("415".into()).or_insert_with(|| {
                error_response("The body is sent with a Content-Type other than application/json")
                    .into()
            });
        }
    });
}

/// With `keys`, declares the bearer scheme (so that `/docs` has an Authorize button) as
/// required by every operation but the open ones ([`Access::Open`]), each of which may then
/// answer 401 and 403, and 429 once the client's address has failed to authenticate too
/// often (`--auth-failure-rate`); when `limited`, each of them may answer 429 over the
/// caller's rate limit.
fn protect(document: &mut Document, keys: bool, limited: bool) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    if let Some(components) = document.components.as_mut().filter(|_| keys) {
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
    each_registered(document, |op, operation| {
        if op.access == Access::Open {
            return;
        }
        let responses = &mut operation.responses.responses;
        let too_many = match (keys, limited) {
            (true, true) => Some(
                "Over the caller's rate limit, or too many failed authentications from the \
                 client's address (--auth-failure-rate); with Retry-After",
            ),
            (true, false) => Some(
                "Too many failed authentications from the client's address \
                 (--auth-failure-rate); with Retry-After",
            ),
            (false, true) => Some("Over the caller's rate limit (with Retry-After)"),
            (false, false) => None,
        };
        if let Some(description) = too_many {
            responses.insert("429".into(), error_response(description).into());
        }
        if !keys {
            return;
        }
        responses.insert(
            "401".into(),
            error_response("No token, or one no active key has (with WWW-Authenticate: Bearer)")
                .into(),
        );
        responses.insert(
            "403".into(),
            error_response(
                "The key's role or deployments do not allow this (or, for a change, a page \
                 of an origin that may not)",
            )
            .into(),
        );
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    });
}
