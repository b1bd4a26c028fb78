"""Check synthesized CloudFormation templates against AWS's own API contracts and documented facts.

    .venv/bin/python -m devtools.aws_contract cdk.out/AsyncInference-*.template.json

Two layers:

- service_models: each SageMaker, Application Auto Scaling and CloudWatch alarm
  resource is turned into the API request CloudFormation makes (api_requests) and
  validated against botocore's service model: required and unknown members, types,
  enums, min/max and patterns.
- documented_facts: what only the documentation says (the metrics each endpoint type
  publishes and their dimension sets, who may publish to an alarm topic, rollback alarm
  permissions, GPU drivers); hosting_facts: serverless limits and exclusions, and which
  scaling each endpoint type supports; callback_facts: the completion-callback queues,
  secret and event source (service models and SQS/Lambda limits).
"""

from __future__ import annotations

from typing import Any

from devtools.aws_contract.api_requests import api_requests
from devtools.aws_contract.callback_facts import check_callbacks
from devtools.aws_contract.documented_facts import (
    Finding,
    check_alarm_topics,
    check_gpu_drivers,
    check_metric_dimensions,
    check_rollback_alarms,
)
from devtools.aws_contract.hosting_facts import (
    check_serverless_configs,
    check_serverless_deployments,
    check_variant_scaling,
)
from devtools.aws_contract.multi_model_facts import check_multi_model_endpoints
from devtools.aws_contract.service_models import validate_request

__all__ = ["Finding", "check_template"]


def check_template(template: dict[str, Any], *, image_cuda_version: str | None) -> list[Finding]:
    """Every contract violation in `template`; empty when it would deploy and work as documented."""
    findings = [
        Finding(request.logical_id, f"{request.service} {request.operation}", str(violation))
        for request in api_requests(template)
        for violation in validate_request(request.service, request.operation, request.params)
    ]
    findings += check_metric_dimensions(template)
    findings += check_alarm_topics(template)
    findings += check_rollback_alarms(template)
    findings += check_gpu_drivers(template, image_cuda_version=image_cuda_version)
    findings += check_serverless_configs(template)
    findings += check_serverless_deployments(template)
    findings += check_variant_scaling(template)
    findings += check_callbacks(template)
    findings += check_multi_model_endpoints(template)
    return findings
