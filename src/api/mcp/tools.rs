//! The two MCP tools, shaped like those of the `codex mcp-server` codex had before 0.154:
//! `codex` starts a thread and answers its first turn, `codex-reply` continues one. Each turn
//! runs as a chat request does (slot, deadlines, accounts, cleanup), with codex's reasoning
//! sent as progress while it works.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use poem::web::RemoteAddr;
use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::schema_for_output, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, ProgressNotificationParam},
    schemars::{self, JsonSchema},
    service::RequestContext,
    tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler,
};
use serde::{Deserialize, Serialize};

use super::threads::{Refusal, Threads};
use crate::{
    api::{auth::Authorized, run, AppState},
    codex::{ThreadUse, Turn},
    config::REASONING_EFFORTS,
    conversation::{Conversation, Item, Part},
    error::ProxyError,
    translate::{Delta, Options},
};

/// The least time between two progress notifications: reasoning arrives token by token.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CodexParams {
    /// What codex should do or answer: the first message of a new thread.
    pub prompt: String,
    /// A model id this server lists (its `GET /v1/models`, `codex-local` by default, which is
    /// codex's configured model). Leave it out unless asked for a particular model.
    #[serde(default)]
    pub model: Option<String>,
    /// How hard the model thinks: one of none, minimal, low, medium, high, xhigh. Leave it out
    /// for codex's configured effort.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// Instructions codex follows for the whole thread, as a developer message (a role, a
    /// style, constraints).
    #[serde(default)]
    pub developer_instructions: Option<String>,
    /// Agent mode only (the server's CODEX_TOOLS=agent): the directory codex works in, inside
    /// the server's CODEX_WORKDIR (relative to it, or absolute). Leave it out for CODEX_WORKDIR
    /// itself.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Agent mode only: the sandbox codex's commands run in, one of read-only,
    /// workspace-write, danger-full-access; never more open than the server's CODEX_SANDBOX.
    /// Leave it out for the server's.
    #[serde(default)]
    pub sandbox: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CodexReplyParams {
    /// The `threadId` a `codex` call returned.
    #[serde(rename = "threadId")]
    pub thread_id: String,
    /// The next message in that thread.
    pub prompt: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CodexOutput {
    /// Continue the thread with `codex-reply`; `null` when this server cannot keep threads
    /// (`CODEX_BACKEND=exec`).
    #[serde(rename = "threadId")]
    pub thread_id: Option<String>,
    /// codex's answer, as in the text content.
    pub content: String,
}

/// The MCP server one session talks to; every session shares the server's state.
#[derive(Clone)]
pub struct CodexTools {
    state: Arc<AppState>,
    threads: Arc<Mutex<Threads>>,
    tool_router: ToolRouter<Self>,
}

impl CodexTools {
    pub fn new(state: Arc<AppState>, threads: Arc<Mutex<Threads>>) -> Self {
        CodexTools {
            state,
            threads,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl CodexTools {
    /// Ask codex, OpenAI's coding agent, to do a task or answer a question, in a new thread.
    /// Returns codex's answer as text, and `threadId` (structured content) to continue the same
    /// thread with `codex-reply`, which keeps everything said so far.
    #[tool(name = "codex", output_schema = schema_for_output::<CodexOutput>())]
    async fn codex(
        &self,
        Parameters(params): Parameters<CodexParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = Caller::of(&ctx);
        let keeps = self.state.backend().keeps_threads();
        let id = keeps.then(|| crate::ids::random_id("thr_"));
        let mut conversation = Conversation::default();
        if let Some(instructions) = params
            .developer_instructions
            .filter(|i| !i.trim().is_empty())
        {
            conversation.items.push(Item::Instructions {
                parts: vec![Part::Text(instructions)],
            });
        }
        conversation.items.push(Item::User {
            parts: vec![Part::Text(params.prompt)],
        });
        let model = params
            .model
            .as_deref()
            .unwrap_or(crate::config::DEFAULT_MODEL_ID);
        let Some(choice) = self
            .state
            .config
            .resolve_model(model, &self.state.backend().models())
        else {
            return Ok(refusal(format!(
                "The model `{model}` is not one this server lists; leave `model` out, or use one of: {}.",
                self.state.config.model_ids(&self.state.backend().models()).join(", ")
            )));
        };
        let effort = match params.reasoning_effort {
            Some(effort) if !REASONING_EFFORTS.contains(&effort.as_str()) => {
                return Ok(refusal(format!(
                    "`reasoning_effort` is one of {}, not {effort:?}.",
                    REASONING_EFFORTS.join(", ")
                )))
            }
            Some(effort) => Some(effort),
            None => choice.effort,
        };
        let place = match place(&self.state.config, params.cwd, params.sandbox) {
            Ok(place) => place,
            Err(message) => return Ok(refusal(message)),
        };
        let transcript = transcript(&conversation);
        let mut turn = Turn::new(
            conversation,
            None,
            &crate::structured::ResponseFormat::Text,
            choice.model,
            effort,
        );
        (turn.workdir, turn.sandbox) = place;
        if let Some(id) = &id {
            turn.thread = ThreadUse::Keep(id.clone());
        }
        let answer = self
            .answer(&ctx, &caller, None, model, transcript, turn)
            .await;
        let Some(id) = id else {
            return Ok(answered(answer, None));
        };
        // The account whose codex took the turn holds the thread now.
        let holder = self
            .state
            .accounts
            .iter()
            .position(|account| account.backend.holds_thread(&id));
        match (&answer, holder) {
            (Ok(_), Some(account)) => {
                let gone = self
                    .threads()
                    .add(&id, caller.auth.key, account, Instant::now());
                self.let_go(gone);
                Ok(answered(answer, Some(id)))
            }
            _ => {
                // A thread whose first turn failed is no use to continue.
                for account in self.state.accounts.iter() {
                    account.backend.forget_thread(&id);
                }
                Ok(answered(answer, None))
            }
        }
    }

    /// Continue a codex thread that `codex` started: send the next message, get codex's answer.
    /// codex sees the whole thread so far. A thread is kept for a while after its last use
    /// (the server's `MCP_THREAD_IDLE_SECS`); an expired one must be started again with `codex`.
    #[tool(name = "codex-reply", output_schema = schema_for_output::<CodexOutput>())]
    async fn codex_reply(
        &self,
        Parameters(params): Parameters<CodexReplyParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if !self.state.backend().keeps_threads() {
            return Ok(refusal(
                "codex-reply needs this server to keep threads, which CODEX_BACKEND=exec cannot \
                 (each `codex exec` ends with its thread): start each task with `codex`, with \
                 what came before in its prompt, or run the server with CODEX_BACKEND=app-server."
                    .into(),
            ));
        }
        let caller = Caller::of(&ctx);
        let id = params.thread_id;
        // Threads idle past the limit are gone even before the sweep lets them go.
        let gone = self.threads().expire(Instant::now());
        self.let_go(gone);
        let entry = match self
            .threads()
            .continue_as(&id, caller.auth.key, Instant::now())
        {
            Ok(entry) => entry,
            Err(Refusal::Unknown | Refusal::NotYours) => {
                return Ok(refusal(format!(
                    "No thread `{id}` is kept for this API key: it never existed, belongs to \
                     another key, or expired after MCP_THREAD_IDLE_SECS unused. Start a new \
                     thread with `codex`."
                )))
            }
        };
        let conversation = Conversation {
            items: vec![Item::User {
                parts: vec![Part::Text(params.prompt)],
            }],
        };
        let transcript = transcript(&conversation);
        let turn = Turn {
            thread: ThreadUse::Continue(id.clone()),
            ..Turn::new(
                conversation,
                None,
                &crate::structured::ResponseFormat::Text,
                None,
                None,
            )
        };
        let model = crate::config::DEFAULT_MODEL_ID;
        let answer = self
            .answer(&ctx, &caller, Some(entry.account), model, transcript, turn)
            .await;
        let mut threads = self.threads();
        threads.touch(&id, Instant::now());
        // The thread is gone in codex (its app-server restarted): forget it here too.
        if !self
            .state
            .accounts
            .iter()
            .any(|a| a.backend.holds_thread(&id))
        {
            threads.remove(&id);
        }
        Ok(answered(answer, Some(id)))
    }
}

#[tool_handler(router = self.tool_router, name = "codex-openai-proxy")]
impl ServerHandler for CodexTools {}

/// Who called, read from the HTTP request the MCP message came in (the key check put it there).
struct Caller {
    auth: Authorized,
    remote: RemoteAddr,
}

impl Caller {
    fn of(ctx: &RequestContext<RoleServer>) -> Self {
        let parts = ctx.extensions.get::<poem::http::request::Parts>();
        let get = |parts: &poem::http::request::Parts| {
            Some((
                *parts.extensions.get::<Authorized>()?,
                parts.extensions.get::<RemoteAddr>()?.clone(),
            ))
        };
        let (auth, remote) = parts.and_then(get).unwrap_or((
            // Only a message that did not come over HTTP lacks them; the endpoint always
            // checks the key first.
            Authorized {
                key: None,
                account: None,
            },
            RemoteAddr(poem::Addr::Custom("mcp", "".into())),
        ));
        Caller { auth, remote }
    }
}

impl CodexTools {
    fn threads(&self) -> std::sync::MutexGuard<'_, Threads> {
        self.threads.lock().expect("mcp threads lock")
    }

    /// Lets threads the registry dropped go in codex.
    fn let_go(&self, gone: Vec<(String, usize)>) {
        let_go(&self.state, gone);
    }

    /// Runs `turn` (whose conversation, as the exec prompt, is `transcript`) as a request of `caller`'s (on `account` when the thread lives there) and
    /// returns codex's answer, sending its reasoning as progress; the client cancelling the
    /// call stops codex.
    async fn answer(
        &self,
        ctx: &RequestContext<RoleServer>,
        caller: &Caller,
        account: Option<usize>,
        model: &str,
        transcript: Arc<str>,
        turn: Turn,
    ) -> Result<String, ProxyError> {
        let options = Options {
            reasoning_output: crate::translate::ReasoningOutput::ReasoningContent,
            native_tools: self.state.backend().takes_items(),
            report_commands: true,
            ..Options::default()
        };
        let mut outcome = run::counted(&self.state, model);
        let run_caller = run::Caller {
            account: account.or(caller.auth.account),
            chat_id: None,
        };
        let started = run::start(
            &self.state,
            &caller.remote,
            run_caller,
            turn,
            transcript,
            options,
            &mut outcome,
        );
        let deltas = tokio::select! {
            started = started => started,
            () = ctx.ct.cancelled() => Err(cancelled()),
        };
        let deltas = match deltas {
            Ok(deltas) => deltas,
            Err(err) => {
                run::refused(&mut outcome, err.status().as_u16());
                return Err(err);
            }
        };
        let mut deltas = std::pin::pin!(deltas);
        let mut progress = Progress::new(ctx);
        let mut answer = String::new();
        loop {
            let delta = tokio::select! {
                delta = deltas.next() => delta,
                // Dropping the deltas stops codex, as a client leaving a chat request does.
                () = ctx.ct.cancelled() => {
                    tracing::info!("the MCP client cancelled the call; stopping codex");
                    return Err(cancelled());
                }
            };
            match delta {
                Some(Delta::Reasoning(text)) => progress.reasoning(&text).await,
                Some(Delta::Content(text)) => {
                    progress.answering().await;
                    answer.push_str(&text);
                }
                Some(Delta::Ran { command, exit_code }) => progress.ran(&command, exit_code).await,
                Some(Delta::ToolCall(_)) => {}
                Some(Delta::Finish { .. }) => return Ok(answer),
                Some(Delta::Failed(err)) => return Err(err),
                None => return Err(ProxyError::codex_failed("codex ended without an answer")),
            }
        }
    }
}

/// Where a `codex` call asks to work (`cwd`) and in which sandbox: only in agent mode, only
/// inside `CODEX_WORKDIR`, never more open than `CODEX_SANDBOX`.
fn place(
    config: &crate::config::Config,
    cwd: Option<String>,
    sandbox: Option<String>,
) -> Result<(Option<std::path::PathBuf>, Option<crate::config::Sandbox>), String> {
    use crate::config::{Sandbox, ToolsMode};
    if (cwd.is_some() || sandbox.is_some()) && config.codex_tools != ToolsMode::Agent {
        return Err(
            "`cwd` and `sandbox` are for agent mode, and this server runs codex in chat mode              (CODEX_TOOLS=chat: no commands, no files): leave them out."
                .into(),
        );
    }
    let sandbox = match sandbox {
        None => None,
        Some(name) => {
            let asked: Sandbox = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| {
                    format!(
                        "`sandbox` is read-only, workspace-write or danger-full-access, not {name:?}."
                    )
                })?;
            if asked > config.codex_sandbox {
                return Err(format!(
                    "`sandbox` may not be more open than this server's CODEX_SANDBOX ({}); ask for it or a stricter one.",
                    config.codex_sandbox.as_arg()
                ));
            }
            Some(asked)
        }
    };
    let workdir = match cwd {
        None => None,
        Some(cwd) => {
            let Some(root) = &config.codex_workdir else {
                return Err(
                    "`cwd` needs the server to set CODEX_WORKDIR, the directory codex may work in; leave it out.".into(),
                );
            };
            let outside = || {
                format!(
                    "`cwd` must be a directory inside CODEX_WORKDIR ({}), and {cwd:?} is not.",
                    root.display()
                )
            };
            let root = root.canonicalize().map_err(|_| outside())?;
            let dir = root.join(&cwd).canonicalize().map_err(|_| outside())?;
            if !dir.starts_with(&root) || !dir.is_dir() {
                return Err(outside());
            }
            Some(dir)
        }
    };
    Ok((workdir, sandbox))
}

/// A call's conversation as the exec prompt: what its size is checked by, and what usage is
/// estimated from when codex reports none.
fn transcript(conversation: &Conversation) -> Arc<str> {
    Arc::from(crate::prompt::transcript(conversation, None))
}

/// Lets threads the registry dropped go in codex, on the account that holds each.
pub fn let_go(state: &AppState, gone: Vec<(String, usize)>) {
    for (id, account) in gone {
        if let Some(account) = state.accounts.iter().nth(account) {
            tracing::debug!(thread = %id, "an MCP thread expired; letting it go");
            account.backend.forget_thread(&id);
        }
    }
}

fn cancelled() -> ProxyError {
    ProxyError::ClientGone
}

/// A tool error the agent can act on (`isError: true`), never a protocol error.
fn refusal(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// The tool's result: the answer as text and structured content, or the failure as a tool
/// error in OpenAI's words.
fn answered(answer: Result<String, ProxyError>, thread_id: Option<String>) -> CallToolResult {
    match answer {
        Ok(content) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(content.clone())]);
            result.structured_content =
                serde_json::to_value(CodexOutput { thread_id, content }).ok();
            result
        }
        Err(err) => refusal(match err.code() {
            Some(code) => format!("{} ({code})", err.message()),
            None => err.message(),
        }),
    }
}

/// MCP progress notifications for one call, when the client asked for them (a progress token):
/// codex's reasoning summary as it comes, at most every [`PROGRESS_EVERY`], then that the
/// answer is being written.
struct Progress<'a> {
    ctx: &'a RequestContext<RoleServer>,
    token: Option<rmcp::model::ProgressToken>,
    step: f64,
    pending: String,
    last: Instant,
    answering: bool,
}

impl<'a> Progress<'a> {
    fn new(ctx: &'a RequestContext<RoleServer>) -> Self {
        Progress {
            token: ctx.meta.get_progress_token(),
            ctx,
            step: 0.0,
            pending: String::new(),
            // The first words wait as long as any: a word or two says nothing.
            last: Instant::now(),
            answering: false,
        }
    }

    async fn reasoning(&mut self, text: &str) {
        if self.token.is_none() {
            return;
        }
        self.pending.push_str(text);
        if self.last.elapsed() >= PROGRESS_EVERY {
            let message = std::mem::take(&mut self.pending);
            self.send(message).await;
        }
    }

    /// A command codex ran: said at once, after the reasoning that led to it.
    async fn ran(&mut self, command: &str, exit_code: Option<i64>) {
        if self.token.is_none() {
            return;
        }
        if !self.pending.trim().is_empty() {
            let message = std::mem::take(&mut self.pending);
            self.send(message).await;
        }
        let status = exit_code.map_or_else(String::new, |code| format!(" (exit {code})"));
        self.send(format!("ran `{command}`{status}")).await;
    }

    async fn answering(&mut self) {
        if self.answering || self.token.is_none() {
            return;
        }
        self.answering = true;
        if !self.pending.trim().is_empty() {
            let message = std::mem::take(&mut self.pending);
            self.send(message).await;
        }
        self.send("codex is writing its answer".into()).await;
    }

    async fn send(&mut self, message: String) {
        let Some(token) = self.token.clone() else {
            return;
        };
        let message = message.trim().to_owned();
        if message.is_empty() {
            return;
        }
        self.step += 1.0;
        self.last = Instant::now();
        let progress = ProgressNotificationParam::new(token, self.step).with_message(message);
        if let Err(err) = self.ctx.peer.notify_progress(progress).await {
            tracing::debug!("an MCP progress notification was not sent: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Sandbox};

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn a_call_works_where_agent_mode_lets_it_and_never_more_openly() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("repo")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let workdir = root.path().display().to_string();
        let agent = config(&[
            ("CODEX_TOOLS", "agent"),
            ("CODEX_WORKDIR", &workdir),
            ("CODEX_SANDBOX", "workspace-write"),
        ]);
        let repo = root.path().join("repo").canonicalize().unwrap();
        let at = |cwd: &str, sandbox: Option<&str>| {
            place(&agent, Some(cwd.to_owned()), sandbox.map(str::to_owned))
        };
        assert_eq!(
            at("repo", Some("read-only")),
            Ok((Some(repo.clone()), Some(Sandbox::ReadOnly)))
        );
        assert_eq!(
            at(&repo.display().to_string(), None),
            Ok((Some(repo), None))
        );
        assert_eq!(place(&agent, None, None), Ok((None, None)));
        for (cwd, sandbox, says) in [
            ("..", None, "inside CODEX_WORKDIR"),
            ("repo/../..", None, "inside CODEX_WORKDIR"),
            ("missing", None, "inside CODEX_WORKDIR"),
            (
                outside.path().to_str().unwrap(),
                None,
                "inside CODEX_WORKDIR",
            ),
            (
                "repo",
                Some("danger-full-access"),
                "more open than this server's CODEX_SANDBOX (workspace-write)",
            ),
            (
                "repo",
                Some("yolo"),
                "read-only, workspace-write or danger-full-access",
            ),
        ] {
            let err = at(cwd, sandbox).unwrap_err();
            assert!(err.contains(says), "{cwd} {sandbox:?}: {err}");
        }
        let chat = config(&[("CODEX_WORKDIR", &workdir)]);
        assert!(place(&chat, Some("repo".into()), None)
            .unwrap_err()
            .contains("chat mode"));
        let no_workdir = config(&[("CODEX_TOOLS", "agent")]);
        assert!(place(&no_workdir, Some("repo".into()), None)
            .unwrap_err()
            .contains("needs the server to set CODEX_WORKDIR"));
    }
}
