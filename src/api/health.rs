//! `GET /health`: whether the server can run codex, without running a model.

use std::sync::Arc;

use poem_openapi::{
    payload::{Json, PlainText},
    ApiResponse, OpenApi,
};

use super::{
    response::{CodexHealth, Health, HealthState},
    ApiTags, AppState,
};
use crate::codex::{
    app_server::{login_command, Login},
    versions::{self, Version},
    CodexStatus,
};

/// The login as `/health` names it.
fn login_name(login: &Login) -> String {
    match login {
        Login::ChatGpt { .. } => "chatgpt".into(),
        Login::ApiKey => "api_key".into(),
        Login::Other(kind) => kind.clone(),
        Login::Missing => "missing".into(),
        Login::NotNeeded => "not_needed".into(),
    }
}

pub struct HealthApi {
    pub state: Arc<AppState>,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// codex is installed and answers `--version`.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The server runs but codex cannot be started; `codex.reason` says how to fix it.
    #[oai(status = 503)]
    Degraded(Json<Health>),
}

/// How often `/health` asks codex again for a login it did not have (`codex login` may have
/// been run since).
const LOGIN_RECHECK: std::time::Duration = std::time::Duration::from_secs(10);

impl HealthApi {
    fn accounts(&self) -> Vec<super::response::AccountHealth> {
        self.state
            .accounts
            .views()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn recheck_login(&self) {
        let mut last = self.state.login_rechecked.lock().expect("recheck lock");
        if last.elapsed() >= LOGIN_RECHECK {
            *last = std::time::Instant::now();
            crate::codex::app_server::check_login(&self.state.config, self.state.login.clone());
        }
    }
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check
    ///
    /// Open without an API key. Runs `codex --version`, never a model.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> HealthResponse {
        match self.state.backend().status().await {
            CodexStatus::Ready { path, version } => {
                let login = self.state.login.lock().expect("login lock").clone();
                if login == Some(Login::Missing) {
                    self.recheck_login();
                }
                // Runs, but cannot answer: every request would fail until it is logged in.
                let reason = (login == Some(Login::Missing)).then(|| {
                    format!(
                        "codex is not logged in: run `{}` on the server (or set CODEX_API_KEY)",
                        login_command(&self.state.config)
                    )
                });
                let health = Health {
                    status: if reason.is_some() {
                        HealthState::Degraded
                    } else {
                        HealthState::Ok
                    },
                    codex: CodexHealth {
                        available: true,
                        path: Some(path),
                        version_supported: Version::from_version_line(&version)
                            .map(|v| versions::supported().contains(v)),
                        version: Some(version),
                        supported_versions: versions::supported().to_string(),
                        login: login.as_ref().map(login_name),
                        reason,
                    },
                    plan_limits: self.state.backend().plan_limits().map(Into::into),
                    accounts: self.accounts(),
                };
                match health.status {
                    HealthState::Ok => HealthResponse::Ok(Json(health)),
                    HealthState::Degraded => HealthResponse::Degraded(Json(health)),
                }
            }
            // Logged where the state changes (the probe, the app-server's supervisor), not
            // on every probe of this open endpoint.
            CodexStatus::Unavailable { reason } => HealthResponse::Degraded(Json(Health {
                status: HealthState::Degraded,
                codex: CodexHealth {
                    available: false,
                    path: None,
                    version: None,
                    version_supported: None,
                    supported_versions: versions::supported().to_string(),
                    login: None,
                    reason: Some(reason),
                },
                plan_limits: self.state.backend().plan_limits().map(Into::into),
                accounts: self.accounts(),
            })),
        }
    }

    /// Prometheus metrics
    ///
    /// Open without an API key, like `/health`: requests by model and status
    /// (`codex_proxy_requests_total`), codex runs running and queued, run durations, tokens by
    /// kind.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.state.metrics.render())
    }
}
