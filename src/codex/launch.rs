//! How a codex process is started, whichever backend starts it: which program, with which
//! environment, and how `/health` learns its version without running a model.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

use super::CodexStatus;
use crate::error::ProxyError;

/// Variables codex may see. Everything else, the proxy's `API_KEYS` above all, is withheld.
pub const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "CODEX_HOME",
    "CODEX_API_KEY",
    "OPENAI_API_KEY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// The variables codex runs with: the allowed ones from the server's environment, and the
/// configured `CODEX_HOME` over the inherited one.
pub fn codex_env(codex_home: Option<&Path>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = PASSED_ENV
        .iter()
        .filter_map(|name| std::env::var_os(name).map(|value| (OsString::from(name), value)))
        .filter(|(name, _)| codex_home.is_none() || name != "CODEX_HOME")
        .collect();
    if let Some(home) = codex_home {
        env.push(("CODEX_HOME".into(), home.into()));
    }
    env
}

/// `CODEX_PATH` as an executable file, or the error `/health` and requests report.
pub fn resolve_program(codex_path: &Path) -> Result<PathBuf, ProxyError> {
    which::which(codex_path).map_err(|_| {
        let problem = if codex_path.is_file() {
            "is not an executable file (make it executable with chmod +x)"
        } else {
            "was not found"
        };
        ProxyError::CodexUnavailable(format!(
            "The codex CLI could not be started: `{}` {problem}. Install it (`npm install -g @openai/codex`) or set CODEX_PATH to its path.",
            codex_path.display(),
        ))
    })
}

/// Starts codex the way every codex process is started: with `env` only, stdin, stdout and
/// stderr piped, in a process group of its own (so the commands it runs can be killed with it),
/// and killed if its handle is dropped.
pub fn spawn_codex(
    program: &Path,
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    cwd: Option<&Path>,
) -> Result<Child, ProxyError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    command.spawn().map_err(|err| spawn_error(program, &err))
}

/// The error for a codex program that exists but could not be spawned.
fn spawn_error(program: &Path, err: &std::io::Error) -> ProxyError {
    ProxyError::CodexUnavailable(match err.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "The codex CLI at `{}` is not executable (permission denied). Fix its permissions or set CODEX_PATH.",
            program.display()
        ),
        _ => format!(
            "The codex CLI at `{}` could not be started: {err}",
            program.display()
        ),
    })
}

/// How long one `codex --version` answer stands for.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// `codex --version` for `/health`, run at most once per [`PROBE_INTERVAL`] however many ask:
/// `/health` is open to anyone, and a process per probe let a burst of probes start hundreds.
#[derive(Debug)]
pub struct VersionProbe {
    codex_path: PathBuf,
    env: Vec<(OsString, OsString)>,
    last: tokio::sync::Mutex<Option<(Instant, CodexStatus)>>,
}

impl VersionProbe {
    pub fn new(codex_path: &Path, codex_home: Option<&Path>) -> Self {
        VersionProbe {
            codex_path: codex_path.to_owned(),
            env: codex_env(codex_home),
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Probes once at start-up, so that a codex that cannot run, or one outside the tested
    /// range, is in the log before any request.
    pub fn at_start_up(codex_path: &Path, codex_home: Option<&Path>) {
        let probe = VersionProbe::new(codex_path, codex_home);
        tokio::spawn(async move {
            probe.status().await;
        });
    }

    /// The latest answer; callers that arrive while a probe runs wait for its answer.
    pub async fn status(&self) -> CodexStatus {
        let mut last = self.last.lock().await;
        if let Some((at, status)) = last.as_ref() {
            if at.elapsed() < PROBE_INTERVAL {
                return status.clone();
            }
        }
        let status = version_status(&self.codex_path, self.env.clone()).await;
        match &status {
            CodexStatus::Unavailable { reason } => {
                tracing::warn!(%reason, "codex cannot be run");
            }
            CodexStatus::Ready { version, .. } => warn_if_unsupported(version),
        }
        *last = Some((Instant::now(), status.clone()));
        status
    }
}

/// One WARN line for a codex outside the tested range, once per version line the process sees
/// (the start-up probe sees it first).
fn warn_if_unsupported(version_line: &str) {
    static WARNED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    {
        let mut warned = WARNED.lock().expect("warned lock");
        if warned.as_deref() == Some(version_line) {
            return;
        }
        *warned = Some(version_line.to_owned());
    }
    let supported = super::versions::supported();
    match super::versions::Version::from_version_line(version_line) {
        Some(version) if supported.contains(version) => {}
        Some(version) => tracing::warn!(
            %version,
            "codex {version} is outside the versions this server is tested with ({supported}); it may work, or not"
        ),
        None => tracing::warn!(
            line = version_line,
            "`codex --version` printed no version; tested with {supported}"
        ),
    }
}

/// Runs `codex --version`: installed, runnable, and which version.
async fn version_status(codex_path: &Path, env: Vec<(OsString, OsString)>) -> CodexStatus {
    let program = match resolve_program(codex_path) {
        Ok(program) => program,
        Err(err) => {
            return CodexStatus::Unavailable {
                reason: err.message(),
            }
        }
    };
    let output = Command::new(&program)
        .arg("--version")
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(10), output).await {
        Ok(Ok(out)) if out.status.success() => CodexStatus::Ready {
            path: program.display().to_string(),
            version: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        },
        Ok(Ok(out)) => CodexStatus::Unavailable {
            reason: format!(
                "`{} --version` exited with {}: {}",
                program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
        Ok(Err(err)) => CodexStatus::Unavailable {
            reason: format!("`{}` could not be run: {err}", program.display()),
        },
        Err(_) => CodexStatus::Unavailable {
            reason: format!(
                "`{} --version` did not answer within 10 s",
                program.display()
            ),
        },
    }
}
