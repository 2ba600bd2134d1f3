//! Decides at build time whether the PostgreSQL variants of `backend_tests!` run or are
//! marked ignored: a test that cannot run must not print `ok`.

fn main() {
    println!("cargo::rerun-if-env-changed=NETORCH_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=NETORCH_REQUIRE_POSTGRES");
    println!("cargo::rustc-check-cfg=cfg(netorch_postgres)");
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    // With NETORCH_REQUIRE_POSTGRES the tests are built to run, and fail without a server.
    if set("NETORCH_TEST_POSTGRES_URL") || set("NETORCH_REQUIRE_POSTGRES") {
        println!("cargo::rustc-cfg=netorch_postgres");
    }
}
