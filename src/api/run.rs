//! The run behind every API: the prompt's size checked, a codex slot taken, codex started, and
//! its events driven to their end by a task of their own, as deltas no API owns. Each API
//! converts its request into a [`Turn`] and [`Options`] and renders the deltas its own way.

use std::sync::Arc;

use futures_util::{future::BoxFuture, FutureExt, Stream, StreamExt};
use poem::web::RemoteAddr;
use tokio::{
    sync::{mpsc, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::AppState;
use crate::{
    accounts::{affinity, Accounts, Lease, Route, Verdict},
    codex::{RunStream, Turn, TurnInput},
    config::Limits,
    error::ProxyError,
    metrics::{AccountMetrics, GaugeGuard, Metrics, RequestOutcome, RunGuard},
    translate::{Delta, Options, Translator},
    usage::{count_tokens_up_to, Counted},
};

/// The `model` label of requests for a model this server does not list.
const UNKNOWN_MODEL: &str = "unknown";

/// The request's count in `/metrics`, labelled with its model when the server lists it. The
/// run takes it over once started; a request that fails before settles it with [`refused`].
pub fn counted(state: &AppState, model: &str) -> Option<RequestOutcome> {
    let label = match state.config.resolve_model(model, &state.backend().models()) {
        Some(_) => model,
        None => UNKNOWN_MODEL,
    };
    Some(state.metrics.request(label))
}

/// Answers a request for `model` with `answer`, counted in `/metrics` either way: by the run
/// once `answer` starts one, or here with the status of a refusal before that.
pub async fn answered<T>(
    state: &AppState,
    model: &str,
    answer: impl AsyncFnOnce(&mut Option<RequestOutcome>) -> Result<T, super::error::ApiError>,
) -> Result<T, super::error::ApiError> {
    let mut outcome = counted(state, model);
    let result = answer(&mut outcome).await;
    if let Err(err) = &result {
        refused(&mut outcome, err.0.status().as_u16());
    }
    result
}

/// Counts a request that failed before its run started (which would own the count).
pub fn refused(outcome: &mut Option<RequestOutcome>, status: u16) {
    if let Some(outcome) = outcome.as_mut() {
        outcome.ended_with(status);
    }
}

/// Starts `turn` for the request from `remote`: refuses a prompt (`transcript`) over
/// `MAX_PROMPT_TOKENS`, waits for a slot (giving up if the client leaves first), starts codex,
/// and returns the run's deltas. The run owns `outcome` from here on: it counts the request
/// with the status the run ends with.
pub async fn start(
    state: &Arc<AppState>,
    remote: &RemoteAddr,
    caller: Caller,
    turn: Turn,
    transcript: Arc<str>,
    options: Options,
    outcome: &mut Option<RequestOutcome>,
) -> Result<impl Stream<Item = Delta> + Send + 'static, ProxyError> {
    check_prompt_size(
        &transcript,
        state.config.limits.max_prompt_tokens,
        &state.counting,
    )
    .await?;
    let client_gone = {
        let (connections, remote) = (state.connections.clone(), remote.clone());
        move || {
            let (connections, remote) = (connections.clone(), remote.clone());
            async move { connections.client_gone(&remote).await }
        }
    };
    let permit = tokio::select! {
        permit = take_slot(state) => permit?,
        () = client_gone() => return Err(ProxyError::ClientGone),
    };
    let mut placement = Placement::new(state, caller, &turn);
    let on = placement.start(turn).await?;
    Ok(deltas(
        Run {
            on,
            placement,
            permit,
            _run: state.metrics.run(),
            metrics: state.metrics.clone(),
            limits: state.config.limits.clone(),
            client_gone: client_gone().boxed(),
            stop_runs: state.stop_runs.clone(),
            outcome: outcome.take().expect("a run is started once"),
        },
        transcript,
        options,
    ))
}

/// Who a request comes from, for choosing its account.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The account the request's API key is bound to.
    pub account: Option<usize>,
    /// `X-OpenWebUI-Chat-Id`: the conversation, as OpenWebUI names it.
    pub chat_id: Option<String>,
}

impl Caller {
    pub fn new(auth: &super::auth::Authorized, chat_id: Option<String>) -> Self {
        Caller {
            account: auth.account,
            chat_id,
        }
    }
}

/// Where a turn runs: the account the pool picks, and once, when that account refuses it
/// before the client got anything (a usage limit, a broken login), another one.
struct Placement {
    accounts: Arc<Accounts>,
    metrics: Arc<Metrics>,
    route: Route,
    /// The turn again, kept only while another account could take it.
    spare: Option<Turn>,
    /// The accounts that refused it.
    tried: Vec<usize>,
}

/// A turn running on an account.
struct OnAccount {
    events: RunStream,
    lease: Lease,
    metrics: AccountMetrics,
    _running: GaugeGuard,
}

/// Why a turn did not start: no account could take it, or the one picked refused it.
enum Refused {
    NoAccount(ProxyError),
    ByAccount(Lease, ProxyError),
}

impl Placement {
    fn new(state: &AppState, caller: Caller, turn: &Turn) -> Self {
        let conversation = match &turn.input {
            TurnInput::Items { conversation, .. } => Some(conversation),
            TurnInput::Prompt { .. } => None,
        };
        let route = Route {
            bound: caller.account,
            conversation: affinity::conversation_key(caller.chat_id.as_deref(), conversation),
        };
        // A bound key's turn has nowhere else to go, nor has the turn of a pool of one.
        let may_move = state.accounts.len() > 1 && route.bound.is_none();
        Placement {
            accounts: state.accounts.clone(),
            metrics: state.metrics.clone(),
            route,
            spare: may_move.then(|| turn.clone()),
            tried: Vec::new(),
        }
    }

    /// Starts `turn`, on a second account if the first refuses it.
    async fn start(&mut self, turn: Turn) -> Result<OnAccount, ProxyError> {
        let (lease, err) = match self.launch(turn).await {
            Ok(on) => return Ok(on),
            Err(Refused::NoAccount(err)) => return Err(err),
            Err(Refused::ByAccount(lease, err)) => (lease, err),
        };
        let Some(turn) = self.move_from(&lease, &err) else {
            return Err(err);
        };
        drop(lease);
        self.launch(turn)
            .await
            .map_err(|refused| self.last_word(refused))
    }

    /// After `lease`'s account failed the turn with `err`, before the client got anything:
    /// the turn to start again on another account, if it may move.
    fn move_from(&mut self, lease: &Lease, err: &ProxyError) -> Option<Turn> {
        let moved = self.accounts.settle(lease, Err(err)) == Verdict::Moved;
        let turn = self.spare.take().filter(|_| moved)?;
        self.tried.push(lease.index);
        tracing::info!(account = %lease.account.name, "codex account refused the turn before any answer; trying another: {err}");
        Some(turn)
    }

    /// The error a second refusal ends the request with: the pool's word when no account was
    /// left (every one limited, the first reset its `Retry-After`), else the second account's.
    fn last_word(&self, refused: Refused) -> ProxyError {
        match refused {
            Refused::NoAccount(err) => err,
            Refused::ByAccount(lease, err) => {
                self.accounts.settle(&lease, Err(&err));
                err
            }
        }
    }

    async fn launch(&self, turn: Turn) -> Result<OnAccount, Refused> {
        let lease = self
            .accounts
            .pick(&self.route, &self.tried)
            .map_err(Refused::NoAccount)?;
        let metrics = self.metrics.account(&lease.account.name);
        let running = metrics.run();
        tracing::debug!(account = %lease.account.name, "codex account chosen");
        match lease.account.backend.run(turn).await {
            Ok(events) => Ok(OnAccount {
                events,
                lease,
                metrics,
                _running: running,
            }),
            Err(err) => {
                metrics.failed(err.code().unwrap_or("error"));
                Err(Refused::ByAccount(lease, err))
            }
        }
    }
}

/// Waits up to `QUEUE_TIMEOUT_SECS` for one of the `MAX_CONCURRENCY` codex slots.
async fn take_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ProxyError> {
    let limits = &state.config.limits;
    let _queued = state.metrics.queued();
    match tokio::time::timeout(limits.queue_timeout, state.slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            tracing::warn!(
                slots = limits.max_concurrency,
                "every codex slot is busy; refusing with 429"
            );
            Err(ProxyError::Overloaded {
                slots: limits.max_concurrency,
                waited_secs: limits.queue_timeout.as_secs(),
            })
        }
    }
}

/// Refuses a prompt over `MAX_PROMPT_TOKENS` before any process starts. A token is at least one
/// byte, so only a prompt longer in bytes than the limit needs counting; that counting stops
/// once past the limit, and runs off the async threads, a few at a time (`counting`).
async fn check_prompt_size(
    prompt: &Arc<str>,
    limit: u64,
    counting: &Semaphore,
) -> Result<(), ProxyError> {
    if prompt.len() as u64 <= limit {
        return Ok(());
    }
    let _turn = counting.acquire().await.expect("never closed");
    let text = prompt.clone();
    let counted = tokio::task::spawn_blocking(move || count_tokens_up_to(&text, limit))
        .await
        .unwrap_or(Counted::MoreThan(u64::MAX));
    match counted {
        Counted::Exactly(_) => Ok(()),
        Counted::MoreThan(tokens) => Err(ProxyError::PromptTooLong { tokens, limit }),
    }
}

/// A started codex run and everything it holds until its reply ends.
struct Run {
    on: OnAccount,
    placement: Placement,
    /// The codex slot; released when the reply's stream ends or is dropped.
    permit: OwnedSemaphorePermit,
    /// Counts the run as running and times it, until the reply ends.
    _run: RunGuard,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// Resolves if the client closes its connection first.
    client_gone: BoxFuture<'static, ()>,
    /// Cancelled when the server stops for good.
    stop_runs: CancellationToken,
    /// The request's count in `/metrics`, with the status the run ends with.
    outcome: RequestOutcome,
}

/// How many deltas may wait for the client to take them.
const DELTA_BUFFER: usize = 64;

/// The deltas of one run, ending with its terminal delta. The run is driven by a task of its
/// own, so its deadlines fire whether or not the client reads: the run stops, and its process
/// group is killed, when the reply is dropped, a deadline passes, the client leaves or leaves
/// its reply unread for `CODEX_IDLE_TIMEOUT_SECS`, or the server stops.
fn deltas(
    run: Run,
    prompt: Arc<str>,
    options: Options,
) -> impl Stream<Item = Delta> + Send + 'static {
    let (tx, mut rx) = mpsc::channel(DELTA_BUFFER);
    tokio::spawn(drive(run, prompt, options, tx).instrument(Span::current()));
    async_stream::stream! {
        while let Some(delta) = rx.recv().await {
            yield delta;
        }
    }
}

/// Runs `run` to its end, sending each delta to `tx`.
async fn drive(run: Run, prompt: Arc<str>, options: Options, tx: mpsc::Sender<Delta>) {
    let Run {
        mut on,
        mut placement,
        permit: _permit,
        _run,
        metrics,
        limits,
        mut client_gone,
        stop_runs,
        mut outcome,
    } = run;
    let mut translator = Translator::with_options(prompt.clone(), options.clone());
    // Whether the client has been sent anything: until then a refused turn may move.
    let mut sent_any = false;
    let deadline = Instant::now() + limits.codex_timeout;
    // The last word of a run that is being stopped: sent only if there is room for it.
    let last_word = |outcome: &mut RequestOutcome, err: ProxyError| {
        outcome.ended_with(err.status().as_u16());
        let _ = tx.try_send(Delta::Failed(err));
    };
    loop {
        let silence_ends = Instant::now() + limits.codex_idle_timeout;
        let wake = deadline.min(silence_ends);
        let next = tokio::select! {
            biased;
            () = &mut client_gone => {
                tracing::info!("the client closed the connection; stopping codex");
                return last_word(&mut outcome, ProxyError::ClientGone);
            }
            () = tx.closed() => return,
            () = stop_runs.cancelled() => {
                tracing::warn!("the server is stopping; ending this request");
                return last_word(&mut outcome, ProxyError::ShuttingDown);
            }
            next = tokio::time::timeout_at(wake, on.events.next()) => next,
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => {
                let message = if wake == deadline {
                    format!(
                        "codex did not finish within {} s (CODEX_TIMEOUT_SECS) and was stopped.",
                        limits.codex_timeout.as_secs()
                    )
                } else {
                    format!(
                        "codex was silent for {} s (CODEX_IDLE_TIMEOUT_SECS) and was stopped.",
                        limits.codex_idle_timeout.as_secs()
                    )
                };
                tracing::warn!("{message}");
                return last_word(&mut outcome, ProxyError::Timeout(message));
            }
        };
        let mut moving = None;
        for delta in translator.on_run_event(event) {
            // A spent plan's failure says when the plan resets, from the limits codex reported.
            let delta =
                match delta {
                    Delta::Failed(err) => Delta::Failed(err.with_plan_reset(
                        on.lease.account.backend.plan_limits().and_then(|limits| {
                            limits.seconds_until_usable(super::chat::unix_now())
                        }),
                    )),
                    other => other,
                };
            match &delta {
                Delta::Finish { usage, .. } => {
                    metrics.tokens(usage);
                    on.metrics.tokens(usage);
                    placement.accounts.settle(&on.lease, Ok(()));
                    outcome.ended_with(200);
                }
                Delta::Failed(err) => {
                    on.metrics.failed(err.code().unwrap_or("error"));
                    if sent_any {
                        placement.accounts.settle(&on.lease, Err(err));
                    } else if let Some(turn) = placement.move_from(&on.lease, err) {
                        moving = Some(turn);
                        break;
                    }
                    outcome.ended_with(err.status().as_u16());
                }
                _ => {}
            }
            let terminal = delta.is_terminal();
            match tokio::time::timeout(limits.codex_idle_timeout, tx.send(delta)).await {
                Ok(Ok(())) => sent_any = true,
                // The reply was dropped: nobody is listening any more.
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::info!(
                        "the client has not read its reply for {} s (CODEX_IDLE_TIMEOUT_SECS); stopping codex",
                        limits.codex_idle_timeout.as_secs()
                    );
                    return;
                }
            }
            if terminal {
                return;
            }
        }
        if let Some(turn) = moving {
            match placement.launch(turn).await {
                Ok(next) => {
                    // The refused run stops here, its account's lease with it.
                    on = next;
                    translator = Translator::with_options(prompt.clone(), options.clone());
                }
                Err(refused) => {
                    let err = placement.last_word(refused);
                    return last_word(&mut outcome, err);
                }
            }
        }
    }
    let err = ProxyError::codex_failed("codex output ended without an exit status");
    outcome.ended_with(err.status().as_u16());
    let _ = tx.send(Delta::Failed(err)).await;
}
