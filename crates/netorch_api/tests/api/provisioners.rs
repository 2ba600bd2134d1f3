//! Provisioner profiles through the API: a deployment names one at creation (checked against
//! the server's profiles, with its parameters), shows it, and a node's runs are readable.

use crate::common::*;
use netorch_domain::{Phase, RunOutcome};
use netorch_storage::runs::{self, RunFinish, WantedRun};

fn state(t: &TestDatabase) -> ApiState {
    ApiState::new(t.db.clone(), 1000).with_provisioner_profiles(&["lab".to_owned()])
}

fn deployments_count(t: &TestDatabase) -> i64 {
    let mut conn = t.db.get().expect("connection");
    netorch_storage::deployments::count(&mut conn).expect("count")
}

fn a_deployment_names_a_known_profile_with_its_parameters(t: &TestDatabase) {
    with_state!(state(t), |app| {
        let (status, body) = post(
            &app,
            "/deployments",
            r#"{"name": "edge", "target_node_count": 2, "provisioner": "lab",
                "parameters": {"site": "ams", "vlans": [10, 20]}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["provisioner"], "lab");
        assert_eq!(
            body["parameters"],
            json!({"site": "ams", "vlans": [10, 20]})
        );
        let id = body["id"].as_i64().expect("id");
        let (_, found) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(
            (&found["provisioner"], &found["parameters"]),
            (&json!("lab"), &json!({"site": "ams", "vlans": [10, 20]}))
        );
        // The default: the workers' built-in simulator, no parameters.
        let (_, plain) = post(
            &app,
            "/deployments",
            r#"{"name": "p", "target_node_count": 1}"#,
        )
        .await;
        assert_eq!(
            (&plain["provisioner"], &plain["parameters"]),
            (&json!("simulator"), &json!({}))
        );
        // The document lists the server's profiles.
        let (_, doc) = get(&app, "/openapi.json").await;
        assert_eq!(
            doc["components"]["schemas"]["DeploymentCreate"]["properties"]["provisioner"]["enum"],
            json!(["simulator", "lab"])
        );
    })
}

fn an_unknown_profile_or_bad_parameters_are_refused_and_change_nothing(t: &TestDatabase) {
    with_state!(state(t), |app| {
        for (body, kind, field) in [
            (
                r#"{"name": "x", "target_node_count": 1, "provisioner": "ansible"}"#,
                "enum",
                "provisioner",
            ),
            (
                r#"{"name": "x", "target_node_count": 1, "provisioner": 7}"#,
                "string_type",
                "provisioner",
            ),
            (
                r#"{"name": "x", "target_node_count": 1, "parameters": [1]}"#,
                "dict_type",
                "parameters",
            ),
            (
                r#"{"name": "x", "target_node_count": 1, "parameters": "a=b"}"#,
                "dict_type",
                "parameters",
            ),
        ] {
            let (status, answer) = post(&app, "/deployments", body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert_eq!(
                errors(&answer),
                [(kind.to_owned(), json!(["body", field]))],
                "{body}"
            );
        }
        let (_, answer) = post(
            &app,
            "/deployments",
            r#"{"name": "x", "target_node_count": 1, "provisioner": "nope"}"#,
        )
        .await;
        assert!(
            answer["detail"][0]["msg"]
                .as_str()
                .expect("msg")
                .contains("simulator, lab")
        );
        let big = format!(
            r#"{{"name": "x", "target_node_count": 1, "parameters": {{"blob": "{}"}}}}"#,
            "a".repeat(17 * 1024)
        );
        let (status, answer) = post(&app, "/deployments", &big).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            errors(&answer),
            [("too_long".to_owned(), json!(["body", "parameters"]))]
        );
        assert_eq!(deployments_count(t), 0, "nothing was created");
    });
    // A server without profiles knows the simulator alone.
    with_app!(t, |app| {
        let (status, _) = post(
            &app,
            "/deployments",
            r#"{"name": "x", "target_node_count": 1, "provisioner": "lab"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    })
}

fn a_nodes_runs_are_listed_newest_first(t: &TestDatabase) {
    with_state!(state(t), |app| {
        let (_, body) = post(
            &app,
            "/deployments",
            r#"{"name": "edge", "target_node_count": 2, "provisioner": "lab"}"#,
        )
        .await;
        let id = body["id"].as_i64().expect("id");
        let node_ids = node_ids(t, id);
        // A worker ran the node's provisioning: recorded as a worker records it.
        let mut conn = t.db.get().expect("connection");
        let node = nodes::get(&mut conn, DeploymentId(id), node_ids[0]).expect("node");
        let now = Utc::now();
        let plan = netorch_storage::nodes::TransitionPlan::new(
            &node,
            NodeTrigger::StartProvisioning,
            NodeChange::default(),
        )
        .expect("plan");
        nodes::apply_transitions(&mut conn, &[plan], now).expect("start");
        let node = nodes::get(&mut conn, DeploymentId(id), node.id).expect("node");
        let wanted = runs::wanted(&mut conn, "lab", now, 10).expect("wanted");
        assert_eq!(wanted.len(), 1);
        let WantedRun { phase, .. } = &wanted[0];
        assert_eq!(*phase, Phase::Provisioning);
        let run = runs::claim(
            &mut conn,
            &wanted[0],
            "worker-1",
            now,
            now + Duration::seconds(30),
        )
        .expect("claim")
        .expect("claimed");
        let (_, listed) = get(&app, &format!("/deployments/{id}/nodes/{}/runs", node.name)).await;
        assert_eq!(
            listed["runs"][0]["outcome"],
            Value::Null,
            "still running: {listed}"
        );
        assert_eq!(listed["runs"][0]["worker"], "worker-1");
        let finish = RunFinish {
            outcome: RunOutcome::Failed,
            exit_code: Some(3),
            message: Some("no such rack".into()),
            address: None,
            stdout: "trying\n".into(),
            stderr: "rack 9 missing\n".into(),
        };
        assert!(
            runs::finish(
                &mut conn,
                run,
                "worker-1",
                node.id,
                node.state_changed_at,
                &finish,
                now
            )
            .expect("finish")
        );
        // Recorded once: a second finish (a worker that lost the run) changes nothing.
        assert!(
            !runs::finish(
                &mut conn,
                run,
                "worker-2",
                node.id,
                node.state_changed_at,
                &finish,
                now
            )
            .expect("finish")
        );
        for reference in [node.name.clone(), node.id.to_string()] {
            let (status, listed) =
                get(&app, &format!("/deployments/{id}/nodes/{reference}/runs")).await;
            assert_eq!(status, StatusCode::OK);
            let run = &listed["runs"][0];
            assert_eq!(
                (
                    &run["phase"],
                    &run["outcome"],
                    &run["exit_code"],
                    &run["message"]
                ),
                (
                    &json!("provision"),
                    &json!("failed"),
                    &json!(3),
                    &json!("no such rack")
                )
            );
            assert_eq!(
                (&run["stdout"], &run["stderr"]),
                (&json!("trying\n"), &json!("rack 9 missing\n"))
            );
            assert_eq!(
                (&run["starts"], &run["attempt"], &run["profile"]),
                (&json!(1), &json!(0), &json!("lab"))
            );
            assert!(is_timestamp(&run["finished_at"]));
        }
        // The other node has none; unknown nodes and deployments are 404.
        let (status, listed) = get(
            &app,
            &format!("/deployments/{id}/nodes/{}/runs", node_ids[1]),
        )
        .await;
        assert_eq!((status, listed), (StatusCode::OK, json!({"runs": []})));
        let (status, _) = get(&app, &format!("/deployments/{id}/nodes/node-999/runs")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(&app, "/deployments/999999/nodes/node-001/runs").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
}

netorch_testkit::backend_tests!(
    a_deployment_names_a_known_profile_with_its_parameters,
    an_unknown_profile_or_bad_parameters_are_refused_and_change_nothing,
    a_nodes_runs_are_listed_newest_first,
);
