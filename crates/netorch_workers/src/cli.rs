//! The flags `netorch-worker` and `netorch-server` share: the database, the workers and the
//! log format.

use crate::WorkerOptions;
use crate::export::{Credentials, ExportTarget};
use netorch_storage::retention::Retention;
use netorch_storage::{Database, DatabaseOptions, StorageError};
use std::time::Duration;

/// The original service's lifecycle interval.
pub const LIFECYCLE_INTERVAL: Duration = Duration::from_secs(2);
/// The original service's telemetry interval (and collection slot).
pub const TELEMETRY_INTERVAL: Duration = Duration::from_secs(5);

/// The database flag, flattened into each binary's own.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: sqlite://PATH, sqlite::memory:, postgres://... or postgresql://...
    #[arg(
        long,
        env = "NETORCH_DATABASE_URL",
        default_value = "sqlite://netorch.db",
        global = true
    )]
    pub database_url: String,

    /// Create the SQLite file of --database-url when it does not exist. Without it,
    /// netorch-worker, `netorch-server keys` and `netorch-server receivers` refuse a missing
    /// file: started in another folder, they would work on a new, empty database that no server
    /// reads. (netorch-server itself creates its database on first start.)
    #[arg(long, env = "NETORCH_CREATE_DATABASE", global = true)]
    pub create_database: bool,
}

/// A program's exit status for `result`: an error is one line on standard error (`error: `,
/// then its causes joined with `: `, as anyhow's alternate form writes them) and status 1,
/// never a backtrace, whatever `RUST_BACKTRACE` says: a mistaken flag or URL is the user's to
/// fix, not a bug to debug.
pub fn exit_status<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

impl DatabaseArgs {
    /// Opens the database of a program that joins an existing one (a worker, the key manager):
    /// a SQLite file that does not exist is refused unless --create-database was given, with
    /// what to do in the error. Logs which database it opened (a file's path absolute).
    pub fn join(&self, mut options: DatabaseOptions) -> Result<Database, String> {
        options.create_sqlite_file = self.create_database;
        let db = Database::connect_with(&self.database_url, &options).map_err(|e| match e {
            StorageError::NoSuchDatabase { url } => format!(
                "there is no database at {url}: give --database-url the database netorch-server \
                 uses (it creates it on first start), or --create-database to create a new, \
                 empty one"
            ),
            other => other.to_string(),
        })?;
        log::info!("database {}", db.redacted_url());
        Ok(db)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message key=value ...`, for people.
    Text,
    /// One JSON object a line: `time`, `level`, `target`, `message`, and the line's
    /// structured fields (`request_id`, `deployment_id`, `worker`, ...), for log pipelines.
    Json,
}

/// The log flag, flattened into each binary's own.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log as text or as one JSON object a line. Which lines are written is set with
    /// RUST_LOG as always (default: info).
    #[arg(long, env = "NETORCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Starts logging (`env_logger`, filtered by `RUST_LOG`, info by default) in the chosen
    /// format. Call once, first thing.
    pub fn init(&self) {
        let mut builder =
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
        if self.log_format == LogFormat::Json {
            builder.format(|out, record| {
                use std::io::Write;
                writeln!(out, "{}", json_line(record, chrono::Utc::now()))
            });
        }
        builder.init();
    }
}

/// One log record as a JSON object on one line.
fn json_line(record: &log::Record<'_>, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut line = serde_json::Map::new();
    line.insert(
        "time".into(),
        now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .into(),
    );
    line.insert("level".into(), record.level().as_str().into());
    line.insert("target".into(), record.target().into());
    line.insert("message".into(), record.args().to_string().into());
    let mut fields = Fields(&mut line);
    // A field that cannot be read is left out; the message is what matters.
    let _ = record.key_values().visit(&mut fields);
    serde_json::Value::Object(line).to_string()
}

/// Copies a record's structured fields into its JSON object, numbers as numbers.
struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(x) = value.to_f64() {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
        } else if let Some(b) = value.to_bool() {
            b.into()
        } else {
            value.to_string().into()
        };
        // The fixed keys stay what they are.
        if !matches!(key.as_str(), "time" | "level" | "target" | "message") {
            self.0.insert(key.as_str().to_owned(), json);
        }
        Ok(())
    }
}

/// Worker flags, flattened into each binary's own.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct WorkerArgs {
    /// Run the simulated hardware and both loops this many times faster than real time: at 10,
    /// provisioning takes 0.3 to 0.7 s and the loops tick every 0.2 s and 0.5 s.
    #[arg(long, env = "NETORCH_TIME_SCALE", default_value_t = 1.0, value_parser = parse_time_scale)]
    pub time_scale: f64,

    /// Lifecycle loop interval in milliseconds [default: 2000 / time scale].
    #[arg(long, env = "NETORCH_LIFECYCLE_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub lifecycle_interval_ms: Option<u64>,

    /// Telemetry loop interval in milliseconds, which is also the length of a collection slot
    /// [default: 5000 / time scale].
    #[arg(long, env = "NETORCH_TELEMETRY_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub telemetry_interval_ms: Option<u64>,

    /// Alerts loop interval in milliseconds, which is also its evaluation slot: each
    /// deployment's rules are evaluated once per slot, by one worker [default: 30000 / time
    /// scale].
    #[arg(long, env = "NETORCH_ALERT_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_interval_ms: Option<u64>,

    /// Where people reach the dashboard (`https://netorch.example.com`), for the links alerts
    /// carry (`generator_url`) [default: netorch-server's own address; for netorch-worker,
    /// http://127.0.0.1:8000].
    #[arg(long, env = "NETORCH_EXTERNAL_URL", value_parser = parse_external_url)]
    pub external_url: Option<String>,

    /// Keep resolved alerts and ended silences this many days.
    #[arg(long, env = "NETORCH_KEEP_ALERTS_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_alerts_days: u32,

    /// Forget worker loops silent this many seconds (shown by /health until then) [default:
    /// 900].
    #[arg(long, env = "NETORCH_FORGET_WORKERS_AFTER_SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub forget_workers_after_secs: Option<u64>,

    /// Name this process's heartbeats are recorded under (shown by /health) [default:
    /// HOST-PID].
    #[arg(long, env = "NETORCH_WORKER_NAME")]
    pub name: Option<String>,

    /// Keep raw samples this many hours (at least 1: reports read the edges of their window
    /// from them).
    #[arg(long, env = "NETORCH_KEEP_RAW_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_raw_hours: u32,

    /// Keep one-minute rollups this many days.
    #[arg(long, env = "NETORCH_KEEP_MINUTES_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_minutes_days: u32,

    /// Keep one-hour rollups this many days.
    #[arg(long, env = "NETORCH_KEEP_HOURS_DAYS", default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_hours_days: u32,

    /// Keep the audit log's events this many days (of deleted deployments too: the log is
    /// append-only, and age is the only thing that removes an event).
    #[arg(long, env = "NETORCH_KEEP_EVENTS_DAYS", default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_events_days: u32,

    /// Export every stored sample to this Prometheus remote-write endpoint (Prometheus with
    /// --web.enable-remote-write-receiver, Mimir, Thanos Receive, VictoriaMetrics: see
    /// docs/CLUSTER.md). Repeat the flag for several targets; give the same targets to every
    /// worker of the fleet.
    #[arg(
        long = "export-remote-write-url",
        env = "NETORCH_EXPORT_REMOTE_WRITE_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub export_remote_write_urls: Vec<String>,

    /// A file holding `username:password` for the export target of the same position (the
    /// first file for the first URL, ...; an empty value for a target without), read at every
    /// send.
    #[arg(
        long = "export-remote-write-basic-auth-file",
        env = "NETORCH_EXPORT_REMOTE_WRITE_BASIC_AUTH_FILE",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub export_basic_auth_files: Vec<String>,

    /// A file holding a bearer token for the export target of the same position (as
    /// --export-remote-write-basic-auth-file), read at every send.
    #[arg(
        long = "export-remote-write-bearer-token-file",
        env = "NETORCH_EXPORT_REMOTE_WRITE_BEARER_TOKEN_FILE",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub export_bearer_token_files: Vec<String>,

    /// The provisioner profiles file (TOML, docs/PROVISIONERS.md): the external provisioners
    /// (programs, Ansible playbooks) deployments may name beside the built-in `simulator`.
    /// Give the same file to every worker and server of the fleet: a server refuses a
    /// deployment naming a profile it does not know, and a worker drives only the nodes of
    /// profiles it has.
    #[arg(long, env = "NETORCH_PROVISIONERS", value_name = "FILE")]
    pub provisioners: Option<std::path::PathBuf>,

    /// For testing phase timeouts: the simulated hardware never finishes CONFIGURING a node
    /// whose id is a multiple of N, on its first attempt (a retry gets through); 0 hangs none.
    #[arg(long, env = "NETORCH_SIMULATE_HANG_EVERY", default_value_t = 0)]
    pub simulate_hang_every: u64,
}

fn parse_external_url(text: &str) -> Result<String, String> {
    netorch_domain::alert::check_http_url(text)?;
    Ok(text.trim_end_matches('/').to_owned())
}

fn parse_time_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

impl WorkerArgs {
    /// The lifecycle and telemetry loops' intervals: the flags, or the original's divided by
    /// the time scale.
    pub fn intervals(&self) -> (Duration, Duration) {
        (
            self.pick(self.lifecycle_interval_ms, LIFECYCLE_INTERVAL),
            self.pick(self.telemetry_interval_ms, TELEMETRY_INTERVAL),
        )
    }

    /// The alerts loop's interval: the flag, or 30 s divided by the time scale.
    pub fn alert_interval(&self) -> Duration {
        self.pick(self.alert_interval_ms, crate::runner::ALERTS_INTERVAL)
    }

    fn pick(&self, flag: Option<u64>, default: Duration) -> Duration {
        flag.map(Duration::from_millis)
            .unwrap_or_else(|| default.div_f64(self.time_scale))
    }

    /// How long each tier of telemetry is kept.
    pub fn retention(&self) -> Retention {
        Retention {
            raw: chrono::Duration::hours(i64::from(self.keep_raw_hours)),
            minutes: chrono::Duration::days(i64::from(self.keep_minutes_days)),
            hours: chrono::Duration::days(i64::from(self.keep_hours_days)),
            events: chrono::Duration::days(i64::from(self.keep_events_days)),
        }
    }

    /// The process's worker name.
    pub fn worker_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "netorch".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }

    /// Whether any worker flag differs from its default (for a hint when no worker runs).
    pub fn is_set(&self) -> bool {
        self.time_scale != 1.0
            || self.lifecycle_interval_ms.is_some()
            || self.telemetry_interval_ms.is_some()
            || self.alert_interval_ms.is_some()
            || self.name.is_some()
            || self.forget_workers_after_secs.is_some()
            || self.simulate_hang_every != 0
            || !self.export_remote_write_urls.is_empty()
    }

    /// The provisioner profiles of `--provisioners` (none without it).
    pub fn profiles(&self) -> Result<crate::provisioners::Profiles, String> {
        match &self.provisioners {
            Some(path) => crate::provisioners::Profiles::load(path).map_err(|e| e.to_string()),
            None => Ok(crate::provisioners::Profiles::default()),
        }
    }

    /// The export targets: each URL with the credentials file of its position, if any.
    pub fn export_targets(&self) -> Result<Vec<ExportTarget>, String> {
        let urls = &self.export_remote_write_urls;
        for (flag, files) in [
            (
                "--export-remote-write-basic-auth-file",
                &self.export_basic_auth_files,
            ),
            (
                "--export-remote-write-bearer-token-file",
                &self.export_bearer_token_files,
            ),
        ] {
            if files.len() > urls.len() {
                return Err(format!(
                    "{} {flag} given for {} --export-remote-write-url: the n-th file is for the \
                     n-th URL",
                    files.len(),
                    urls.len()
                ));
            }
        }
        let at = |files: &[String], i: usize| {
            files
                .get(i)
                .filter(|f| !f.trim().is_empty())
                .map(std::path::PathBuf::from)
        };
        let mut seen = std::collections::HashSet::new();
        urls.iter()
            .enumerate()
            .map(|(i, url)| {
                let url = url.trim();
                if !seen.insert(url) {
                    return Err(format!("--export-remote-write-url {url} is given twice"));
                }
                let credentials = match (
                    at(&self.export_basic_auth_files, i),
                    at(&self.export_bearer_token_files, i),
                ) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "{url}: give a basic auth file or a bearer token file, not both"
                        ));
                    }
                    (Some(file), None) => Some(Credentials::Basic(file)),
                    (None, Some(file)) => Some(Credentials::Bearer(file)),
                    (None, None) => None,
                };
                ExportTarget::new(url, credentials)
                    .map_err(|e| format!("--export-remote-write-url: {e}"))
            })
            .collect()
    }

    /// Options running every loop; an error when the export flags do not make sense.
    pub fn options(&self) -> Result<WorkerOptions, String> {
        let (lifecycle, telemetry) = self.intervals();
        let defaults = WorkerOptions::new(self.worker_name());
        Ok(WorkerOptions {
            lifecycle_interval: Some(lifecycle),
            telemetry_interval: Some(telemetry),
            alerts_interval: Some(self.alert_interval()),
            keep_alerts: chrono::TimeDelta::days(i64::from(self.keep_alerts_days)),
            delivery: crate::delivery::DeliveryOptions {
                external_url: self
                    .external_url
                    .clone()
                    .unwrap_or_else(|| defaults.delivery.external_url.clone()),
                ..defaults.delivery.clone()
            },
            forget_after: self
                .forget_workers_after_secs
                .map_or(defaults.forget_after, Duration::from_secs),
            retention: self.retention(),
            export: self.export_targets()?,
            provisioners: self.profiles()?,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn json_lines_hold_the_message_and_the_fields() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 5_000).expect("valid");
        let kvs: [(&str, log::kv::Value<'_>); 3] = [
            ("request_id", log::kv::Value::from("abc-1")),
            ("status", log::kv::Value::from(404u16)),
            ("duration_ms", log::kv::Value::from(1.5f64)),
        ];
        let record = log::Record::builder()
            .level(log::Level::Warn)
            .target("netorch::access")
            .args(format_args!("say \"hi\"\nthere"))
            .key_values(&kvs)
            .build();
        let line = json_line(&record, at);
        assert!(!line.contains('\n'), "one line: {line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            parsed,
            serde_json::json!({
                "time": "2027-01-15T08:00:00.000005Z",
                "level": "WARN",
                "target": "netorch::access",
                "message": "say \"hi\"\nthere",
                "request_id": "abc-1",
                "status": 404,
                "duration_ms": 1.5,
            })
        );
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        workers: WorkerArgs,
    }

    #[test]
    fn the_time_scale_divides_the_default_intervals() {
        let cli = Cli::try_parse_from(["x", "--time-scale", "10"]).expect("parse");
        assert_eq!(
            cli.workers.intervals(),
            (Duration::from_millis(200), Duration::from_millis(500))
        );
        let cli =
            Cli::try_parse_from(["x", "--time-scale", "10", "--telemetry-interval-ms", "1000"])
                .expect("parse");
        assert_eq!(cli.workers.intervals().1, Duration::from_secs(1));
        assert_eq!(cli.workers.alert_interval(), Duration::from_secs(3));
    }

    #[test]
    fn export_targets_pair_with_their_credentials_by_position() {
        let cli = Cli::try_parse_from([
            "x",
            "--export-remote-write-url",
            "http://127.0.0.1:8428/api/v1/write",
            "--export-remote-write-url",
            "https://mimir.example.com/api/v1/push",
            "--export-remote-write-url",
            "https://thanos.example.com/api/v1/receive",
            "--export-remote-write-basic-auth-file",
            "",
            "--export-remote-write-basic-auth-file",
            "/etc/netorch/mimir",
            "--export-remote-write-bearer-token-file",
            "",
            "--export-remote-write-bearer-token-file",
            "",
            "--export-remote-write-bearer-token-file",
            "/etc/netorch/thanos",
        ])
        .expect("parse");
        let targets = cli.workers.export_targets().expect("targets");
        assert_eq!(
            targets
                .iter()
                .map(|t| t.credentials.clone())
                .collect::<Vec<_>>(),
            [
                None,
                Some(Credentials::Basic("/etc/netorch/mimir".into())),
                Some(Credentials::Bearer("/etc/netorch/thanos".into())),
            ]
        );
        assert_eq!(cli.workers.options().expect("options").export, targets);
        for args in [
            // More files than URLs.
            vec!["x", "--export-remote-write-basic-auth-file", "/a"],
            // Both kinds for one URL.
            vec![
                "x",
                "--export-remote-write-url",
                "http://a/w",
                "--export-remote-write-basic-auth-file",
                "/a",
                "--export-remote-write-bearer-token-file",
                "/b",
            ],
            // The same target twice would be two loops on one cursor.
            vec![
                "x",
                "--export-remote-write-url",
                "http://a/w",
                "--export-remote-write-url",
                "http://a/w",
            ],
            vec!["x", "--export-remote-write-url", "http://u:p@a/w"],
            vec!["x", "--export-remote-write-url", "a:8428/w"],
        ] {
            let cli = Cli::try_parse_from(&args).expect("parse");
            assert!(cli.workers.export_targets().is_err(), "{args:?}");
        }
    }

    #[test]
    fn nonsense_flags_are_refused() {
        for args in [
            vec!["x", "--time-scale", "0"],
            vec!["x", "--time-scale", "-2"],
            vec!["x", "--time-scale", "fast"],
            vec!["x", "--lifecycle-interval-ms", "0"],
            vec!["x", "--external-url", "netorch.example.com"],
            vec!["x", "--external-url", "https://"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }
}
