#!/usr/bin/env python3
"""Attack harness: runs each known attack against a server binary on fake-codex and measures it.

    python3 tests/attack/attack.py --server PATH --fake-codex PATH [--only NAME,...] [--json FILE]

Every attack starts its own server on 127.0.0.1 (a free port, loopback only), is bounded in
count and time, and ends by itself; a server that refuses the attack (400/401/413/429, a closed
connection) or dies is reported as such. The server process is measured through /proc: CPU
seconds, resident memory, open fds and child processes. One table is printed at the end; `--json`
also writes the figures. `h2` (tests/attack/requirements.txt) is needed for the HTTP/2 row only.
"""

import argparse
import ctypes
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

HOST = "127.0.0.1"  # every attack targets this address and no other
MODEL = "codex-local"
API_KEY = "secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
MB = 1024 * 1024
PNG_1X1 = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

# Sizes: big enough to show each effect, small enough for a run of a few minutes.
SCHEMA_DEPTH = 20
RSS_STOP_KIB = 4 * MB  # 4 GiB: a server past this is killed
PATTERN_ITEMS = 400
PATTERN_ITEM = "a" * 40 + "b"  # then its index: each subject differs, so none is cached
PROMPT_BYTES = 19 * MB
BODY_SOCKETS = 20
BODY_BYTES = 19 * MB
SLOWLORIS_SOCKETS = 1000
IDLE_CONNECTIONS = 200
LOW_NOFILE = 256
FD_FLOOD_SOCKETS = 400
H2_STREAMS = 1000
HEALTH_BURST = 200
LABEL_REQUESTS = 100
LABEL_BYTES = MB
TINY_IMAGES = 40_000
CUT_REQUESTS = 1000
ABORTED_STREAMS = 200
CONNECTION_CAP = 60.0


# ---------------------------------------------------------------------------------------------
# The server and its measurements


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (index 0 is the state)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KIB


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid):
    """{child pid: state letter} of the processes whose parent is `pid`."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = proc_stat(entry)
            except (OSError, IndexError):
                continue
            if fields[1] == str(pid):
                found[int(entry)] = fields[0]
    return found


def processes_of(exe):
    """Pids of every process running the executable `exe`, whoever its parent."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/exe") == exe:
                    found.append(int(entry))
            except OSError:
                pass
    return found


class Probe:
    """Samples a server from a thread while an attack runs: CPU, RSS (and its peak), fds and
    child processes. Kills the server if its RSS passes `rss_stop_kib`."""

    def __init__(self, server, interval=0.05, rss_stop_kib=RSS_STOP_KIB):
        self.server, self.interval, self.rss_stop_kib = server, interval, rss_stop_kib
        self.pid = server.pid
        self.rss_peak = self.fds_max = self.children_max = 0
        self.children_seen = set()
        self.stopped_for_rss = False
        self._done = threading.Event()

    def __enter__(self):
        self.t0 = time.monotonic()
        self.cpu0 = self.cpu1 = cpu_seconds(self.pid)
        self.rss0 = self.rss_peak = rss_kib(self.pid)
        self.fds0 = self.fds_max = fd_count(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._done.is_set():
            try:
                self.cpu1 = cpu_seconds(self.pid)
                rss = rss_kib(self.pid)
                self.rss_peak = max(self.rss_peak, rss)
                self.fds_max = max(self.fds_max, fd_count(self.pid))
                kids = children(self.pid)
            except (OSError, IndexError, ValueError):
                return  # the server is gone
            self.children_seen.update(kids)
            self.children_max = max(self.children_max, len(kids))
            if rss > self.rss_stop_kib:
                self.stopped_for_rss = True
                self.server.kill()
                return
            self._done.wait(self.interval)

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.seconds = time.monotonic() - self.t0
        try:
            self.cpu1 = cpu_seconds(self.pid)
        except OSError:
            pass

    @property
    def cpu(self):
        return self.cpu1 - self.cpu0

    @property
    def rss_delta_mb(self):
        return (self.rss_peak - self.rss0) / 1024


class Server:
    """The server binary on fake-codex, started with a clean environment plus `env`."""

    def __init__(self, binary, fake_codex, env, nofile=None):
        self.workdir = tempfile.mkdtemp(prefix="attack-server-")
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.workdir,
            "HOST": HOST,
            "PORT": "0",
            "CODEX_PATH": fake_codex,
            "CODEX_BACKEND": "exec",
            "SHUTDOWN_GRACE_SECS": "2",
            **env,
        }
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        limit = (min(nofile or hard, hard),) * 2
        self.proc = subprocess.Popen(
            [binary],
            env=full_env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit),
        )
        self.pid = self.proc.pid
        self.log = []
        self._addr = None
        self._ready = threading.Event()
        threading.Thread(target=self._drain_log, daemon=True).start()
        if not self._ready.wait(30) or self._addr is None:
            self.stop()
            raise RuntimeError("the server did not log its address: " + " | ".join(self.log[-5:]))
        host, port = self._addr.rsplit(":", 1)
        if host != HOST:
            self.stop()
            raise RuntimeError(f"the server listens on {host}, not {HOST}")
        self.port = int(port)

    def _drain_log(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log.append(line)
            if self._addr is None and "listening on http://" in line:
                self._addr = line.split("listening on http://", 1)[1].split()[0]
                self._ready.set()
        self._ready.set()

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Clients


@dataclass
class Reply:
    status: int | None
    seconds: float
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    error: str = ""

    def describe(self):
        if self.status is None:
            return self.error
        return f"{self.status} in {self.seconds:.2f} s"

    def error_message(self):
        try:
            return json.loads(self.body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            return self.body[:200].decode("utf-8", "replace")

    def outcome(self, limit=100):
        """The status with the error message, or with the start of the answer."""
        if self.status is None:
            return self.error
        try:
            answer = json.loads(self.body)["choices"][0]["message"]["content"]
            return f"{self.describe()}, answered {answer[:limit]!r}"
        except (ValueError, KeyError, IndexError, TypeError):
            return f"{self.describe()}: {self.error_message()[:limit]}"


def connect(port, timeout=10.0, rcvbuf=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((HOST, port))
    return sock


def abort(sock):
    """Closes with a reset, so the server sees the client gone at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def encode_request(method, path, body=None, headers=None, keep_alive=False):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    head = {"Host": f"{HOST}", "Connection": "keep-alive" if keep_alive else "close"}
    if body is not None:
        head["Content-Type"] = "application/json"
        head["Content-Length"] = str(len(body))
    head.update(headers or {})
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def read_head(sock, buf=b""):
    """Reads up to the end of a response head; returns (status, headers, rest of the bytes)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def read_body(sock, headers, buf):
    """The response body after its head: by Content-Length, chunked, or to the end."""
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(buf) < length:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        return buf[:length], buf[length:]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return body, b""
                buf += chunk
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return body + buf, b""
                buf += chunk
            if size == 0:
                return body, buf[2:]
            body, buf = body + buf[:size], buf[size + 2 :]
    while chunk := sock.recv(1 << 20):
        buf += chunk
    return buf, b""


def request(port, method, path, body=None, headers=None, timeout=30.0):
    """One request on a new connection, read to its end within `timeout` (per socket read)."""
    t0 = time.monotonic()
    try:
        with connect(port, timeout) as sock:
            sock.sendall(encode_request(method, path, body, headers))
            status, head, rest = read_head(sock)
            data, _ = read_body(sock, head, rest)
            return Reply(status, time.monotonic() - t0, data, head)
    except socket.timeout:
        return Reply(None, time.monotonic() - t0, error=f"timeout after {timeout:.0f} s")
    except OSError as err:
        return Reply(None, time.monotonic() - t0, error=f"no reply ({err.__class__.__name__})")


def chat(port, payload, timeout=30.0, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return request(port, "POST", "/v1/chat/completions", payload, headers, timeout)


def user(content, **extra):
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def tool_call_payload(name, schema, arguments):
    """A conversation in which fake-codex's `tool_flow` scenario answers with the tool result
    it was given, here a call of `name` with `arguments`: the model "calls" the tool with
    arguments of our choosing, and the server checks them against `schema`."""
    return {
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "Use the tool. [[tool_flow]]"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"name": name, "arguments": arguments})},
        ],
        "tools": [{"type": "function", "function": {"name": name, "parameters": schema}}],
    }


def concurrently(count, job):
    """Runs job(i) for i in range(count) at once; returns the results in order."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(job, range(count)))


def latency_probe(port, path, stop, every=0.5, timeout=10.0):
    """Requests `path` every `every` s until `stop` is set; returns the replies."""
    replies = []
    while not stop.is_set():
        replies.append(request(port, "GET", path, timeout=timeout))
        stop.wait(every)
    return replies


def worst(replies):
    """The worst latency of a series of probes, or how many failed."""
    if not replies:
        return "no probe"
    failed = [r for r in replies if r.status is None]
    if failed:
        return f"{failed[0].error} ({len(failed)} of {len(replies)} probes)"
    return f"{max(r.seconds for r in replies):.2f} s ({len(replies)} probes)"


def wait_closed(sock, cap):
    """Seconds until the server closes `sock` (reading and discarding), or None after `cap`."""
    t0 = time.monotonic()
    sock.settimeout(1.0)
    while time.monotonic() - t0 < cap:
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def silent_and_open(sock):
    """True while the server has neither answered on `sock` nor closed it."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(30)


def closed_after(seconds, cap):
    return f"{seconds:.1f} s" if seconds is not None else f"still open after {cap:.0f} s"


# ---------------------------------------------------------------------------------------------
# The attacks: each starts its own server(s) and reports rows.


class Context:
    def __init__(self, args, name):
        self.args, self.name = args, name
        self.rows = []
        self.servers = []
        self.sockets = []

    def server(self, env=None, nofile=None):
        server = Server(self.args.server, self.args.fake_codex, env or {}, nofile)
        self.servers.append(server)
        return server

    def row(self, measure, value, unit=""):
        self.rows.append((self.name, measure, value, unit))
        print(f"  {measure}: {fmt(value, unit)}", file=sys.stderr, flush=True)

    def died(self, server):
        """Adds a row if the server died during the attack; True if it did."""
        if server.alive():
            return False
        self.row("server died", f"exit {server.proc.returncode}")
        return True

    def close(self):
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
        for server in self.servers:
            server.stop()


def tool_schema_bomb(ctx):
    depth = SCHEMA_DEPTH
    defs = {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(depth)}
    defs[f"d{depth}"] = {"type": "integer"}
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": defs}
    ctx.row("size used", f"depth {depth}, schema {len(json.dumps(schema))} bytes")
    server = ctx.server()
    tools = [{"type": "function", "function": {"name": "bomb", "parameters": schema}}]
    with Probe(server) as probe:
        reply = chat(server.port, user("hello", tools=tools), timeout=60)
    ctx.row("tool only, no call (schema compile): status", reply.describe())
    ctx.row("tool only: CPU", probe.cpu, "s")
    ctx.row("tool only: RSS delta", probe.rss_delta_mb, "MB")
    if ctx.died(server):
        return
    # Every branch fails at the leaf (a string is not an integer): all 2^depth paths are tried.
    with Probe(server) as probe:
        reply = chat(server.port, tool_call_payload("bomb", schema, {"x": "not a number"}), timeout=90)
    ctx.row("call checked against the schema: status", reply.describe())
    ctx.row("call: CPU", probe.cpu, "s")
    ctx.row("call: RSS delta (peak)", probe.rss_delta_mb, "MB")
    if probe.stopped_for_rss:
        ctx.row("call: stopped", f"RSS passed {RSS_STOP_KIB // 1024} MiB; server killed")
    else:
        ctx.died(server)


def tool_pattern_backtrack(ctx):
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string", "pattern": "^(a|aa)+\\1$"}}},
    }
    arguments = {"items": [f"{PATTERN_ITEM}{i}" for i in range(PATTERN_ITEMS)]}
    payload = tool_call_payload("match", schema, arguments)
    ctx.row("size used", f"{PATTERN_ITEMS} distinct items '{PATTERN_ITEM[-3:]}<n>' ({len(PATTERN_ITEM)} chars + index), pattern ^(a|aa)+\\1$")
    server = ctx.server()
    with Probe(server) as probe:
        reply = chat(server.port, payload, timeout=120)
    ctx.row("one request: status", reply.describe())
    ctx.row("one request: CPU", probe.cpu, "s")
    if ctx.died(server):
        return
    stop = threading.Event()
    with ThreadPoolExecutor(3) as pool, Probe(server) as probe:
        health = pool.submit(latency_probe, server.port, "/health", stop)
        replies = list(pool.map(lambda _: chat(server.port, payload, timeout=120), range(2)))
        stop.set()
        health = health.result()
    ctx.row("two at once: statuses", ", ".join(r.describe() for r in replies))
    ctx.row("two at once: CPU", probe.cpu, "s")
    ctx.row("two at once: wall", probe.seconds, "s")
    ctx.row("two at once: worst /health latency", worst(health))
    ctx.died(server)


def prose(size, seed=1):
    """About `size` bytes of word-like text (ordinary tokens, not a pathological input)."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    text = " ".join(rng.choice(words) for _ in range(size // 6))
    return text[:size]


def prompt_count(ctx):
    payload = json.dumps(user(prose(PROMPT_BYTES))).encode()
    ctx.row("size used", f"{len(payload) / MB:.1f} MiB body (MAX_BODY_BYTES 20 MiB)")
    server = ctx.server()
    with Probe(server) as probe:
        reply = chat(server.port, payload, timeout=120)
    ctx.row("one: status", reply.outcome(80))
    ctx.row("one: CPU", probe.cpu, "s")
    ctx.row("one: RSS delta", probe.rss_delta_mb, "MB")
    if ctx.died(server):
        return
    with Probe(server) as probe:
        replies = concurrently(3, lambda _: chat(server.port, payload, timeout=120))
    ctx.row("three at once: statuses", ", ".join(r.describe() for r in replies))
    ctx.row("three at once: CPU", probe.cpu, "s")
    ctx.row("three at once: RSS delta", probe.rss_delta_mb, "MB")
    ctx.died(server)


def body_before_key(ctx):
    server = ctx.server({"API_KEYS": API_KEY})
    ctx.row("size used", f"{BODY_SOCKETS} sockets, Content-Length {BODY_BYTES / MB:.0f} MiB, no Authorization")
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BODY_BYTES}\r\n\r\n"
    ).encode()
    body = json.dumps(user("x" * (BODY_BYTES - 100))).encode().ljust(BODY_BYTES)
    socks = [connect(server.port, timeout=30) for _ in range(BODY_SOCKETS)]
    ctx.sockets += socks

    def send(sock, data):
        try:
            sock.sendall(data)
            return True
        except OSError:
            return False  # the server stopped reading: it answered early

    with Probe(server) as probe:
        for sock in socks:
            send(sock, head + body[:65536])
        time.sleep(2)
        early = sum(not silent_and_open(s) for s in socks)
        ctx.row("answered after 64 KiB of the body (2 s wait)", f"{early}/{BODY_SOCKETS}")
        concurrently(BODY_SOCKETS, lambda i: send(socks[i], body[65536:-1]))
        time.sleep(1)
        held = sum(not silent_and_open(s) for s in socks)
        ctx.row("answered with all but the last byte sent", f"{held}/{BODY_SOCKETS}")
        ctx.row("RSS delta, bodies buffered before the key check", probe.rss_delta_mb, "MB")

        def finish(i):
            t0 = time.monotonic()
            send(socks[i], body[-1:])
            try:
                status, _, _ = read_head(socks[i])
                return status, time.monotonic() - t0
            except OSError as err:
                return err.__class__.__name__, time.monotonic() - t0

        finished = concurrently(BODY_SOCKETS, finish)
    statuses = sorted({str(s) for s, _ in finished})
    ctx.row("status once the body is complete", ", ".join(statuses))
    ctx.row("time from last byte to reply (max)", max(t for _, t in finished), "s")
    ctx.died(server)


def connections(ctx):
    server = ctx.server()
    port = server.port
    results = {}

    def half_header():
        sock = connect(port)
        ctx.sockets.append(sock)
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        results["half"] = wait_closed(sock, CONNECTION_CAP)

    def idle_keepalive():
        sock = connect(port)
        ctx.sockets.append(sock)
        sock.sendall(encode_request("GET", "/v1/models", keep_alive=True))
        _, head, rest = read_head(sock)
        read_body(sock, head, rest)
        results["idle"] = wait_closed(sock, CONNECTION_CAP)

    waiters = [threading.Thread(target=f, daemon=True) for f in (half_header, idle_keepalive)]
    for t in waiters:
        t.start()

    # (d) fds per idle connection.
    fds_before = fd_count(server.pid)
    idle = [connect(port) for _ in range(IDLE_CONNECTIONS)]
    ctx.sockets += idle
    time.sleep(1)
    per_connection = (fd_count(server.pid) - fds_before) / IDLE_CONNECTIONS
    ctx.row(f"fds per idle connection ({IDLE_CONNECTIONS} open)", round(per_connection, 2))
    for sock in idle:
        sock.close()

    # (c) slowloris: partial headers, one more header line per second.
    loris = []
    for _ in range(SLOWLORIS_SOCKETS):
        sock = connect(port)
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        loris.append(sock)
    ctx.sockets += loris
    models = []
    for second in range(8):
        for sock in loris:
            try:
                sock.sendall(f"X-Drip-{second}: x\r\n".encode())
            except OSError:
                pass
        models.append(request(port, "GET", "/v1/models", timeout=10))
        time.sleep(1)
    still_open = sum(silent_and_open(sock) for sock in loris)
    ctx.row(f"slowloris ({SLOWLORIS_SOCKETS} sockets, 8 s): still open", f"{still_open}/{SLOWLORIS_SOCKETS}")
    ctx.row("slowloris: GET /v1/models meanwhile (worst)", worst(models))
    for sock in loris:
        sock.close()

    h2_concurrency(ctx, port)

    for t in waiters:
        t.join(CONNECTION_CAP + 5)
    ctx.row("half-sent header: closed by the server after", closed_after(results.get("half"), CONNECTION_CAP))
    ctx.row("idle keep-alive: closed by the server after", closed_after(results.get("idle"), CONNECTION_CAP))
    if not ctx.died(server):
        server.stop()
    fd_exhaustion(ctx)


def h2_concurrency(ctx, port):
    """(f) HTTP/2 prior knowledge: the advertised stream limit, and how many of H2_STREAMS slow
    requests one connection keeps in flight at once."""
    try:
        import h2.config
        import h2.connection
        import h2.events
        import h2.settings
    except ImportError:
        ctx.row("h2c", "skipped: pip install -r tests/attack/requirements.txt")
        return
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    sock = connect(port)
    ctx.sockets.append(sock)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    advertised, refused, answered = "not sent (unlimited)", set(), set()
    settings_seen = False

    def pump(seconds):
        nonlocal advertised, settings_seen
        end = time.monotonic() + seconds
        sock.settimeout(0.2)
        while time.monotonic() < end:
            try:
                data = sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not data:
                return False
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    settings_seen = True
                    limit = event.changed_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
                    if limit is not None:
                        advertised = limit.new_value
                elif isinstance(event, h2.events.StreamReset):
                    refused.add(event.stream_id)
                elif isinstance(event, h2.events.ResponseReceived):
                    answered.add(event.stream_id)
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            sock.sendall(conn.data_to_send())
        return True

    pump(1.0)
    ctx.row("h2c: SETTINGS_MAX_CONCURRENT_STREAMS", advertised if settings_seen else "no SETTINGS frame (no h2c)")
    if not settings_seen:
        return
    body = json.dumps(user("slow [[slow:3000]]")).encode()
    opened = 0
    try:
        for _ in range(H2_STREAMS):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(
                stream,
                [(":method", "POST"), (":path", "/v1/chat/completions"), (":scheme", "http"),
                 (":authority", HOST), ("content-type", "application/json"), ("content-length", str(len(body)))],
            )
            conn.send_data(stream, body, end_stream=True)
            opened += 1
        sock.sendall(conn.data_to_send())
    except Exception as err:  # the h2 state machine refuses more streams, or the socket closed
        ctx.row("h2c: opening streams stopped", f"after {opened}: {err.__class__.__name__}")
    pump(2.0)
    in_flight = opened - len(refused) - len(answered)
    ctx.row(f"h2c: of {opened} slow requests, in flight after 2 s", in_flight)
    gauges = {}
    for line in request(port, "GET", "/metrics", timeout=10).body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in ("codex_proxy_codex_running", "codex_proxy_codex_queued"):
            gauges[name] = value
    ctx.row("h2c: server gauges codex_running / codex_queued",
            f"{gauges.get('codex_proxy_codex_running')} / {gauges.get('codex_proxy_codex_queued')}")
    ctx.row("h2c: refused (RST_STREAM) / answered", f"{len(refused)} / {len(answered)}")
    abort(sock)


def fd_exhaustion(ctx):
    """(e) A server with a low fd limit and more connections than it can hold."""
    server = ctx.server(nofile=LOW_NOFILE)
    ctx.row("fd exhaustion: size used", f"RLIMIT_NOFILE {LOW_NOFILE}, {FD_FLOOD_SOCKETS} connections")
    flood = []
    for _ in range(FD_FLOOD_SOCKETS):
        try:
            flood.append(connect(server.port, timeout=2))
        except OSError:
            break
    ctx.sockets += flood
    time.sleep(1)
    cpu0 = cpu_seconds(server.pid)
    time.sleep(5)
    ctx.row("fd exhaustion: server CPU while held", round((cpu_seconds(server.pid) - cpu0) / 5 * 100), "%")
    ctx.row("fd exhaustion: new GET /v1/models while held", request(server.port, "GET", "/v1/models", timeout=10).describe())
    for sock in flood:
        sock.close()
    time.sleep(1)
    ctx.row("fd exhaustion: new GET /v1/models after closing", request(server.port, "GET", "/v1/models", timeout=10).describe())
    ctx.died(server)


def health_processes(ctx):
    server = ctx.server()
    with Probe(server, interval=0.005) as probe:
        replies = concurrently(HEALTH_BURST, lambda _: request(server.port, "GET", "/health", timeout=30))
    ctx.row("size used", f"{HEALTH_BURST} concurrent GET /health")
    ctx.row("distinct child processes seen (sampled every 5 ms: a lower bound)", len(probe.children_seen))
    ctx.row("child processes at once (max)", probe.children_max)
    times = sorted(r.seconds for r in replies if r.status is not None)
    statuses = sorted({r.describe().split()[0] for r in replies})
    ctx.row("statuses", ", ".join(statuses))
    if times:
        ctx.row("latency p50 / max", f"{statistics.median(times):.2f} / {times[-1]:.2f} s")
    ctx.died(server)


def never_reading_stream(ctx):
    env = {"MAX_CONCURRENCY": "2", "CODEX_IDLE_TIMEOUT_SECS": "5", "QUEUE_TIMEOUT_SECS": "30"}
    server = ctx.server(env)
    # A 1 MiB [[big_answer]] fits in the server's autotuned send buffer (about 4 MiB on
    # loopback) and its reply completes; an endless series of small messages fills it.
    scenario = "[[stamped:200000:0]]"
    ctx.row("size used", f"MAX_CONCURRENCY=2, CODEX_IDLE_TIMEOUT_SECS=5, 2 streams of {scenario} (small messages without end), SO_RCVBUF 4 KiB, never read")
    t0 = time.monotonic()
    stuck = []
    for _ in range(2):
        sock = connect(server.port, rcvbuf=4096)
        sock.sendall(encode_request("POST", "/v1/chat/completions", user(scenario, stream=True)))
        stuck.append(sock)
    ctx.sockets += stuck
    time.sleep(2)
    with ThreadPoolExecutor(1) as pool:
        third = pool.submit(chat, server.port, user("hello"), 40)
        time.sleep(max(0, 15 - (time.monotonic() - t0)))
        kids = children(server.pid)
        ctx.row("codex children after 15 s", f"{len(kids)} ({', '.join(f'{p}:{s}' for p, s in kids.items()) or 'none'})")
        reply = third.result()
    ctx.row("third request: status", reply.describe())
    ctx.died(server)


def metrics_labels(ctx):
    server = ctx.server()
    ctx.row("size used", f"{LABEL_REQUESTS} requests, each a different {LABEL_BYTES // MB} MiB model name")
    with Probe(server) as probe:
        statuses = set()
        for i in range(LABEL_REQUESTS):
            statuses.add(chat(server.port, {"model": f"{i}-" + "m" * LABEL_BYTES, "messages": [{"role": "user", "content": "hi"}]}).describe().split()[0])
        metrics = request(server.port, "GET", "/metrics", timeout=60)
    ctx.row("statuses", ", ".join(sorted(statuses)))
    ctx.row("/metrics body", len(metrics.body) / MB, "MB")
    ctx.row("RSS delta", probe.rss_delta_mb, "MB")
    ctx.died(server)


def small_checks(ctx):
    server = ctx.server({"API_KEYS": API_KEY})
    port = server.port
    auth = {"Authorization": f"Bearer {API_KEY}"}
    reply = request(port, "POST", "/v1/chat/completions", user("hi"), {"Authorization": f"BEARER {API_KEY}"})
    ctx.row("Authorization: BEARER <key>", reply.describe())
    ctx.row('empty lone user message ""', chat(port, user(""), key=API_KEY).outcome())
    ctx.row('"content": 123', chat(port, user(123), key=API_KEY).outcome())

    parts = [{"type": "text", "text": "what are these?"}] + [{"type": "image_url", "image_url": {"url": PNG_1X1}}] * TINY_IMAGES
    reply = chat(port, {"model": MODEL, "messages": [{"role": "user", "content": parts}]}, timeout=120, key=API_KEY)
    ctx.row(f"{TINY_IMAGES} 1x1 PNG images", reply.outcome(160))

    with connect(port) as sock:
        sock.sendall(encode_request("POST", "/v1/chat/completions", user("hi"), auth))
        sock.shutdown(socket.SHUT_WR)
        try:
            status, _, _ = read_head(sock)
            outcome = str(status)
        except socket.timeout:
            outcome = "no reply within 10 s"
        except OSError as err:
            outcome = f"no reply, connection closed ({err.__class__.__name__})"
    ctx.row("half-closed (SHUT_WR) after a complete request", outcome)

    forged = 'abc}forged="1"=x'
    request(port, "POST", "/v1/chat/completions", user("hi"), {**auth, "X-Request-Id": forged})
    time.sleep(0.3)
    lines = [line for line in server.log if "forged" in line]
    shown = lines[-1][lines[-1].find("request{") :][:120] if lines else "not in the log"
    ctx.row(f"X-Request-Id: {forged} in the log", shown)
    ctx.died(server)


def sigterm_stream(ctx):
    server = ctx.server({"SHUTDOWN_GRACE_SECS": "2"})
    sock = connect(server.port, timeout=15)
    ctx.sockets.append(sock)
    sock.sendall(encode_request("POST", "/v1/chat/completions", user("[[slow:10000]]", stream=True)))
    status, head, rest = read_head(sock)
    time.sleep(1)
    t0 = time.monotonic()
    server.signal(signal.SIGTERM)
    try:
        data, _ = read_body(sock, head, rest)
    except OSError as err:
        data = rest
        ctx.row("stream read", f"ended by {err.__class__.__name__}")
    ctx.row("stream status / ended after SIGTERM", f"{status}, {time.monotonic() - t0:.1f} s")
    ctx.row('in-band data: {"error"...} event', b'data: {"error"' in data)
    ctx.row("data: [DONE]", b"data: [DONE]" in data)
    try:
        server.proc.wait(15)
        ctx.row("server exit code", server.proc.returncode)
    except subprocess.TimeoutExpired:
        ctx.row("server exit code", "still running 15 s after SIGTERM")


def app_server_threads(ctx):
    server = ctx.server({"CODEX_BACKEND": "app-server"})
    ctx.row("size used", f"{CUT_REQUESTS} streamed requests cut within 50 ms (exponential, mean 5 ms), 8 at a time")
    payload = encode_request("POST", "/v1/chat/completions", user("[[slow:200]]", stream=True))
    rng = random.Random(7)
    # Most cuts early, while the thread is being set up; a few later, mid-turn.
    delays = [min(0.05, rng.expovariate(1 / 0.005)) for _ in range(CUT_REQUESTS)]

    def cut(i):
        sock = connect(server.port)
        sock.sendall(payload)
        time.sleep(delays[i])
        abort(sock)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(cut, range(CUT_REQUESTS)))
    time.sleep(2)
    reply = chat(server.port, user("[[threads]]"))
    try:
        answer = json.loads(reply.body)["choices"][0]["message"]["content"]
        loaded = int(answer.split()[-1]) - 1  # less the thread of this very request
        ctx.row("threads still loaded in the app-server", loaded)
    except (ValueError, KeyError, IndexError, TypeError):
        ctx.row("threads request", reply.describe())
    ctx.died(server)


def held(ctx):
    server = ctx.server()
    port = server.port
    verdict = lambda ok: "pass" if ok else "FAIL"
    # hyper's own limit on an HTTP/1 head (about 400 KiB) is what holds here.
    reply = request(port, "GET", "/health", headers={"X-Big": "a" * (1 << 20)})
    ctx.row("1 MiB header gets 431", f"{verdict(reply.status == 431)} ({reply.describe()})")
    for size in (64 << 10, 256 << 10, 512 << 10, 1 << 20):
        if request(port, "GET", "/health", headers={"X-Big": "a" * size}).status == 431:
            ctx.row("smallest header tried that gets 431", f"{size >> 10} KiB (tried 64, 256, 512, 1024)")
            break
    else:
        ctx.row("smallest header tried that gets 431", "none up to 1024 KiB")
    reply = request(port, "POST", "/v1/chat/completions", b"[" * 100_000, timeout=10)
    ctx.row("100k '[' body gets 400 quickly", f"{verdict(reply.status == 400 and reply.seconds < 2)} ({reply.describe()})")

    payload = encode_request("POST", "/v1/chat/completions", user("[[slow:300]]", stream=True))

    def aborted(_):
        sock = connect(port)
        sock.sendall(payload)
        try:
            read_head(sock)
            sock.recv(1)
        except OSError:
            pass
        abort(sock)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(aborted, range(ABORTED_STREAMS)))
    time.sleep(3)
    left = processes_of(os.path.realpath(ctx.args.fake_codex))
    ctx.row(f"{ABORTED_STREAMS} aborted streams leave no fake-codex after 3 s", f"{verdict(not left)} ({len(left)} left)")

    with connect(port) as sock:
        sock.sendall(
            encode_request("GET", "/v1/models", headers={"X-Request-Id": "first"}, keep_alive=True)
            + encode_request("GET", "/v1/models", headers={"X-Request-Id": "second"})
        )
        ids = []
        try:
            rest = b""
            for _ in range(2):
                _, head, rest = read_head(sock, rest)
                _, rest = read_body(sock, head, rest)
                ids.append(head.get("x-request-id"))
        except OSError:
            pass
    ctx.row("pipelined requests answered in order", f"{verdict(ids == ['first', 'second'])} ({ids})")
    ctx.died(server)


ATTACKS = {
    "tool-schema-bomb": tool_schema_bomb,
    "tool-pattern-backtrack": tool_pattern_backtrack,
    "prompt-count": prompt_count,
    "body-before-key": body_before_key,
    "connections": connections,
    "health-processes": health_processes,
    "never-reading-stream": never_reading_stream,
    "metrics-labels": metrics_labels,
    "small-checks": small_checks,
    "sigterm-stream": sigterm_stream,
    "app-server-threads": app_server_threads,
    "held": held,
}


# ---------------------------------------------------------------------------------------------
# Running and reporting


def fmt(value, unit=""):
    if isinstance(value, float):
        value = f"{value:.2f}"
    return f"{value} {unit}".strip()


def table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    out = [f"{'attack':<{widths[0]}}  {'measure':<{widths[1]}}  value"]
    out.append("-" * (widths[0] + widths[1] + 30))
    for attack, measure, value in rows:
        out.append(f"{attack:<{widths[0]}}  {measure:<{widths[1]}}  {value}")
    return "\n".join(out)


def reap_everything_started():
    """Kills what is left of what this run started: as the child subreaper, orphaned codex
    processes of a killed server were handed to this process."""
    for pid in children(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="the codex-openai-proxy binary")
    parser.add_argument("--fake-codex", required=True, help="the fake-codex binary")
    parser.add_argument("--only", help="comma-separated attacks: " + ", ".join(ATTACKS))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.server, args.fake_codex = os.path.realpath(args.server), os.path.realpath(args.fake_codex)
    names = args.only.split(",") if args.only else list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the slowloris sockets
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    started = time.monotonic()
    rows, report = [], {"attacks": {}}
    try:
        for name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            ctx = Context(args, name)
            t0 = time.monotonic()
            try:
                ATTACKS[name](ctx)
            except Exception as err:  # an attack that could not finish still reports why
                ctx.row("attack error", f"{err.__class__.__name__}: {err}")
                if ctx.servers and not ctx.servers[-1].alive():
                    ctx.row("server died", f"exit {ctx.servers[-1].proc.returncode}")
            finally:
                ctx.close()
            seconds = time.monotonic() - t0
            rows += [(a, m, fmt(v, u)) for a, m, v, u in ctx.rows]
            report["attacks"][name] = {
                "seconds": round(seconds, 2),
                "rows": [{"measure": m, "value": v, "unit": u} for _, m, v, u in ctx.rows],
            }
    finally:
        reap_everything_started()
    report["total_seconds"] = round(time.monotonic() - started, 1)
    print(table(rows))
    print(f"\ntotal: {report['total_seconds']} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
