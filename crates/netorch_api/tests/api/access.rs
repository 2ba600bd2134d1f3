//! Access control: every route × every role (and no token, an unknown, a revoked and an expired
//! token), on both backends.

use crate::common::*;
use netorch_api::auth::AuthMode;
use netorch_domain::Role;

/// Who makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Unknown,
    Revoked,
    Expired,
    Key(Role),
}

/// The app with auth on, run with `$app` bound.
macro_rules! with_keys_app {
    ($t:expr, |$app:ident| $body:block) => {
        with_state!(
            ApiState::new($t.db.clone(), 1000).with_auth(AuthMode::Keys),
            |$app| $body
        )
    };
}

/// A token for each kind of caller: every role's, one revoked and one expired (both of an
/// admin key), and one no key has.
fn tokens(t: &TestDatabase) -> Vec<(Who, String)> {
    let mut conn = t.db.get().expect("connection");
    let now = Utc::now();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let (token, _) = create_key(&mut conn, role.as_str(), role, None, None, now).expect("key");
        tokens.push((Who::Key(role), token));
    }
    let (revoked, _) = create_key(&mut conn, "revoked", Role::Admin, None, None, now).expect("key");
    netorch_storage::api_keys::revoke(&mut conn, "revoked", now).expect("revoke");
    tokens.push((Who::Revoked, revoked));
    let past = now - Duration::hours(2);
    let (expired, _) = create_key(
        &mut conn,
        "expired",
        Role::Admin,
        Some(Duration::hours(1)),
        None,
        past,
    )
    .expect("key");
    tokens.push((Who::Expired, expired));
    tokens.push((
        Who::Unknown,
        netorch_service::keys::new_token().expect("token"),
    ));
    tokens.push((Who::Nobody, String::new()));
    tokens
}

fn request(method: &str, uri: &str, body: Option<&str>, token: &str) -> Request {
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = test::TestRequest::default().method(method).uri(uri);
    if !token.is_empty() {
        req = req.insert_header(("authorization", format!("Bearer {token}")));
    }
    if let Some(body) = body {
        req = req
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_owned());
    }
    req.to_request()
}

fn each_role_can_do_exactly_its_row(t: &TestDatabase) {
    use Role::*;
    let tokens = tokens(t);
    with_keys_app!(t, |app| {
        let admin = &tokens[3].1;
        let push = r#"{"samples": [{"node_id": NODE, "latency_ms": 1.0, "throughput_gbps": 1.0, "error_rate": 0.0}]}"#;
        // (method, path with D and N for a fresh deployment and node, body, roles allowed)
        let read = &[Viewer, Operator, Admin][..];
        let change = &[Operator, Admin][..];
        let any = &Role::ALL[..];
        let routes: Vec<(&str, &str, Option<&str>, &[Role])> = vec![
            ("GET", "/", None, any),
            ("GET", "/deployments", None, read),
            ("GET", "/fleet", None, read),
            (
                "POST",
                "/deployments",
                Some(r#"{"name": "x", "target_node_count": 1}"#),
                change,
            ),
            ("GET", "/deployments/D", None, read),
            (
                "PATCH",
                "/deployments/D",
                Some(r#"{"name": "renamed"}"#),
                change,
            ),
            ("DELETE", "/deployments/D", None, &[Admin]),
            ("POST", "/deployments/D/pause", None, change),
            ("POST", "/deployments/D/resume", None, change),
            ("GET", "/deployments/D/nodes", None, read),
            ("GET", "/deployments/D/nodes/N", None, read),
            ("POST", "/deployments/D/nodes/N/retry", None, change),
            ("GET", "/deployments/D/nodes/N/runs", None, read),
            ("GET", "/deployments/D/telemetry", None, read),
            (
                "POST",
                "/deployments/D/telemetry",
                Some(push),
                &[Collector, Operator, Admin],
            ),
            // No body: the 415 of an allowed caller, the 403 of another.
            ("POST", "/api/v1/write", None, &[Collector, Operator, Admin]),
            ("POST", "/api/v2/write", None, &[Collector, Operator, Admin]),
            ("POST", "/write", None, &[Collector, Operator, Admin]),
            ("POST", "/v1/metrics", None, &[Collector, Operator, Admin]),
            ("GET", "/deployments/D/nodes/N/telemetry/series", None, read),
            ("GET", "/deployments/D/telemetry/series", None, read),
            ("GET", "/deployments/D/bottlenecks", None, read),
            ("GET", "/deployments/D/events", None, read),
            ("GET", "/deployments/D/events/stream", None, read),
            ("GET", "/metrics", None, read),
            ("GET", "/whoami", None, any),
            ("GET", "/alerts", None, read),
            ("GET", "/deployments/D/alerts", None, read),
            ("GET", "/alerts/1", None, read),
            ("POST", "/alerts/1/ack", Some(r#"{"comment": "x"}"#), change),
            (
                "POST",
                "/alerts/1/unack",
                Some(r#"{"comment": "x"}"#),
                change,
            ),
            ("GET", "/silences", None, read),
            (
                "POST",
                "/silences",
                Some(
                    r#"{"matchers": [{"name": "node", "value": "node-001"}], "ends_at": "2100-01-01T00:00:00Z", "comment": "x"}"#,
                ),
                change,
            ),
            ("GET", "/silences/1", None, read),
            ("DELETE", "/silences/1", None, change),
            ("GET", "/receivers", None, &[Admin]),
            (
                "POST",
                "/receivers",
                Some(r#"{"name": "am", "kind": "alertmanager", "url": "http://127.0.0.1:9"}"#),
                &[Admin],
            ),
            ("GET", "/receivers/1", None, &[Admin]),
            ("DELETE", "/receivers/1", None, &[Admin]),
            ("GET", "/notifications", None, read),
            ("POST", "/notifications/1/retry", None, &[Admin]),
        ];
        // The table has every operation the document lists but the open ones, so a route
        // added later cannot escape it.
        let (_, doc) = call(&app, request("GET", "/openapi.json", None, "")).await;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let open = netorch_api::open_paths().contains(&path.as_str());
            let short = path
                .replace("{deployment_id}", "D")
                .replace("{node_id}", "N")
                .replace("{alert}", "1")
                .replace("{silence_id}", "1")
                .replace("{receiver_id}", "1")
                .replace("{notification_id}", "1");
            let methods = item.as_object().expect("path item").keys();
            for method in
                methods.filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
            {
                let method = method.to_uppercase();
                let listed = routes.iter().any(|(m, p, ..)| *m == method && *p == short);
                assert!(open || listed, "{method} {path} is not in the table");
            }
        }
        for (method, path, body, allowed) in routes {
            for (who, token) in &tokens {
                // A deployment of its own for each request: allowed changes and deletes do not
                // disturb the next.
                let req = request(
                    "POST",
                    "/deployments",
                    Some(r#"{"name": "t", "target_node_count": 1}"#),
                    admin,
                );
                let (status, created) = call(&app, req).await;
                assert_eq!(status, StatusCode::CREATED);
                let d = created["id"].as_i64().expect("id");
                let n = node_ids(t, d)[0].get();
                let uri = path
                    .replace("/D", &format!("/{d}"))
                    .replace("/N", &format!("/{n}"));
                let body = body.map(|b| b.replace("NODE", &n.to_string()));
                let response =
                    test::call_service(&app, request(method, &uri, body.as_deref(), token)).await;
                let status = response.status();
                let challenge = response.headers().get("www-authenticate").cloned();
                let label = format!("{method} {path} as {who:?}");
                if matches!(who, Who::Key(role) if allowed.contains(role)) {
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{label}: {status}"
                    );
                    assert!(status.as_u16() < 500, "{label}: {status}");
                    // Not read: a live event stream does not end.
                    continue;
                }
                let bytes = test::read_body(response).await;
                match who {
                    Who::Key(_) => {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{label}");
                        let body: Value = serde_json::from_slice(&bytes).expect("json");
                        assert!(
                            body["detail"].as_str().is_some_and(|d| d.contains("role")),
                            "{label}: {body}"
                        );
                    }
                    _ => {
                        assert_eq!(status, StatusCode::UNAUTHORIZED, "{label}");
                        assert_eq!(
                            challenge.as_ref().and_then(|c| c.to_str().ok()),
                            Some("Bearer"),
                            "{label}"
                        );
                        let body: Value = serde_json::from_slice(&bytes).expect("json");
                        assert!(body["detail"].is_string(), "{label}: {body}");
                    }
                }
            }
        }
        // Open to everyone.
        for path in [
            "/health",
            "/ready",
            "/docs",
            "/openapi.json",
            "/docs/swagger-ui.css",
            "/ui",
            "/ui/deployments/1",
            "/ui/deployments/1/nodes/node-001",
            "/ui/assets/app.js",
        ] {
            for (who, token) in &tokens {
                let (status, _) = call(&app, request("GET", path, None, token)).await;
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "GET {path} as {who:?}: {status}"
                );
            }
        }
    })
}

/// Refused requests change nothing: a viewer's delete and an anonymous create leave the
/// database as it was.
fn a_refused_request_changes_nothing(t: &TestDatabase) {
    let tokens = tokens(t);
    with_keys_app!(t, |app| {
        let (admin, viewer) = (&tokens[3].1, &tokens[0].1);
        let create = r#"{"name": "kept", "target_node_count": 2}"#;
        let (_, created) = call(&app, request("POST", "/deployments", Some(create), admin)).await;
        let d = created["id"].as_i64().expect("id");
        let uri = format!("/deployments/{d}");
        let (status, _) = call(&app, request("DELETE", &uri, None, viewer)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = call(&app, request("POST", "/deployments", Some(create), "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, list) = call(&app, request("GET", "/deployments", None, viewer)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    })
}

/// The token is stored nowhere: only its SHA-256 is in the database (every byte of the SQLite
/// file and its log; every row of every PostgreSQL table).
fn the_token_is_not_in_the_database(t: &TestDatabase) {
    let tokens = tokens(t);
    let admin = tokens[3].1.clone();
    with_keys_app!(t, |app| {
        let (status, _) = call(&app, request("GET", "/deployments", None, &admin)).await;
        assert_eq!(status, StatusCode::OK);
    });
    let mut conn = t.db.get().expect("connection");
    let keys = netorch_storage::api_keys::list(&mut conn).expect("list");
    assert_eq!(keys.len(), 6);
    drop(conn);
    for (who, token) in tokens.iter().filter(|(_, token)| !token.is_empty()) {
        // Without the prefix, which every token shares.
        assert!(
            !t.contains_text(&token[4..]),
            "{who:?}'s token is in the database"
        );
        let stored = matches!(who, Who::Key(_) | Who::Revoked | Who::Expired);
        let hash = netorch_service::keys::token_sha256(token);
        assert_eq!(t.contains_text(&hash), stored, "{who:?}");
    }
}

/// A key's name is taken once, revoked or not, and a second key of that name is the caller's
/// mistake, said of the name.
fn a_key_name_is_taken_once(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let now = Utc::now();
    create_key(&mut conn, "ci", Role::Operator, None, None, now).expect("key");
    netorch_storage::api_keys::revoke(&mut conn, "ci", now).expect("revoke");
    match create_key(&mut conn, "ci", Role::Viewer, None, None, now) {
        Err(netorch_service::ServiceError::KeyExists(name)) => {
            assert_eq!(name, "ci");
            let msg = netorch_service::ServiceError::KeyExists(name).to_string();
            assert!(msg.contains("\"ci\" exists"), "{msg}");
        }
        other => panic!("{:?}", other.map(|(_, key)| key)),
    }
    let keys = netorch_storage::api_keys::list(&mut conn).expect("list");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].role, Role::Operator);
}

/// With auth off, every route is open, as before.
fn with_auth_off_no_key_is_needed(t: &TestDatabase) {
    with_app!(t, |app| {
        let (status, _) = post(
            &app,
            "/deployments",
            r#"{"name": "open", "target_node_count": 1}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = get(&app, "/deployments").await;
        assert_eq!(status, StatusCode::OK);
        let (status, me) = get(&app, "/whoami").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            me,
            json!({"actor": "anonymous", "role": "admin", "keys_required": false,
                   "may": {"read": true, "push_telemetry": true, "change": true, "delete": true,
                           "respond": true, "manage_receivers": true},
                   "deployments": null})
        );
    })
}

/// `GET /whoami` names the key and what its role may do, as the access check decides it; any
/// key may ask, a collector's too.
fn whoami_tells_a_key_its_role(t: &TestDatabase) {
    let tokens = tokens(t);
    with_keys_app!(t, |app| {
        for (who, token) in &tokens {
            let (status, me) = call(&app, request("GET", "/whoami", None, token)).await;
            match who {
                Who::Key(role) => {
                    assert_eq!(status, StatusCode::OK, "{who:?}");
                    assert_eq!(
                        me["actor"],
                        role.as_str(),
                        "keys are named after roles here"
                    );
                    assert_eq!(me["role"], role.as_str());
                    assert_eq!(me["keys_required"], true);
                    assert_eq!(me["may"]["read"], *role != Role::Collector);
                    assert_eq!(me["deployments"], Value::Null);
                    assert_eq!(me["may"]["change"], *role >= Role::Operator);
                    assert_eq!(me["may"]["delete"], *role == Role::Admin);
                    assert_eq!(me["may"]["respond"], *role >= Role::Operator);
                    assert_eq!(me["may"]["manage_receivers"], *role == Role::Admin);
                    assert_eq!(me["may"]["push_telemetry"], *role != Role::Viewer);
                }
                _ => assert_eq!(status, StatusCode::UNAUTHORIZED, "{who:?}"),
            }
        }
    })
}

/// With keys on, the document declares the bearer scheme and where it is required.
fn the_document_declares_the_bearer_scheme(t: &TestDatabase) {
    with_keys_app!(t, |app| {
        let (status, doc) = call(&app, request("GET", "/openapi.json", None, "")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let list = &doc["paths"]["/deployments"]["get"];
        assert_eq!(list["security"], json!([{"bearer": []}]));
        assert!(list["responses"]["401"].is_object() && list["responses"]["403"].is_object());
        assert!(doc["paths"]["/health"]["get"]["security"].is_null());
    });
    with_app!(t, |app| {
        let (_, doc) = get(&app, "/openapi.json").await;
        assert!(doc["paths"]["/deployments"]["get"]["security"].is_null());
    })
}

/// Events caused through the API name their actor, and `?actor=` filters on it.
fn events_name_who_caused_them(t: &TestDatabase) {
    let tokens = tokens(t);
    with_keys_app!(t, |app| {
        let (viewer, operator, admin) = (&tokens[0].1, &tokens[2].1, &tokens[3].1);
        let create = r#"{"name": "audited", "target_node_count": 2}"#;
        let (_, created) = call(
            &app,
            request("POST", "/deployments", Some(create), operator),
        )
        .await;
        let d = created["id"].as_i64().expect("id");
        let uri = format!("/deployments/{d}");
        let patch = r#"{"name": "renamed", "target_node_count": 3}"#;
        call(&app, request("PATCH", &uri, Some(patch), admin)).await;
        call(
            &app,
            request("POST", &format!("{uri}/pause"), None, operator),
        )
        .await;
        let node = node_ids(t, d)[0];
        fail_node(t, d, node);
        let retry = format!("{uri}/nodes/{}/retry", node.get());
        let (status, _) = call(&app, request("POST", &retry, None, operator)).await;
        assert_eq!(status, StatusCode::OK);
        let resume = format!("{uri}/resume");
        let (status, _) = call(&app, request("POST", &resume, None, admin)).await;
        assert_eq!(status, StatusCode::OK);

        let events = |query: String| {
            let req = request("GET", &format!("{uri}/events{query}"), None, viewer);
            async { call(&app, req).await }
        };
        let (status, all) = events(String::new()).await;
        assert_eq!(status, StatusCode::OK);
        let actors: Vec<(String, Value)> = all["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["event_type"].as_str().unwrap_or("").to_owned(),
                    e["metadata"]["actor"].clone(),
                )
            })
            .collect();
        let actor_of = |kind: &str| {
            actors
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, a)| a.clone())
                .unwrap_or(Value::Null)
        };
        assert_eq!(actor_of("DEPLOYMENT_CREATED"), "operator", "{actors:?}");
        assert_eq!(actor_of("DEPLOYMENT_SCALED"), "admin", "{actors:?}");
        assert_eq!(actor_of("DEPLOYMENT_UPDATED"), "admin", "{actors:?}");
        assert_eq!(actor_of("DEPLOYMENT_PAUSED"), "operator", "{actors:?}");
        assert_eq!(actor_of("NODE_RETRY"), "operator", "{actors:?}");
        assert_eq!(actor_of("DEPLOYMENT_RESUMED"), "admin", "{actors:?}");
        // The test's own failure, made as a worker would: no actor.
        assert_eq!(actor_of("STATE_CHANGE"), Value::Null, "{actors:?}");

        let (status, by_admin) = events("?actor=admin".into()).await;
        assert_eq!(status, StatusCode::OK);
        let kinds: Vec<&str> = by_admin["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["event_type"].as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "DEPLOYMENT_SCALED",
                "DEPLOYMENT_UPDATED",
                "DEPLOYMENT_RESUMED"
            ]
        );
        let (status, none) = events("?actor=nobody".into()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(none["events"].as_array().map(Vec::len), Some(0));
        let (status, _) = events("?actor=".into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    });
    // With auth off, the actor is anonymous.
    with_app!(t, |app| {
        let (_, created) = post(
            &app,
            "/deployments",
            r#"{"name": "open", "target_node_count": 1}"#,
        )
        .await;
        let d = created["id"].as_i64().expect("id");
        let (_, events) = get(&app, &format!("/deployments/{d}/events?actor=anonymous")).await;
        assert_eq!(events["events"][0]["event_type"], "DEPLOYMENT_CREATED");
        assert_eq!(events["events"][0]["metadata"]["actor"], "anonymous");
    })
}

netorch_testkit::backend_tests!(
    events_name_who_caused_them,
    the_document_declares_the_bearer_scheme,
    each_role_can_do_exactly_its_row,
    a_refused_request_changes_nothing,
    the_token_is_not_in_the_database,
    a_key_name_is_taken_once,
    with_auth_off_no_key_is_needed,
    whoami_tells_a_key_its_role,
);
