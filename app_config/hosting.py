"""How an environment's endpoint is hosted: `hosting.mode` picks one of SageMaker's endpoint types.

    "hosting": {"mode": "async"}                                   (the default)
    "hosting": {"mode": "realtime", "max_capacity": 4, ...}
    "hosting": {"mode": "serverless", "memory_size_mb": 4096, ...}
    "hosting": {"mode": "multimodel", "model_cache_setting": "Enabled", ...}

One discriminated union keyed by `mode`: each member carries only the settings its endpoint
type has, so a setting of another mode is an error naming the field (not a silently ignored
value), and a new mode (for example a multi-model one) is one more member of the union
without reshaping the others. Same container, model, API auth and storage in every mode.

AWS's limits, per mode:
- real-time: https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints.html
  scaling: https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html
  targets: https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-loadtest.html
- serverless: https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html
  (MemorySizeInMB 1024-6144 in 1 GB steps, MaxConcurrency 1-200, ProvisionedConcurrency
  1-200 and at most MaxConcurrency; botocore's sagemaker ProductionVariantServerlessConfig
  carries the same ranges) and the features it excludes (GPUs, VPC, network isolation,
  multi-model, more than one variant, data capture).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from app_config.fields import StrictModel, check_not_above

# ServerlessConfig.MemorySizeInMB: "1024 MB, 2048 MB, 3072 MB, 4096 MB, 5120 MB, or 6144 MB"
# (serverless-endpoints page); botocore's model carries only the 1024-6144 range.
SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
# SageMaker's real-time InvokeEndpoint limits (realtime-endpoints page / InvokeEndpoint API):
# the container must answer within 60 s; API Gateway's own integration timeout is 29 s.
REALTIME_INVOCATION_TIMEOUT_SECONDS = 60


class AsyncHosting(StrictModel):
    """Asynchronous inference: queued requests, payloads up to 1 GB in S3, scale to zero.

    Its scaling, queue and storage settings are the environment's top-level `scaling`,
    `max_concurrent_invocations_per_instance`, `request_ttl_seconds` and `invocation_timeout_seconds`.
    """

    mode: Literal["async"] = "async"


class RealtimeHosting(StrictModel):
    """A real-time endpoint: InvokeEndpoint answers within 60 s, at least one instance always on.

    Scaling tracks SageMakerVariantInvocationsPerInstance (invocations per instance per
    minute). AWS's load-testing guide sets its target from a measured peak:
    target = peak requests per second one instance sustains x safety factor x 60,
    with a safety factor of 0.5 ("endpoint-scaling-loadtest"). Measure the peak with
    devtools/bench.py against one instance.
    """

    mode: Literal["realtime"]
    # A real-time endpoint cannot scale to zero: Application Auto Scaling's MinCapacity for
    # a real-time variant is at least 1.
    min_capacity: int = Field(1, ge=1)
    max_capacity: int = Field(2, ge=1)
    peak_requests_per_second_per_instance: float = Field(1.0, gt=0)
    safety_factor: float = Field(0.5, gt=0, le=1)
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600)
    # Scale-in is slower than scale-out: an instance removed too early is minutes to get back.
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600)
    # ModelLatency p99 (ms) above which a deployment rolls back and someone is paged.
    max_model_latency_ms: int = Field(20_000, ge=100, le=REALTIME_INVOCATION_TIMEOUT_SECONDS * 1000)

    @model_validator(mode="after")
    def _bounds(self) -> RealtimeHosting:
        check_not_above(self, "min_capacity", "max_capacity")
        return self

    @property
    def invocations_per_instance_target(self) -> float:
        """TargetValue of the SageMakerVariantInvocationsPerInstance policy (per minute)."""
        return round(self.peak_requests_per_second_per_instance * self.safety_factor * 60, 2)


class ServerlessHosting(StrictModel):
    """A serverless endpoint: CPU only, billed per request, no instances to manage, scales to zero.

    Optional provisioned concurrency keeps that many executions warm (billed while
    provisioned) and scales between `provisioned_concurrency` and
    `max_provisioned_concurrency` on SageMakerVariantProvisionedConcurrencyUtilization.
    """

    mode: Literal["serverless"]
    memory_size_mb: int = 3072
    max_concurrency: int = Field(5, ge=1, le=SERVERLESS_MAX_CONCURRENCY)
    provisioned_concurrency: int | None = Field(None, ge=1, le=SERVERLESS_MAX_CONCURRENCY)
    max_provisioned_concurrency: int | None = Field(None, ge=1, le=SERVERLESS_MAX_CONCURRENCY)
    # Share of provisioned concurrency in use that target tracking keeps (0.1-1.0 in the guide).
    provisioned_utilization_target: float = Field(0.7, ge=0.1, le=1.0)
    # ModelLatency p99 (ms) above which a deployment rolls back and someone is paged.
    max_model_latency_ms: int = Field(20_000, ge=100, le=REALTIME_INVOCATION_TIMEOUT_SECONDS * 1000)
    # ModelSetupTime (a cold start: compute launched, image pulled, model loaded) that pages.
    max_model_setup_seconds: int = Field(120, ge=1, le=3600)

    @model_validator(mode="after")
    def _limits(self) -> ServerlessHosting:
        if self.memory_size_mb not in SERVERLESS_MEMORY_SIZES_MB:
            raise ValueError(
                f"memory_size_mb={self.memory_size_mb}: serverless endpoints take one of "
                f"{', '.join(map(str, SERVERLESS_MEMORY_SIZES_MB))} (MB, 1 GB steps)"
            )
        check_not_above(self, "provisioned_concurrency", "max_concurrency")
        provisioned = self.provisioned_concurrency
        if self.max_provisioned_concurrency is not None:
            if provisioned is None:
                raise ValueError("max_provisioned_concurrency needs provisioned_concurrency (the scaling minimum)")
            if not provisioned <= self.max_provisioned_concurrency <= self.max_concurrency:
                raise ValueError(
                    f"max_provisioned_concurrency ({self.max_provisioned_concurrency}) must be between "
                    f"provisioned_concurrency ({provisioned}) and max_concurrency ({self.max_concurrency})"
                )
        return self


class MultiModelHosting(RealtimeHosting):
    """A real-time multi-model endpoint: one container, many models loaded on demand.

    SageMaker's multi-model hosting (https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html):
    the model is `Mode: MultiModel` with ModelDataUrl an S3 prefix (environment `model`
    of kind `s3_prefix`); InvokeEndpoint's TargetModel names the tarball under that prefix,
    SageMaker downloads it and asks the container to load it (POST /models), unloading the
    least recently used models when the instance runs out of memory. Real-time only:
    InvokeEndpointAsync has no TargetModel. A custom container's multi-model endpoint runs
    on CPU instance types (GPU multi-model endpoints are offered with SageMaker's Triton
    image only); several models behind one async GPU endpoint is what the container's
    `model=<name>` custom attribute gives instead (docs/container.md).

    Scaling, alarms and dashboard are the real-time ones (same metrics, same dimensions)
    plus the multi-model loading metrics.
    """

    # The discriminator of this member; narrowing the inherited Literal["realtime"] is the point.
    mode: Literal["multimodel"]  # type: ignore[assignment]
    # MultiModelConfig.ModelCacheSetting (Enabled | Disabled, botocore's MultiModelConfig):
    # None leaves SageMaker's default (Enabled: loaded models stay cached until evicted).
    # Disabled suits many models each invoked rarely (every invocation loads its model).
    model_cache_setting: Literal["Enabled", "Disabled"] | None = None
    # Average ModelLoadingWaitTime (ms) that pages: requests waiting for models to be (re)loaded.
    max_model_loading_wait_ms: int = Field(10_000, ge=100, le=REALTIME_INVOCATION_TIMEOUT_SECONDS * 1000)


Hosting = Annotated[AsyncHosting | RealtimeHosting | ServerlessHosting | MultiModelHosting, Field(discriminator="mode")]
HOSTING_MODES = ("async", "realtime", "serverless", "multimodel")
