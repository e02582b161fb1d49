//! What a configuration exposes, said at start-up: a pure function of the configuration, so it
//! is tested without binding beyond loopback.

use crate::config::{Config, Sandbox, ToolsMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Warn,
    /// Logged at error level: anyone on the network can run commands as this user.
    Danger,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub level: Level,
    pub message: String,
}

pub fn warnings(config: &Config) -> Vec<Warning> {
    let warn = |message: &str| Warning {
        level: Level::Warn,
        message: message.to_owned(),
    };
    let mut out = Vec::new();
    let open_beyond_loopback = config.api_keys.is_empty() && !config.host.is_loopback();
    match (config.codex_tools, open_beyond_loopback) {
        (ToolsMode::Agent, true) => out.push(Warning {
            level: Level::Danger,
            message: "DANGER: API_KEYS is empty, the server listens beyond loopback, and CODEX_TOOLS=agent: anyone who can reach this port can run commands and read files as this user, codex's own login included. Set API_KEYS or HOST=127.0.0.1.".into(),
        }),
        (ToolsMode::Chat, true) => out.push(warn(
            "API_KEYS is empty and the server listens beyond loopback: anyone who can reach this port can use this codex account. Set API_KEYS, or HOST=127.0.0.1.",
        )),
        (ToolsMode::Agent, false) => out.push(warn(
            "CODEX_TOOLS=agent: codex may run commands and read files; whoever holds an API key can read what this process can read, codex's login included",
        )),
        (ToolsMode::Chat, false) => {}
    }
    if config.api_keys.is_empty() && config.cors_origins.iter().any(|o| o == "*") {
        // Even on loopback: a browser on this machine runs other sites' pages too.
        out.push(warn(
            "CORS_ORIGINS=* and API_KEYS is empty: any web page open in a browser that can reach this port can use this codex account. Set API_KEYS, or list the origins that may.",
        ));
    }
    if config.codex_tools == ToolsMode::Chat && config.codex_sandbox != Sandbox::ReadOnly {
        out.push(warn(&format!(
            "CODEX_SANDBOX={} applies with CODEX_TOOLS=agent only; chat mode always runs codex read-only",
            config.codex_sandbox.as_arg()
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(vars: &[(&str, &str)]) -> Vec<(Level, String)> {
        let config =
            Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        warnings(&config)
            .into_iter()
            .map(|w| (w.level, w.message))
            .collect()
    }

    #[test]
    fn an_open_server_is_warned_about_and_louder_with_agent_tools() {
        let open = levels(&[("HOST", "0.0.0.0"), ("API_KEYS", "")]);
        assert!(
            matches!(&open[..], [(Level::Warn, m)] if m.contains("anyone who can reach this port can use this codex account")),
            "{open:?}"
        );
        let danger = levels(&[
            ("HOST", "0.0.0.0"),
            ("API_KEYS", ""),
            ("CODEX_TOOLS", "agent"),
        ]);
        assert!(
            matches!(&danger[..], [(Level::Danger, m)] if m.starts_with("DANGER")),
            "{danger:?}"
        );
        assert_eq!(levels(&[("HOST", "0.0.0.0"), ("API_KEYS", "k")]), []);
        assert_eq!(levels(&[("HOST", "127.0.0.1"), ("API_KEYS", "")]), []);
        let agent = levels(&[("HOST", "::1"), ("CODEX_TOOLS", "agent")]);
        assert!(
            matches!(&agent[..], [(Level::Warn, m)] if m.starts_with("CODEX_TOOLS=agent")),
            "{agent:?}"
        );
        let any_page = levels(&[("HOST", "127.0.0.1"), ("CORS_ORIGINS", "*")]);
        assert!(
            matches!(&any_page[..], [(Level::Warn, m)] if m.contains("any web page")),
            "{any_page:?}"
        );
        assert_eq!(
            levels(&[
                ("HOST", "127.0.0.1"),
                ("CORS_ORIGINS", "*"),
                ("API_KEYS", "k")
            ]),
            []
        );
        let sandbox = levels(&[("HOST", "127.0.0.1"), ("CODEX_SANDBOX", "workspace-write")]);
        assert!(
            matches!(&sandbox[..], [(Level::Warn, m)] if m.contains("chat mode always runs codex read-only")),
            "{sandbox:?}"
        );
    }
}
