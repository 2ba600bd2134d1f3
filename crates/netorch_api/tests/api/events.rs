use crate::common::*;

fn events_page_in_order(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "ev", 3).await;
        let nodes = node_ids(t, id);
        run_node(t, id, nodes[0]);
        fail_node(t, id, nodes[1]);
        let uri = format!("/deployments/{id}/events");
        let (status, body) = get(&app, &format!("{uri}?limit=2")).await;
        assert_eq!(status, StatusCode::OK);
        let first = body["events"].as_array().expect("events").clone();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0]["event_type"], "DEPLOYMENT_CREATED");
        assert!(is_timestamp(&first[0]["created_at"]) && first[0]["metadata"].is_object());
        let cursor = body["next_after"].as_i64().expect("more to come");
        let (_, rest) = get(&app, &format!("{uri}?after={cursor}&limit=1000")).await;
        let rest = rest["events"].as_array().expect("events").clone();
        assert_eq!(rest.len(), 4, "3 + 2 transitions, 1 + 1 seen");
        let ids: Vec<i64> = first
            .iter()
            .chain(&rest)
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let (_, last) = get(&app, &format!("{uri}?after={}", ids[5])).await;
        assert_eq!(last, json!({"events": [], "next_after": null}));
        let (_, changes) = get(
            &app,
            &format!("{uri}?event_type=STATE_CHANGE&node_id={}", nodes[1]),
        )
        .await;
        let steps: Vec<(&str, &str)> = changes["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["metadata"]["from_state"].as_str().unwrap_or(""),
                    e["metadata"]["to_state"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![("PENDING", "PROVISIONING"), ("PROVISIONING", "FAILED")]
        );
    })
}

netorch_testkit::backend_tests!(events_page_in_order,);
