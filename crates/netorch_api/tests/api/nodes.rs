use crate::common::*;

fn listings_show_every_node_change_at_once(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "cached", 3).await;
        let nodes = node_ids(t, id);
        let uri = format!("/deployments/{id}/nodes");
        let states = |body: &Value| -> Vec<String> {
            body["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|n| n["state"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let (_, first) = get(&app, &uri).await;
        let (_, again) = get(&app, &uri).await;
        assert_eq!(first, again, "an unchanged deployment lists the same");
        assert_eq!(states(&again), ["PENDING", "PENDING", "PENDING"]);
        // Changed behind the server's back, as a worker in another process would.
        fail_node(t, id, nodes[1]);
        let (_, after) = get(&app, &uri).await;
        assert_eq!(states(&after), ["PENDING", "FAILED", "PENDING"]);
        assert_eq!(after["nodes"][1]["failure_reason"], "cable cut");
        let (_, failed) = get(&app, &format!("{uri}?state=FAILED")).await;
        assert_eq!(failed["total"], 1);
        post(&app, &format!("{uri}/{}/retry", nodes[1]), "").await;
        let (_, retried) = get(&app, &uri).await;
        assert_eq!(states(&retried), ["PENDING", "PENDING", "PENDING"]);
        assert_eq!(retried["nodes"][1]["attempt"], 1);
        let (_, failed) = get(&app, &format!("{uri}?state=FAILED")).await;
        assert_eq!(failed["total"], 0);
        delete(&app, &format!("/deployments/{id}")).await;
        let (status, _) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
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

fn one_node_by_id_or_name(t: &TestDatabase) {
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
        // By the name its JSON calls `node_id`: the same node, in its deployment only.
        let (status, by_name) = get(&app, &format!("/deployments/{a}/nodes/node-002")).await;
        assert_eq!(
            (status, by_name["id"].as_i64()),
            (StatusCode::OK, Some(node.get()))
        );
        let other = node_ids(t, b)[1];
        let (_, in_b) = get(&app, &format!("/deployments/{b}/nodes/node-002")).await;
        assert_eq!(in_b["id"].as_i64(), Some(other.get()));
        let (status, body) = get(&app, &format!("/deployments/{a}/nodes/node-003")).await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"detail": "Node not found"}))
        );
        let (status, body) = get(&app, "/deployments/999999/nodes/node-001").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
        // Telemetry and events filter by name too.
        fail_node(t, a, node);
        let (_, events) = get(&app, &format!("/deployments/{a}/events?node_id=node-002")).await;
        let nodes_seen: Vec<i64> = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["node_id"].as_i64().expect("node event"))
            .collect();
        assert_eq!(nodes_seen, vec![node.get(), node.get()]);
        let (_, none) = get(&app, &format!("/deployments/{a}/events?node_id=node-077")).await;
        assert_eq!(none["events"], json!([]));
        let (status, retried) =
            post(&app, &format!("/deployments/{a}/nodes/node-002/retry"), "").await;
        assert_eq!(
            (status, retried["attempt"].as_i64()),
            (StatusCode::OK, Some(1))
        );
        let (status, body) = get(&app, &format!("/deployments/{a}/nodes/switch-1")).await;
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
            json!({"node_name": "node-001", "attempt": 1, "from_state": "FAILED", "to_state": "PENDING",
                "actor": "anonymous"})
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

netorch_testkit::backend_tests!(
    listings_show_every_node_change_at_once,
    nodes_filter_by_state_and_page,
    one_node_by_id_or_name,
    retry_restarts_failed_nodes_and_conflicts_otherwise,
);
