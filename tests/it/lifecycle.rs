//! The server binary as a user runs it, over real TCP: streaming, keep-alives, and a client
//! that goes away taking codex's whole process group with it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::support::{chat, fake_codex};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(extra: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_codex-openai-proxy"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("CODEX_PATH", fake_codex())
            .envs(extra.iter().copied())
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("server starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server logs its address");
        Server {
            child,
            base: format!("http://{addr}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alive(pid: i32) -> bool {
    // A zombie has exited; only its parent has yet to collect it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_stream_over_tcp_arrives_in_order() {
    let server = Server::start(&[]);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&chat("hi [[reasoning]]", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let reasoning = body.find("reasoning_content").expect("reasoning streamed");
    let content = body.find("Reasoned answer").expect("answer streamed");
    assert!(
        reasoning < content && body.ends_with("data: [DONE]\n\n"),
        "{body}"
    );
}

#[tokio::test]
async fn keep_alive_comments_flow_while_codex_is_silent() {
    let server = Server::start(&[("KEEPALIVE_SECS", "1")]);
    let body = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&chat("hi [[slow:1200]]", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\n\n: keep-alive\n\n"), "{body}");
    assert!(
        body.contains("Hello from the mock model.") && body.ends_with("data: [DONE]\n\n"),
        "{body}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_takes_codex_and_its_children_with_it() {
    let server = Server::start(&[("KEEPALIVE_SECS", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let mut resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&chat(
            &format!("hang [[hang:{}]]", pid_file.display()),
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp
        .chunk()
        .await
        .unwrap()
        .expect("the role chunk comes at once");
    assert!(String::from_utf8_lossy(&first).contains("\"role\":\"assistant\""));

    let deadline = Instant::now() + Duration::from_secs(20);
    let pids: Vec<i32> = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if let Ok(pids) = text
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<Vec<i32>, _>>()
            {
                if pids.len() == 2 {
                    break pids;
                }
            }
        }
        assert!(Instant::now() < deadline, "fake-codex never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        pids.iter().all(|&pid| alive(pid)),
        "codex and its child run while the client waits"
    );

    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(
            Instant::now() < deadline,
            "codex's process group outlived the client: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = Server::start(&[]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
