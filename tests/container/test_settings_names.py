"""The server reads every variable the stack and the local stack set, under the contract's names."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_server import contract
from model_server.settings import Settings, describe_errors
from pydantic import ValidationError

# (variable, value set, field of Settings, value read)
READ = [
    (contract.BIND_TO_PORT, "9191", "port", 9191),
    (contract.MODEL_DIR, "/models/x", "model_dir", Path("/models/x")),
    (contract.HF_MODEL_ID, "org/model", "hf_model_id", "org/model"),
    (contract.HF_MODEL_REVISION, "a" * 40, "hf_model_revision", "a" * 40),
    (contract.HF_TASK, "summarization", "hf_task", "summarization"),
    (contract.PROGRAM, "serve_entry.py", "sagemaker_program", "serve_entry.py"),
    (contract.MULTI_MODEL, "true", "multi_model", True),
    (contract.HOST, "127.0.0.2", "host", "127.0.0.2"),
    (contract.DEVICE, "cpu", "device", "cpu"),
    (contract.MAX_REQUEST_BYTES, "12345", "max_request_bytes", 12345),
    (contract.MAX_BATCH_SIZE, "3", "max_batch_size", 3),
]


@pytest.mark.parametrize(("variable", "value", "field", "expected"), READ, ids=[r[0] for r in READ])
def test_each_contract_variable_reaches_its_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), field) == expected


def test_every_variable_the_stack_derives_is_read_by_the_server() -> None:
    read = {variable for variable, *_ in READ}
    assert read >= contract.STACK_VARIABLES, contract.STACK_VARIABLES - read


def test_defaults_are_sagemakers(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, *_ in READ:
        monkeypatch.delenv(variable, raising=False)
    settings = Settings()
    # SageMaker's port and model directory (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html).
    assert (settings.port, settings.model_dir) == (8080, Path("/opt/ml/model"))


def test_a_bad_value_is_reported_under_the_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.MAX_BATCH_SIZE, "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_errors(caught.value).startswith(f"invalid settings: {contract.MAX_BATCH_SIZE}='0'")
