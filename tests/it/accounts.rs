//! Several codex logins (`CODEX_ACCOUNTS`) on fake-codex, whose accounts are spent or logged
//! out by a file in their home: the pool moves off a spent account, answers 429 with the first
//! reset when every account is spent, keeps a bound key on its account, and keeps a
//! conversation on the account it started on.

use std::time::{SystemTime, UNIX_EPOCH};

use poem::{test::TestClient, Endpoint};
use serde_json::Value;

use crate::support::{chat, client_on, json_of, metrics_text, BACKENDS};

/// Two codex homes, `alice` and `bob`, that live as long as the test.
struct Homes {
    root: tempfile::TempDir,
}

impl Homes {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        for name in ["alice", "bob"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        Homes { root }
    }

    fn accounts(&self) -> String {
        let home = |name| self.root.path().join(name).display().to_string();
        format!("alice={},bob={}", home("alice"), home("bob"))
    }

    /// Spends `name`'s usage limit for `secs` from now, as fake-codex reads it.
    fn spend(&self, name: &str, secs: u64) {
        let until = now() + secs;
        std::fs::write(
            self.root.path().join(name).join("fake-codex-spent-until"),
            until.to_string(),
        )
        .unwrap();
    }

    fn log_out(&self, name: &str) {
        std::fs::write(
            self.root.path().join(name).join("fake-codex-logged-out"),
            "",
        )
        .unwrap();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Status, `Retry-After` and body of a chat request with `key` (none when empty) and chat id.
async fn ask<E: Endpoint>(
    cli: &TestClient<E>,
    key: &str,
    chat_id: Option<&str>,
    prompt: &str,
) -> (u16, Option<u64>, Value) {
    let mut request = cli
        .post("/v1/chat/completions")
        .body_json(&chat(prompt, false));
    if !key.is_empty() {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(id) = chat_id {
        request = request.header("x-openwebui-chat-id", id);
    }
    let resp = request.send().await;
    let retry_after = resp
        .0
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let (status, body) = json_of(resp).await;
    (status, retry_after, body)
}

fn answer(body: &Value) -> &str {
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
}

async fn health<E: Endpoint>(cli: &TestClient<E>) -> Vec<Value> {
    let (_, health) = json_of(cli.get("/health").send().await).await;
    health["accounts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_spent_account_cools_and_its_turn_moves_then_both_spent_is_a_429_with_the_first_reset() {
    for backend in BACKENDS {
        let homes = Homes::new();
        let cli = client_on(backend, &[("CODEX_ACCOUNTS", &homes.accounts())]);
        let (status, _, body) = ask(&cli, "", None, "[[account]]").await;
        assert_eq!(
            (status, answer(&body)),
            (200, "ACCOUNT: alice"),
            "{backend}: {body}"
        );

        // alice is spent for ten minutes: the turn is refused there and answered by bob.
        homes.spend("alice", 600);
        let (status, _, body) = ask(&cli, "", None, "[[account]]").await;
        assert_eq!(
            (status, answer(&body)),
            (200, "ACCOUNT: bob"),
            "{backend}: {body}"
        );
        let accounts = health(&cli).await;
        assert_eq!(accounts[0]["name"], "alice");
        assert_eq!(accounts[0]["state"], "cooling", "{backend}: {accounts:?}");
        let until = accounts[0]["cooling_until"].as_u64().unwrap();
        assert!(
            (now() + 590..=now() + 600).contains(&until),
            "{backend}: {until}"
        );
        assert_eq!(accounts[1]["state"], "ready");
        // A cooling account is not tried again: the next turn goes straight to bob.
        let (status, _, body) = ask(&cli, "", None, "[[account]]").await;
        assert_eq!((status, answer(&body)), (200, "ACCOUNT: bob"), "{backend}");
        let metrics = metrics_text(&cli).await;
        for line in [
            "codex_proxy_account_failures_total{account=\"alice\",code=\"rate_limit_exceeded\"} 1",
            "codex_proxy_account_runs_total{account=\"alice\"} 2",
            "codex_proxy_account_runs_total{account=\"bob\"} 2",
            "codex_proxy_account_tokens_total{account=\"bob\",kind=\"prompt\"} 240",
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "{backend}: no {line} in\n{metrics}"
            );
        }

        // bob is spent for five minutes: nothing can take the turn until bob resets.
        homes.spend("bob", 300);
        let (status, retry_after, body) = ask(&cli, "", None, "[[account]]").await;
        assert_eq!(status, 429, "{backend}: {body}");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        let retry_after = retry_after.expect("a Retry-After");
        assert!(
            (290..=300).contains(&retry_after),
            "{backend}: {retry_after}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Every codex account (alice, bob)"),
            "{backend}: {body}"
        );
        // Now known to be spent, both are refused without running codex.
        let (status, retry_after, _) = ask(&cli, "", None, "[[account]]").await;
        assert_eq!(status, 429);
        assert!((290..=300).contains(&retry_after.unwrap()));
        let metrics = metrics_text(&cli).await;
        assert!(
            metrics
                .lines()
                .any(|l| l == "codex_proxy_account_runs_total{account=\"bob\"} 3"),
            "{backend}: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_bound_key_stays_on_its_account() {
    for backend in BACKENDS {
        let homes = Homes::new();
        let cli = client_on(
            backend,
            &[
                ("CODEX_ACCOUNTS", &homes.accounts()),
                ("API_KEYS", "k-pool,k-bob@bob"),
            ],
        );
        // alice is idle and first, yet bob's key runs on bob, every time.
        for _ in 0..2 {
            let (status, _, body) = ask(&cli, "k-bob", None, "[[account]]").await;
            assert_eq!(
                (status, answer(&body)),
                (200, "ACCOUNT: bob"),
                "{backend}: {body}"
            );
        }
        let (_, _, body) = ask(&cli, "k-pool", None, "[[account]]").await;
        assert_eq!(answer(&body), "ACCOUNT: alice", "{backend}");

        // Spent, bob's key gets bob's 429 rather than alice's answer.
        homes.spend("bob", 120);
        let (status, retry_after, body) = ask(&cli, "k-bob", None, "[[account]]").await;
        assert_eq!(status, 429, "{backend}: {body}");
        assert!(
            (60..=120).contains(&retry_after.unwrap()),
            "{backend}: {retry_after:?}"
        );
        let (status, retry_after, body) = ask(&cli, "k-bob", None, "[[account]]").await;
        assert_eq!(status, 429, "{backend}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("The codex account bob is"),
            "{backend}: {body}"
        );
        assert!((110..=120).contains(&retry_after.unwrap()));
        // The pool still has alice.
        let (status, _, body) = ask(&cli, "k-pool", None, "[[account]]").await;
        assert_eq!(
            (status, answer(&body)),
            (200, "ACCOUNT: alice"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_logged_out_account_is_taken_out_and_its_turn_moves() {
    for backend in BACKENDS {
        let homes = Homes::new();
        homes.log_out("alice");
        let cli = client_on(backend, &[("CODEX_ACCOUNTS", &homes.accounts())]);
        let (status, _, body) = ask(&cli, "", None, "[[account]]").await;
        assert_eq!(
            (status, answer(&body)),
            (200, "ACCOUNT: bob"),
            "{backend}: {body}"
        );
        let accounts = health(&cli).await;
        assert_eq!(
            accounts[0]["state"], "logged_out",
            "{backend}: {accounts:?}"
        );
        assert!(accounts[0].get("cooling_until").is_none());
        let metrics = metrics_text(&cli).await;
        assert!(
            metrics.lines().any(|l| l == "codex_proxy_account_failures_total{account=\"alice\",code=\"codex_unauthenticated\"} 1"),
            "{backend}: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_conversation_stays_on_the_account_it_started_on() {
    for backend in BACKENDS {
        let homes = Homes::new();
        let cli = std::sync::Arc::new(client_on(backend, &[("CODEX_ACCOUNTS", &homes.accounts())]));
        // While a slow turn of chat "a" runs on alice, chat "b" starts on bob.
        let slow = {
            let cli = cli.clone();
            tokio::spawn(async move { ask(&cli, "", Some("a"), "[[slow:1000]]").await })
        };
        crate::support::eventually(std::time::Duration::from_secs(10), async || {
            let running = health(&cli).await[0]["running"].as_u64().unwrap_or(0);
            (running == 1)
                .then_some(())
                .ok_or(format!("alice runs {running}"))
        })
        .await;
        let (_, _, body) = ask(&cli, "", Some("b"), "[[account]]").await;
        assert_eq!(answer(&body), "ACCOUNT: bob", "{backend}");
        assert_eq!(slow.await.unwrap().0, 200);
        // Both idle now: each chat goes back to its own account, not to the first.
        for (chat_id, account) in [("b", "bob"), ("a", "alice"), ("b", "bob")] {
            let (_, _, body) = ask(&cli, "", Some(chat_id), "[[account]]").await;
            assert_eq!(
                answer(&body),
                format!("ACCOUNT: {account}"),
                "{backend}: chat {chat_id}"
            );
        }
        // Without a chat id, a conversation is known by its opening message.
        let opening = "Plan my week. [[account]]";
        let (_, _, first) = ask(&cli, "", None, opening).await;
        let first = answer(&first).to_owned();
        let later = serde_json::json!({
            "model": "codex-local",
            "messages": [
                {"role": "user", "content": opening},
                {"role": "assistant", "content": first},
                {"role": "user", "content": "And the weekend? [[account]]"},
            ],
        });
        let (_, body) = json_of(
            cli.post("/v1/chat/completions")
                .body_json(&later)
                .send()
                .await,
        )
        .await;
        assert_eq!(answer(&body), first, "{backend}");
    }
}

#[tokio::test]
async fn a_streamed_turn_moves_unnoticed_and_with_no_account_known_left_is_a_plain_429() {
    for backend in BACKENDS {
        let homes = Homes::new();
        let cli = client_on(backend, &[("CODEX_ACCOUNTS", &homes.accounts())]);
        homes.spend("alice", 600);
        let resp = cli
            .post("/v1/chat/completions")
            .body_json(&chat("[[account]]", true))
            .send()
            .await;
        let (status, _, events) = crate::support::sse_of(resp).await;
        assert_eq!(status, 200, "{backend}");
        let text: String = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "ACCOUNT: bob", "{backend}: {events:?}");
        assert!(
            !events.iter().any(|e| e.get("error").is_some()),
            "the refusal on alice never reached the client: {events:?}"
        );

        // Once the stream's headers are out, bob's refusal is the stream's error, in band...
        homes.spend("bob", 300);
        let resp = cli
            .post("/v1/chat/completions")
            .body_json(&chat("[[account]]", true))
            .send()
            .await;
        let (_, _, events) = crate::support::sse_of(resp).await;
        let error = events
            .iter()
            .find_map(|e| e.get("error"))
            .expect("an in-band error");
        assert_eq!(error["code"], "rate_limit_exceeded", "{backend}");
        // ...and the next stream, known to have no account, is refused before it starts.
        let resp = cli
            .post("/v1/chat/completions")
            .body_json(&chat("[[account]]", true))
            .send()
            .await;
        let retry_after = resp.0.headers().get("retry-after").cloned();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, 429, "{backend}: {body}");
        assert!(retry_after.is_some(), "{backend}");
    }
}
