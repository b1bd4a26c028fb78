"""SageMaker's concurrency cap and the container's batch size are one setting (issue: engine process).

An asynchronous endpoint sends an instance at most MaxConcurrentInvocationsPerInstance
requests at once (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AsyncInferenceClientConfig.html),
so the model server's dynamic batch (MODEL_SERVER_MAX_BATCH_SIZE) can never be larger. The config
derives the cap from the batch (2 x batch: one batch runs while the next fills), the stack sets
both, and a cap below the batch fails at synth.
"""

from __future__ import annotations

import copy
from typing import Any

import botocore.session
import pytest
from aws_cdk.assertions import Match, Template

from app_config import (
    ConfigError,
    environment_names,
    load_environment,
    parse_environment,
)
from app_config.environments import ENVIRONMENTS

from .conftest import Synthesized

# The range the SageMaker API itself gives the cap (botocore's service model).
CAP_SHAPE = (
    botocore.session.get_session()
    .get_service_model("sagemaker")
    .shape_for("MaxConcurrentInvocationsPerInstance")
    .metadata
)


def _dev(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(ENVIRONMENTS["dev"])
    raw.update(changes)
    return raw


def _container_environment(template: Template) -> dict[str, str]:
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    properties = model["Properties"]
    container = properties.get("PrimaryContainer") or properties["Containers"][0]
    return container["Environment"]


@pytest.mark.parametrize("env_name", [n for n in environment_names() if load_environment(n).hosting.mode == "async"])
def test_the_stack_sets_the_batch_and_a_cap_of_twice_it(synthesized: Synthesized, env_name: str) -> None:
    template = synthesized.templates[env_name]
    config = load_environment(env_name)
    batch = int(_container_environment(template)["MODEL_SERVER_MAX_BATCH_SIZE"])
    assert batch == config.max_batch_size
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": Match.object_like(
                {
                    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2 * batch},
                }
            ),
        },
    )
    assert CAP_SHAPE["min"] <= 2 * batch <= CAP_SHAPE["max"]


def test_every_environment_tells_the_container_its_batch(synthesized: Synthesized) -> None:
    for name, template in synthesized.templates.items():
        assert _container_environment(template)["MODEL_SERVER_MAX_BATCH_SIZE"] == str(
            load_environment(name).max_batch_size
        )


def test_the_model_server_reads_the_value_the_stack_sets(
    synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container's own settings parser accepts what the stack writes (and would reject a typo)."""
    from model_server.settings import Settings

    for template in synthesized.templates.values():
        value = _container_environment(template)["MODEL_SERVER_MAX_BATCH_SIZE"]
        monkeypatch.setenv("MODEL_SERVER_MAX_BATCH_SIZE", value)
        assert Settings().max_batch_size == int(value)


def test_cap_defaults_to_twice_the_batch_and_an_explicit_cap_is_kept() -> None:
    assert parse_environment(_dev(max_batch_size=12)).max_concurrent_invocations_per_instance == 24
    explicit = parse_environment(_dev(max_batch_size=12, max_concurrent_invocations_per_instance=12))
    assert explicit.max_concurrent_invocations_per_instance == 12
    # The largest batch whose derived cap the API still accepts.
    assert (
        parse_environment(_dev(max_batch_size=CAP_SHAPE["max"] // 2)).max_concurrent_invocations_per_instance
        == CAP_SHAPE["max"]
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"max_batch_size": 16, "max_concurrent_invocations_per_instance": 8},
            ["max_concurrent_invocations_per_instance (8) is below max_batch_size (16)", "at least 16", "= 32"],
        ),
        ({"max_batch_size": 0}, ["max_batch_size", "greater than or equal to 1"]),
        (
            {"max_batch_size": CAP_SHAPE["max"] // 2 + 1},
            ["max_batch_size", f"less than or equal to {CAP_SHAPE['max'] // 2}"],
        ),
        (
            {"container_environment": {"MODEL_SERVER_MAX_BATCH_SIZE": "64"}},
            ["MODEL_SERVER_MAX_BATCH_SIZE", "set by the stack"],
        ),
    ],
)
def test_a_batch_the_cap_cannot_fill_fails_at_synth(changes: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_environment(_dev(**changes))
    for fragment in expected:
        assert fragment in str(raised.value), str(raised.value)
