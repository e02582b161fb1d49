//! `codex-openai-proxy doctor` against the real codex, offline: every check the real CLI can
//! answer without an account, and one real turn against the mock model.

use crate::{backend, mock_model::MockModel, real_codex};

#[tokio::test]
async fn the_doctor_checks_the_real_codex_chain() {
    let mock = MockModel::start().await;
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_codex-openai-proxy"))
        .arg("doctor")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CODEX_PATH", real_codex())
        .env("CODEX_CONFIG", mock.codex_config())
        .env("CODEX_HOME", home.path())
        .env("CODEX_MODEL", "gpt-5.5")
        .env("CODEX_BACKEND", backend())
        .current_dir(home.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Printed, so that a run of the suite shows what the doctor says about this codex.
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let tags = crate::doctor_output::tags(&stdout);
    // Offline: the mock provider needs no login, and there is no plan to read limits of.
    assert_eq!(
        tags,
        [
            "ok codex",
            "ok app-server",
            "ok login",
            "ok models",
            "skip limits",
            "ok turn"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("none needed by the configured model provider"),
        "{stdout}"
    );
    assert!(stdout.contains("(tested: "), "{stdout}");
    assert!(stdout.contains("first token"), "{stdout}");
}
