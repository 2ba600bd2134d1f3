use crate::common::*;

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
        // The served document states this server's limit.
        let (_, doc) = get(&app, "/openapi.json").await;
        let count =
            &doc["components"]["schemas"]["DeploymentCreate"]["properties"]["target_node_count"];
        assert_eq!(
            (&count["minimum"], &count["maximum"]),
            (&json!(1), &json!(5000))
        );
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
            json!({"PENDING": 3, "PROVISIONING": 0, "CONFIGURING": 0, "RUNNING": 2, "FAILED": 1,
                "DECOMMISSIONING": 0})
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

fn deleting_a_deployment_removes_everything_but_its_audit_log(t: &TestDatabase) {
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
        // As the original: telemetry of a deployment that is gone is 404, and its samples are.
        let (status, body) = get(&app, &format!("/deployments/{id}/telemetry")).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
        let left = telemetry::count(&mut t.db.get().expect("connection"), DeploymentId(id))
            .expect("count");
        assert_eq!(left, 0, "the samples were deleted with the deployment");
        let (status, events) = get(&app, &format!("/deployments/{id}/events")).await;
        assert_eq!(status, StatusCode::OK);
        let kinds: Vec<&str> = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event_type"].as_str().unwrap_or(""))
            .collect();
        // The audit log is append-only: its history stays readable, the delete last.
        assert_eq!(kinds.first(), Some(&"DEPLOYMENT_CREATED"), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"DEPLOYMENT_DELETED"), "{kinds:?}");
        assert!(kinds.contains(&"STATE_CHANGE"), "{kinds:?}");
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

/// Where a deployment's telemetry comes from is chosen at creation, shown with it, and fixed:
/// simulated by default, pushed only on request; any other value is a 422 naming the field, and
/// `PATCH` does not take it.
fn telemetry_origin_is_chosen_at_creation(t: &TestDatabase) {
    with_app!(t, |app| {
        let (_, simulated) = post(
            &app,
            "/deployments",
            r#"{"name": "sim", "target_node_count": 2}"#,
        )
        .await;
        assert_eq!(simulated["telemetry_origin"], "simulated");
        let (status, pushed) = post(
            &app,
            "/deployments",
            r#"{"name": "real", "target_node_count": 2, "telemetry_origin": "pushed"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{pushed}");
        assert_eq!(pushed["telemetry_origin"], "pushed");
        let id = pushed["id"].as_i64().expect("id");
        let (_, read) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(read["telemetry_origin"], "pushed");
        let (_, listed) = get(&app, "/deployments").await;
        assert_eq!(listed[0]["telemetry_origin"], "pushed");
        assert_eq!(listed[1]["telemetry_origin"], "simulated");

        for bad in [r#""snmp""#, "3", "null"] {
            let body =
                format!(r#"{{"name": "x", "target_node_count": 1, "telemetry_origin": {bad}}}"#);
            let (status, error) = post(&app, "/deployments", &body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {error}");
            assert_eq!(error["detail"][0]["type"], "enum", "{error}");
            assert_eq!(
                error["detail"][0]["loc"],
                json!(["body", "telemetry_origin"]),
                "{error}"
            );
        }
        let req = test::TestRequest::patch()
            .uri(&format!("/deployments/{id}"))
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"telemetry_origin": "simulated"}"#)
            .to_request();
        let (status, error) = call(&app, req).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["detail"][0]["type"], "extra_forbidden", "{error}");
        let (_, still) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(still["telemetry_origin"], "pushed");
        // Only two deployments were made.
        let (_, listed) = get(&app, "/deployments").await;
        assert_eq!(listed.as_array().map(Vec::len), Some(2));
    })
}

/// The names a listing holds, in order.
fn names(body: &Value) -> Vec<&str> {
    body.as_array()
        .expect("array")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect()
}

fn deployments_are_searched_filtered_and_sorted_where_they_are_stored(t: &TestDatabase) {
    with_app!(t, |app| {
        // dc-west twice (names may repeat), a finished one, a degraded one, a paused one.
        let west = create(&app, "dc-west", 2).await;
        let west_again = create(&app, "DC-West", 1).await;
        let done = create(&app, "lab_100%", 2).await;
        let degraded = create(&app, "core", 3).await;
        for node in node_ids(t, done) {
            run_node(t, done, node);
        }
        let nodes = node_ids(t, degraded);
        fail_node(t, degraded, nodes[0]);
        fail_node(t, degraded, nodes[1]);
        run_node(t, degraded, nodes[2]);
        let (status, _) = post(&app, &format!("/deployments/{west_again}/pause"), "").await;
        assert_eq!(status, StatusCode::OK);

        let list = |query: &str| {
            let app = &app;
            let query = query.to_owned();
            async move {
                let (status, body) = get(app, &format!("/deployments?{query}")).await;
                assert_eq!(status, StatusCode::OK, "{query}: {body}");
                body
            }
        };
        // A name search ignores ASCII case; the pattern's own characters match themselves.
        assert_eq!(names(&list("name=WEST").await), ["DC-West", "dc-west"]);
        assert_eq!(names(&list("name=_100%25").await), ["lab_100%"]);
        assert_eq!(names(&list("name=b%25").await), Vec::<&str>::new());
        assert_eq!(names(&list("name=b_").await), ["lab_100%"]);
        // Statuses as each deployment shows its own.
        for (status, expected) in [
            ("COMPLETE", vec!["lab_100%"]),
            ("DEGRADED", vec!["core"]),
            ("PAUSED", vec!["DC-West"]),
            ("PROGRESSING", vec!["dc-west"]),
        ] {
            let body = list(&format!("status={status}")).await;
            assert_eq!(names(&body), expected, "{status}");
            assert!(
                body.as_array()
                    .expect("array")
                    .iter()
                    .all(|d| d["status"] == status)
            );
        }
        // Orders; ties newest first; a search, a filter and an order together, paged.
        assert_eq!(
            names(&list("sort=oldest").await),
            ["dc-west", "DC-West", "lab_100%", "core"]
        );
        assert_eq!(
            names(&list("sort=name").await),
            ["core", "DC-West", "dc-west", "lab_100%"]
        );
        assert_eq!(
            names(&list("sort=most_failed").await),
            ["core", "lab_100%", "DC-West", "dc-west"]
        );
        assert_eq!(
            names(&list("name=west&sort=oldest&skip=1&limit=1").await),
            ["DC-West"]
        );
        let _ = (west, degraded);
        // Bad input is a 422 naming the parameter, and changes nothing.
        for (query, kind, field) in [
            ("status=DONE", "enum", "status"),
            ("sort=size", "enum", "sort"),
            ("name=", "string_too_short", "name"),
        ] {
            let (status, body) = get(&app, &format!("/deployments?{query}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
            assert_eq!(
                errors(&body),
                vec![(kind.to_owned(), json!(["query", field]))]
            );
        }
        let long = "x".repeat(256);
        let (status, _) = get(&app, &format!("/deployments?name={long}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    })
}

fn the_fleet_s_totals_count_every_deployment_node_and_alert(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, empty) = get(&app, "/fleet").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            empty,
            json!({
                "deployments": {"total": 0, "by_status":
                    {"COMPLETE": 0, "DEGRADED": 0, "PAUSED": 0, "PROGRESSING": 0}},
                "nodes": {"total": 0, "by_state": {"CONFIGURING": 0, "DECOMMISSIONING": 0,
                    "FAILED": 0, "PENDING": 0, "PROVISIONING": 0, "RUNNING": 0}},
                "alerts": {"firing": 0, "firing_by_severity":
                    {"critical": 0, "info": 0, "warning": 0}, "pending": 0},
            })
        );
        let done = create(&app, "done", 2).await;
        let failing = create(&app, "failing", 3).await;
        for node in node_ids(t, done) {
            run_node(t, done, node);
        }
        fail_node(t, failing, node_ids(t, failing)[0]);
        let (_, fleet) = get(&app, "/fleet").await;
        assert_eq!(fleet["deployments"]["total"], 2);
        assert_eq!(fleet["deployments"]["by_status"]["COMPLETE"], 1);
        assert_eq!(fleet["deployments"]["by_status"]["PROGRESSING"], 1);
        assert_eq!(fleet["nodes"]["total"], 5);
        assert_eq!(
            fleet["nodes"]["by_state"],
            json!({"CONFIGURING": 0, "DECOMMISSIONING": 0, "FAILED": 1, "PENDING": 2,
                "PROVISIONING": 0, "RUNNING": 2})
        );
    })
}

netorch_testkit::backend_tests!(
    deployments_are_searched_filtered_and_sorted_where_they_are_stored,
    the_fleet_s_totals_count_every_deployment_node_and_alert,
    telemetry_origin_is_chosen_at_creation,
    creating_a_deployment_creates_its_pending_nodes,
    the_node_limit_is_the_server_s,
    deployments_list_newest_first_with_paging,
    a_deployment_reports_its_node_states,
    deleting_a_deployment_removes_everything_but_its_audit_log,
);
