"""The official OpenAI Python SDK against the proxy: what a user's code does, end to end."""

import openai
import pytest

from conftest import API_KEY


@pytest.fixture()
def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)


def test_models_list_includes_codex_local(client):
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "codex-local"


def test_plain_completion(client):
    reply = client.chat.completions.create(
        model="codex-local",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "say hi [[reasoning]]"},
        ],
    )
    assert reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "Reasoned answer from the mock model."
    assert choice.message.model_extra["reasoning_content"].startswith("**Thinking**")
    assert reply.usage.prompt_tokens == 120
    assert reply.usage.completion_tokens == 19
    assert reply.usage.total_tokens == 139
    assert reply.usage.prompt_tokens_details.cached_tokens == 40
    assert reply.usage.completion_tokens_details.reasoning_tokens == 7


def test_streamed_completion_with_usage(client):
    stream = client.chat.completions.create(
        model="codex-local",
        messages=[{"role": "user", "content": "say hi [[multi]]"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "First message.\n\nSecond message."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 134


def test_streamed_completion_without_usage(client):
    stream = client.chat.completions.create(
        model="codex-local",
        messages=[{"role": "user", "content": "say hi"}],
        stream=True,
    )
    chunks = list(stream)
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the mock model."


def test_wrong_key_raises_authentication_error(base_url):
    bad = openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.models.list()
    assert caught.value.code == "invalid_api_key"


def test_codex_failures_raise_the_matching_sdk_errors(client):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="codex-local", messages=[{"role": "user", "content": "[[http429]]"}])
    assert caught.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="codex-local", messages=[{"role": "user", "content": "[[context]]"}])
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def test_a_failure_mid_stream_raises_in_the_sdk(client):
    stream = client.chat.completions.create(
        model="codex-local",
        messages=[{"role": "user", "content": "[[answer_then_fail]]"}],
        stream=True,
    )
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert "stream disconnected" in str(caught.value)
