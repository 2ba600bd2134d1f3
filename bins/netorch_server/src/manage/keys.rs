//! `netorch-server keys`: API keys, made, listed and revoked on the server's database.

use super::time;
use clap::Subcommand;
use netorch_domain::{DeploymentId, Role};
use netorch_service::keys;
use netorch_workers::cli::DatabaseArgs;

#[derive(Subcommand)]
pub(crate) enum Keys {
    /// Make a key and print its token on standard output. The token is shown this once: the
    /// database keeps only its SHA-256.
    Create {
        /// A unique name (1 to 64 letters, digits, '.', '_' or '-'): the actor events record.
        #[arg(long)]
        name: String,
        /// viewer (every GET), collector (telemetry pushes only), operator (viewer, plus
        /// create, patch, retry, pause, resume and push) or admin (everything).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// How long the key works, as a number and a unit: 90d, 12h, 30m or 45s [default:
        /// until revoked].
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<chrono::Duration>,
        /// Limit the key to this deployment (its id); repeat the flag or separate with commas. A
        /// limited key reaches only requests about its deployments (and GET /whoami)
        /// [default: every deployment].
        #[arg(long = "deployment", value_delimiter = ',', value_parser = clap::value_parser!(i64).range(1..))]
        deployments: Vec<i64>,
    },
    /// List every key: name, role, created, expires, last used, revoked, deployments.
    List,
    /// Revoke a key: its token is refused within a second by every server.
    Revoke {
        /// The key's name.
        name: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>().map_err(|e| e.to_string())
}

fn parse_lifetime(text: &str) -> Result<chrono::Duration, String> {
    let invalid =
        || format!("{text:?} is not a lifetime: use a number and d, h, m or s (90d, 12h)");
    // The unit is the last character, which may be any character at all (not a byte).
    let mut number = text.chars();
    let unit = number.next_back();
    let count: i64 = number.as_str().parse().map_err(|_| invalid())?;
    let seconds = match unit {
        Some('d') => 86_400,
        Some('h') => 3_600,
        Some('m') => 60,
        Some('s') => 1,
        _ => return Err(invalid()),
    };
    match count.checked_mul(seconds) {
        Some(total) if count > 0 && total <= 100 * 365 * 86_400 => {
            Ok(chrono::Duration::seconds(total))
        }
        _ => Err(format!("{text:?}: a lifetime is from 1 s to 100 years")),
    }
}

/// Runs a `keys` subcommand.
pub(crate) fn run(database: &DatabaseArgs, command: Keys) -> anyhow::Result<()> {
    let db = super::open(database)?;
    let mut conn = db.get()?;
    let now = chrono::Utc::now();
    match command {
        Keys::Create {
            name,
            role,
            expires_in,
            deployments,
        } => {
            let scope: Vec<DeploymentId> = deployments.into_iter().map(DeploymentId).collect();
            let request = keys::KeyRequest {
                lifetime: expires_in,
                deployments: (!scope.is_empty()).then_some(scope.as_slice()),
                ..keys::KeyRequest::new(&name, role)
            };
            let keys::CreatedKey { token, key } = keys::create(&mut conn, &request, now)?;
            eprintln!(
                "created key {:?} ({}, expires {}, deployments {}); its token, shown only this \
                 once:",
                key.name,
                key.role,
                time(key.expires_at),
                reach(key.deployments.as_deref())
            );
            println!("{token}");
        }
        Keys::List => {
            let keys = keys::list(&mut conn)?;
            // As wide as the longest name, so the columns line up.
            let width = keys.iter().map(|key| key.name.len()).fold(4, usize::max);
            println!(
                "{:<width$} {:<9} {:<20} {:<20} {:<20} {:<20} DEPLOYMENTS",
                "NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"
            );
            for key in keys {
                println!(
                    "{:<width$} {:<9} {:<20} {:<20} {:<20} {:<20} {}",
                    key.name,
                    key.role,
                    time(Some(key.created_at)),
                    time(key.expires_at),
                    time(key.last_used_at),
                    time(key.revoked_at),
                    reach(key.deployments.as_deref())
                );
            }
        }
        Keys::Revoke { name } => {
            let key = keys::revoke(&mut conn, &name, now)?;
            eprintln!("revoked key {:?} at {}", key.name, time(key.revoked_at));
        }
    }
    Ok(())
}

/// The deployments a key reaches, as `keys` shows them: `*` for every one, else their ids.
fn reach(deployments: Option<&[DeploymentId]>) -> String {
    deployments.map_or_else(
        || "*".to_owned(),
        |ids| {
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_a_number_and_a_unit() {
        assert_eq!(parse_lifetime("90d"), Ok(chrono::Duration::days(90)));
        assert_eq!(parse_lifetime("12h"), Ok(chrono::Duration::hours(12)));
        assert_eq!(parse_lifetime("30m"), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_lifetime("45s"), Ok(chrono::Duration::seconds(45)));
        // Refused with a message, never a panic: a multi-byte unit, no number, no unit, zero,
        // a negative number, past 100 years, an overflow.
        for text in [
            "5\u{e9}",
            "\u{e9}",
            "",
            "d",
            "10",
            "0d",
            "-1d",
            "36501d",
            "9223372036854775807d",
        ] {
            assert!(parse_lifetime(text).is_err(), "{text:?}");
        }
    }
}
