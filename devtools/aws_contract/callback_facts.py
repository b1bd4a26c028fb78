"""The completion-callback resources against their APIs' contracts and documented limits.

Service models (botocore), as CloudFormation turns the resources into requests:
- AWS::SQS::Queue -> CreateQueue: every property but QueueName/Tags is a queue attribute,
  RedrivePolicy as its JSON string
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queue.html);
- AWS::SecretsManager::Secret's GenerateSecretString -> GetRandomPassword
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-secretsmanager-secret-generatesecretstring.html);
- AWS::Lambda::EventSourceMapping -> CreateEventSourceMapping (same member names).

Documented facts the models do not carry:
- queue attributes: VisibilityTimeout 0-43200 s, MessageRetentionPeriod 60-1209600 s,
  RedrivePolicy maxReceiveCount 1-1000
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html);
- Lambda refuses an SQS event source whose queue visibility timeout is shorter than the
  function's timeout (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html);
- the notifier's retry schedule: ChangeMessageVisibility takes at most 43200 s
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html),
  and SQS deletes a message after MessageRetentionPeriod, so the retry window must end before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from api_handler.contract import NotifierEnv
from devtools.aws_contract.api_requests import GENERATED_NAME
from devtools.aws_contract.documented_facts import Finding, listed, resources_of_type
from devtools.aws_contract.service_models import is_intrinsic, validate_request

QUEUE_LIMITS = {"VisibilityTimeout": (0, 43_200), "MessageRetentionPeriod": (60, 1_209_600)}
MAX_RECEIVE_COUNT = (1, 1000)
MAX_VISIBILITY_SECONDS = 43_200
_PASSWORD_MEMBERS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeLowercase",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Properties by logical id, for the checks that look one resource up from another's reference."""
    return dict(resources_of_type(template, kind))


def _service_model_findings(template: dict[str, Any]) -> Iterator[Finding]:
    def check(lid: str, service: str, operation: str, params: dict[str, Any]) -> Iterator[Finding]:
        violations = validate_request(service, operation, params)
        return (Finding(lid, f"{service} {operation}", str(v)) for v in violations)

    for lid, props in resources_of_type(template, "AWS::SQS::Queue"):
        attributes = {
            k: v if is_intrinsic(v) else (json.dumps(v) if isinstance(v, dict) else str(v))
            for k, v in props.items()
            if k not in ("QueueName", "Tags")
        }
        yield from check(lid, "sqs", "CreateQueue", {"QueueName": GENERATED_NAME, "Attributes": attributes})
    for lid, props in resources_of_type(template, "AWS::SecretsManager::Secret"):
        generate = props.get("GenerateSecretString")
        if isinstance(generate, dict):
            password = {k: v for k, v in generate.items() if k in _PASSWORD_MEMBERS}
            yield from check(lid, "secretsmanager", "GetRandomPassword", password)
    for lid, props in resources_of_type(template, "AWS::Lambda::EventSourceMapping"):
        yield from check(lid, "lambda", "CreateEventSourceMapping", dict(props))


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _queue_findings(template: dict[str, Any]) -> Iterator[Finding]:
    for lid, props in resources_of_type(template, "AWS::SQS::Queue"):
        for name, (low, high) in QUEUE_LIMITS.items():
            value = _number(props.get(name))
            if value is not None and not low <= value <= high:
                yield Finding(lid, "sqs-attribute", f"{name}={value} is outside {low}-{high}")
        redrive = props.get("RedrivePolicy")
        count = _number(redrive.get("maxReceiveCount")) if isinstance(redrive, dict) else None
        if count is not None and not MAX_RECEIVE_COUNT[0] <= count <= MAX_RECEIVE_COUNT[1]:
            yield Finding(lid, "sqs-redrive", f"maxReceiveCount={count} is outside 1-1000")


def _queue_of(arn: Any) -> str | None:
    """The logical id a queue ARN ({"Fn::GetAtt": [id, "Arn"]}) or URL ({"Ref": id}) names."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        return arn["Fn::GetAtt"][0]
    if isinstance(arn, dict) and "Ref" in arn:
        return arn["Ref"]
    return None


def _event_source_findings(template: dict[str, Any]) -> Iterator[Finding]:
    queues = _resources(template, "AWS::SQS::Queue")
    functions = _resources(template, "AWS::Lambda::Function")
    for lid, props in resources_of_type(template, "AWS::Lambda::EventSourceMapping"):
        queue = queues.get(_queue_of(props.get("EventSourceArn")) or "")
        function = functions.get(_queue_of(props.get("FunctionName")) or "")
        if queue is None or function is None:
            continue
        visibility, timeout = _number(queue.get("VisibilityTimeout", 30)), _number(function.get("Timeout", 3))
        if visibility is not None and timeout is not None and visibility < timeout:
            yield Finding(
                lid,
                "sqs-event-source",
                f"queue visibility timeout {visibility} s is shorter than the function timeout "
                f"{timeout} s: Lambda refuses the event source mapping",
            )


def _schedule_findings(template: dict[str, Any]) -> Iterator[Finding]:
    queues = _resources(template, "AWS::SQS::Queue")
    for lid, props in resources_of_type(template, "AWS::Lambda::Function"):
        variables = props.get("Environment", {}).get("Variables", {})
        if NotifierEnv.QUEUE_URL not in variables:
            continue
        delay = _number(variables.get(NotifierEnv.RETRY_MAX_DELAY_SECONDS))
        if delay is not None and delay > MAX_VISIBILITY_SECONDS:
            yield Finding(
                lid,
                "callback-schedule",
                f"CALLBACK_RETRY_MAX_DELAY_SECONDS={delay} exceeds "
                f"ChangeMessageVisibility's {MAX_VISIBILITY_SECONDS} s",
            )
        queue = queues.get(_queue_of(variables[NotifierEnv.QUEUE_URL]) or "", {})
        retention = _number(queue.get("MessageRetentionPeriod", 345_600))
        window = _number(variables.get(NotifierEnv.RETRY_WINDOW_SECONDS))
        if window is not None and retention is not None and window + (delay or 0) >= retention:
            yield Finding(
                lid,
                "callback-schedule",
                f"the retry window ({window} s) plus a last delay ({delay} s) outlives the queue's "
                f"MessageRetentionPeriod ({retention} s): SQS would delete events before they "
                "could be dead-lettered",
            )


@listed
def check_callbacks(template: dict[str, Any]) -> Iterator[Finding]:
    yield from _service_model_findings(template)
    yield from _queue_findings(template)
    yield from _event_source_findings(template)
    yield from _schedule_findings(template)
