"""The SageMaker model, endpoint configuration and endpoint, in every hosting mode.

async: an instance variant plus AsyncInferenceConfig; realtime: the same instance variant
without it; multimodel: realtime with a MultiModel container over an S3 prefix of models;
serverless: a variant with ServerlessConfig and no instances
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html).
The model, the construct ids and so the logical ids are the same in every mode: changing
an environment's mode replaces the endpoint configuration and updates the endpoint.

Helpers return L1 property objects so each SageMaker setting is visible in one
place and maps one-to-one onto the CloudFormation documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from api_handler.contract import ResultPaths
from app_config.models import DeploymentGuardrails

VARIANT_NAME = "AllTraffic"


def async_inference_config(
    *,
    result_paths: ResultPaths,
    output_key: kms.IKey,
    success_topic: sns.ITopic,
    error_topic: sns.ITopic,
    max_concurrent_invocations_per_instance: int,
) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
    """Where results go and how hard SageMaker drives one container.

    `result_paths` is the storage layout's S3OutputPath and S3FailurePath (the local runtime
    stand-in writes where the same object says). The output key encrypts responses and
    failures; it is independent of the endpoint-config KmsKeyId (storage volume), which NVMe
    instance types reject. IncludeInferenceResponseIn is left unset: responses may be
    sensitive and notifications travel further than the output bucket.
    """
    return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
        output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
            s3_output_path=result_paths.s3_output_path,
            s3_failure_path=result_paths.s3_failure_path,
            kms_key_id=output_key.key_arn,
            notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                success_topic=success_topic.topic_arn,
                error_topic=error_topic.topic_arn,
            ),
        ),
        client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
            max_concurrent_invocations_per_instance=max_concurrent_invocations_per_instance,
        ),
    )


def instance_variant(
    *,
    model_name: str,
    instance_type: str,
    inference_ami_version: str | None,
    container_startup_timeout_seconds: int,
    model_download_timeout_seconds: int,
    initial_instance_count: int = 1,
) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    """The single instance-based variant (async and realtime) that autoscaling manages.

    InitialInstanceCount must be >= 1 (CloudFormation rejects 0); scaling to zero
    is the scalable target's MinCapacity. A real-time endpoint starts with its
    minimum capacity, so it is not under-provisioned until scaling first acts. Once the endpoint exists, the endpoint's
    RetainAllVariantProperties keeps CloudFormation from resetting the autoscaled
    count back to this value on every update.

    `inference_ami_version` picks the host's NVIDIA driver (app_config/gpu_drivers.py):
    without it g4dn/g5 run driver 470 (CUDA 11.4) and a CUDA 12 image sees no GPU.
    None on CPU instance types, which have no driver to choose.
    """
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=VARIANT_NAME,
        model_name=model_name,
        instance_type=instance_type,
        inference_ami_version=inference_ami_version,
        initial_instance_count=max(1, initial_instance_count),
        initial_variant_weight=1,
        container_startup_health_check_timeout_in_seconds=container_startup_timeout_seconds,
        model_data_download_timeout_in_seconds=model_download_timeout_seconds,
    )


def serverless_variant(
    *, model_name: str, memory_size_mb: int, max_concurrency: int, provisioned_concurrency: int | None
) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    """The single serverless variant: memory and concurrency instead of instances.

    No InstanceType, InitialInstanceCount, InferenceAmiVersion or instance timeouts: those
    describe instances, which a serverless variant does not have (SageMaker rejects a
    variant that mixes ServerlessConfig with instance properties). ProvisionedConcurrency
    keeps that many executions warm; it is the floor of the provisioned-concurrency scaling.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html
    """
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=VARIANT_NAME,
        model_name=model_name,
        initial_variant_weight=1,
        serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
            memory_size_in_mb=memory_size_mb,
            max_concurrency=max_concurrency,
            provisioned_concurrency=provisioned_concurrency,
        ),
    )


def container_definition(
    *,
    image_uri: str,
    model_data_url: str | None,
    environment: Mapping[str, str],
    multi_model: bool,
    model_cache_setting: str | None,
) -> sagemaker.CfnModel.ContainerDefinitionProperty:
    """The model's one container: single-model, or a multi-model container over an S3 prefix.

    Multi-model (https://docs.aws.amazon.com/sagemaker/latest/dg/create-multi-model-endpoint.html):
    Mode MultiModel, ModelDataUrl the S3 prefix holding one tarball per model, and optionally
    MultiModelConfig.ModelCacheSetting (Enabled | Disabled; botocore's ContainerDefinition and
    MultiModelConfig shapes). SageMaker sets SAGEMAKER_MULTI_MODEL=true in the container itself.
    """
    return sagemaker.CfnModel.ContainerDefinitionProperty(
        image=image_uri,
        model_data_url=model_data_url,
        environment=dict(sorted(environment.items())) or None,
        mode="MultiModel" if multi_model else None,
        multi_model_config=sagemaker.CfnModel.MultiModelConfigProperty(model_cache_setting=model_cache_setting)
        if multi_model and model_cache_setting
        else None,
    )


def deployment_guardrails(
    *, settings: DeploymentGuardrails, rollback_alarm_names: list[str]
) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    """Blue/green update of the endpoint with automatic rollback, as the environment's
    DeploymentGuardrails configure it.

    SageMaker brings up a new fleet, shifts capacity to it (at once, as a canary
    step, or in linear steps), bakes for `settings.termination_wait_seconds`, and rolls back
    if any of the named alarms fires meanwhile. Steps are percentages of capacity:
    with autoscaling, instance counts are not known at deploy time.

    WaitIntervalInSeconds is set for every strategy, ALL_AT_ONCE included: the
    SageMaker API requires it (TrafficRoutingConfig.WaitIntervalInSeconds, 0-3600;
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html)
    although the CloudFormation schema does not, and rejects the create or update
    without it. For ALL_AT_ONCE it is the wait after the whole shift, before baking.
    """
    strategy = settings.strategy
    step = sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=settings.step_percent)
    routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type=strategy.upper(),
        canary_size=step if strategy == "canary" else None,
        linear_step_size=step if strategy == "linear" else None,
        wait_interval_in_seconds=settings.wait_interval_seconds,
    )
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=settings.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=settings.maximum_execution_timeout_seconds,
        ),
        auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in rollback_alarm_names]
        ),
    )


class InferenceEndpoint(Construct):
    """Model -> endpoint config -> endpoint, with no physical names.

    `variant` is instance_variant (async, realtime, multimodel) or serverless_variant;
    `async_config` makes it an asynchronous endpoint, `multi_model` a multi-model one.

    Almost every property of a model or endpoint config requires replacement; a
    fixed ModelName or EndpointConfigName would make that replacement fail with
    "already existing", so CloudFormation generates the names and later resources
    reference them (which also orders creation).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role: iam.IRole,
        image_uri: str,
        model_data_url: str | None,
        environment: Mapping[str, str],
        enable_network_isolation: bool,
        variant: Callable[[str], sagemaker.CfnEndpointConfig.ProductionVariantProperty],
        multi_model: bool = False,
        model_cache_setting: str | None = None,
        async_config: sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty | None = None,
        deployment_config: sagemaker.CfnEndpoint.DeploymentConfigProperty | None = None,
        storage_volume_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.is_async = async_config is not None
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=container_definition(
                image_uri=image_uri,
                model_data_url=model_data_url,
                environment=environment,
                multi_model=multi_model,
                model_cache_setting=model_cache_setting,
            ),
            # No network at all for the container: only possible when the model comes from S3.
            enable_network_isolation=enable_network_isolation or None,
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            # `variant` takes the model's generated name, known only here.
            production_variants=[variant(self.model.attr_model_name)],
            async_inference_config=async_config,
            kms_key_id=storage_volume_key.key_arn if storage_volume_key is not None else None,
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            retain_all_variant_properties=True,
            deployment_config=deployment_config,
        )
        # IAM race: SageMaker validates the role when each of these is created. The
        # role's grants land in its DefaultPolicy, a separate resource under the role;
        # without these explicit edges CloudFormation may create the model before the
        # policy that lets it pull the image exists. Depending on the role construct
        # covers every policy under it, including grants added after this point.
        for resource in (self.model, self.endpoint_config, self.endpoint):
            resource.node.add_dependency(role)

    @property
    def endpoint_name(self) -> str:
        return self.endpoint.attr_endpoint_name

    @property
    def variant_name(self) -> str:
        return VARIANT_NAME

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """The one SageMaker runtime action that calls this endpoint: InvokeEndpointAsync on an
        asynchronous endpoint, InvokeEndpoint otherwise (with TargetModel on a multi-model one)."""
        action = "sagemaker:InvokeEndpointAsync" if self.is_async else "sagemaker:InvokeEndpoint"
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=[action], resource_arns=[self.endpoint.attr_endpoint_arn]
        )
