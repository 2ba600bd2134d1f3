//! Every row of the API contract through actix's test service, on SQLite and PostgreSQL.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use chrono::{Duration, Utc};
use netorch_api::ApiState;
use netorch_domain::{
    DeploymentId, Metrics, NewSample, NodeId, NodeState, NodeTrigger, Timestamp, WorkerKind,
};
use netorch_simulator::{degraded, metrics_at};
use netorch_storage::nodes::{NodeChange, NodeFilter};
use netorch_storage::{heartbeats, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};
use serde_json::{Value, json};

type Request = actix_http::Request;

/// Builds the app on `t` (deployments of at most `max` nodes) and runs `$body` with it bound
/// to `$app`, on an actix runtime.
macro_rules! with_app {
    ($t:expr, $max:expr, |$app:ident| $body:block) => {{
        let state = web::Data::new(ApiState::new($t.db.clone(), $max));
        actix_web::rt::System::new().block_on(async move {
            let $app = test::init_service(
                App::new()
                    .app_data(state)
                    .configure(netorch_api::configure)
                    .default_service(web::to(netorch_api::not_found)),
            )
            .await;
            $body
        })
    }};
    ($t:expr, |$app:ident| $body:block) => {
        with_app!($t, 1000, |$app| $body)
    };
}

async fn call<S, B>(app: &S, req: Request) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, req).await;
    let status = response.status();
    let bytes = test::read_body(response).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

async fn get<S, B>(app: &S, uri: &str) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    call(app, test::TestRequest::get().uri(uri).to_request()).await
}

async fn post<S, B>(app: &S, uri: &str, body: &str) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = test::TestRequest::post()
        .uri(uri)
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_owned())
        .to_request();
    call(app, req).await
}

async fn delete<S, B>(app: &S, uri: &str) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    call(app, test::TestRequest::delete().uri(uri).to_request()).await
}

async fn create<S, B>(app: &S, name: &str, nodes: u32) -> i64
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, body) = post(
        app,
        "/deployments",
        &json!({"name": name, "target_node_count": nodes}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().expect("id")
}

/// The contract's timestamp format: UTC, no offset, microseconds.
fn is_timestamp(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    s.len() == 26
        && chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
        && !s.ends_with('Z')
}

/// The `(type, loc)` pairs of a 422 body.
fn errors(body: &Value) -> Vec<(String, Value)> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("not a 422 body: {body}"))
        .iter()
        .map(|e| {
            assert!(e["msg"].is_string(), "{e}");
            assert!(e.get("input").is_some(), "{e}");
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["loc"].clone(),
            )
        })
        .collect()
}

fn node_ids(t: &TestDatabase, deployment: i64) -> Vec<NodeId> {
    let mut conn = t.db.get().expect("connection");
    nodes::list(&mut conn, DeploymentId(deployment), &NodeFilter::default())
        .expect("nodes")
        .nodes
        .iter()
        .map(|n| n.id)
        .collect()
}

/// Moves a node to FAILED through the state machine.
fn fail_node(t: &TestDatabase, deployment: i64, node: NodeId) {
    let mut conn = t.db.get().expect("connection");
    let mut current = nodes::get(&mut conn, DeploymentId(deployment), node).expect("node");
    for trigger in [
        NodeTrigger::StartProvisioning,
        NodeTrigger::ProvisioningFailed,
    ] {
        let change = NodeChange {
            ip_address: None,
            failure_reason: Some("cable cut".into()),
        };
        current = nodes::transition(&mut conn, &current, trigger, &change, Utc::now())
            .expect("transition")
            .expect("no race");
    }
}

fn run_node(t: &TestDatabase, deployment: i64, node: NodeId) {
    let mut conn = t.db.get().expect("connection");
    let mut current = nodes::get(&mut conn, DeploymentId(deployment), node).expect("node");
    for trigger in [
        NodeTrigger::StartProvisioning,
        NodeTrigger::ProvisioningSucceeded,
        NodeTrigger::ConfigurationSucceeded,
    ] {
        current = nodes::transition(
            &mut conn,
            &current,
            trigger,
            &NodeChange::default(),
            Utc::now(),
        )
        .expect("transition")
        .expect("no race");
    }
}

/// Stores `minutes` of simulated telemetry (5 s slots) for the deployment's nodes, ending now.
fn seed_telemetry(t: &TestDatabase, deployment: i64, minutes: i64) {
    let now = Utc::now();
    let mut samples = Vec::new();
    for slot in 0..(minutes * 12) {
        let at: Timestamp = now - Duration::seconds(5 * slot + 1);
        for node in node_ids(t, deployment) {
            samples.push(NewSample {
                node_id: node,
                deployment_id: DeploymentId(deployment),
                timestamp: at,
                metrics: metrics_at(node, at),
            });
        }
    }
    let mut conn = t.db.get().expect("connection");
    telemetry::insert_batch(&mut conn, &samples).expect("seed");
}

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

fn creating_a_deployment_creates_its_pending_nodes(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, body) = post(
            &app,
            "/deployments",
            r#"{"name": "edge-east", "description": "rack 4", "target_node_count": 12}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["name"], "edge-east");
        assert_eq!(body["description"], "rack 4");
        assert_eq!(body["target_node_count"], 12);
        assert!(
            is_timestamp(&body["created_at"]) && is_timestamp(&body["updated_at"]),
            "{body}"
        );
        let id = body["id"].as_i64().expect("id");

        let (status, nodes) = get(&app, &format!("/deployments/{id}/nodes")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(nodes["total"], 12);
        let list = nodes["nodes"].as_array().expect("nodes");
        for (i, node) in list.iter().enumerate() {
            assert_eq!(node["node_id"], format!("node-{:03}", i + 1));
            assert_eq!(node["state"], "PENDING");
            assert_eq!(node["deployment_id"], id);
            assert_eq!(node["hostname"], format!("switch-{id}-{:03}", i + 1));
            assert_eq!(node["ip_address"], Value::Null);
            assert_eq!(node["attempt"], 0);
            assert_eq!(node["failure_reason"], Value::Null);
            for field in ["created_at", "updated_at", "state_changed_at"] {
                assert!(is_timestamp(&node[field]), "{field}: {node}");
            }
        }
        let ids: Vec<i64> = list.iter().map(|n| n["id"].as_i64().expect("id")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // Without a description it is null.
        let (_, plain) = post(
            &app,
            "/deployments",
            r#"{"name": "x", "target_node_count": 1}"#,
        )
        .await;
        assert_eq!(plain["description"], Value::Null);
    })
}

fn invalid_deployments_are_422_and_write_nothing(t: &TestDatabase) {
    with_app!(t, |app| {
        let long = "n".repeat(256);
        let cases: Vec<(String, Vec<(&str, Value)>)> = vec![
            (
                r#"{"target_node_count": 3}"#.into(),
                vec![("missing", json!(["body", "name"]))],
            ),
            (
                r#"{"name": "a"}"#.into(),
                vec![("missing", json!(["body", "target_node_count"]))],
            ),
            (
                r#"{"name": "", "target_node_count": 0}"#.into(),
                vec![
                    ("string_too_short", json!(["body", "name"])),
                    ("greater_than_equal", json!(["body", "target_node_count"])),
                ],
            ),
            (
                format!(r#"{{"name": "{long}", "target_node_count": 1}}"#),
                vec![("string_too_long", json!(["body", "name"]))],
            ),
            (
                r#"{"name": "a", "target_node_count": 1001}"#.into(),
                vec![("less_than_equal", json!(["body", "target_node_count"]))],
            ),
            (
                r#"{"name": "a", "target_node_count": "many"}"#.into(),
                vec![("int_parsing", json!(["body", "target_node_count"]))],
            ),
            (
                r#"{"name": "a", "target_node_count": 2.5}"#.into(),
                vec![("int_from_float", json!(["body", "target_node_count"]))],
            ),
            (
                r#"{"name": "a", "target_node_count": true}"#.into(),
                vec![("int_type", json!(["body", "target_node_count"]))],
            ),
            (
                r#"{"name": 7, "target_node_count": 1, "description": []}"#.into(),
                vec![
                    ("string_type", json!(["body", "name"])),
                    ("string_type", json!(["body", "description"])),
                ],
            ),
            (
                r#"[1, 2]"#.into(),
                vec![("model_attributes_type", json!(["body"]))],
            ),
            ("".into(), vec![("missing", json!(["body"]))]),
        ];
        for (body, want) in cases {
            let (status, response) = post(&app, "/deployments", &body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let got = errors(&response);
            let want: Vec<(String, Value)> =
                want.into_iter().map(|(k, l)| (k.to_owned(), l)).collect();
            assert_eq!(got, want, "{body}");
        }
        let (status, response) = post(&app, "/deployments", r#"{"name": "a", "#).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(errors(&response)[0].0, "json_invalid");
        assert_eq!(response["detail"][0]["loc"][0], "body");
        // The documented example, exactly.
        let (_, response) = post(
            &app,
            "/deployments",
            r#"{"name": "a", "target_node_count": 0}"#,
        )
        .await;
        assert_eq!(
            response["detail"][0],
            json!({"type": "greater_than_equal", "loc": ["body", "target_node_count"],
                   "msg": "Input should be greater than or equal to 1", "input": 0, "ctx": {"ge": 1}})
        );
        let (_, list) = get(&app, "/deployments").await;
        assert_eq!(list, json!([]), "nothing was written");
    })
}

fn the_node_limit_is_the_server_s(t: &TestDatabase) {
    with_app!(t, 5000, |app| {
        let (status, body) = post(
            &app,
            "/deployments",
            r#"{"name": "big", "target_node_count": 2500}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = post(
            &app,
            "/deployments",
            r#"{"name": "too big", "target_node_count": 5001}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, detail) = get(&app, &format!("/deployments/{}", body["id"])).await;
        assert_eq!(detail["current_node_count"], 2500);
    })
}

fn deployments_list_newest_first_with_paging(t: &TestDatabase) {
    with_app!(t, |app| {
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(create(&app, &format!("d{i}"), 1).await);
        }
        ids.reverse();
        let listed = |body: &Value| -> Vec<i64> {
            body.as_array()
                .expect("array")
                .iter()
                .map(|d| d["id"].as_i64().expect("id"))
                .collect()
        };
        let (status, body) = get(&app, "/deployments").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed(&body), ids);
        let (_, body) = get(&app, "/deployments?skip=1&limit=2").await;
        assert_eq!(listed(&body), ids[1..3].to_vec());
        for (query, kind, field) in [
            ("limit=0", "greater_than_equal", "limit"),
            ("limit=1001", "less_than_equal", "limit"),
            ("skip=-1", "greater_than_equal", "skip"),
            ("skip=x", "int_parsing", "skip"),
        ] {
            let (status, body) = get(&app, &format!("/deployments?{query}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert_eq!(
                errors(&body),
                vec![(kind.to_owned(), json!(["query", field]))],
                "{query}"
            );
        }
    })
}

fn a_deployment_reports_its_node_states(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "states", 6).await;
        let nodes = node_ids(t, id);
        fail_node(t, id, nodes[0]);
        run_node(t, id, nodes[1]);
        run_node(t, id, nodes[2]);
        let (status, body) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], id);
        assert_eq!(body["name"], "states");
        assert_eq!(body["current_node_count"], 6);
        assert_eq!(
            body["node_states"],
            json!({"PENDING": 3, "PROVISIONING": 0, "CONFIGURING": 0, "RUNNING": 2, "FAILED": 1})
        );
        let (status, body) = get(&app, "/deployments/987654").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
        let (status, body) = get(&app, "/deployments/abc").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            errors(&body),
            vec![("int_parsing".to_owned(), json!(["path", "deployment_id"]))]
        );
    })
}

fn deleting_a_deployment_removes_everything_but_its_deleted_event(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "doomed", 3).await;
        let keep = create(&app, "kept", 2).await;
        run_node(t, id, node_ids(t, id)[0]);
        seed_telemetry(t, id, 1);
        let (status, body) = delete(&app, &format!("/deployments/{id}")).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (status, _) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(&app, &format!("/deployments/{id}/nodes")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, samples) = get(&app, &format!("/deployments/{id}/telemetry")).await;
        assert_eq!(samples["total"], 0);
        let (status, events) = get(&app, &format!("/deployments/{id}/events")).await;
        assert_eq!(status, StatusCode::OK);
        let kinds: Vec<&str> = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event_type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kinds, vec!["DEPLOYMENT_DELETED"]);
        let (status, body) = delete(&app, &format!("/deployments/{id}")).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
        let (status, _) = get(&app, &format!("/deployments/{keep}")).await;
        assert_eq!(status, StatusCode::OK);
    })
}

fn nodes_filter_by_state_and_page(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "filter", 8).await;
        let nodes = node_ids(t, id);
        for node in &nodes[..5] {
            run_node(t, id, *node);
        }
        let (status, body) = get(
            &app,
            &format!("/deployments/{id}/nodes?state=RUNNING&skip=1&limit=2"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["total"], 5);
        let page: Vec<i64> = body["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_i64().expect("id"))
            .collect();
        assert_eq!(page, vec![nodes[1].get(), nodes[2].get()]);
        let (_, body) = get(&app, &format!("/deployments/{id}/nodes?state=PENDING")).await;
        assert_eq!(body["total"], 3);
        let (status, body) = get(
            &app,
            &format!("/deployments/{id}/nodes?state=running&limit=0"),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            errors(&body),
            vec![
                ("enum".to_owned(), json!(["query", "state"])),
                ("greater_than_equal".to_owned(), json!(["query", "limit"]))
            ]
        );
        let (status, body) = get(&app, "/deployments/424242/nodes").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
    })
}

fn one_node_by_id(t: &TestDatabase) {
    with_app!(t, |app| {
        let a = create(&app, "a", 2).await;
        let b = create(&app, "b", 2).await;
        let node = node_ids(t, a)[1];
        let (status, body) = get(&app, &format!("/deployments/{a}/nodes/{node}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (body["id"].as_i64(), body["node_id"].as_str()),
            (Some(node.get()), Some("node-002"))
        );
        let (status, body) = get(&app, &format!("/deployments/{b}/nodes/{node}")).await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"detail": "Node not found"}))
        );
        let (status, body) = get(&app, &format!("/deployments/999999/nodes/{node}")).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
        let (status, body) = get(&app, &format!("/deployments/{a}/nodes/node-002")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            errors(&body),
            vec![("int_parsing".to_owned(), json!(["path", "node_id"]))]
        );
    })
}

fn retry_restarts_failed_nodes_and_conflicts_otherwise(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "retry", 3).await;
        let nodes = node_ids(t, id);
        fail_node(t, id, nodes[0]);
        run_node(t, id, nodes[1]);
        let (_, failed) = get(&app, &format!("/deployments/{id}/nodes/{}", nodes[0])).await;
        assert_eq!(
            (failed["state"].as_str(), failed["failure_reason"].as_str()),
            (Some("FAILED"), Some("cable cut"))
        );

        let (status, body) = post(
            &app,
            &format!("/deployments/{id}/nodes/{}/retry", nodes[0]),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (body["state"].as_str(), body["attempt"].as_i64()),
            (Some("PENDING"), Some(1))
        );
        assert_eq!(body["failure_reason"], Value::Null);
        let (_, events) = get(
            &app,
            &format!("/deployments/{id}/events?event_type=NODE_RETRY"),
        )
        .await;
        assert_eq!(
            events["events"][0]["metadata"],
            json!({"attempt": 1, "from_state": "FAILED", "to_state": "PENDING"})
        );

        let (status, body) = post(
            &app,
            &format!("/deployments/{id}/nodes/{}/retry", nodes[1]),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            (body["current_state"].as_str(), &body["allowed_actions"]),
            (Some("RUNNING"), &json!([]))
        );
        assert!(body["detail"].is_string());
        // Retrying again from PENDING is a conflict too: it already happened.
        let (status, body) = post(
            &app,
            &format!("/deployments/{id}/nodes/{}/retry", nodes[0]),
            "",
        )
        .await;
        assert_eq!(
            (status, body["current_state"].as_str()),
            (StatusCode::CONFLICT, Some("PENDING"))
        );
        let (status, _) = post(&app, &format!("/deployments/{id}/nodes/77777/retry"), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
}

fn telemetry_filters_by_node_and_time(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "tm", 3).await;
        let nodes = node_ids(t, id);
        let base = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .expect("valid")
            .to_utc();
        let mut samples = Vec::new();
        for slot in 0..10 {
            for node in &nodes {
                samples.push(NewSample {
                    node_id: *node,
                    deployment_id: DeploymentId(id),
                    timestamp: base + Duration::seconds(5 * slot),
                    metrics: Metrics {
                        latency_ms: slot as f64,
                        throughput_gbps: 9.0,
                        error_rate: 0.1,
                    },
                });
            }
        }
        telemetry::insert_batch(&mut t.db.get().expect("connection"), &samples).expect("seed");

        let (status, body) = get(&app, &format!("/deployments/{id}/telemetry")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["total"], 30);
        let first = &body["samples"][0];
        assert_eq!(first["timestamp"], "2026-11-27T10:00:45.000000");
        assert!(first["id"].is_i64() && first["deployment_id"] == id);
        for field in ["latency_ms", "throughput_gbps", "error_rate"] {
            assert!(first[field].is_f64(), "{field}");
        }
        let node = nodes[1].get();
        let uri = format!(
            "/deployments/{id}/telemetry?node_id={node}&start_time=2026-11-27T10:00:10Z&end_time=2026-11-27T12:00:20%2B02:00&limit=2"
        );
        let (_, body) = get(&app, &uri).await;
        let got: Vec<(i64, f64)> = body["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| {
                (
                    s["node_id"].as_i64().expect("node"),
                    s["latency_ms"].as_f64().expect("latency"),
                )
            })
            .collect();
        assert_eq!(got, vec![(node, 4.0), (node, 3.0)]);
        assert_eq!(body["total"], 2);
        // Without an offset a time is UTC; the range is inclusive.
        let (_, body) = get(&app, &format!("/deployments/{id}/telemetry?start_time=2026-11-27T10:00:45&end_time=2026-11-27T10:00:45")).await;
        assert_eq!(body["total"], 3);
        // node_id=0 is a real filter.
        let (_, body) = get(&app, &format!("/deployments/{id}/telemetry?node_id=0")).await;
        assert_eq!(body["total"], 0);
        for (query, kind, field) in [
            (
                "start_time=yesterday",
                "datetime_from_date_parsing",
                "start_time",
            ),
            (
                "end_time=2026-13-40",
                "datetime_from_date_parsing",
                "end_time",
            ),
            ("limit=1001", "less_than_equal", "limit"),
            ("node_id=abc", "int_parsing", "node_id"),
        ] {
            let (status, body) = get(&app, &format!("/deployments/{id}/telemetry?{query}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert_eq!(
                errors(&body),
                vec![(kind.to_owned(), json!(["query", field]))],
                "{query}"
            );
        }
    })
}

fn pushed_telemetry_is_all_or_nothing(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "push", 2).await;
        let other = create(&app, "other", 1).await;
        let nodes = node_ids(t, id);
        let foreign = node_ids(t, other)[0];
        let uri = format!("/deployments/{id}/telemetry");
        let sample = |node: NodeId, latency: f64, ts: &str| json!({"node_id": node.get(), "timestamp": ts, "latency_ms": latency, "throughput_gbps": 9.1, "error_rate": 0.2});
        let count = |t: &TestDatabase| {
            telemetry::count(&mut t.db.get().expect("connection"), DeploymentId(id)).expect("count")
        };

        // One bad sample among good ones: 422 naming its index, nothing stored.
        let bad_cases = [
            (
                json!({"node_id": nodes[0].get(), "latency_ms": -1.0, "throughput_gbps": 1.0, "error_rate": 0.0}),
                "greater_than_equal",
                "latency_ms",
            ),
            (
                json!({"node_id": nodes[0].get(), "latency_ms": 1.0, "throughput_gbps": 1.0, "error_rate": 100.5}),
                "less_than_equal",
                "error_rate",
            ),
            (
                json!({"node_id": nodes[0].get(), "latency_ms": 1.0, "error_rate": 0.0}),
                "missing",
                "throughput_gbps",
            ),
            (
                json!({"node_id": nodes[0].get(), "latency_ms": "fast", "throughput_gbps": 1.0, "error_rate": 0.0}),
                "float_parsing",
                "latency_ms",
            ),
            (
                json!({"node_id": nodes[0].get(), "timestamp": "soon", "latency_ms": 1.0, "throughput_gbps": 1.0, "error_rate": 0.0}),
                "datetime_from_date_parsing",
                "timestamp",
            ),
            (
                json!({"node_id": 99999999, "latency_ms": 1.0, "throughput_gbps": 1.0, "error_rate": 0.0}),
                "value_error",
                "node_id",
            ),
            (
                json!({"node_id": foreign.get(), "latency_ms": 1.0, "throughput_gbps": 1.0, "error_rate": 0.0}),
                "value_error",
                "node_id",
            ),
        ];
        for (bad, kind, field) in bad_cases {
            let body = json!({"samples": [sample(nodes[0], 1.0, "2026-11-27T10:00:00Z"), bad]});
            let (status, response) = post(&app, &uri, &body.to_string()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            assert_eq!(
                errors(&response),
                vec![(kind.to_owned(), json!(["body", "samples", 1, field]))],
                "{bad}"
            );
            assert_eq!(count(t), 0, "nothing stored for {bad}");
        }
        // Good: the same instant twice (once with an offset) is stored once.
        let body = json!({"samples": [
            sample(nodes[0], 1.0, "2026-11-27T10:00:00Z"),
            sample(nodes[0], 2.0, "2026-11-27T12:00:00+02:00"),
            sample(nodes[1], 3.0, "2026-11-27T10:00:00"),
            {"node_id": nodes[1].get(), "latency_ms": 4, "throughput_gbps": 9, "error_rate": 0},
        ]});
        let (status, response) = post(&app, &uri, &body.to_string()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{response}");
        assert_eq!(response, json!({"accepted": 4, "stored": 3}));
        assert_eq!(count(t), 3);
        // The sample without a timestamp was stamped now.
        let (_, newest) = get(&app, &format!("{uri}?limit=1")).await;
        let stamped = chrono::NaiveDateTime::parse_from_str(
            newest["samples"][0]["timestamp"].as_str().expect("ts"),
            "%Y-%m-%dT%H:%M:%S%.6f",
        )
        .expect("ts")
        .and_utc();
        assert!((Utc::now() - stamped).num_seconds().abs() < 60);

        let too_many: Vec<Value> = (0..10_001).map(|i| json!({"node_id": nodes[0].get(), "timestamp": i, "latency_ms": 1, "throughput_gbps": 1, "error_rate": 0})).collect();
        let (status, response) = post(&app, &uri, &json!({"samples": too_many}).to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            errors(&response),
            vec![("too_long".to_owned(), json!(["body", "samples"]))]
        );
        let (status, response) = post(&app, &uri, r#"{"samples": 5}"#).await;
        assert_eq!(
            (status, errors(&response)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![("list_type".to_owned(), json!(["body", "samples"]))]
            )
        );
        let (status, response) = post(&app, &uri, r#"{"samples": [1]}"#).await;
        assert_eq!(
            (status, errors(&response)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![(
                    "model_attributes_type".to_owned(),
                    json!(["body", "samples", 0])
                )]
            )
        );
        let (status, response) = post(&app, &uri, r#"{"samples": [NaN]}"#).await;
        assert_eq!(
            (status, errors(&response)[0].0.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "json_invalid")
        );
        let (status, response) =
            post(&app, "/deployments/99999/telemetry", &body.to_string()).await;
        assert_eq!(
            (status, response),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
        assert_eq!(count(t), 3);
    })
}

fn bottlenecks_find_the_degraded_nodes(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "bn", 40).await;
        seed_telemetry(t, id, 3);
        let truth: Vec<i64> = node_ids(t, id)
            .into_iter()
            .filter(|n| degraded(*n))
            .map(NodeId::get)
            .collect();
        assert!(!truth.is_empty());

        let (status, body) = get(
            &app,
            &format!("/deployments/{id}/bottlenecks?analysis_window_minutes=5"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (
                body["deployment_id"].as_i64(),
                body["method"].as_str(),
                body["threshold"].as_f64()
            ),
            (Some(id), Some("robust"), Some(3.5))
        );
        assert_eq!(body["analysis_window_minutes"], 5);
        assert!(is_timestamp(&body["detected_at"]));
        let found = body["bottlenecks"].as_array().expect("bottlenecks");
        let mut ids: Vec<i64> = found
            .iter()
            .map(|b| b["node_id"].as_i64().expect("id"))
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, truth);
        assert_eq!(body["total_bottlenecks"], truth.len());
        let scores: Vec<f64> = found
            .iter()
            .map(|b| b["deviation_score"].as_f64().expect("score"))
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]));
        let first = &found[0];
        assert_eq!(first["deployment_id"], id);
        assert!(
            first["node_identifier"]
                .as_str()
                .is_some_and(|n| n.starts_with("node-0"))
        );
        assert!(is_timestamp(&first["timestamp"]));
        assert_eq!(first["sample_count"], 36);
        assert!(first["reasons"].as_array().is_some_and(|r| !r.is_empty()));
        for field in ["latency_ms", "throughput_gbps", "error_rate"] {
            assert!(
                first[field].is_f64() && first["scores"][field].is_f64(),
                "{field}"
            );
        }

        // The original method misses the milder profile.
        let (_, body) = get(
            &app,
            &format!("/deployments/{id}/bottlenecks?method=zscore"),
        )
        .await;
        assert_eq!(
            (body["method"].as_str(), body["threshold"].as_f64()),
            (Some("zscore"), Some(2.0))
        );
        let ids: Vec<i64> = body["bottlenecks"]
            .as_array()
            .expect("list")
            .iter()
            .map(|b| b["node_id"].as_i64().expect("id"))
            .collect();
        assert!(ids.iter().all(|id| id % 10 == 9), "{ids:?}");
        let (_, body) = get(
            &app,
            &format!("/deployments/{id}/bottlenecks?threshold=1000000"),
        )
        .await;
        assert_eq!(body["total_bottlenecks"], 0);

        for (query, kind, field) in [
            (
                "analysis_window_minutes=0",
                "greater_than_equal",
                "analysis_window_minutes",
            ),
            (
                "analysis_window_minutes=61",
                "less_than_equal",
                "analysis_window_minutes",
            ),
            ("method=mad", "enum", "method"),
            ("threshold=0", "greater_than", "threshold"),
            ("threshold=high", "float_parsing", "threshold"),
        ] {
            let (status, body) = get(&app, &format!("/deployments/{id}/bottlenecks?{query}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert_eq!(
                errors(&body),
                vec![(kind.to_owned(), json!(["query", field]))],
                "{query}"
            );
        }
        let (status, body) = get(&app, "/deployments/99999/bottlenecks").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
        // No samples: an empty report.
        let quiet = create(&app, "quiet", 4).await;
        let (status, body) = get(&app, &format!("/deployments/{quiet}/bottlenecks")).await;
        assert_eq!(
            (status, body["total_bottlenecks"].as_i64()),
            (StatusCode::OK, Some(0))
        );
    })
}

fn events_page_in_order(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "ev", 3).await;
        let nodes = node_ids(t, id);
        run_node(t, id, nodes[0]);
        fail_node(t, id, nodes[1]);
        let uri = format!("/deployments/{id}/events");
        let (status, body) = get(&app, &format!("{uri}?limit=2")).await;
        assert_eq!(status, StatusCode::OK);
        let first = body["events"].as_array().expect("events").clone();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0]["event_type"], "DEPLOYMENT_CREATED");
        assert!(is_timestamp(&first[0]["created_at"]) && first[0]["metadata"].is_object());
        let cursor = body["next_after"].as_i64().expect("more to come");
        let (_, rest) = get(&app, &format!("{uri}?after={cursor}&limit=1000")).await;
        let rest = rest["events"].as_array().expect("events").clone();
        assert_eq!(rest.len(), 4, "3 + 2 transitions, 1 + 1 seen");
        let ids: Vec<i64> = first
            .iter()
            .chain(&rest)
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let (_, last) = get(&app, &format!("{uri}?after={}", ids[5])).await;
        assert_eq!(last, json!({"events": [], "next_after": null}));
        let (_, changes) = get(
            &app,
            &format!("{uri}?event_type=STATE_CHANGE&node_id={}", nodes[1]),
        )
        .await;
        let steps: Vec<(&str, &str)> = changes["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["metadata"]["from_state"].as_str().unwrap_or(""),
                    e["metadata"]["to_state"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![("PENDING", "PROVISIONING"), ("PROVISIONING", "FAILED")]
        );
        for (query, kind, field) in [
            ("event_type=CREATED", "enum", "event_type"),
            ("limit=0", "greater_than_equal", "limit"),
            ("after=x", "int_parsing", "after"),
        ] {
            let (status, body) = get(&app, &format!("{uri}?{query}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert_eq!(
                errors(&body),
                vec![(kind.to_owned(), json!(["query", field]))],
                "{query}"
            );
        }
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
            (body["status"].as_str(), body["active_workers"].as_bool()),
            (Some("healthy"), Some(true))
        );
        let workers = body["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 3);
        let old = workers.iter().find(|w| w["name"] == "old").expect("old");
        assert_eq!(
            (old["kind"].as_str(), old["alive"].as_bool()),
            (Some("telemetry"), Some(false))
        );

        let (status, body) = get(&app, "/ready").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    })
}

fn an_unreachable_database_is_unhealthy_and_not_ready(t: &TestDatabase) {
    // A pool of one connection, held here: every request finds the database unreachable.
    let options = netorch_storage::DatabaseOptions {
        max_connections: 1,
        timeout: std::time::Duration::from_millis(200),
        run_migrations: false,
    };
    let starved = netorch_storage::Database::connect_with(t.url(), &options).expect("pool");
    let _held = starved.get().expect("the only connection");
    let state = web::Data::new(ApiState::new(starved.clone(), 1000));
    actix_web::rt::System::new().block_on(async move {
        let app =
            test::init_service(App::new().app_data(state).configure(netorch_api::configure)).await;
        let (status, body) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (body["status"].as_str(), body["database"].as_str()),
            (Some("degraded"), Some("unhealthy"))
        );
        let (status, body) = get(&app, "/ready").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable"})
            )
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
            ("get", "/deployments/{deployment_id}"),
            ("delete", "/deployments/{deployment_id}"),
            ("get", "/deployments/{deployment_id}/nodes"),
            ("get", "/deployments/{deployment_id}/nodes/{node_id}"),
            ("post", "/deployments/{deployment_id}/nodes/{node_id}/retry"),
            ("get", "/deployments/{deployment_id}/telemetry"),
            ("post", "/deployments/{deployment_id}/telemetry"),
            ("get", "/deployments/{deployment_id}/bottlenecks"),
            ("get", "/deployments/{deployment_id}/events"),
            ("get", "/health"),
            ("get", "/ready"),
            ("get", "/docs"),
            ("get", "/openapi.json"),
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
                .replace("{node_id}", "1");
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
        let (status, _) = get(&app, "/deployments?skip=%ZZ").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = get(&app, "/deployments/99999999999999999999999").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(NodeState::ALL.len(), 5);
    })
}

backend_tests!(
    root_describes_the_service,
    creating_a_deployment_creates_its_pending_nodes,
    invalid_deployments_are_422_and_write_nothing,
    the_node_limit_is_the_server_s,
    deployments_list_newest_first_with_paging,
    a_deployment_reports_its_node_states,
    deleting_a_deployment_removes_everything_but_its_deleted_event,
    nodes_filter_by_state_and_page,
    one_node_by_id,
    retry_restarts_failed_nodes_and_conflicts_otherwise,
    telemetry_filters_by_node_and_time,
    pushed_telemetry_is_all_or_nothing,
    bottlenecks_find_the_degraded_nodes,
    events_page_in_order,
    health_reads_the_heartbeats,
    an_unreachable_database_is_unhealthy_and_not_ready,
    openapi_lists_every_route_and_docs_work_offline,
    unknown_paths_and_methods_are_json_errors,
);
