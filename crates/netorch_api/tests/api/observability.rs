//! Request ids, `/metrics` and what it counts, through the app as the server builds it (wrapped
//! in `netorch_api::observe`).

use crate::common::*;
use std::sync::Arc;

/// The state of a server whose metrics read `t`'s pool and fleet, as netorch-server's do.
fn observed_state(t: &TestDatabase) -> ApiState {
    let mut metrics = netorch_metrics::Metrics::new();
    metrics.collect_database(t.db.clone());
    metrics.collect_fleet(t.db.clone());
    ApiState::new(t.db.clone(), 1000).with_metrics(Arc::new(metrics))
}

macro_rules! with_observed_app {
    ($t:expr, |$app:ident| $body:block) => {{
        let state = web::Data::new(observed_state($t));
        actix_web::rt::System::new().block_on(async move {
            let $app = test::init_service(
                App::new()
                    .app_data(state)
                    .wrap(actix_web::middleware::from_fn(netorch_api::observe))
                    .configure(netorch_api::configure)
                    .default_service(web::to(netorch_api::not_found)),
            )
            .await;
            $body
        })
    }};
}

/// The id of `deployment`'s first node.
fn first_node(t: &TestDatabase, deployment: i64) -> NodeId {
    nodes::list(
        &mut t.db.get().expect("connection"),
        DeploymentId::from(deployment),
        &NodeFilter::default(),
    )
    .expect("nodes")
    .nodes[0]
        .id
}

/// Sends `req`; the status, the `X-Request-Id` header and the body as JSON (or text).
async fn exchange<S, B>(app: &S, req: Request) -> (StatusCode, Option<String>, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, req).await;
    let status = response.status();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = test::read_body(response).await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, id, body)
}

fn every_response_carries_a_request_id_and_error_bodies_quote_it(t: &TestDatabase) {
    with_observed_app!(t, |app| {
        // A success gets a new id in its header.
        let (status, id, _) = exchange(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(status, StatusCode::OK);
        let first = id.expect("an id");
        let (_, id, _) = exchange(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_ne!(id.expect("an id"), first, "each request has its own");

        // A client's safe id is kept, in the header and in the error body.
        let req = test::TestRequest::get()
            .uri("/deployments/424242")
            .insert_header(("X-Request-Id", "trace-7f:span/1"))
            .to_request();
        let (status, id, body) = exchange(&app, req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(id.as_deref(), Some("trace-7f:span/1"));
        assert_eq!(
            body,
            json!({"detail": "Deployment not found", "request_id": "trace-7f:span/1"})
        );

        // An unsafe or overlong one is replaced, never echoed.
        for sent in ["two words", &"x".repeat(129)] {
            let req = test::TestRequest::get()
                .uri("/nowhere")
                .insert_header(("X-Request-Id", sent))
                .to_request();
            let (status, id, body) = exchange(&app, req).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let id = id.expect("an id");
            assert_ne!(id, sent);
            assert_eq!(body["request_id"], json!(id));
        }

        // Every error shape: 422, 409, 405.
        let req = test::TestRequest::post()
            .uri("/deployments")
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"name": ""}"#)
            .to_request();
        let (status, id, body) = exchange(&app, req).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["request_id"], json!(id.expect("an id")));
        assert!(body["detail"].is_array());

        let deployment = create(&app, "ids", 1).await;
        let node = first_node(t, deployment);
        let req = test::TestRequest::post()
            .uri(&format!("/deployments/{deployment}/nodes/{node}/retry"))
            .to_request();
        let (status, id, body) = exchange(&app, req).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["request_id"], json!(id.expect("an id")));
        assert_eq!(body["current_state"], "PENDING");

        let req = test::TestRequest::put().uri("/deployments").to_request();
        let (status, id, body) = exchange(&app, req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["request_id"], json!(id.expect("an id")));
    })
}

/// The value of the sample `series` in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    netorch_testkit::exposed_sample(text, series)
}

fn metrics_count_requests_by_route_and_read_the_fleet_from_the_counters(t: &TestDatabase) {
    with_observed_app!(t, |app| {
        let deployment = create(&app, "observed", 3).await;
        for _ in 0..2 {
            let (status, _) = get(&app, &format!("/deployments/{deployment}")).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, _) = get(&app, "/no/such/path/123").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let node = first_node(t, deployment);
        let at = (Utc::now() - Duration::minutes(1)).to_rfc3339();
        let push = json!({"samples": [
            {"node_id": node.get(), "timestamp": at, "latency_ms": 5.0, "throughput_gbps": 9.0, "error_rate": 0.1},
            {"node_id": node.get(), "timestamp": at, "latency_ms": 5.0, "throughput_gbps": 9.0, "error_rate": 0.1},
        ]});
        let (status, body) = post(
            &app,
            &format!("/deployments/{deployment}/telemetry"),
            &push.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let (status, _) = get(
            &app,
            &format!("/deployments/{deployment}/bottlenecks?method=zscore"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);

        let response =
            test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers().get("content-type").cloned();
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some(netorch_metrics::CONTENT_TYPE)
        );
        let text = String::from_utf8(test::read_body(response).await.to_vec()).expect("UTF-8");

        let requests = |route: &str, method: &str, status: u16| {
            sample(
                &text,
                &format!(
                    "netorch_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
                ),
            )
        };
        assert_eq!(
            requests("/deployments/{deployment_id}", "GET", 200),
            Some(2.0),
            "{text}"
        );
        assert_eq!(requests("/deployments", "POST", 201), Some(1.0));
        assert_eq!(requests("unmatched", "GET", 404), Some(1.0));
        assert_eq!(
            sample(
                &text,
                "netorch_http_request_duration_seconds_count{route=\"/deployments/{deployment_id}\"}"
            ),
            Some(2.0)
        );
        // Routes, never raw paths: no id reaches a label.
        assert!(
            !text.contains(&format!("/deployments/{deployment}\"")),
            "{text}"
        );
        assert!(!text.contains("/no/such/path"));
        // The /metrics request itself is in flight while the text is made.
        assert_eq!(sample(&text, "netorch_http_requests_in_flight"), Some(1.0));

        assert_eq!(
            sample(
                &text,
                "netorch_telemetry_samples_written_total{source=\"push\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "netorch_telemetry_duplicates_skipped_total{source=\"push\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "netorch_telemetry_samples_written_total{source=\"worker\"}"
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                "netorch_report_duration_seconds_count{method=\"zscore\"}"
            ),
            Some(1.0)
        );

        // The fleet, from the deployments' counters.
        assert_eq!(sample(&text, "netorch_nodes{state=\"PENDING\"}"), Some(3.0));
        assert_eq!(sample(&text, "netorch_nodes{state=\"RUNNING\"}"), Some(0.0));
        assert_eq!(
            sample(&text, "netorch_deployments{status=\"PROGRESSING\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "netorch_deployments{status=\"COMPLETE\"}"),
            Some(0.0)
        );
        // The outbox, empty.
        assert_eq!(sample(&text, "netorch_notifications_pending"), Some(0.0));
        assert_eq!(
            sample(&text, "netorch_notifications_oldest_pending_seconds"),
            Some(0.0)
        );
        // Unresolved alerts by state and severity, zeros included.
        assert_eq!(
            sample(
                &text,
                "netorch_alerts{state=\"firing\",severity=\"critical\"}"
            ),
            Some(0.0)
        );

        // The pool, the process and the build.
        assert!(sample(&text, "netorch_database_connections_max").is_some_and(|n| n >= 1.0));
        assert_eq!(
            sample(&text, "netorch_database_errors_total{kind=\"unavailable\"}").map(|n| n >= 0.0),
            Some(true)
        );
        assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|n| n > 0.0));
        assert_eq!(
            sample(
                &text,
                &format!(
                    "netorch_build_info{{version=\"{}\"}}",
                    env!("CARGO_PKG_VERSION")
                )
            ),
            Some(1.0)
        );
        netorch_testkit::promtool(&["check", "metrics"], &text);
    })
}

netorch_testkit::backend_tests!(
    every_response_carries_a_request_id_and_error_bodies_quote_it,
    metrics_count_requests_by_route_and_read_the_fleet_from_the_counters,
);

/// The Grafana dashboard in docs/ cannot rot: every metric its queries name is one the server
/// exposes or one the export writes to a time-series database, and every query parses (checked
/// by promtool as recording rules).
#[::core::prelude::v1::test]
fn the_grafana_dashboard_queries_metrics_that_exist() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana-dashboard.json"
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    // A labelled family is written once it has a series: give each one.
    let metrics = netorch_metrics::Metrics::new();
    metrics.http_request("/", "GET", 200, 0.001);
    metrics.report(netorch_analytics::Method::Robust, 0.01);
    metrics.tick_failure("lifecycle");
    metrics.export().target("http://tsdb/api/v1/write");
    metrics.export().lag("http://tsdb/api/v1/write", 0.0);
    let exposed = metrics.encode();
    // The series the export writes (netorch_workers::export), read from the time-series
    // database by the per-node panels.
    let exported: Vec<String> = netorch_domain::MetricKind::ALL
        .iter()
        .map(|kind| format!("{}{}", netorch_domain::ingest::METRIC_PREFIX, kind.as_str()))
        .collect();
    // The fleet and pool gauges come from collectors with a database; their names are here.
    let collected = [
        "netorch_nodes",
        "netorch_deployments",
        "netorch_alerts",
        "netorch_notifications_pending",
        "netorch_notifications_oldest_pending_seconds",
        "netorch_database_connections_in_use",
        "netorch_database_connection_waits_total",
        "netorch_database_errors_total",
    ];
    for expr in &exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.starts_with("netorch_") {
                continue;
            }
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word);
            assert!(
                exposed.contains(&format!("# TYPE {family} "))
                    || collected.contains(&family)
                    || exported.iter().any(|name| name == family),
                "the dashboard queries {word}, which no process exposes"
            );
        }
    }
    // Each query as a recording rule, with Grafana's interval variable made concrete.
    let rules: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            format!(
                "      - record: dashboard_query_{i}\n        expr: {}\n",
                serde_json::to_string(
                    &expr
                        .replace("$__rate_interval", "5m")
                        .replace("$deployment", "edge-north")
                        .replace("$node", ".*")
                )
                .expect("JSON")
            )
        })
        .collect();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        file.path(),
        format!(
            "groups:\n  - name: dashboard\n    rules:\n{}",
            rules.concat()
        ),
    )
    .expect("write rules");
    netorch_testkit::promtool(&["check", "rules", &file.path().to_string_lossy()], "");
}
