//! Rollout control through the API: the settings on create and `PATCH`, pause and resume,
//! and `status` / `progress` in every deployment response.

use crate::common::*;

pub async fn patch<S, B>(app: &S, uri: &str, body: &str) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = test::TestRequest::patch()
        .uri(uri)
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_owned())
        .to_request();
    call(app, req).await
}

fn event_types(t: &TestDatabase, deployment: i64) -> Vec<String> {
    let mut conn = t.db.get().expect("connection");
    netorch_storage::events::list(
        &mut conn,
        &netorch_storage::events::EventQuery {
            deployment: Some(DeploymentId(deployment)),
            after: None,
            event_type: None,
            node: None,
            actor: None,
            limit: 1000,
        },
    )
    .expect("events")
    .into_iter()
    .map(|e| e.event_type.as_str().to_owned())
    .collect()
}

fn rollout_settings_are_kept_and_shown_with_status_and_progress(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, created) = post(
            &app,
            "/deployments",
            r#"{"name": "paced", "target_node_count": 6, "max_in_flight": 2,
                "max_failure_percent": 12.5, "max_retries": 3, "phase_timeout_seconds": 90}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["max_in_flight"], 2);
        assert_eq!(created["max_failure_percent"], 12.5);
        assert_eq!(created["max_retries"], 3);
        assert_eq!(created["phase_timeout_seconds"], 90);
        assert_eq!(created["status"], "PROGRESSING");
        assert_eq!(created["progress"], json!({"finished": 0, "total": 6}));
        assert_eq!(created["paused_at"], Value::Null);
        let id = created["id"].as_i64().expect("id");

        // Without settings: the original behaviour, stated as such.
        let plain_id = create(&app, "plain", 3).await;
        let (_, plain) = get(&app, &format!("/deployments/{plain_id}")).await;
        for field in [
            "max_in_flight",
            "max_failure_percent",
            "phase_timeout_seconds",
        ] {
            assert_eq!(plain[field], Value::Null, "{field}");
        }
        assert_eq!(plain["max_retries"], 0);

        // Progress and status follow the nodes, in the list too.
        let ids = node_ids(t, id);
        for node in &ids[..5] {
            run_node(t, id, *node);
        }
        fail_node(t, id, ids[5]);
        let (_, detail) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(detail["status"], "DEGRADED");
        assert_eq!(detail["progress"], json!({"finished": 6, "total": 6}));
        let (_, list) = get(&app, "/deployments").await;
        let listed = list
            .as_array()
            .expect("list")
            .iter()
            .find(|d| d["id"] == id)
            .expect("listed")
            .clone();
        assert_eq!(listed["status"], "DEGRADED");
        assert_eq!(listed["progress"], detail["progress"]);
        assert_eq!(listed["max_in_flight"], 2);
        let (_, node) = get(&app, &format!("/deployments/{id}/nodes/{}", ids[5])).await;
        assert_eq!(node["retry_at"], Value::Null);
    })
}

fn rollout_settings_are_validated(t: &TestDatabase) {
    with_app!(t, |app| {
        let bad = [
            (
                r#""max_in_flight": 0"#,
                "greater_than_equal",
                "max_in_flight",
            ),
            (r#""max_in_flight": "many""#, "int_parsing", "max_in_flight"),
            (
                r#""max_failure_percent": 100.5"#,
                "less_than_equal",
                "max_failure_percent",
            ),
            // The nearest double above 100, not 100 rounded: numbers are read exactly.
            (
                r#""max_failure_percent": 100.00000000000001"#,
                "less_than_equal",
                "max_failure_percent",
            ),
            (
                r#""max_failure_percent": -1"#,
                "greater_than_equal",
                "max_failure_percent",
            ),
            (r#""max_retries": -1"#, "greater_than_equal", "max_retries"),
            (r#""max_retries": null"#, "int_type", "max_retries"),
            (r#""max_retries": 101"#, "less_than_equal", "max_retries"),
            (
                r#""phase_timeout_seconds": 0"#,
                "greater_than_equal",
                "phase_timeout_seconds",
            ),
            (
                r#""phase_timeout_seconds": 1.5"#,
                "int_from_float",
                "phase_timeout_seconds",
            ),
        ];
        for (field, kind, name) in bad {
            let body = format!(r#"{{"name": "x", "target_node_count": 2, {field}}}"#);
            let (status, errors_body) = post(&app, "/deployments", &body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(
                errors(&errors_body),
                vec![(kind.to_owned(), json!(["body", name]))],
                "{body}"
            );
        }
        let (_, list) = get(&app, "/deployments").await;
        assert_eq!(list, json!([]), "nothing was created");

        let id = create(&app, "x", 2).await;
        for (field, kind, name) in bad {
            let body = format!("{{{field}}}");
            let (status, errors_body) = patch(&app, &format!("/deployments/{id}"), &body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(
                errors(&errors_body),
                vec![(kind.to_owned(), json!(["body", name]))],
                "{body}"
            );
        }
        let (status, errors_body) =
            patch(&app, &format!("/deployments/{id}"), r#"{"name": ""}"#).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(errors(&errors_body)[0].1, json!(["body", "name"]));
        let (status, _) = patch(&app, &format!("/deployments/{id}"), "[1]").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            event_types(t, id),
            vec!["DEPLOYMENT_CREATED"],
            "nothing was changed"
        );
    })
}

fn patch_changes_what_it_names_and_records_it(t: &TestDatabase) {
    with_app!(t, |app| {
        let (_, created) = post(
            &app,
            "/deployments",
            r#"{"name": "a", "description": "first", "target_node_count": 2, "max_in_flight": 5}"#,
        )
        .await;
        let id = created["id"].as_i64().expect("id");
        let uri = format!("/deployments/{id}");
        let (status, body) = patch(
            &app,
            &uri,
            r#"{"name": "b", "max_retries": 2, "max_in_flight": null, "phase_timeout_seconds": 60}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["name"], "b");
        assert_eq!(body["description"], "first", "absent fields are kept");
        assert_eq!(body["max_in_flight"], Value::Null, "null removes the limit");
        assert_eq!(body["max_retries"], 2);
        assert_eq!(body["phase_timeout_seconds"], 60);
        assert_eq!(body["node_states"]["PENDING"], 2);
        let (_, again) = get(&app, &uri).await;
        assert_eq!(again["name"], "b");
        assert_eq!(again["max_retries"], 2);
        // The same values again, or nothing at all, change nothing and record nothing.
        let (status, _) = patch(&app, &uri, r#"{"name": "b", "max_retries": 2}"#).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = patch(&app, &uri, "{}").await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = patch(&app, &uri, r#"{"description": null}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["description"], Value::Null);
        assert_eq!(
            event_types(t, id),
            vec![
                "DEPLOYMENT_CREATED",
                "DEPLOYMENT_UPDATED",
                "DEPLOYMENT_UPDATED"
            ]
        );
        let (status, body) = patch(&app, "/deployments/999999", r#"{"name": "c"}"#).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "Deployment not found"})
            )
        );
    })
}

fn pause_and_resume_are_idempotent_and_recorded(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "p", 3).await;
        let (status, body) = post(&app, &format!("/deployments/{id}/pause"), "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "PAUSED");
        assert!(is_timestamp(&body["paused_at"]), "{body}");
        let (_, again) = post(&app, &format!("/deployments/{id}/pause"), "").await;
        assert_eq!(
            again["paused_at"], body["paused_at"],
            "pausing twice keeps the first"
        );
        let (_, detail) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(detail["status"], "PAUSED");
        let (status, body) = post(&app, &format!("/deployments/{id}/resume"), "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "PROGRESSING");
        assert_eq!(body["paused_at"], Value::Null);
        let (status, _) = post(&app, &format!("/deployments/{id}/resume"), "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            event_types(t, id),
            vec![
                "DEPLOYMENT_CREATED",
                "DEPLOYMENT_PAUSED",
                "DEPLOYMENT_RESUMED"
            ]
        );
        let (status, _) = get(
            &app,
            &format!("/deployments/{id}/events?event_type=DEPLOYMENT_PAUSED"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        for action in ["pause", "resume"] {
            let (status, body) = post(&app, &format!("/deployments/424242/{action}"), "").await;
            assert_eq!(
                (status, body),
                (
                    StatusCode::NOT_FOUND,
                    json!({"detail": "Deployment not found"})
                )
            );
        }
        let (status, _) = post(&app, "/deployments/abc/pause", "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    })
}

fn patch_scales_a_deployment(t: &TestDatabase) {
    with_app!(t, 20, |app| {
        let id = create(&app, "scaled", 3).await;
        let uri = format!("/deployments/{id}");
        let (status, body) = patch(&app, &uri, r#"{"target_node_count": 5}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["target_node_count"], 5);
        assert_eq!(body["node_states"]["PENDING"], 5);
        assert_eq!(body["progress"], json!({"finished": 0, "total": 5}));
        let (_, nodes) = get(&app, &format!("{uri}/nodes")).await;
        assert_eq!(nodes["nodes"][4]["node_id"], "node-005");
        assert_eq!(nodes["nodes"][4]["hostname"], format!("switch-{id}-005"));

        let (status, body) = patch(&app, &uri, r#"{"target_node_count": 2}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["target_node_count"], 2);
        assert_eq!(body["current_node_count"], 5);
        assert_eq!(body["node_states"]["DECOMMISSIONING"], 3);
        assert_eq!(body["node_states"]["PENDING"], 2);
        assert_eq!(body["progress"], json!({"finished": 0, "total": 2}));
        let (_, leaving) = get(&app, &format!("{uri}/nodes?state=DECOMMISSIONING")).await;
        let names: Vec<&str> = leaving["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["node_id"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["node-003", "node-004", "node-005"]);
        // A decommissioning node cannot be retried.
        let (status, body) = post(&app, &format!("{uri}/nodes/node-005/retry"), "").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["current_state"], "DECOMMISSIONING");
        assert_eq!(body["allowed_actions"], json!([]));

        for bad in ["0", "21", "null", "\"many\""] {
            let (status, _) =
                patch(&app, &uri, &format!(r#"{{"target_node_count": {bad}}}"#)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let kinds = event_types(t, id);
        assert_eq!(
            kinds.iter().filter(|k| *k == "DEPLOYMENT_SCALED").count(),
            2,
            "{kinds:?}"
        );
        assert_eq!(kinds.iter().filter(|k| *k == "STATE_CHANGE").count(), 3);
    })
}

netorch_testkit::backend_tests!(
    patch_scales_a_deployment,
    rollout_settings_are_kept_and_shown_with_status_and_progress,
    rollout_settings_are_validated,
    patch_changes_what_it_names_and_records_it,
    pause_and_resume_are_idempotent_and_recorded,
);
