//! Alerts through the API: rules on deployments (defaults, 422s naming the field, PATCH
//! replacing them), the alert listings, acknowledgement and silences.

use crate::common::*;
use netorch_service::alerts as service;
use netorch_storage::alerts::evaluations;

/// Where each error of a 422 is, dotted: `body.alert_rules.thresholds.0.value`.
fn places(body: &Value) -> Vec<String> {
    errors(body)
        .into_iter()
        .map(|(_, loc)| {
            loc.as_array()
                .expect("loc")
                .iter()
                .map(|part| match part {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

/// Evaluates the deployment's rules now, as the alerts loop would.
pub fn evaluate(t: &TestDatabase, deployment: i64) {
    let now = Utc::now();
    let interval = chrono::TimeDelta::seconds(30);
    let slot = service::slot_of(now, interval);
    let d = DeploymentId(deployment);
    let claimed = evaluations::claim(
        &mut t.db.get().expect("c"),
        d,
        slot,
        "test",
        now + interval,
        now,
    )
    .expect("claim");
    assert!(claimed);
    service::evaluate_deployment(&t.db, d, slot, now)
        .expect("evaluate")
        .expect("applied");
}

fn rules_have_defaults_refuse_what_is_wrong_and_are_replaced_by_patch(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "plain", 2).await;
        let (_, body) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(
            body["alert_rules"],
            json!({
                "bottleneck": {
                    "enabled": true, "method": "robust", "threshold": 3.5, "window_seconds": 600,
                    "for_seconds": 120, "resolve_after_seconds": 120, "severity": "warning"
                },
                "thresholds": []
            })
        );
        let (status, body) = post(
            &app,
            "/deployments",
            r#"{"name": "ruled", "target_node_count": 2, "alert_rules": {
                "bottleneck": {"method": "zscore", "severity": "critical"},
                "thresholds": [{"metric": "latency_ms", "op": ">", "value": 50}]}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let rules = &body["alert_rules"];
        assert_eq!(rules["bottleneck"]["threshold"], 2.0, "zscore's default");
        assert_eq!(rules["bottleneck"]["severity"], "critical");
        assert_eq!(
            rules["thresholds"][0],
            json!({"name": "latency_ms_gt_50", "metric": "latency_ms", "op": ">", "value": 50.0,
                   "scope": "node", "window_seconds": 300, "for_seconds": 120,
                   "resolve_after_seconds": 120, "severity": "warning"})
        );
        let ruled = body["id"].as_i64().expect("id");
        // Each mistake is a 422 naming its place; nothing is created.
        for (rules, place) in [
            (
                r#"{"thresholds": [{"metric": "latency_ms", "op": ">", "value": -1}]}"#,
                "alert_rules.thresholds.0.value",
            ),
            (
                r#"{"thresholds": [{"metric": "latency", "op": ">", "value": 1}]}"#,
                "alert_rules.thresholds.0.metric",
            ),
            (
                r#"{"thresholds": [{"metric": "latency_ms", "op": "=", "value": 1}]}"#,
                "alert_rules.thresholds.0.op",
            ),
            (
                r#"{"thresholds": [{"metric": "latency_ms", "value": 1}]}"#,
                "alert_rules.thresholds.0.op",
            ),
            (
                r#"{"bottleneck": {"window_seconds": 5}}"#,
                "alert_rules.bottleneck.window_seconds",
            ),
            (
                r#"{"bottleneck": {"enabled": "yes"}}"#,
                "alert_rules.bottleneck.enabled",
            ),
            (
                r#"{"bottleneck": {"for": 60}}"#,
                "alert_rules.bottleneck.for",
            ),
            (r#"{"threshold": []}"#, "alert_rules.threshold"),
            (
                r#"{"thresholds": [{"name": "a", "metric": "error_rate", "op": ">", "value": 1},
                                   {"name": "a", "metric": "error_rate", "op": ">", "value": 2}]}"#,
                "alert_rules.thresholds.1.name",
            ),
            (
                r#"{"thresholds": [{"name": "bottleneck", "metric": "error_rate", "op": ">", "value": 1}]}"#,
                "alert_rules.thresholds.0.name",
            ),
        ] {
            let body =
                format!(r#"{{"name": "bad", "target_node_count": 1, "alert_rules": {rules}}}"#);
            let (status, answer) = post(&app, "/deployments", &body).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{rules}: {answer}"
            );
            let places = places(&answer);
            assert!(
                places.contains(&format!("body.{place}")),
                "{rules}: {places:?}"
            );
        }
        let (_, list) = get(&app, "/deployments").await;
        assert_eq!(list.as_array().map(Vec::len), Some(2), "nothing created");
        // PATCH replaces the rules whole: left out, a field takes its default.
        let req = test::TestRequest::patch()
            .uri(&format!("/deployments/{ruled}"))
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"alert_rules": {"bottleneck": {"enabled": false}}}"#)
            .to_request();
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["alert_rules"]["bottleneck"]["enabled"], false);
        assert_eq!(body["alert_rules"]["bottleneck"]["method"], "robust");
        assert_eq!(body["alert_rules"]["thresholds"], json!([]));
        let (_, events) = get(
            &app,
            &format!("/deployments/{ruled}/events?event_type=DEPLOYMENT_UPDATED"),
        )
        .await;
        assert!(
            events["events"][0]["metadata"]["changes"]["alert_rules"].is_object(),
            "{events}"
        );
    })
}

fn alerts_are_listed_acknowledged_and_silenced(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, body) = post(
            &app,
            "/deployments",
            r#"{"name": "watched", "target_node_count": 40,
                "alert_rules": {"bottleneck": {"window_seconds": 300, "for_seconds": 0}}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().expect("id");
        seed_telemetry(t, id, 6);
        evaluate(t, id);
        let truth = node_ids(t, id).into_iter().filter(|n| degraded(*n)).count();
        let (status, page) = get(&app, &format!("/deployments/{id}/alerts?state=firing")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let alerts = page["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), truth, "{page}");
        // The listing, the deployment and the fleet count them as the alerts listing has them;
        // a deployment without alerts counts none.
        let quiet = create(&app, "quiet", 2).await;
        let severity = alerts[0]["severity"].as_str().expect("severity");
        let mut by_severity = json!({"critical": 0, "info": 0, "warning": 0});
        by_severity[severity] = json!(truth);
        let counted = json!({"firing": truth, "firing_by_severity": by_severity, "pending": 0});
        let (_, listing) = get(&app, "/deployments").await;
        let listed = |id: i64| {
            listing
                .as_array()
                .expect("a list")
                .iter()
                .find(|d| d["id"] == id)
                .map(|d| d["alerts"].clone())
        };
        assert_eq!(listed(id), Some(counted.clone()), "{listing}");
        assert_eq!(
            listed(quiet),
            Some(json!({"firing": 0, "pending": 0,
                "firing_by_severity": {"critical": 0, "info": 0, "warning": 0}}))
        );
        let (_, one) = get(&app, &format!("/deployments/{id}")).await;
        assert_eq!(one["alerts"], counted);
        let (_, fleet) = get(&app, "/fleet").await;
        assert_eq!(fleet["alerts"], counted);
        let first = &alerts[0];
        assert_eq!(first["alertname"], "NetorchNodeBottleneck");
        assert_eq!(first["labels"]["deployment"], id.to_string());
        assert_eq!(first["silenced"], false);
        assert!(is_timestamp(&first["starts_at"]));
        let node = first["node_name"].as_str().expect("a node");
        assert_eq!(
            first["generator_url"],
            format!("/ui/deployments/{id}/nodes/{node}")
        );
        // Paging: newest first, `before` the cursor.
        let (_, one) = get(&app, "/alerts?limit=1").await;
        let next = one["next_before"].as_i64().expect("more");
        let (_, rest) = get(&app, &format!("/alerts?before={next}&limit=1000")).await;
        assert_eq!(rest["alerts"].as_array().map(Vec::len), Some(truth - 1));
        assert_eq!(rest["next_before"], Value::Null);
        // By fingerprint and by id.
        let fingerprint = first["fingerprint"].as_str().expect("fingerprint");
        let (status, by_print) = get(&app, &format!("/alerts/{fingerprint}")).await;
        assert_eq!((status, &by_print["id"]), (StatusCode::OK, &first["id"]));
        let alert = first["id"].as_i64().expect("id");
        // Acknowledged with who and why; the filter sees it.
        let (status, acked) = post(
            &app,
            &format!("/alerts/{alert}/ack"),
            r#"{"comment": "on it"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{acked}");
        assert_eq!(acked["acknowledgement"]["by"], "anonymous");
        assert_eq!(acked["acknowledgement"]["comment"], "on it");
        let (_, only) = get(&app, "/alerts?acknowledged=true").await;
        assert_eq!(only["alerts"].as_array().map(Vec::len), Some(1));
        let (status, body) = post(&app, &format!("/alerts/{alert}/ack"), "{}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(places(&body), ["body.comment"]);
        for bad in ["0", "00", "0123", "xyz", "12345678901234567"] {
            let (status, _) = get(&app, &format!("/alerts/{bad}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let (status, _) = get(&app, "/alerts/999999").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(&app, "/alerts/00000000deadbeef").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = post(
            &app,
            &format!("/alerts/{alert}/unack"),
            r#"{"comment": "not me"}"#,
        )
        .await;
        assert_eq!(
            (status, &body["acknowledgement"]),
            (StatusCode::OK, &Value::Null)
        );

        // A silence on this node marks its alert at once; expiring it unmarks it.
        let silence = json!({
            "matchers": [{"name": "deployment", "value": id.to_string()},
                         {"name": "node", "value": node}],
            "ends_at": (Utc::now() + Duration::hours(1)).to_rfc3339(),
            "comment": "maintenance",
        });
        let (status, made) = post(&app, "/silences", &silence.to_string()).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(
            (made["state"].as_str(), made["created_by"].as_str()),
            (Some("active"), Some("anonymous"))
        );
        let silence_id = made["id"].as_i64().expect("id");
        let (_, now) = get(&app, &format!("/alerts/{alert}")).await;
        assert_eq!(
            (now["silenced"].as_bool(), now["silenced_by"].clone()),
            (Some(true), json!([silence_id]))
        );
        let (_, silenced) = get(&app, &format!("/deployments/{id}/alerts?silenced=true")).await;
        assert_eq!(silenced["alerts"].as_array().map(Vec::len), Some(1));
        let (status, expired) = delete(&app, &format!("/silences/{silence_id}")).await;
        assert_eq!(
            (status, expired["state"].as_str()),
            (StatusCode::OK, Some("expired"))
        );
        let (_, now) = get(&app, &format!("/alerts/{alert}")).await;
        assert_eq!(now["silenced"], false);
        let (_, listed) = get(&app, "/silences?state=expired").await;
        assert_eq!(
            listed["silences"][0]["id"], silence_id,
            "expired silences stay listed"
        );
        let (_, log) = get(&app, &format!("/deployments/{id}/events?limit=1000")).await;
        let kinds: Vec<&str> = log["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["event_type"].as_str())
            .filter(|k| {
                k.starts_with("ALERT_A") || k.starts_with("ALERT_U") || k.starts_with("SILENCE")
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "ALERT_ACKNOWLEDGED",
                "ALERT_UNACKNOWLEDGED",
                "SILENCE_CREATED",
                "SILENCE_EXPIRED"
            ]
        );

        // Silences that cannot work are 422s naming the field.
        for (body, place) in [
            (
                json!({"matchers": [{"name": "node", "value": "(", "is_regex": true}], "ends_at": "2100-01-01T00:00:00Z", "comment": "x"}),
                "body.matchers.0.value",
            ),
            (
                json!({"matchers": [], "ends_at": "2100-01-01T00:00:00Z", "comment": "x"}),
                "body.matchers",
            ),
            (
                json!({"matchers": [{"name": "node", "value": "a"}], "ends_at": "2000-01-01T00:00:00Z", "comment": "x"}),
                "body.ends_at",
            ),
            (
                json!({"matchers": [{"name": "node", "value": "a", "regex": true}], "ends_at": "2100-01-01T00:00:00Z", "comment": "x"}),
                "body.matchers.0.regex",
            ),
        ] {
            let (status, answer) = post(&app, "/silences", &body.to_string()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert_eq!(places(&answer), [place], "{answer}");
        }
        let (_, listed) = get(&app, "/silences").await;
        assert_eq!(
            listed["silences"].as_array().map(Vec::len),
            Some(1),
            "nothing made"
        );
        let (status, _) = delete(&app, "/silences/424242").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // A silence expired before it starts is expired (never held anything back).
        let later = json!({
            "matchers": [{"name": "rule", "value": "bottleneck"}],
            "starts_at": (Utc::now() + Duration::hours(1)).to_rfc3339(),
            "ends_at": (Utc::now() + Duration::hours(2)).to_rfc3339(),
            "comment": "tomorrow's work",
        });
        let (status, made) = post(&app, "/silences", &later.to_string()).await;
        assert_eq!(
            (status, made["state"].as_str()),
            (StatusCode::CREATED, Some("pending"))
        );
        let (status, expired) = delete(&app, &format!("/silences/{}", made["id"])).await;
        assert_eq!(
            (status, expired["state"].as_str()),
            (StatusCode::OK, Some("expired"))
        );
        assert_eq!(expired["ends_at"], expired["starts_at"]);
        let (_, pending) = get(&app, "/silences?state=pending").await;
        assert_eq!(pending["silences"], json!([]));
        // The fleet listing reads any deployment's history; a deployment's path needs it.
        let (status, none) = get(&app, "/alerts?deployment_id=424242").await;
        assert_eq!(
            (status, none["alerts"].clone()),
            (StatusCode::OK, json!([]))
        );
        let (status, _) = get(&app, "/deployments/424242/alerts").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
}

fn receivers_keep_their_secrets_and_the_outbox_is_listed(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, body) = post(
            &app,
            "/receivers",
            r#"{"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/in"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(places(&body), ["body.secret"]);
        let (status, body) = post(
            &app,
            "/receivers",
            r#"{"name": "hook", "kind": "webhook", "url": "http://[", "secret": "k"}"#,
        )
        .await;
        assert_eq!(
            (status, places(&body)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec!["body.url".to_owned()]
            )
        );
        let (status, made) = post(
            &app,
            "/receivers",
            r#"{"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/in", "secret": "TOPSECRET"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["has_secret"], true);
        assert!(!made.to_string().contains("TOPSECRET"));
        let (status, _) = post(
            &app,
            "/receivers",
            r#"{"name": "hook", "kind": "alertmanager", "url": "http://127.0.0.1:9"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "names are unique");
        let (status, pd) = post(
            &app,
            "/receivers",
            r#"{"name": "pd", "kind": "pagerduty", "secret": "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{pd}");
        assert_eq!(pd["url"], "https://events.pagerduty.com/v2/enqueue");
        let (_, all) = get(&app, "/receivers").await;
        assert_eq!(all["receivers"].as_array().map(Vec::len), Some(2));
        assert!(!all.to_string().contains("TOPSECRET") && !all.to_string().contains("R0UT1NG"));

        // An alert that fires is told to each receiver, in the transaction that fires it.
        let (_, body) = post(
            &app,
            "/deployments",
            r#"{"name": "told", "target_node_count": 40,
                "alert_rules": {"bottleneck": {"window_seconds": 300, "for_seconds": 0}}}"#,
        )
        .await;
        let id = body["id"].as_i64().expect("id");
        seed_telemetry(t, id, 6);
        evaluate(t, id);
        let truth = node_ids(t, id).into_iter().filter(|n| degraded(*n)).count();
        let (_, outbox) = get(&app, "/notifications?state=pending&limit=1000").await;
        let pending = outbox["notifications"].as_array().expect("notifications");
        assert_eq!(pending.len(), 2 * truth, "{outbox}");
        assert!(
            pending
                .iter()
                .all(|n| n["action"] == "firing" && n["attempts"] == 0)
        );
        let (status, again) = post(
            &app,
            &format!("/notifications/{}/retry", pending[0]["id"]),
            "",
        )
        .await;
        assert_eq!(
            (status, &again["state"]),
            (StatusCode::OK, &json!("pending")),
            "not failed: as it was"
        );
        // Deleting a receiver deletes what it was to be told.
        let (status, _) = delete(&app, &format!("/receivers/{}", made["id"])).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = get(&app, &format!("/receivers/{}", made["id"])).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, outbox) = get(&app, "/notifications?limit=1000").await;
        assert_eq!(
            outbox["notifications"].as_array().map(Vec::len),
            Some(truth)
        );
    })
}

netorch_testkit::backend_tests!(
    receivers_keep_their_secrets_and_the_outbox_is_listed,
    rules_have_defaults_refuse_what_is_wrong_and_are_replaced_by_patch,
    alerts_are_listed_acknowledged_and_silenced,
);
