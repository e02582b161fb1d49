"""LiteLLM as a client of the proxy (its `openai/` provider with a custom api_base)."""

import os

# Use LiteLLM's bundled model cost map instead of fetching it from the network.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm  # noqa: E402

from conftest import API_KEY  # noqa: E402


def call(base_url, prompt, **extra):
    return litellm.completion(
        model="openai/codex-local",
        api_base=base_url + "/v1",
        api_key=API_KEY,
        messages=[{"role": "user", "content": prompt}],
        **extra,
    )


def test_plain_completion_with_reasoning_and_usage(base_url):
    reply = call(base_url, "hi [[reasoning]]")
    assert reply.choices[0].message.content == "Reasoned answer from the mock model."
    assert reply.choices[0].message.reasoning_content.startswith("**Thinking**")
    assert reply.usage.total_tokens == 139


def test_streamed_completion(base_url):
    chunks = list(call(base_url, "hi [[multi]]", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "First message.\n\nSecond message."
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop"]
