//! The app-server backend's own duties: one process for every request, finished threads
//! unsubscribed, a leaving client or a deadline interrupting its turn, a crash failing the runs
//! on the process at once and a restart, overload as 429, and `/health` telling what is wrong.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::support::{
    alive, all_gone_within, chat, client_on, json_of, metrics_text, pids_from, post_chat, sse_of,
};

fn answer(body: &serde_json::Value) -> &str {
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn finished_threads_are_unsubscribed() {
    let cli = client_on("app-server", &[]);
    for prompt in ["one", "two [[reasoning]]", "three [[http429]]"] {
        post_chat(&cli, &chat(prompt, false)).await;
    }
    let (_, _, events) = sse_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat("four", true))
            .send()
            .await,
    )
    .await;
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    let (status, body) = post_chat(&cli, &chat("[[threads]]", false)).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer(&body),
        "THREADS: 1",
        "only the asking thread is loaded"
    );
}

#[tokio::test]
async fn a_client_that_leaves_interrupts_its_turn_and_the_process_stays() {
    let cli = client_on("app-server", &[]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let resp = cli
        .post("/v1/chat/completions")
        .body_json(&chat(&format!("[[hang:{}]]", pid_file.display()), true))
        .send()
        .await;
    resp.assert_status_is_ok();
    let pids = pids_from(&pid_file).await;
    let (app_server, command) = (pids[0], pids[1]);
    drop(resp);
    assert!(
        all_gone_within(&[command], Duration::from_secs(2)).await,
        "the interrupted turn's command is gone"
    );
    assert!(alive(app_server), "the app-server serves on");
    let (status, body) = post_chat(&cli, &chat("[[threads]]", false)).await;
    assert_eq!((status, answer(&body)), (200, "THREADS: 1"));
}

#[tokio::test]
async fn a_deadline_interrupts_the_turn() {
    let cli = client_on("app-server", &[("CODEX_IDLE_TIMEOUT_SECS", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let (status, body) = post_chat(
        &cli,
        &chat(&format!("[[hang:{}]]", pid_file.display()), false),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("timeout")),
        "{body}"
    );
    let pids = pids_from(&pid_file).await;
    assert!(all_gone_within(&[pids[1]], Duration::from_secs(2)).await);
    assert!(alive(pids[0]));
}

#[tokio::test]
async fn a_crash_fails_every_run_on_the_process_at_once_then_it_restarts() {
    let cli = client_on("app-server", &[]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let waiting = cli
        .post("/v1/chat/completions")
        .body_json(&chat(&format!("[[hang:{}]]", pid_file.display()), true))
        .send()
        .await;
    waiting.assert_status_is_ok();
    let old = pids_from(&pid_file).await[0];

    let (status, body) = post_chat(&cli, &chat("[[crash]]", false)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("codex_error")),
        "{body}"
    );

    // The run that was waiting on the same process ends now, with the same cause, in band.
    let mut rest = waiting.0.into_body().into_bytes_stream();
    let mut text = String::new();
    let read = async {
        while let Some(Ok(chunk)) = rest.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the waiting stream ends as soon as the process dies");
    assert!(text.contains("exit code 101"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    let (status, body) = post_chat(&cli, &chat("after the crash", false)).await;
    assert_eq!((status, answer(&body)), (200, "Hello from the mock model."));
    let (status, health) = json_of(cli.get("/health").send().await).await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");
    assert!(!alive(old));
    let metrics = metrics_text(&cli).await;
    for line in [
        "codex_proxy_app_server_exits_total{account=\"default\"} 1",
        "codex_proxy_app_server_up{account=\"default\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn overload_is_a_429() {
    let (status, body) = post_chat(
        &client_on("app-server", &[]),
        &chat("[[overloaded]]", false),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded"),
        "{body}"
    );
}

#[tokio::test]
async fn a_codex_that_cannot_serve_is_a_503_and_health_says_why() {
    for (path, why) in [
        ("/nonexistent/codex", "was not found"),
        ("/bin/false", "handshake"),
    ] {
        let cli = client_on("app-server", &[("CODEX_PATH", path)]);
        let (status, body) = post_chat(&cli, &chat("hi", false)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("codex_unavailable")),
            "{path}: {body}"
        );
        let (status, health) = json_of(cli.get("/health").send().await).await;
        assert_eq!(status, 503, "{health}");
        let reason = health["codex"]["reason"].as_str().unwrap();
        assert!(
            reason.contains(why) && reason.contains("Restarting in"),
            "{path}: {reason}"
        );
    }
}
