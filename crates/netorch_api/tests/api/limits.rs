//! Limits: a caller's rate (429 with Retry-After), the request body's size (413 before it is
//! read whole), and CORS, on both backends.

use crate::common::*;
use netorch_api::auth::AuthMode;
use netorch_api::limits::RateLimit;
use netorch_domain::Role;

fn request(method: &str, uri: &str, token: &str) -> test::TestRequest {
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
    let req = test::TestRequest::default().method(method).uri(uri);
    if token.is_empty() {
        req
    } else {
        req.insert_header(("authorization", format!("Bearer {token}")))
    }
}

fn each_caller_gets_its_burst_then_429_with_retry_after(t: &TestDatabase) {
    let (a, b) = {
        let mut conn = t.db.get().expect("connection");
        let now = Utc::now();
        let (a, _) = create_key(&mut conn, "a", Role::Viewer, None, None, now).expect("key");
        let (b, _) = create_key(&mut conn, "b", Role::Viewer, None, None, now).expect("key");
        (a, b)
    };
    // One request every 100 s after a burst of 2: nothing refills during the test.
    let limit = RateLimit::new(0.01, 2).expect("limit");
    with_state!(
        ApiState::new(t.db.clone(), 10)
            .with_auth(AuthMode::Keys)
            .with_rate_limit(limit),
        |app| {
            for _ in 0..2 {
                let (status, _) = call(&app, request("GET", "/deployments", &a).to_request()).await;
                assert_eq!(status, StatusCode::OK);
            }
            let response =
                test::call_service(&app, request("GET", "/deployments", &a).to_request()).await;
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            let retry_after: u64 = response
                .headers()
                .get("retry-after")
                .expect("retry-after")
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=100).contains(&retry_after), "{retry_after}");
            let body: Value = test::read_body_json(response).await;
            assert!(body["detail"].is_string());
            // Another key has its own budget; the open paths are never limited.
            let (status, _) = call(&app, request("GET", "/deployments", &b).to_request()).await;
            assert_eq!(status, StatusCode::OK);
            let (status, _) = call(&app, request("GET", "/health", &a).to_request()).await;
            assert_eq!(status, StatusCode::OK);
            let (_, doc) = call(&app, request("GET", "/openapi.json", "").to_request()).await;
            assert!(doc["paths"]["/deployments"]["get"]["responses"]["429"].is_object());
        }
    )
}

/// With auth off, the caller is the client address.
fn with_keys_off_each_client_address_gets_its_burst(t: &TestDatabase) {
    let limit = RateLimit::new(0.01, 2).expect("limit");
    with_state!(
        ApiState::new(t.db.clone(), 10).with_rate_limit(limit),
        |app| {
            let from = |address: &str| {
                request("GET", "/deployments", "")
                    .peer_addr(address.parse().expect("address"))
                    .to_request()
            };
            for _ in 0..2 {
                let (status, _) = call(&app, from("10.0.0.1:40000")).await;
                assert_eq!(status, StatusCode::OK);
            }
            // Another port of the same host is the same caller; another host is not.
            let (status, body) = call(&app, from("10.0.0.1:40001")).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            let (status, _) = call(&app, from("10.0.0.2:40000")).await;
            assert_eq!(status, StatusCode::OK);
        }
    )
}

fn a_body_over_the_limit_is_413_before_it_is_read_whole(t: &TestDatabase) {
    with_state!(
        ApiState::new(t.db.clone(), 10).with_max_body_bytes(2_000),
        |app| {
            let long = format!(
                r#"{{"name": "x", "description": "{}", "target_node_count": 1}}"#,
                "d".repeat(3_000)
            );
            let req = request("POST", "/deployments", "")
                .insert_header(("content-type", "application/json"))
                .set_payload(long)
                .to_request();
            let (status, body) = call(&app, req).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
            assert!(
                body["detail"].as_str().is_some_and(|d| d.contains("2000")),
                "{body}"
            );
            let (status, _) = post(
                &app,
                "/deployments",
                r#"{"name": "small", "target_node_count": 1}"#,
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
            let (_, list) = get(&app, "/deployments").await;
            assert_eq!(
                list.as_array().map(Vec::len),
                Some(1),
                "the refused body changed nothing"
            );
        }
    )
}

fn cors_answers_the_configured_origins_only(t: &TestDatabase) {
    let state = web::Data::new(ApiState::new(t.db.clone(), 10).with_auth(AuthMode::Keys));
    actix_web::rt::System::new().block_on(async move {
        let app = test::init_service(
            App::new()
                .app_data(state)
                .wrap(netorch_api::cors(&["https://ui.example".to_owned()]))
                .configure(netorch_api::configure),
        )
        .await;
        // A preflight carries no token: it is answered before access control.
        let preflight = request("OPTIONS", "/deployments", "")
            .insert_header(("origin", "https://ui.example"))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header((
                "access-control-request-headers",
                "authorization, content-type, x-request-id",
            ))
            .to_request();
        let response = test::call_service(&app, preflight).await;
        let status = response.status();
        let origin = response
            .headers()
            .get("access-control-allow-origin")
            .cloned();
        let text = test::read_body(response).await;
        assert!(status.is_success(), "{status} {text:?}");
        assert_eq!(
            origin.expect("access-control-allow-origin"),
            "https://ui.example"
        );
        let simple = request("GET", "/health", "")
            .insert_header(("origin", "https://ui.example"))
            .to_request();
        let response = test::call_service(&app, simple).await;
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .expect("access-control-allow-origin"),
            "https://ui.example"
        );
        // A page may read the request id of a response, to show it with an error.
        let exposed = response
            .headers()
            .get("access-control-expose-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(exposed.contains("x-request-id"), "{exposed}");
        let other = request("GET", "/health", "")
            .insert_header(("origin", "https://evil.example"))
            .to_request();
        let response = test::call_service(&app, other).await;
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    })
}

netorch_testkit::backend_tests!(
    each_caller_gets_its_burst_then_429_with_retry_after,
    with_keys_off_each_client_address_gets_its_burst,
    a_body_over_the_limit_is_413_before_it_is_read_whole,
    cors_answers_the_configured_origins_only,
);
