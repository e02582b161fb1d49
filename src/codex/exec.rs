//! The `exec` backend: one `codex exec --json` process per turn.

use std::{
    collections::VecDeque,
    ffi::OsString,
    path::{Path, PathBuf},
};

use futures_util::{future::BoxFuture, FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tracing::Instrument;

use super::{
    launch::{codex_env, resolve_program, spawn_codex, VersionProbe},
    lines::{CappedLines, Line},
    process::ProcessGroupGuard,
    Backend, CodexStatus, ExitReport, RunEvent, RunStream, ThreadEvent, Turn, TurnInput,
};
use crate::{
    config::{Config, Sandbox, ToolsMode},
    error::ProxyError,
};

/// Longest stdout or stderr line kept. A longer line is logged and skipped: one runaway line
/// must not grow the proxy's memory without bound.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// How much of codex's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 4 * 1024;

/// What turns codex's own tools off in chat mode, as measured with codex 0.169.0 against a mock
/// model that records the tools it is offered: these remove `exec_command` and `write_stdin`,
/// `web_search`, the goal tools, `view_image`, and `tool_search`. What remains, `apply_patch` and
/// `request_user_input`, cannot reach anything: patches are refused by the read-only sandbox and
/// there is no user to ask in `codex exec`.
pub const CHAT_MODE_OVERRIDES: &[&str] = &[
    "features.shell_tool=false",
    "web_search=\"disabled\"",
    "features.goals=false",
    "features.view_image=false",
    "features.multi_agent=false",
];

/// The switches chat mode adds after every other override.
pub fn chat_overrides(tools: ToolsMode) -> &'static [&'static str] {
    match tools {
        ToolsMode::Chat => CHAT_MODE_OVERRIDES,
        ToolsMode::Agent => &[],
    }
}

/// The sandbox codex runs in: always read-only in chat mode, `CODEX_SANDBOX` in agent mode.
pub fn effective_sandbox(tools: ToolsMode, sandbox: Sandbox) -> Sandbox {
    match tools {
        ToolsMode::Chat => Sandbox::ReadOnly,
        ToolsMode::Agent => sandbox,
    }
}

#[derive(Debug, Clone)]
pub struct ExecBackend {
    codex_path: PathBuf,
    sandbox: Sandbox,
    tools: ToolsMode,
    /// A fixed working directory; `None` gives each run a fresh empty one.
    workdir: Option<PathBuf>,
    /// `-c` overrides for every run.
    overrides: Vec<String>,
    /// `CODEX_HOME` for the child, when the server sets one.
    codex_home: Option<PathBuf>,
    version: std::sync::Arc<VersionProbe>,
}

impl ExecBackend {
    pub fn new(config: &Config) -> Self {
        ExecBackend {
            codex_path: config.codex_path.clone(),
            sandbox: config.codex_sandbox,
            tools: config.codex_tools,
            workdir: config.codex_workdir.clone(),
            overrides: config.codex_config.clone(),
            codex_home: config.codex_home.clone(),
            version: std::sync::Arc::new(VersionProbe::new(
                &config.codex_path,
                config.codex_home.as_deref(),
            )),
        }
    }

    /// The argv after the program name. The prompt is never an argument: `-` makes codex read
    /// it from stdin, which has no size limit, stays out of `ps`, and cannot be taken for a flag.
    pub fn args(&self, turn: &Turn, workdir: &Path, files: &Attachments) -> Vec<OsString> {
        let ceiling = effective_sandbox(self.tools, self.sandbox);
        let sandbox = turn.sandbox.map_or(ceiling, |asked| asked.min(ceiling));
        let mut args: Vec<OsString> = [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--ephemeral",
            "-s",
            sandbox.as_arg(),
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        // `-i` is variadic in codex: each is followed by another flag, never by the prompt.
        for image in &files.images {
            args.push("-i".into());
            args.push(image.into());
        }
        if let Some(schema) = &files.output_schema {
            args.push("--output-schema".into());
            args.push(schema.into());
        }
        // The chat switches come after CODEX_CONFIG so that only CODEX_TOOLS=agent turns the
        // tools back on.
        let chat_switches = chat_overrides(self.tools);
        let effort = turn
            .effort
            .as_ref()
            .map(|effort| format!("model_reasoning_effort=\"{effort}\""));
        let overrides = self.overrides.iter().chain(&effort).map(String::as_str);
        for raw in overrides.chain(chat_switches.iter().copied()) {
            args.push("-c".into());
            args.push(raw.into());
        }
        if let Some(model) = &turn.model {
            args.push("-m".into());
            args.push(model.into());
        }
        args.push("-C".into());
        args.push(workdir.into());
        args.push("-".into());
        args
    }

    fn resolved_path(&self) -> Result<PathBuf, ProxyError> {
        resolve_program(&self.codex_path)
    }

    fn explicit_env(&self) -> Vec<(OsString, OsString)> {
        codex_env(self.codex_home.as_deref())
    }
}

impl Backend for ExecBackend {
    fn run(&self, turn: Turn) -> BoxFuture<'_, Result<RunStream, ProxyError>> {
        let started = self.start(turn);
        async move { started }.boxed()
    }

    fn status(&self) -> BoxFuture<'_, CodexStatus> {
        self.version.status().boxed()
    }
}

impl ExecBackend {
    fn start(&self, mut turn: Turn) -> Result<RunStream, ProxyError> {
        let program = self.resolved_path()?;
        let input = std::mem::replace(&mut turn.input, TurnInput::text(""));
        let (prompt, images) = input.into_prompt();
        let files = Attachments::write(&images, turn.output_schema.as_ref())?;
        let workdir = WorkDir::new(turn.workdir.as_ref().or(self.workdir.as_ref()))?;
        // No pre_exec hook (such as a parent-death signal): it forces a full fork() instead of
        // posix_spawn, which measured 40% fewer requests per second at 16 concurrent. The
        // process group and the stream's guard already end codex on every path but a SIGKILL
        // of the proxy itself, and then codex ends with its turn, its stdout pipe closed.
        let mut child = spawn_codex(
            &program,
            &self.args(&turn, workdir.path(), &files),
            self.explicit_env(),
            Some(workdir.path()),
        )?;
        let group = ProcessGroupGuard::new(child.id());
        tracing::debug!(pid = child.id(), program = %program.display(), "codex started");

        // Written from its own task so a prompt larger than the pipe buffer cannot deadlock
        // against codex's output; dropping the handle closes stdin, which codex waits for.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        tokio::spawn(
            async move {
                if let Err(err) = stdin.write_all(prompt.as_bytes()).await {
                    tracing::warn!(%err, "could not write the prompt to codex");
                }
            }
            .instrument(tracing::Span::current()),
        );
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = tokio::spawn(
            stderr_tail(child.stderr.take().expect("stderr is piped"))
                .instrument(tracing::Span::current()),
        );

        Ok(async_stream::stream! {
            // Held by the stream: dropping the stream (client gone, error) kills the group and
            // removes the working directory.
            let _group = group;
            let _workdir = workdir;
            let _files = files;
            let mut lines = CappedLines::new(stdout, MAX_LINE_BYTES);
            loop {
                match lines.next_line().await {
                    Ok(Some(Line::Complete(bytes))) => {
                        let line = String::from_utf8_lossy(&bytes);
                        let line = line.trim();
                        if line.is_empty() {
                            continue;
                        }
                        match ThreadEvent::parse(line) {
                            Ok(ThreadEvent::Unknown) => tracing::debug!(line, "skipping an unknown codex event"),
                            Ok(event) => yield RunEvent::Event(event),
                            Err(err) => {
                                tracing::warn!(%err, "skipping a line of codex output that is not an event");
                                tracing::debug!(line = %excerpt(line), "the skipped line");
                            }
                        }
                    }
                    Ok(Some(Line::TooLong { .. })) => {
                        tracing::warn!(max = MAX_LINE_BYTES, "skipping a codex output line over the length limit");
                    }
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(%err, "reading codex output failed");
                        break;
                    }
                }
            }
            let code = match child.wait().await {
                Ok(status) => status.code(),
                Err(err) => {
                    tracing::warn!(%err, "waiting for codex failed");
                    None
                }
            };
            let stderr_tail = stderr.await.unwrap_or_default();
            tracing::debug!(?code, "codex exited");
            yield RunEvent::Exited(ExitReport { code, stderr_tail });
        }
        .boxed())
    }
}

fn excerpt(line: &str) -> &str {
    match line.char_indices().nth(200) {
        Some((end, _)) => &line[..end],
        None => line,
    }
}

/// Drains stderr to its end (so codex never blocks on a full pipe), logging each line at debug
/// and keeping the last few KiB for error messages.
pub(super) async fn stderr_tail(stderr: impl AsyncRead + Unpin) -> String {
    let mut lines = CappedLines::keeping_tails(stderr, STDERR_TAIL_BYTES);
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut tail_bytes = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        let bytes = match line {
            Line::Complete(bytes) => bytes,
            // The end of a long line is where codex says what went wrong.
            Line::TooLong { tail } => [b"...".as_slice(), &tail].concat(),
        };
        let line = String::from_utf8_lossy(&bytes).trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        tracing::debug!(line = %excerpt(&line), "codex stderr");
        tail_bytes += line.len();
        tail.push_back(line);
        // The last few KiB of the output: whole lines, and the end of the oldest one kept.
        while tail_bytes > STDERR_TAIL_BYTES && tail.len() > 1 {
            let excess = tail_bytes - STDERR_TAIL_BYTES;
            let front = tail.front_mut().expect("more than one line");
            if front.len() > excess + 64 {
                let mut cut = excess;
                while !front.is_char_boundary(cut) {
                    cut += 1;
                }
                front.replace_range(..cut, "...");
                tail_bytes = tail_bytes - cut + 3;
                break;
            }
            tail_bytes -= tail.pop_front().map_or(0, |l| l.len());
        }
    }
    Vec::from(tail).join("\n")
}

/// The files a turn hands codex (images, the output schema), in a temporary directory of their
/// own (never in `CODEX_WORKDIR`) that is removed with the run.
pub struct Attachments {
    _dir: Option<tempfile::TempDir>,
    images: Vec<PathBuf>,
    output_schema: Option<PathBuf>,
}

impl Attachments {
    /// Writes `images`, and `schema` when given (exec takes the output schema as a file,
    /// app-server inline).
    pub(super) fn write(
        images: &[crate::images::Image],
        schema: Option<&serde_json::Value>,
    ) -> Result<Self, ProxyError> {
        let mut files = Attachments {
            _dir: None,
            images: Vec::new(),
            output_schema: None,
        };
        if images.is_empty() && schema.is_none() {
            return Ok(files);
        }
        let unavailable = |err: std::io::Error| {
            ProxyError::CodexUnavailable(format!("could not write the files for codex: {err}"))
        };
        let dir = tempfile::Builder::new()
            .prefix("codex-files-")
            .tempdir()
            .map_err(unavailable)?;
        for (n, image) in images.iter().enumerate() {
            let path = dir
                .path()
                .join(format!("image-{}.{}", n + 1, image.extension));
            std::fs::write(&path, &image.bytes).map_err(unavailable)?;
            files.images.push(path);
        }
        if let Some(schema) = schema {
            let path = dir.path().join("output-schema.json");
            std::fs::write(&path, schema.to_string()).map_err(unavailable)?;
            files.output_schema = Some(path);
        }
        files._dir = Some(dir);
        Ok(files)
    }

    pub(super) fn image_paths(&self) -> impl Iterator<Item = &Path> {
        self.images.iter().map(PathBuf::as_path)
    }
}

/// Where codex works: `CODEX_WORKDIR`, or a fresh empty directory removed when the run ends.
pub enum WorkDir {
    Fixed(PathBuf),
    Temp(tempfile::TempDir),
}

impl WorkDir {
    pub(super) fn new(fixed: Option<&PathBuf>) -> Result<Self, ProxyError> {
        Ok(match fixed {
            Some(dir) => WorkDir::Fixed(dir.clone()),
            None => WorkDir::Temp(
                tempfile::Builder::new()
                    .prefix("codex-turn-")
                    .tempdir()
                    .map_err(|err| {
                        ProxyError::CodexUnavailable(format!(
                            "could not create a working directory for codex: {err}"
                        ))
                    })?,
            ),
        })
    }

    pub(super) fn path(&self) -> &Path {
        match self {
            WorkDir::Fixed(dir) => dir,
            WorkDir::Temp(temp) => temp.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_end_of_a_long_stderr_line_stays_in_the_tail() {
        let mut stderr = "x".repeat(3 * STDERR_TAIL_BYTES);
        stderr.push_str(" error: the provider refused the request\nlast line\n");
        let tail = stderr_tail(stderr.as_bytes()).await;
        assert!(
            tail.contains("error: the provider refused the request"),
            "{tail}"
        );
        assert!(tail.ends_with("last line"), "{tail}");
        assert!(tail.len() <= 2 * STDERR_TAIL_BYTES + 16, "{}", tail.len());
    }
}
