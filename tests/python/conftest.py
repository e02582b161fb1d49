"""Starts the proxy binary on fake-codex for the Python suite (SDK conformance, spec fuzzing).

The binaries come from PROXY_BIN and FAKE_CODEX (the Makefile builds them); the server listens on
an ephemeral loopback port, which it announces on stderr.
"""

import os
import re
import subprocess
import threading

import pytest

API_KEY = "sdk-test-key"


def serve(backend, **extra):
    """The proxy on fake-codex through `backend` (with `extra` settings), until the generator is
    closed."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOST": "127.0.0.1",
        "PORT": "0",
        "API_KEYS": API_KEY,
        "CODEX_PATH": os.environ["FAKE_CODEX"],
        "CODEX_BACKEND": backend,
        "LOG_LEVEL": "info",
        **extra,
    }
    proc = subprocess.Popen(
        [os.environ["PROXY_BIN"]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    address = {}
    ready = threading.Event()

    def drain():
        for line in proc.stderr:
            match = re.search(r"listening on (http://[0-9.:]+)", line)
            if match and not ready.is_set():
                address["url"] = match.group(1)
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert ready.wait(30), "the proxy did not announce its address"
        yield address["url"]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def base_url():
    """The proxy on the exec backend."""
    yield from serve("exec")


@pytest.fixture(scope="session", params=["exec", "app-server"])
def any_backend_url(request):
    """The proxy on each backend in turn: the SDK must not see a difference."""
    yield from serve(request.param)
