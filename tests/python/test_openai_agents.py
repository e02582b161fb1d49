"""The OpenAI Agents SDK on its default model class (the Responses API) with the proxy as its
OpenAI client: an agent with one function tool, run to its final output, which is a function
call round trip through `POST /v1/responses`."""

import asyncio

import openai
import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)

from conftest import API_KEY


def weather_agent(url, calls, **extra):
    set_default_openai_client(openai.AsyncOpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0))
    set_tracing_disabled(True)

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        calls.append(city)
        return f"18 C and sunny in {city}"

    return Agent(name="Weather", instructions="Answer with the tool.", tools=[get_weather], **extra)


def test_an_agent_runs_its_tool_and_answers_with_the_result(any_backend_url):
    calls = []
    agent = weather_agent(any_backend_url, calls, model="codex-local")
    result = asyncio.run(Runner.run(agent, "What's the weather in Paris? [[tool_flow]]"))
    assert calls == ["Paris"]
    assert result.final_output == "The tool says: 18 C and sunny in Paris"
    kinds = [item.type for item in result.new_items]
    assert kinds[-3:] == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert [response.response_id[:5] for response in result.raw_responses] == ["resp_", "resp_"]


def test_a_streamed_agent_run_reaches_the_same_output(any_backend_url):
    calls = []
    agent = weather_agent(any_backend_url, calls, model="codex-local")

    async def run():
        result = Runner.run_streamed(agent, "What's the weather in Paris? [[tool_flow]]")
        deltas = [
            event.data.delta
            async for event in result.stream_events()
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
        ]
        return result, deltas

    result, deltas = asyncio.run(run())
    assert calls == ["Paris"]
    assert result.final_output == "The tool says: 18 C and sunny in Paris"
    assert "".join(deltas).endswith("The tool says: 18 C and sunny in Paris")


def test_the_sdk_default_model_name_is_a_clear_404(base_url):
    # An Agent without `model=` asks for the SDK's default model (a gpt-5 name), which the proxy
    # does not list unless CODEX_MODELS names it: the error says where to look.
    agent = weather_agent(base_url, [])
    with pytest.raises(openai.NotFoundError, match="GET /v1/models lists the models"):
        asyncio.run(Runner.run(agent, "hi"))
