//! The processes of provisioner runs: started in a process group of their own with their
//! input and output in files (no pipe to fill, nothing to read while they run), polled without
//! blocking, and killed with every process they started.
//!
//! A run's tree is killed by walking `/proc` from its first process: every descendant is
//! stopped first (`SIGSTOP`, repeated until no new one appears, so that nothing forks while the
//! tree is killed), then killed, and so is the first process's group. The walk matters: tools
//! such as ansible-runner start their children in sessions of their own (pexpect gives each a
//! terminal), which a signal to the group alone would miss.

use netorch_domain::provisioning::RUN_OUTPUT_MAX_BYTES;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};

/// The worker's environment variables a run's program also gets; nothing else of it is passed
/// on (it holds the database's URL and the export's credentials' paths).
const PASSED_ON: [&str; 4] = ["PATH", "HOME", "LANG", "TMPDIR"];

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// What it reads on stdin.
    pub stdin: &'a [u8],
    /// A directory of the run's own (its input and output files go there; removed when the
    /// run is over).
    pub run_dir: PathBuf,
    /// Where it runs.
    pub working_directory: Option<&'a Path>,
    /// Its environment besides the worker's `PATH`, `HOME`, `LANG` and `TMPDIR`.
    pub env: &'a BTreeMap<String, String>,
}

/// A started run's process.
#[derive(Debug)]
pub struct RunningProcess {
    child: Child,
    /// Set once it has been waited for: its pid may belong to another process since.
    reaped: bool,
    run_dir: PathBuf,
    /// Its pid (and process group).
    pub pid: i64,
    /// Its start time in clock ticks since boot, when `/proc` tells it.
    pub started: Option<i64>,
}

impl RunningProcess {
    /// Starts `launch`.
    pub fn start(launch: &Launch<'_>) -> std::io::Result<RunningProcess> {
        let Some((program, args)) = launch.argv.split_first() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no program to run",
            ));
        };
        std::fs::create_dir_all(&launch.run_dir)?;
        let input = launch.run_dir.join("stdin.json");
        File::create(&input)?.write_all(launch.stdin)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(File::open(&input)?)
            .stdout(File::create(launch.run_dir.join("stdout"))?)
            .stderr(File::create(launch.run_dir.join("stderr"))?)
            .env_clear()
            .process_group(0);
        for name in PASSED_ON {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(launch.env);
        if let Some(dir) = launch.working_directory {
            command.current_dir(dir);
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&launch.run_dir);
                return Err(e);
            }
        };
        let pid = i64::from(child.id());
        Ok(RunningProcess {
            child,
            reaped: false,
            run_dir: launch.run_dir.clone(),
            pid,
            started: start_time(pid),
        })
    }

    /// Its exit status once it has exited; `None` while it runs.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        let status = self.child.try_wait()?;
        self.reaped |= status.is_some();
        Ok(status)
    }

    /// Kills it and every process it started, and reaps it; nothing once it has been reaped
    /// (its pid may be another process's by then).
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        kill_tree(self.pid);
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// The end of its standard output and error (at most `RUN_OUTPUT_MAX_BYTES` each).
    pub fn output(&self) -> (String, String) {
        (
            read_tail(&self.run_dir.join("stdout")),
            read_tail(&self.run_dir.join("stderr")),
        )
    }

    /// The run's own directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Removes the run's files (once its result is read).
    pub fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// How a process ended, in words: `exited with status 3`, `killed by signal 9`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

/// The end of the file at `path`, at most `RUN_OUTPUT_MAX_BYTES`, as text (invalid UTF-8
/// replaced; a character cut by the start dropped).
pub fn read_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let max = RUN_OUTPUT_MAX_BYTES as u64;
    if len > max && file.seek(SeekFrom::Start(len - max)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::with_capacity(len.min(max) as usize);
    if file.take(max).read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if len > max {
        // Drop what is left of a character the cut split.
        text.trim_start_matches('\u{FFFD}').to_owned()
    } else {
        text
    }
}

/// This host, as runs record it: its name and boot id, so that a pid is compared only on the
/// machine and boot it was given on.
pub fn host_id() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{} {}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

/// A process's parent and start time (clock ticks since boot), from `/proc/PID/stat`.
fn stat(pid: i64) -> Option<(i64, i64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // state, ppid, pgrp, ... starttime is the 22nd field of the line, the 20th after ')'.
    let ppid = fields.get(1)?.parse().ok()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((ppid, started))
}

/// A process's start time in clock ticks since boot.
pub fn start_time(pid: i64) -> Option<i64> {
    stat(pid).map(|(_, started)| started)
}

/// Whether process `pid` is the one that started at `started` (not a later process given the
/// same pid) and still runs.
pub fn is_running(pid: i64, started: i64) -> bool {
    start_time(pid) == Some(started)
}

/// `root` and all its descendants now.
fn tree(root: i64) -> Vec<i64> {
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            if let Some((ppid, _)) = stat(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        if let Some(kids) = children.get(&found[i]) {
            found.extend(kids.iter().copied());
        }
        i += 1;
    }
    found
}

fn signal(pid: i64, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, signal);
    }
}

/// Kills process `root`, every process descended from it and its process group: stops them
/// all first, again until no new one appears (at most a few rounds), so none forks meanwhile.
pub fn kill_tree(root: i64) {
    let mut stopped: HashSet<i64> = HashSet::new();
    for _ in 0..8 {
        let now = tree(root);
        let new: Vec<i64> = now
            .iter()
            .copied()
            .filter(|p| !stopped.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        for pid in new {
            signal(pid, Signal::STOP);
            stopped.insert(pid);
        }
    }
    for pid in tree(root).into_iter().chain(stopped.iter().copied()) {
        signal(pid, Signal::KILL);
    }
    if let Some(group) = i32::try_from(root).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(group, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch<'a>(
        dir: &Path,
        argv: &[&str],
        stdin: &'a [u8],
        env: &'a BTreeMap<String, String>,
    ) -> Launch<'a> {
        Launch {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            stdin,
            run_dir: dir.join("run"),
            working_directory: None,
            env,
        }
    }

    fn wait(process: &mut RunningProcess) -> ExitStatus {
        for _ in 0..500 {
            if let Some(status) = process.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the process did not end");
    }

    #[test]
    fn a_run_reads_its_input_and_keeps_its_output_apart() {
        let dir = tempfile::tempdir().expect("dir");
        let env = BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]);
        let mut p = RunningProcess::start(&launch(
            dir.path(),
            &["sh", "-c", "cat; echo \" $GREETING\"; echo oops >&2; echo \"db=$NETORCH_DATABASE_URL\"; exit 3"],
            b"{\"a\":1}",
            &env,
        ))
        .expect("starts");
        assert!(p.started.is_some());
        let status = wait(&mut p);
        assert_eq!(describe(status), "exited with status 3");
        let (stdout, stderr) = p.output();
        assert_eq!(stdout, "{\"a\":1} hi\ndb=\n");
        assert_eq!(stderr, "oops\n");
        p.clean_up();
        assert!(!dir.path().join("run").exists());
    }

    #[test]
    fn a_program_that_cannot_start_says_why() {
        let dir = tempfile::tempdir().expect("dir");
        let env = BTreeMap::new();
        let e = RunningProcess::start(&launch(dir.path(), &["/nonexistent/x"], b"", &env))
            .expect_err("no such program");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn killing_a_run_kills_what_it_started_even_in_another_session() {
        let dir = tempfile::tempdir().expect("dir");
        let env = BTreeMap::new();
        let pids = dir.path().join("pids");
        // A child in a session of its own (as pexpect starts ansible-playbook) and a grandchild.
        let script = format!(
            "setsid sh -c 'sleep 300 & echo $! >> {p}; sleep 300' & echo $! >> {p}; sleep 300",
            p = pids.display()
        );
        let mut p = RunningProcess::start(&launch(dir.path(), &["sh", "-c", &script], b"", &env))
            .expect("starts");
        let mut started = Vec::new();
        for _ in 0..500 {
            started = std::fs::read_to_string(&pids)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i64>().ok())
                .collect();
            if started.len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(started.len(), 2, "both descendants started");
        let descendants = tree(p.pid);
        assert!(descendants.len() >= 4, "{descendants:?}");
        p.kill();
        for _ in 0..500 {
            if descendants
                .iter()
                .all(|pid| start_time(*pid).is_none() || zombie(*pid))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "left running: {:?}",
            descendants
                .iter()
                .filter(|p| start_time(**p).is_some() && !zombie(**p))
                .collect::<Vec<_>>()
        );
    }

    fn zombie(pid: i64) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| {
                t.rfind(')')
                    .map(|i| t[i + 1..].trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    }

    #[test]
    fn a_pid_is_recognised_by_its_start_time() {
        let me = i64::from(std::process::id());
        let started = start_time(me).expect("own stat");
        assert!(is_running(me, started));
        assert!(!is_running(me, started + 1));
        assert!(host_id().contains(' '));
    }
}
