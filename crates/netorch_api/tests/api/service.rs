use crate::common::*;

fn root_describes_the_service(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, body) = get(&app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({
                "service": "Network Deployment & Telemetry Orchestrator",
                "version": env!("CARGO_PKG_VERSION"),
                "docs": "/docs",
                "health": "/health",
            })
        );
    })
}

fn health_reads_the_heartbeats(t: &TestDatabase) {
    with_app!(t, |app| {
        create(&app, "h", 1).await;
        let (status, body) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (body["status"].as_str(), body["database"].as_str()),
            (Some("degraded"), Some("healthy"))
        );
        assert_eq!(
            (
                body["active_deployments"].as_i64(),
                body["active_workers"].as_bool()
            ),
            (Some(1), Some(false))
        );
        assert!(is_timestamp(&body["timestamp"]));

        let mut conn = t.db.get().expect("connection");
        let now = Utc::now();
        let interval = std::time::Duration::from_secs(2);
        heartbeats::record(&mut conn, "w1", WorkerKind::Lifecycle, interval, now, now)
            .expect("beat");
        let (_, body) = get(&app, "/health").await;
        assert_eq!(
            body["status"], "degraded",
            "the telemetry worker is missing"
        );
        heartbeats::record(&mut conn, "w2", WorkerKind::Telemetry, interval, now, now)
            .expect("beat");
        // A stale worker of the same kind does not matter while another is alive.
        let long_ago = now - Duration::minutes(5);
        heartbeats::record(
            &mut conn,
            "old",
            WorkerKind::Telemetry,
            interval,
            long_ago,
            long_ago,
        )
        .expect("beat");
        let (_, body) = get(&app, "/health").await;
        assert_eq!(
            body["status"], "degraded",
            "the alerts loop is missing: nobody would be told of anything"
        );
        heartbeats::record(&mut conn, "w2", WorkerKind::Alerts, interval, now, now).expect("beat");
        let (_, body) = get(&app, "/health").await;
        assert_eq!(
            (body["status"].as_str(), body["active_workers"].as_bool()),
            (Some("healthy"), Some(true))
        );
        let workers = body["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 4);
        let old = workers.iter().find(|w| w["name"] == "old").expect("old");
        assert_eq!(
            (old["kind"].as_str(), old["alive"].as_bool()),
            (Some("telemetry"), Some(false))
        );

        let (status, body) = get(&app, "/ready").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    })
}

fn health_answers_when_the_main_pool_is_exhausted(t: &TestDatabase) {
    // A main pool of one connection, held here: requests find no connection (503), while
    // /health and /ready answer from their own pool, as they must under heavy load.
    let options = netorch_storage::DatabaseOptions {
        max_connections: 1,
        timeout: std::time::Duration::from_millis(200),
        run_migrations: false,
        ..netorch_storage::DatabaseOptions::default()
    };
    let starved = netorch_storage::Database::connect_with(t.url(), &options).expect("pool");
    let _held = starved.get().expect("the only connection");
    let state = web::Data::new(ApiState::new(starved.clone(), 1000));
    actix_web::rt::System::new().block_on(async move {
        let app =
            test::init_service(App::new().app_data(state).configure(netorch_api::configure)).await;
        let started = std::time::Instant::now();
        let (status, body) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["database"], "healthy", "{body}");
        let (status, body) = get(&app, "/ready").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
        assert!(
            started.elapsed() < std::time::Duration::from_millis(200),
            "health and readiness did not wait for the main pool"
        );
        let (status, body) = get(&app, "/deployments").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"detail": "Database unavailable"})
            )
        );
    });
}

fn openapi_lists_every_route_and_docs_work_offline(t: &TestDatabase) {
    with_app!(t, |app| {
        let routes = [
            ("get", "/"),
            ("post", "/deployments"),
            ("get", "/deployments"),
            ("get", "/fleet"),
            ("get", "/deployments/{deployment_id}"),
            ("delete", "/deployments/{deployment_id}"),
            ("patch", "/deployments/{deployment_id}"),
            ("post", "/deployments/{deployment_id}/pause"),
            ("post", "/deployments/{deployment_id}/resume"),
            ("get", "/deployments/{deployment_id}/nodes"),
            ("get", "/deployments/{deployment_id}/nodes/{node_id}"),
            ("post", "/deployments/{deployment_id}/nodes/{node_id}/retry"),
            ("get", "/deployments/{deployment_id}/nodes/{node_id}/runs"),
            ("get", "/deployments/{deployment_id}/telemetry"),
            ("post", "/deployments/{deployment_id}/telemetry"),
            ("get", "/deployments/{deployment_id}/bottlenecks"),
            ("get", "/deployments/{deployment_id}/events"),
            // Deployment 1 does not exist: a 404, not an endless stream.
            ("get", "/deployments/{deployment_id}/events/stream"),
            ("get", "/health"),
            ("get", "/ready"),
            ("get", "/metrics"),
            (
                "get",
                "/deployments/{deployment_id}/nodes/{node_id}/telemetry/series",
            ),
            ("get", "/deployments/{deployment_id}/telemetry/series"),
            ("get", "/docs"),
            ("get", "/openapi.json"),
            ("get", "/whoami"),
            ("get", "/ui"),
            ("get", "/alerts"),
            ("get", "/deployments/{deployment_id}/alerts"),
            ("get", "/alerts/{alert}"),
            ("post", "/alerts/{alert}/ack"),
            ("post", "/alerts/{alert}/unack"),
            ("get", "/silences"),
            ("post", "/silences"),
            ("get", "/silences/{silence_id}"),
            ("delete", "/silences/{silence_id}"),
            ("get", "/receivers"),
            ("post", "/receivers"),
            ("get", "/receivers/{receiver_id}"),
            ("delete", "/receivers/{receiver_id}"),
            ("get", "/notifications"),
            ("post", "/notifications/{notification_id}/retry"),
            ("post", "/api/v1/write"),
            ("post", "/api/v2/write"),
            ("post", "/write"),
            ("post", "/v1/metrics"),
        ];
        let (status, doc) = get(&app, "/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = 0;
        for (method, path) in routes {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} is not documented"
            );
            // And the app serves it: neither 404 from routing nor 405.
            let uri = path
                .replace("{deployment_id}", "1")
                .replace("{node_id}", "1")
                .replace("{alert}", "1")
                .replace("{silence_id}", "1")
                .replace("{receiver_id}", "1")
                .replace("{notification_id}", "1");
            let req = test::TestRequest::default()
                .method(method.to_uppercase().parse().expect("method"))
                .uri(&uri)
                .to_request();
            let (status, body) = call(&app, req).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(body, json!({"detail": "Not Found"}), "{method} {path}");
            documented += 1;
        }
        let total: usize = paths
            .values()
            .map(|p| p.as_object().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(
            total, documented,
            "the document lists exactly the served routes"
        );
        assert!(doc["components"]["schemas"]["DeploymentOut"].is_object());
        // Summaries are plain one-line titles (the explorer shows them raw); details go in
        // the description.
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("operations") {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(
                    !summary.is_empty() && !summary.contains('`') && !summary.contains('\n'),
                    "{method} {path}: {summary:?}"
                );
                assert!(op["description"].is_string(), "{method} {path}");
            }
        }

        let req = test::TestRequest::get().uri("/docs").to_request();
        let response = test::call_service(&app, req).await;
        assert_eq!(response.status(), StatusCode::OK);
        let html = String::from_utf8(test::read_body(response).await.to_vec()).expect("utf-8");
        assert!(html.contains("/docs/swagger-ui-bundle.js") && html.contains("/openapi.json"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets"
        );
        for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
            let response =
                test::call_service(&app, test::TestRequest::get().uri(asset).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{asset}");
            assert!(test::read_body(response).await.len() > 10_000, "{asset}");
        }
    })
}

/// The dashboard: one shell for every page, its assets compiled in, nothing from elsewhere,
/// and the data its fleet page draws.
fn the_dashboard_is_served_offline(t: &TestDatabase) {
    with_app!(t, |app| {
        for page in [
            "/ui",
            "/ui/deployments/7",
            "/ui/deployments/7/nodes/node-001",
        ] {
            let response =
                test::call_service(&app, test::TestRequest::get().uri(page).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{page}");
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            assert_eq!(
                header("content-type").as_deref(),
                Some("text/html; charset=utf-8")
            );
            let policy = header("content-security-policy").expect("a CSP");
            assert!(policy.starts_with("default-src 'self'"), "{policy}");
            let html = String::from_utf8(test::read_body(response).await.to_vec()).expect("utf-8");
            assert!(html.contains(r#"<script src="/ui/assets/app.js" type="module"></script>"#));
            assert!(html.contains(r#"<label for="token">API token</label>"#));
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "no external assets"
            );
        }
        for (asset, kind) in [
            ("app.js", "application/javascript"),
            ("alerts.js", "application/javascript"),
            ("health.js", "application/javascript"),
            ("app.css", "text/css"),
            ("uPlot.iife.min.js", "application/javascript"),
            ("uPlot.min.css", "text/css"),
            ("favicon.svg", "image/svg+xml"),
        ] {
            let uri = format!("/ui/assets/{asset}");
            let response =
                test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(content_type.starts_with(kind), "{uri}: {content_type}");
            assert!(test::read_body(response).await.len() > 200, "{uri}");
        }
        // A missing asset is the API's JSON 404; a page the dashboard does not have is its
        // shell answered 404 (the page says "not found", with a way back).
        let (status, body) = get(&app, "/ui/assets/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"detail": "Not Found"}));
        for missing in ["/ui/elsewhere", "/ui/deployments/x/y/z"] {
            let response =
                test::call_service(&app, test::TestRequest::get().uri(missing).to_request()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
            let html = String::from_utf8(test::read_body(response).await.to_vec()).expect("utf-8");
            assert!(html.contains(r#"<main id="main""#), "{missing}: {html}");
        }
        // The fleet page draws each deployment's state bar from the list alone.
        let id = create(&app, "bar", 3).await;
        let nodes = node_ids(t, id);
        fail_node(t, id, nodes[0]);
        let (_, list) = get(&app, "/deployments").await;
        assert_eq!(
            list[0]["node_states"],
            json!({"PENDING": 2, "PROVISIONING": 0, "CONFIGURING": 0, "RUNNING": 0,
                   "FAILED": 1, "DECOMMISSIONING": 0})
        );
    })
}

fn unknown_paths_and_methods_are_json_errors(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, body) = get(&app, "/nowhere").await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
        );
        let (status, body) = delete(&app, "/deployments").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"detail": "Method Not Allowed"})
            )
        );
        // Every documented path's 405 names exactly the methods the document lists for it.
        let (_, doc) = get(&app, "/openapi.json").await;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let mut documented: Vec<String> = item
                .as_object()
                .expect("item")
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            documented.sort();
            let uri = path
                .replace("{deployment_id}", "1")
                .replace("{node_id}", "1")
                .replace("{alert}", "1")
                .replace("{silence_id}", "1")
                .replace("{receiver_id}", "1")
                .replace("{notification_id}", "1");
            let req = test::TestRequest::default()
                .method(actix_web::http::Method::TRACE)
                .uri(&uri)
                .to_request();
            let response = test::call_service(&app, req).await;
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
            let allow = response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no Allow header"));
            let mut allowed: Vec<String> = allow.split(", ").map(str::to_owned).collect();
            allowed.sort();
            assert_eq!(allowed, documented, "{path}");
        }
        // An oversized body is a JSON 413, before anything is parsed.
        let huge = "x".repeat(netorch_api::MAX_BODY_BYTES + 1);
        let (status, body) = post(&app, "/deployments", &huge).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"detail": format!("Request body is larger than {} bytes", netorch_api::MAX_BODY_BYTES)})
            )
        );
        let (status, _) = get(&app, "/deployments?skip=%ZZ").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = get(&app, "/deployments/99999999999999999999999").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(NodeState::ALL.len(), 6);
    })
}

netorch_testkit::backend_tests!(
    root_describes_the_service,
    health_reads_the_heartbeats,
    health_answers_when_the_main_pool_is_exhausted,
    openapi_lists_every_route_and_docs_work_offline,
    the_dashboard_is_served_offline,
    unknown_paths_and_methods_are_json_errors,
);
