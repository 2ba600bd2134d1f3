//! Mounting netorch's API inside your own actix-web `App`, next to your own routes.
//!
//! The example serves its own `GET /site/status` and netorch's whole API under `/netorch`, on
//! a free loopback port over a SQLite file; it calls both over plain HTTP and stops. The API
//! is told where it listens (`with_allowed_hosts`), so that it answers requests naming that
//! address or `localhost` and refuses a page that rebinds its own name to it (421).
//! `netorch_api::server::serve` would also answer malformed requests in JSON and drain cleanly;
//! a plain `HttpServer`, as here, is enough to mount the routes.
//!
//! ```sh
//! cargo run -p netorch_api --example mount_in_your_app
//! ```

use actix_web::{App, HttpResponse, HttpServer, web};
use netorch_api::guard::HostPolicy;
use netorch_api::{ApiState, DEFAULT_MAX_NODES_PER_DEPLOYMENT};
use netorch_storage::Database;
use std::io::{Read, Write};
use std::net::TcpStream;

/// A route of your own.
async fn site_status() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"site": "lab", "ok": true}))
}

/// One HTTP/1.1 request over a fresh connection; the status code and the body.
fn request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    exchange(address, "localhost", method, path, body)
}

/// A `GET` naming `host` in its `Host` header, as a page of that name would send it.
fn request_as_host(
    address: std::net::SocketAddr,
    host: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    exchange(address, host, "GET", path, "")
}

fn exchange(
    address: std::net::SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Database::connect(&format!(
        "sqlite://{}",
        dir.path().join("netorch.db").display()
    ))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let state = web::Data::new(
        ApiState::new(db, DEFAULT_MAX_NODES_PER_DEPLOYMENT)
            .with_allowed_hosts(HostPolicy::for_listener(address, &[])),
    );

    let server = HttpServer::new(move || {
        App::new()
            .route("/site/status", web::get().to(site_status))
            .service(
                web::scope("/netorch")
                    .app_data(state.clone())
                    .configure(netorch_api::configure),
            )
    })
    .workers(1)
    .listen(listener)?;
    let server = server.run();
    let handle = server.handle();
    let serving = actix_web::rt::spawn(server);

    // The HTTP calls block, so they run off the server's thread.
    let calls =
        actix_web::rt::task::spawn_blocking(move || -> std::io::Result<Vec<(u16, String)>> {
            Ok(vec![
                request(address, "GET", "/site/status", "")?,
                request(
                    address,
                    "POST",
                    "/netorch/deployments",
                    r#"{"name": "edge", "target_node_count": 3}"#,
                )?,
                request(address, "GET", "/netorch/deployments/1/nodes?limit=2", "")?,
                request(address, "GET", "/netorch/deployments/1/nodes/node-003", "")?,
                request_as_host(address, "rebound.example", "/netorch/deployments")?,
            ])
        })
        .await??;
    for (status, body) in &calls {
        println!("{status} {body}");
    }
    handle.stop(true).await;
    serving.await??;

    let statuses: Vec<u16> = calls.iter().map(|(status, _)| *status).collect();
    if statuses != [200, 201, 200, 200, 421] {
        return Err(format!("unexpected statuses {statuses:?}").into());
    }
    Ok(())
}
