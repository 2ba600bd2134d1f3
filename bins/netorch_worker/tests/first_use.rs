//! A worker started in the wrong folder does not work on a database of its own: it refuses a
//! SQLite file that does not exist (unless told to create it), in one line, never a backtrace.

use std::process::Command;

#[test]
fn a_worker_refuses_a_database_that_does_not_exist() {
    let folder = tempfile::tempdir().expect("tempdir");
    let expected = folder.path().join("netorch.db");
    let output = Command::new(env!("CARGO_BIN_EXE_netorch-worker"))
        .current_dir(folder.path())
        .env("RUST_BACKTRACE", "full")
        .env_remove("NETORCH_DATABASE_URL")
        .env_remove("NETORCH_CREATE_DATABASE")
        .output()
        .expect("run netorch-worker");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: there is no database at sqlite://{}: give --database-url the database \
             netorch-server uses (it creates it on first start), or --create-database to create \
             a new, empty one",
            expected.display()
        )
    );
    assert!(!expected.exists());
}
