//! Limits: the codex slot queue and its 429, deadlines, body and prompt size caps, and codex
//! that cannot be started. Processes are checked by pid: none may outlive its request.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use serde_json::{json, Value};

use crate::support::{
    all_gone_within, chat, client, eventually, json_of, metrics_text, pids_from, post_chat, redact,
    snapshot, sse_of,
};

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_a_freed_slot_is_reused() {
    let cli = client(&[("MAX_CONCURRENCY", "1"), ("QUEUE_TIMEOUT_SECS", "0")]);
    let held = cli
        .post("/v1/chat/completions")
        .body_json(&chat("[[hang]]", true))
        .send()
        .await;
    held.assert_status_is_ok();

    let resp = cli
        .post("/v1/chat/completions")
        .body_json(&chat("hi", false))
        .send()
        .await;
    assert_eq!(
        resp.0
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
    snapshot!("limits_queue_full", json!({"status": status, "body": body}));

    drop(held); // the stream owned the slot
    let (status, _) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat("hi", false))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_queued_request_runs_when_a_slot_frees() {
    let cli = std::sync::Arc::new(client(&[
        ("MAX_CONCURRENCY", "1"),
        ("QUEUE_TIMEOUT_SECS", "60"),
    ]));
    let held = cli
        .post("/v1/chat/completions")
        .body_json(&chat("[[hang]]", true))
        .send()
        .await;
    let queued = {
        let cli = cli.clone();
        tokio::spawn(async move {
            json_of(
                cli.post("/v1/chat/completions")
                    .body_json(&chat("hi", false))
                    .send()
                    .await,
            )
            .await
        })
    };
    // Waits for the second request to be queued, as the queue gauge says.
    eventually(Duration::from_secs(10), async || {
        match metrics_text(&cli)
            .await
            .lines()
            .any(|l| l == "codex_proxy_codex_queued 1")
        {
            true => Ok(()),
            false => Err("the second request is not queued".to_owned()),
        }
    })
    .await;
    assert!(
        !queued.is_finished(),
        "the second request waits for the slot"
    );
    drop(held);
    let (status, body) = queued.await.unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_total_deadline_stops_codex_with_a_504() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let cli = client(&[("CODEX_TIMEOUT_SECS", "1")]);
    let prompt = format!("[[hang:{}]]", pid_file.display());
    let (status, body) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat(&prompt, false))
            .send()
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("timeout")),
        "{body}"
    );
    snapshot!(
        "limits_total_timeout_json",
        json!({"status": status, "body": body})
    );
    let pids = pids_from(&pid_file).await;
    assert!(
        all_gone_within(&pids, Duration::from_secs(1)).await,
        "codex and its child outlived the 504: {pids:?}"
    );
}

#[tokio::test]
async fn a_codex_that_fails_the_turn_but_lingers_is_stopped_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let prompt = format!("[[fail_then_hang:{}]]", pid_file.display());
    for stream in [false, true] {
        let _ = std::fs::remove_file(&pid_file);
        let resp = client(&[])
            .post("/v1/chat/completions")
            .body_json(&chat(&prompt, stream))
            .send()
            .await;
        let body = resp.0.into_body().into_string().await.unwrap();
        assert!(body.contains("rate_limit_exceeded"), "{body}");
        let pids = pids_from(&pid_file).await;
        assert!(
            all_gone_within(&pids, Duration::from_secs(1)).await,
            "stream {stream}: {pids:?} outlived the error"
        );
    }
}

#[tokio::test]
async fn the_idle_deadline_ends_a_stream_in_band() {
    let cli = client(&[
        ("CODEX_IDLE_TIMEOUT_SECS", "1"),
        ("CODEX_TIMEOUT_SECS", "100"),
    ]);
    let (status, _, events) = sse_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat("[[hang]]", true))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    let error = &events[events.len() - 2]["error"];
    assert_eq!(error["code"], "timeout");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("CODEX_IDLE_TIMEOUT_SECS"),
        "{error}"
    );
    snapshot!("limits_idle_timeout_sse", redact(Value::Array(events)));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_whether_its_length_is_declared_or_not() {
    let cli = client(&[("MAX_BODY_BYTES", "2048")]);
    let big = chat(&"x".repeat(4000), false);
    let (status, body) = post_chat(&cli, &big).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("request_too_large")),
        "{body}"
    );
    snapshot!(
        "limits_body_too_large",
        json!({"status": status, "body": body})
    );

    let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from(big.to_string()))];
    let resp = cli
        .post("/v1/chat/completions")
        .content_type("application/json")
        .body(poem::Body::from_bytes_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    let (status, _) = json_of(resp).await;
    assert_eq!(status, 413, "a chunked body is counted as it arrives");
}

#[tokio::test]
async fn a_prompt_over_max_prompt_tokens_is_refused_before_codex_starts() {
    // With no codex at all, reaching codex would be a 503: the 400 proves nothing was started.
    let cli = client(&[
        ("MAX_PROMPT_TOKENS", "50"),
        ("CODEX_PATH", "/nonexistent/codex"),
    ]);
    let (status, body) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat(&"word ".repeat(100), false))
            .send()
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("context_length_exceeded")),
        "{body}"
    );
    snapshot!(
        "limits_prompt_too_long",
        json!({"status": status, "body": body})
    );
    let (status, _) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat("short", false))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 503, "a short prompt does reach for codex");
}

#[tokio::test]
async fn invalid_utf8_is_a_400() {
    let resp = client(&[])
        .post("/v1/chat/completions")
        .content_type("application/json")
        .body(b"{\"model\":\"codex-local\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec())
        .send()
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The body is not valid JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn a_codex_that_is_not_executable_is_a_503_and_degrades_health() {
    let dir = tempfile::tempdir().unwrap();
    let codex = dir.path().join("codex");
    std::fs::write(&codex, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&codex, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cli = client(&[("CODEX_PATH", codex.to_str().unwrap())]);
    let (status, body) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat("hi", false))
            .send()
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("codex_unavailable")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an executable"),
        "{body}"
    );
    let (status, health) = json_of(cli.get("/health").send().await).await;
    assert_eq!((status, health["status"].as_str()), (503, Some("degraded")));
}
