//! What a run's program is given and how its result is read: the command protocol, and
//! ansible-runner's private data directory and job events (docs/PROVISIONERS.md).

use super::process::describe;
use super::profiles::{Profile, Program};
use netorch_domain::{Phase, RunOutcome};
use netorch_storage::runs::{RunFinish, WantedRun};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitStatus;

/// The longest message kept from a program (its result's `message`, or the line of its output
/// that says why it failed).
const MESSAGE_MAX_CHARS: usize = 1000;

/// The version of the command protocol, in every input.
pub const PROTOCOL_VERSION: u32 = 1;

/// The JSON a run's program is given: the command protocol's stdin, and the variables of an
/// Ansible run.
pub fn input(wanted: &WantedRun) -> Value {
    let node = &wanted.node;
    json!({
        "protocol": PROTOCOL_VERSION,
        "phase": wanted.phase.as_str(),
        "deployment": {"id": node.deployment_id.get(), "name": wanted.deployment_name},
        "node": {
            "id": node.id.get(),
            "name": node.name,
            "hostname": node.hostname,
            "address": node.ip_address,
            "attempt": node.attempt,
        },
        "parameters": Value::Object(wanted.provisioning.parameters.clone()),
    })
}

/// The program to start for `wanted` under `profile`, with what it reads on stdin; for
/// Ansible, the private data directory is written under `run_dir` first.
pub fn command_line(
    profile: &Profile,
    wanted: &WantedRun,
    run_dir: &Path,
) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    let input = input(wanted);
    match &profile.program {
        Program::Command { argv } => {
            let mut argv = argv.clone();
            argv.push(wanted.phase.as_str().to_owned());
            Ok((argv, input.to_string().into_bytes()))
        }
        Program::Ansible {
            runner,
            project_directory,
            playbooks,
        } => {
            let playbook = playbooks
                .get(wanted.phase.as_str())
                .cloned()
                .unwrap_or_default();
            let private = run_dir.join("private");
            std::fs::create_dir_all(private.join("inventory"))?;
            std::fs::create_dir_all(private.join("env"))?;
            let node = &wanted.node;
            let host = node.hostname.clone().unwrap_or_else(|| node.name.clone());
            let inventory = json!({"all": {"hosts": {
                host.clone(): {
                    "ansible_host": node.ip_address.clone().unwrap_or(host),
                }
            }}});
            std::fs::write(
                private.join("inventory").join("hosts.json"),
                inventory.to_string(),
            )?;
            let extravars = json!({
                "netorch_phase": wanted.phase.as_str(),
                "netorch_deployment_id": node.deployment_id.get(),
                "netorch_deployment_name": wanted.deployment_name,
                "netorch_node_id": node.id.get(),
                "netorch_node_name": node.name,
                "netorch_hostname": node.hostname,
                "netorch_address": node.ip_address,
                "netorch_attempt": node.attempt,
                "netorch_parameters": Value::Object(wanted.provisioning.parameters.clone()),
            });
            std::fs::write(private.join("env").join("extravars"), extravars.to_string())?;
            let argv = vec![
                runner.clone(),
                "run".to_owned(),
                private.display().to_string(),
                "--project-dir".to_owned(),
                project_directory.display().to_string(),
                "-p".to_owned(),
                playbook,
                "--ident".to_owned(),
                "run".to_owned(),
            ];
            Ok((argv, input.to_string().into_bytes()))
        }
    }
}

/// The last line of `text` that is not blank, cut to [`MESSAGE_MAX_CHARS`].
fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| line.chars().take(MESSAGE_MAX_CHARS).collect())
}

fn cut(text: &str) -> String {
    text.chars().take(MESSAGE_MAX_CHARS).collect()
}

/// An address a program reported: an IP address, as the node's `ip_address` holds one.
fn checked_address(address: Option<String>) -> Result<Option<String>, String> {
    match address {
        None => Ok(None),
        Some(a) => a
            .parse::<std::net::IpAddr>()
            .map(|ip| Some(ip.to_string()))
            .map_err(|_| {
                format!(
                    "the address it reported, {:?}, is not an IP address",
                    cut(&a)
                )
            }),
    }
}

/// The result of a command-protocol run that exited with `status`: exit 0 is success; the last
/// line of stdout, when it is a JSON object, may give an `address` (provision) and a `message`.
/// A failure's message is the result's, else the last line of stderr, else how it ended.
pub fn command_result(status: ExitStatus, stdout: String, stderr: String) -> RunFinish {
    let result: Option<serde_json::Map<String, Value>> = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .and_then(|line| serde_json::from_str(line).ok());
    let field = |name: &str| {
        result
            .as_ref()
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .map(cut)
    };
    let message = field("message");
    let reason = message.clone().or_else(|| last_line(&stderr));
    finish_with(status, stdout, stderr, field("address"), message, reason)
}

/// A run's result from what its program reported: on exit 0, success with the `address` (an
/// IP address, else the run fails saying so) and `message`; otherwise failure with `reason`,
/// or how the program ended.
fn finish_with(
    status: ExitStatus,
    stdout: String,
    stderr: String,
    address: Option<String>,
    message: Option<String>,
    reason: Option<String>,
) -> RunFinish {
    let mut finish = RunFinish {
        outcome: RunOutcome::Succeeded,
        exit_code: status.code(),
        message,
        address: None,
        stdout,
        stderr,
    };
    if status.success() {
        match checked_address(address) {
            Ok(address) => finish.address = address,
            Err(reason) => {
                finish.outcome = RunOutcome::Failed;
                finish.message = Some(reason);
            }
        }
    } else {
        finish.outcome = RunOutcome::Failed;
        finish.message = Some(reason.unwrap_or_else(|| describe(status)));
    }
    finish
}

/// The result of an ansible-runner run that exited with `status`, from its job events under
/// `run_dir`: a failure's message names the first failing task and what it said; a success
/// may report an address with `set_stats` (`netorch_address`, and `netorch_message`).
pub fn ansible_result(
    status: ExitStatus,
    run_dir: &Path,
    stdout: String,
    stderr: String,
) -> RunFinish {
    let events = job_events(&run_dir.join("private/artifacts/run/job_events"));
    let failure = events.iter().find_map(|event| {
        let kind = event.get("event")?.as_str()?;
        let data = event.get("event_data")?;
        let ignored = data.get("ignore_errors").and_then(Value::as_bool) == Some(true);
        if !(kind == "runner_on_unreachable" || kind == "runner_on_failed" && !ignored) {
            return None;
        }
        let task = data.get("task").and_then(Value::as_str).unwrap_or("?");
        let res = data.get("res");
        let said = res
            .and_then(|r| r.get("msg"))
            .and_then(|m| {
                m.as_str()
                    .map(str::to_owned)
                    .or_else(|| Some(m.to_string()))
            })
            .or_else(|| {
                res.and_then(|r| r.get("stderr"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| kind.trim_start_matches("runner_on_").to_owned());
        Some(cut(&format!("task {task:?}: {said}")))
    });
    let stats = events.iter().rev().find_map(|event| {
        (event.get("event")?.as_str()? == "playbook_on_stats")
            .then(|| event.get("event_data")?.get("artifact_data").cloned())
            .flatten()
    });
    let stat = |name: &str| {
        stats
            .as_ref()
            .and_then(|s| s.get(name))
            .and_then(Value::as_str)
            .map(cut)
    };
    let reason = failure
        .or_else(|| last_line(&stderr))
        .or_else(|| last_line(&stdout));
    finish_with(
        status,
        stdout,
        stderr,
        stat("netorch_address"),
        stat("netorch_message"),
        reason,
    )
}

/// The job events ansible-runner wrote, in their order (`{counter}-{uuid}.json`).
fn job_events(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut events: Vec<(u64, Value)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let counter = name.split('-').next()?.parse().ok()?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            Some((counter, serde_json::from_str(&text).ok()?))
        })
        .collect();
    events.sort_by_key(|(counter, _)| *counter);
    events.into_iter().map(|(_, event)| event).collect()
}

/// What a run that was killed at its deadline records.
pub fn timed_out(phase: Phase, seconds: u32, stdout: String, stderr: String) -> RunFinish {
    RunFinish {
        outcome: RunOutcome::TimedOut,
        exit_code: None,
        message: Some(format!(
            "{} timed out after {seconds} s: killed with its child processes",
            phase.as_str()
        )),
        address: None,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn a_command_result_gives_address_and_message() {
        let ok = command_result(
            exited(0),
            "working\n{\"address\": \"10.9.0.1\", \"message\": \"racked\"}\n".into(),
            String::new(),
        );
        assert_eq!(ok.outcome, RunOutcome::Succeeded);
        assert_eq!(ok.address.as_deref(), Some("10.9.0.1"));
        assert_eq!(ok.message.as_deref(), Some("racked"));
        let plain = command_result(exited(0), "done\n".into(), String::new());
        assert_eq!(
            (plain.outcome, plain.address, plain.message),
            (RunOutcome::Succeeded, None, None)
        );
        let bad_address =
            command_result(exited(0), "{\"address\": \"rack 4\"}".into(), String::new());
        assert_eq!(bad_address.outcome, RunOutcome::Failed);
        assert!(
            bad_address
                .message
                .expect("why")
                .contains("not an IP address")
        );
    }

    #[test]
    fn a_command_failure_says_why_in_the_best_words_it_has() {
        let said = command_result(
            exited(2),
            "{\"message\": \"port 7 dead\"}".into(),
            "trace\n".into(),
        );
        assert_eq!(said.outcome, RunOutcome::Failed);
        assert_eq!(said.message.as_deref(), Some("port 7 dead"));
        assert_eq!(said.exit_code, Some(2));
        let stderr = command_result(exited(1), String::new(), "first\nlast words\n\n".into());
        assert_eq!(stderr.message.as_deref(), Some("last words"));
        let silent = command_result(exited(4), String::new(), String::new());
        assert_eq!(silent.message.as_deref(), Some("exited with status 4"));
        let killed = command_result(ExitStatus::from_raw(9), String::new(), String::new());
        assert_eq!(killed.message.as_deref(), Some("killed by signal 9"));
    }

    #[test]
    fn an_ansible_failure_names_the_failing_task() {
        let dir = tempfile::tempdir().expect("dir");
        let events = dir.path().join("private/artifacts/run/job_events");
        std::fs::create_dir_all(&events).expect("dir");
        let write = |name: &str, event: Value| {
            std::fs::write(events.join(name), event.to_string()).expect("write");
        };
        write("1-a.json", json!({"event": "playbook_on_start"}));
        write(
            "3-b.json",
            json!({"event": "runner_on_failed", "event_data": {
            "task": "ignored", "ignore_errors": true, "res": {"msg": "never mind"}}}),
        );
        write(
            "12-c.json",
            json!({"event": "runner_on_failed", "event_data": {
            "task": "Refuse multiples of 7", "res": {"msg": "node 14 is a multiple of 7"}}}),
        );
        write(
            "13-d.json",
            json!({"event": "playbook_on_stats", "event_data": {}}),
        );
        let failed = ansible_result(exited(2), dir.path(), String::new(), String::new());
        assert_eq!(failed.outcome, RunOutcome::Failed);
        assert_eq!(
            failed.message.as_deref(),
            Some("task \"Refuse multiples of 7\": node 14 is a multiple of 7")
        );
        write(
            "14-e.json",
            json!({"event": "playbook_on_stats", "event_data": {
            "artifact_data": {"netorch_address": "192.0.2.7", "netorch_message": "up"}}}),
        );
        let ok = ansible_result(exited(0), dir.path(), String::new(), String::new());
        assert_eq!(ok.address.as_deref(), Some("192.0.2.7"));
        assert_eq!(ok.message.as_deref(), Some("up"));
        let nothing = ansible_result(
            exited(1),
            Path::new("/nonexistent"),
            "ERROR! no playbook\n".into(),
            String::new(),
        );
        assert_eq!(nothing.message.as_deref(), Some("ERROR! no playbook"));
    }
}
