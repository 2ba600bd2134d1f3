//! The defences of issue 25 through actix's test service, on both backends: pages of other
//! origins and rebound names refused before anything runs, bodies that are not JSON refused,
//! keys limited to their deployments, audit-log pages bounded by bytes. (The real binary's
//! tests, `bins/netorch_server/tests/security.rs`, cover the same end to end.)

use crate::common::*;
use netorch_api::auth::AuthMode;
use netorch_api::guard::HostPolicy;
use netorch_domain::{DeploymentId, Role};

fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = test::TestRequest::default().method(method).uri(uri);
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    if let Some(body) = body {
        req = req.set_payload(body.to_owned());
    }
    req.to_request()
}

fn only_this_server_and_its_names_are_served_and_only_its_pages_change_things(t: &TestDatabase) {
    let bound = "127.0.0.1:8000".parse().expect("address");
    let state = ApiState::new(t.db.clone(), 1000)
        .with_allowed_hosts(HostPolicy::for_listener(bound, &["netorch.example".into()]))
        .with_cors_origins(&["https://grafana.example".into()]);
    with_state!(state, |app| {
        let json = ("content-type", "application/json");
        let create = r#"{"name": "x", "target_node_count": 1}"#;
        let host = ("host", "127.0.0.1:8000");
        let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
            (vec![host, json], 201),
            (vec![host, json, ("origin", "http://127.0.0.1:8000")], 201),
            (
                vec![
                    ("host", "netorch.example"),
                    json,
                    ("origin", "https://netorch.example"),
                ],
                201,
            ),
            (vec![host, json, ("origin", "https://grafana.example")], 201),
            (vec![host, json, ("origin", "https://evil.example")], 403),
            (vec![host, json, ("origin", "null")], 403),
            (vec![host, ("content-type", "text/plain")], 415),
            (
                vec![host, ("content-type", "application/x-www-form-urlencoded")],
                415,
            ),
            (vec![("host", "attacker.example:8000"), json], 421),
            (vec![("host", "127.0.0.2:8000"), json], 421),
            // No content type at all: read as JSON, as the original did.
            (vec![host], 201),
        ];
        for (headers, want) in &cases {
            let (status, body) =
                call(&app, request("POST", "/deployments", headers, Some(create))).await;
            assert_eq!(status.as_u16(), *want, "{headers:?}: {body}");
            if *want != 201 {
                assert!(body["detail"].is_string(), "{headers:?}: {body}");
            }
        }
        let made = cases.iter().filter(|(_, want)| *want == 201).count();
        let (_, list) = get(&app, "/deployments").await;
        assert_eq!(list.as_array().map(Vec::len), Some(made));
        // Reads from other origins are the browser's to refuse; a rebound name is refused here.
        let (status, _) = call(
            &app,
            request(
                "GET",
                "/deployments",
                &[host, ("origin", "https://evil.example")],
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        for path in [
            "/deployments",
            "/health",
            "/ui",
            "/docs",
            "/openapi.json",
            "/ui/assets/app.js",
        ] {
            let (status, body) = call(
                &app,
                request("GET", path, &[("host", "attacker.example")], None),
            )
            .await;
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path}: {body}");
        }
        // The document says so.
        let (_, doc) = get(&app, "/openapi.json").await;
        let create_op = &doc["paths"]["/deployments"]["post"]["responses"];
        for code in ["403", "415", "421"] {
            assert!(
                create_op[code].is_object(),
                "POST /deployments documents {code}"
            );
        }
        assert!(doc["paths"]["/health"]["get"]["responses"]["421"].is_object());
        assert!(doc["paths"]["/deployments"]["get"]["responses"]["415"].is_null());
    })
}

fn a_limited_key_reaches_its_deployments_and_who_it_is(t: &TestDatabase) {
    let state = ApiState::new(t.db.clone(), 1000).with_auth(AuthMode::Keys);
    let now = Utc::now();
    let mut conn = t.db.get().expect("connection");
    let (admin, _) = create_key(&mut conn, "root", Role::Admin, None, None, now).expect("key");
    drop(conn);
    with_state!(state, |app| {
        let bearer = |token: &str| format!("Bearer {token}");
        let admin = bearer(&admin);
        let json = ("content-type", "application/json");
        let mut ids = Vec::new();
        for name in ["mine", "other"] {
            let body = format!(r#"{{"name": "{name}", "target_node_count": 1}}"#);
            let (status, made) = call(
                &app,
                request(
                    "POST",
                    "/deployments",
                    &[("authorization", &admin), json],
                    Some(&body),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{made}");
            ids.push(made["id"].as_i64().expect("id"));
        }
        let (mine, other) = (ids[0], ids[1]);
        let mut conn = t.db.get().expect("connection");
        let scope = [DeploymentId(mine)];
        let (operator, key) =
            create_key(&mut conn, "rack4", Role::Operator, None, Some(&scope), now).expect("key");
        drop(conn);
        assert_eq!(key.deployments, Some(vec![DeploymentId(mine)]));
        let operator = bearer(&operator);
        let auth = [("authorization", operator.as_str()), json];
        for (method, uri, want) in [
            ("GET", format!("/deployments/{mine}"), 200),
            ("GET", format!("/deployments/{mine}/events"), 200),
            ("POST", format!("/deployments/{mine}/pause"), 200),
            ("GET", format!("/deployments/{other}"), 403),
            ("POST", format!("/deployments/{other}/pause"), 403),
            ("GET", format!("/deployments/{other}/nodes"), 403),
            ("GET", "/deployments/notanumber".to_owned(), 403),
            ("GET", "/deployments".to_owned(), 403),
            ("GET", "/fleet".to_owned(), 403),
            ("POST", "/deployments".to_owned(), 403),
            ("GET", "/metrics".to_owned(), 403),
            ("GET", "/".to_owned(), 200),
            // Alerts: its deployments' only, read per deployment.
            ("GET", format!("/deployments/{mine}/alerts"), 200),
            ("GET", format!("/deployments/{other}/alerts"), 403),
            ("GET", "/alerts".to_owned(), 403),
            ("GET", "/alerts/1".to_owned(), 403),
            ("GET", "/silences".to_owned(), 403),
        ] {
            let body = (method == "POST").then_some(r#"{"name": "y", "target_node_count": 1}"#);
            let (status, answer) = call(&app, request(method, &uri, &auth, body)).await;
            assert_eq!(status.as_u16(), want, "{method} {uri}: {answer}");
        }
        let (status, me) = call(&app, request("GET", "/whoami", &auth, None)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["deployments"], json!([mine]));
        assert_eq!(me["role"], "operator");
    })
}

fn a_page_of_the_audit_log_is_bounded_by_bytes_and_paging_reads_it_all(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "wide", 1).await;
        // Each change records the longest excerpts: a name of 255 four-byte characters and 256
        // of a description, about 2 KiB an event.
        for round in 0..600u32 {
            let c = char::from_u32(0x1F600 + round % 64).expect("an emoji");
            let name: String = std::iter::repeat_n(c, 255).collect();
            let description: String = std::iter::repeat_n(c, 4096).collect();
            let body = json!({"name": name, "description": description}).to_string();
            let req = test::TestRequest::patch()
                .uri(&format!("/deployments/{id}"))
                .insert_header(("content-type", "application/json"))
                .set_payload(body)
                .to_request();
            let (status, answer) = call(&app, req).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        let mut after = 0;
        let mut seen = 0;
        let mut pages = 0;
        loop {
            let uri = format!("/deployments/{id}/events?limit=1000&after={after}");
            let response =
                test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
            let bytes = test::read_body(response).await;
            assert!(
                bytes.len() <= netorch_api::PAGE_BYTES + 64,
                "{} bytes",
                bytes.len()
            );
            let page: Value = serde_json::from_slice(&bytes).expect("json");
            let events = page["events"].as_array().expect("events");
            seen += events.len();
            pages += 1;
            match page["next_after"].as_i64() {
                Some(next) => after = next,
                None => break,
            }
            assert!(pages < 10);
        }
        // DEPLOYMENT_CREATED and the 600 changes.
        assert_eq!(seen, 601);
        assert!(pages >= 2, "the log was cut by size");
    })
}

/// Architecture Invariant (docs/ARCHITECTURE.md, `guard.rs`): every route the document lists
/// passes the host check, whatever its method, open or not, so a route added later cannot
/// escape it.
fn every_route_refuses_a_host_it_does_not_answer_to(t: &TestDatabase) {
    with_app!(t, |app| {
        let (_, doc) = get(&app, "/openapi.json").await;
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let uri = path
                .replace("{deployment_id}", "1")
                .replace("{node_id}", "1")
                .replace("{asset}", "app.js");
            for method in item.as_object().expect("an item").keys() {
                let method = method.to_uppercase();
                let (status, body) = call(
                    &app,
                    request(&method, &uri, &[("host", "rebound.example")], None),
                )
                .await;
                assert_eq!(
                    status,
                    StatusCode::MISDIRECTED_REQUEST,
                    "{method} {path}: {body}"
                );
                checked += 1;
            }
        }
        for page in [
            "/ui/deployments/1",
            "/ui/assets/app.js",
            "/docs/swagger-ui.css",
        ] {
            let (status, _) = call(
                &app,
                request("GET", page, &[("host", "rebound.example")], None),
            )
            .await;
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{page}");
        }
        assert!(checked >= 20, "{checked}");
    })
}

netorch_testkit::backend_tests!(
    every_route_refuses_a_host_it_does_not_answer_to,
    only_this_server_and_its_names_are_served_and_only_its_pages_change_things,
    a_limited_key_reaches_its_deployments_and_who_it_is,
    a_page_of_the_audit_log_is_bounded_by_bytes_and_paging_reads_it_all,
);
