//! `netorch`: the command line for a netorch server. A client of its HTTP API only (like the
//! dashboard; no database access), with the conventions of kubectl, gh and nomad: aligned
//! tables for people, `-o json` (exactly the API's JSON) for scripts, `--url`/`NETORCH_URL` and
//! `--token`/`NETORCH_TOKEN`/`--token-file`, errors as one line with the server's `detail` and
//! the request's id, and exit statuses a pipeline can gate on (`watch`, `deploy --wait`).

mod client;
mod commands;
mod follow;
mod output;
mod watch;

use clap::{CommandFactory, Parser, Subcommand};
use client::Client;
use output::Format;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit statuses (also in `netorch --help`).
pub mod exit {
    /// The command did what it was asked; a watched rollout is COMPLETE.
    pub const OK: u8 = 0;
    /// The command failed: the server refused it, or could not be reached.
    pub const FAILED: u8 = 1;
    /// A watched rollout finished DEGRADED: some nodes FAILED.
    pub const DEGRADED: u8 = 2;
    /// A watched rollout did not finish in time (`--timeout`), or its deployment was deleted.
    pub const UNFINISHED: u8 = 3;
}

/// The command line for a netorch server.
#[derive(Debug, Parser)]
#[command(
    name = "netorch",
    version,
    about = "The command line for a netorch server: deployments, their nodes, events, telemetry \
             and alerts",
    after_help = "Exit status: 0 done (a watched rollout COMPLETE), 1 failed (refused or \
                  unreachable), 2 a watched rollout DEGRADED, 3 a watched rollout unfinished \
                  (timed out, or its deployment deleted)."
)]
pub struct Cli {
    /// The server's URL.
    #[arg(
        long,
        env = "NETORCH_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    pub url: String,
    /// An API key's token (when the server asks for keys).
    #[arg(long, env = "NETORCH_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token (one line), instead of --token.
    #[arg(
        long,
        env = "NETORCH_TOKEN_FILE",
        global = true,
        conflicts_with = "token"
    )]
    pub token_file: Option<PathBuf>,
    /// How to print results: aligned tables, or the API's JSON.
    #[arg(short, long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a deployment and start its rollout.
    Deploy(commands::Deploy),
    /// List deployments, newest first.
    Ls(commands::List),
    /// Show one deployment.
    Get(commands::One),
    /// Change a deployment's node count.
    Scale(commands::Scale),
    /// Pause a deployment's rollout (no node leaves PENDING).
    Pause(commands::One),
    /// Resume a paused rollout.
    Resume(commands::One),
    /// Retry failed nodes: those named, or every failed one.
    Retry(commands::Retry),
    /// Delete a deployment (its events stay readable).
    Rm(commands::One),
    /// List a deployment's nodes.
    Nodes(commands::Nodes),
    /// Show a deployment's events, or follow them live.
    Events(follow::Events),
    /// Follow a rollout live until it finishes; the exit status says how it went.
    Watch(watch::Watch),
    /// The bottleneck report of a deployment.
    Top(commands::Top),
    /// A deployment's raw telemetry samples, newest first.
    Telemetry(commands::Telemetry),
    /// List alerts, newest first.
    Alerts(commands::Alerts),
    /// Acknowledge an alert (by id or fingerprint).
    Ack(commands::Ack),
    /// Silence the alerts of a deployment (or some of its nodes) for a while.
    Silence(commands::Silence),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("netorch: {error}");
            ExitCode::from(exit::FAILED)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "netorch", &mut script);
            output::write_out(format_args!("{}", String::from_utf8_lossy(&script)));
            return Ok(exit::OK);
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            output::write_out(format_args!("{}", String::from_utf8_lossy(&page)));
            return Ok(exit::OK);
        }
        _ => {}
    }
    let token = match (&cli.token, &cli.token_file) {
        (Some(token), _) => Some(token.trim().to_owned()),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", file.display()))?;
            Some(text.trim().to_owned())
        }
        (None, None) => None,
    }
    .filter(|t| !t.is_empty());
    let client = Client::new(&cli.url, token);
    let format = cli.output;
    Ok(match cli.command {
        Command::Deploy(args) => commands::deploy(&client, format, args)?,
        Command::Ls(args) => commands::list(&client, format, &args)?,
        Command::Get(args) => commands::get(&client, format, &args)?,
        Command::Scale(args) => commands::scale(&client, format, &args)?,
        Command::Pause(args) => commands::pause_or_resume(&client, format, &args, "pause")?,
        Command::Resume(args) => commands::pause_or_resume(&client, format, &args, "resume")?,
        Command::Retry(args) => commands::retry(&client, format, &args)?,
        Command::Rm(args) => commands::remove(&client, format, &args)?,
        Command::Nodes(args) => commands::nodes(&client, format, &args)?,
        Command::Events(args) => follow::events(&client, format, &args)?,
        Command::Watch(args) => watch::watch(&client, format, &args)?,
        Command::Top(args) => commands::top(&client, format, &args)?,
        Command::Telemetry(args) => commands::telemetry(&client, format, &args)?,
        Command::Alerts(args) => commands::alerts(&client, format, &args)?,
        Command::Ack(args) => commands::ack(&client, format, &args)?,
        Command::Silence(args) => commands::silence(&client, format, &args)?,
        Command::Completions { .. } | Command::Man => exit::OK,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
