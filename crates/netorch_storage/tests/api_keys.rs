//! API keys on SQLite and PostgreSQL: stored by hash, found while active, revoked, listed.

use chrono::{DateTime, Duration};
use netorch_domain::{DeploymentId, NewDeployment, Role, RolloutPolicy, Timestamp};
use netorch_storage::api_keys::NewKey;
use netorch_storage::{StorageError, api_keys, deployments};
use netorch_testkit::{TestDatabase, backend_tests};

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

const HASH_A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
const HASH_B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";
const HASH_C: &str = "cc00000000000000000000000000000000000000000000000000000000000000";

/// A key reaching every deployment.
fn key<'a>(name: &'a str, role: Role, hash: &'a str, expires_at: Option<Timestamp>) -> NewKey<'a> {
    NewKey {
        name,
        role,
        token_sha256: hash,
        expires_at,
        deployments: None,
    }
}

fn keys_are_found_by_hash_while_active(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let made = api_keys::create(&mut conn, &key("ci", Role::Operator, HASH_A, None), t0())
        .expect("create");
    assert_eq!((made.name.as_str(), made.role), ("ci", Role::Operator));
    let soon = Some(t0() + Duration::hours(1));
    api_keys::create(&mut conn, &key("temp", Role::Viewer, HASH_B, soon), t0()).expect("create");
    assert!(matches!(
        api_keys::create(&mut conn, &key("ci", Role::Admin, "cc", None), t0()),
        Err(StorageError::KeyExists(name)) if name == "ci"
    ));

    let found = api_keys::authenticate(&mut conn, HASH_A, t0()).expect("read");
    assert_eq!(found.map(|k| k.name), Some("ci".to_owned()));
    assert_eq!(
        api_keys::authenticate(&mut conn, "ff", t0()).expect("read"),
        None
    );
    // Expired.
    let later = t0() + Duration::hours(2);
    assert_eq!(
        api_keys::authenticate(&mut conn, HASH_B, later).expect("read"),
        None
    );

    // Last use is written at most once a minute.
    let listed = api_keys::list(&mut conn).expect("list");
    assert_eq!(listed[0].last_used_at, Some(t0()));
    api_keys::authenticate(&mut conn, HASH_A, t0() + Duration::seconds(30)).expect("read");
    assert_eq!(
        api_keys::list(&mut conn).expect("list")[0].last_used_at,
        Some(t0())
    );
    api_keys::authenticate(&mut conn, HASH_A, t0() + Duration::seconds(61)).expect("read");
    assert_eq!(
        api_keys::list(&mut conn).expect("list")[0].last_used_at,
        Some(t0() + Duration::seconds(61))
    );

    // Revoked: refused from then on; revoking again changes nothing.
    let revoked = api_keys::revoke(&mut conn, "ci", later).expect("revoke");
    assert_eq!(revoked.revoked_at, Some(later));
    assert_eq!(
        api_keys::authenticate(&mut conn, HASH_A, later).expect("read"),
        None
    );
    let again = api_keys::revoke(&mut conn, "ci", later + Duration::hours(1)).expect("revoke");
    assert_eq!(again.revoked_at, Some(later));
    assert!(matches!(
        api_keys::revoke(&mut conn, "nobody", later),
        Err(StorageError::KeyNotFound(_))
    ));
    let names: Vec<String> = api_keys::list(&mut conn)
        .expect("list")
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["ci", "temp"]);
}

fn a_key_limited_to_deployments_keeps_them_and_only_existing_ones(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let new = |name: &str| NewDeployment {
        name: name.into(),
        description: None,
        target_node_count: 1,
        rollout: RolloutPolicy::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    let a = deployments::create(&mut conn, &new("a"), None, t0()).expect("create");
    let b = deployments::create(&mut conn, &new("b"), None, t0()).expect("create");
    let scope = [b.id, a.id, b.id];
    let made = api_keys::create(
        &mut conn,
        &NewKey {
            deployments: Some(&scope),
            ..key("rack4", Role::Collector, HASH_C, None)
        },
        t0(),
    )
    .expect("create");
    // Ascending, once each.
    assert_eq!(made.deployments, Some(vec![a.id, b.id]));
    let found = api_keys::authenticate(&mut conn, HASH_C, t0())
        .expect("read")
        .expect("active");
    assert_eq!(found.deployments, Some(vec![a.id, b.id]));
    assert!(found.reaches(Some(a.id)) && !found.reaches(None));

    // A deployment that does not exist: refused, and no key is made.
    let missing = [DeploymentId(a.id.get() + 100)];
    assert!(matches!(
        api_keys::create(
            &mut conn,
            &NewKey {
                deployments: Some(&missing),
                ..key("typo", Role::Collector, HASH_A, None)
            },
            t0()
        ),
        Err(StorageError::DeploymentNotFound)
    ));
    // Nor a limit to no deployment at all.
    assert!(matches!(
        api_keys::create(
            &mut conn,
            &NewKey {
                deployments: Some(&[]),
                ..key("nothing", Role::Collector, HASH_A, None)
            },
            t0()
        ),
        Err(StorageError::InvalidInput(_))
    ));
    let names: Vec<String> = api_keys::list(&mut conn)
        .expect("list")
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["rack4"]);

    // Deleting one of its deployments leaves the key limited to what is left, never to all.
    deployments::delete(&mut conn, a.id, None, t0()).expect("delete");
    let found = api_keys::authenticate(&mut conn, HASH_C, t0())
        .expect("read")
        .expect("active");
    assert!(!found.reaches(Some(DeploymentId(a.id.get() + 1000))));
    assert!(found.reaches(Some(b.id)));
}

backend_tests!(
    keys_are_found_by_hash_while_active,
    a_key_limited_to_deployments_keeps_them_and_only_existing_ones
);
