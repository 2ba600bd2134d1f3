use crate::common::*;

/// 30 minutes of 5 s slots for every node of `deployment`, from a minute boundary 40 minutes
/// ago; latency is the slot's number in its minute (0 to 11). Returns the first minute.
fn seed_minutes(t: &TestDatabase, deployment: i64) -> chrono::DateTime<chrono::Utc> {
    let nodes = node_ids(t, deployment);
    let now = chrono::Utc::now().timestamp();
    let base =
        chrono::DateTime::from_timestamp(now - now.rem_euclid(60) - 40 * 60, 0).expect("valid");
    let mut samples = Vec::new();
    for slot in 0..360 {
        for node in &nodes {
            samples.push(NewSample {
                node_id: *node,
                deployment_id: DeploymentId(deployment),
                timestamp: base + Duration::seconds(5 * slot),
                metrics: Metrics {
                    latency_ms: (slot % 12) as f64,
                    throughput_gbps: 9.0,
                    error_rate: 0.1,
                },
            });
        }
    }
    telemetry::insert_batch(&mut t.db.get().expect("connection"), &samples).expect("seed");
    base
}

fn at(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn series_serve_node_and_fleet_buckets(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "series", 3).await;
        let nodes = node_ids(t, id);
        let base = seed_minutes(t, id);
        let end = base + Duration::minutes(30) - Duration::microseconds(1);
        let node = nodes[1].get();

        let uri = format!(
            "/deployments/{id}/nodes/{node}/telemetry/series?start_time={}&end_time={}&step=1m",
            at(base),
            at(end)
        );
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (body["step"].as_str(), body["resolution"].as_str()),
            (Some("1m"), Some("1m"))
        );
        assert_eq!(body["node_id"], node);
        let buckets = body["buckets"].as_array().expect("buckets");
        assert_eq!(buckets.len(), 30);
        let first = &buckets[0];
        assert_eq!(first["timestamp"], at(base).trim_end_matches('Z'));
        assert_eq!(
            (first["count"].as_u64(), first["nodes"].as_u64()),
            (Some(12), Some(1))
        );
        assert_eq!(first["latency_ms"]["mean"], 5.5);
        assert_eq!(
            (
                first["latency_ms"]["min"].as_f64(),
                first["latency_ms"]["max"].as_f64()
            ),
            (Some(0.0), Some(11.0))
        );
        assert_eq!(first["throughput_gbps"]["mean"], 9.0);

        // The same node by name, at raw resolution: one bucket per sample.
        let uri = format!(
            "/deployments/{id}/nodes/node-002/telemetry/series?start_time={}&end_time={}&step=raw",
            at(base),
            at(base + Duration::minutes(10) - Duration::microseconds(1))
        );
        let (_, body) = get(&app, &uri).await;
        assert_eq!(body["resolution"], "raw");
        let buckets = body["buckets"].as_array().expect("buckets");
        assert_eq!(buckets.len(), 120);
        assert_eq!(buckets[13]["latency_ms"]["mean"], 1.0, "oldest first");

        // auto: raw up to an hour for a node, minutes up to a day, hours beyond.
        for (span, want) in [
            (Duration::minutes(20), "raw"),
            (Duration::hours(3), "1m"),
            (Duration::days(3), "1h"),
        ] {
            let uri = format!(
                "/deployments/{id}/nodes/{node}/telemetry/series?start_time={}&end_time={}",
                at(end - span),
                at(end)
            );
            let (status, body) = get(&app, &uri).await;
            assert_eq!(
                (status, body["resolution"].as_str()),
                (StatusCode::OK, Some(want)),
                "{span}"
            );
            assert_eq!(body["step"], "auto");
        }

        // The fleet: per bucket, every node's samples.
        let uri = format!(
            "/deployments/{id}/telemetry/series?start_time={}&end_time={}&step=1h",
            at(base),
            at(end)
        );
        let (_, body) = get(&app, &uri).await;
        assert_eq!(body["resolution"], "1h");
        assert!(body.get("node_id").is_none());
        let buckets = body["buckets"].as_array().expect("buckets");
        let total: u64 = buckets
            .iter()
            .map(|b| b["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(total, 3 * 360);
        assert!(buckets.iter().all(|b| b["nodes"] == 3));
        let uri = format!(
            "/deployments/{id}/telemetry/series?start_time={}&end_time={}&step=raw",
            at(base),
            at(base + Duration::minutes(1) - Duration::microseconds(1))
        );
        let (_, body) = get(&app, &uri).await;
        let buckets = body["buckets"].as_array().expect("buckets");
        assert_eq!(buckets.len(), 12);
        assert_eq!(
            (
                buckets[4]["nodes"].as_u64(),
                buckets[4]["latency_ms"]["max"].as_f64()
            ),
            (Some(3), Some(4.0))
        );
        // auto never reads a fleet's raw samples.
        let (_, body) = get(&app, &format!("/deployments/{id}/telemetry/series")).await;
        assert_eq!(
            (body["step"].as_str(), body["resolution"].as_str()),
            (Some("auto"), Some("1m"))
        );
        assert_eq!(
            body["buckets"].as_array().map(Vec::len),
            Some(30),
            "the default range is the last day"
        );

        // Past raw retention (24 hours by default) a raw step is answered from minutes.
        let old = chrono::Utc::now() - Duration::hours(25);
        let uri = format!(
            "/deployments/{id}/nodes/{node}/telemetry/series?start_time={}&end_time={}&step=raw",
            at(old),
            at(old + Duration::minutes(5))
        );
        let (status, body) = get(&app, &uri).await;
        assert_eq!(
            (status, body["resolution"].as_str()),
            (StatusCode::OK, Some("1m"))
        );
    })
}

fn series_refuse_bad_ranges_and_unknown_nodes(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "series-bad", 2).await;
        let now = chrono::Utc::now();
        let cases = [
            (
                format!(
                    "/deployments/{id}/telemetry/series?start_time={}&end_time={}",
                    at(now),
                    at(now - Duration::hours(1))
                ),
                "start_time",
            ),
            (
                format!(
                    "/deployments/{id}/nodes/1/telemetry/series?start_time={}&step=raw",
                    at(now - Duration::hours(2))
                ),
                "step",
            ),
            (
                format!(
                    "/deployments/{id}/telemetry/series?start_time={}&step=1m",
                    at(now - Duration::hours(6 * 24 + 23))
                ),
                "step",
            ),
            (
                format!("/deployments/{id}/telemetry/series?step=5m"),
                "step",
            ),
        ];
        for (uri, field) in cases {
            let (status, body) = get(&app, &uri).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {body}");
            assert_eq!(
                errors(&body)[0].1,
                serde_json::json!(["query", field]),
                "{uri}"
            );
        }
        // The messages, word for word (the range and the tier are chosen by the service crate;
        // the answer is the API's).
        let (start, end) = (now, now - Duration::hours(1));
        let (_, body) = get(
            &app,
            &format!(
                "/deployments/{id}/telemetry/series?start_time={}&end_time={}",
                at(start),
                at(end)
            ),
        )
        .await;
        let start_back = body["detail"][0]["input"].as_str().unwrap_or_default();
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(start_back).map(|t| t.timestamp_micros()),
            Ok(start.timestamp_micros()),
            "{body}"
        );
        assert_eq!(
            body["detail"][0]["msg"],
            "Value error, start_time must not be after end_time"
        );
        let (_, body) = get(
            &app,
            &format!(
                "/deployments/{id}/nodes/1/telemetry/series?start_time={}&step=raw",
                at(now - Duration::hours(2))
            ),
        )
        .await;
        assert_eq!(
            body["detail"],
            serde_json::json!([{"type": "value_error", "loc": ["query", "step"],
                "msg": "Value error, the range holds too many raw buckets (at most 10000 buckets, \
                        and at most an hour of raw samples): choose a coarser step or a shorter \
                        range",
                "input": "raw"}])
        );
        let (status, _) = get(
            &app,
            &format!("/deployments/{id}/nodes/node-404/telemetry/series"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(&app, "/deployments/999999/telemetry/series").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // A node id of another deployment, and every id once the deployment is gone.
        let other = create(&app, "series-other", 1).await;
        let foreign = node_ids(t, other)[0].get();
        let (status, _) = get(
            &app,
            &format!("/deployments/{id}/nodes/{foreign}/telemetry/series"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let own = node_ids(t, id)[0].get();
        let (status, _) = delete(&app, &format!("/deployments/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        for uri in [
            format!("/deployments/{id}/nodes/{own}/telemetry/series"),
            format!("/deployments/{id}/telemetry/series"),
        ] {
            let (status, body) = get(&app, &uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        }
    })
}

netorch_testkit::backend_tests!(
    series_serve_node_and_fleet_buckets,
    series_refuse_bad_ranges_and_unknown_nodes,
);
