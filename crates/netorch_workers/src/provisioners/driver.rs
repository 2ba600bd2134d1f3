//! The runs a worker has going: started for the node phases that want one, polled, killed at
//! their deadline or when their node leaves the phase, their results recorded; a run whose
//! worker died taken over once its lease expires.

use super::RunDriverStep;
use super::process::{Launch, RunningProcess, host_id, is_running, kill_tree};
use super::profiles::{Profile, Profiles, Program};
use super::protocol::{ansible_result, command_line, command_result, timed_out};
use crate::WorkerError;
use netorch_domain::{NodeId, Phase, RunOutcome, Timestamp};
use netorch_storage::DbConnection;
use netorch_storage::runs::{self, RunFinish, RunProcess, WantedRun};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// How long a worker's claim on a run holds without renewal, at least: a worker renews its runs
/// on each lifecycle tick, so another takes a run over this long after its worker stopped (or
/// three lifecycle intervals, when they are longer: [`RunDriver::with_interval`]).
pub const RUN_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// One run this worker has going.
#[derive(Debug)]
struct LiveRun {
    process: RunningProcess,
    node: NodeId,
    phase: Phase,
    phase_started_at: Timestamp,
    profile: String,
    ansible: bool,
    /// How it ended, once it has, until the result is recorded.
    ended: Option<RunFinish>,
}

/// The external provisioners' runs of one worker.
#[derive(Debug)]
pub struct RunDriver {
    profiles: Profiles,
    holder: String,
    host: String,
    runs_dir: PathBuf,
    live: Mutex<HashMap<i64, LiveRun>>,
    /// When its leases were last renewed (while it has runs).
    renewed: Mutex<Option<Timestamp>>,
    /// Its leases' length.
    lease: chrono::TimeDelta,
}

impl RunDriver {
    /// A driver for `profiles`, recording its runs under `holder` (the worker's name, unique
    /// among the workers sharing the database). Runs' files go to a directory of its own under
    /// the system's temporary directory.
    pub fn new(profiles: Profiles, holder: impl Into<String>) -> RunDriver {
        let holder = holder.into();
        let prefix = format!(
            "netorch-runs-{}-",
            holder
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
        );
        // A directory of its own, readable by this user only, under a name no one can guess
        // ahead: runs' inputs hold the deployments' parameters, and ansible-runner obeys what
        // it finds in a private data directory.
        let runs_dir = tempfile::Builder::new()
            .prefix(&prefix)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map(tempfile::TempDir::keep)
            .unwrap_or_else(|e| {
                log::warn!("no private directory for provisioner runs ({e}); using one in TMPDIR");
                std::env::temp_dir().join(format!("{prefix}{}", std::process::id()))
            });
        RunDriver {
            profiles,
            holder,
            host: host_id(),
            runs_dir,
            live: Mutex::new(HashMap::new()),
            renewed: Mutex::new(None),
            lease: RUN_LEASE,
        }
    }

    /// The same driver settled every `interval` (its lifecycle loop's): its leases last three
    /// intervals if that is longer than [`RUN_LEASE`], so that a worker renewing on time never
    /// loses them.
    pub fn with_interval(mut self, interval: std::time::Duration) -> RunDriver {
        let three = chrono::TimeDelta::from_std(interval.saturating_mul(3))
            .unwrap_or(chrono::TimeDelta::MAX);
        self.lease = RUN_LEASE.max(three);
        self
    }

    /// The profiles it runs.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// How many runs it has going.
    pub fn running(&self) -> usize {
        self.live.lock().map(|live| live.len()).unwrap_or(0)
    }

    /// Settles its runs at `now`: records those that ended, kills and records those past their
    /// deadline (the deployment's `phase_timeout_seconds` as it is now) or whose node left the
    /// phase, and renews its leases on the rest. A worker that could not renew its leases for
    /// its lease kills its runs and forgets them: another worker may have taken them over,
    /// and a phase must not run twice at once.
    pub fn settle(
        &self,
        conn: &mut DbConnection,
        now: Timestamp,
    ) -> Result<RunDriverStep, WorkerError> {
        let mut step = RunDriverStep::default();
        let mut live = self
            .live
            .lock()
            .map_err(|_| WorkerError::Task("the runs' lock was poisoned".into()))?;
        if let Ok(mut renewed) = self.renewed.lock() {
            if let Some(at) = *renewed
                && now - at >= self.lease
                && !live.is_empty()
            {
                log::warn!(
                    "{} provisioner runs killed: their leases were not renewed for {} s, so \
                     another worker may run them",
                    live.len(),
                    (now - at).num_seconds()
                );
                for (_, mut run) in live.drain() {
                    run.process.kill();
                    run.process.clean_up();
                    step.lost += 1;
                }
            }
            if live.is_empty() {
                *renewed = None;
            }
        }
        // The deadlines as the deployments say now, and which runs' nodes are still in the
        // phase they were started for (not timed out by the lifecycle, retried, removed).
        let open: Vec<(NodeId, Timestamp)> = live
            .values()
            .filter(|run| run.ended.is_none())
            .map(|run| (run.node, run.phase_started_at))
            .collect();
        let wanted = if open.is_empty() {
            HashMap::new()
        } else {
            runs::still_wanted(conn, &open)?
        };
        for run in live.values_mut().filter(|run| run.ended.is_none()) {
            let Some(timeout) = wanted.get(&(run.node, run.phase_started_at)) else {
                run.process.kill();
                let (stdout, stderr) = run.process.output();
                run.ended = Some(RunFinish {
                    outcome: RunOutcome::Cancelled,
                    exit_code: None,
                    message: Some(format!(
                        "the node left {} while it ran: killed with its child processes",
                        run.phase.as_str()
                    )),
                    address: None,
                    stdout,
                    stderr,
                });
                continue;
            };
            match run.process.try_wait() {
                Ok(Some(status)) => {
                    let (stdout, stderr) = run.process.output();
                    run.ended = Some(if run.ansible {
                        ansible_result(status, run.process.run_dir(), stdout, stderr)
                    } else {
                        command_result(status, stdout, stderr)
                    });
                }
                Ok(None) => {
                    let deadline = timeout.and_then(|s| {
                        run.phase_started_at
                            .checked_add_signed(chrono::TimeDelta::seconds(i64::from(s)))
                            .map(|at| (at, s))
                    });
                    if let Some((at, seconds)) = deadline
                        && now >= at
                    {
                        run.process.kill();
                        let (stdout, stderr) = run.process.output();
                        run.ended = Some(timed_out(run.phase, seconds, stdout, stderr));
                    }
                }
                Err(e) => {
                    run.process.kill();
                    let (stdout, stderr) = run.process.output();
                    run.ended = Some(RunFinish {
                        outcome: RunOutcome::Failed,
                        exit_code: None,
                        message: Some(format!("could not wait for the run: {e}")),
                        address: None,
                        stdout,
                        stderr,
                    });
                }
            }
        }
        // Results recorded; a run whose record failed stays, to be recorded on the next step
        // (its lease renewed meanwhile).
        let ended: Vec<i64> = live
            .iter()
            .filter(|(_, run)| run.ended.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            let Some(run) = live.get(&id) else {
                continue;
            };
            let Some(finish) = &run.ended else {
                continue;
            };
            let recorded = runs::finish(
                conn,
                id,
                &self.holder,
                run.node,
                run.phase_started_at,
                finish,
                now,
            )?;
            if recorded {
                match finish.outcome {
                    RunOutcome::Succeeded => step.succeeded += 1,
                    RunOutcome::Failed => step.failed += 1,
                    RunOutcome::TimedOut => step.timed_out += 1,
                    RunOutcome::Cancelled => step.cancelled += 1,
                }
                if finish.outcome != RunOutcome::Succeeded {
                    log::info!(
                        node_id = run.node.get(), profile = run.profile.as_str();
                        "{} run of node {} {}: {}",
                        run.phase.as_str(), run.node, finish.outcome.as_str(),
                        finish.message.as_deref().unwrap_or("no reason given")
                    );
                }
            } else {
                step.lost += 1;
            }
            run.process.clean_up();
            live.remove(&id);
        }
        if !live.is_empty() {
            let ids: Vec<i64> = live.keys().copied().collect();
            runs::renew(conn, &self.holder, &ids, now + self.lease)?;
            if let Ok(mut renewed) = self.renewed.lock() {
                *renewed = Some(now);
            }
        }
        step.running = live.len();
        Ok(step)
    }

    /// Starts runs at `now` for the node phases that want one, as many as each profile's
    /// `max_concurrent_runs` leaves room for.
    pub fn start(
        &self,
        conn: &mut DbConnection,
        now: Timestamp,
    ) -> Result<RunDriverStep, WorkerError> {
        let mut step = RunDriverStep::default();
        for profile in self.profiles.iter() {
            let running = self
                .live
                .lock()
                .map(|live| live.values().filter(|r| r.profile == profile.name).count())
                .unwrap_or(usize::MAX);
            let free = i64::from(profile.max_concurrent_runs).saturating_sub(running as i64);
            for wanted in runs::wanted(conn, &profile.name, now, free)? {
                let Some(id) = runs::claim(conn, &wanted, &self.holder, now, now + self.lease)?
                else {
                    continue;
                };
                if let Some((_, Some(process))) = &wanted.abandoned {
                    self.kill_abandoned(process);
                    step.taken_over += 1;
                }
                self.launch(conn, profile, &wanted, id, now, &mut step)?;
            }
        }
        step.running = self.running();
        Ok(step)
    }

    /// Kills what is left of a run its worker abandoned, when it ran on this host and still
    /// runs (the same pid started at the same time): a phase is never run twice at once here.
    fn kill_abandoned(&self, process: &RunProcess) {
        if process.host == self.host && is_running(process.pid, process.started) {
            log::warn!(
                "killing pid {} and its children: a run its worker abandoned",
                process.pid
            );
            kill_tree(process.pid);
        }
    }

    fn launch(
        &self,
        conn: &mut DbConnection,
        profile: &Profile,
        wanted: &WantedRun,
        id: i64,
        now: Timestamp,
        step: &mut RunDriverStep,
    ) -> Result<(), WorkerError> {
        let fail = |message: String| RunFinish {
            outcome: RunOutcome::Failed,
            exit_code: None,
            message: Some(message),
            address: None,
            stdout: String::new(),
            stderr: String::new(),
        };
        let record = |conn: &mut DbConnection, finish: &RunFinish| {
            runs::finish(
                conn,
                id,
                &self.holder,
                wanted.node.id,
                wanted.node.state_changed_at,
                finish,
                now,
            )
        };
        if !profile.runs(wanted.phase) {
            let finish = RunFinish {
                outcome: RunOutcome::Succeeded,
                message: Some(format!(
                    "the profile has nothing to run for {}",
                    wanted.phase.as_str()
                )),
                ..fail(String::new())
            };
            record(conn, &finish)?;
            step.succeeded += 1;
            return Ok(());
        }
        let run_dir = self.runs_dir.join(id.to_string());
        let _ = std::fs::remove_dir_all(&run_dir);
        let started = command_line(profile, wanted, &run_dir).and_then(|(argv, stdin)| {
            RunningProcess::start(&Launch {
                argv,
                stdin: &stdin,
                run_dir: run_dir.clone(),
                working_directory: profile.working_directory.as_deref(),
                env: &profile.env,
            })
        });
        let process = match started {
            Ok(process) => process,
            Err(e) => {
                let program = match &profile.program {
                    Program::Command { argv } => argv.first().cloned().unwrap_or_default(),
                    Program::Ansible { runner, .. } => runner.clone(),
                };
                record(conn, &fail(format!("could not start {program}: {e}")))?;
                step.failed += 1;
                return Ok(());
            }
        };
        let mut process = process;
        if let Some(started) = process.started {
            let recorded = runs::record_process(
                conn,
                id,
                &self.holder,
                &RunProcess {
                    host: self.host.clone(),
                    pid: process.pid,
                    started,
                },
            );
            if let Err(e) = recorded {
                // Not tracked, it would run unseen: stopped, and the run taken over later.
                process.kill();
                process.clean_up();
                return Err(e.into());
            }
        }
        step.started += 1;
        let run = LiveRun {
            process,
            node: wanted.node.id,
            phase: wanted.phase,
            phase_started_at: wanted.node.state_changed_at,
            profile: profile.name.clone(),
            ansible: matches!(profile.program, Program::Ansible { .. }),
            ended: None,
        };
        if let Ok(mut live) = self.live.lock() {
            live.insert(id, run);
        }
        if let Ok(mut renewed) = self.renewed.lock() {
            renewed.get_or_insert(now);
        }
        Ok(())
    }

    /// Stops every run it has going (a clean shutdown): kills them and gives their leases up,
    /// so that another worker starts them again at once.
    pub fn stop(&self, conn: &mut DbConnection, now: Timestamp) -> Result<(), WorkerError> {
        let runs: Vec<(i64, LiveRun)> = match self.live.lock() {
            Ok(mut live) => live.drain().collect(),
            Err(_) => return Ok(()),
        };
        let mut ids = Vec::with_capacity(runs.len());
        for (id, mut run) in runs {
            run.process.kill();
            run.process.clean_up();
            ids.push(id);
        }
        runs::release(conn, &self.holder, &ids, now)?;
        Ok(())
    }
}

impl Drop for RunDriver {
    fn drop(&mut self) {
        if let Ok(mut live) = self.live.lock() {
            for (_, mut run) in live.drain() {
                run.process.kill();
                run.process.clean_up();
            }
        }
        let _ = std::fs::remove_dir_all(&self.runs_dir);
    }
}
