//! The server binary refuses a bad configuration at start-up, naming the variable.

use assert_cmd::Command;

fn server() -> Command {
    let mut cmd = Command::cargo_bin("codex-openai-proxy").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn a_bad_environment_value_stops_startup_naming_the_variable() {
    for (name, value) in [
        ("PORT", "eighty"),
        ("CODEX_SANDBOX", "yolo"),
        ("HOST", "localhost:1"),
        ("KEEPALIVE_SECS", "-1"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = server()
            .current_dir(dir.path())
            .env(name, value)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(name) && stderr.contains(value),
            "{name}={value}: {stderr}"
        );
    }
}

#[test]
fn dot_env_is_read_and_the_environment_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# comment\nCODEX_SANDBOX=from-dot-env\nPORT=1\n",
    )
    .unwrap();
    let output = server()
        .current_dir(dir.path())
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CODEX_SANDBOX") && stderr.contains("from-dot-env"),
        "{stderr}"
    );

    let output = server()
        .current_dir(dir.path())
        .env("CODEX_SANDBOX", "read-only")
        .env("PORT", "not-a-port")
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PORT") && stderr.contains("not-a-port"),
        "the environment's PORT wins: {stderr}"
    );
}
