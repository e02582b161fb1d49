//! `codex-openai-proxy doctor`: the whole chain, checked in order with the server's own
//! settings (`.env` included), one line each and the fix when a check fails: the codex binary
//! and its version, the app-server handshake, the login, the models, the plan's limits, and one
//! short real turn through the configured backend.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;

use crate::{
    codex::{
        app_server::{login_command, Login, Session},
        versions::{self, Version},
        AppServerBackend, Backend, CodexStatus, ExecBackend, Turn, TurnInput, VersionProbe,
    },
    config::{BackendKind, Config},
    metrics::Metrics,
    translate::{Delta, Options, Translator},
};

/// What the turn asks; short, so that it costs next to nothing.
const PROMPT: &str = "Reply with the single word: ok";
/// The longest the turn may take.
const TURN_LIMIT: Duration = Duration::from_secs(120);

/// One check's outcome, as printed.
enum Outcome {
    Ok(String),
    Warn(String),
    Skip(String),
    Fail { what: String, fix: String },
}

fn print(name: &str, outcome: &Outcome) {
    let (tag, text) = match outcome {
        Outcome::Ok(text) => ("ok  ", text.clone()),
        Outcome::Warn(text) => ("warn", text.clone()),
        Outcome::Skip(text) => ("skip", text.clone()),
        Outcome::Fail { what, fix } => ("FAIL", format!("{what}\n       fix: {fix}")),
    };
    println!("[{tag}] {name:<10} {text}");
}

/// Runs every check; the exit code is 0 when the turn was answered.
pub async fn run(config: Config) -> std::process::ExitCode {
    println!(
        "codex-openai-proxy {} doctor: CODEX_PATH={}, CODEX_BACKEND={}, CODEX_HOME={}",
        env!("CARGO_PKG_VERSION"),
        config.codex_path.display(),
        match config.codex_backend {
            BackendKind::Exec => "exec",
            BackendKind::AppServer => "app-server",
        },
        match (config.accounts.as_slice(), &config.codex_home) {
            ([_], None) => "(codex's default, ~/.codex)".to_owned(),
            ([_], Some(home)) => home.display().to_string(),
            (accounts, _) => format!("(CODEX_ACCOUNTS, {} accounts)", accounts.len()),
        },
    );
    let binary = check_binary(&config).await;
    print("codex", &binary);
    if matches!(binary, Outcome::Fail { .. }) {
        return std::process::ExitCode::FAILURE;
    }
    // Each account is its own login: each is checked, and each must answer.
    let mut answered = true;
    for account in &config.accounts {
        if config.accounts.len() > 1 {
            println!(
                "account {}: CODEX_HOME={}",
                account.name,
                account
                    .home
                    .as_ref()
                    .map_or_else(String::new, |h| h.display().to_string())
            );
        }
        answered &= check_account(&config.for_account(account)).await;
    }
    if answered {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// The app-server handshake, login, models, limits and one turn with one account's home;
/// whether the turn was answered.
async fn check_account(config: &Config) -> bool {
    let login_fix = login_command(config);
    let started = Instant::now();
    match Session::open(config).await {
        Err(err) => print(
            "app-server",
            &Outcome::Fail {
                what: err.message(),
                fix: "check that this codex runs `codex app-server` (`codex --help`), and that CODEX_CONFIG is valid".into(),
            },
        ),
        Ok(session) => {
            print(
                "app-server",
                &Outcome::Ok(format!("handshake in {} ms", started.elapsed().as_millis())),
            );
            print("login", &check_login(&session, &login_fix).await);
            print("models", &check_models(&session).await);
            print("limits", &check_limits(&session).await);
        }
    }
    let turn = check_turn(config, &login_fix).await;
    print("turn", &turn);
    matches!(turn, Outcome::Ok(_))
}

async fn check_binary(config: &Config) -> Outcome {
    let probe = VersionProbe::new(&config.codex_path, config.codex_home.as_deref());
    let supported = versions::supported();
    match probe.status().await {
        CodexStatus::Unavailable { reason } => Outcome::Fail {
            what: reason,
            fix: "install codex (`npm install -g @openai/codex`) or set CODEX_PATH to it".into(),
        },
        CodexStatus::Ready { path, version } => match Version::from_version_line(&version) {
            Some(v) if supported.contains(v) => {
                Outcome::Ok(format!("{version} at {path} (tested: {supported})"))
            }
            Some(_) => Outcome::Warn(format!(
                "{version} at {path} is not among the tested versions ({supported}); it may work, or not"
            )),
            None => Outcome::Warn(format!("`{path} --version` printed {version:?}, no version")),
        },
    }
}

async fn check_login(session: &Session, fix: &str) -> Outcome {
    match session.login().await {
        Ok(Login::ChatGpt { plan }) => Outcome::Ok(format!(
            "ChatGPT account{}",
            plan.map(|p| format!(", {p} plan")).unwrap_or_default()
        )),
        Ok(Login::ApiKey) => Outcome::Ok("API key".into()),
        Ok(Login::Other(kind)) => Outcome::Ok(format!("{kind} credentials")),
        Ok(Login::NotNeeded) => Outcome::Ok("none needed by the configured model provider".into()),
        Ok(Login::Missing) => Outcome::Fail {
            what: "codex is not logged in".into(),
            fix: format!("run `{fix}` (or set CODEX_API_KEY)"),
        },
        Err(err) => Outcome::Fail {
            what: format!("account/read failed: {}", err.message()),
            fix: "see the app-server line above".into(),
        },
    }
}

async fn check_models(session: &Session) -> Outcome {
    match session.models().await {
        Ok(models) if models.is_empty() => Outcome::Warn("codex lists no models".into()),
        Ok(models) => {
            let names: Vec<String> = models
                .iter()
                .map(|m| {
                    if m.is_default {
                        format!("{} (default)", m.id)
                    } else {
                        m.id.clone()
                    }
                })
                .collect();
            Outcome::Ok(format!("{}: {}", models.len(), names.join(", ")))
        }
        Err(err) => Outcome::Warn(format!("model/list failed: {}", err.message())),
    }
}

async fn check_limits(session: &Session) -> Outcome {
    let now = crate::api::chat::unix_now();
    match session.plan_limits().await {
        Ok(Some(limits)) => {
            let windows: Vec<String> = limits
                .windows()
                .map(|(name, w)| {
                    let resets = w
                        .resets_at
                        .map(|at| format!(", resets in {} min", (at - now).max(0) / 60))
                        .unwrap_or_default();
                    format!("{name} {}% used{resets}", w.used_percent)
                })
                .collect();
            Outcome::Ok(windows.join("; "))
        }
        Ok(None) => Outcome::Skip("no plan limits to read (they come with a ChatGPT login)".into()),
        Err(err) => Outcome::Warn(format!("account/rateLimits/read failed: {}", err.message())),
    }
}

/// One short turn through the backend the server is configured with, timed.
async fn check_turn(config: &Config, login_fix: &str) -> Outcome {
    let backend: Arc<dyn Backend> = match config.codex_backend {
        BackendKind::Exec => Arc::new(ExecBackend::new(config)),
        BackendKind::AppServer => Arc::new(AppServerBackend::new(
            config,
            Metrics::new().app_server(crate::config::DEFAULT_ACCOUNT),
            Default::default(),
        )),
    };
    let turn = Turn {
        input: TurnInput::text(PROMPT),
        model: config.codex_model.clone(),
        effort: None,
        output_schema: None,
        thread: Default::default(),
        workdir: None,
        sandbox: None,
    };
    let started = Instant::now();
    let fail = |what: String| {
        let fix = if what.contains("authenticate") || what.contains("401") {
            format!("log codex in: `{login_fix}`")
        } else {
            "run with LOG_LEVEL=debug, or try the same prompt with `codex exec`".into()
        };
        Outcome::Fail { what, fix }
    };
    let mut events = match backend.run(turn).await {
        Ok(events) => events,
        Err(err) => return fail(err.message()),
    };
    let options = Options {
        reasoning_output: config.reasoning_output,
        ..Options::default()
    };
    let mut translator = Translator::with_options(Arc::from(PROMPT), options);
    let (mut first, mut answer) = (None, String::new());
    let deadline = tokio::time::Instant::now() + TURN_LIMIT;
    loop {
        let event = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => event,
            Ok(None) => return fail("codex ended without finishing the turn".into()),
            Err(_) => return fail(format!("no answer within {} s", TURN_LIMIT.as_secs())),
        };
        for delta in translator.on_run_event(event) {
            match delta {
                Delta::Content(text) => {
                    first.get_or_insert_with(|| started.elapsed());
                    answer.push_str(&text);
                }
                Delta::Failed(err) => return fail(err.message()),
                Delta::Finish { .. } => {
                    let total = started.elapsed();
                    let first = first.unwrap_or(total);
                    return Outcome::Ok(format!(
                        "answered {:?}: first token {} ms, in all {} ms",
                        excerpt(&answer),
                        first.as_millis(),
                        total.as_millis()
                    ));
                }
                Delta::Reasoning(_) | Delta::ToolCall(_) | Delta::Ran { .. } => {}
            }
        }
    }
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(60) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
