//! A `netorch-worker` killed with `kill -9` mid-playbook: the real binary runs an Ansible
//! profile (ansible-runner from PyPI, `NETORCH_ANSIBLE_RUNNER`), is killed while every
//! playbook sleeps, and a second worker takes the runs over once their lease has expired: it
//! kills what is left of the first worker's playbooks, runs them again, and no node is left
//! stuck.

use netorch_domain::{NewDeployment, NodeState, Provisioning};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{Database, deployments, nodes, runs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A worker process, killed (and reaped) when the test ends, pass or fail.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(url: &str, profiles: &Path, name: &str) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_netorch-worker"))
            .args(["--database-url", url, "--name", name])
            .arg("--provisioners")
            .arg(profiles)
            .args(["--only", "lifecycle", "--lifecycle-interval-ms", "200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start netorch-worker"),
    )
}

/// Whether `pid` is gone (or a zombie).
fn gone(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z')),
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let began = Instant::now();
    while !done() {
        assert!(began.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_worker_killed_mid_playbook_leaves_no_node_stuck() {
    let Some(runner) = std::env::var_os("NETORCH_ANSIBLE_RUNNER").map(PathBuf::from) else {
        assert!(
            std::env::var_os("NETORCH_REQUIRE_ANSIBLE").is_none(),
            "NETORCH_REQUIRE_ANSIBLE is set and NETORCH_ANSIBLE_RUNNER is not"
        );
        eprintln!("skipped: NETORCH_ANSIBLE_RUNNER names no ansible-runner");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("nodes")).expect("out");
    let project =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/netorch_workers/tests/ansible");
    let bin = runner.parent().expect("the venv's bin");
    let profiles = dir.path().join("provisioners.toml");
    std::fs::write(
        &profiles,
        format!(
            "[profiles.lab]\nkind = \"ansible\"\nansible_runner = \"{}\"\n\
             project_directory = \"{}\"\nplaybooks = {{ configure = \"configure.yml\" }}\n\
             env = {{ PATH = \"{}:/usr/bin:/bin\", ANSIBLE_PYTHON_INTERPRETER = \"auto_silent\" }}\n",
            runner.display(),
            project.display(),
            bin.display()
        ),
    )
    .expect("profiles");
    let url = format!("sqlite://{}", dir.path().join("worker.db").display());
    let db = Database::connect(&url).expect("database");
    let mut parameters = serde_json::Map::new();
    parameters.insert("out".into(), out.display().to_string().into());
    let new = NewDeployment {
        provisioning: Provisioning {
            profile: "lab".into(),
            parameters,
        },
        ..NewDeployment::new("killed", 3)
    };
    let mut conn = db.get().expect("connection");
    let d = deployments::create(&mut conn, &new, None, chrono::Utc::now())
        .expect("create")
        .id;
    // Every playbook sleeps while `slow` exists: the first worker dies mid-playbook.
    std::fs::write(out.join("slow"), "").expect("slow");
    let mut first = worker(&url, &profiles, "first");
    let sleeping = |name: &str| out.join(format!("slow-{name}"));
    wait_for("three playbooks sleeping", Duration::from_secs(60), || {
        ["node-001", "node-002", "node-003"]
            .iter()
            .all(|n| sleeping(n).exists())
    });
    std::thread::sleep(Duration::from_millis(200));
    let orphans: Vec<i64> = ["node-001", "node-002", "node-003"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(sleeping(n))
                .expect("pid")
                .trim()
                .parse()
                .expect("a pid")
        })
        .collect();
    first.0.kill().expect("kill -9");
    first.0.wait().expect("reaped");
    // The playbooks outlive their worker: nothing else would stop them.
    assert!(
        orphans.iter().all(|p| !gone(*p)),
        "the playbooks still sleep"
    );
    std::fs::remove_file(out.join("slow")).expect("fast again");
    let killed_at = Instant::now();
    let _second = worker(&url, &profiles, "second");
    wait_for("every node running", Duration::from_secs(90), || {
        nodes::list(&mut conn, d, &NodeFilter::default())
            .expect("nodes")
            .nodes
            .iter()
            .all(|n| n.state == NodeState::Running)
    });
    let took = killed_at.elapsed();
    assert!(
        took >= Duration::from_secs(25),
        "taken over only after the lease (30 s): {took:?}"
    );
    for pid in &orphans {
        assert!(gone(*pid), "the first worker's playbook {pid} was killed");
    }
    for node in nodes::list(&mut conn, d, &NodeFilter::default())
        .expect("nodes")
        .nodes
    {
        let runs = runs::for_node(&mut conn, node.id, 20).expect("runs");
        let configure = &runs[0];
        assert_eq!(
            (configure.starts, configure.holder.as_str()),
            (2, "second"),
            "{configure:?}"
        );
        assert!(out.join("nodes").join(&node.name).exists());
    }
}
