"""pydantic-ai's OpenAIResponsesModel pointed at the proxy: one plain agent run."""

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from conftest import API_KEY


def test_a_plain_run_answers_with_its_reasoning_and_usage(any_backend_url):
    model = OpenAIResponsesModel(
        "codex-local", provider=OpenAIProvider(base_url=any_backend_url + "/v1", api_key=API_KEY)
    )
    result = Agent(model, instructions="Be brief.").run_sync("say hi [[reasoning]]")
    assert result.output == "Reasoned answer from the mock model."
    response = result.all_messages()[-1]
    assert [part.part_kind for part in response.parts] == ["thinking", "text"]
    assert response.parts[0].content.startswith("**Thinking**")
    assert response.provider_response_id.startswith("resp_")
    assert result.usage.input_tokens == 120
    assert result.usage.output_tokens == 19
