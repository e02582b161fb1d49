//! Prometheus metrics, served at `/metrics`: requests by model and status, codex runs running and
//! queued, how long runs take, tokens by kind, and with the app-server backend whether its
//! process is up and how often it ended.

use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::{codex::plan_limits::PlanLimits, usage::TokenUsage};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    running: IntGauge,
    queued: IntGauge,
    run_seconds: Histogram,
    tokens: IntCounterVec,
    unknown_paths: IntCounter,
    account_running: IntGaugeVec,
    account_runs: IntCounterVec,
    account_tokens: IntCounterVec,
    account_failures: IntCounterVec,
    app_server: std::sync::OnceLock<AppServerVecs>,
}

impl Metrics {
    pub fn new() -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "codex_proxy_requests_total",
                "Chat completion requests by model and HTTP status",
            ),
            &["model", "status"],
        )
        .expect("valid metric");
        let running = IntGauge::new("codex_proxy_codex_running", "codex runs in progress")
            .expect("valid metric");
        let queued = IntGauge::new(
            "codex_proxy_codex_queued",
            "Requests waiting for a codex slot",
        )
        .expect("valid metric");
        let run_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "codex_proxy_codex_run_seconds",
                "How long codex runs take, start to end",
            )
            .buckets(vec![
                0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
        )
        .expect("valid metric");
        let tokens = IntCounterVec::new(
            Opts::new(
                "codex_proxy_tokens_total",
                "Tokens by kind: prompt, completion, cached, reasoning",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let unknown_paths = IntCounter::new(
            "codex_proxy_unknown_path_requests_total",
            "Requests for a path this server does not serve (the path is logged, not a label)",
        )
        .expect("valid metric");
        let account_running = IntGaugeVec::new(
            Opts::new(
                "codex_proxy_account_running",
                "codex runs in progress on each account",
            ),
            &["account"],
        )
        .expect("valid metric");
        let account_runs = IntCounterVec::new(
            Opts::new(
                "codex_proxy_account_runs_total",
                "codex runs started on each account (a turn tried again on another counts twice)",
            ),
            &["account"],
        )
        .expect("valid metric");
        let account_tokens = IntCounterVec::new(
            Opts::new(
                "codex_proxy_account_tokens_total",
                "Tokens by account and kind: prompt, completion, cached, reasoning",
            ),
            &["account", "kind"],
        )
        .expect("valid metric");
        let account_failures = IntCounterVec::new(
            Opts::new(
                "codex_proxy_account_failures_total",
                "Failed codex runs by account and OpenAI error code (rate_limit_exceeded, codex_unauthenticated, ...)",
            ),
            &["account", "code"],
        )
        .expect("valid metric");
        let registry = Registry::new();
        for metric in [
            Box::new(account_running.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(account_runs.clone()),
            Box::new(account_tokens.clone()),
            Box::new(account_failures.clone()),
            Box::new(unknown_paths.clone()),
            Box::new(requests.clone()),
            Box::new(running.clone()),
            Box::new(queued.clone()),
            Box::new(run_seconds.clone()),
            Box::new(tokens.clone()),
        ] {
            registry.register(metric).expect("metrics register once");
        }
        Metrics {
            registry,
            requests,
            running,
            queued,
            run_seconds,
            tokens,
            unknown_paths,
            account_running,
            account_runs,
            account_tokens,
            account_failures,
            app_server: std::sync::OnceLock::new(),
        }
    }

    /// A request for a path no route serves.
    pub fn unknown_path(&self) {
        self.unknown_paths.inc();
    }

    /// A request for `model`, counted once it is dropped, with the status it ended with: a
    /// stream that fails in band counts with its error's status, not the 200 its headers said.
    pub fn request(&self, model: &str) -> RequestOutcome {
        RequestOutcome {
            requests: self.requests.clone(),
            model: model.to_owned(),
            status: CLIENT_GONE,
        }
    }

    pub fn tokens(&self, usage: &TokenUsage) {
        for (kind, count) in usage_kinds(usage) {
            self.tokens.with_label_values(&[kind]).inc_by(count);
        }
    }

    /// Counts a request as queued until the guard is dropped.
    pub fn queued(&self) -> GaugeGuard {
        GaugeGuard::new(self.queued.clone())
    }

    /// Counts a codex run as running, and times it, until the guard is dropped.
    pub fn run(&self) -> RunGuard {
        RunGuard {
            _running: GaugeGuard::new(self.running.clone()),
            histogram: self.run_seconds.clone(),
            started: Instant::now(),
        }
    }

    /// The app-server backend's gauges for `account`, registered when that backend is first
    /// in use.
    pub fn app_server(&self, account: &str) -> AppServerMetrics {
        let vecs = self.app_server.get_or_init(|| {
            let vecs = AppServerVecs::new();
            for metric in [
                Box::new(vecs.up.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(vecs.exits.clone()),
                Box::new(vecs.plan_used.clone()),
                Box::new(vecs.plan_resets.clone()),
            ] {
                self.registry
                    .register(metric)
                    .expect("app-server metrics register once");
            }
            vecs
        });
        AppServerMetrics {
            up: vecs.up.with_label_values(&[account]),
            exits: vecs.exits.with_label_values(&[account]),
            plan_used: vecs.plan_used.clone(),
            plan_resets: vecs.plan_resets.clone(),
            account: account.to_owned(),
        }
    }

    /// One account's series: its runs, tokens and failures.
    pub fn account(&self, account: &str) -> AccountMetrics {
        AccountMetrics {
            running: self.account_running.with_label_values(&[account]),
            runs: self.account_runs.with_label_values(&[account]),
            tokens: self.account_tokens.clone(),
            failures: self.account_failures.clone(),
            account: account.to_owned(),
        }
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The app-server gauges, one series per account.
struct AppServerVecs {
    up: IntGaugeVec,
    exits: IntCounterVec,
    plan_used: IntGaugeVec,
    plan_resets: IntGaugeVec,
}

impl AppServerVecs {
    fn new() -> Self {
        AppServerVecs {
            up: IntGaugeVec::new(
                Opts::new(
                    "codex_proxy_app_server_up",
                    "1 while the account's codex app-server process is ready for turns",
                ),
                &["account"],
            )
            .expect("valid metric"),
            exits: IntCounterVec::new(
                Opts::new(
                    "codex_proxy_app_server_exits_total",
                    "Times the account's codex app-server process ended or failed to start (each is restarted)",
                ),
                &["account"],
            )
            .expect("valid metric"),
            plan_used: IntGaugeVec::new(
                Opts::new(
                    "codex_proxy_plan_used_percent",
                    "How much of each window of the account's ChatGPT plan usage limit is used, as codex last reported",
                ),
                &["account", "window"],
            )
            .expect("valid metric"),
            plan_resets: IntGaugeVec::new(
                Opts::new(
                    "codex_proxy_plan_resets_at_seconds",
                    "When each window of the account's plan usage limit resets, in Unix seconds",
                ),
                &["account", "window"],
            )
            .expect("valid metric"),
        }
    }
}

/// What one account's app-server supervisor reports.
#[derive(Clone)]
pub struct AppServerMetrics {
    up: IntGauge,
    exits: IntCounter,
    plan_used: IntGaugeVec,
    plan_resets: IntGaugeVec,
    account: String,
}

impl AppServerMetrics {
    pub fn ready(&self) {
        self.up.set(1);
    }

    pub fn down(&self) {
        self.up.set(0);
        self.exits.inc();
    }

    pub fn plan_limits(&self, limits: &PlanLimits) {
        for (name, window) in limits.windows() {
            self.plan_used
                .with_label_values(&[&self.account, name])
                .set(window.used_percent);
            if let Some(at) = window.resets_at {
                self.plan_resets
                    .with_label_values(&[&self.account, name])
                    .set(at);
            }
        }
    }
}

/// One account's runs, tokens and failures.
#[derive(Clone)]
pub struct AccountMetrics {
    running: IntGauge,
    runs: IntCounter,
    tokens: IntCounterVec,
    failures: IntCounterVec,
    account: String,
}

impl AccountMetrics {
    /// Counts a run on the account as running until the guard is dropped.
    pub fn run(&self) -> GaugeGuard {
        self.runs.inc();
        GaugeGuard::new(self.running.clone())
    }

    pub fn tokens(&self, usage: &TokenUsage) {
        for (kind, count) in usage_kinds(usage) {
            self.tokens
                .with_label_values(&[&self.account, kind])
                .inc_by(count);
        }
    }

    /// A run that failed with OpenAI error `code`.
    pub fn failed(&self, code: &str) {
        self.failures
            .with_label_values(&[&self.account, code])
            .inc();
    }
}

fn usage_kinds(usage: &TokenUsage) -> [(&'static str, u64); 4] {
    [
        ("prompt", usage.prompt_tokens),
        ("completion", usage.completion_tokens),
        ("cached", usage.cached_tokens),
        ("reasoning", usage.reasoning_tokens),
    ]
}

/// nginx's "client closed request": how a request that ended without an answer counts.
const CLIENT_GONE: u16 = 499;

/// One line of `codex_proxy_requests_total`, written when dropped.
pub struct RequestOutcome {
    requests: IntCounterVec,
    model: String,
    status: u16,
}

impl RequestOutcome {
    pub fn ended_with(&mut self, status: u16) {
        self.status = status;
    }
}

impl Drop for RequestOutcome {
    fn drop(&mut self) {
        self.requests
            .with_label_values(&[&self.model, &self.status.to_string()])
            .inc();
    }
}

pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub struct RunGuard {
    _running: GaugeGuard,
    histogram: Histogram,
    started: Instant,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}
