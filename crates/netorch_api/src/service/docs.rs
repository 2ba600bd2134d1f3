//! `/openapi.json`, generated from the handlers, and `/docs`, a Swagger UI explorer served from
//! assets compiled into the binary (no internet needed).

use crate::ApiState;
use crate::http::document::{ApiDoc, document, guarded};
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;

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
            include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
            "application/javascript; charset=utf-8",
        ),
        Some("swagger-ui.css") => (
            include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
            "text/css; charset=utf-8",
        ),
        _ => {
            return HttpResponse::NotFound()
                .json(crate::http::error::ErrorDetail::new("Not Found"));
        }
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(body)
}
