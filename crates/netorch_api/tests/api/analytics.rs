use crate::common::*;

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

netorch_testkit::backend_tests!(bottlenecks_find_the_degraded_nodes,);
