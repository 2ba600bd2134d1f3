//! `netorch watch` and `deploy --wait`: a rollout followed live, a progress bar per node state
//! (on a terminal; a line per change otherwise, for CI logs), then a summary and an exit status
//! that says how it went.

use crate::client::{CallError, Client};
use crate::commands::parse_duration;
use crate::exit;
use crate::output::{self, Format, cell};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use netorch_domain::{Action, NodeState};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often the deployment is read while its rollout is followed.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct Watch {
    /// The deployment's id.
    pub id: i64,
    /// Give up after this long (`90s`, `10m`, `2h`): exit status 3.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

pub fn watch(client: &Client, format: Format, args: &Watch) -> Result<u8, CallError> {
    follow_rollout(client, format, args.id, args.timeout)
}

/// Follows deployment `id` until its rollout is COMPLETE (exit 0), DEGRADED (2), PAUSED, gone or
/// out of time (3).
pub fn follow_rollout(
    client: &Client,
    format: Format,
    id: i64,
    timeout: Option<Duration>,
) -> Result<u8, CallError> {
    let started = Instant::now();
    let on_terminal = std::io::stderr().is_terminal();
    let bars = MultiProgress::with_draw_target(if on_terminal {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{prefix:>13} [{bar:40}] {pos:>7}/{len}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let shown = [
        NodeState::Pending,
        NodeState::Provisioning,
        NodeState::Configuring,
        NodeState::Running,
        NodeState::Failed,
    ];
    let by_state: Vec<(NodeState, ProgressBar)> = shown
        .into_iter()
        .map(|state| {
            let bar = bars.add(ProgressBar::new(0).with_style(style.clone()));
            bar.set_prefix(state.as_str());
            (state, bar)
        })
        .collect();
    let mut last_line = String::new();
    let (deployment, code) = loop {
        let deployment = match client.get(&format!("/deployments/{id}"), Action::Read) {
            Ok(deployment) => deployment,
            Err(error) if error.status == Some(404) => {
                bars.clear().ok();
                eprintln!("netorch: deployment {id} was deleted");
                return Ok(exit::UNFINISHED);
            }
            Err(error) => return Err(error),
        };
        let total = deployment["progress"]["total"].as_u64().unwrap_or(0);
        let mut line = Vec::new();
        for (state, bar) in &by_state {
            let count = deployment["node_states"][state.as_str()]
                .as_u64()
                .unwrap_or(0);
            bar.set_length(total);
            bar.set_position(count);
            line.push(format!("{} {count}", state.as_str()));
        }
        let status = cell(&deployment["status"]);
        let line = format!("{status}: {}", line.join(", "));
        if !on_terminal && format == Format::Table && line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        match status.as_str() {
            "COMPLETE" => break (deployment, exit::OK),
            "DEGRADED" => break (deployment, exit::DEGRADED),
            "PAUSED" => break (deployment, exit::UNFINISHED),
            _ => {}
        }
        if timeout.is_some_and(|limit| started.elapsed() >= limit) {
            break (deployment, exit::UNFINISHED);
        }
        std::thread::sleep(POLL);
    };
    bars.clear().ok();
    match format {
        Format::Json => output::json(&deployment),
        Format::Table => {
            let status = cell(&deployment["status"]);
            let why = match (code, status.as_str()) {
                (exit::UNFINISHED, "PAUSED") => format!(" (resume with: netorch resume {id})"),
                (exit::UNFINISHED, _) => " (timed out)".to_owned(),
                (exit::DEGRADED, _) => format!(" (see: netorch nodes {id} --state FAILED)"),
                _ => String::new(),
            };
            crate::outln!(
                "deployment {id} {}: {status}, {} of {} running, {} failed, after {:.1} s{why}",
                cell(&deployment["name"]),
                cell(&deployment["node_states"]["RUNNING"]),
                cell(&deployment["progress"]["total"]),
                cell(&deployment["node_states"]["FAILED"]),
                started.elapsed().as_secs_f64(),
            );
        }
    }
    Ok(code)
}
