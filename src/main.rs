use std::process::ExitCode;

use codex_openai_proxy::{config::Config, init_tracing, serve};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("codex-openai-proxy: {err}");
            return ExitCode::from(2);
        }
    };
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
