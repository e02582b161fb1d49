//! fake-codex against the real codex on the same scenarios: the same argv and prompt go to
//! both, and their `--json` event sequences must have the same shape (event and item types,
//! field names, value types) and the same failure messages. So fake-codex cannot drift from
//! the CLI it stands in for without this failing.

use std::process::Stdio;

use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::{mock_model::MockModel, real_codex};

pub(crate) const SCENARIOS: &[&str] = &[
    "text",
    "reasoning",
    "http401",
    "http429",
    "http500",
    "context",
    "quota",
    "cut",
];

/// Types and field names, not values: `type` fields keep their value, everything else becomes
/// the name of its JSON type.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), if k == "type" { v.clone() } else { shape(v) }))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

async fn run(
    program: &str,
    mock: &MockModel,
    home: &std::path::Path,
    prompt: &str,
) -> (Option<i32>, Vec<Value>) {
    let workdir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--ephemeral",
        "-s",
        "read-only",
    ]
    .map(String::from)
    .into();
    for pair in mock.codex_config().split("; ") {
        args.extend(["-c".to_owned(), pair.to_owned()]);
    }
    args.extend(["-m", "gpt-5.5", "-C"].map(String::from));
    args.push(workdir.path().display().to_string());
    args.push("-".into());
    let mut child = spawn(program, home, &args);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(prompt.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let events = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("{program}: not JSON: {line}"))
        })
        .collect();
    (out.status.code(), events)
}

/// `program args` with `home` as its codex home and nothing else from the environment but
/// `PATH`; stdin and stdout piped.
pub(crate) fn spawn(
    program: &str,
    home: &std::path::Path,
    args: &[String],
) -> tokio::process::Child {
    tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CODEX_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn messages(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| e["message"].as_str().or(e["error"]["message"].as_str()))
        .collect()
}

#[tokio::test]
async fn fake_codex_matches_the_real_cli_scenario_by_scenario() {
    let mock = MockModel::start().await;
    let home = tempfile::tempdir().unwrap();
    for scenario in SCENARIOS {
        let prompt = format!("fidelity [[{scenario}]]");
        let (real_code, real) = run(&real_codex(), &mock, home.path(), &prompt).await;
        let (fake_code, fake) = run(
            env!("CARGO_BIN_EXE_fake-codex"),
            &mock,
            home.path(),
            &prompt,
        )
        .await;
        assert_eq!(fake_code, real_code, "{scenario}: exit code");
        assert_eq!(
            fake.iter().map(shape).collect::<Vec<_>>(),
            real.iter().map(shape).collect::<Vec<_>>(),
            "{scenario}: event shapes\nreal: {real:?}\nfake: {fake:?}"
        );
        assert_eq!(
            messages(&fake),
            messages(&real),
            "{scenario}: error messages"
        );
    }
}
