use crate::http::error::ErrorDetail;
use actix_web::HttpResponse;

/// 404 for paths the API does not serve, in the contract's shape.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(ErrorDetail::new("Not Found"))
}

/// 405 for a method a path does not serve, with the `Allow` header RFC 9110 requires.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .json(ErrorDetail::new("Method Not Allowed"))
}
