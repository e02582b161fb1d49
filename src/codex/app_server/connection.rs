//! One running `codex app-server` and the JSON-RPC plumbing around it: a writer task owns its
//! stdin, a reader task parses its stdout and hands each response to the request waiting for it
//! and each turn notification to the run of its thread.

use std::{
    collections::HashMap,
    ffi::OsString,
    path::Path,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, Mutex,
    },
};

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use tokio::{
    io::AsyncWriteExt,
    process::{Child, ChildStdout},
    sync::{mpsc, oneshot, watch},
};
use tracing::Instrument;

use super::protocol::{
    Incoming, Outgoing, RateLimitsUpdated, Request, RpcError, ToolCallParams, ToolCallResult,
    TurnNotification, RATE_LIMITS_UPDATED, TOOL_CALL,
};
use crate::codex::plan_limits::PlanLimits;
use crate::codex::{
    exec::{stderr_tail, MAX_LINE_BYTES},
    launch::spawn_codex,
    lines::{CappedLines, Line},
    process::ProcessGroupGuard,
    ExitReport,
};
use crate::error::ProxyError;

/// What the reader hands the run of a thread.
#[derive(Debug)]
pub enum Routed {
    Notification(TurnNotification),
    /// codex asks for the result of a call of one of the client's tools; `id` is the request's
    /// JSON-RPC id, to answer with [`Connection::answer_tool_call`].
    ToolCall {
        id: Value,
        params: ToolCallParams,
    },
    /// The process ended; no more notifications will come.
    Exited(ExitReport),
}

/// Why a request got no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("codex app-server exited before answering")]
    Closed,
    #[error("codex app-server sent a result this proxy cannot read: {0}")]
    Decode(#[from] serde_json::Error),
}

type Pending = Mutex<HashMap<i64, oneshot::Sender<Result<Value, RpcError>>>>;
type Routes = Mutex<HashMap<String, mpsc::UnboundedSender<Routed>>>;
/// The threads whose runs ended most recently, newest last.
type Ended = Mutex<std::collections::VecDeque<String>>;

/// How many ended threads are remembered: enough for the tool calls still in flight when their
/// runs end, bounded whatever the traffic.
const ENDED_REMEMBERED: usize = 256;

pub struct Connection {
    stdin: mpsc::UnboundedSender<String>,
    next_id: AtomicI64,
    pending: Arc<Pending>,
    routes: Arc<Routes>,
    ended: Arc<Ended>,
    exit: watch::Receiver<Option<ExitReport>>,
    group: Mutex<Option<ProcessGroupGuard>>,
    served: std::sync::atomic::AtomicBool,
    pub pid: Option<u32>,
}

impl Connection {
    /// Starts `program args...` in a process group of its own. The connection is usable at
    /// once; the caller performs the `initialize` handshake.
    pub fn spawn(
        program: &Path,
        args: &[OsString],
        env: Vec<(OsString, OsString)>,
        on_limits: OnLimits,
    ) -> Result<Arc<Connection>, ProxyError> {
        let mut child = spawn_codex(program, args, env, None)?;
        let pid = child.id();
        let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let connection = Arc::new(Connection {
            stdin: stdin_tx,
            next_id: AtomicI64::new(0),
            pending: Arc::default(),
            routes: Arc::default(),
            ended: Arc::default(),
            exit: exit_rx,
            group: Mutex::new(Some(ProcessGroupGuard::new(pid))),
            served: Default::default(),
            pid,
        });
        let span = tracing::info_span!("app_server", pid);
        let mut stdin = child.stdin.take().expect("stdin is piped");
        tokio::spawn(
            async move {
                let mut lines = stdin_rx;
                while let Some(line) = lines.recv().await {
                    let written = async {
                        stdin.write_all(line.as_bytes()).await?;
                        stdin.write_all(b"\n").await?;
                        stdin.flush().await
                    };
                    if let Err(err) = written.await {
                        tracing::warn!(%err, "could not write to codex app-server");
                        break;
                    }
                }
            }
            .instrument(span.clone()),
        );
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = tokio::spawn(
            stderr_tail(child.stderr.take().expect("stderr is piped")).instrument(span.clone()),
        );
        tokio::spawn(
            read_until_exit(
                child,
                stdout,
                stderr,
                ReaderState {
                    pending: connection.pending.clone(),
                    routes: connection.routes.clone(),
                    ended: connection.ended.clone(),
                    stdin: connection.stdin.clone(),
                    on_limits,
                },
                exit_tx,
            )
            .instrument(span),
        );
        Ok(connection)
    }

    /// Sends request `R` and waits for its result.
    pub async fn request<R: Request>(&self, params: &R::Params) -> Result<R::Result, CallError> {
        self.call(R::METHOD, params).await
    }

    /// Sends request `R` without waiting for its result (cleanup from a `Drop`).
    pub fn request_detached<R: Request>(&self, params: &R::Params) {
        self.call_detached(R::METHOD, params);
    }

    /// Answers codex's `item/tool/call` request `id` with the call's result.
    pub fn answer_tool_call(&self, id: &Value, result: ToolCallResult) {
        let reply = serde_json::json!({"id": id, "result": result});
        let _ = self.stdin.send(reply.to_string());
    }

    /// Sends a request and waits for its result.
    async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        // A caller that stops waiting (a timeout) takes its entry with it.
        let _waiting = Waiting {
            pending: &self.pending,
            id,
        };
        if self.has_exited() || !self.send(method, Some(id), Some(serde_json::to_value(params)?)) {
            return Err(CallError::Closed);
        }
        let result = rx.await.map_err(|_| CallError::Closed)??;
        Ok(serde_json::from_value(result)?)
    }

    /// Sends a request whose result nobody waits for.
    fn call_detached<P: Serialize>(&self, method: &str, params: &P) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(params) = serde_json::to_value(params) {
            self.send(method, Some(id), Some(params));
        }
    }

    pub fn notify(&self, method: &str) {
        self.send(method, None, None);
    }

    fn send(&self, method: &str, id: Option<i64>, params: Option<Value>) -> bool {
        let message = Outgoing {
            method: method.to_owned(),
            id,
            params,
        };
        let line = serde_json::to_string(&message).expect("requests serialize");
        self.stdin.send(line).is_ok()
    }

    /// Sends the notifications of `thread_id` to `tx` from now on.
    pub fn route(&self, thread_id: &str, tx: mpsc::UnboundedSender<Routed>) {
        self.routes
            .lock()
            .expect("routes lock")
            .insert(thread_id.to_owned(), tx);
    }

    /// Stops routing `thread_id`, whose run ended: a tool call for it that is still on its
    /// way is left unanswered (the run's interrupt cancelled it) rather than declined.
    pub fn unroute(&self, thread_id: &str) {
        if self
            .routes
            .lock()
            .expect("routes lock")
            .remove(thread_id)
            .is_some()
        {
            let mut ended = self.ended.lock().expect("ended lock");
            if ended.len() == ENDED_REMEMBERED {
                ended.pop_front();
            }
            ended.push_back(thread_id.to_owned());
        }
    }

    /// Records that the process started a thread for a turn: it works, so if it dies later the
    /// cause is a turn, not the set-up, and it is restarted at once.
    pub fn served_a_turn(&self) {
        self.served.store(true, Ordering::Relaxed);
    }

    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Resolves with the exit report when the process ends.
    pub async fn exited(&self) -> ExitReport {
        let mut exit = self.exit.clone();
        let report = match exit.wait_for(Option::is_some).await {
            Ok(report) => report.clone().unwrap_or_default(),
            Err(_) => ExitReport::default(),
        };
        report
    }

    /// Kills the process group (shutdown); the reader then reports the exit.
    pub fn kill(&self) {
        self.group.lock().expect("group lock").take();
    }
}

/// A request's entry in the pending map, removed when its caller is done with it.
struct Waiting<'a> {
    pending: &'a Pending,
    id: i64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.lock().expect("pending lock").remove(&self.id);
    }
}

struct ReaderState {
    pending: Arc<Pending>,
    routes: Arc<Routes>,
    ended: Arc<Ended>,
    stdin: mpsc::UnboundedSender<String>,
    on_limits: OnLimits,
}

/// Where the plan's limits go when codex reports them.
pub type OnLimits = Arc<dyn Fn(PlanLimits) + Send + Sync>;

/// Reads stdout to its end, then reports the exit to everyone still waiting: pending requests
/// fail with `Closed` (their senders drop) and every routed run gets `Exited`.
async fn read_until_exit(
    mut child: Child,
    stdout: ChildStdout,
    stderr: tokio::task::JoinHandle<String>,
    state: ReaderState,
    exit_tx: watch::Sender<Option<ExitReport>>,
) {
    let mut lines = CappedLines::new(stdout, MAX_LINE_BYTES);
    loop {
        match lines.next_line().await {
            Ok(Some(Line::Complete(bytes))) => dispatch(&state, &bytes),
            Ok(Some(Line::TooLong { .. })) => {
                tracing::warn!(
                    max = MAX_LINE_BYTES,
                    "skipping a codex app-server line over the length limit"
                );
            }
            Ok(None) => break,
            Err(err) => {
                tracing::warn!(%err, "reading codex app-server output failed");
                break;
            }
        }
    }
    // stdout closed: the process is ending (or closed it, which is as good as ending).
    let _ = child.start_kill();
    let code = child.wait().await.ok().and_then(|status| status.code());
    let stderr_tail = stderr.await.unwrap_or_default();
    let report = ExitReport { code, stderr_tail };
    state.pending.lock().expect("pending lock").clear();
    let routes = std::mem::take(&mut *state.routes.lock().expect("routes lock"));
    for tx in routes.into_values() {
        let _ = tx.send(Routed::Exited(report.clone()));
    }
    let _ = exit_tx.send(Some(report));
}

fn dispatch(state: &ReaderState, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let message: Incoming = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(err) => {
            tracing::warn!(%err, "skipping a line of codex app-server output that is not JSON-RPC");
            return;
        }
    };
    match message {
        Incoming::Response { id, result } => answer(state, id, Ok(result)),
        Incoming::Error { id, error } => answer(state, id, Err(error)),
        Incoming::ServerRequest { id, method, params } if method == TOOL_CALL => {
            match serde_json::from_value::<ToolCallParams>(params) {
                Ok(params) => {
                    let routes = state.routes.lock().expect("routes lock");
                    if let Some(tx) = routes.get(&params.thread_id) {
                        let _ = tx.send(Routed::ToolCall { id, params });
                        return;
                    }
                    let ended = state.ended.lock().expect("ended lock");
                    if ended.contains(&params.thread_id) {
                        tracing::debug!(
                            "a tool call of a run that ended; its interrupt cancels it"
                        );
                        return;
                    }
                    tracing::debug!("a tool call for a thread no run waits for");
                }
                Err(err) => tracing::warn!(%err, "a tool call this proxy cannot read"),
            }
            decline(state, &id);
        }
        Incoming::ServerRequest { id, method, .. } => {
            // With approvalPolicy "never" codex asks nothing; anything else is declined so the
            // turn does not wait for an answer that never comes.
            tracing::warn!(%method, "declining a request from codex app-server");
            decline(state, &id);
        }
        Incoming::Notification { method, params } if method == RATE_LIMITS_UPDATED => {
            match serde_json::from_value::<RateLimitsUpdated>(params) {
                Ok(update) => (state.on_limits)(update.rate_limits.into_limits()),
                Err(err) => {
                    tracing::debug!(%err, "skipping a rate-limit update this proxy cannot read")
                }
            }
        }
        Incoming::Notification { method, params } => {
            if !TurnNotification::METHODS.contains(&method.as_str()) {
                tracing::trace!(%method, "codex app-server notification");
                return;
            }
            let notification = serde_json::json!({"method": method, "params": params});
            match serde_json::from_value::<TurnNotification>(notification) {
                Ok(notification) => {
                    let routes = state.routes.lock().expect("routes lock");
                    match routes.get(notification.thread_id()) {
                        Some(tx) => {
                            let _ = tx.send(Routed::Notification(notification));
                        }
                        None => {
                            tracing::debug!(%method, "a notification for a thread no run waits for")
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, %method, "skipping a codex app-server notification this proxy cannot read")
                }
            }
        }
    }
}

/// Answers a request from codex that nobody here can answer, so nothing waits for it.
fn decline(state: &ReaderState, id: &Value) {
    let reply = serde_json::json!({
        "id": id,
        "error": {"code": -32601, "message": "not supported by this client"}
    });
    let _ = state.stdin.send(reply.to_string());
}

fn answer(state: &ReaderState, id: i64, result: Result<Value, RpcError>) {
    match state.pending.lock().expect("pending lock").remove(&id) {
        Some(tx) => {
            let _ = tx.send(result);
        }
        None => tracing::debug!(id, "a codex app-server response nobody waits for"),
    }
}
