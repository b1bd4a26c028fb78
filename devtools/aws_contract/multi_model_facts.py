"""Documented facts of multi-model endpoints that botocore's model does not carry.

botocore checks the shapes (ContainerDefinition.Mode is SingleModel | MultiModel,
MultiModelConfig.ModelCacheSetting is Enabled | Disabled); the pages add:

- ModelDataUrl of a multi-model container is the S3 prefix under which every model's tarball
  lies; SageMaker appends InvokeEndpoint's TargetModel to it, so it ends in '/'.
  https://docs.aws.amazon.com/sagemaker/latest/dg/create-multi-model-endpoint.html
- Multi-model endpoints are real-time: InvokeEndpointAsync has no TargetModel (botocore's
  sagemaker-runtime model) and serverless endpoints exclude multi-model hosting
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html).
- GPU multi-model endpoints are offered with SageMaker's Triton Inference Server container only;
  a custom container's multi-model endpoint runs on CPU instance types.
  https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app_config.gpu_drivers import is_gpu_instance
from devtools.aws_contract.documented_facts import (
    Finding,
    _referenced_id,
    is_multi_model,
    listed,
    render,
    resources_of_type,
)
from devtools.aws_contract.service_models import is_intrinsic

MULTI_MODEL_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html"
CREATE_PAGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/create-multi-model-endpoint.html"


def _is_triton(image: Any) -> bool:
    """SageMaker's Triton images are named sagemaker-tritonserver; a CDK asset image never is."""
    return isinstance(image, str) and "sagemaker-tritonserver" in image


@listed
def check_multi_model_endpoints(template: dict[str, Any]) -> Iterator[Finding]:
    """Every multi-model container reads a prefix and is served by a real-time, CPU (or Triton) variant."""
    multi_models: dict[str, dict[str, Any]] = {}
    for logical_id, props in resources_of_type(template, "AWS::SageMaker::Model"):
        if not is_multi_model(props):
            continue
        multi_models[logical_id] = props
        container = props.get("PrimaryContainer") or {}
        url = container.get("ModelDataUrl")
        if url is None:
            yield Finding(
                logical_id,
                "multi-model-prefix",
                f"a MultiModel container without ModelDataUrl: it names the S3 prefix of the models ({CREATE_PAGE})",
            )
        elif not is_intrinsic(url) and not str(url).endswith("/"):
            yield Finding(
                logical_id,
                "multi-model-prefix",
                f"ModelDataUrl {url!r} of a MultiModel container is not a prefix ending in '/': "
                f"SageMaker appends TargetModel to it ({CREATE_PAGE})",
            )
    for logical_id, props in resources_of_type(template, "AWS::SageMaker::EndpointConfig"):
        for index, variant in enumerate(props.get("ProductionVariants") or []):
            if not isinstance(variant, dict):
                continue
            model_id = _referenced_id(variant.get("ModelName")) or ""
            if model_id not in multi_models:
                continue
            where = f"ProductionVariants[{index}] serves the multi-model {model_id}"
            if props.get("AsyncInferenceConfig") not in (None, {"Ref": "AWS::NoValue"}):
                yield Finding(
                    logical_id,
                    "multi-model-realtime",
                    f"{where} with AsyncInferenceConfig: InvokeEndpointAsync has no TargetModel, "
                    f"multi-model endpoints are real-time only ({MULTI_MODEL_PAGE})",
                )
            if variant.get("ServerlessConfig"):
                yield Finding(
                    logical_id,
                    "multi-model-realtime",
                    f"{where} on a serverless variant: serverless endpoints do not support multi-model "
                    f"hosting ({MULTI_MODEL_PAGE})",
                )
            instance_type = variant.get("InstanceType")
            image = (multi_models[model_id].get("PrimaryContainer") or {}).get("Image")
            if isinstance(instance_type, str) and is_gpu_instance(instance_type) and not _is_triton(image):
                yield Finding(
                    logical_id,
                    "multi-model-gpu",
                    f"{where} on GPU instance type {instance_type} with image {render(image)}: GPU multi-model "
                    f"endpoints are offered with SageMaker's Triton container only ({MULTI_MODEL_PAGE})",
                )
