//! `/openapi.json`, generated from the handlers, and `/docs`, a Swagger UI explorer served from
//! assets compiled into the binary (no internet needed).

use crate::requests::{DeploymentCreate, DeploymentPatch};
use crate::{ApiState, routes};
use actix_web::{HttpRequest, HttpResponse, web};
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
        routes::root,
        routes::create_deployment,
        routes::list_deployments,
        routes::get_deployment,
        routes::patch_deployment,
        routes::pause_deployment,
        routes::resume_deployment,
        routes::delete_deployment,
        routes::list_nodes,
        routes::get_node,
        routes::retry_node,
        routes::list_telemetry,
        routes::push_telemetry,
        routes::node_series,
        routes::fleet_series,
        routes::bottlenecks,
        routes::list_events,
        routes::stream_events,
        routes::whoami,
        routes::health,
        routes::ready,
        routes::metrics,
        openapi_json,
        explorer,
        crate::ui::page,
    ),
    components(schemas(crate::error::FieldError, crate::error::ErrorDetail))
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
fn guarded(document: &mut Document) {
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

/// OpenAPI document
///
/// This document, with this server's limits.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json(state: Option<web::Data<ApiState>>) -> HttpResponse {
    match state {
        Some(state) => HttpResponse::Ok().json(document(&state)),
        None => {
            let mut document = ApiDoc::openapi();
            guarded(&mut document);
            HttpResponse::Ok().json(document)
        }
    }
}

const EXPLORER: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>netorch API</title>
  <link rel="icon" href="/ui/assets/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="explorer"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#explorer", deepLinking: true });
  </script>
</body>
</html>
"##;

/// API explorer
///
/// An interactive explorer of this document, served without the internet.
#[utoipa::path(
    get, path = "/docs", tag = "service",
    responses((status = 200, description = "An interactive API explorer", content_type = "text/html"))
)]
pub async fn explorer() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(EXPLORER)
}

/// The explorer's script and style sheet.
pub async fn asset(req: HttpRequest) -> HttpResponse {
    let (body, content_type): (&'static [u8], &str) = match req.match_info().get("asset") {
        Some("swagger-ui-bundle.js") => (
            include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
            "application/javascript; charset=utf-8",
        ),
        Some("swagger-ui.css") => (
            include_bytes!("../assets/swagger-ui/swagger-ui.css"),
            "text/css; charset=utf-8",
        ),
        _ => {
            return HttpResponse::NotFound().json(crate::error::ErrorDetail::new("Not Found"));
        }
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(body)
}
