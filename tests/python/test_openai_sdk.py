"""The official OpenAI Python SDK against the proxy: what a user's code does, end to end."""

import json

import openai
import pytest

from conftest import API_KEY


@pytest.fixture()
def client(any_backend_url):
    return openai.OpenAI(base_url=any_backend_url + "/v1", api_key=API_KEY, max_retries=0)


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
    bad = openai.OpenAI(base_url=base_url + "/v1", api_key="wrong", max_retries=0)
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


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_tool_call_result_and_final_answer(client):
    messages = [{"role": "user", "content": "What's the weather in Paris? [[tool_flow]]"}]
    first = client.chat.completions.create(model="codex-local", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"})
    final = client.chat.completions.create(model="codex-local", messages=messages, tools=[WEATHER_TOOL])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "The tool says: 18 C and sunny"


def test_streamed_tool_calls_accumulate_by_index(client):
    stream = client.chat.completions.create(
        model="codex-local",
        messages=[{"role": "user", "content": "Weather in Paris and Rome? [[tool_flow:2]]"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls = {}
    finishes = []
    for chunk in stream:
        delta = chunk.choices[0].delta
        for piece in delta.tool_calls or []:
            entry = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += piece.id or ""
            entry["name"] += piece.function.name or ""
            entry["arguments"] += piece.function.arguments or ""
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
    assert finishes == ["tool_calls"]
    assert sorted(calls) == [0, 1]
    assert [json.loads(calls[i]["arguments"])["city"] for i in (0, 1)] == ["Paris", "Rome"]
    assert all(c["id"].startswith("call_") and c["name"] == "get_weather" for c in calls.values())


PNG_1X1 = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_an_image_part_reaches_codex(client):
    reply = client.chat.completions.create(
        model="codex-local",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe it. [[images]]"},
                    {"type": "image_url", "image_url": {"url": PNG_1X1}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content.startswith("IMAGES: ")
    assert "/image-1.png 70" in reply.choices[0].message.content


def test_a_json_schema_response_format(client):
    reply = client.chat.completions.create(
        model="codex-local",
        messages=[{"role": "user", "content": "Weather as JSON. [[json]]"}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "weather",
                "strict": True,
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["city"],
                    "properties": {"city": {"type": "string"}},
                },
            },
        },
    )
    assert json.loads(reply.choices[0].message.content) == {"city": "mock"}


def test_legacy_completions_plain_and_streamed(client):
    reply = client.completions.create(model="codex-local", prompt="Say hi")
    assert reply.object == "text_completion"
    assert reply.choices[0].text == "Hello from the mock model."
    assert reply.choices[0].finish_reason == "stop"
    pieces = [
        chunk.choices[0].text
        for chunk in client.completions.create(model="codex-local", prompt="Say hi", stream=True)
        if chunk.choices
    ]
    assert "".join(pieces) == "Hello from the mock model."


def test_a_model_is_retrieved_by_id(client):
    assert client.models.retrieve("codex-local").id == "codex-local"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_responses_plain_streamed_and_a_tool_round_trip(client):
    reply = client.responses.create(model="codex-local", input="think [[reasoning]]", instructions="Be brief.")
    assert reply.status == "completed"
    assert reply.output_text == "Reasoned answer from the mock model."
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    assert reply.usage.input_tokens == 120

    kinds, text = [], ""
    with client.responses.stream(model="codex-local", input="hi [[reasoning]]") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert text == final.output_text == "Reasoned answer from the mock model."

    tools = [{"type": "function", "name": "get_weather", "description": "The weather in a city.",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    items = [{"role": "user", "content": "Weather in Paris? [[tool_flow]]"}]
    first = client.responses.create(model="codex-local", input=items, tools=tools)
    call = next(item for item in first.output if item.type == "function_call")
    assert json.loads(call.arguments) == {"city": "Paris"}
    items += [call.model_dump(exclude_none=True),
              {"type": "function_call_output", "call_id": call.call_id, "output": "18 C and sunny"}]
    final = client.responses.create(model="codex-local", input=items, tools=tools)
    assert final.output_text == "The tool says: 18 C and sunny"


def test_a_stored_response_is_continued_and_retrieved(client):
    first = client.responses.create(model="codex-local", input="My name is Ada. [[echo]]")
    follow = client.responses.create(model="codex-local", input="Say it again.", previous_response_id=first.id)
    assert follow.previous_response_id == first.id
    assert client.responses.retrieve(follow.id).output_text == follow.output_text
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="codex-local", input="again", previous_response_id=first.id)
