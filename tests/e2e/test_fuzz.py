"""schemathesis against the local pipeline, driven by docs/openapi.yaml: zero 5xx, and every
answer in the documented status, content type, headers and schema.

Bounded: a fixed seed, a fixed number of examples per operation, one worker, and a
timeout on the whole run. Two runs, because one check cannot apply to every phase:

- the coverage phase (boundary and just-outside-the-boundary values of every documented
  parameter and body) also runs `negative_data_rejection`: an invalid header value or
  upload request must be refused with a 4xx;
- the fuzzing and stateful phases (random requests, and chains such as upload -> submit ->
  status found from the document's links) run every response check but that one: an
  inline body is an opaque model input, so a "schema-violating" random text or binary body
  is still a valid one, and accepting it is right.

Checks not run anywhere: `ignored_auth` and `missing_required_header` (the local gateway
verifies no signature: unsigned requests are the anonymous caller, docs/local.md), and
`positive_data_acceptance` (a well-formed request may be refused by state or
configuration: 409 for a used upload, 422 for a reused key, 415 for a media type this
deployment does not allow).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local_stack.pipeline import LocalPipeline

pytestmark = pytest.mark.slow

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def _operations() -> int:
    """How many operations docs/openapi.yaml documents (schemathesis reports "<n> selected")."""
    import yaml

    paths = yaml.safe_load(OPENAPI.read_text())["paths"]
    return sum(1 for item in paths.values() for method in item if method in ("get", "post", "put", "delete", "patch"))


SEED = 20261201
# A SigV4-shaped Authorization header: the local gateway names the caller by its access key
# id (signatures are not verified locally), so the fuzzer is one signed caller.
AUTHORIZATION = (
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDSCHEMATHESIS/20260101/us-east-1/execute-api/"
    "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
)
RESPONSE_CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "use_after_free",
    "ensure_resource_availability",
]


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is not installed (requirements-dev.txt pins it)"
    return found


def _run(pipeline: LocalPipeline, tmp_path: Path, *, phases: str, checks: list[str], max_examples: int) -> str:
    command = [
        _schemathesis(),
        "run",
        str(OPENAPI),
        "--url",
        str(pipeline.api_url),
        "-H",
        AUTHORIZATION,
        "--phases",
        phases,
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "35",
        "--no-color",
    ]
    # cwd: schemathesis and hypothesis keep their databases and reports in the working directory.
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-12000:]
    return output


def test_coverage_phase_refuses_every_invalid_input_and_answers_as_documented(
    healthy_pipeline: LocalPipeline, tmp_path: Path
) -> None:
    output = _run(
        healthy_pipeline,
        tmp_path,
        phases="coverage",
        checks=[*RESPONSE_CHECKS, "negative_data_rejection"],
        max_examples=30,
    )
    assert f"{_operations()} selected" in output  # every operation in the document was exercised


def test_random_and_stateful_requests_never_get_a_5xx_or_an_undocumented_answer(
    healthy_pipeline: LocalPipeline, tmp_path: Path
) -> None:
    output = _run(healthy_pipeline, tmp_path, phases="fuzzing,stateful", checks=RESPONSE_CHECKS, max_examples=25)
    assert f"{_operations()} selected" in output
