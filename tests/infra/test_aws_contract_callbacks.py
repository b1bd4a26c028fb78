"""The contract check on the completion-callback resources: passes on every environment (the
general test), and names the resource and the rule on a deliberately broken copy."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from app_config.image_cuda import image_cuda_version
from devtools.aws_contract import check_template
from tests.infra.conftest import ROOT, Synthesized

CUDA = image_cuda_version(ROOT / "container")


@pytest.fixture(scope="module")
def dev_template(synthesized: Synthesized) -> dict:
    return synthesized.templates["dev"].to_json()


def _only(template: dict, kind: str, where: Callable[[dict], bool] = lambda p: True) -> tuple[str, dict]:
    found = [
        (lid, r["Properties"])
        for lid, r in template["Resources"].items()
        if r["Type"] == kind and where(r["Properties"])
    ]
    assert len(found) == 1, found
    return found[0]


def _source_queue(t: dict) -> tuple[str, dict]:
    return _only(t, "AWS::SQS::Queue", lambda p: "RedrivePolicy" in p)


def _notifier(t: dict) -> tuple[str, dict]:
    def has_queue(props: dict) -> bool:
        return "CALLBACK_QUEUE_URL" in props.get("Environment", {}).get("Variables", {})

    return _only(t, "AWS::Lambda::Function", has_queue)


def _set(path: Callable[[dict], tuple[str, dict]], mutate: Callable[[dict], object]) -> Callable[[dict], str]:
    def apply(template: dict) -> str:
        lid, props = path(template)
        mutate(props)
        return lid

    return apply


def _visibility_below_timeout(template: dict) -> str:
    """The queue's visibility timeout under the notifier's timeout: the mapping is what Lambda refuses."""
    _source_queue(template)[1]["VisibilityTimeout"] = 10
    return _only(template, "AWS::Lambda::EventSourceMapping")[0]


BROKEN = {
    "unknown queue attribute": (
        _set(_source_queue, lambda p: p.update(VisibilityTimeOut=30)),
        "sqs CreateQueue",
        "VisibilityTimeOut",
    ),
    "visibility over 12 h": (
        _set(_source_queue, lambda p: p.update(VisibilityTimeout=50_000)),
        "[sqs-attribute]",
        "VisibilityTimeout=50000",
    ),
    "redrive over 1000": (
        _set(_source_queue, lambda p: p["RedrivePolicy"].update(maxReceiveCount=5000)),
        "[sqs-redrive]",
        "maxReceiveCount=5000",
    ),
    "visibility below the function timeout": (
        _visibility_below_timeout,
        "[sqs-event-source]",
        "shorter than the function timeout",
    ),
    "retry delay over ChangeMessageVisibility's maximum": (
        _set(_notifier, lambda p: p["Environment"]["Variables"].update(CALLBACK_RETRY_MAX_DELAY_SECONDS="50000")),
        "[callback-schedule]",
        "ChangeMessageVisibility",
    ),
    "window outliving the retention": (
        _set(_notifier, lambda p: p["Environment"]["Variables"].update(CALLBACK_RETRY_WINDOW_SECONDS="1300000")),
        "[callback-schedule]",
        "MessageRetentionPeriod",
    ),
    "password too long": (
        _set(
            lambda t: _only(t, "AWS::SecretsManager::Secret"),
            lambda p: p["GenerateSecretString"].update(PasswordLength=5000),
        ),
        "secretsmanager GetRandomPassword",
        "PasswordLength",
    ),
    "concurrency below 2": (
        _set(
            lambda t: _only(t, "AWS::Lambda::EventSourceMapping"),
            lambda p: p["ScalingConfig"].update(MaximumConcurrency=1),
        ),
        "lambda CreateEventSourceMapping",
        "MaximumConcurrency",
    ),
    "unknown response type": (
        _set(
            lambda t: _only(t, "AWS::Lambda::EventSourceMapping"),
            lambda p: p.update(FunctionResponseTypes=["ReportBatchFailures"]),
        ),
        "lambda CreateEventSourceMapping",
        "ReportBatchFailures",
    ),
}


def test_the_callback_resources_meet_the_contract(dev_template: dict):
    assert [str(f) for f in check_template(dev_template, image_cuda_version=CUDA)] == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_callback_resource_is_named(dev_template: dict, case: str):
    template = copy.deepcopy(dev_template)
    breaker, rule, fragment = BROKEN[case]
    logical_id = breaker(template)
    findings = [str(f) for f in check_template(template, image_cuda_version=CUDA)]
    assert any(f.startswith(f"{logical_id}:") and rule in f and fragment in f for f in findings), (logical_id, findings)
