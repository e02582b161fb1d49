//! The `codex exec` command line of 0.169.0: the flags of `codex exec --help`, `--` ending
//! options, the variadic `-i`, and clap's error texts and exit code 2 for usage errors.

/// A parsed `codex exec` invocation.
#[derive(Debug, Default)]
pub struct Cli {
    pub json: bool,
    pub skip_git_repo_check: bool,
    pub bypass_sandbox: bool,
    pub model: Option<String>,
    pub sandbox: Option<String>,
    pub cd: Option<String>,
    pub config_overrides: Vec<String>,
    pub images: Vec<String>,
    pub output_last_message: Option<String>,
    pub output_schema: Option<String>,
    pub prompt: Option<String>,
}

pub enum Command {
    Version,
    Help,
    Exec(Cli),
    /// `codex app-server [-c key=value]... [--listen stdio://]`: the `-c` overrides.
    AppServer(Vec<String>),
}

pub struct UsageError {
    pub message: String,
    pub code: u8,
}

const USAGE: &str = "Usage: codex exec [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] <COMMAND> [ARGS]\n\nFor more information, try '--help'.";

const SANDBOX_MODES: &[&str] = &["read-only", "workspace-write", "danger-full-access"];

/// Flags that take no value.
const SWITCHES: &[&str] = &[
    "--json",
    "--experimental-json",
    "--skip-git-repo-check",
    "--ephemeral",
    "--ignore-user-config",
    "--ignore-rules",
    "--oss",
    "--strict-config",
    "--dangerously-bypass-approvals-and-sandbox",
    "--dangerously-bypass-hook-trust",
    "--approve-for-me",
    "--worktree",
    "--trust",
];

/// Flags that take exactly one value.
const VALUED: &[&str] = &[
    "-o",
    "--output-last-message",
    "--output-schema",
    "-m",
    "--model",
    "-c",
    "--config",
    "--enable",
    "--disable",
    "-p",
    "--profile",
    "-s",
    "--sandbox",
    "-C",
    "--cd",
    "--add-dir",
    "--thread-source",
    "--local-provider",
    "--color",
    "--cyber-access-program",
];

fn unexpected(arg: &str) -> UsageError {
    UsageError {
        message: format!("error: unexpected argument '{arg}' found\n\n{USAGE}"),
        code: 2,
    }
}

pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => return Ok(Command::Version),
        Some("--help" | "-h") => return Ok(Command::Help),
        Some("exec" | "e") => {}
        Some("app-server") => return parse_app_server(&args[1..]),
        Some(other) => {
            return Err(UsageError {
                message: format!(
                    "fake-codex only implements `codex exec` and `codex --version`, not `{other}`"
                ),
                code: 2,
            })
        }
        None => {
            return Err(UsageError {
                message: "Error: stdin is not a terminal".into(),
                code: 1,
            })
        }
    }
    let mut cli = Cli::default();
    let mut positionals: Vec<String> = Vec::new();
    let mut rest = args[1..].iter().peekable();
    let mut options_ended = false;
    while let Some(arg) = rest.next() {
        if options_ended || arg == "-" || !arg.starts_with('-') {
            positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_ended = true;
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        if flag == "-i" || flag == "--image" {
            // Variadic: takes every following value up to the next flag, which is why a prompt
            // after `-i a.png` is swallowed as an image unless `--` separates them.
            let mut values: Vec<String> = inline.into_iter().collect();
            while let Some(next) = rest.peek() {
                if next.starts_with('-') {
                    break;
                }
                values.push(rest.next().cloned().unwrap_or_default());
            }
            if values.is_empty() {
                return Err(UsageError {
                    message: format!("error: a value is required for '--image <FILE>...' but none was supplied\n\n{USAGE}"),
                    code: 2,
                });
            }
            cli.images
                .extend(values.iter().flat_map(|v| v.split(',').map(str::to_owned)));
            continue;
        }
        if SWITCHES.contains(&flag) {
            match flag {
                "--json" | "--experimental-json" => cli.json = true,
                "--skip-git-repo-check" => cli.skip_git_repo_check = true,
                "--dangerously-bypass-approvals-and-sandbox" => cli.bypass_sandbox = true,
                _ => {}
            }
            continue;
        }
        if !VALUED.contains(&flag) {
            return Err(unexpected(flag));
        }
        let value = match inline.or_else(|| rest.next().cloned()) {
            Some(value) => value,
            None => {
                return Err(UsageError {
                    message: format!(
                        "error: a value is required for '{flag}' but none was supplied\n\n{USAGE}"
                    ),
                    code: 2,
                })
            }
        };
        match flag {
            "-m" | "--model" => cli.model = Some(value),
            "-s" | "--sandbox" => {
                if !SANDBOX_MODES.contains(&value.as_str()) {
                    return Err(UsageError {
                        message: format!(
                            "error: invalid value '{value}' for '--sandbox <SANDBOX_MODE>'\n  [possible values: read-only, workspace-write, danger-full-access]\n\nFor more information, try '--help'."
                        ),
                        code: 2,
                    });
                }
                cli.sandbox = Some(value);
            }
            "-C" | "--cd" => cli.cd = Some(value),
            "-c" | "--config" => cli.config_overrides.push(value),
            "-o" | "--output-last-message" => cli.output_last_message = Some(value),
            "--output-schema" => cli.output_schema = Some(value),
            _ => {}
        }
    }
    if positionals.len() > 1 {
        return Err(unexpected(&positionals[1]));
    }
    cli.prompt = positionals.pop();
    Ok(Command::Exec(cli))
}

/// `app-server`'s flags: `-c` overrides and the stdio transport, the only one faked.
fn parse_app_server(args: &[String]) -> Result<Command, UsageError> {
    let mut overrides = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-c" | "--config" => match rest.next() {
                Some(value) => overrides.push(value.clone()),
                None => return Err(unexpected(arg)),
            },
            "--stdio" => {}
            "--listen" => match rest.next().map(String::as_str) {
                Some("stdio://") => {}
                _ => {
                    return Err(UsageError {
                        message: "fake-codex app-server only listens on stdio://".into(),
                        code: 2,
                    })
                }
            },
            other => return Err(unexpected(other)),
        }
    }
    Ok(Command::AppServer(overrides))
}

impl Cli {
    /// The value of a `-c key=value` override, with TOML string quotes stripped.
    pub fn config_value(&self, key: &str) -> Option<String> {
        self.config_overrides.iter().rev().find_map(|raw| {
            let (k, v) = raw.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
    }

    /// The `base_url` of the provider chosen with `-c model_provider=<id>`, as codex puts it
    /// in its error messages.
    pub fn base_url(&self) -> String {
        let provider = self.config_value("model_provider");
        provider
            .and_then(|id| self.config_value(&format!("model_providers.{id}")))
            .and_then(|table| {
                let start = table.find("base_url")?;
                let after = &table[start..];
                let open = after.find('"')? + 1;
                let close = after[open..].find('"')? + open;
                Some(after[open..close].to_owned())
            })
            .unwrap_or_else(|| "https://api.openai.com/v1".into())
    }
}

/// The tools codex 0.169.0 offers gpt-5.5, in its order, as recorded by a mock model.
const CODEX_TOOLS: &[&str] = &[
    "exec_command",
    "write_stdin",
    "request_user_input",
    "apply_patch",
    "view_image",
    "get_goal",
    "create_goal",
    "update_goal",
    "tool_search",
    "web_search",
];

impl Cli {
    /// Whether a `-c` switch turned `tool` off, as the real CLI's switches do.
    pub fn tool_enabled(&self, tool: &str) -> bool {
        let off = |key: &str, value: &str| self.config_value(key).is_some_and(|v| v == value);
        match tool {
            "exec_command" | "write_stdin" => !off("features.shell_tool", "false"),
            "get_goal" | "create_goal" | "update_goal" => !off("features.goals", "false"),
            "view_image" => !off("features.view_image", "false"),
            "tool_search" => !off("features.multi_agent", "false"),
            "web_search" => !off("web_search", "disabled"),
            _ => true,
        }
    }

    pub fn offered_tools(&self) -> Vec<&'static str> {
        CODEX_TOOLS
            .iter()
            .copied()
            .filter(|tool| self.tool_enabled(tool))
            .collect()
    }
}
