//! What a new user meets on the command line: a key manager started in the wrong folder does
//! not make a database of its own, and a mistake is one line, whatever `RUST_BACKTRACE` says.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::server_binary;

/// An empty folder of its own for a test, removed when it ends.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("netorch-first-use-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("scratch folder");
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `netorch-server` in `folder` with `args`, `RUST_BACKTRACE` set as on many machines.
fn run_in(folder: &Path, args: &[&str]) -> Output {
    Command::new(server_binary())
        .current_dir(folder)
        .env("RUST_BACKTRACE", "full")
        .env_remove("NETORCH_DATABASE_URL")
        .env_remove("NETORCH_CREATE_DATABASE")
        .args(args)
        .output()
        .expect("run netorch-server")
}

/// The one line a failed command printed last, and that it printed nothing like a backtrace.
fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.to_lowercase().contains("backtrace") && !stderr.contains("at /"),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_owned()
}

#[test]
fn keys_refuse_a_database_that_does_not_exist_and_name_its_absolute_path() {
    let folder = Scratch::new("keys");
    let expected = folder.path().join("netorch.db");
    for args in [
        &["keys", "list"][..],
        &["keys", "create", "--name", "ci", "--role", "viewer"][..],
    ] {
        let output = run_in(folder.path(), args);
        let line = one_line_error(&output);
        assert_eq!(
            line,
            format!(
                "error: there is no database at sqlite://{}: give --database-url the database \
                 netorch-server uses (it creates it on first start), or --create-database to \
                 create a new, empty one",
                expected.display()
            ),
            "{args:?}"
        );
        assert!(
            !expected.exists(),
            "{args:?} created {}",
            expected.display()
        );
    }
    // Told to, it creates the file, and says which.
    let output = run_in(folder.path(), &["keys", "list", "--create-database"]);
    assert!(output.status.success(), "{output:?}");
    assert!(expected.exists());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("database sqlite://{}", expected.display())),
        "{stderr}"
    );
    // Once it exists, no flag is needed.
    let output = run_in(folder.path(), &["keys", "list"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_mistake_is_one_line_without_a_backtrace() {
    let folder = Scratch::new("mistake");
    let output = run_in(folder.path(), &["--database-url", "mysql://db/netorch"]);
    let line = one_line_error(&output);
    assert!(
        line.starts_with("error: unsupported database URL \"mysql://db/netorch\""),
        "{line}"
    );
    let output = run_in(folder.path(), &["--bind", "256.0.0.1:80"]);
    let line = one_line_error(&output);
    assert!(
        line.starts_with("error: cannot listen on 256.0.0.1:80"),
        "{line}"
    );
    // A port alone is not an address: the error says what one looks like.
    let output = run_in(folder.path(), &["--bind", "8011"]);
    let line = one_line_error(&output);
    assert!(
        line.contains("use HOST:PORT, such as 127.0.0.1:8000"),
        "{line}"
    );
}
