use std::process::ExitCode;

use codex_openai_proxy::{config::Config, init_tracing, serve};

#[tokio::main]
async fn main() -> ExitCode {
    let doctor = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("doctor") => true,
        Some(other) => {
            eprintln!("codex-openai-proxy: unknown command {other:?}; run it without arguments to serve, or `doctor` to check the codex chain");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("codex-openai-proxy: {err}");
            return ExitCode::from(2);
        }
    };
    if doctor {
        return codex_openai_proxy::doctor::run(config).await;
    }
    init_tracing(&config);
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("server failed: {err}");
            eprintln!("codex-openai-proxy: {err}");
            ExitCode::FAILURE
        }
    }
}
