"""Simon Willison's `llm` CLI set up as its docs say for an OpenAI-compatible server: an
`extra-openai-models.yaml` in its user folder naming the proxy's `/v1` and a key stored with
`llm keys set`, then run as a user runs it. It speaks chat completions, streamed by default;
`--schema` sends a non-strict `json_schema` response_format, which the proxy makes strict."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import API_KEY

# The `llm` script installed beside the suite's Python.
LLM = str(Path(sys.executable).with_name("llm"))


@pytest.fixture(scope="module")
def llm(any_backend_url, tmp_path_factory):
    """Runs `llm ARGS...` in a user folder configured for the proxy (one per backend); returns
    stdout."""
    home = tmp_path_factory.mktemp("llm")
    (home / "extra-openai-models.yaml").write_text(
        "- model_id: codex\n"
        "  model_name: codex-local\n"
        f"  api_base: {any_backend_url}/v1\n"
        "  api_key_name: codex-proxy\n"
        "  supports_schema: true\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LLM_USER_PATH": str(home)}

    def run(*args):
        done = subprocess.run([LLM, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"llm {args}: {done.stderr}"
        return done.stdout

    run("keys", "set", "codex-proxy", "--value", API_KEY)
    return run


def test_a_prompt_prints_the_answer_and_logs_the_proxys_usage(llm):
    assert llm("-m", "codex", "say hi") == "Hello from the mock model.\n"
    [logged] = json.loads(llm("logs", "-n", "1", "--json"))
    assert logged["response"] == "Hello from the mock model."
    assert logged["input_tokens"] == 120
    assert logged["output_tokens"] == 12
    assert json.loads(logged["token_details"]) == {"prompt_tokens_details": {"cached_tokens": 40}}


def test_a_streamed_and_an_unstreamed_answer_are_the_same_text(llm):
    assert llm("-m", "codex", "say hi [[multi]]") == "First message.\n\nSecond message.\n"
    assert llm("-m", "codex", "--no-stream", "say hi [[multi]]") == "First message.\n\nSecond message.\n"


def test_continuing_sends_the_earlier_answer(llm, request):
    llm("-m", "codex", "say hi")  # the latest conversation, which -c continues
    # What codex saw: exec's prompt is the whole transcript, app-server's history is the thread's.
    backend = request.node.callspec.params["any_backend_url"]
    seen = llm("-c", "and again [[echo]]" if backend == "exec" else "and again [[items]]")
    assert "Hello from the mock model." in seen, seen
    assert "and again" in seen, seen


def test_a_schema_answer_is_json_matching_it(llm):
    answer = json.loads(llm("-m", "codex", "--schema", "city, temperature int", "[[json]]"))
    # fake-codex answers an instance of the --output-schema it was given (every property, typed),
    # and `{"answer": ...}` without one: the schema reached codex as its output schema.
    assert answer == {"city": "mock", "temperature": 1}
