//! The server binary as a user runs it, over real TCP: streaming, keep-alives, and a client
//! that goes away taking codex's whole process group with it.

use std::time::Duration;

use crate::{
    server::Server,
    support::{alive, all_gone_within, chat, eventually, pids_from, running_runs, BACKENDS},
};

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

/// Starts a `[[hang]]` request over a raw socket, then closes the socket: codex and its child
/// must be gone within a second, streaming or not.
async fn disconnect_kills_codex(stream: bool) {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let body = chat(&format!("hang [[hang:{}]]", pid_file.display()), stream).to_string();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
        .await
        .unwrap();
    let pids = pids_from(&pid_file).await;
    assert!(
        pids.iter().all(|&pid| alive(pid)),
        "codex and its child run while the client waits"
    );

    drop(socket);
    assert!(
        all_gone_within(&pids, Duration::from_secs(1)).await,
        "codex's process group outlived the client by more than a second (stream: {stream}): {pids:?}"
    );
    // Stopped as a departure the server noticed (and counts as 499), not only dropped with
    // the connection.
    eventually(Duration::from_secs(5), async || {
        let noticed = server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("the client closed the connection; stopping codex"));
        match noticed {
            true => Ok(()),
            false => Err(format!("the departure was not noticed (stream: {stream})")),
        }
    })
    .await;
}

#[tokio::test]
async fn a_streaming_client_that_disconnects_takes_codex_and_its_children_with_it() {
    disconnect_kills_codex(true).await;
}

#[tokio::test]
async fn a_waiting_client_that_disconnects_takes_codex_and_its_children_with_it() {
    disconnect_kills_codex(false).await;
}

#[tokio::test]
async fn shutdown_lets_a_running_request_finish() {
    let mut server = Server::start(&[("SHUTDOWN_GRACE_SECS", "30")]);
    let request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&chat("hi [[slow:300]]", false))
        .send();
    let request = tokio::spawn(request);
    // Waits until codex runs for it, as the running gauge says.
    eventually(Duration::from_secs(10), async || {
        match running_runs(&server).await {
            1 => Ok(()),
            running => Err(format!("{running} runs, not the one request's")),
        }
    })
    .await;
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let reply = request.await.unwrap().unwrap();
    assert_eq!(reply.status(), 200, "the request in flight is answered");
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
}

#[tokio::test]
async fn shutdown_after_the_grace_period_kills_what_remains_and_exits_0() {
    for backend in BACKENDS {
        shutdown_kills_what_remains(backend).await;
    }
}

/// On exec the pids are codex's and its child's; on app-server the long-lived process's and
/// the hanging turn's command's.
async fn shutdown_kills_what_remains(backend: &str) {
    let mut server = Server::start(&[("SHUTDOWN_GRACE_SECS", "1"), ("CODEX_BACKEND", backend)]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let mut resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&chat(&format!("[[hang:{}]]", pid_file.display()), true))
        .send()
        .await
        .unwrap();
    resp.chunk().await.unwrap();
    let pids = pids_from(&pid_file).await;
    server.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(
        server.wait_exit(Duration::from_secs(20)),
        Some(0),
        "exit 0 after the grace period"
    );
    assert!(
        all_gone_within(&pids, Duration::from_secs(1)).await,
        "{backend}: no codex outlives the server: {pids:?}"
    );
}

#[test]
fn sigterm_stops_an_idle_server_cleanly() {
    let mut server = Server::start(&[]);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}
