//! The OpenAPI document of the whole API, assembled from the resources' operations, with what
//! the shared machinery answers added in code.

use crate::ApiState;
use crate::deployments::{DeploymentCreate, DeploymentPatch};
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

/// The OpenAPI document of the whole API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "netorch",
        description = "Network deployment and telemetry orchestrator: deployments, node \
            lifecycle, telemetry and bottleneck detection."
    ),
    paths(
        crate::service::root,
        crate::deployments::create_deployment,
        crate::deployments::list_deployments,
        crate::deployments::get_deployment,
        crate::deployments::patch_deployment,
        crate::deployments::pause_deployment,
        crate::deployments::resume_deployment,
        crate::deployments::delete_deployment,
        crate::nodes::list_nodes,
        crate::nodes::get_node,
        crate::nodes::retry_node,
        crate::telemetry::list_telemetry,
        crate::telemetry::push_telemetry,
        crate::series::node_series,
        crate::series::fleet_series,
        crate::bottlenecks::bottlenecks,
        crate::events::list_events,
        crate::events::stream::stream_events,
        crate::keys::whoami,
        crate::service::health,
        crate::service::ready,
        crate::service::metrics,
        crate::service::docs::openapi_json,
        crate::service::docs::explorer,
        crate::ui::page,
    ),
    components(schemas(crate::http::error::FieldError, crate::http::error::ErrorDetail))
)]
pub struct ApiDoc;

/// The name of the bearer-token security scheme in the document.
const BEARER: &str = "bearer";

/// The document a server with `state`'s settings serves: [`ApiDoc`] with the configured
/// largest deployment in `DeploymentCreate` and `DeploymentPatch`, and, with API keys on, the
/// bearer scheme required (and 401 and 403 documented) on every operation but the open ones.
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
    if let Some(components) = document.components.as_mut() {
        components.schemas.insert(
            DeploymentCreate::name().into_owned(),
            DeploymentCreate::schema_for(state.max_nodes_per_deployment()).into(),
        );
        components.schemas.insert(
            DeploymentPatch::name().into_owned(),
            DeploymentPatch::schema_for(state.max_nodes_per_deployment()).into(),
        );
    }
    document
}

/// A response of `description` with an [`ErrorDetail`](crate::ErrorDetail) body.
fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorDetail")))
                .build(),
        )
        .build()
}

/// Documents what `crate::guard` and the body reader refuse before any operation runs: 421 on
/// every operation (a `Host` this server does not answer to), 403 on every operation that
/// changes something (a page of an origin not allowed to), 415 on every operation with a body
/// (a body that is not JSON).
pub(crate) fn guarded(document: &mut Document) {
    for item in document.paths.paths.values_mut() {
        let operations = [
            (&mut item.get, false),
            (&mut item.post, true),
            (&mut item.put, true),
            (&mut item.patch, true),
            (&mut item.delete, true),
        ];
        for (operation, changes) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            let has_body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            responses.insert(
                "421".into(),
                error_response(
                    "The Host header names a host this server does not answer to (start it \
                     with --allowed-host NAME)",
                )
                .into(),
            );
            if changes {
                responses.insert(
                    "403".into(),
                    error_response(
                        "Refused: a page of an origin that may not change anything here \
                         (--cors-origin), or a key whose role or deployments do not allow it",
                    )
                    .into(),
                );
            }
            if has_body {
                responses.insert(
                    "415".into(),
                    error_response(
                        "The body is sent with a Content-Type other than application/json",
                    )
                    .into(),
                );
            }
        }
    }
}

/// With `keys`, declares the bearer scheme (so that `/docs` has an Authorize button) as
/// required by every operation outside [`crate::auth::OPEN_PATHS`], each of which may then
/// answer 401 and 403; when `limited`, each of them may answer 429.
fn protect(document: &mut Document, keys: bool, limited: bool) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    if let Some(components) = document.components.as_mut().filter(|_| keys) {
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
    for (path, item) in document.paths.paths.iter_mut() {
        if crate::auth::OPEN_PATHS.contains(&path.as_str()) {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            if limited {
                responses.insert(
                    "429".into(),
                    error_response("Over the caller's rate limit (with Retry-After)").into(),
                );
            }
            if !keys {
                continue;
            }
            responses.insert(
                "401".into(),
                error_response(
                    "No token, or one no active key has (with WWW-Authenticate: Bearer)",
                )
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
        }
    }
}
