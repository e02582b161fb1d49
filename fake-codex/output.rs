//! Plays a [`Script`] the way `codex exec` prints a turn: JSONL events on stdout with `--json`,
//! otherwise the human transcript on stderr and the final message on stdout.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    thread::sleep,
    time::Duration,
};

use codex_openai_proxy::codex::{
    events::TurnError, CodexUsage, ItemDetails, ThreadEvent, ThreadItem,
};

use crate::{
    argv::Cli,
    scenario::{End, Script, Step, DEFAULT_MODEL},
    VERSION,
};

const BUBBLEWRAP_WARNING: &str = "warning: Codex could not find bubblewrap on PATH. Install bubblewrap with your OS package manager. See the sandbox prerequisites: https://developers.openai.com/codex/concepts/sandboxing#prerequisites. Codex will use the bundled bubblewrap in the meantime.";

struct Printer<'a> {
    cli: &'a Cli,
    next_item: usize,
}

impl Printer<'_> {
    fn event(&self, event: &ThreadEvent) {
        if self.cli.json {
            let line = serde_json::to_string(event).expect("events serialize");
            raw_stdout(&line);
        }
    }

    fn item(&mut self, details: ItemDetails) -> ThreadItem {
        let item = ThreadItem {
            id: format!("item_{}", self.next_item),
            details,
        };
        self.next_item += 1;
        item
    }
}

fn raw_stdout(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn human(line: &str) {
    eprintln!("{line}");
}

/// Plays the script and returns the exit code.
pub fn play(cli: &Cli, prompt: &str, workdir: &Path, script: &Script) -> u8 {
    let mut printer = Printer { cli, next_item: 0 };
    let thread_id = uuid::Uuid::now_v7().to_string();
    let pause = || {
        if !script.delay.is_zero() {
            sleep(script.delay);
        }
    };

    printer.event(&ThreadEvent::ThreadStarted {
        thread_id: thread_id.clone(),
    });
    if !cli.json {
        print_banner(cli, workdir, &thread_id, prompt);
    }
    for warning in &script.warnings {
        let item = printer.item(ItemDetails::Error {
            message: warning.clone(),
        });
        printer.event(&ThreadEvent::ItemCompleted { item });
        if !cli.json {
            human(&format!("warning: {warning}"));
        }
    }
    pause();
    printer.event(&ThreadEvent::TurnStarted);
    if !cli.json {
        human(BUBBLEWRAP_WARNING);
    }

    let mut last_message: Option<String> = None;
    for step in &script.steps {
        pause();
        match step {
            Step::Raw(line) => {
                if cli.json {
                    raw_stdout(line);
                }
            }
            Step::Stamped => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let item = printer.item(ItemDetails::AgentMessage {
                    text: format!("t={}", now.as_micros()),
                });
                printer.event(&ThreadEvent::ItemCompleted { item });
            }
            Step::Stderr(text) => {
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
            Step::Notice(message) => {
                printer.event(&ThreadEvent::Error {
                    message: message.clone(),
                });
                if !cli.json {
                    human(&format!("ERROR: {message}"));
                }
            }
            Step::Item(details) => {
                if let ItemDetails::CommandExecution { command, .. } = details {
                    let started = printer.item(ItemDetails::CommandExecution {
                        command: command.clone(),
                        aggregated_output: String::new(),
                        exit_code: None,
                        status: "in_progress".into(),
                    });
                    printer.event(&ThreadEvent::ItemStarted { item: started });
                    printer.next_item -= 1;
                    pause();
                }
                let item = printer.item(details.clone());
                if !cli.json {
                    print_item_human(&item.details, workdir);
                }
                if let ItemDetails::AgentMessage { text } = &item.details {
                    // exec hands over a message only when the model has written all of it.
                    sleep(script.delta_delay * crate::scenario::pieces(text).len() as u32);
                    last_message = Some(text.clone());
                }
                printer.event(&ThreadEvent::ItemCompleted { item });
            }
        }
    }
    pause();

    match &script.end {
        End::Completed(usage) => {
            printer.event(&ThreadEvent::TurnCompleted { usage: *usage });
            if !cli.json {
                human(&format!("tokens used\n{}", blended_total(usage)));
                if let Some(text) = &last_message {
                    raw_stdout(text);
                }
            }
            if let Some(path) = &cli.output_last_message {
                let _ = std::fs::write(path, last_message.as_deref().unwrap_or(""));
            }
            0
        }
        End::Failed(message) => {
            printer.event(&ThreadEvent::Error {
                message: message.clone(),
            });
            printer.event(&ThreadEvent::TurnFailed {
                error: TurnError {
                    message: message.clone(),
                },
            });
            if !cli.json {
                human(&format!("ERROR: {message}"));
            }
            leave_empty_output_file(cli);
            1
        }
        End::Crash { stderr, code } => {
            if !stderr.is_empty() {
                human(stderr);
            }
            leave_empty_output_file(cli);
            *code
        }
        End::Hang { pid_file, failure } => {
            // A child in the same process group, like the shell commands codex runs: killing
            // only this process would leave it behind.
            let child = Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let (Some(path), Ok(child)) = (pid_file, &child) {
                let _ = std::fs::write(path, format!("{} {}", std::process::id(), child.id()));
            }
            if let Some(message) = failure {
                printer.event(&ThreadEvent::Error {
                    message: message.clone(),
                });
                printer.event(&ThreadEvent::TurnFailed {
                    error: TurnError {
                        message: message.clone(),
                    },
                });
            }
            loop {
                sleep(Duration::from_secs(3600));
            }
        }
    }
}

fn leave_empty_output_file(cli: &Cli) {
    if let Some(path) = &cli.output_last_message {
        if !Path::new(path).exists() {
            let _ = std::fs::write(path, "");
        }
    }
}

/// `tokens used` in human output: input minus cached plus output.
fn blended_total(usage: &CodexUsage) -> u64 {
    usage.input_tokens.saturating_sub(usage.cached_input_tokens) + usage.output_tokens
}

fn print_banner(cli: &Cli, workdir: &Path, session_id: &str, prompt: &str) {
    let sandbox = if cli.bypass_sandbox {
        "danger-full-access".to_owned()
    } else {
        cli.sandbox.clone().unwrap_or_else(|| "read-only".into())
    };
    human(&format!("OpenAI Codex v{VERSION}"));
    human("--------");
    human(&format!("workdir: {}", workdir.display()));
    human(&format!(
        "model: {}",
        cli.model.as_deref().unwrap_or(DEFAULT_MODEL)
    ));
    human(&format!(
        "provider: {}",
        cli.config_value("model_provider")
            .unwrap_or_else(|| "openai".into())
    ));
    human("approval: never");
    human(&format!("sandbox: {sandbox}"));
    human(&format!(
        "reasoning effort: {}",
        cli.config_value("model_reasoning_effort")
            .unwrap_or_else(|| "none".into())
    ));
    human(&format!(
        "reasoning summaries: {}",
        cli.config_value("model_reasoning_summary")
            .unwrap_or_else(|| "none".into())
    ));
    human(&format!("session id: {session_id}"));
    human("--------");
    human("user");
    human(prompt);
}

fn print_item_human(details: &ItemDetails, workdir: &Path) {
    match details {
        ItemDetails::Reasoning { text } => human(text),
        ItemDetails::AgentMessage { text } => human(&format!("codex\n{text}")),
        ItemDetails::CommandExecution {
            command,
            aggregated_output,
            exit_code,
            ..
        } => {
            human(&format!("exec\n{command} in {}", workdir.display()));
            let verdict = if *exit_code == Some(0) {
                "succeeded"
            } else {
                "failed"
            };
            human(&format!(" {verdict} in 0ms:\n{aggregated_output}"));
        }
        ItemDetails::Error { message } => human(&format!("warning: {message}")),
        ItemDetails::Other => {}
    }
}
