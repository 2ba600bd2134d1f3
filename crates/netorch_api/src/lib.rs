//! netorch's HTTP API on actix-web.
//!
//! Mount it in any actix `App`: give it an [`ApiState`] and call [`configure`]:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! # async fn run() -> std::io::Result<()> {
//! let db = netorch_storage::Database::connect("sqlite://netorch.db").expect("database");
//! let state = web::Data::new(netorch_api::ApiState::new(db, 1000));
//! HttpServer::new(move || {
//!     App::new()
//!         .app_data(state.clone())
//!         .configure(netorch_api::configure)
//!         .default_service(web::to(netorch_api::not_found))
//! })
//! .bind("127.0.0.1:8000")?
//! .run()
//! .await
//! # }
//! ```
//!
//! Every path of the contract (`shared/spec/API.md`) is here, with its JSON shapes, its
//! status codes and its error bodies: 404 `{"detail": ...}`, 422 with FastAPI's list of
//! `{"type", "loc", "msg", "input"}` for any invalid body, query or path input, 409 with
//! `current_state` and `allowed_actions`. Database work runs on actix's blocking pool, never on
//! its async workers. `/openapi.json` is generated from the handlers and `/docs` serves an
//! explorer from assets compiled into the binary, so neither needs the internet.
//!
//! Only this crate knows HTTP and the API's JSON shapes.

mod docs;
mod error;
mod routes;
mod types;
mod validate;

use actix_web::web;
use netorch_storage::Database;

pub use docs::ApiDoc;
pub use error::{ApiError, FieldError};
pub use routes::{method_not_allowed, not_found};

/// The most samples one push may carry.
pub const MAX_PUSHED_SAMPLES: usize = 10_000;
/// The largest request body accepted (a full push of 10,000 samples is about 1.2 MB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What the handlers need: the database and the server's limits.
#[derive(Debug, Clone)]
pub struct ApiState {
    db: Database,
    max_nodes_per_deployment: u32,
}

impl ApiState {
    /// The state for a server on `db` that creates deployments of at most
    /// `max_nodes_per_deployment` nodes (the original's limit is 1000).
    pub fn new(db: Database, max_nodes_per_deployment: u32) -> Self {
        ApiState {
            db,
            max_nodes_per_deployment: max_nodes_per_deployment.max(1),
        }
    }
}

/// Registers every route of the API. The app must hold a `web::Data<ApiState>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::*;
    use web::{delete, get, post, resource};
    let resource = |path: &str| resource(path).default_service(web::to(method_not_allowed));
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .service(resource("/").route(get().to(root)))
        .service(
            resource("/deployments")
                .route(get().to(list_deployments))
                .route(post().to(create_deployment)),
        )
        .service(
            resource("/deployments/{deployment_id}")
                .route(get().to(get_deployment))
                .route(delete().to(delete_deployment)),
        )
        .service(resource("/deployments/{deployment_id}/nodes").route(get().to(list_nodes)))
        .service(resource("/deployments/{deployment_id}/nodes/{node_id}").route(get().to(get_node)))
        .service(
            resource("/deployments/{deployment_id}/nodes/{node_id}/retry")
                .route(post().to(retry_node)),
        )
        .service(
            resource("/deployments/{deployment_id}/telemetry")
                .route(get().to(list_telemetry))
                .route(post().to(push_telemetry)),
        )
        .service(resource("/deployments/{deployment_id}/bottlenecks").route(get().to(bottlenecks)))
        .service(resource("/deployments/{deployment_id}/events").route(get().to(list_events)))
        .service(resource("/health").route(get().to(health)))
        .service(resource("/ready").route(get().to(ready)))
        .service(resource("/openapi.json").route(get().to(docs::openapi_json)))
        .service(resource("/docs").route(get().to(docs::explorer)))
        .service(resource("/docs/{asset}").route(get().to(docs::asset)));
}
