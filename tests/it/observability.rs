//! Request ids and logs: an id from `X-Request-Id` (or a new one) comes back in the response and
//! is on every log line the request causes, with OpenWebUI's user and chat headers.

use crate::{
    server::Server,
    support::{chat, client},
};

#[tokio::test]
async fn the_request_id_is_taken_or_made_and_returned() {
    let cli = client(&[]);
    let resp = cli
        .post("/v1/chat/completions")
        .header("X-Request-Id", "abc-123")
        .body_json(&chat("hi", false))
        .send()
        .await;
    assert_eq!(resp.0.headers().get("x-request-id").unwrap(), "abc-123");
    let resp = cli.get("/v1/models").send().await;
    let made = resp
        .0
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(made.starts_with("req_") && made.len() == 28, "{made}");
    let resp = cli
        .get("/health")
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await;
    assert!(resp
        .0
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("req_"));
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_openwebui_headers() {
    let server = Server::start(&[("LOG_FORMAT", "json"), ("LOG_LEVEL", "info")]);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .header("X-Request-Id", "trace-me-42")
        .header("X-OpenWebUI-User-Id", "user-7")
        .header("X-OpenWebUI-Chat-Id", "chat-9")
        .header("X-OpenWebUI-User-Email", "someone@example.com")
        .json(&chat("hi", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-42");
    resp.text().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let found = server
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("chat completion"))
            .cloned();
        if let Some(line) = found {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no request log line");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["span"]["request_id"], "trace-me-42", "{event}");
    assert_eq!(event["span"]["openwebui_user_id"], "user-7", "{event}");
    assert_eq!(event["span"]["openwebui_chat_id"], "chat-9", "{event}");
    assert!(
        !server
            .log
            .lock()
            .unwrap()
            .join("\n")
            .contains("someone@example.com"),
        "e-mail addresses stay out of logs"
    );
}

#[tokio::test]
async fn metrics_count_requests_runs_and_tokens() {
    let cli = client(&[("API_KEYS", "k")]);
    let auth = ("Authorization", "Bearer k");
    cli.post("/v1/chat/completions")
        .header(auth.0, auth.1)
        .body_json(&chat("hi [[reasoning]]", false))
        .send()
        .await;
    cli.post("/v1/chat/completions")
        .header(auth.0, auth.1)
        .body_json(&chat("[[http429]]", false))
        .send()
        .await;
    // A stream whose headers said 200 and that failed in band counts with the failure's status.
    let streamed = cli
        .post("/v1/chat/completions")
        .header(auth.0, auth.1)
        .body_json(&chat("[[http500]]", true))
        .send()
        .await;
    assert_eq!(streamed.0.status().as_u16(), 200);
    let events = streamed.0.into_body().into_string().await.unwrap();
    assert!(events.contains("codex_error"), "{events}");
    let body =
        serde_json::json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]});
    cli.post("/v1/chat/completions")
        .header(auth.0, auth.1)
        .body_json(&body)
        .send()
        .await;

    let resp = cli.get("/metrics").send().await; // open, like /health
    assert_eq!(resp.0.status().as_u16(), 200);
    let text = resp.0.into_body().into_string().await.unwrap();
    for line in [
        "codex_proxy_requests_total{model=\"codex-local\",status=\"200\"} 1",
        "codex_proxy_requests_total{model=\"codex-local\",status=\"429\"} 1",
        // A model the server does not list is counted under one label, whatever its name.
        "codex_proxy_requests_total{model=\"unknown\",status=\"404\"} 1",
        "codex_proxy_requests_total{model=\"codex-local\",status=\"502\"} 1",
        // The reasoning scenario's usage: four different numbers, so no two labels can swap.
        "codex_proxy_tokens_total{kind=\"prompt\"} 120",
        "codex_proxy_tokens_total{kind=\"cached\"} 40",
        "codex_proxy_tokens_total{kind=\"completion\"} 19",
        "codex_proxy_tokens_total{kind=\"reasoning\"} 7",
        "codex_proxy_codex_running 0",
        "codex_proxy_codex_queued 0",
        "codex_proxy_codex_run_seconds_count 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn every_request_has_an_access_log_line_refused_ones_too() {
    let server = Server::start(&[
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "info"),
        ("API_KEYS", "k"),
    ]);
    let http = reqwest::Client::new();
    let send = |path: &str, key: bool, id: &str| {
        let mut req = http
            .get(format!("{}{path}", server.base))
            .header("X-Request-Id", id);
        if key {
            req = req.bearer_auth("k");
        }
        req.send()
    };
    assert_eq!(
        send("/v1/models", false, "no-key").await.unwrap().status(),
        401
    );
    let lost = send("/v1/nowhere", true, "lost").await.unwrap();
    assert_eq!(lost.status(), 404);
    let message = lost.text().await.unwrap();
    assert!(
        message.contains("POST /v1/completions") && message.contains("GET /v1/models/{id}"),
        "a 404 names what the server serves: {message}"
    );
    assert_eq!(
        send("/v1/models", true, "fine").await.unwrap().status(),
        200
    );
    let lines = crate::support::eventually(std::time::Duration::from_secs(10), async || {
        let events: Vec<serde_json::Value> = server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["fields"]["message"] == "request")
            .collect();
        if events.len() >= 3 {
            Ok(events)
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await;
    let seen: Vec<(String, String, u64)> = lines
        .iter()
        .map(|e| {
            (
                e["span"]["request_id"].as_str().unwrap_or("").to_owned(),
                e["fields"]["path"].as_str().unwrap_or("").to_owned(),
                e["fields"]["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for expected in [
        ("no-key", "/v1/models", 401),
        ("lost", "/v1/nowhere", 404),
        ("fine", "/v1/models", 200),
    ] {
        assert!(
            seen.contains(&(expected.0.into(), expected.1.into(), expected.2)),
            "{expected:?} not in {seen:?}"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("codex_proxy_unknown_path_requests_total 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("nowhere"), "the path is not a label");
}
