//! The server binary started as a user starts it, on fake-codex and a free loopback port.
//! Shared by the integration tests and the benchmark.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// Every log line so far.
    #[allow(dead_code)] // used by the integration tests only
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server with a clean environment plus `extra`, and waits for its address.
    pub fn start(extra: &[(&str, &str)]) -> Server {
        Server::spawn(
            Command::new(env!("CARGO_BIN_EXE_codex-openai-proxy")),
            extra,
        )
    }

    /// The same, with at most `fds` open files (soft and hard limit alike).
    #[allow(dead_code)] // used by the integration tests only
    pub fn start_with_fd_limit(extra: &[(&str, &str)], fds: u64) -> Server {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(env!("CARGO_BIN_EXE_codex-openai-proxy"));
        // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(move || {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, fds, fds)
                    .map_err(std::io::Error::from)
            });
        }
        Server::spawn(command, extra)
    }

    fn spawn(mut command: Command, extra: &[(&str, &str)]) -> Server {
        let mut child = command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("CODEX_PATH", env!("CARGO_BIN_EXE_fake-codex"))
            // Exec unless `extra` names a backend: what the process tests count is exec's.
            .env("CODEX_BACKEND", "exec")
            // Shorter than the 10 s `Drop` waits, so a server stopped with replies still open
            // ends them itself (removing their temp dirs) instead of being SIGKILLed.
            .env("SHUTDOWN_GRACE_SECS", "2")
            .envs(extra.iter().copied())
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        // Keeps draining the log after the address line, so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address");
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    #[allow(dead_code)] // used by the integration tests only
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// The exit code, once the server has exited within `limit`.
    #[allow(dead_code)] // used by the integration tests only
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server process, in KiB.
    #[allow(dead_code)] // used by the benchmark only
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    /// Stops the server as a user would, with SIGTERM, so it ends its codex runs itself; a
    /// SIGKILL would leave them running unowned. SIGKILL only if it does not exit in time.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
