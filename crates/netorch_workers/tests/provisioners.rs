//! External provisioners run for real, on SQLite and PostgreSQL: a `command` profile whose
//! program is a Python script, driven by the lifecycle with a fake clock while the script runs
//! in real time. Failures with the program's message, the rollout's `max_in_flight` over the
//! running programs, an operator's retry, a phase timeout that kills the program's process
//! tree, and a worker that stalls mid-run, whose run another takes over and whose late result
//! is not applied.

use chrono::{DateTime, Duration};
use netorch_domain::{
    DeploymentId, EventType, NewDeployment, Node, NodeState, Provisioning, RolloutPolicy,
    RunOutcome, Timestamp,
};
use netorch_simulator::SimulatedHardware;
use netorch_storage::events::EventQuery;
use netorch_storage::{DbConnection, deployments, events, nodes, runs};
use netorch_testkit::{TestDatabase, backend_tests, nodes_of as fleet};
use netorch_workers::provisioners::{Profiles, RUN_LEASE, RunDriver};
use netorch_workers::{Provisioners, TickLimits, lifecycle_tick_using};
use std::path::PathBuf;

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

/// The program: fails `configure` for nodes whose id is a multiple of 7 (until a `fixed` file
/// exists), reports an address at `provision`, writes a file per node at `configure`, sleeps
/// `sleep` seconds (300 while a `slow` file exists) with a child process, and records how many
/// runs were going when it started and its pids.
const SCRIPT: &str = r#"
import json, os, subprocess, sys, time
phase = sys.argv[-1]
req = json.load(sys.stdin)
out = req["parameters"]["out"]
node = req["node"]
running = os.path.join(out, "running")
os.makedirs(running, exist_ok=True)
os.makedirs(os.path.join(out, "pids"), exist_ok=True)
me = os.path.join(running, "%d-%s-%d" % (node["id"], phase, os.getpid()))
open(me, "w").close()
with open(os.path.join(out, "peaks"), "a") as f:
    f.write("%d\n" % len(os.listdir(running)))
slow = os.path.exists(os.path.join(out, "slow"))
seconds = 300 if slow else req["parameters"].get("sleep", 0.1)
child = subprocess.Popen(["sleep", str(seconds)])
with open(os.path.join(out, "pids", "%d-%s-%d" % (node["id"], phase, os.getpid())), "w") as f:
    f.write("%d %d\n" % (os.getpid(), child.pid))
child.wait()
os.remove(me)
print("phase %s of %s, attempt %d" % (phase, node["name"], node["attempt"]))
if phase == "provision":
    address = req["parameters"].get("address") or "198.18.%d.%d" % (node["id"] // 250, node["id"] % 250 + 1)
    print(json.dumps({"address": address}))
elif phase == "configure":
    if node["id"] % 7 == 0 and not os.path.exists(os.path.join(out, "fixed")):
        print("about to refuse", file=sys.stderr)
        print(json.dumps({"message": "node %d is a multiple of 7" % node["id"]}))
        sys.exit(2)
    os.makedirs(os.path.join(out, "nodes"), exist_ok=True)
    with open(os.path.join(out, "nodes", node["name"]), "w") as f:
        f.write(req["deployment"]["name"])
"#;

struct Lab {
    dir: tempfile::TempDir,
    profiles: Profiles,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("dir");
        let script = dir.path().join("provision.py");
        std::fs::write(&script, SCRIPT).expect("script");
        let profiles = Profiles::parse(&format!(
            "[profiles.lab]\nkind = \"command\"\ncommand = [\"python3\", \"{}\"]\n",
            script.display()
        ))
        .expect("profiles");
        Lab { dir, profiles }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn driver(&self, name: &str) -> RunDriver {
        RunDriver::new(self.profiles.clone(), name)
    }

    fn create(
        &self,
        conn: &mut DbConnection,
        nodes: u32,
        rollout: RolloutPolicy,
        sleep: f64,
    ) -> DeploymentId {
        std::fs::create_dir_all(self.out()).expect("out");
        let mut parameters = serde_json::Map::new();
        parameters.insert("out".into(), self.out().display().to_string().into());
        parameters.insert("sleep".into(), sleep.into());
        let new = NewDeployment {
            rollout,
            provisioning: Provisioning {
                profile: "lab".into(),
                parameters,
            },
            ..NewDeployment::new("lab-fleet", nodes)
        };
        deployments::create(conn, &new, None, t0())
            .expect("create")
            .id
    }

    /// The most runs that were going at once, as the runs saw it when they started.
    fn peak(&self) -> usize {
        std::fs::read_to_string(self.out().join("peaks"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// Every pid the runs recorded: the script's and its child's.
    fn pids(&self) -> Vec<i64> {
        let Ok(entries) = std::fs::read_dir(self.out().join("pids")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .flat_map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i64>>()
            })
            .collect()
    }
}

/// Whether process `pid` is gone (or a zombie: dead, not yet reaped by its parent).
fn gone(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z')),
    }
}

fn settled(conn: &mut DbConnection, d: DeploymentId) -> bool {
    fleet(conn, d)
        .iter()
        .all(|n| matches!(n.state, NodeState::Running | NodeState::Failed))
}

/// One worker's lifecycle step at `now`, as its loop runs it: results recorded, the tick, runs
/// started.
fn step(conn: &mut DbConnection, driver: &RunDriver, now: Timestamp) {
    driver.settle(conn, now).expect("settle");
    let external = ["lab".to_owned()];
    let provisioners = Provisioners {
        builtin: &SimulatedHardware::default(),
        external: &external,
    };
    lifecycle_tick_using(conn, provisioners, now, TickLimits::default()).expect("tick");
    driver.start(conn, now).expect("start");
}

/// Steps `driver` a second of the fake clock every 25 ms of real time until `done`, for at most
/// 3 minutes of real time (the programs are real: on a loaded machine, with ansible-runner's
/// tests beside, the 20-node test takes 10 to 30 s).
fn drive(
    conn: &mut DbConnection,
    driver: &RunDriver,
    now: &mut Timestamp,
    done: impl FnMut(&mut DbConnection) -> bool,
) {
    drive_for(conn, driver, now, std::time::Duration::from_secs(180), done);
}

/// [`drive`] for at most `limit` of real time.
fn drive_for(
    conn: &mut DbConnection,
    driver: &RunDriver,
    now: &mut Timestamp,
    limit: std::time::Duration,
    mut done: impl FnMut(&mut DbConnection) -> bool,
) {
    let began = std::time::Instant::now();
    while began.elapsed() < limit {
        step(conn, driver, *now);
        if done(conn) {
            return;
        }
        *now += Duration::seconds(1);
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("not done after {limit:?}");
}

fn state_changes(conn: &mut DbConnection, d: DeploymentId, node: &Node, to: &str) -> usize {
    events::list(
        conn,
        &EventQuery {
            deployment: Some(d),
            after: None,
            event_type: Some(EventType::StateChange),
            node: Some(node.id),
            actor: None,
            limit: 1000,
        },
    )
    .expect("events")
    .iter()
    .filter(|e| e.metadata["to_state"] == to)
    .count()
}

fn a_command_profile_runs_each_phase_and_fails_the_nodes_it_refuses(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let lab = Lab::new();
    let d = lab.create(
        &mut conn,
        20,
        RolloutPolicy {
            max_in_flight: Some(3),
            ..RolloutPolicy::default()
        },
        0.1,
    );
    let driver = lab.driver("worker-a");
    let mut now = t0();
    drive(&mut conn, &driver, &mut now, |conn| settled(conn, d));
    for node in fleet(&mut conn, d) {
        let runs = runs::for_node(&mut conn, node.id, 20).expect("runs");
        if node.id.get() % 7 == 0 {
            assert_eq!(node.state, NodeState::Failed, "{node:?}");
            let reason = format!("node {} is a multiple of 7", node.id);
            assert_eq!(node.failure_reason.as_deref(), Some(reason.as_str()));
            let configure = &runs[0];
            assert_eq!(configure.phase.as_str(), "configure");
            assert_eq!(configure.outcome, Some(RunOutcome::Failed));
            assert_eq!(configure.exit_code, Some(2));
            assert_eq!(configure.message.as_deref(), Some(reason.as_str()));
            assert_eq!(configure.stderr, "about to refuse\n");
            assert!(!lab.out().join("nodes").join(&node.name).exists());
        } else {
            assert_eq!(node.state, NodeState::Running, "{node:?}");
            let file = std::fs::read_to_string(lab.out().join("nodes").join(&node.name))
                .expect("the node's file");
            assert_eq!(file, "lab-fleet");
            assert_eq!(runs.len(), 2, "provision and configure: {runs:?}");
            assert!(runs[0].stdout.starts_with("phase configure of"));
        }
        // The address the provision run reported.
        let id = node.id.get();
        let address = format!("198.18.{}.{}", id / 250, id % 250 + 1);
        assert_eq!(node.ip_address.as_deref(), Some(address.as_str()));
        let provision = runs.last().expect("a provision run");
        assert_eq!(
            (
                provision.phase.as_str(),
                provision.outcome,
                provision.starts
            ),
            ("provision", Some(RunOutcome::Succeeded), 1)
        );
        assert_eq!(provision.holder, "worker-a");
    }
    let peak = lab.peak();
    assert!(
        (2..=3).contains(&peak),
        "runs at once: {peak} (max_in_flight 3)"
    );
    assert_eq!(runs::count_running(&mut conn).expect("count"), 0);

    // An operator fixes the cause and retries a failed node: the program runs again.
    std::fs::write(lab.out().join("fixed"), "").expect("fixed");
    let failed = fleet(&mut conn, d)
        .into_iter()
        .find(|n| n.state == NodeState::Failed)
        .expect("a failed node");
    nodes::retry(&mut conn, d, failed.id, Some("ops"), now).expect("retry");
    drive(&mut conn, &driver, &mut now, |conn| settled(conn, d));
    let node = nodes::get(&mut conn, d, failed.id).expect("node");
    assert_eq!((node.state, node.attempt), (NodeState::Running, 1));
    let runs = runs::for_node(&mut conn, node.id, 20).expect("runs");
    assert_eq!(runs.len(), 4, "two phases on each attempt");
    assert_eq!(
        (runs[0].attempt, runs[0].outcome),
        (1, Some(RunOutcome::Succeeded))
    );
    assert!(lab.out().join("nodes").join(&node.name).exists());
}

fn a_run_past_the_phase_timeout_is_killed_with_its_children(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let lab = Lab::new();
    let d = lab.create(
        &mut conn,
        2,
        RolloutPolicy {
            phase_timeout_seconds: Some(3600),
            ..RolloutPolicy::default()
        },
        300.0,
    );
    let driver = lab.driver("worker-a");
    let mut now = t0();
    // Both programs and their children start.
    drive(&mut conn, &driver, &mut now, |_| {
        std::fs::read_dir(lab.out().join("pids")).map_or(0, |d| d.count()) == 2
    });
    let pids = lab.pids();
    assert_eq!(pids.len(), 4, "two programs, a child each");
    assert!(pids.iter().all(|p| !gone(*p)));
    // The clock goes to the phase's deadline in steps, as a worker's loop would (the programs
    // took however long they took to start on a loaded machine: the deadline is far enough).
    let started = fleet(&mut conn, d)[0].state_changed_at;
    let deadline = started + Duration::seconds(3600);
    while now < deadline {
        now = (now + Duration::seconds(20)).min(deadline);
        step(&mut conn, &driver, now);
    }
    drive(&mut conn, &driver, &mut now, |conn| settled(conn, d));
    for node in fleet(&mut conn, d) {
        assert_eq!(node.state, NodeState::Failed);
        assert_eq!(
            node.failure_reason.as_deref(),
            Some("provisioning timed out after 3600 s")
        );
        let run = &runs::for_node(&mut conn, node.id, 20).expect("runs")[0];
        assert_eq!(run.outcome, Some(RunOutcome::TimedOut), "{run:?}");
        assert!(run.message.as_deref().is_some_and(|m| m.contains("killed")));
    }
    // The programs and their children: none left.
    for _ in 0..200 {
        if pids.iter().all(|p| gone(*p)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("left running: {pids:?}");
}

fn a_stalled_worker_is_taken_over_and_its_late_result_not_applied(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let lab = Lab::new();
    let d = lab.create(&mut conn, 3, RolloutPolicy::default(), 0.1);
    std::fs::write(lab.out().join("slow"), "").expect("slow");
    let a = lab.driver("worker-a");
    let b = lab.driver("worker-b");
    let mut now = t0();
    drive(&mut conn, &a, &mut now, |_| {
        std::fs::read_dir(lab.out().join("pids")).map_or(0, |d| d.count()) == 3
    });
    let first = lab.pids();
    // Worker a stalls (it stops stepping, so its leases lapse); the cause of the slowness
    // goes. Worker b waits out the lease, then kills a's programs (same host) and runs again.
    std::fs::remove_file(lab.out().join("slow")).expect("fast again");
    step(&mut conn, &b, now);
    assert_eq!(b.running(), 0, "a's leases still hold");
    now += RUN_LEASE + Duration::seconds(1);
    drive(&mut conn, &b, &mut now, |conn| settled(conn, d));
    for pid in &first {
        assert!(gone(*pid), "a's process {pid} was killed");
    }
    // Worker a comes back: its programs ended (killed), and its results are not recorded.
    let late = a.settle(&mut conn, now).expect("settle");
    assert_eq!((late.lost, late.succeeded, late.failed), (3, 0, 0));
    for node in fleet(&mut conn, d) {
        assert_eq!(node.state, NodeState::Running, "{node:?}");
        let runs = runs::for_node(&mut conn, node.id, 20).expect("runs");
        let provision = runs.last().expect("provision");
        assert_eq!(
            (
                provision.starts,
                provision.holder.as_str(),
                provision.outcome
            ),
            (2, "worker-b", Some(RunOutcome::Succeeded))
        );
        assert_eq!(state_changes(&mut conn, d, &node, "CONFIGURING"), 1);
        assert_eq!(state_changes(&mut conn, d, &node, "RUNNING"), 1);
    }
}

fn an_address_another_node_has_fails_the_node_and_nothing_else(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let lab = Lab::new();
    // Node 1: a deployment whose node reports its own address.
    let first = lab.create(&mut conn, 1, RolloutPolicy::default(), 0.0);
    // Nodes 2 to 4: every provision run reports the same address; one node gets it, the
    // others fail.
    let mut parameters = serde_json::Map::new();
    parameters.insert("out".into(), lab.out().display().to_string().into());
    parameters.insert("address".into(), "192.0.2.1".into());
    let d = deployments::create(
        &mut conn,
        &NewDeployment {
            provisioning: Provisioning {
                profile: "lab".into(),
                parameters,
            },
            ..NewDeployment::new("same-address", 3)
        },
        None,
        t0(),
    )
    .expect("create")
    .id;
    let driver = lab.driver("worker-a");
    let mut now = t0();
    drive(&mut conn, &driver, &mut now, |conn| {
        settled(conn, d) && settled(conn, first)
    });
    let all = fleet(&mut conn, d);
    let holders: Vec<&Node> = all
        .iter()
        .filter(|n| n.ip_address.as_deref() == Some("192.0.2.1"))
        .collect();
    assert_eq!(holders.len(), 1, "{all:?}");
    assert_eq!(holders[0].state, NodeState::Running);
    for node in all.iter().filter(|n| n.id != holders[0].id) {
        assert_eq!(node.state, NodeState::Failed);
        let reason = node.failure_reason.as_deref().expect("a reason");
        assert!(reason.contains("192.0.2.1"), "{reason}");
        assert!(reason.contains(&holders[0].id.to_string()), "{reason}");
    }
    // The other deployment went on all the while.
    let others = fleet(&mut conn, first);
    assert!(
        others.iter().all(|n| n.state == NodeState::Running),
        "{others:?}"
    );
}

fn nodes_of_a_profile_a_worker_lacks_wait_for_one_that_has_it(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let lab = Lab::new();
    let d = lab.create(&mut conn, 2, RolloutPolicy::default(), 0.1);
    let simulator = SimulatedHardware::default();
    let builtin_only = Provisioners::builtin(&simulator);
    for second in 0..5 {
        lifecycle_tick_using(
            &mut conn,
            builtin_only,
            t0() + Duration::seconds(second),
            TickLimits::default(),
        )
        .expect("tick");
    }
    assert!(
        fleet(&mut conn, d)
            .iter()
            .all(|n| n.state == NodeState::Pending)
    );
    let driver = lab.driver("worker-a");
    let mut now = t0() + Duration::seconds(5);
    drive(&mut conn, &driver, &mut now, |conn| settled(conn, d));
    assert!(
        fleet(&mut conn, d)
            .iter()
            .all(|n| n.state == NodeState::Running)
    );
}

/// The venv's `ansible-runner` (`NETORCH_ANSIBLE_RUNNER`); `None` skips the Ansible tests,
/// unless `NETORCH_REQUIRE_ANSIBLE` is set (CI), which makes its absence a failure.
fn ansible_runner() -> Option<PathBuf> {
    match std::env::var_os("NETORCH_ANSIBLE_RUNNER") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("NETORCH_REQUIRE_ANSIBLE").is_some() => {
            panic!("NETORCH_REQUIRE_ANSIBLE is set and NETORCH_ANSIBLE_RUNNER is not")
        }
        None => {
            eprintln!("skipped: NETORCH_ANSIBLE_RUNNER names no ansible-runner");
            None
        }
    }
}

/// A lab whose `lab` profile runs `tests/ansible/configure.yml` with ansible-runner at
/// `configure` (nothing at `provision` and `release`).
fn ansible_lab(runner: &std::path::Path) -> Lab {
    let dir = tempfile::tempdir().expect("dir");
    let bin = runner.parent().expect("the venv's bin");
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ansible");
    let profiles = Profiles::parse(&format!(
        "[profiles.lab]\nkind = \"ansible\"\nansible_runner = \"{}\"\n\
         project_directory = \"{}\"\nplaybooks = {{ configure = \"configure.yml\" }}\n\
         env = {{ PATH = \"{}:/usr/bin:/bin\", ANSIBLE_PYTHON_INTERPRETER = \"auto_silent\" }}\n",
        runner.display(),
        project.display(),
        bin.display()
    ))
    .expect("profiles");
    let lab = Lab { dir, profiles };
    std::fs::create_dir_all(lab.out().join("nodes")).expect("out");
    lab
}

/// The processes whose command line holds `token` (a run's private data directory, under its
/// worker's directory, holds the worker's name).
fn processes_with(token: &str) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: i64 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains(token) && !gone(pid)).then_some(pid)
        })
        .collect()
}

/// A process's parent.
fn parent(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A worker name no other test uses at the same time, of letters, digits and `_` (as the name
/// of its runs' directory shows it).
fn unique_worker(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{what}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn an_ansible_profile_configures_each_node_with_a_playbook(t: &TestDatabase) {
    let Some(runner) = ansible_runner() else {
        return;
    };
    let mut conn = t.db.get().expect("connection");
    let lab = ansible_lab(&runner);
    let d = lab.create(
        &mut conn,
        20,
        RolloutPolicy {
            max_in_flight: Some(3),
            ..RolloutPolicy::default()
        },
        0.0,
    );
    let name = unique_worker("ansible");
    let driver = lab.driver(&name);
    let mut now = t0();
    let mut peak = 0;
    drive_for(
        &mut conn,
        &driver,
        &mut now,
        std::time::Duration::from_secs(300),
        |conn| {
            // The ansible-runner processes of this worker's runs, seen from outside: those whose
            // parent is not one (a runner's child is one too between its fork and its exec).
            let runners: Vec<i64> = processes_with(&name)
                .into_iter()
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("ansible-runner"))
                })
                .collect();
            let runners = runners
                .iter()
                .filter(|pid| parent(**pid).is_none_or(|p| !runners.contains(&p)))
                .count();
            peak = peak.max(runners);
            settled(conn, d)
        },
    );
    assert!(
        (1..=3).contains(&peak),
        "ansible-runner processes at once: {peak}"
    );
    for node in fleet(&mut conn, d) {
        let runs = runs::for_node(&mut conn, node.id, 20).expect("runs");
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(
            runs[1].message.as_deref(),
            Some("the profile has nothing to run for provision")
        );
        if node.id.get() % 7 == 0 {
            assert_eq!(node.state, NodeState::Failed, "{node:?}");
            let reason = format!(
                "task \"Refuse nodes whose id is a multiple of 7\": node {} is a multiple of 7",
                node.id
            );
            assert_eq!(node.failure_reason.as_deref(), Some(reason.as_str()));
            assert_eq!(runs[0].outcome, Some(RunOutcome::Failed));
            assert!(runs[0].stdout.contains("PLAY RECAP"), "{}", runs[0].stdout);
        } else {
            assert_eq!(node.state, NodeState::Running, "{node:?}");
            let file = std::fs::read_to_string(lab.out().join("nodes").join(&node.name))
                .expect("the node's file");
            assert_eq!(file, "lab-fleet attempt 0\n");
        }
    }
    // The operator fixes the cause and retries: the playbook runs again.
    std::fs::write(lab.out().join("fixed"), "").expect("fixed");
    let failed = fleet(&mut conn, d)
        .into_iter()
        .find(|n| n.state == NodeState::Failed)
        .expect("a failed node");
    nodes::retry(&mut conn, d, failed.id, Some("ops"), now).expect("retry");
    drive(&mut conn, &driver, &mut now, |conn| settled(conn, d));
    let node = nodes::get(&mut conn, d, failed.id).expect("node");
    assert_eq!((node.state, node.attempt), (NodeState::Running, 1));
    let file = std::fs::read_to_string(lab.out().join("nodes").join(&node.name)).expect("file");
    assert_eq!(file, "lab-fleet attempt 1\n");
}

fn an_ansible_playbook_past_the_phase_timeout_is_killed_with_every_process(t: &TestDatabase) {
    let Some(runner) = ansible_runner() else {
        return;
    };
    let mut conn = t.db.get().expect("connection");
    let lab = ansible_lab(&runner);
    let d = lab.create(
        &mut conn,
        1,
        RolloutPolicy {
            phase_timeout_seconds: Some(3600),
            ..RolloutPolicy::default()
        },
        300.0,
    );
    let name = unique_worker("ansible_timeout");
    let driver = lab.driver(&name);
    let mut now = t0();
    let sleeper = lab.out().join("sleep-node-001");
    drive_for(
        &mut conn,
        &driver,
        &mut now,
        std::time::Duration::from_secs(120),
        |_| sleeper.exists(),
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    let sleep_pid: i64 = std::fs::read_to_string(&sleeper)
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    let tree = processes_with(&name);
    assert!(
        tree.len() >= 2,
        "ansible-runner and ansible-playbook: {tree:?}"
    );
    assert!(!gone(sleep_pid));
    // The phase's deadline passes (the clock goes there in steps, as a worker's loop does: a
    // worker whose leases went unrenewed for 30 s would kill its runs as lost): the run is
    // killed, every process it started with it.
    let node = fleet(&mut conn, d).remove(0);
    let deadline = node.state_changed_at + Duration::seconds(3600);
    while now < deadline {
        now = (now + Duration::seconds(20)).min(deadline);
        step(&mut conn, &driver, now);
    }
    let node = fleet(&mut conn, d).remove(0);
    assert_eq!(node.state, NodeState::Failed);
    assert_eq!(
        node.failure_reason.as_deref(),
        Some("configuring timed out after 3600 s")
    );
    assert_eq!(
        runs::for_node(&mut conn, node.id, 20).expect("runs")[0].outcome,
        Some(RunOutcome::TimedOut)
    );
    for _ in 0..300 {
        if gone(sleep_pid) && processes_with(&name).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "left running: {:?}, sleep {sleep_pid} gone: {}",
        processes_with(&name),
        gone(sleep_pid)
    );
}

backend_tests!(
    an_ansible_profile_configures_each_node_with_a_playbook,
    an_ansible_playbook_past_the_phase_timeout_is_killed_with_every_process,
    a_command_profile_runs_each_phase_and_fails_the_nodes_it_refuses,
    a_run_past_the_phase_timeout_is_killed_with_its_children,
    a_stalled_worker_is_taken_over_and_its_late_result_not_applied,
    an_address_another_node_has_fails_the_node_and_nothing_else,
    nodes_of_a_profile_a_worker_lacks_wait_for_one_that_has_it,
);
