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
    codex::{RunStream, SharedBackend, Turn},
    config::Limits,
    error::ProxyError,
    metrics::{Metrics, RequestOutcome, RunGuard},
    translate::{Delta, Options, Translator},
    usage::{count_tokens_up_to, Counted},
};

/// The `model` label of requests for a model this server does not list.
const UNKNOWN_MODEL: &str = "unknown";

/// The request's count in `/metrics`, labelled with its model when the server lists it. The
/// run takes it over once started; a request that fails before settles it with [`refused`].
pub fn counted(state: &AppState, model: &str) -> Option<RequestOutcome> {
    let label = match state.config.resolve_model(model, &state.backend.models()) {
        Some(_) => model,
        None => UNKNOWN_MODEL,
    };
    Some(state.metrics.request(label))
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
    let events = state.backend.run(turn).await?;
    Ok(deltas(
        Run {
            events,
            permit,
            _run: state.metrics.run(),
            metrics: state.metrics.clone(),
            limits: state.config.limits.clone(),
            client_gone: client_gone().boxed(),
            stop_runs: state.stop_runs.clone(),
            outcome: outcome.take().expect("a run is started once"),
            backend: state.backend.clone(),
        },
        transcript,
        options,
    ))
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
    events: RunStream,
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
    /// The backend, for the plan limits a usage-limit failure is told about.
    backend: SharedBackend,
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
        mut events,
        permit: _permit,
        _run,
        metrics,
        limits,
        mut client_gone,
        stop_runs,
        mut outcome,
        backend,
    } = run;
    let mut translator = Translator::with_options(prompt, options);
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
            next = tokio::time::timeout_at(wake, events.next()) => next,
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
        for delta in translator.on_run_event(event) {
            // A spent plan's failure says when the plan resets, from the limits codex reported.
            let delta =
                match delta {
                    Delta::Failed(err) => {
                        Delta::Failed(err.with_plan_reset(backend.plan_limits().and_then(
                            |limits| limits.seconds_until_usable(super::chat::unix_now()),
                        )))
                    }
                    other => other,
                };
            match &delta {
                Delta::Finish { usage, .. } => {
                    metrics.tokens(usage);
                    outcome.ended_with(200);
                }
                Delta::Failed(err) => outcome.ended_with(err.status().as_u16()),
                _ => {}
            }
            let terminal = delta.is_terminal();
            match tokio::time::timeout(limits.codex_idle_timeout, tx.send(delta)).await {
                Ok(Ok(())) => {}
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
    }
    let err = ProxyError::codex_failed("codex output ended without an exit status");
    outcome.ended_with(err.status().as_u16());
    let _ = tx.send(Delta::Failed(err)).await;
}
