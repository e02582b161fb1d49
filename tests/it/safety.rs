//! Chat mode, the default: codex's own tools are switched off so a client cannot make it run
//! commands or read files on the server. fake-codex honours the same switches as the real CLI
//! (checked against it in the real-codex suite), so this covers the argument handling.

use crate::{
    server::Server,
    support::{chat, client, json_of, post_chat},
};

async fn answer(extra: &[(&str, &str)], prompt: &str) -> String {
    let (status, body) = json_of(
        client(extra)
            .post("/v1/chat/completions")
            .body_json(&chat(prompt, false))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn chat_mode_switches_codexs_tools_off() {
    assert_eq!(
        answer(&[], "[[tools]]").await,
        "TOOLS: request_user_input,apply_patch"
    );
    assert_eq!(
        answer(&[], "run it [[shell]]").await,
        "I cannot run commands here."
    );
}

#[tokio::test]
async fn codex_config_cannot_turn_them_back_on_only_codex_tools_can() {
    let sneaky = [(
        "CODEX_CONFIG",
        "features.shell_tool=true; web_search=\"live\"",
    )];
    assert_eq!(
        answer(&sneaky, "[[tools]]").await,
        "TOOLS: request_user_input,apply_patch"
    );
    assert_eq!(
        answer(&[("CODEX_TOOLS", "agent")], "[[tools]]").await,
        "TOOLS: exec_command,write_stdin,request_user_input,apply_patch,view_image,get_goal,create_goal,update_goal,tool_search,web_search"
    );
    assert_eq!(
        answer(&[("CODEX_TOOLS", "agent")], "run it [[shell]]").await,
        "The command printed mock-shell-output."
    );
}

/// The server binary logs the start-up warnings (which ones a configuration gets is tested in
/// `exposure.rs`, without listening beyond loopback): here on loopback, in agent mode.
#[test]
fn startup_logs_what_the_configuration_exposes_and_never_the_keys() {
    let server = Server::start(&[("CODEX_TOOLS", "agent"), ("API_KEYS", "k")]);
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("CODEX_TOOLS=agent: codex may run commands")),
        "{log}"
    );
    assert!(!log.contains("anyone who can reach"), "{log}");
    assert!(
        !log.contains("k\"") && !log.contains("API_KEYS=k"),
        "keys are never logged: {log}"
    );
    let quiet = Server::start(&[("API_KEYS", "")]);
    let log = quiet.log.lock().unwrap().join("\n");
    assert!(!log.contains("WARN") && !log.contains("ERROR"), "{log}");
}

#[tokio::test]
async fn codex_workdir_chooses_where_codex_works_and_is_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let canonical = dir.path().canonicalize().unwrap();
    let reply = answer(
        &[("CODEX_WORKDIR", dir.path().to_str().unwrap())],
        "[[env]]",
    )
    .await;
    let cwd = reply.lines().find_map(|l| l.strip_prefix("cwd=")).unwrap();
    assert_eq!(std::path::Path::new(cwd).canonicalize().unwrap(), canonical);
    assert!(dir.path().is_dir(), "a configured directory is not removed");
}

#[tokio::test]
async fn reasoning_effort_becomes_a_codex_override_and_chat_switches_stay_last() {
    let cli = client(&[("CODEX_CONFIG", "model_reasoning_summary=\"detailed\"")]);
    let mut request = chat("[[config]]", false);
    request["reasoning_effort"] = serde_json::json!("high");
    let (status, body) = post_chat(&cli, &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "CONFIG: model_reasoning_summary=\"detailed\" | model_reasoning_effort=\"high\" | features.shell_tool=false | web_search=\"disabled\" | features.goals=false | features.view_image=false | features.multi_agent=false"
    );
    request["reasoning_effort"] = serde_json::json!("extreme");
    let (status, body) = post_chat(&cli, &request).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("reasoning_effort")),
        "{body}"
    );
}
