//! Every kind of invalid input, route by route, as one table: each row is a request and the
//! exact `(type, loc)` list its 422 must carry. After the table, nothing was written.

use crate::common::*;

/// One invalid request and the errors its 422 names, in order.
struct Case {
    method: &'static str,
    /// `{id}` is replaced by an existing deployment's id, `{node}` by one of its nodes.
    uri: &'static str,
    body: Option<String>,
    want: Vec<(&'static str, Value)>,
}

fn get_case(uri: &'static str, want: Vec<(&'static str, Value)>) -> Case {
    Case {
        method: "GET",
        uri,
        body: None,
        want,
    }
}

fn post_case(uri: &'static str, body: impl Into<String>, want: Vec<(&'static str, Value)>) -> Case {
    Case {
        method: "POST",
        uri,
        body: Some(body.into()),
        want,
    }
}

fn query(kind: &'static str, field: &str) -> Vec<(&'static str, Value)> {
    vec![(kind, json!(["query", field]))]
}

fn cases() -> Vec<Case> {
    let long = "n".repeat(256);
    let sample = |extra: Value| {
        let mut s =
            json!({"node_id": 1, "latency_ms": 1.0, "throughput_gbps": 1.0, "error_rate": 0.0});
        if let (Some(s), Value::Object(extra)) = (s.as_object_mut(), extra) {
            s.extend(extra);
        }
        json!({ "samples": [s] }).to_string()
    };
    let at0 = |field: &str| json!(["body", "samples", 0, field]);
    vec![
        // Unknown fields, in every body and sample, as pydantic's extra="forbid".
        post_case(
            "/deployments",
            r#"{"name": "a", "target_node_count": 1, "nodes": 5, "status": "PAUSED"}"#,
            vec![
                ("extra_forbidden", json!(["body", "nodes"])),
                ("extra_forbidden", json!(["body", "status"])),
            ],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"host": "sw1"})),
            vec![("extra_forbidden", at0("host"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            r#"{"samples": [], "deployment": 1}"#,
            vec![("extra_forbidden", json!(["body", "deployment"]))],
        ),
        // POST /deployments
        post_case(
            "/deployments",
            r#"{"target_node_count": 3}"#,
            vec![("missing", json!(["body", "name"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": "a"}"#,
            vec![("missing", json!(["body", "target_node_count"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": "", "target_node_count": 0}"#,
            vec![
                ("string_too_short", json!(["body", "name"])),
                ("greater_than_equal", json!(["body", "target_node_count"])),
            ],
        ),
        post_case(
            "/deployments",
            format!(r#"{{"name": "{long}", "target_node_count": 1}}"#),
            vec![("string_too_long", json!(["body", "name"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": "a", "target_node_count": 1001}"#,
            vec![("less_than_equal", json!(["body", "target_node_count"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": "a", "target_node_count": 100000000000000000000000}"#,
            vec![("less_than_equal", json!(["body", "target_node_count"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": "a", "target_node_count": "many"}"#,
            vec![("int_parsing", json!(["body", "target_node_count"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": "a", "target_node_count": 2.5}"#,
            vec![("int_from_float", json!(["body", "target_node_count"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": "a", "target_node_count": true}"#,
            vec![("int_type", json!(["body", "target_node_count"]))],
        ),
        post_case(
            "/deployments",
            r#"{"name": 7, "target_node_count": 1, "description": []}"#,
            vec![
                ("string_type", json!(["body", "name"])),
                ("string_type", json!(["body", "description"])),
            ],
        ),
        post_case(
            "/deployments",
            r#"{"name": "a\u0000b", "target_node_count": 1, "description": "x\u0000"}"#,
            vec![
                ("string_pattern_mismatch", json!(["body", "name"])),
                ("string_pattern_mismatch", json!(["body", "description"])),
            ],
        ),
        post_case(
            "/deployments",
            "[1, 2]",
            vec![("model_attributes_type", json!(["body"]))],
        ),
        post_case("/deployments", "", vec![("missing", json!(["body"]))]),
        post_case(
            "/deployments",
            r#"{"name": "a", "#,
            vec![("json_invalid", json!(["body", 14]))],
        ),
        // GET /deployments
        get_case("/deployments?limit=0", query("greater_than_equal", "limit")),
        get_case("/deployments?limit=1001", query("less_than_equal", "limit")),
        get_case("/deployments?skip=-1", query("greater_than_equal", "skip")),
        get_case("/deployments?skip=x", query("int_parsing", "skip")),
        get_case(
            "/deployments?skip=-1&limit=0",
            vec![
                ("greater_than_equal", json!(["query", "skip"])),
                ("greater_than_equal", json!(["query", "limit"])),
            ],
        ),
        get_case("/deployments?skip=%ZZ", query("int_parsing", "skip")),
        // paths
        get_case(
            "/deployments/x",
            vec![("int_parsing", json!(["path", "deployment_id"]))],
        ),
        get_case(
            "/deployments/99999999999999999999999",
            vec![("less_than_equal", json!(["path", "deployment_id"]))],
        ),
        get_case(
            "/deployments/x/nodes/y",
            vec![
                ("int_parsing", json!(["path", "deployment_id"])),
                ("int_parsing", json!(["path", "node_id"])),
            ],
        ),
        // GET .../nodes
        get_case(
            "/deployments/x/nodes?state=UP&limit=0",
            vec![
                ("int_parsing", json!(["path", "deployment_id"])),
                ("enum", json!(["query", "state"])),
                ("greater_than_equal", json!(["query", "limit"])),
            ],
        ),
        // GET .../telemetry
        get_case(
            "/deployments/{id}/telemetry?start_time=yesterday",
            query("datetime_from_date_parsing", "start_time"),
        ),
        get_case(
            "/deployments/{id}/telemetry?end_time=2026-13-40",
            query("datetime_from_date_parsing", "end_time"),
        ),
        get_case(
            "/deployments/{id}/telemetry?limit=1001",
            query("less_than_equal", "limit"),
        ),
        get_case(
            "/deployments/{id}/telemetry?node_id=abc",
            query("int_parsing", "node_id"),
        ),
        // POST .../telemetry
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"latency_ms": -1.0})),
            vec![("greater_than_equal", at0("latency_ms"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"error_rate": 100.5})),
            vec![("less_than_equal", at0("error_rate"))],
        ),
        // Values whose statistics would overflow to infinity (they once came back as null
        // scores in the bottleneck report).
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"throughput_gbps": 3.754e307})),
            vec![("less_than_equal", at0("throughput_gbps"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"latency_ms": 86_400_000.5})),
            vec![("less_than_equal", at0("latency_ms"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"latency_ms": "fast"})),
            vec![("float_parsing", at0("latency_ms"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"throughput_gbps": null})),
            vec![("float_type", at0("throughput_gbps"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"timestamp": "soon"})),
            vec![("datetime_from_date_parsing", at0("timestamp"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            sample(json!({"node_id": 1.5})),
            vec![("int_from_float", at0("node_id"))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            r#"{"samples": [{"node_id": 1}]}"#,
            vec![
                ("missing", at0("latency_ms")),
                ("missing", at0("throughput_gbps")),
                ("missing", at0("error_rate")),
            ],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            r#"{"samples": 5}"#,
            vec![("list_type", json!(["body", "samples"]))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            r#"{"samples": [1]}"#,
            vec![("model_attributes_type", json!(["body", "samples", 0]))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            r#"{}"#,
            vec![("missing", json!(["body", "samples"]))],
        ),
        post_case(
            "/deployments/{id}/telemetry",
            r#"{"samples": [NaN]}"#,
            vec![("json_invalid", json!(["body", 14]))],
        ),
        // The path is read before the body, as the original did.
        post_case(
            "/deployments/x/telemetry",
            "{}",
            vec![("int_parsing", json!(["path", "deployment_id"]))],
        ),
        // GET .../bottlenecks
        get_case(
            "/deployments/{id}/bottlenecks?analysis_window_minutes=0",
            query("greater_than_equal", "analysis_window_minutes"),
        ),
        get_case(
            "/deployments/{id}/bottlenecks?analysis_window_minutes=61",
            query("less_than_equal", "analysis_window_minutes"),
        ),
        get_case(
            "/deployments/{id}/bottlenecks?method=mad",
            query("enum", "method"),
        ),
        get_case(
            "/deployments/{id}/bottlenecks?threshold=0",
            query("greater_than", "threshold"),
        ),
        get_case(
            "/deployments/{id}/bottlenecks?threshold=high",
            query("float_parsing", "threshold"),
        ),
        get_case(
            "/deployments/{id}/bottlenecks?threshold=1e999",
            query("float_parsing", "threshold"),
        ),
        // GET .../events
        get_case(
            "/deployments/{id}/events?event_type=CREATED",
            query("enum", "event_type"),
        ),
        get_case(
            "/deployments/{id}/events?limit=0",
            query("greater_than_equal", "limit"),
        ),
        get_case(
            "/deployments/{id}/events?after=x",
            query("int_parsing", "after"),
        ),
        get_case(
            "/deployments/{id}/events?after=-1",
            query("greater_than_equal", "after"),
        ),
    ]
}

/// Sends `case` and checks its 422 names exactly the expected errors, each with a message and
/// the input, and a `ctx` for every limit.
async fn check<S, B>(app: &S, case: &Case, id: i64)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let uri = case.uri.replace("{id}", &id.to_string());
    let (status, body) = match &case.body {
        Some(body) => post(app, &uri, body).await,
        None => get(app, &uri).await,
    };
    let label = format!(
        "{} {uri} {}",
        case.method,
        case.body.as_deref().unwrap_or("")
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {body}");
    let want: Vec<(String, Value)> = case
        .want
        .iter()
        .map(|(kind, loc)| ((*kind).to_owned(), loc.clone()))
        .collect();
    assert_eq!(errors(&body), want, "{label}");
    for error in body["detail"].as_array().into_iter().flatten() {
        let kind = error["type"].as_str().unwrap_or_default();
        if kind.starts_with("greater") || kind.starts_with("less") || kind.starts_with("string_too")
        {
            assert!(error["ctx"].is_object(), "{label}: {error}");
        }
    }
}

fn every_invalid_input_is_a_422_naming_each_field_and_writes_nothing(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "target", 3).await;
        let before = telemetry::count(&mut t.db.get().expect("connection"), DeploymentId(id))
            .expect("count");
        for case in cases() {
            check(&app, &case, id).await;
        }
        let (_, list) = get(&app, "/deployments").await;
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(1),
            "no deployment was written"
        );
        let after = telemetry::count(&mut t.db.get().expect("connection"), DeploymentId(id))
            .expect("count");
        assert_eq!((before, after), (0, 0), "no sample was written");
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
    })
}

/// `PATCH` with a field it does not know (a misspelt `target_node_count`, a state that is
/// changed by its own operation) is a 422 naming it, and changes nothing: before, it answered
/// 200 and ignored it.
fn a_patch_with_unknown_fields_is_a_422_and_changes_nothing(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "kept", 3).await;
        let uri = format!("/deployments/{id}");
        let (_, before) = get(&app, &uri).await;
        for (body, field) in [
            (r#"{"nodes": 50}"#, "nodes"),
            (r#"{"status": "PAUSED"}"#, "status"),
            (
                r#"{"target_node_count": 5, "max_inflight": 2}"#,
                "max_inflight",
            ),
        ] {
            let req = test::TestRequest::patch()
                .uri(&uri)
                .insert_header(("content-type", "application/json"))
                .set_payload(body)
                .to_request();
            let (status, answer) = call(&app, req).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert_eq!(
                answer["detail"][0],
                json!({"type": "extra_forbidden", "loc": ["body", field],
                       "msg": "Extra inputs are not permitted",
                       "input": serde_json::from_str::<Value>(body).expect("json")[field]}),
                "{body}"
            );
        }
        let (_, after) = get(&app, &uri).await;
        assert_eq!(before, after, "nothing changed");
        assert_eq!(after["target_node_count"], 3);
    })
}

netorch_testkit::backend_tests!(
    every_invalid_input_is_a_422_naming_each_field_and_writes_nothing,
    a_patch_with_unknown_fields_is_a_422_and_changes_nothing,
);
