use crate::common::*;
use chrono::Timelike;

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
        // A node by name; a name no node has finds nothing.
        let (_, body) = get(
            &app,
            &format!("/deployments/{id}/telemetry?node_id=node-002"),
        )
        .await;
        assert_eq!(body["total"], 10);
        assert!(
            body["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .all(|s| s["node_id"] == nodes[1].get())
        );
        let (status, body) = get(
            &app,
            &format!("/deployments/{id}/telemetry?node_id=node-009"),
        )
        .await;
        assert_eq!((status, body["total"].as_i64()), (StatusCode::OK, Some(0)));
        // node_id=0 is a real filter.
        let (_, body) = get(&app, &format!("/deployments/{id}/telemetry?node_id=0")).await;
        assert_eq!(body["total"], 0);
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
        // An instant ten minutes ago, written three ways: with Z, with an offset, without one.
        let t0 = (Utc::now() - Duration::minutes(10))
            .with_nanosecond(0)
            .expect("valid");
        let zulu = t0.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let offset = t0
            .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("offset"))
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string();
        let naive = t0.format("%Y-%m-%dT%H:%M:%S").to_string();
        for (bad, kind, field) in bad_cases {
            let body = json!({"samples": [sample(nodes[0], 1.0, &zulu), bad]});
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
            sample(nodes[0], 1.0, &zulu),
            sample(nodes[0], 2.0, &offset),
            sample(nodes[1], 3.0, &naive),
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

/// A full database (a SQLite file at its size cap: the same SQLITE_FULL as a full disk): writes
/// are a JSON 507 and change nothing, reads go on, /ready and /health say writes are failing,
/// and all of it clears by itself once there is room again.
#[::core::prelude::v1::test]
fn a_full_database_refuses_writes_with_507_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("full.db").display());
    // Room for a few write probes (one is the size of the largest push), no more.
    let options = netorch_storage::DatabaseOptions {
        sqlite_max_bytes: Some(4 << 20),
        ..netorch_storage::DatabaseOptions::default()
    };
    let db = netorch_storage::Database::connect_with(&url, &options).expect("open");
    let state = web::Data::new(ApiState::new(db.clone(), 1000));
    actix_web::rt::System::new().block_on(async move {
        let app = test::init_service(
            App::new()
                .app_data(state)
                .configure(netorch_api::configure),
        )
        .await;
        let keep = create(&app, "keep", 2).await;
        let filler = create(&app, "filler", 100).await;
        let filler_nodes: Vec<i64> = {
            let (_, body) = get(&app, &format!("/deployments/{filler}/nodes")).await;
            body["nodes"].as_array().expect("nodes").iter().map(|n| n["id"].as_i64().expect("id")).collect()
        };
        // Fill it: big pushes until one is refused, then smaller ones, down to a single sample,
        // so that no write of any size fits.
        let uri = format!("/deployments/{filler}/telemetry");
        // Within the raw retention (a day), a millisecond apart.
        let mut next_timestamp = (Utc::now() - Duration::hours(20)).timestamp_millis();
        let mut push = |per_node: i64, nodes: usize| {
            let mut samples = Vec::new();
            for node in filler_nodes.iter().take(nodes) {
                for _ in 0..per_node {
                    next_timestamp += 1;
                    let at = next_timestamp as f64 / 1000.0;
                    samples.push(json!({"node_id": node, "timestamp": at, "latency_ms": 1, "throughput_gbps": 1, "error_rate": 0}));
                }
            }
            json!({ "samples": samples }).to_string()
        };
        let mut refused = None;
        for (per_node, nodes) in [(50, 100), (5, 100), (1, 50), (1, 5), (1, 1)] {
            for _ in 0..1000 {
                let body = push(per_node, nodes);
                let (status, answer) = post(&app, &uri, &body).await;
                if status != StatusCode::ACCEPTED {
                    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{answer}");
                    assert!(answer["detail"].as_str().is_some_and(|d| d.contains("out of space")), "{answer}");
                    refused = Some(body);
                    break;
                }
            }
        }
        let refused = refused.expect("the cap was reached");
        // Nothing of a refused push was written; reads go on.
        let count = || {
            netorch_storage::telemetry::count(&mut db.get().expect("connection"), DeploymentId(filler))
                .expect("count")
        };
        let before = count();
        let (status, _) = post(&app, &uri, &refused).await;
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(count(), before, "all or nothing");
        let (status, list) = get(&app, "/deployments").await;
        assert_eq!((status, list.as_array().map(Vec::len)), (StatusCode::OK, Some(2)));
        let (status, body) = get(&app, "/ready").await;
        assert_eq!((status, body), (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "writes_failing"})));
        let (_, health) = get(&app, "/health").await;
        assert_eq!((health["status"].as_str(), health["database"].as_str()), (Some("degraded"), Some("writes_failing")));
        // Room again (the operator deletes data): writes work and the reports clear.
        let (status, _) = delete(&app, &format!("/deployments/{filler}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = get(&app, "/ready").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
        let (status, _) = post(
            &app,
            &format!("/deployments/{keep}/telemetry"),
            &json!({"samples": [{"node_id": node_ids_of(&app, keep).await[0], "latency_ms": 1, "throughput_gbps": 1, "error_rate": 0}]}).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (_, health) = get(&app, "/health").await;
        assert_eq!(health["database"], "healthy");
    });
}

async fn node_ids_of<S, B>(app: &S, deployment: i64) -> Vec<i64>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (_, body) = get(app, &format!("/deployments/{deployment}/nodes")).await;
    body["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_i64().expect("id"))
        .collect()
}

/// A push names its nodes by id or by name (`node-002`), as every path and filter does; a
/// name no node of the deployment has is a 422 naming the sample, and nothing is stored.
fn a_push_names_nodes_by_id_or_name(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "named", 3).await;
        let other = create(&app, "other", 3).await;
        let nodes = node_ids(t, id);
        let uri = format!("/deployments/{id}/telemetry");
        let count = || {
            telemetry::count(&mut t.db.get().expect("connection"), DeploymentId(id)).expect("count")
        };
        let reading = |node: Value, ts: &str| json!({"node_id": node, "timestamp": ts, "latency_ms": 3.0, "throughput_gbps": 1.0, "error_rate": 0.0});
        let ts = (Utc::now() - Duration::minutes(5)).to_rfc3339();
        let (status, body) = post(
            &app,
            &uri,
            &json!({"samples": [
                reading(json!("node-002"), &ts),
                reading(json!(nodes[0].get()), &ts),
                reading(json!(nodes[2].get().to_string()), &ts),
            ]})
            .to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body, json!({"accepted": 3, "stored": 3}));
        let (_, page) = get(&app, &format!("{uri}?node_id=node-002")).await;
        let stored: Vec<i64> = page["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| s["node_id"].as_i64().expect("id"))
            .collect();
        assert_eq!(stored, vec![nodes[1].get()], "node-002 is the second node");

        // A name of no node of this deployment (another's node-001 is not this one's).
        let later = (Utc::now() - Duration::minutes(4)).to_rfc3339();
        for (missing, at) in [("node-009", 1), ("node-0001", 1)] {
            let (status, body) = post(
                &app,
                &uri,
                &json!({"samples": [reading(json!("node-001"), &later), reading(json!(missing), &later)]})
                    .to_string(),
            )
            .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(
                body["detail"],
                json!([{"type": "value_error", "loc": ["body", "samples", at, "node_id"],
                        "msg": format!("Value error, node {missing} is not a node of deployment {id}"),
                        "input": missing}])
            );
        }
        assert_eq!(count(), 3, "nothing more was stored");
        // A name is looked up in the push's deployment only.
        let (status, _) = post(
            &app,
            &format!("/deployments/{other}/telemetry"),
            &json!({"samples": [reading(json!("node-001"), &later)]}).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(count(), 3);
        // A deployment that does not exist is a 404 whatever the samples name.
        let (status, _) = post(
            &app,
            "/deployments/999999/telemetry",
            &json!({"samples": [reading(json!("node-001"), &later)]}).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
}

netorch_testkit::backend_tests!(
    telemetry_filters_by_node_and_time,
    pushed_telemetry_is_all_or_nothing,
    a_push_names_nodes_by_id_or_name,
);
