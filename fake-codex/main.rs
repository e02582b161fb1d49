//! fake-codex: a scripted stand-in for `codex exec` 0.169.0.
//!
//! It takes the same command line, follows the same stdin rules, and prints the same `--json`
//! events (or human output), stderr lines and exit codes as the real CLI does against a mock
//! model; the test suite checks that against real transcripts. What the "model" answers is
//! chosen by the last `[[scenario]]` marker in the prompt (see `scenario.rs`), so tests and
//! `make demo` need no codex account and no network.

mod app_server;
mod argv;
mod output;
mod scenario;

use std::{
    io::{IsTerminal, Read},
    process::ExitCode,
};

use argv::{Cli, Command};

pub const VERSION: &str = "0.169.0";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match argv::parse(&args) {
        Ok(Command::Version) => {
            println!("codex-cli {VERSION}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help) => {
            println!("fake-codex {VERSION}: a scripted `codex exec` and `codex app-server` for tests and demos.\n\nUsage: fake-codex exec [OPTIONS] [PROMPT|-]\n       fake-codex app-server [-c key=value]...\n\nThe last [[marker]] in the prompt picks the scenario:");
            for (name, what) in scenario::SCENARIOS {
                println!("  [[{name}]]  {what}");
            }
            return ExitCode::SUCCESS;
        }
        Ok(Command::Exec(cli)) => cli,
        Ok(Command::AppServer(overrides)) => return app_server::serve(overrides),
        Err(argv::UsageError { message, code }) => {
            eprintln!("{message}");
            return ExitCode::from(code);
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

/// Everything after argument parsing; `Err` is a start-up failure (exit 1, nothing on stdout).
fn run(cli: &Cli) -> Result<u8, String> {
    for raw in &cli.config_overrides {
        if !raw.contains('=') {
            return Err(format!(
                "Error parsing -c overrides: Invalid override (missing '='): {raw}"
            ));
        }
    }
    let prompt = read_prompt(cli)?;
    let workdir = match &cli.cd {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::current_dir().map_err(|err| format!("Error: {err}"))?,
    };
    if !cli.skip_git_repo_check && !cli.bypass_sandbox && !inside_git_repo(&workdir) {
        return Err(
            "Not inside a trusted directory and --skip-git-repo-check was not specified.".into(),
        );
    }
    let script = scenario::script_for(&prompt, cli);
    Ok(output::play(cli, &prompt, &workdir, &script))
}

/// The stdin rules of `codex exec` (codex-cli.md 1.3).
fn read_prompt(cli: &Cli) -> Result<String, String> {
    let stdin_is_tty = std::io::stdin().is_terminal();
    let read_stdin = || {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .map_err(|err| format!("Failed to read prompt from stdin: {err}"))?;
        Ok::<_, String>(buf)
    };
    match cli.prompt.as_deref() {
        Some(prompt) if prompt != "-" => {
            if stdin_is_tty {
                return Ok(prompt.to_owned());
            }
            eprintln!("Reading additional input from stdin...");
            let extra = read_stdin()?;
            if extra.trim().is_empty() {
                Ok(prompt.to_owned())
            } else {
                Ok(format!("{prompt}\n\n<stdin>\n{extra}\n</stdin>"))
            }
        }
        dash_or_none => {
            if dash_or_none.is_none() {
                eprintln!("Reading prompt from stdin...");
            }
            let prompt = read_stdin()?;
            if prompt.trim().is_empty() {
                return Err("No prompt provided via stdin.".into());
            }
            Ok(prompt)
        }
    }
}

fn inside_git_repo(dir: &std::path::Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}
