//! `/v1/models` answers from configuration and, on app-server, the models codex offers (fetched
//! in the background); `/health` reports codex without running a model.

use serde_json::json;

use crate::support::{client, eventually, json_of, post_chat, redact, snapshot};

#[tokio::test]
async fn models_lists_codex_local_and_the_configured_extras() {
    let (status, body) = json_of(
        client(&[("CODEX_MODELS", "gpt-5.5, gpt-6-sol")])
            .get("/v1/models")
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    snapshot!("models_list", redact(body));
}

#[tokio::test]
async fn a_listed_model_can_be_retrieved_and_any_other_is_a_404() {
    let cli = client(&[("CODEX_MODELS", "gpt-5.5"), ("API_KEYS", "k")]);
    for id in ["codex-local", "gpt-5.5"] {
        let resp = cli
            .get(format!("/v1/models/{id}"))
            .header("Authorization", "Bearer k")
            .send()
            .await;
        let (status, body) = json_of(resp).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["id"].as_str(), body["object"].as_str()),
            (Some(id), Some("model"))
        );
        assert_eq!(body["owned_by"], "codex");
    }
    let resp = cli
        .get("/v1/models/gpt-4o")
        .header("Authorization", "Bearer k")
        .send()
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-4o"));
    let (status, _) = json_of(cli.get("/v1/models/codex-local").send().await).await;
    assert_eq!(status, 401, "behind the keys like every /v1 route");
}

#[tokio::test]
async fn models_never_needs_codex() {
    let (status, body) = json_of(
        client(&[("CODEX_PATH", "/nonexistent/codex")])
            .get("/v1/models")
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["id"], "codex-local");
}

#[tokio::test]
async fn an_extra_model_is_passed_to_codex_and_others_are_404() {
    let cli = client(&[("CODEX_MODELS", "gpt-5.5")]);
    let request = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "[[http400]]"}]});
    // fake-codex names the `-m` it was given in its unknown-model failure.
    let (status, body) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&request("gpt-5.5"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 502);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`gpt-5.5`"),
        "{body}"
    );
    let (status, body) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&request("gpt-9"))
            .send()
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
}

#[tokio::test]
async fn codex_model_is_the_model_behind_codex_local() {
    let cli = client(&[("CODEX_MODEL", "my-model")]);
    let request =
        json!({"model": "codex-local", "messages": [{"role": "user", "content": "[[http400]]"}]});
    let (_, body) = post_chat(&cli, &request).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`my-model`"),
        "{body}"
    );
}

#[tokio::test]
async fn health_reports_the_codex_version() {
    let (status, body) = json_of(client(&[]).get("/health").send().await).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["codex"]["version"], "codex-cli 0.169.0");
    assert_eq!(body["codex"]["available"], true);
    assert_eq!(body["codex"]["version_supported"], true);
    assert_eq!(body["codex"]["supported_versions"], "0.169.0 to 0.171.0");
}

const SECS_10: std::time::Duration = std::time::Duration::from_secs(10);

/// `/health` of a running server binary: status and body.
async fn server_health(server: &crate::server::Server) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A codex whose `--version` says `version`, otherwise fake-codex.
fn codex_claiming(dir: &std::path::Path, version: &str) -> std::path::PathBuf {
    let script = dir.join(format!("codex-{version}"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'codex-cli {version}'; exit 0; }}\nexec '{}' \"$@\"\n",
            crate::support::fake_codex()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[tokio::test]
async fn a_codex_outside_the_tested_range_is_warned_about_once_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let codex = codex_claiming(dir.path(), "0.150.0");
    let server = crate::server::Server::start(&[("CODEX_PATH", codex.to_str().unwrap())]);
    let body: serde_json::Value = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok", "an untested codex may still work");
    assert_eq!(body["codex"]["version_supported"], false);
    let (warnings, log) = eventually(SECS_10, async || {
        let log = server.log.lock().unwrap().join("\n");
        let warnings = log
            .lines()
            .filter(|l| {
                l.contains("WARN") && l.contains("0.150.0") && l.contains("0.169.0 to 0.171.0")
            })
            .count();
        match warnings {
            0 => Err(format!("no warning: {log}")),
            _ => Ok((warnings, log)),
        }
    })
    .await;
    assert_eq!(warnings, 1, "{log}");
    let tested = codex_claiming(dir.path(), "0.171.0");
    let server = crate::server::Server::start(&[("CODEX_PATH", tested.to_str().unwrap())]);
    let body: serde_json::Value = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["codex"]["version_supported"], true);
    assert!(!server
        .log
        .lock()
        .unwrap()
        .join("\n")
        .contains("outside the versions"));
}

#[tokio::test]
async fn health_is_degraded_with_the_reason_when_codex_is_missing() {
    let (status, body) = json_of(
        client(&[("CODEX_PATH", "/nonexistent/codex")])
            .get("/health")
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["codex"]["available"], false);
    assert!(
        body["codex"]["reason"]
            .as_str()
            .unwrap()
            .contains("CODEX_PATH"),
        "{body}"
    );
}

#[tokio::test]
async fn effort_model_ids_are_listed_and_carry_their_effort() {
    let cli = client(&[("EFFORT_MODELS", "low,high")]);
    let (_, list) = json_of(cli.get("/v1/models").send().await).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["codex-local", "codex-local-low", "codex-local-high"]);
    let request = json!({"model": "codex-local-high", "messages": [{"role": "user", "content": "[[config]]"}]});
    let (status, body) = post_chat(&cli, &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("model_reasoning_effort=\"high\""));
}

#[tokio::test]
async fn openwebui_background_tasks_can_go_to_a_cheaper_configuration() {
    let cli = client(&[
        ("TASK_MODEL", "gpt-5.6-luna"),
        ("TASK_REASONING_EFFORT", "low"),
    ]);
    let task = json!({"model": "codex-local", "messages": [
        {"role": "user", "content": "### Task:\nGenerate a concise title. [[http400]]"}
    ]});
    let (_, body) = post_chat(&cli, &task).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`gpt-5.6-luna`"),
        "the task ran on TASK_MODEL: {body}"
    );

    let chat = json!({"model": "codex-local", "messages": [{"role": "user", "content": "Hello [[config]]"}]});
    let (_, body) = post_chat(&cli, &chat).await;
    assert!(
        !body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("model_reasoning_effort"),
        "{body}"
    );
    let task = json!({"model": "codex-local", "messages": [{"role": "user", "content": "### Task:\nTags. [[config]]"}]});
    let (_, body) = post_chat(&cli, &task).await;
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("model_reasoning_effort=\"low\""),
        "{body}"
    );
}

/// `/v1/models` once the app-server's model list has arrived (it is fetched in the background,
/// never inside a request).
async fn listed_ids<E: poem::Endpoint>(
    cli: &poem::test::TestClient<E>,
    expect: &str,
) -> Vec<String> {
    eventually(std::time::Duration::from_secs(15), async || {
        let (status, list) = json_of(cli.get("/v1/models").send().await).await;
        assert_eq!(status, 200);
        let ids: Vec<String> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        match ids.iter().any(|id| id == expect) {
            true => Ok(ids),
            false => Err(format!("{expect} not listed: {ids:?}")),
        }
    })
    .await
}

#[tokio::test]
async fn on_app_server_the_models_codex_offers_are_listed_and_hidden_ones_are_not() {
    let cli = crate::support::client_on("app-server", &[("CODEX_MODELS", "gpt-5.5")]);
    let ids = listed_ids(&cli, "gpt-6.2-sol").await;
    // Both pages of fake-codex's catalogue; the configured id once; the hidden model left out.
    assert_eq!(ids, ["codex-local", "gpt-5.5", "gpt-6.2-sol"]);
    let request = json!({"model": "gpt-6.2-sol", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post_chat(&cli, &request).await.0, 200);
    let hidden =
        json!({"model": "codex-auto-review", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post_chat(&cli, &hidden).await.0, 404);
}

#[tokio::test]
async fn effort_ids_follow_the_efforts_each_model_takes() {
    let cli = crate::support::client_on("app-server", &[("EFFORT_MODELS", "high,max")]);
    let ids = listed_ids(&cli, "gpt-5.5").await;
    // gpt-5.5 takes no "max"; codex-local is codex's default model, gpt-6.2-sol.
    assert_eq!(
        ids,
        [
            "codex-local",
            "gpt-6.2-sol",
            "gpt-5.5",
            "codex-local-high",
            "codex-local-max",
            "gpt-6.2-sol-high",
            "gpt-6.2-sol-max",
            "gpt-5.5-high"
        ]
    );
    let cli = crate::support::client_on("app-server", &[("EFFORT_MODELS", "all")]);
    let ids = listed_ids(&cli, "gpt-5.5").await;
    for id in ["gpt-6.2-sol-ultra", "gpt-5.5-xhigh", "codex-local-low"] {
        assert!(ids.iter().any(|i| i == id), "{id} in {ids:?}");
    }
    assert!(!ids.iter().any(|i| i == "gpt-5.5-ultra"), "{ids:?}");
    let request =
        json!({"model": "gpt-5.5-xhigh", "messages": [{"role": "user", "content": "[[config]]"}]});
    let (status, body) = post_chat(&cli, &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("model_reasoning_effort=\"xhigh\""),
        "{body}"
    );
    // On exec codex cannot be asked: `all` lists no effort ids, and listed ones stay as they are.
    let (_, list) = json_of(
        client(&[("EFFORT_MODELS", "all")])
            .get("/v1/models")
            .send()
            .await,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_login_the_server_starts_says_how_to_log_in_and_health_is_degraded() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("fake-no-login"), "").unwrap();
    let home_path = home.path().to_str().unwrap();
    let server = crate::server::Server::start(&[("CODEX_HOME", home_path)]);
    let command = format!(
        "CODEX_HOME={home_path} {} login",
        crate::support::fake_codex()
    );
    // The start-up check runs in the background: wait for what it found.
    let (status, health) = eventually(SECS_10, async || {
        let (status, body) = server_health(&server).await;
        match body["codex"]["login"] == "missing" {
            true => Ok((status, body)),
            false => Err(format!("not found yet: {body}")),
        }
    })
    .await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    assert!(
        health["codex"]["reason"]
            .as_str()
            .unwrap()
            .contains(&command),
        "{health}"
    );
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("not logged in") && l.contains(&command)),
        "{log}"
    );
    // Logged in meanwhile (`codex login`): /health finds out without a restart.
    std::fs::remove_file(home.path().join("fake-no-login")).unwrap();
    let body = eventually(
        std::time::Duration::from_secs(20),
        async || match server_health(&server).await {
            (200, body) => Ok(body),
            (_, body) => Err(format!("still degraded after logging in: {body}")),
        },
    )
    .await;
    assert_eq!(body["codex"]["login"], "api_key", "{body}");
}

#[tokio::test]
async fn health_names_the_login_codex_runs_with() {
    let cli = client(&[]);
    let (status, body) = eventually(SECS_10, async || {
        let (status, body) = json_of(cli.get("/health").send().await).await;
        match body["codex"]["login"] == "api_key" {
            true => Ok((status, body)),
            false => Err(body.to_string()),
        }
    })
    .await;
    assert_eq!(status, 200, "{body}");
}
