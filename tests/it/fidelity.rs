//! fake-codex against the real codex 0.169.0: every transcript in `../shared/codex-transcripts`
//! is replayed with the same argv and stdin, and fake-codex must print the same events (ids
//! aside), the same stderr and the same exit code.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::support::fake_codex;

fn transcripts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/codex-transcripts");
    assert!(
        dir.is_dir(),
        "the real codex transcripts are expected at {} (../shared beside the repo)",
        dir.display()
    );
    dir
}

struct Case {
    name: String,
    args: Vec<String>,
    stdin: String,
}

fn cases() -> Vec<Case> {
    let dir = transcripts();
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry
                .ok()?
                .file_name()
                .to_string_lossy()
                .strip_suffix(".cmd.txt")?
                .to_owned();
            let cmd = std::fs::read_to_string(dir.join(format!("{name}.cmd.txt"))).ok()?;
            let words = shell_words::split(cmd.trim()).expect("cmd.txt is shell words");
            let start = words.iter().position(|w| w == "codex").expect("runs codex") + 1;
            let end = words[start..]
                .iter()
                .position(|w| w == "<")
                .map_or(words.len(), |i| start + i);
            let stdin = match words.iter().position(|w| w == "printf") {
                Some(i) => words[i + 2].clone(),
                None => String::new(),
            };
            Some(Case {
                name,
                args: words[start..end].to_vec(),
                stdin,
            })
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        cases.len() >= 10,
        "expected the transcripts, found {}",
        cases.len()
    );
    cases
}

/// Thread ids differ run to run; they must still be UUIDv7s.
fn normalize_events(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let mut event: Value =
                serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if let Some(id) = event.get_mut("thread_id") {
                let s = id.as_str().unwrap();
                assert!(
                    s.len() == 36 && s.as_bytes()[14] == b'7',
                    "thread_id {s} is not a UUIDv7"
                );
                *id = Value::String("<thread-id>".into());
            }
            event
        })
        .collect()
}

fn normalize_stderr(text: &str, workdir: &str) -> String {
    text.replace(workdir, "<WORKDIR>")
        .lines()
        .map(|line| {
            if line.starts_with("session id: ") {
                "session id: <id>"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn fake_codex_is_indistinguishable_from_the_real_transcripts() {
    let dir = transcripts();
    for case in cases() {
        let workdir = tempfile::tempdir().unwrap();
        let mut child = Command::new(fake_codex())
            .args(&case.args)
            .current_dir(workdir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(case.stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let read =
            |ext: &str| std::fs::read_to_string(dir.join(format!("{}.{ext}", case.name))).ok();
        let name = &case.name;

        let expected_code: i32 = read("exitcode").unwrap().trim().parse().unwrap();
        assert_eq!(out.status.code(), Some(expected_code), "{name}: exit code");

        let stdout = String::from_utf8(out.stdout).unwrap();
        if let Some(jsonl) = read("jsonl") {
            assert_eq!(
                normalize_events(&stdout),
                normalize_events(&jsonl),
                "{name}: --json events"
            );
        } else if let Some(human) = read("stdout.txt") {
            assert_eq!(stdout, human, "{name}: stdout");
        }

        let workdir_path = workdir.path().canonicalize().unwrap().display().to_string();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            normalize_stderr(&stderr, &workdir_path),
            normalize_stderr(&read("stderr.txt").unwrap(), "<WORKDIR>"),
            "{name}: stderr"
        );
    }
}

/// Whether every field of `read` stands in `original` with the same value; else where not.
fn within(
    read: &serde_json::Value,
    original: &serde_json::Value,
    at: String,
) -> Result<(), String> {
    use serde_json::Value;
    match (read, original) {
        (Value::Object(read), Value::Object(original)) => {
            read.iter().try_for_each(|(key, value)| {
                let field = format!("{at}.{key}");
                match original.get(key) {
                    Some(theirs) => within(value, theirs, field),
                    None => Err(field),
                }
            })
        }
        (Value::Array(read), Value::Array(original)) if read.len() == original.len() => read
            .iter()
            .zip(original)
            .enumerate()
            .try_for_each(|(i, (a, b))| within(a, b, format!("{at}[{i}]"))),
        (read, original) if read == original => Ok(()),
        _ => Err(format!("{at} = {read}")),
    }
}

#[test]
fn the_proxy_parses_every_real_event_line() {
    let dir = transcripts();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl")
            && !path.to_string_lossy().contains("app_server")
        {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let event = codex_openai_proxy::codex::ThreadEvent::parse(line).unwrap();
                assert_ne!(
                    event,
                    codex_openai_proxy::codex::ThreadEvent::Unknown,
                    "{}: {line}",
                    path.display()
                );
                // Everything the proxy read is in the line, under the same name and with the
                // same value: a renamed field would come back as a default the line lacks.
                let read = serde_json::to_value(&event).unwrap();
                let original: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Err(at) = within(&read, &original, String::new()) {
                    panic!(
                        "{}: the proxy read {at} that the line does not hold: {line}",
                        path.display()
                    );
                }
            }
        }
    }
}
