//! `netorch-server receivers`: receivers added, listed and removed on the server's database
//! from the command line, seen by a running server, their secrets read from a file or standard
//! input and never printed; mistakes are one line and change nothing.

mod support;

use netorch_domain::alert::ReceiverKind;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use support::*;

/// `netorch-server receivers ARGS` on `database_url`, with `stdin` as its standard input.
fn receivers(database_url: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(server_binary())
        .arg("receivers")
        .args(args)
        .args(["--database-url", database_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run netorch-server receivers");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The one line a refused command prints, after checking it failed and printed nothing else.
fn refusal(output: &Output) -> String {
    assert!(!output.status.success(), "{}", text(output));
    assert!(output.stdout.is_empty(), "{}", text(output));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_owned()
}

/// The receivers as the running server's API shows them, by name.
fn listed(addr: &str) -> Vec<(String, String, bool)> {
    let (status, body) = request(addr, "GET", "/receivers", None);
    assert_eq!(status, 200, "{body}");
    body["receivers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r: &Value| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["kind"].as_str().unwrap_or_default().to_owned(),
                r["has_secret"].as_bool().unwrap_or_default(),
            )
        })
        .collect()
}

fn managed_from_the_command_line(database_url: &str, dir: &std::path::Path) {
    // Before the server first starts, as an operator sets one up.
    let made = receivers(
        database_url,
        &[
            "add",
            "--name",
            "am",
            "--kind",
            "alertmanager",
            "--url",
            "http://127.0.0.1:9093",
            "--create-database",
        ],
        "",
    );
    assert!(made.status.success(), "{}", text(&made));
    let server = start_with(database_url, &["--workers", "none"]);
    let addr = server.addr.as_str();
    assert_eq!(listed(addr), [("am".into(), "alertmanager".into(), false)]);

    // While it runs: a webhook's key from a file (its newline dropped), PagerDuty's routing key
    // from standard input (its URL the default).
    let key_file = dir.join("hook.key");
    std::fs::write(&key_file, "hook-signing-key-1\n").expect("write key");
    let key_path = key_file.to_str().expect("utf-8 path");
    for (args, stdin) in [
        (
            vec![
                "add",
                "--name",
                "ops-hook",
                "--kind",
                "webhook",
                "--url",
                "https://hooks.example.com/netorch",
                "--secret-file",
                key_path,
            ],
            "",
        ),
        (
            vec![
                "add",
                "--name",
                "pager",
                "--kind",
                "pagerduty",
                "--secret-file",
                "-",
            ],
            "routing-key-2\n",
        ),
    ] {
        let output = receivers(database_url, &args, stdin);
        assert!(output.status.success(), "{}", text(&output));
        let said = text(&output);
        assert!(said.contains("added receiver"), "{said}");
        assert!(!said.contains("key-1") && !said.contains("key-2"), "{said}");
    }
    assert_eq!(
        listed(addr),
        [
            ("am".into(), "alertmanager".into(), false),
            ("ops-hook".into(), "webhook".into(), true),
            ("pager".into(), "pagerduty".into(), true),
        ]
    );
    // The secrets stored are the files' texts, without the newline.
    let db = netorch_storage::Database::connect(database_url).expect("connect");
    let stored =
        netorch_storage::alerts::receivers::list(&mut db.get().expect("connection")).expect("list");
    let secrets: Vec<(ReceiverKind, Option<&str>, &str)> = stored
        .iter()
        .map(|r| (r.kind, r.secret.as_deref(), r.url.as_str()))
        .collect();
    assert_eq!(
        secrets,
        [
            (ReceiverKind::Alertmanager, None, "http://127.0.0.1:9093"),
            (
                ReceiverKind::Webhook,
                Some("hook-signing-key-1"),
                "https://hooks.example.com/netorch"
            ),
            (
                ReceiverKind::PagerDuty,
                Some("routing-key-2"),
                "https://events.pagerduty.com/v2/enqueue"
            ),
        ]
    );

    // The listing: a line each, whether there is a secret, never the secret.
    let output = receivers(database_url, &["list"], "");
    assert!(output.status.success(), "{}", text(&output));
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["ID", "NAME", "KIND", "SECRET", "CREATED", "URL"]);
    assert_eq!(rows.len(), 4, "{listing}");
    assert_eq!(rows[2][1..4], ["ops-hook", "webhook", "yes"]);
    assert_eq!(rows[1][3], "no");
    assert!(!text(&output).contains("key-1") && !text(&output).contains("key-2"));

    // Mistakes: one line each, and nothing changes.
    let cases = [
        (
            "add --name am --kind alertmanager --url http://a:1",
            "",
            "error: a receiver named \"am\" exists already",
        ),
        (
            "add --name bad/name --kind alertmanager --url http://a:1",
            "",
            "error: invalid receiver: a receiver's name may hold only letters, digits",
        ),
        (
            "add --name x --kind webhook --url ftp://a --secret-file -",
            "k\n",
            "error: invalid receiver: \"ftp://a\" is not an http:// or https:// URL",
        ),
        (
            "add --name x --kind webhook --url http://a:1",
            "",
            "error: invalid receiver: a webhook receiver needs its secret",
        ),
        (
            "add --name x --kind webhook --url http://a:1 --secret-file -",
            "\n",
            "error: the secret in - is empty",
        ),
        (
            "add --name x --kind alertmanager",
            "",
            "error: a receiver of kind alertmanager needs --url",
        ),
        (
            "remove nobody",
            "",
            "error: there is no receiver named \"nobody\"",
        ),
    ];
    for (args, stdin, expected) in cases {
        let args: Vec<&str> = args.split_whitespace().collect();
        let line = refusal(&receivers(database_url, &args, stdin));
        assert!(line.starts_with(expected), "{args:?}: {line}");
    }
    let refused = refusal(&receivers(
        database_url,
        &["add", "--name", "x", "--kind", "slack"],
        "",
    ));
    assert!(
        refused.contains("alertmanager, webhook or pagerduty"),
        "{refused}"
    );
    assert_eq!(listed(addr).len(), 3);

    // Removed while the server runs: its API no longer has it.
    let output = receivers(database_url, &["remove", "ops-hook"], "");
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        listed(addr),
        [
            ("am".into(), "alertmanager".into(), false),
            ("pager".into(), "pagerduty".into(), true),
        ]
    );
}

#[test]
fn receivers_are_managed_from_the_command_line_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    managed_from_the_command_line(&url, dir.path());
}

#[test]
fn receivers_are_managed_from_the_command_line_on_postgres() {
    let Some(db) = netorch_testkit::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    managed_from_the_command_line(db.url(), dir.path());
}
