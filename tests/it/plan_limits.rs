//! A ChatGPT plan's usage limits, as the app-server reports them: on `/health`, in `/metrics`,
//! and as the `Retry-After` of a spent plan's 429.

use crate::support::{chat, client_on, eventually, json_of, metrics_text, post_chat};

#[tokio::test]
async fn reported_limits_show_on_health_and_in_metrics() {
    let cli = client_on("app-server", &[]);
    // Whether or not the process is up yet, no limits are known before a turn.
    let (_, health) = json_of(cli.get("/health").send().await).await;
    assert!(
        health.get("plan_limits").is_none(),
        "none known yet: {health}"
    );

    assert_eq!(post_chat(&cli, &chat("[[plan:42]]", false)).await.0, 200);
    let (_, health) = json_of(cli.get("/health").send().await).await;
    let limits = &health["plan_limits"];
    assert_eq!(limits["plan_type"], "plus", "{health}");
    assert_eq!(limits["primary"]["used_percent"], 42);
    assert_eq!(limits["primary"]["window_minutes"], 300);
    assert_eq!(limits["secondary"]["used_percent"], 20);
    let resets_at = limits["primary"]["resets_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 3500..=now + 3700).contains(&resets_at),
        "{resets_at}"
    );

    let metrics = metrics_text(&cli).await;
    assert!(metrics
        .lines()
        .any(|l| l == "codex_proxy_plan_used_percent{account=\"default\",window=\"primary\"} 42"));
    assert!(metrics.lines().any(|l| l
        == format!(
        "codex_proxy_plan_resets_at_seconds{{account=\"default\",window=\"primary\"}} {resets_at}"
    )));
}

#[tokio::test]
async fn a_spent_plan_says_when_to_retry_from_its_reported_reset() {
    let cli = client_on("app-server", &[]);
    let resp = cli
        .post("/v1/chat/completions")
        .body_json(&chat("[[plan_spent]]", false))
        .send()
        .await;
    let retry_after: u64 = resp
        .0
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    // The 5-hour window is spent and resets in an hour.
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");

    // exec reports no limits, and codex's message names no time: no Retry-After to give.
    let cli = client_on("exec", &[]);
    let resp = cli
        .post("/v1/chat/completions")
        .body_json(&chat("[[plan_spent]]", false))
        .send()
        .await;
    assert!(resp.0.headers().get("retry-after").is_none());
    assert_eq!(json_of(resp).await.0, 429);
}

#[tokio::test]
async fn a_usage_limit_message_that_names_the_reset_sets_retry_after_on_both_backends() {
    for backend in crate::support::BACKENDS {
        let resp = client_on(backend, &[])
            .post("/v1/chat/completions")
            .body_json(&chat("[[usage_limit]]", false))
            .send()
            .await;
        let retry_after = resp.0.headers().get("retry-after").cloned();
        assert_eq!(json_of(resp).await.0, 429, "{backend}");
        // "try again in 3 days 2 hours 5 minutes"
        assert_eq!(
            retry_after.as_ref().and_then(|v| v.to_str().ok()),
            Some((3 * 86_400 + 2 * 3600 + 5 * 60).to_string().as_str()),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_chatgpt_logins_limits_are_read_when_the_app_server_starts() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("fake-chatgpt-login"), "").unwrap();
    let cli = client_on(
        "app-server",
        &[("CODEX_HOME", home.path().to_str().unwrap())],
    );
    let health = eventually(std::time::Duration::from_secs(10), async || {
        let (_, health) = json_of(cli.get("/health").send().await).await;
        match health["plan_limits"].is_null() {
            true => Err(format!("no limits before a turn: {health}")),
            false => Ok(health),
        }
    })
    .await;
    assert_eq!(
        health["plan_limits"]["primary"]["used_percent"], 42,
        "{health}"
    );
    assert_eq!(health["codex"]["login"], "chatgpt", "{health}");
}
