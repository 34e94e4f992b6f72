//! The `lanyard-demo` command line. (Having tests here also makes `cargo test --workspace`
//! build the binary, which lanyard-idp's compose test runs as the demo apps.)
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn demo() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard-demo"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_DEMO_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn an_app_without_its_settings_names_the_missing_ones() {
    let out = demo().arg("app").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for missing in ["--name", "--issuer", "--client-id", "--base-url"] {
        assert!(stderr.contains(missing), "{missing} in: {stderr}");
    }
}

#[test]
fn an_app_whose_issuer_does_not_answer_fails_saying_so() {
    let out = demo()
        .arg("app")
        .env("LANYARD_DEMO_NAME", "wiki")
        .env("LANYARD_DEMO_ISSUER", "http://127.0.0.1:9")
        .env("LANYARD_DEMO_CLIENT_ID", "wiki")
        .env("LANYARD_DEMO_CLIENT_SECRET", "s")
        .env("LANYARD_DEMO_BASE_URL", "http://localhost:8081")
        .env("LANYARD_DEMO_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:9"), "names the issuer: {stderr}");
}
