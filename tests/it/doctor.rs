//! `codex-openai-proxy doctor` on fake-codex: every check it makes, and each failure it can
//! report with its fix.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{
    doctor_output::{checks, tags},
    support::fake_codex,
};

/// The doctor run as a user runs it, in `dir` (where a `.env` may be), with `env` only.
fn doctor(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_codex-openai-proxy"))
        .arg("doctor")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("the doctor runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A `codex` that runs `body` (a shell snippet) before handing over to fake-codex.
fn wrapper(dir: &Path, name: &str, body: &str) -> PathBuf {
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!("#!/bin/sh\n{body}\nexec '{}' \"$@\"\n", fake_codex()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[test]
fn with_a_chatgpt_login_every_check_passes_and_the_turn_is_timed() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("fake-chatgpt-login"), "").unwrap();
    for backend in crate::support::BACKENDS {
        let (code, out) = doctor(
            home.path(),
            &[
                ("CODEX_PATH", fake_codex()),
                ("CODEX_HOME", home.path().to_str().unwrap()),
                ("CODEX_BACKEND", backend),
            ],
        );
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(
            tags(&out),
            [
                "ok codex",
                "ok app-server",
                "ok login",
                "ok models",
                "ok limits",
                "ok turn"
            ],
            "{out}"
        );
        assert!(out.contains("ChatGPT account, plus plan"), "{out}");
        assert!(out.contains("gpt-6.2-sol (default), gpt-5.5"), "{out}");
        assert!(out.contains("primary 42% used, resets in 60 min"), "{out}");
        assert!(
            out.contains("answered \"Hello from the mock model.\": first token"),
            "{out}"
        );
        assert!(out.contains(&format!("CODEX_BACKEND={backend}")), "{out}");
    }
}

#[test]
fn an_api_key_login_has_no_limits_to_read() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(
        dir.path(),
        &[("CODEX_PATH", fake_codex()), ("CODEX_API_KEY", "sk-test")],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        tags(&out),
        [
            "ok codex",
            "ok app-server",
            "ok login",
            "ok models",
            "skip limits",
            "ok turn"
        ],
        "{out}"
    );
    assert!(out.contains("[ok  ] login      API key"), "{out}");
}

#[test]
fn no_login_is_a_failure_with_the_command_that_logs_in() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("fake-no-login"), "").unwrap();
    let home_path = home.path().to_str().unwrap();
    let (_, out) = doctor(
        home.path(),
        &[("CODEX_PATH", fake_codex()), ("CODEX_HOME", home_path)],
    );
    assert!(tags(&out).contains(&"FAIL login".to_owned()), "{out}");
    assert!(
        out.contains(&format!(
            "fix: run `CODEX_HOME={home_path} {} login`",
            fake_codex()
        )),
        "{out}"
    );
}

#[test]
fn a_missing_codex_stops_at_the_first_check() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(dir.path(), &[("CODEX_PATH", "/nonexistent/codex")]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(tags(&out), ["FAIL codex"], "{out}");
    assert!(out.contains("fix: install codex"), "{out}");
}

#[test]
fn an_untested_version_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let codex = wrapper(
        dir.path(),
        "codex",
        "[ \"$1\" = --version ] && { echo 'codex-cli 0.150.0'; exit 0; }",
    );
    let (code, out) = doctor(
        dir.path(),
        &[
            ("CODEX_PATH", codex.to_str().unwrap()),
            ("CODEX_API_KEY", "k"),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        checks(&out)[0],
        ("warn".to_owned(), "codex".to_owned()),
        "{out}"
    );
    assert!(
        out.contains("not among the tested versions (0.169.0 to 0.171.0)"),
        "{out}"
    );
}

#[test]
fn a_failed_handshake_and_a_failed_turn_are_reported_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    // The app-server dies at once, and so does every exec run, with a reason on stderr.
    let codex = wrapper(
        dir.path(),
        "codex",
        "case \"$1\" in app-server|exec) echo 'codex is broken here' >&2; exit 1;; esac",
    );
    let (code, out) = doctor(dir.path(), &[("CODEX_PATH", codex.to_str().unwrap())]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        tags(&out),
        ["ok codex", "FAIL app-server", "FAIL turn"],
        "{out}"
    );
    assert!(out.contains("codex is broken here"), "{out}");
}

#[test]
fn the_doctor_reads_the_servers_dot_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "CODEX_PATH={}\nCODEX_API_KEY=sk-env\nCODEX_BACKEND=app-server\n",
            fake_codex()
        ),
    )
    .unwrap();
    let (code, out) = doctor(dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("CODEX_BACKEND=app-server"), "{out}");
    assert!(out.contains("[ok  ] login      API key"), "{out}");
}

#[test]
fn each_account_is_checked_and_a_broken_one_fails_the_doctor() {
    let root = tempfile::tempdir().unwrap();
    for name in ["alice", "bob"] {
        std::fs::create_dir(root.path().join(name)).unwrap();
    }
    std::fs::write(root.path().join("bob").join("fake-codex-logged-out"), "").unwrap();
    let accounts = format!(
        "alice={},bob={}",
        root.path().join("alice").display(),
        root.path().join("bob").display()
    );
    let (code, out) = doctor(
        root.path(),
        &[("CODEX_PATH", fake_codex()), ("CODEX_ACCOUNTS", &accounts)],
    );
    assert_eq!(code, Some(1), "{out}");
    let alice = out.find("account alice:").expect("alice is checked");
    let bob = out.find("account bob:").expect("bob is checked");
    let (alice_part, bob_part) = (&out[alice..bob], &out[bob..]);
    assert!(alice_part.contains("[ok  ] turn"), "{out}");
    assert!(bob_part.contains("[FAIL] turn"), "{out}");
    assert!(bob_part.contains("401 Unauthorized"), "{out}");
}
