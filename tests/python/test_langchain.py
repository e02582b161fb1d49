"""LangChain's ChatOpenAI as a user constructs it: for a model named `codex*` it talks to
`POST /v1/responses` (the Responses API), plain, streamed and with bound tools."""

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from conftest import API_KEY


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"18 C and sunny in {city}"


def chat(url):
    return ChatOpenAI(model="codex-local", base_url=url + "/v1", api_key=API_KEY, max_retries=0)


def test_invoke_answers_through_the_responses_api(any_backend_url):
    reply = chat(any_backend_url).invoke("say hi [[reasoning]]")
    assert reply.text == "Reasoned answer from the mock model."
    # A Responses API answer: its id and object, and the reasoning summary as a content block.
    assert reply.id.startswith("resp_")
    assert reply.response_metadata["object"] == "response"
    assert reply.response_metadata["status"] == "completed"
    reasoning = next(block for block in reply.content if block["type"] == "reasoning")
    assert reasoning["summary"][0]["text"].startswith("**Thinking**")
    assert reply.usage_metadata["input_tokens"] == 120
    assert reply.usage_metadata["total_tokens"] == 139
    assert reply.usage_metadata["input_token_details"] == {"cache_read": 40}
    assert reply.usage_metadata["output_token_details"] == {"reasoning": 7}


def test_stream_yields_the_answer_in_chunks_then_usage(any_backend_url):
    chunks = list(chat(any_backend_url).stream("say hi [[multi]]"))
    assert len(chunks) > 2
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert whole.text == "First message.\n\nSecond message."
    assert chunks[-1].response_metadata["status"] == "completed"
    assert whole.usage_metadata["total_tokens"] == 134


def test_bind_tools_returns_a_tool_call_and_answers_its_result(any_backend_url):
    llm = chat(any_backend_url).bind_tools([get_weather])
    messages = [HumanMessage("What's the weather in Paris? [[tool_flow]]")]
    first = llm.invoke(messages)
    assert [(call["name"], call["args"]) for call in first.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert first.tool_calls[0]["id"].startswith("call_")

    messages.append(first)
    messages += [get_weather.invoke(call) for call in first.tool_calls]
    final = llm.invoke(messages)
    assert final.tool_calls == []
    assert final.text == "The tool says: 18 C and sunny in Paris"


def test_streamed_tool_calls_merge_into_one_call_each(any_backend_url):
    llm = chat(any_backend_url).bind_tools([get_weather])
    chunks = list(llm.stream("Weather in Paris and Rome? [[tool_flow:2]]"))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert [(call["name"], call["args"]) for call in whole.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert whole.invalid_tool_calls == []
