//! Driving real hardware: your own `Provisioner` and `TelemetrySource` under netorch's worker
//! loops, on a SQLite file.
//!
//! The provisioner runs one shell command per phase (here `true`-like scripts; put your Ansible
//! playbook or NETCONF push there), started on the first poll and checked on later ones, as the
//! lifecycle worker polls rather than awaits. The telemetry source reads each node's metrics
//! from a file a collector keeps up to date. The example creates a deployment of four nodes,
//! runs the loops until every node is `RUNNING` and has telemetry, and prints what happened.
//!
//! ```sh
//! cargo run -p netorch_workers --example real_hardware
//! ```

use chrono::Utc;
use netorch_domain::{
    Metrics, NewDeployment, Node, NodeId, NodeState, Phase, PhaseStatus, Provisioner,
    TelemetrySource, Timestamp,
};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{Database, deployments, nodes, telemetry};
use netorch_workers::WorkerOptions;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `sh -c COMMAND` per phase with the node in its environment; exit 0 is success.
struct ShellProvisioner {
    provision: String,
    configure: String,
    /// The phase jobs under way, by node and phase.
    jobs: Mutex<HashMap<(NodeId, Phase), Child>>,
}

impl Provisioner for ShellProvisioner {
    fn assign_address(&self, node: &Node) -> Result<Option<String>, String> {
        // Unique per node id; a real one would ask an IPAM.
        let id = u32::try_from(node.id.get()).map_err(|_| "node id out of range".to_owned())?;
        let [_, b, c, d] = id.to_be_bytes();
        Ok(Some(format!("10.{b}.{c}.{d}")))
    }

    fn phase_status(&self, node: &Node, phase: Phase, _now: Timestamp) -> PhaseStatus {
        // This example has no release script: a decommissioned node is released at once.
        if phase == Phase::Decommissioning {
            return PhaseStatus::Succeeded;
        }
        let Ok(mut jobs) = self.jobs.lock() else {
            return PhaseStatus::InProgress;
        };
        let key = (node.id, phase);
        // The first poll of a phase starts its job; later polls look at it.
        let child = match jobs.entry(key) {
            std::collections::hash_map::Entry::Occupied(job) => job.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let script = match phase {
                    Phase::Provisioning => &self.provision,
                    Phase::Configuring | Phase::Decommissioning => &self.configure,
                };
                let started = Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .env("NODE_ID", node.id.to_string())
                    .env("NODE_NAME", &node.name)
                    .env("NODE_ADDRESS", node.ip_address.as_deref().unwrap_or(""))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn();
                match started {
                    Ok(child) => slot.insert(child),
                    Err(e) => return PhaseStatus::Failed(format!("could not start the job: {e}")),
                }
            }
        };
        match child.try_wait() {
            Ok(None) => PhaseStatus::InProgress,
            Ok(Some(status)) => {
                let done = jobs.remove(&key);
                if status.success() {
                    PhaseStatus::Succeeded
                } else {
                    let stderr = done
                        .and_then(|c| c.wait_with_output().ok())
                        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                        .unwrap_or_default();
                    PhaseStatus::Failed(format!("{phase:?} failed ({status}): {stderr}"))
                }
            }
            Err(e) => PhaseStatus::Failed(format!("lost the job: {e}")),
        }
    }
}

/// Reads `DIR/<node name>.metrics`: `latency_ms throughput_gbps error_rate`.
struct FileTelemetry {
    dir: PathBuf,
}

impl TelemetrySource for FileTelemetry {
    fn read(&self, node: &Node, _slot_start: Timestamp) -> Option<Metrics> {
        let text = std::fs::read_to_string(self.dir.join(format!("{}.metrics", node.name))).ok()?;
        let values: Vec<f64> = text
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let [latency_ms, throughput_gbps, error_rate] = values[..] else {
            return None;
        };
        let metrics = Metrics {
            latency_ms,
            throughput_gbps,
            error_rate,
        };
        // A reading the store would refuse is treated as no answer.
        metrics.validate().ok().map(|()| metrics)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Database::connect(&format!(
        "sqlite://{}",
        dir.path().join("netorch.db").display()
    ))?;
    let deployment = deployments::create(
        &mut *db.get()?,
        &NewDeployment {
            name: "lab-rack".into(),
            description: Some("four switches on the bench".into()),
            target_node_count: 4,
            rollout: Default::default(),
            telemetry: Default::default(),
            alert_rules: Default::default(),
            provisioning: Default::default(),
            remediation: None,
        },
        None,
        Utc::now(),
    )?;
    let metrics_dir = dir.path().join("metrics");
    std::fs::create_dir(&metrics_dir)?;
    for (i, line) in [
        "11.2 9.4 0.1",
        "12.0 9.3 0.2",
        "10.8 9.5 0.1",
        "55.0 6.2 1.3",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(metrics_dir.join(format!("node-{:03}.metrics", i + 1)), line)?;
    }

    let provisioner = Arc::new(ShellProvisioner {
        provision: "sleep 0.2; echo provisioned $NODE_NAME at $NODE_ADDRESS".into(),
        configure: "sleep 0.3; test -n \"$NODE_ADDRESS\"".into(),
        jobs: Mutex::new(HashMap::new()),
    });
    let source = Arc::new(FileTelemetry { dir: metrics_dir });
    let options = WorkerOptions {
        name: "example".into(),
        lifecycle_interval: Some(Duration::from_millis(100)),
        telemetry_interval: Some(Duration::from_millis(250)),
        ..WorkerOptions::new("example")
    };

    // Stop when every node runs and has a sample, or after 20 s.
    let watched = db.clone();
    let done = async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(mut conn) = watched.get() else {
                continue;
            };
            let running = nodes::list(&mut conn, deployment.id, &NodeFilter::default())
                .map(|page| page.nodes.iter().all(|n| n.state == NodeState::Running))
                .unwrap_or(false);
            let samples = telemetry::count(&mut conn, deployment.id).unwrap_or(0);
            if running && samples >= 4 {
                break;
            }
        }
    };
    netorch_workers::run(db.clone(), provisioner, source, options, done).await;

    let mut conn = db.get()?;
    let page = nodes::list(&mut conn, deployment.id, &NodeFilter::default())?;
    for node in &page.nodes {
        println!(
            "{} {} {:<8} {}",
            node.name,
            node.ip_address.as_deref().unwrap_or("-"),
            node.state.as_str(),
            node.failure_reason.as_deref().unwrap_or("")
        );
    }
    let samples = telemetry::count(&mut conn, deployment.id)?;
    println!("{samples} samples stored");
    if page.nodes.iter().any(|n| n.state != NodeState::Running) || samples < 4 {
        return Err("not every node came up with telemetry within 20 s".into());
    }
    Ok(())
}
