"""Typed, validated per-environment configuration.

Every value a stack uses comes through these models so that a wrong value fails
`cdk synth` with a message naming the field, the value and what is allowed,
instead of failing twenty minutes into a CloudFormation deployment (or worse,
deploying something that silently never scales).
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import botocore.session
from botocore.model import StringShape
from model_server import contract as container_contract
from pydantic import AfterValidator, Field, field_validator, model_validator

from api_handler import contract as api_contract
from app_config.aws_types import AccountId, RegionName
from app_config.callbacks import CallbacksConfig
from app_config.fields import StrictModel, check_not_above, checked, each_matching, matching
from app_config.gpu_drivers import is_arm_instance, is_gpu_instance, is_neuron_instance
from app_config.hosting import AsyncHosting, Hosting, MultiModelHosting, RealtimeHosting, ServerlessHosting

# Instance families that ship local NVMe instance storage. SageMaker rejects an
# endpoint-config KmsKeyId (storage volume encryption) for them: their storage
# is hardware-encrypted already (KmsKeyId in
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html).
NVME_INSTANCE_FAMILIES = frozenset(
    {
        "c5d",
        "c6id",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "gr6",
        "inf2",
        "m5d",
        "m6id",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "r5d",
        "r6id",
        "trn1",
        "trn1n",
    }
)

_INSTANCE_TYPE = re.compile(r"^ml\.([a-z0-9]+)\.([a-z0-9]+)$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Only the shape (a typo check): the subscription's confirmation mail proves the address.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NOT_EMAIL = "is not an e-mail address"
# A hub commit id: the full 40 hex digits (a branch or tag moves under a running service).
_COMMIT = re.compile(r"^[0-9a-f]{40}$")

# Container variables the stack derives itself (instance type, API limits): a value in
# container_environment would contradict them.
STACK_CONTAINER_VARIABLES = container_contract.STACK_VARIABLES

# Inputs per model call in the container unless an environment says otherwise (EnvironmentConfig).
_DEFAULT_MAX_BATCH_SIZE = 8


@lru_cache(maxsize=1)
def sagemaker_instance_types() -> tuple[str, ...]:
    """The SageMaker API's own list of endpoint instance types: the installed botocore's
    `ProductionVariantInstanceType` enum (CreateEndpointConfig rejects anything else)."""
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ProductionVariantInstanceType")
    if not isinstance(shape, StringShape):
        raise TypeError(f"botocore's ProductionVariantInstanceType is a {shape.type_name}, not an enum of strings")
    return tuple(shape.enum)


class HubModel(StrictModel):
    """A Hugging Face hub model, downloaded by the container at start-up."""

    kind: Literal["hub"] = "hub"
    model_id: Annotated[str, matching(_HUB_ID, "is not a Hugging Face hub id like 'org/name'")]
    task: str | None = None
    # The commit to serve (HF_MODEL_REVISION). Unpinned, the model changes under a running
    # service whenever the repository's main branch moves; synth warns.
    revision: (
        Annotated[
            str,
            matching(
                _COMMIT,
                "is not a commit id: pin the full 40-hex commit of the hub repository "
                "(a branch or tag name moves under a running service)",
            ),
        ]
        | None
    ) = None


class _S3Location(StrictModel):
    """A model location in S3: `uri` is s3://bucket/path, the path ending as the kind requires."""

    uri: str
    task: str | None = None
    # What the kind's `uri` ends with, and the form an error shows.
    URI_ENDING: ClassVar[str]
    URI_FORM: ClassVar[str]

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _S3_URI.match(value) or not value.endswith(cls.URI_ENDING):
            raise ValueError(f"{value!r} is not {cls.URI_FORM}")
        return value

    @property
    def bucket(self) -> str:
        return self._parts()[0]

    def _parts(self) -> tuple[str, str]:
        """(bucket, path) of `uri`, which the kind's validator has checked already."""
        match = _S3_URI.match(self.uri)
        if match is None:  # pragma: no cover - the uri validator refuses such a model
            raise ValueError(f"{self.uri!r} is not an s3:// URI")
        return match.group(1), match.group(2)


class S3Model(_S3Location):
    """A model.tar.gz already in S3; SageMaker unpacks it into /opt/ml/model."""

    kind: Literal["s3"] = "s3"
    URI_ENDING = ".tar.gz"
    URI_FORM = "an s3://bucket/key.tar.gz URI"

    @property
    def key(self) -> str:
        return self._parts()[1]


class S3PrefixModel(_S3Location):
    """The S3 prefix of a multi-model endpoint (hosting.mode 'multimodel'): ModelDataUrl.

    Each model is a tarball under the prefix (`<prefix>customer-a.tar.gz`); InvokeEndpoint's
    TargetModel names it relative to the prefix, and SageMaker downloads and unpacks it on
    the first request for it. The execution role may read this prefix and nothing else.
    https://docs.aws.amazon.com/sagemaker/latest/dg/create-multi-model-endpoint.html
    """

    kind: Literal["s3_prefix"] = "s3_prefix"
    # SageMaker joins the prefix and TargetModel as given: without the trailing '/' a
    # TargetModel 'a.tar.gz' under 's3://b/models' would be read from 's3://b/modelsa.tar.gz'.
    URI_ENDING = "/"
    URI_FORM = "an S3 prefix like 's3://bucket/models/' (ending in '/')"

    @property
    def prefix(self) -> str:
        return self._parts()[1]


class LocalModel(StrictModel):
    """A model directory in this repository, packed at synth into a deterministic
    model.tar.gz asset (so `cdk diff` is empty when the model did not change)."""

    kind: Literal["local"] = "local"
    path: Path
    task: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a directory (relative paths start at the repository root)")
        if not any(value.iterdir()):
            raise ValueError(f"{str(value)!r} is empty: expected a saved model (config.json, weights, tokenizer)")
        return value


ModelSource = Annotated[HubModel | S3Model | LocalModel | S3PrefixModel, Field(discriminator="kind")]


class ScalingConfig(StrictModel):
    """Application Auto Scaling of the endpoint variant.

    `metric` picks the target-tracking metric. ApproximateAgeOfOldestRequest is
    what the design asks for (a latency objective); ApproximateBacklogSizePerInstance
    is AWS's documented metric and falls in proportion to instance count, which is
    what target tracking assumes. README "Scaling" explains the trade-off.
    """

    min_capacity: int = Field(0, ge=0)
    max_capacity: int = Field(1, ge=1)
    metric: Literal["ApproximateAgeOfOldestRequest", "ApproximateBacklogSizePerInstance"] = (
        "ApproximateAgeOfOldestRequest"
    )
    # Seconds of age for the age metric; requests per instance for the backlog metric.
    target_value: float = Field(300.0, gt=0)
    scale_out_cooldown_seconds: int = Field(120, ge=0, le=3600)
    # Scale-in happens only after the backlog (queued AND in-flight requests) has been
    # zero for this many consecutive minutes; see autoscaling.py for why.
    idle_minutes_before_scale_in: int = Field(15, ge=1, le=1440)

    @model_validator(mode="after")
    def _bounds(self) -> ScalingConfig:
        check_not_above(self, "min_capacity", "max_capacity")
        return self


class OperationsConfig(StrictModel):
    """Alarm thresholds: what "unhealthy" means for this environment."""

    # Age of the oldest queued request above which someone should look (the objective).
    max_request_age_seconds: int = Field(900, ge=60)
    # How long a cold start from zero instances normally takes (instance + image pull +
    # model load). HasBacklogWithoutCapacity still 1 after this means the endpoint failed to wake.
    expected_cold_start_minutes: int = Field(15, ge=1, le=60)
    # Failed invocations (InvocationFailures, Invocation5XXErrors) per 5 minutes that page.
    failures_per_5_minutes: int = Field(5, ge=1)
    api_5xx_percent: float = Field(1.0, gt=0, le=100)
    api_p99_latency_ms: int = Field(5000, ge=100, le=29000)


class DeploymentGuardrails(StrictModel):
    """How SageMaker shifts traffic to a new endpoint configuration, and when it rolls back.

    `all_at_once` still is a blue/green deployment with automatic rollback on the alarms
    and a baking period; `canary` and `linear` shift a share of capacity first.
    """

    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    # Share of the new fleet's capacity per step (canary: the first step; linear: every step).
    step_percent: int = Field(25, ge=1, le=50)
    wait_interval_seconds: int = Field(600, ge=0, le=3600)
    # Baking period after the last shift before the old fleet is terminated.
    termination_wait_seconds: int = Field(600, ge=0, le=3600)
    maximum_execution_timeout_seconds: int = Field(7200, ge=600, le=28800)


class StorageConfig(StrictModel):
    """Lifecycle of the request/response buckets."""

    input_expiry_days: int = Field(7, ge=1)
    output_expiry_days: int = Field(30, ge=1)
    failure_expiry_days: int = Field(30, ge=1)
    access_log_expiry_days: int = Field(90, ge=1)


_API_CLIENT = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_STAGE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class UsagePlanConfig(StrictModel):
    """Per-client API keys with throttling and a quota (client API).

    API keys meter and identify; they do not authenticate (IAM still does). Each name in
    `clients` gets one generated key.
    """

    clients: Annotated[
        tuple[str, ...],
        each_matching(_API_CLIENT, "must be 1-32 letters, digits or '-'", repeated="client names must be unique"),
    ] = Field(min_length=1)
    rate_limit: float = Field(10.0, gt=0)
    burst_limit: int = Field(20, ge=1)
    quota_requests: int = Field(10_000, ge=1)
    quota_period: Literal["DAY", "WEEK", "MONTH"] = "DAY"


class ApiConfig(StrictModel):
    """The client API (API Gateway + Lambda). docs/api.md describes each limit."""

    stage_name: Annotated[str, matching(_STAGE_NAME, "must be 1-64 letters, digits or '_'")] = "v1"
    # Stage-wide steady rate (requests/s) and burst for all clients together.
    throttling_rate_limit: float = Field(50.0, gt=0, le=10_000)
    throttling_burst_limit: int = Field(100, ge=1, le=5_000)
    # The API Lambda's reserved concurrency: a ceiling on what one API can take from the
    # account's Lambda pool and a floor it always gets. None means the stage burst limit, so
    # API Gateway throttles (429) before Lambda would (a throttled integration is a 5xx).
    # Reserving N needs an account concurrency quota of at least N + 100 (docs/operations.md).
    reserved_concurrency: int | None = Field(None, ge=1)
    # The limits are the handler's (api_handler/contract.py), so config and handler agree.
    # Results up to this size are returned inline; larger ones as a presigned URL.
    inline_result_max_bytes: int = Field(
        api_contract.DEFAULT_INLINE_RESULT_MAX_BYTES, ge=0, le=api_contract.INLINE_RESULT_MAX_BYTES_LIMIT
    )
    # Largest inline request body; larger payloads use POST /uploads.
    max_request_bytes: int = Field(
        api_contract.DEFAULT_MAX_REQUEST_BYTES, ge=1, le=api_contract.MAX_REQUEST_BYTES_LIMIT
    )
    # Largest upload (POST /uploads): bound in the signed upload policy, so S3 itself refuses
    # more, and checked again at submit. SageMaker's async payload limit (1 GB) is the ceiling.
    max_upload_bytes: int = Field(api_contract.MAX_ASYNC_PAYLOAD_BYTES, ge=1, le=api_contract.MAX_ASYNC_PAYLOAD_BYTES)
    # Checked by the handler's own rule, so the stack never deploys a list the handler refuses.
    allowed_content_types: Annotated[tuple[str, ...], AfterValidator(api_contract.check_media_ranges)] = (
        api_contract.DEFAULT_ALLOWED_CONTENT_TYPES
    )
    status_retry_after_seconds: int = Field(
        10, ge=api_contract.STATUS_RETRY_AFTER_RANGE[0], le=api_contract.STATUS_RETRY_AFTER_RANGE[1]
    )
    memory_size_mb: int = Field(512, ge=128, le=10_240)
    # Execution logging needs the account's API Gateway CloudWatch role (one per account
    # and region). False when another stack or the account baseline already sets it.
    manage_account_cloudwatch_role: bool = True
    usage_plan: UsagePlanConfig | None = None

    @model_validator(mode="after")
    def _plan_within_stage(self) -> ApiConfig:
        plan = self.usage_plan
        if plan and (plan.rate_limit > self.throttling_rate_limit or plan.burst_limit > self.throttling_burst_limit):
            raise ValueError(
                f"usage_plan rate/burst ({plan.rate_limit}/{plan.burst_limit}) must not exceed the stage's "
                "throttling_rate_limit/throttling_burst_limit "
                f"({self.throttling_rate_limit}/{self.throttling_burst_limit})"
            )
        return self

    @model_validator(mode="after")
    def _concurrency_covers_burst(self) -> ApiConfig:
        if self.reserved_concurrency is not None and self.reserved_concurrency < self.throttling_burst_limit:
            raise ValueError(
                f"reserved_concurrency ({self.reserved_concurrency}) must be at least throttling_burst_limit "
                f"({self.throttling_burst_limit}): a burst the stage admits would be throttled by Lambda as a 5xx; "
                "lower throttling_burst_limit too"
            )
        return self

    @property
    def lambda_reserved_concurrency(self) -> int:
        return self.reserved_concurrency if self.reserved_concurrency is not None else self.throttling_burst_limit


class EnvironmentConfig(StrictModel):
    """Everything that differs between two deployments of the stack."""

    name: Annotated[str, matching(_ENV_NAME, "must be lower-case letters, digits and '-' (max 20)")]
    account: AccountId | None = None
    region: RegionName | None = None

    # Which SageMaker endpoint type serves the model (app_config/hosting.py): async (default),
    # realtime or serverless. Changing it is one line; the rest of the stack stays.
    hosting: Hosting = AsyncHosting()

    instance_type: str = "ml.g4dn.xlarge"
    # CPU instance types (ml.c5, ml.m5...) only when this says so: the image is built for
    # GPUs, and a CPU type is usually a typo. Useful for a cheap dev environment.
    allow_cpu_instance: bool = False
    # EnableNetworkIsolation on the SageMaker model: the container gets no network access
    # at all (no hub download, no outbound calls from user code). Only for s3/local models.
    enable_network_isolation: bool = False
    # Encrypt the ML storage volume with the data key. Not allowed on instance types
    # with local NVMe storage (SageMaker rejects it; their storage is encrypted in hardware).
    encrypt_storage_volume: bool = False
    # The model server's dynamic batch (MODEL_SERVER_MAX_BATCH_SIZE: inputs per model call) and
    # how many requests SageMaker sends one instance at once (AsyncInferenceConfig's
    # MaxConcurrentInvocationsPerInstance, 1-1000 in the SageMaker API) are one decision: the
    # container never sees more requests than the cap, so a batch can never exceed it. The cap
    # defaults to 2 x max_batch_size: one batch runs while the next one fills. Higher: more
    # throughput per instance (larger batches) and longer per-request latency (a request waits for
    # the batch ahead of it); lower: the reverse. See docs/benchmarks.md for throughput per cap.
    max_batch_size: int = Field(_DEFAULT_MAX_BATCH_SIZE, ge=1, le=500)
    max_concurrent_invocations_per_instance: int = Field(
        default_factory=lambda data: 2 * data.get("max_batch_size", _DEFAULT_MAX_BATCH_SIZE), ge=1, le=1000
    )
    invocation_timeout_seconds: int = Field(900, ge=1, le=3600)
    request_ttl_seconds: int = Field(21600, ge=60, le=21600)
    container_startup_timeout_seconds: int = Field(600, ge=60, le=3600)
    model_download_timeout_seconds: int = Field(600, ge=60, le=3600)

    model: ModelSource
    container_environment: dict[str, str] = Field(default_factory=dict)

    scaling: ScalingConfig = ScalingConfig()
    # False removes the scalable target and its policies: the first of the three deploys
    # that change instance_type (see docs/operations.md).
    autoscaling_enabled: bool = True
    storage: StorageConfig = StorageConfig()
    operations: OperationsConfig = OperationsConfig()
    deployment: DeploymentGuardrails = DeploymentGuardrails()
    api: ApiConfig = ApiConfig()
    # Completion callbacks to the caller's HTTPS endpoint (async hosting only; app_config/callbacks.py).
    callbacks: CallbacksConfig = CallbacksConfig()

    log_retention_days: int = 30
    retain_data: bool = False  # RemovalPolicy.RETAIN for buckets and keys
    alarm_email: Annotated[str, matching(_EMAIL, _NOT_EMAIL)] | None = None
    notification_emails: Annotated[tuple[str, ...], each_matching(_EMAIL, _NOT_EMAIL)] = ()

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        checked(
            _INSTANCE_TYPE,
            value,
            "is not a SageMaker instance type: expected 'ml.<family>.<size>', for example 'ml.g5.xlarge'",
        )
        known = sagemaker_instance_types()
        if value not in known:
            close = difflib.get_close_matches(value, known, n=3, cutoff=0.75)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"{value!r} is not a SageMaker endpoint instance type (botocore {botocore.__version__}'s "
                f"ProductionVariantInstanceType lists {len(known)}){hint}"
            )
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        allowed = (
            1,
            3,
            5,
            7,
            14,
            30,
            60,
            90,
            120,
            150,
            180,
            365,
            400,
            545,
            731,
            1096,
            1827,
            2192,
            2557,
            2922,
            3288,
            3653,
        )
        if value not in allowed:
            raise ValueError(f"{value} is not a CloudWatch Logs retention; allowed: {allowed}")
        return value

    @field_validator("container_environment")
    @classmethod
    def _container_environment(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            checked(_ENV_VAR, key, "is not a valid environment variable name")
            if key in STACK_CONTAINER_VARIABLES:
                raise ValueError(
                    f"{key!r} is set by the stack (from instance_type, model and the API's limits); "
                    "remove it from container_environment"
                )
        return value

    @property
    def instance_family(self) -> str:
        return _INSTANCE_TYPE.match(self.instance_type).group(1)  # type: ignore[union-attr]

    @property
    def has_nvme_storage(self) -> bool:
        return self.instance_family in NVME_INSTANCE_FAMILIES

    @model_validator(mode="after")
    def _guardrails_fit_capacity(self) -> EnvironmentConfig:
        if self.deployment.strategy == "all_at_once" or isinstance(self.hosting, ServerlessHosting):
            return self  # serverless: _serverless_support names the reason
        field, capacity = (
            ("hosting.max_capacity", self.hosting.max_capacity)
            if isinstance(self.hosting, RealtimeHosting)
            else ("scaling.max_capacity", self.scaling.max_capacity)
        )
        if capacity < 2:
            raise ValueError(
                f"deployment.strategy={self.deployment.strategy!r} needs {field} >= 2 "
                f"(is {capacity}): SageMaker limits a canary or linear step to 50% "
                "of the variant's instances. Use 'all_at_once' (still blue/green with rollback)."
            )
        return self

    @model_validator(mode="after")
    def _serverless_support(self) -> EnvironmentConfig:
        """What a serverless endpoint does not support, refused at synth with the reason.

        https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html (feature
        exclusions: GPUs, VPC configuration, network isolation, multi-model endpoints, multiple
        production variants) and
        https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html.
        This stack has no VPC option and serves one variant, so those two cannot be asked for.
        """
        if not isinstance(self.hosting, ServerlessHosting):
            return self
        page = "https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html"
        if "instance_type" in self.model_fields_set:
            kind = "a GPU instance type" if is_gpu_instance(self.instance_type) else "an instance type"
            raise ValueError(
                f"hosting.mode='serverless' with instance_type={self.instance_type!r} ({kind}): serverless "
                "endpoints run on CPU capacity SageMaker picks (no GPUs, no instance types; size it with "
                f"hosting.memory_size_mb). Remove instance_type, or use mode 'realtime' or 'async' for a GPU ({page})"
            )
        if self.enable_network_isolation:
            raise ValueError(
                "hosting.mode='serverless' with enable_network_isolation=True: serverless endpoints do not "
                f"support network isolation ({page}). Set it to False or use mode 'realtime' or 'async'."
            )
        if self.encrypt_storage_volume:
            raise ValueError(
                "hosting.mode='serverless' with encrypt_storage_volume=True: a serverless endpoint has no ML "
                "storage volume (the endpoint-config KmsKeyId encrypts the instance volume). Set it to False."
            )
        if self.deployment.strategy != "all_at_once":
            raise ValueError(
                f"hosting.mode='serverless' with deployment.strategy={self.deployment.strategy!r}: canary and "
                "linear steps are shares of a variant's instances, and a serverless variant has none. Use "
                "'all_at_once' (blue/green with auto-rollback; rolling deployments exclude serverless endpoints: "
                "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html)."
            )
        return self

    @model_validator(mode="after")
    def _instance_kind(self) -> EnvironmentConfig:
        if is_neuron_instance(self.instance_type):
            raise ValueError(
                f"instance_type {self.instance_type!r} is an AWS Inferentia/Trainium (Neuron) type: "
                "the image is built for NVIDIA GPUs (CUDA) and cannot use it; choose a GPU type such as 'ml.g5.xlarge'"
            )
        if is_arm_instance(self.instance_type):
            raise ValueError(
                f"instance_type {self.instance_type!r} is a Graviton (arm64) type: the image is built for "
                "linux/amd64 and would fail there with 'exec format error'; choose an x86 type"
            )
        serverless = isinstance(self.hosting, ServerlessHosting)
        # A multi-model endpoint of this container is CPU by necessity (_multi_model_support).
        cpu_only = serverless or isinstance(self.hosting, MultiModelHosting)
        if not cpu_only and not is_gpu_instance(self.instance_type) and not self.allow_cpu_instance:
            raise ValueError(
                f"instance_type {self.instance_type!r} has no GPU: set allow_cpu_instance: true to run the "
                "model on CPU (the container then runs with MODEL_SERVER_DEVICE=cpu), or choose a GPU type "
                "such as 'ml.g5.xlarge'"
            )
        return self

    @model_validator(mode="after")
    def _network_isolation(self) -> EnvironmentConfig:
        if self.enable_network_isolation and isinstance(self.model, HubModel):
            raise ValueError(
                f"enable_network_isolation=True with a hub model ({self.model.model_id!r}): an isolated "
                "container cannot download from the Hugging Face hub. Ship the model as "
                "{'kind': 's3', ...} or {'kind': 'local', ...}, or set enable_network_isolation to False."
            )
        return self

    @model_validator(mode="after")
    def _multi_model_support(self) -> EnvironmentConfig:
        """What a multi-model endpoint of this (custom) container needs, refused at synth with the reason.

        https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html: GPU multi-model
        endpoints are supported with SageMaker's Triton Inference Server container only; a custom
        container's multi-model endpoint runs on CPU instance types. InvokeEndpointAsync has no
        TargetModel, so multi-model endpoints are real-time (this mode) only.
        """
        multi_model = isinstance(self.hosting, MultiModelHosting)
        prefix = isinstance(self.model, S3PrefixModel)
        page = "https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoints.html"
        if isinstance(self.model, S3PrefixModel) and not multi_model:
            raise ValueError(
                f"model kind 's3_prefix' ({self.model.uri!r}) with hosting.mode={self.hosting.mode!r}: a prefix of "
                "models is the ModelDataUrl of a multi-model endpoint only. Use hosting.mode 'multimodel', or a "
                "single model ({'kind': 's3', 'uri': 's3://bucket/model.tar.gz'}); several models behind one async "
                "endpoint are <name>/ folders inside one model artifact (docs/container.md)."
            )
        if not multi_model:
            return self
        if not prefix:
            raise ValueError(
                f"hosting.mode='multimodel' with a model of kind {self.model.kind!r}: a multi-model endpoint's "
                "ModelDataUrl is an S3 prefix holding one tarball per model. Use "
                "{'kind': 's3_prefix', 'uri': 's3://bucket/models/'}."
            )
        if is_gpu_instance(self.instance_type):
            raise ValueError(
                f"hosting.mode='multimodel' with GPU instance_type {self.instance_type!r}: SageMaker offers GPU "
                "multi-model endpoints with its Triton Inference Server container only, not with a custom container "
                f"like this one ({page}). Choose a CPU instance type (for example 'ml.m5.xlarge' or 'ml.c5.2xlarge'), "
                "or keep the GPU with hosting.mode 'async' and several models in one artifact (docs/container.md)."
            )
        return self

    @property
    def container_device(self) -> str:
        """MODEL_SERVER_DEVICE for the container: cuda on GPU types, cpu on allowed CPU types,
        serverless and multi-model."""
        if isinstance(self.hosting, (ServerlessHosting, MultiModelHosting)):
            return "cpu"  # serverless endpoints have no GPU; multi-model ones run on CPU types
        return "cuda" if is_gpu_instance(self.instance_type) else "cpu"

    @model_validator(mode="after")
    def _concurrency_fills_a_batch(self) -> EnvironmentConfig:
        if self.hosting.mode == "async" and self.max_concurrent_invocations_per_instance < self.max_batch_size:
            raise ValueError(
                f"max_concurrent_invocations_per_instance ({self.max_concurrent_invocations_per_instance}) is below "
                f"max_batch_size ({self.max_batch_size}): SageMaker sends an instance at most "
                f"{self.max_concurrent_invocations_per_instance} requests at once, so no batch could be larger; "
                f"raise it to at least {self.max_batch_size} (unset, it is 2 x max_batch_size = "
                f"{min(1000, 2 * self.max_batch_size)}) or lower max_batch_size"
            )
        return self

    @model_validator(mode="after")
    def _storage_volume_kms(self) -> EnvironmentConfig:
        if self.encrypt_storage_volume and self.has_nvme_storage:
            raise ValueError(
                f"encrypt_storage_volume=True is not allowed with instance_type "
                f"{self.instance_type!r}: the {self.instance_family} family has local NVMe "
                "storage and SageMaker rejects an endpoint-config KmsKeyId for it "
                "(its storage is hardware-encrypted). Set it to False."
            )
        return self
