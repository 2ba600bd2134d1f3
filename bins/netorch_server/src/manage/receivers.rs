//! `netorch-server receivers`: where alerts are told (Alertmanager, a signed webhook,
//! PagerDuty), added, listed and removed on the server's database, as `POST`, `GET` and
//! `DELETE /receivers` do. A secret is read from a file or standard input, never from the
//! command line (where `ps` and the shell's history would keep it), and never printed.

use super::time;
use anyhow::{Context, bail};
use clap::Subcommand;
use netorch_domain::alert::{NewReceiver, PAGERDUTY_EVENTS_URL, ReceiverKind};
use netorch_service::alerts;
use netorch_workers::cli::DatabaseArgs;
use std::io::Read;

#[derive(Subcommand)]
pub(crate) enum Receivers {
    /// Add a receiver: every server and worker on the database tells it of alerts from then on.
    Add {
        /// A unique name (1 to 64 letters, digits, '.', '_' or '-').
        #[arg(long)]
        name: String,
        /// alertmanager (POST {url}/api/v2/alerts), webhook (POST {url} with Alertmanager's
        /// webhook payload, signed with the secret) or pagerduty (Events API v2, routed by the
        /// secret).
        #[arg(long, value_parser = parse_kind)]
        kind: ReceiverKind,
        /// http:// or https://: Alertmanager's base URL or the webhook's URL [default for
        /// pagerduty: `https://events.pagerduty.com/v2/enqueue`].
        #[arg(long)]
        url: Option<String>,
        /// A file holding the secret (the webhook's signing key, PagerDuty's routing key), or
        /// `-` for standard input; one trailing newline is dropped.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<String>,
    },
    /// List every receiver: id, name, kind, whether it has a secret (never the secret), created,
    /// URL.
    List,
    /// Remove a receiver, with its notifications (delivered or not).
    Remove {
        /// The receiver's name.
        name: String,
    },
}

fn parse_kind(text: &str) -> Result<ReceiverKind, String> {
    text.parse::<ReceiverKind>().map_err(|_| {
        format!("{text:?} is not a kind of receiver: use alertmanager, webhook or pagerduty")
    })
}

/// The secret in `source`: a file's text, or standard input's for `-`, without the one
/// newline an editor or `echo` ends it with.
fn read_secret(source: &str, stdin: impl Read) -> anyhow::Result<String> {
    let mut text = String::new();
    if source == "-" {
        let mut stdin = stdin;
        stdin
            .read_to_string(&mut text)
            .context("reading the secret from standard input")?;
    } else {
        text = std::fs::read_to_string(source)
            .with_context(|| format!("reading the secret from {source}"))?;
    }
    let secret = text
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&text);
    if secret.is_empty() {
        bail!("the secret in {source} is empty");
    }
    Ok(secret.to_owned())
}

/// Runs a `receivers` subcommand.
pub(crate) fn run(database: &DatabaseArgs, command: Receivers) -> anyhow::Result<()> {
    // The secret first: a mistake in it must not leave an open database behind it.
    let secret = match &command {
        Receivers::Add {
            secret_file: Some(source),
            ..
        } => Some(read_secret(source, std::io::stdin().lock())?),
        _ => None,
    };
    let db = super::open(database)?;
    let mut conn = db.get()?;
    match command {
        Receivers::Add {
            name, kind, url, ..
        } => {
            let url = match (url, kind) {
                (Some(url), _) => url,
                (None, ReceiverKind::PagerDuty) => PAGERDUTY_EVENTS_URL.to_owned(),
                (None, _) => bail!("a receiver of kind {} needs --url", kind.as_str()),
            };
            let new = NewReceiver {
                name,
                kind,
                url,
                secret,
            };
            let made = alerts::create_receiver(&mut conn, &new, chrono::Utc::now())?;
            eprintln!(
                "added receiver {:?} ({}, id {}{})",
                made.name,
                made.kind.as_str(),
                made.id,
                if made.secret.is_some() {
                    ", with a secret"
                } else {
                    ""
                }
            );
        }
        Receivers::List => {
            let all = alerts::list_receivers(&mut conn)?;
            let width = all.iter().map(|r| r.name.len()).fold(4, usize::max);
            println!(
                "{:<6} {:<width$} {:<12} {:<6} {:<20} URL",
                "ID", "NAME", "KIND", "SECRET", "CREATED"
            );
            for receiver in all {
                println!(
                    "{:<6} {:<width$} {:<12} {:<6} {:<20} {}",
                    receiver.id,
                    receiver.name,
                    receiver.kind.as_str(),
                    if receiver.secret.is_some() {
                        "yes"
                    } else {
                        "no"
                    },
                    time(Some(receiver.created_at)),
                    receiver.url
                );
            }
        }
        Receivers::Remove { name } => {
            let found = alerts::list_receivers(&mut conn)?
                .into_iter()
                .find(|r| r.name == name)
                .with_context(|| format!("there is no receiver named {name:?}"))?;
            alerts::delete_receiver(&mut conn, found.id)?;
            eprintln!("removed receiver {:?} (id {})", found.name, found.id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_loses_one_trailing_newline_and_may_not_be_empty() {
        let read = |text: &str| read_secret("-", text.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(read("s3cr3t\n").as_deref(), Ok("s3cr3t"));
        assert_eq!(read("s3cr3t\r\n").as_deref(), Ok("s3cr3t"));
        assert_eq!(read("s3cr3t").as_deref(), Ok("s3cr3t"));
        // Only one: a secret may end in spaces or newlines of its own.
        assert_eq!(read("s3cr3t \n\n").as_deref(), Ok("s3cr3t \n"));
        assert!(read("\n").is_err());
        assert!(read("").is_err());
        assert!(read_secret("/nonexistent/secret", &b""[..]).is_err());
    }

    #[test]
    fn kinds_are_named_as_the_api_names_them() {
        for kind in ReceiverKind::ALL {
            assert_eq!(parse_kind(kind.as_str()), Ok(kind));
        }
        assert!(
            parse_kind("slack")
                .expect_err("no such kind")
                .contains("alertmanager")
        );
    }
}
