//! codex-openai-proxy: the local OpenAI `codex` CLI served as an OpenAI-compatible HTTP API.
//!
//! `main` only loads the configuration and calls [`serve`]; tests build the same application
//! with [`app`] and a backend of their choosing.

pub mod accounts;
pub mod api;
pub mod codex;
pub mod config;
pub mod connection;
pub mod conversation;
pub mod doctor;
pub mod error;
pub mod exposure;
pub mod ids;
pub mod images;
pub mod metrics;
pub mod prompt;
pub mod reset_time;
pub mod server;
pub mod structured;
pub mod tools;
pub mod translate;
pub mod usage;

use std::sync::Arc;

use poem::{Endpoint, Response};
use tokio_util::sync::CancellationToken;

use crate::{
    accounts::{Account, Accounts},
    api::AppState,
    codex::{AppServerBackend, ExecBackend, SharedBackend},
    config::{BackendKind, Config},
    connection::ConnectionRegistry,
    metrics::Metrics,
    server::ServeOptions,
};

/// The application for `config`, running codex through `backend` as its one account;
/// `connections` lets requests notice a client leaving (it stays empty when tests call the app
/// in process), and cancelling `stop_runs` ends every running request with an error its client
/// can read.
pub fn app_with_backend(
    config: Config,
    backend: SharedBackend,
    connections: Arc<ConnectionRegistry>,
    metrics: Arc<Metrics>,
    stop_runs: CancellationToken,
    login: codex::app_server::SharedLogin,
) -> impl Endpoint<Output = Response> {
    let accounts = Arc::new(Accounts::single(backend));
    let draining = stop_runs.child_token();
    app_with_accounts(
        config,
        accounts,
        connections,
        metrics,
        (stop_runs, draining),
        login,
    )
}

/// `stopping`: the token cancelled when the server stops for good, and the one cancelled when
/// it starts to stop.
fn app_with_accounts(
    config: Config,
    accounts: Arc<Accounts>,
    connections: Arc<ConnectionRegistry>,
    metrics: Arc<Metrics>,
    (stop_runs, draining): (CancellationToken, CancellationToken),
    login: codex::app_server::SharedLogin,
) -> impl Endpoint<Output = Response> {
    api::routes(Arc::new(AppState::new(
        config,
        accounts,
        connections,
        metrics,
        stop_runs,
        draining,
        login,
    )))
}

/// The application for `config`, running codex with the backend `CODEX_BACKEND` names, one
/// per account. The app-server backend starts its processes at once, so this needs a running
/// tokio runtime.
pub fn app(config: Config) -> impl Endpoint<Output = Response> {
    let stop_runs = CancellationToken::new();
    let draining = stop_runs.child_token();
    app_watching(config, Arc::default(), (stop_runs, draining))
}

fn app_watching(
    config: Config,
    connections: Arc<ConnectionRegistry>,
    stopping: (CancellationToken, CancellationToken),
) -> impl Endpoint<Output = Response> {
    let metrics = Arc::new(Metrics::new());
    codex::VersionProbe::at_start_up(&config.codex_path, config.accounts[0].home.as_deref());
    // codex's login, found at start-up: the app-server asks its own process after each start;
    // for exec a short-lived app-server is asked once. `/health` shows the first account's.
    let first_login = codex::app_server::SharedLogin::default();
    let accounts = config
        .accounts
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let config = config.for_account(spec);
            let login = match i {
                0 => first_login.clone(),
                _ => codex::app_server::SharedLogin::default(),
            };
            let backend: SharedBackend = match config.codex_backend {
                BackendKind::Exec => {
                    codex::app_server::check_login(&config, login);
                    Arc::new(ExecBackend::new(&config))
                }
                BackendKind::AppServer => Arc::new(AppServerBackend::new(
                    &config,
                    metrics.app_server(&spec.name),
                    login,
                )),
            };
            Account::new(spec.name.clone(), spec.home.clone(), backend)
        })
        .collect();
    let accounts = Arc::new(Accounts::new(accounts));
    app_with_accounts(
        config,
        accounts,
        connections,
        metrics,
        stopping,
        first_login,
    )
}

/// Sets up logging at `config.log_level` on stderr.
pub fn init_tracing(config: &Config) {
    // The MCP SDK logs every session's start and end at info: at a bare level, only its
    // warnings show (a filter that names crates is taken as written).
    let directive = match config.log_level.contains('=') {
        true => config.log_level.clone(),
        false => format!("{},rmcp=warn", config.log_level),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directive)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log_json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Binds `HOST:PORT` and serves until SIGINT or SIGTERM, then lets running requests finish for
/// up to `SHUTDOWN_GRACE_SECS`.
pub async fn serve(config: Config) -> std::io::Result<()> {
    // Installed before the address is announced, so a signal sent right after start-up is
    // already a graceful shutdown.
    let shutdown = shutdown_signal()?;
    // Cancelled as the shutdown starts: streams that never end on their own close then.
    let draining = CancellationToken::new();
    let shutdown = {
        let draining = draining.clone();
        async move {
            shutdown.await;
            draining.cancel();
        }
    };
    let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
    let options = ServeOptions::new(&config.limits);
    // Before the address line: whoever waits for that line has seen the warnings too.
    warn_about_exposure(&config);
    let addr = listener.local_addr()?;
    tracing::info!(
        max_connections = options.max_connections,
        "listening on http://{addr} (docs at http://{addr}/docs)"
    );
    let connections = Arc::new(ConnectionRegistry::default());
    let stop_runs = CancellationToken::new();
    let app = app_watching(config, connections.clone(), (stop_runs.clone(), draining));
    server::run(listener, app, connections, options, shutdown, stop_runs).await;
    // Whatever is still open ends here: returning drops the runtime and with it every response
    // stream, and each stream kills its codex process group.
    tracing::info!("stopped");
    Ok(())
}

/// Says, at start-up, what an open or agent-mode server exposes.
fn warn_about_exposure(config: &Config) {
    for warning in exposure::warnings(config) {
        match warning.level {
            exposure::Level::Danger => tracing::error!(host = %config.host, "{}", warning.message),
            exposure::Level::Warn => tracing::warn!(host = %config.host, "{}", warning.message),
        }
    }
}

fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    })
}
