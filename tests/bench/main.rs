//! `make bench`: throughput, latency, per-event overhead and memory of the proxy on fake-codex,
//! on both backends, printed as tables from one run, beside the floor measured in the same run
//! (spawning fake-codex directly with the same stdin and stdout handling, no HTTP). Then the
//! figure users feel: turn time and time to the first content token with the real codex CLI
//! (`REAL_CODEX`) against the mock model, exec against app-server.
//!
//! A benchmark, not a test: it asserts nothing and prints figures; the targets are printed next
//! to them for the reader to compare.

#[path = "../real_codex/mock_model.rs"]
#[allow(dead_code)] // the bench uses the mock's server and markers only
mod mock_model;
#[path = "../common/server.rs"]
mod server;

use std::{
    process::Stdio,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use serde_json::json;
use server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FAKE_CODEX: &str = env!("CARGO_BIN_EXE_fake-codex");
const CONCURRENCY: &[usize] = &[1, 16, 64];
const OPEN_STREAMS: usize = 256;
const BACKENDS: &[&str] = &["exec", "app-server"];
/// Sequential turns per figure with the real codex.
const REAL_TURNS: usize = 15;

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    errors: usize,
}

impl Run {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `total` calls of `one` with `concurrency` workers, timing each.
async fn load<F, Fut>(concurrency: usize, total: usize, one: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (one, next) = (one.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let t = Instant::now();
                    if one().await {
                        latencies.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run::default();
    for worker in workers {
        let (latencies, errors) = worker.await.unwrap();
        run.latencies.extend(latencies);
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    run
}

/// The floor: fake-codex spawned directly, prompt on stdin, stdout read to the end.
async fn spawn_fake_codex() -> bool {
    let Ok(mut child) = tokio::process::Command::new(FAKE_CODEX)
        .args([
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--ephemeral",
            "-s",
            "read-only",
            "-C",
            "/tmp",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return false;
    };
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"hi").await;
    drop(stdin);
    let mut out = Vec::new();
    let _ = child.stdout.take().unwrap().read_to_end(&mut out).await;
    let mut err = Vec::new();
    let _ = child.stderr.take().unwrap().read_to_end(&mut err).await;
    child.wait().await.is_ok_and(|s| s.success()) && out.ends_with(b"}\n")
}

fn chat(prompt: &str, stream: bool) -> serde_json::Value {
    json!({"model": "codex-local", "stream": stream, "messages": [{"role": "user", "content": prompt}]})
}

async fn complete(http: reqwest::Client, url: String, stream: bool) -> bool {
    match http.post(&url).json(&chat("hi", stream)).send().await {
        Ok(resp) if resp.status().is_success() => resp.bytes().await.is_ok_and(|b| !b.is_empty()),
        _ => false,
    }
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

/// Streams `[[stamped]]` answers and returns, per event, arrival time minus the moment
/// fake-codex wrote it.
async fn event_delays(http: &reqwest::Client, url: &str, requests: usize) -> Vec<Duration> {
    let mut delays = Vec::new();
    for _ in 0..requests {
        let resp = http
            .post(url)
            .json(&chat("bench [[stamped:20:10]]", true))
            .send()
            .await
            .unwrap();
        let mut body = resp.bytes_stream();
        let mut pending = String::new();
        while let Some(chunk) = body.next().await {
            let arrived = now_micros();
            pending.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                if let Some(stamp) = event.split("t=").nth(1).and_then(|rest| {
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse::<u128>()
                        .ok()
                }) {
                    delays.push(Duration::from_micros(arrived.saturating_sub(stamp) as u64));
                }
            }
        }
    }
    delays
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// A server on fake-codex through `backend`, for the load tables.
fn fake_server(backend: &str) -> Server {
    Server::start(&[
        ("MAX_CONCURRENCY", "300"),
        ("QUEUE_TIMEOUT_SECS", "60"),
        ("LOG_LEVEL", "warn,codex_openai_proxy=info"),
        ("CODEX_BACKEND", backend),
    ])
}

#[tokio::main]
async fn main() {
    let total_for = |c: usize| if c == 1 { 150 } else { 600 };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();

    let mut floors = Vec::new();
    for &c in CONCURRENCY {
        floors.push(load(c, total_for(c), spawn_fake_codex).await);
    }

    println!("## codex-openai-proxy benchmark (fake-codex, instant answers)\n");
    println!("| backend | concurrency | floor req/s | JSON req/s | ratio | SSE req/s | ratio | floor p50 / p99 ms | JSON p50 / p99 ms | SSE p50 / p99 ms | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut delay_lines = Vec::new();
    let mut memory_lines = Vec::new();
    for backend in BACKENDS {
        let server = fake_server(backend);
        let idle_rss = server.rss_kib();
        let url = format!("{}/v1/chat/completions", server.base);
        // Warm-up: the tokenizer, the connection pool, the page cache, the app-server.
        let _ = load(4, 20, {
            let (h, u) = (http.clone(), url.clone());
            move || complete(h.clone(), u.clone(), false)
        })
        .await;
        for (&c, floor) in CONCURRENCY.iter().zip(&floors) {
            let total = total_for(c);
            let json = load(c, total, {
                let (h, u) = (http.clone(), url.clone());
                move || complete(h.clone(), u.clone(), false)
            })
            .await;
            let sse = load(c, total, {
                let (h, u) = (http.clone(), url.clone());
                move || complete(h.clone(), u.clone(), true)
            })
            .await;
            println!(
                "| {backend} | {c} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {} / {} | {} / {} | {} / {} | {} |",
                floor.rps(),
                json.rps(),
                json.rps() / floor.rps(),
                sse.rps(),
                sse.rps() / floor.rps(),
                ms(floor.percentile(0.5)),
                ms(floor.percentile(0.99)),
                ms(json.percentile(0.5)),
                ms(json.percentile(0.99)),
                ms(sse.percentile(0.5)),
                ms(sse.percentile(0.99)),
                floor.errors + json.errors + sse.errors,
            );
        }
        let delays = event_delays(&http, &url, 20).await;
        delay_lines.push(format!(
            "Added latency per streamed event, {backend} ({} events, codex write to client read): p50 {} ms, p99 {} ms (target p99 <= 2 ms)",
            delays.len(),
            ms(percentile(&delays, 0.5)),
            ms(percentile(&delays, 0.99))
        ));
        memory_lines.push(memory(&http, &server, &url, idle_rss, backend).await);
    }
    println!();
    for line in delay_lines {
        println!("{line}");
    }
    println!();
    for line in memory_lines {
        println!("{line}");
    }

    real_codex_turns(&http).await;
    real_codex_tools(&http).await;
}

/// A conversation of `messages` (1 or 4) ending in a user message with `marker`, with a tool
/// offered or not: what OpenWebUI sends in its default native tool mode.
fn conversation(messages: usize, tools: bool, marker: &str) -> serde_json::Value {
    let mut history = vec![
        json!({"role": "system", "content": "You are a helpful assistant."}),
        json!({"role": "user", "content": "Hi"}),
        json!({"role": "assistant", "content": "Hello! How can I help?"}),
    ];
    history.truncate(messages - 1);
    history.push(json!({"role": "user", "content": format!("bench {marker}")}));
    let mut body = json!({"model": "codex-local", "stream": true, "messages": history});
    if tools {
        body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    }
    body
}

/// With the client's tools offered, on the real codex: time to the first content token of a
/// paced answer on exec, on app-server with the prompt (`APP_SERVER_INPUT=prompt`, the way
/// app-server ran before it took items), and on app-server with items; and what the extra
/// set-up requests of items cost (a 4-message conversation injected, tools offered with raw
/// events) against a lone message, on an instant answer.
async fn real_codex_tools(http: &reqwest::Client) {
    let Ok(real) = std::env::var("REAL_CODEX") else {
        return;
    };
    let mock = mock_model::MockModel::start().await;
    println!("
## With a tool offered, on the real codex ({REAL_TURNS} sequential streamed turns per figure, medians)
");
    println!("| backend | paced first token ms | paced turn ms | 1 message, no tools: turn ms | 4 messages, no tools: turn ms | 4 messages, a tool: turn ms | failed |");
    println!("|---|---|---|---|---|---|---|");
    let mut firsts = Vec::new();
    for (label, backend, input) in [
        ("exec", "exec", "items"),
        ("app-server, prompt", "app-server", "prompt"),
        ("app-server, items", "app-server", "items"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().display().to_string();
        let config = mock.codex_config();
        let server = Server::start(&[
            ("CODEX_PATH", real.as_str()),
            ("CODEX_CONFIG", config.as_str()),
            ("CODEX_HOME", home_path.as_str()),
            ("HOME", home_path.as_str()),
            ("CODEX_MODEL", "gpt-5.5"),
            ("CODEX_BACKEND", backend),
            ("APP_SERVER_INPUT", input),
            ("LOG_LEVEL", "warn,codex_openai_proxy=info"),
        ]);
        let url = format!("{}/v1/chat/completions", server.base);
        for _ in 0..2 {
            let _ = timed_turn(http, &url, "warm up").await;
        }
        let mut failed = 0;
        let median = |body: serde_json::Value, first: bool| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let mut samples = Vec::new();
                let mut failed = 0;
                for _ in 0..REAL_TURNS {
                    match timed_request(&http, &url, &body).await {
                        Some((f, turn)) => samples.push(if first { f } else { turn }),
                        None => failed += 1,
                    }
                }
                (percentile(&samples, 0.5), failed)
            }
        };
        let mut figures = Vec::new();
        for (body, first) in [
            (conversation(2, true, "[[paced]]"), true),
            (conversation(2, true, "[[paced]]"), false),
            (conversation(1, false, ""), false),
            (conversation(4, false, ""), false),
            (conversation(4, true, ""), false),
        ] {
            let (figure, lost) = median(body, first).await;
            failed += lost;
            figures.push(figure);
        }
        println!(
            "| {label} | {} | {} | {} | {} | {} | {failed} |",
            ms(figures[0]),
            ms(figures[1]),
            ms(figures[2]),
            ms(figures[3]),
            ms(figures[4])
        );
        firsts.push(figures[0]);
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON);
    println!(
        "
Paced first token with a tool offered, app-server with items against with the prompt: {:.2}x (lower is faster)",
        ratio(firsts[2], firsts[1])
    );
}

/// Memory: idle, then with many slow streams open at once.
async fn memory(
    http: &reqwest::Client,
    server: &Server,
    url: &str,
    idle_rss: u64,
    backend: &str,
) -> String {
    let after_load_rss = server.rss_kib();
    let mut open = Vec::new();
    for _ in 0..OPEN_STREAMS {
        let resp = http
            .post(url)
            .json(&chat("bench [[slow:60000]]", true))
            .send();
        open.push(tokio::spawn(resp));
    }
    let mut streams = Vec::new();
    for resp in open {
        let mut resp = resp.await.unwrap().unwrap();
        let _ = resp.chunk().await; // the role chunk: the stream is open
        streams.push(resp);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open_rss = server.rss_kib();
    let per_stream = open_rss.saturating_sub(after_load_rss) as f64 / OPEN_STREAMS as f64;
    drop(streams);
    format!(
        "Proxy RSS ({backend}): idle at start {:.1} MB (target <= 15 MB), idle after the load {:.1} MB, with {OPEN_STREAMS} open streams {:.1} MB: {:.1} KiB per stream (target <= 64 KiB)",
        idle_rss as f64 / 1024.0,
        after_load_rss as f64 / 1024.0,
        open_rss as f64 / 1024.0,
        per_stream
    )
}

/// One streamed turn: (time to the first non-empty content chunk, time to `[DONE]`).
async fn timed_turn(
    http: &reqwest::Client,
    url: &str,
    prompt: &str,
) -> Option<(Duration, Duration)> {
    timed_request(http, url, &chat(prompt, true)).await
}

/// [`timed_turn`] for any streamed request body.
async fn timed_request(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Option<(Duration, Duration)> {
    let started = Instant::now();
    let resp = http.post(url).json(body).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut body = resp.bytes_stream();
    let mut first = None;
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        if first.is_none() && text.contains("\"delta\":{\"content\":\"") {
            first = Some(started.elapsed());
        }
    }
    text.ends_with("data: [DONE]\n\n")
        .then(|| (first.unwrap_or_default(), started.elapsed()))
}

/// exec against app-server on the real codex CLI and the mock model: the median turn and
/// first-token times of an instant answer and of a paced one (the mock writing 20 deltas 25 ms
/// apart, as a model does).
async fn real_codex_turns(http: &reqwest::Client) {
    let Ok(real) = std::env::var("REAL_CODEX") else {
        println!(
            "\n(REAL_CODEX is unset: `make bench` sets it; the real-codex figures are skipped)"
        );
        return;
    };
    let mock = mock_model::MockModel::start().await;
    println!("\n## The real codex CLI against the mock model ({REAL_TURNS} sequential streamed turns per figure, medians)\n");
    println!(
        "| backend | turn ms | first token ms | paced turn ms | paced first token ms | failed |"
    );
    println!("|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for backend in BACKENDS {
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().display().to_string();
        let config = mock.codex_config();
        let server = Server::start(&[
            ("CODEX_PATH", real.as_str()),
            ("CODEX_CONFIG", config.as_str()),
            ("CODEX_HOME", home_path.as_str()),
            ("HOME", home_path.as_str()),
            ("CODEX_MODEL", "gpt-5.5"),
            ("CODEX_BACKEND", backend),
            ("LOG_LEVEL", "warn,codex_openai_proxy=info"),
        ]);
        let url = format!("{}/v1/chat/completions", server.base);
        for _ in 0..2 {
            let _ = timed_turn(http, &url, "warm up").await;
        }
        let mut failed = 0;
        let mut figures = Vec::new();
        for prompt in ["bench", "bench [[paced]]"] {
            let (mut firsts, mut turns) = (Vec::new(), Vec::new());
            for _ in 0..REAL_TURNS {
                match timed_turn(http, &url, prompt).await {
                    Some((first, turn)) => {
                        firsts.push(first);
                        turns.push(turn);
                    }
                    None => failed += 1,
                }
            }
            figures.push((percentile(&turns, 0.5), percentile(&firsts, 0.5)));
        }
        println!(
            "| {backend} | {} | {} | {} | {} | {failed} |",
            ms(figures[0].0),
            ms(figures[0].1),
            ms(figures[1].0),
            ms(figures[1].1)
        );
        rows.push(figures);
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON);
    println!(
        "\napp-server against exec: turn {:.2}x, paced first token {:.2}x (lower is faster)",
        ratio(rows[1][0].0, rows[0][0].0),
        ratio(rows[1][1].1, rows[0][1].1)
    );
}
