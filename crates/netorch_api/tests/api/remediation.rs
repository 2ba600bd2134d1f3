//! Self-healing's policy through the API: given at creation, changed and turned off with
//! `PATCH`, shown on every deployment with its stop, refused with a 422 naming the field when
//! out of range (nothing changes); nodes show their remediations; the document says it all.

use crate::alerts::evaluate;
use crate::common::*;
use crate::rollout::patch;

fn deployment_of(t: &TestDatabase, id: i64) -> netorch_domain::Deployment {
    let mut conn = t.db.get().expect("connection");
    netorch_storage::deployments::get(&mut conn, DeploymentId(id)).expect("get")
}

fn a_policy_is_given_changed_and_turned_off(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, body) = post(
            &app,
            "/deployments",
            r#"{"name": "edge", "target_node_count": 3,
                "remediation": {"after_seconds": 120, "max_unhealthy_percent": 25}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // The fields left out take their defaults.
        assert_eq!(
            body["remediation"],
            json!({"after_seconds": 120, "max_concurrent": 1, "max_unhealthy_percent": 25.0})
        );
        assert_eq!(body["remediation_stopped"], Value::Null);
        let id = body["id"].as_i64().expect("id");
        let (_, nodes) = get(&app, &format!("/deployments/{id}/nodes")).await;
        assert_eq!(nodes["nodes"][0]["remediations"], 0);
        // Without it: off.
        let (_, plain) = post(
            &app,
            "/deployments",
            r#"{"name": "p", "target_node_count": 1}"#,
        )
        .await;
        assert_eq!(plain["remediation"], Value::Null);
        // Changed whole, recorded.
        let (status, changed) = patch(
            &app,
            &format!("/deployments/{id}"),
            r#"{"remediation": {"max_concurrent": 4}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(
            changed["remediation"],
            json!({"after_seconds": 300, "max_concurrent": 4, "max_unhealthy_percent": 40.0})
        );
        let (_, events) = get(
            &app,
            &format!("/deployments/{id}/events?event_type=DEPLOYMENT_UPDATED"),
        )
        .await;
        assert_eq!(
            events["events"][0]["metadata"]["changes"]["remediation"]["max_concurrent"],
            4
        );
        // A stop shows with its reason: a fleet whose degraded nodes (4 of 20) alert, with a
        // budget of none.
        let (_, fleet) = post(
            &app,
            "/deployments",
            r#"{"name": "fleet", "target_node_count": 20,
                "alert_rules": {"bottleneck": {"for_seconds": 0}},
                "remediation": {"max_unhealthy_percent": 0}}"#,
        )
        .await;
        let fleet = fleet["id"].as_i64().expect("id");
        for node in node_ids(t, fleet) {
            run_node(t, fleet, node);
        }
        seed_telemetry(t, fleet, 10);
        evaluate(t, fleet);
        let outcome = netorch_storage::remediation::pass(
            &mut t.db.get().expect("connection"),
            DeploymentId(fleet),
            Utc::now(),
        )
        .expect("pass")
        .expect("a policy");
        assert!(outcome.remediated.is_empty());
        let id = fleet;
        let (_, stopped) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(stopped["remediation_stopped"]["unhealthy_nodes"], 4);
        assert_eq!(stopped["remediation_stopped"]["total_nodes"], 20);
        assert!(is_timestamp(&stopped["remediation_stopped"]["since"]));
        assert!(
            stopped["remediation_stopped"]["reason"]
                .as_str()
                .expect("reason")
                .starts_with("4 of 20 nodes are unhealthy (20.0%)"),
            "{stopped}"
        );
        let (status, off) = patch(
            &app,
            &format!("/deployments/{id}"),
            r#"{"remediation": null}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{off}");
        assert_eq!(off["remediation"], Value::Null);
        assert_eq!(off["remediation_stopped"], Value::Null);
        assert_eq!(deployment_of(t, id).remediation_stopped, None);
    })
}

fn a_bad_policy_is_a_422_naming_the_field_and_changes_nothing(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "edge", 2).await;
        let before = deployment_of(t, id);
        for (body, kind, loc) in [
            (
                r#"{"remediation": {"max_concurrent": 0}}"#,
                "greater_than_equal",
                json!(["body", "remediation", "max_concurrent"]),
            ),
            (
                r#"{"remediation": {"max_unhealthy_percent": 101}}"#,
                "less_than_equal",
                json!(["body", "remediation", "max_unhealthy_percent"]),
            ),
            (
                r#"{"remediation": {"after_seconds": -1}}"#,
                "greater_than_equal",
                json!(["body", "remediation", "after_seconds"]),
            ),
            (
                r#"{"remediation": {"after_seconds": 604801}}"#,
                "less_than_equal",
                json!(["body", "remediation", "after_seconds"]),
            ),
            (
                r#"{"remediation": {"after_seconds": "soon"}}"#,
                "int_parsing",
                json!(["body", "remediation", "after_seconds"]),
            ),
            (
                r#"{"remediation": {"every": 5}}"#,
                "extra_forbidden",
                json!(["body", "remediation", "every"]),
            ),
            (
                r#"{"remediation": 5}"#,
                "model_attributes_type",
                json!(["body", "remediation"]),
            ),
            (
                r#"{"remediation": []}"#,
                "model_attributes_type",
                json!(["body", "remediation"]),
            ),
        ] {
            let (status, answer) = patch(&app, &format!("/deployments/{id}"), body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert_eq!(errors(&answer), [(kind.to_owned(), loc)], "{body}");
            // The same body's field at creation is refused the same way.
            let create = body.replacen('{', r#"{"name": "x", "target_node_count": 1, "#, 1);
            let (status, _) = post(&app, "/deployments", &create).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{create}");
        }
        assert_eq!(deployment_of(t, id), before, "nothing changed");
        let mut conn = t.db.get().expect("connection");
        assert_eq!(
            netorch_storage::deployments::count(&mut conn).expect("count"),
            1
        );
        // No threshold rule may take the stop alert's rule name.
        let (status, answer) = patch(
            &app,
            &format!("/deployments/{id}"),
            r#"{"alert_rules": {"thresholds": [{"name": "remediation", "metric": "latency_ms",
                "op": ">", "value": 50}]}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    })
}

fn the_document_shows_the_policy(t: &TestDatabase) {
    with_app!(t, |app| {
        let (_, doc) = get(&app, "/openapi.json").await;
        let schemas = &doc["components"]["schemas"];
        for body in ["DeploymentCreate", "DeploymentPatch"] {
            let remediation = &schemas[body]["properties"]["remediation"];
            assert_eq!(remediation["type"], json!(["object", "null"]), "{body}");
            assert_eq!(remediation["additionalProperties"], false);
            assert_eq!(remediation["properties"]["max_concurrent"]["minimum"], 1);
            assert_eq!(
                remediation["properties"]["max_unhealthy_percent"]["maximum"],
                100.0
            );
            assert_eq!(remediation["properties"]["after_seconds"]["default"], 300);
        }
        let out = &schemas["DeploymentOut"]["properties"];
        assert!(out.get("remediation").is_some() && out.get("remediation_stopped").is_some());
        assert!(
            schemas["NodeOut"]["properties"]
                .get("remediations")
                .is_some()
        );
        let events = doc.to_string();
        for kind in [
            "NODE_REMEDIATED",
            "REMEDIATION_STOPPED",
            "REMEDIATION_RESUMED",
        ] {
            assert!(events.contains(kind), "{kind} is in the event types");
        }
    })
}

netorch_testkit::backend_tests!(
    a_policy_is_given_changed_and_turned_off,
    a_bad_policy_is_a_422_naming_the_field_and_changes_nothing,
    the_document_shows_the_policy,
);
