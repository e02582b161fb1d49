"""Spec fuzzing: schemathesis generates requests from /openapi.json, valid and not, and checks
that nothing answers 5xx and every response matches the spec (status, content type, headers,
body schema). Bounded in examples and time so it fits in `make test`.

Excluded check: `positive_data_acceptance`. The spec describes the shape of a request, but
some well-shaped requests are refused on purpose with a clear 400: `n` other than 1, an empty
`messages` or a conversation with no text, image parts that are not a data URL of a known
image type, malformed tool definitions. Those 400s are still checked against the error schema.
"""

import os
import subprocess
import sys

from conftest import API_KEY


def test_the_api_conforms_to_its_spec_under_fuzzing(base_url):
    st = os.path.join(os.path.dirname(sys.executable), "st")
    result = subprocess.run(
        [
            st,
            "run",
            base_url + "/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--header",
            f"Authorization: Bearer {API_KEY}",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--max-time",
            "40",
            "--workers",
            "2",
            "--request-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
