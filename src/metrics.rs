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
        let registry = Registry::new();
        for metric in [
            Box::new(unknown_paths.clone()) as Box<dyn prometheus::core::Collector>,
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
        for (kind, count) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
            ("cached", usage.cached_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
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

    /// The app-server backend's gauges, registered when that backend is in use.
    pub fn app_server(&self) -> AppServerMetrics {
        let up = IntGauge::new(
            "codex_proxy_app_server_up",
            "1 while the codex app-server process is ready for turns",
        )
        .expect("valid metric");
        let exits = IntCounter::new(
            "codex_proxy_app_server_exits_total",
            "Times the codex app-server process ended or failed to start (each is restarted)",
        )
        .expect("valid metric");
        let plan_used = IntGaugeVec::new(
            Opts::new(
                "codex_proxy_plan_used_percent",
                "How much of each window of the ChatGPT plan's usage limit is used, as codex last reported",
            ),
            &["window"],
        )
        .expect("valid metric");
        let plan_resets = IntGaugeVec::new(
            Opts::new(
                "codex_proxy_plan_resets_at_seconds",
                "When each window of the plan's usage limit resets, in Unix seconds",
            ),
            &["window"],
        )
        .expect("valid metric");
        for metric in [
            Box::new(up.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(exits.clone()),
            Box::new(plan_used.clone()),
            Box::new(plan_resets.clone()),
        ] {
            self.registry
                .register(metric)
                .expect("app-server metrics register once");
        }
        AppServerMetrics {
            up,
            exits,
            plan_used,
            plan_resets,
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

/// What the app-server supervisor reports.
#[derive(Clone)]
pub struct AppServerMetrics {
    up: IntGauge,
    exits: IntCounter,
    plan_used: IntGaugeVec,
    plan_resets: IntGaugeVec,
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
                .with_label_values(&[name])
                .set(window.used_percent);
            if let Some(at) = window.resets_at {
                self.plan_resets.with_label_values(&[name]).set(at);
            }
        }
    }
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
