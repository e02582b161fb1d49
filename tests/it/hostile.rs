//! Hostile input and hostile clients: no request, and no handful of sockets, may cost unbounded
//! CPU, memory, fds or processes. Each test is one attack at a small size; `make attack` runs
//! the heavy versions and prints what they cost.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    server::Server,
    support::{
        chat, client, client_on, eventually, json_of, metrics_text, post_chat, running_runs, sse_of,
    },
};

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection or `limit` passes; what arrived, and whether
/// it was closed.
async fn read_until_closed(socket: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

/// `depth` levels, each referencing the next twice: 2^depth schema nodes once followed, from
/// a schema of a few KB.
fn doubling_schema(depth: usize) -> Value {
    let mut defs = serde_json::Map::new();
    for level in 0..depth {
        let next = format!("#/$defs/l{}", level + 1);
        defs.insert(
            format!("l{level}"),
            json!({"anyOf": [{"$ref": next}, {"type": "array", "items": {"$ref": next}}]}),
        );
    }
    defs.insert(format!("l{depth}"), json!({"type": "string"}));
    json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/l0"}}, "$defs": defs})
}

fn with_tool(prompt: &str, parameters: Value) -> Value {
    let mut body = chat(prompt, false);
    body["tools"] =
        json!([{"type": "function", "function": {"name": "f", "parameters": parameters}}]);
    body
}

#[tokio::test]
async fn a_tool_schema_that_doubles_with_each_reference_is_refused_at_once() {
    let cli = client(&[]);
    let schema = doubling_schema(24);
    assert!(schema.to_string().len() < 4_000);
    let started = Instant::now();
    let (status, body) = post_chat(&cli, &with_tool("[[tool_call]]", schema)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "tools[0].function.parameters");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("MAX_TOOL_SCHEMA_NODES"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_backtracking_pattern_is_refused_as_a_schema() {
    let cli = client(&[]);
    let schema = json!({"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "string", "pattern": "^(a|aa)+\\1$"}}}});
    let (status, body) = post_chat(&cli, &with_tool("[[tool_call]]", schema)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "tools[0].function.parameters");
}

#[tokio::test]
async fn a_huge_prompt_is_refused_without_counting_all_of_it() {
    let cli = client(&[("MAX_PROMPT_TOKENS", "1000")]);
    // About 2.5 million tokens; counting stops a piece past the limit.
    let prompt = "many words of a very long prompt ".repeat(300_000);
    let (status, body) = post_chat(&cli, &chat(&prompt, false)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    let counted: u64 = message
        .split("counting stopped at ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {message}"));
    assert!(
        (1_000..50_000).contains(&counted),
        "counted {counted} tokens"
    );
}

#[tokio::test]
async fn a_request_without_a_key_is_refused_before_its_body_is_read() {
    let server = Server::start(&[("API_KEYS", "secret")]);
    let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
    // Announces 10 MB and sends none of it: the 401 must come anyway.
    socket
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let (reply, _) = read_until_closed(&mut socket, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply:?}");
    assert!(reply.contains("invalid_api_key"), "{reply}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_408() {
    let server = Server::start(&[("BODY_TIMEOUT_SECS", "1")]);
    let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
    socket
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
        .await
        .unwrap();
    let (reply, _) = read_until_closed(&mut socket, Duration::from_secs(4)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(reply.contains("BODY_TIMEOUT_SECS"), "{reply}");
}

#[tokio::test]
async fn half_sent_headers_and_idle_connections_are_closed() {
    let server = Server::start(&[("HEADER_TIMEOUT_SECS", "2")]);
    let mut half = TcpStream::connect(addr(&server)).await.unwrap();
    half.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();
    idle.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Closed at the header timeout itself, not at some later sweep (within 1.6 times it).
    let started = Instant::now();
    let (half_reply, half_closed) = read_until_closed(&mut half, Duration::from_millis(3200)).await;
    assert!(
        half_closed,
        "a half-sent header is still open after {:?}: {half_reply:?}",
        started.elapsed()
    );
    let (idle_reply, idle_closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(idle_reply.starts_with("HTTP/1.1 200"), "{idle_reply:?}");
    assert!(idle_closed, "an idle keep-alive connection is still open");
}

fn open_fds(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_connection_costs_one_file_descriptor() {
    let server = Server::start(&[]);
    let before = open_fds(&server);
    let mut sockets = Vec::new();
    for _ in 0..50 {
        let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
        // A served request proves the connection was accepted and is being watched.
        socket
            .write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        socket.read_exact(&mut buf).await.unwrap();
        sockets.push(socket);
    }
    let per_connection = (open_fds(&server) - before) as f64 / 50.0;
    assert!(per_connection <= 1.1, "{per_connection} fds per connection");
}

/// Sends a request for `/v1/models` on a new connection; whether its answer came within `limit`.
async fn answered_within(server: &Server, limit: Duration) -> bool {
    let client = reqwest::Client::builder().timeout(limit).build().unwrap();
    client
        .get(format!("{}/v1/models", server.base))
        .send()
        .await
        .is_ok_and(|resp| resp.status() == 200)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test]
async fn at_the_fd_limit_the_server_waits_instead_of_spinning() {
    // 64 fds: the derived connection limit is the floor of 16.
    let server = Server::start_with_fd_limit(&[], 64);
    let mut held = Vec::new();
    for _ in 0..80 {
        held.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    let cpu_before = cpu_seconds(server.child.id());
    assert!(
        !answered_within(&server, Duration::from_secs(2)).await,
        "served beyond the connection limit"
    );
    // A waiting server uses next to nothing; a spinning one gets a good share of a core even
    // on a busy machine (measured: 0.7 s a second and more).
    let spent = cpu_seconds(server.child.id()) - cpu_before;
    assert!(
        spent < 0.25,
        "{spent} s of CPU in 2 s while 80 connections wait"
    );
    held.clear();
    assert!(answered_within(&server, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn http2_connections_get_capped_streams_and_are_closed_when_idle() {
    let server = Server::start(&[("HTTP2_MAX_STREAMS", "7"), ("HEADER_TIMEOUT_SECS", "1")]);
    let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
    // The client preface and an empty SETTINGS frame (HTTP/2 with prior knowledge).
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut header = [0u8; 9];
    socket.read_exact(&mut header).await.unwrap();
    assert_eq!(header[3], 4, "the server's first frame is SETTINGS");
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; length];
    socket.read_exact(&mut payload).await.unwrap();
    let max_streams = payload.chunks(6).find_map(|setting| {
        (u16::from_be_bytes([setting[0], setting[1]]) == 3)
            .then(|| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]))
    });
    assert_eq!(max_streams, Some(7));
    // No request follows: the connection is closed after the header timeout.
    let (_, closed) = read_until_closed(&mut socket, Duration::from_secs(5)).await;
    assert!(closed, "an idle HTTP/2 connection is still open");
}

#[tokio::test]
async fn health_runs_codex_at_most_once_however_many_ask() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("runs");
    let wrapper = dir.path().join("codex");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && echo run >> '{}'\nexec '{}' \"$@\"\n",
            count.display(),
            crate::support::fake_codex()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cli = client(&[("CODEX_PATH", wrapper.to_str().unwrap())]);
    let probes = (0..50).map(|_| cli.get("/health").send());
    for resp in futures_util::future::join_all(probes).await {
        assert_eq!(resp.0.status().as_u16(), 200);
    }
    // One probe at start-up (which runs on its own and may still be going), and one for all
    // 50 requests.
    let runs = || {
        std::fs::read_to_string(&count)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };
    eventually(Duration::from_secs(5), async || match runs() {
        0 | 1 => Err("the start-up probe has not run yet".to_owned()),
        _ => Ok(()),
    })
    .await;
    assert_eq!(
        runs(),
        2,
        "start-up and 50 probes started {} codex processes",
        runs()
    );
}

#[tokio::test]
async fn a_streaming_client_that_never_reads_loses_its_slot() {
    let server = Server::start(&[
        ("MAX_CONCURRENCY", "1"),
        ("QUEUE_TIMEOUT_SECS", "20"),
        ("CODEX_IDLE_TIMEOUT_SECS", "2"),
    ]);
    let fds_at_start = open_fds(&server);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket
        .connect(addr(&server).parse().unwrap())
        .await
        .unwrap();
    // 8 MiB of answer: more than the socket buffers take while the client reads nothing.
    let body = chat("[[big_answer:8]]", true).to_string();
    stuck
        .write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), async || {
        match running_runs(&server).await {
            0 => Err("the stuck request has not started".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&chat("hi", false))
        .timeout(Duration::from_secs(25))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(resp);
    // And the stuck connection is closed once its reply has been unwritable for the idle
    // timeout, rather than held for ever: the server is back to the fds it started with.
    eventually(Duration::from_secs(15), async || match open_fds(&server) {
        open if open > fds_at_start => Err(format!(
            "{open} fds open, {fds_at_start} at start: the unread connection is not closed"
        )),
        _ => Ok(()),
    })
    .await;
    drop(stuck);
}

#[tokio::test]
async fn metrics_keep_one_label_for_every_unlisted_model() {
    let cli = client(&[]);
    for i in 0..20 {
        let mut body = chat("hi", false);
        body["model"] = json!(format!("made-up-{i}-{}", "x".repeat(1000)));
        assert_eq!(post_chat(&cli, &body).await.0, 404);
    }
    let text = metrics_text(&cli).await;
    assert!(
        !text.contains("made-up"),
        "{}",
        &text[..2000.min(text.len())]
    );
    assert!(text.contains("codex_proxy_requests_total{model=\"unknown\",status=\"404\"} 20"));
    assert!(text.len() < 10_000);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let cli = client(&[("API_KEYS", "secret")]);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = cli
            .post("/v1/chat/completions")
            .header("Authorization", format!("{scheme} secret"))
            .body_json(&chat("hi", false))
            .send()
            .await;
        assert_eq!(resp.0.status().as_u16(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn content_that_is_not_text_or_empty_is_a_400_before_codex_starts() {
    for backend in crate::support::BACKENDS {
        let cli = client_on(backend, &[("MAX_IMAGES", "2")]);
        let image = json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}});
        for (content, param) in [
            (json!(123), "messages[0].content"),
            (json!(true), "messages[0].content"),
            (
                json!([{"type": "text", "text": 5}]),
                "messages[0].content[0].text",
            ),
            (json!(""), "messages"),
            (json!("   \n"), "messages"),
            (json!([image, image, image]), "messages"),
        ] {
            let body =
                json!({"model": "codex-local", "messages": [{"role": "user", "content": content}]});
            let (status, reply) = post_chat(&cli, &body).await;
            assert_eq!(status, 400, "{backend}: {content} gave {reply}");
            assert_eq!(reply["error"]["param"], param, "{backend}: {content}");
        }
    }
}

#[tokio::test]
async fn a_request_id_that_could_forge_log_fields_is_replaced() {
    let cli = client(&[]);
    for forged in ["abc}forged=1", "a\"b", "x{y", "tab\there"] {
        let resp = cli
            .get("/v1/models")
            .header("X-Request-Id", forged)
            .send()
            .await;
        let id = resp.0.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(id.starts_with("req_"), "{forged:?} came back as {id:?}");
    }
    let resp = cli
        .get("/v1/models")
        .header("X-Request-Id", "trace-1:a/b+c=d@e")
        .send()
        .await;
    assert_eq!(resp.0.headers()["x-request-id"], "trace-1:a/b+c=d@e");
}

#[tokio::test]
async fn a_stopping_server_ends_its_streams_with_an_error_and_done() {
    let mut server = Server::start(&[("SHUTDOWN_GRACE_SECS", "1")]);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&chat("[[slow:20000]]", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let body = tokio::time::timeout(Duration::from_secs(8), resp.text())
        .await
        .expect("the stream ends")
        .unwrap();
    assert!(body.contains("\"code\":\"server_shutting_down\""), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
}

#[tokio::test]
async fn requests_dropped_during_set_up_leave_no_app_server_thread_loaded() {
    let cli = client_on("app-server", &[("MAX_CONCURRENCY", "64")]);
    // The process is up, so that the drops fall during thread/start and turn/start, not
    // while it starts.
    assert_eq!(post_chat(&cli, &chat("hi", false)).await.0, 200);
    // Dropped at every moment of the set-up, from before thread/start to after turn/start.
    let dropped = (0..60u64).map(|i| {
        let request = cli
            .post("/v1/chat/completions")
            .body_json(&chat("[[slow:5000]]", true))
            .send();
        async move {
            let _ = tokio::time::timeout(Duration::from_micros(i * 50), request).await;
        }
    });
    futures_util::future::join_all(dropped).await;
    eventually(Duration::from_secs(10), async || {
        let (status, _, events) = sse_of(
            cli.post("/v1/chat/completions")
                .body_json(&chat("[[threads]]", true))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 200);
        let text: String = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        // The asking request's own thread is the one still loaded.
        match text.as_str() {
            "THREADS: 1" => Ok(()),
            _ => Err(format!("still {text}")),
        }
    })
    .await;
}

#[tokio::test]
async fn a_key_is_checked_before_an_oversized_body_is_refused() {
    let cli = client(&[("API_KEYS", "secret"), ("MAX_BODY_BYTES", "1024")]);
    let resp = cli
        .post("/v1/chat/completions")
        .body_json(&chat(&"x".repeat(4096), false))
        .send()
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn many_tools_share_one_schema_budget_and_their_number_is_capped() {
    let cli = client(&[]);
    let schema = doubling_schema(8);
    let tools = |count: usize| -> Value {
        (0..count)
            .map(|i| json!({"type": "function", "function": {"name": format!("t{i}"), "parameters": schema}}))
            .collect()
    };
    let mut body = chat("hi", false);
    body["tools"] = tools(129);
    let (status, reply) = post_chat(&cli, &body).await;
    assert_eq!(
        (status, reply["error"]["param"].as_str()),
        (400, Some("tools")),
        "{reply}"
    );
    // Each schema is within the budget alone; 128 of them are far over it together.
    body["tools"] = tools(128);
    let started = Instant::now();
    let (status, reply) = post_chat(&cli, &body).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_TOOL_SCHEMA_NODES"),
        "{reply}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn routes_without_a_body_never_read_one() {
    let server = Server::start(&[]);
    let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
    // Announces 10 MB to an open route that takes no body, and sends none of it.
    socket
        .write_all(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let (reply, _) = read_until_closed(&mut socket, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply:?}");
}
