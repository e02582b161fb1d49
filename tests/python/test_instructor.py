"""instructor in JSON_SCHEMA mode: it sends the pydantic model's schema as a non-strict
`json_schema` response_format (an optional field is neither required nor closed), which the
proxy makes strict for codex; the answer comes back as a validated model instance."""

import json
from typing import Optional

import instructor
import openai
from pydantic import BaseModel

from conftest import API_KEY


class Weather(BaseModel):
    city: str
    temperature: int
    note: Optional[str] = None


def test_json_schema_mode_returns_a_validated_model(any_backend_url):
    client = instructor.from_openai(
        openai.OpenAI(base_url=any_backend_url + "/v1", api_key=API_KEY, max_retries=0),
        mode=instructor.Mode.JSON_SCHEMA,
    )
    sent = []
    client.on("completion:kwargs", lambda *args, **kwargs: sent.append(kwargs))
    weather, completion = client.chat.completions.create_with_completion(
        model="codex-local",
        response_model=Weather,
        messages=[{"role": "user", "content": "The weather in Paris, as JSON. [[json]]"}],
        max_retries=0,
    )
    # What instructor sent: the schema as pydantic writes it, not strict, `note` optional.
    json_schema = sent[0]["response_format"]["json_schema"]
    assert "strict" not in json_schema
    assert json_schema["schema"]["required"] == ["city", "temperature"]
    assert "additionalProperties" not in json_schema["schema"]

    assert isinstance(weather, Weather)
    # fake-codex answers an instance of the schema it was given: the optional field is there as
    # null, as a model under the strict schema answers it.
    assert weather.model_dump() == {"city": "mock", "temperature": 1, "note": None}
    assert json.loads(completion.choices[0].message.content) == {"city": "mock", "temperature": 1, "note": None}
    assert completion.choices[0].finish_reason == "stop"
