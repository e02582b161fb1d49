//! Where the README lists something the code decides (settings, the environment codex gets,
//! metrics, error codes), the list is compared with the code, so the two cannot drift apart.

use std::collections::BTreeSet;

use codex_openai_proxy::error::{FailureKind, ProxyError};

use crate::support::{chat, client_on, metrics_text, post_chat};

const README: &str = include_str!("../../README.md");
const ENV_EXAMPLE: &str = include_str!("../../.env.example");
const CONFIG_RS: &str = include_str!("../../src/config.rs");

/// The lines of the README section that starts with `heading`, up to the next heading.
fn section(heading: &str) -> Vec<&'static str> {
    README
        .lines()
        .skip_while(|line| line.trim() != heading)
        .skip(1)
        .take_while(|line| !line.starts_with('#'))
        .collect()
}

/// Every `` `NAME` `` in `text` that `keep` accepts, without any `{labels}`.
fn backticked(text: &str, keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|name| name.split('{').next().unwrap_or_default())
        .filter(|name| keep(name))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_settings_table_env_example_and_config_name_the_same_variables() {
    let table: BTreeSet<String> = section("## Configuration")
        .iter()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect();
    let example: BTreeSet<String> = ENV_EXAMPLE
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .collect();
    // The fields of `RawConfig`, which envy reads from the upper-cased variables.
    let fields: BTreeSet<String> = CONFIG_RS
        .lines()
        .skip_while(|line| !line.starts_with("struct RawConfig"))
        .skip(1)
        .take_while(|line| !line.starts_with('}'))
        .filter_map(|line| line.trim().split_once(": "))
        .filter(|(name, _)| !name.starts_with('#') && !name.starts_with("//"))
        .map(|(name, _)| name.to_uppercase())
        .collect();
    assert!(fields.len() > 30, "{fields:?}");
    assert_eq!(table, fields, "README table against RawConfig");
    assert_eq!(example, fields, ".env.example against RawConfig");
}

#[test]
fn the_environment_codex_gets_is_listed_exactly() {
    // The sentence that introduces the list, and the list, up to the blank line after it.
    let mut listed = Vec::new();
    for line in section("## Configuration")
        .into_iter()
        .skip_while(|line| !line.contains("These variables pass through"))
    {
        if line.is_empty() && listed.iter().any(|l: &&str| l.starts_with("- ")) {
            break;
        }
        listed.push(line);
    }
    let listed = listed.join("\n");
    let listed = backticked(&listed, |name| {
        name.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
            && name != "API_KEYS"
            && name.len() > 1
    });
    let passed: BTreeSet<String> = codex_openai_proxy::codex::PASSED_ENV
        .iter()
        .map(|name| name.to_string())
        .collect();
    assert_eq!(listed, passed);
}

#[tokio::test]
async fn the_metrics_section_names_every_metric_served() {
    let cli = client_on("app-server", &[]);
    // One answered request that reports a plan's limits and one failed turn, so that the
    // labelled series exist.
    assert_eq!(post_chat(&cli, &chat("[[plan]]", false)).await.0, 200);
    assert_eq!(post_chat(&cli, &chat("[[http500]]", false)).await.0, 502);
    let text = metrics_text(&cli).await;
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# HELP "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let documented = backticked(&section("## Metrics").join("\n"), |name| {
        name.starts_with("codex_proxy_")
    });
    assert_eq!(documented, served);
}

/// One error of each kind a client can receive. The match has no wildcard: a new variant does
/// not compile until it is added here, and so to the comparison with the README's table.
fn every_error_a_client_sees() -> Vec<ProxyError> {
    let failed = |kind| ProxyError::CodexFailed {
        kind,
        message: String::new(),
        reset_in: None,
    };
    let all = vec![
        ProxyError::invalid("", None),
        ProxyError::InvalidApiKey,
        ProxyError::ModelNotFound(String::new()),
        ProxyError::CodexUnavailable(String::new()),
        failed(FailureKind::RateLimited),
        failed(FailureKind::QuotaExceeded),
        failed(FailureKind::ContextLength),
        failed(FailureKind::Unauthenticated),
        failed(FailureKind::Upstream),
        ProxyError::Overloaded {
            slots: 1,
            waited_secs: 1,
        },
        ProxyError::Timeout(String::new()),
        ProxyError::PromptTooLong {
            tokens: 2,
            limit: 1,
        },
        ProxyError::PayloadTooLarge { limit: 1 },
        ProxyError::BodyTimeout { secs: 1 },
        ProxyError::ShuttingDown,
    ];
    for err in &all {
        match err {
            ProxyError::InvalidRequest { .. }
            | ProxyError::InvalidApiKey
            | ProxyError::ModelNotFound(_)
            | ProxyError::CodexUnavailable(_)
            | ProxyError::CodexFailed { .. }
            | ProxyError::Overloaded { .. }
            | ProxyError::Timeout(_)
            | ProxyError::PromptTooLong { .. }
            | ProxyError::PayloadTooLarge { .. }
            | ProxyError::BodyTimeout { .. }
            | ProxyError::ShuttingDown => {}
            // Nobody reads it: the client has gone.
            ProxyError::ClientGone => unreachable!(),
            // The HTTP layer's own (unknown path, wrong method), with `null` codes.
            ProxyError::Http { .. } => unreachable!(),
        }
    }
    all
}

#[test]
fn the_error_table_lists_every_status_and_code() {
    let documented: BTreeSet<(u16, String)> = section("### Errors")
        .iter()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells.get(1)?.parse().ok()?;
            Some((status, cells.get(2)?.trim_matches('`').to_owned()))
        })
        .collect();
    let code: BTreeSet<(u16, String)> = every_error_a_client_sees()
        .iter()
        .map(|err| {
            (
                err.status().as_u16(),
                err.code().unwrap_or("null").to_owned(),
            )
        })
        .collect();
    assert_eq!(documented, code);
}
