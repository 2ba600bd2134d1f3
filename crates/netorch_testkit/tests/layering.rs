//! The layering docs/ARCHITECTURE.md draws, checked: a crate that gains a dependency the map
//! forbids, or a leaf module that imports a sibling, fails here.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's dependency graph as `cargo metadata` resolves it: each package's name and
/// the names of the packages it depends on to build (normal dependencies; not dev or build).
fn graph() -> HashMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // This machine's platform only: the packages of others are not downloaded, so the check
    // runs offline.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata");
    assert!(output.status.success(), "{output:?}");
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id"),
                p["name"].as_str().expect("name"),
            )
        })
        .collect();
    metadata["resolve"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
                })
                .map(|dep| names[dep["pkg"].as_str().expect("pkg")].to_owned())
                .collect();
            (names[node["id"].as_str().expect("id")].to_owned(), deps)
        })
        .collect()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every package `name` needs to build, itself excluded.
fn closure(graph: &HashMap<String, Vec<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn crates_depend_only_on_what_the_map_allows() {
    let graph = graph();
    // (crate, packages it must not need, even through another)
    let rules: &[(&str, &[&str])] = &[
        // Pure: no I/O, no database, no HTTP, no runtime.
        (
            "netorch_domain",
            &["actix-web", "actix-http", "diesel", "tokio"],
        ),
        (
            "netorch_simulator",
            &["actix-web", "actix-http", "diesel", "tokio"],
        ),
        (
            "netorch_analytics",
            &["actix-web", "actix-http", "diesel", "tokio"],
        ),
        // A wire format: bytes in, bytes out, shared by the API's decoder and the export.
        (
            "netorch_remote_write",
            &[
                "actix-web",
                "actix-http",
                "diesel",
                "tokio",
                "ureq",
                "netorch_domain",
            ],
        ),
        // The service layer: operations over the database, no HTTP and no runtime.
        (
            "netorch_service",
            &[
                "netorch_api",
                "actix-web",
                "actix-http",
                "actix-server",
                "tokio",
            ],
        ),
        // Storage knows SQL, not statistics nor HTTP.
        (
            "netorch_storage",
            &["netorch_analytics", "actix-web", "actix-http", "tokio"],
        ),
        // The workers and metrics know no HTTP framework, and not the API.
        (
            "netorch_workers",
            &["netorch_api", "actix-web", "actix-http", "actix-server"],
        ),
        (
            "netorch_metrics",
            &["netorch_api", "actix-web", "actix-http", "actix-server"],
        ),
        // The worker binary serves its metrics without the API crate or actix.
        (
            "netorch_worker",
            &["netorch_api", "actix-web", "actix-http", "actix-server"],
        ),
        // The command line is a client of the HTTP API only, like the dashboard: no database,
        // no server, no layer below the domain's shapes.
        (
            "netorch_cli",
            &[
                "netorch_api",
                "netorch_service",
                "netorch_storage",
                "netorch_workers",
                "diesel",
                "actix-web",
                "tokio",
            ],
        ),
    ];
    let mut broken = Vec::new();
    for (krate, forbidden) in rules {
        assert!(
            graph.contains_key(*krate),
            "no crate {krate} in the workspace"
        );
        let needs = closure(&graph, krate);
        for bad in *forbidden {
            if needs.contains(*bad) {
                broken.push(format!("{krate} needs {bad}"));
            }
        }
    }
    assert!(broken.is_empty(), "the map forbids: {broken:?}");
}

/// The `crate::` items a source file refers to (comments aside).
fn siblings_used(file: &Path) -> BTreeSet<String> {
    siblings_named(&std::fs::read_to_string(file).expect("source"))
}

/// The `crate::` items `text` refers to (comments aside).
fn siblings_named(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let name = |text: &str| -> String {
        text.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            // `crate::{a, b::c}`: each first segment.
            Some(list) => {
                let list = list.split('}').next().unwrap_or_default();
                used.extend(list.split(',').map(name).filter(|n| !n.is_empty()));
            }
            None => {
                used.insert(name(rest));
            }
        }
    }
    used
}

#[test]
fn leaf_modules_import_no_sibling() {
    // (file, the siblings it may name): a leaf is what the others share, so that they do not
    // import each other in a circle.
    let leaves: &[(&str, &[&str])] = &[
        ("crates/netorch_storage/src/locks.rs", &[]),
        ("crates/netorch_storage/src/error.rs", &[]),
        (
            "crates/netorch_storage/src/time.rs",
            &["Result", "StorageError"],
        ),
        ("crates/netorch_storage/src/tiers.rs", &[]),
        ("crates/netorch_storage/src/node_share.rs", &[]),
        (
            "crates/netorch_storage/src/deployment_rows.rs",
            &["locks", "schema", "DbConnection", "Result", "StorageError"],
        ),
        ("crates/netorch_service/src/error.rs", &[]),
    ];
    for (file, allowed) in leaves {
        let used = siblings_used(&workspace().join(file));
        let extra: Vec<&String> = used
            .iter()
            .filter(|m| !allowed.contains(&m.as_str()))
            .collect();
        assert!(extra.is_empty(), "{file} is a leaf but imports {extra:?}");
    }
}

#[test]
fn the_apis_shared_machinery_knows_no_resource() {
    // The resources build on `http/`; were it to import one of them, the two would import
    // each other in a circle. (Tests may use a resource's input to exercise a reader.)
    let resources = [
        "deployments",
        "nodes",
        "telemetry",
        "series",
        "bottlenecks",
        "events",
        "keys",
        "service",
        "ui",
    ];
    let files = sources(&workspace().join("crates/netorch_api/src/http"));
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let used = siblings_named(code);
        let named: Vec<&String> = used
            .iter()
            .filter(|m| resources.contains(&m.as_str()))
            .collect();
        assert!(
            named.is_empty(),
            "{} is shared machinery but imports the resources {named:?}",
            file.display()
        );
    }
}

#[test]
fn the_api_reaches_storage_only_through_the_service_layer() {
    // The handlers parse, call `netorch_service` and respond. Storage is named only where the
    // server holds its pool and settings (lib.rs), runs work on a connection (blocking.rs) and
    // maps storage errors to HTTP (error.rs), and in tests.
    let allowed = ["lib.rs", "blocking.rs", "error.rs"];
    let files = sources(&workspace().join("crates/netorch_api/src"));
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if allowed.contains(&name) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let named = code
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .any(|line| line.contains("netorch_storage"));
        assert!(
            !named,
            "{} names netorch_storage: call netorch_service instead",
            file.display()
        );
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("sources") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

#[test]
fn advisory_lock_keys_live_in_the_lock_module_only() {
    let src = workspace().join("crates/netorch_storage/src");
    let files = sources(&src);
    assert!(files.len() > 10, "{files:?}");
    let mut locks_taken = 0;
    for path in files {
        if path.file_name().is_some_and(|n| n == "locks.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        let lines: Vec<&str> = text.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            if line.contains("pg_advisory") || line.contains("pg_try_advisory") {
                // The key is bound on the next lines: it must come from crate::locks.
                locks_taken += 1;
                let bound = lines[number..lines.len().min(number + 6)].join(" ");
                assert!(
                    bound.contains("crate::locks::"),
                    "{}:{}: an advisory lock whose key is not from crate::locks",
                    path.display(),
                    number + 1
                );
            }
            assert!(
                !line.contains("0x6e74") && !line.contains("0x006e_6574"),
                "{}:{}: an advisory-lock key outside locks.rs",
                path.display(),
                number + 1
            );
        }
    }
    // The deployments' two (shared and exclusive), the events', the partitions', a page's
    // claim and the migrations': the check saw them all.
    assert!(locks_taken >= 6, "{locks_taken}");
}
