//! The test double itself, not the proxy: fake-codex enforces codex exec's command-line and
//! stdin rules (codex-cli.md 1.3, 3.2, 7), so a proxy test that runs on it fails on an argument
//! the real CLI would refuse. These tests hold the double to those rules.

use assert_cmd::Command;

use crate::support::fake_codex;

fn codex() -> Command {
    let mut cmd = Command::new(fake_codex());
    cmd.current_dir(std::env::temp_dir())
        .timeout(std::time::Duration::from_secs(20));
    cmd
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_proxy_argv_reads_the_prompt_from_stdin() {
    let out = codex()
        .args([
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--ephemeral",
            "-s",
            "read-only",
            "-C",
            "/tmp",
            "-",
        ])
        .write_stdin("--not-a-flag [[echo]]")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"text\":\"ECHO: --not-a-flag [[echo]]\"")
    );
    assert_eq!(stderr_of(&out), "", "`-` reads stdin without a notice");
}

#[test]
fn empty_stdin_with_dash_is_no_prompt() {
    let out = codex()
        .args(["exec", "--json", "--skip-git-repo-check", "-"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr_of(&out).trim(), "No prompt provided via stdin.");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_positional_prompt_gets_stdin_appended() {
    let out = codex()
        .args(["exec", "--json", "--skip-git-repo-check", "[[echo]]"])
        .write_stdin("extra")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(r#""text":"ECHO: [[echo]]\n\n<stdin>\nextra\n</stdin>""#));
    assert_eq!(
        stderr_of(&out).trim(),
        "Reading additional input from stdin..."
    );
}

#[test]
fn image_flag_is_variadic_and_swallows_a_prompt_without_double_dash() {
    let out = codex()
        .args([
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-i",
            "a.png",
            "say hi",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the prompt became an image");
    assert!(stderr_of(&out).contains("No prompt provided via stdin."));

    let out = codex()
        .args([
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-i",
            "a.png",
            "--",
            "say hi",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn usage_errors_exit_2_and_startup_errors_exit_1() {
    let out = codex()
        .args(["exec", "--full-auto", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).starts_with("error: unexpected argument '--full-auto' found"));

    let out = codex().args(["exec", "-s", "yolo", "hi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = codex()
        .args(["exec", "--skip-git-repo-check", "-c", "nonsense", "hi"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("Invalid override (missing '='): nonsense"));

    let dir = tempfile::tempdir().unwrap();
    let out = codex()
        .current_dir(dir.path())
        .args(["exec", "--json", "hi"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out)
        .contains("Not inside a trusted directory and --skip-git-repo-check was not specified."));
    assert!(out.stdout.is_empty());
}

#[test]
fn output_last_message_is_written_only_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.txt");
    let out = codex()
        .args(["exec", "--skip-git-repo-check", "-o"])
        .arg(&ok)
        .arg("hi")
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&ok).unwrap(),
        "Hello from the mock model.",
        "no trailing newline"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello from the mock model.\n",
        "human stdout is the message"
    );

    let failed = dir.path().join("failed.txt");
    let out = codex()
        .args(["exec", "--skip-git-repo-check", "-o"])
        .arg(&failed)
        .arg("[[http500]]")
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&failed).unwrap(),
        "",
        "a new file is left empty on failure"
    );
    assert!(stderr_of(&out).contains("ERROR: We\u{2019}re currently experiencing high demand"));
}

#[test]
fn version_is_the_pinned_cli() {
    let out = codex().arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "codex-cli 0.169.0\n");
}
