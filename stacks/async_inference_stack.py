"""One environment of the inference service: wires constructs and grants, nothing else.

The endpoint type follows `config.hosting.mode` (async, realtime, serverless, multimodel). Everything
else - storage, notifications, image, model, execution role, API - is the same construct
with the same id in every mode, so changing the mode changes only the endpoint, its
scaling, its alarms and dashboard, and the API handler's mode variable and invoke grant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from model_server import contract as container_contract

from api_handler.contract import MAX_ASYNC_PAYLOAD_BYTES, METRICS_NAMESPACE
from app_config import EnvironmentConfig, S3PrefixModel
from app_config.gpu_drivers import inference_ami_for
from app_config.hosting import MultiModelHosting, RealtimeHosting, ServerlessHosting
from inference_constructs.alarms import OperationsAlarms, grant_describe_alarms, rollback_alarm_names
from inference_constructs.api import InferenceApi
from inference_constructs.autoscaling import add_async_policies
from inference_constructs.batch_transform import BatchTransformAccess
from inference_constructs.callbacks import SERVICE_NAME as CALLBACKS_SERVICE_NAME
from inference_constructs.callbacks import InferenceCallbacks
from inference_constructs.dashboard import OperationsDashboard
from inference_constructs.endpoint import (
    InferenceEndpoint,
    async_inference_config,
    deployment_guardrails,
    instance_variant,
    serverless_variant,
)
from inference_constructs.execution_role import SageMakerExecutionRole
from inference_constructs.model_artifact import ModelArtifact
from inference_constructs.model_image import ModelImage
from inference_constructs.notifications import InferenceNotifications
from inference_constructs.storage import InferenceStorage
from inference_constructs.variant_scaling import INSTANCE_COUNT, PROVISIONED_CONCURRENCY, ScalableVariant
from stacks.compliance import (
    CALLBACK_CHECKOV_SKIPS,
    CALLBACK_FINDINGS,
    CHECKOV_SKIPS,
    acknowledge_findings,
    model_prefix_findings,
)


class AsyncInferenceStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        container_dir: Path,
        build_dir: Path,
        **kwargs: Any,  # cdk.StackProps (env, description, ...), passed through
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        storage = InferenceStorage(
            self,
            "Storage",
            input_expiry_days=config.storage.input_expiry_days,
            output_expiry_days=config.storage.output_expiry_days,
            failure_expiry_days=config.storage.failure_expiry_days,
            access_log_expiry_days=config.storage.access_log_expiry_days,
            retain=config.retain_data,
        )
        notifications = InferenceNotifications(
            self, "Notifications", email_subscribers=config.notification_emails, retain=config.retain_data
        )
        image = ModelImage(self, "Image", directory=str(container_dir))
        artifact = ModelArtifact(self, "ModelArtifact", source=config.model, build_dir=build_dir)

        execution = SageMakerExecutionRole(self, "Execution")
        hosting = config.hosting
        rollback_alarms = list(rollback_alarm_names(self.stack_name, hosting.mode).values())
        grant_describe_alarms(execution.role, rollback_alarms)
        storage.grant_endpoint_io(execution.role)
        notifications.grant_publish(execution.role)
        image.grant_pull(execution.role)
        artifact.grant_read(execution.role)
        if config.encrypt_storage_volume:
            storage.key.grant_encrypt_decrypt(execution.role)
        # Offline scoring of S3 data with the same model (python -m inference_client batch).
        batch = BatchTransformAccess(self, "Batch", execution_role=execution.role, storage=storage)

        endpoint = InferenceEndpoint(
            self,
            "Inference",
            role=execution.role,
            image_uri=image.image_uri,
            model_data_url=artifact.model_data_url,
            environment={
                **artifact.environment,
                **config.container_environment,
                # The agreed container interface: the device the hosting provides (the
                # server refuses to report healthy when it is cuda and CUDA is unusable), and
                # the largest request the endpoint type accepts (async: SageMaker's 1 GB payload
                # limit, https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html;
                # real-time and serverless: InvokeEndpoint's, below the API's own limit anyway).
                container_contract.DEVICE: config.container_device,
                container_contract.MAX_REQUEST_BYTES: str(MAX_ASYNC_PAYLOAD_BYTES),
                # Tied to MaxConcurrentInvocationsPerInstance below (app_config: cap = 2 x batch).
                container_contract.MAX_BATCH_SIZE: str(config.max_batch_size),
            },
            enable_network_isolation=config.enable_network_isolation,
            multi_model=isinstance(hosting, MultiModelHosting),
            model_cache_setting=hosting.model_cache_setting if isinstance(hosting, MultiModelHosting) else None,
            variant=self._variant(config, image.cuda_version),
            async_config=async_inference_config(
                result_paths=storage.result_paths,
                output_key=storage.key,
                success_topic=notifications.success_topic,
                error_topic=notifications.error_topic,
                max_concurrent_invocations_per_instance=config.max_concurrent_invocations_per_instance,
            )
            if hosting.mode == "async"
            else None,
            deployment_config=deployment_guardrails(settings=config.deployment, rollback_alarm_names=rollback_alarms),
            storage_volume_key=storage.key if config.encrypt_storage_volume else None,
        )

        if config.autoscaling_enabled:
            self._scaling(config, endpoint_name=endpoint.endpoint_name, variant_name=endpoint.variant_name)

        alarms = OperationsAlarms(self, "Alarms", alarm_email=config.alarm_email, retain=config.retain_data)
        dashboard = OperationsDashboard(self, "Dashboard")
        self._endpoint_operations(
            config, alarms, dashboard, endpoint_name=endpoint.endpoint_name, variant_name=endpoint.variant_name
        )

        # Client API: clients call this, never S3 or SageMaker directly.
        api_service = f"inference-api-{config.name}"
        api = InferenceApi(
            self,
            "Api",
            storage=storage,
            settings=config.api,
            endpoint_name=endpoint.endpoint_name,
            hosting_mode=hosting.mode,
            default_invocation_timeout_seconds=config.invocation_timeout_seconds,
            default_request_ttl_seconds=config.request_ttl_seconds,
            log_retention_days=config.log_retention_days,
            api_name=f"async-inference-{config.name}",
            service_name=api_service,
            retain_logs=config.retain_data,
        )
        storage.grant_api_access(api.function, writes_results=hosting.mode != "async")
        endpoint.grant_invoke(api.function)

        api_dimensions = {
            "api_name": api.rest_api.rest_api_name,
            "stage_name": api.rest_api.deployment_stage.stage_name,
        }
        alarms.add_api_alarms(
            **api_dimensions,
            function=api.function,
            api_5xx_percent=config.operations.api_5xx_percent,
            api_p99_latency_ms=config.operations.api_p99_latency_ms,
        )
        dashboard.add_api_widgets(
            **api_dimensions, function=api.function, service_name=api_service, metrics_namespace=METRICS_NAMESPACE
        )

        outputs = {}
        notifier: InferenceCallbacks | None = None
        if hosting.mode == "async" and config.callbacks.enabled:
            # Completion callbacks: SageMaker's topics feed the notifier's queue.
            notifier = InferenceCallbacks(
                self,
                "Callbacks",
                topics=notifications.topics,
                storage=storage,
                settings=config.callbacks,
                endpoint_name=endpoint.endpoint_name,
                # The notifier reads results with the API's code and settings, inline limit included.
                inline_result_max_bytes=config.api.inline_result_max_bytes,
                status_base_url=api.url,
                alarm_topic=alarms.topic,
                log_retention_days=config.log_retention_days,
                retain=config.retain_data,
            )
            notifier.enable_on_api(api.function)
            dashboard.add_callback_widgets(
                queue=notifier.queue,
                dead_letter_queue=notifier.dead_letter_queue,
                function=notifier.function,
                service_name=CALLBACKS_SERVICE_NAME,
                metrics_namespace=METRICS_NAMESPACE,
            )
            # Callers verify signatures with this secret (aws secretsmanager get-secret-value).
            outputs["CallbackSecretArn"] = notifier.secret.secret_arn

        outputs |= {
            "EndpointName": endpoint.endpoint_name,
            "ApiUrl": api.url,
            "InputBucketName": storage.input_bucket.bucket_name,
            "OutputBucketName": storage.output_bucket.bucket_name,
            "FailureBucketName": storage.failure_bucket.bucket_name,
            "SuccessTopicArn": notifications.success_topic.topic_arn,
            "ErrorTopicArn": notifications.error_topic.topic_arn,
            "AlarmTopicArn": alarms.topic.topic_arn,
            # Batch transform (python -m inference_client batch BatchInputUri... BatchOutputUri... --model-name
            # ModelName).
            "ModelName": endpoint.model.attr_model_name,
            "BatchInputUri": batch.input_uri,
            "BatchOutputUri": batch.output_uri,
            "BatchCallerPolicyArn": batch.caller_policy.managed_policy_arn,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)

        with_callbacks = notifier is not None
        acknowledge_findings(
            self,
            extra=(
                *(
                    model_prefix_findings(config.model.bucket, config.model.prefix)
                    if isinstance(config.model, S3PrefixModel)
                    else ()
                ),
                *(CALLBACK_FINDINGS if with_callbacks else ()),
            ),
            checkov_skips=(*CHECKOV_SKIPS, *(CALLBACK_CHECKOV_SKIPS if with_callbacks else ())),
        )

    # ------------------------------------------------------------------ per hosting mode
    @staticmethod
    def _variant(
        config: EnvironmentConfig, cuda_version: str | None
    ) -> Callable[[str], sagemaker.CfnEndpointConfig.ProductionVariantProperty]:
        """The production variant for the hosting mode, as a function of the model's generated name."""
        hosting = config.hosting
        if isinstance(hosting, ServerlessHosting):
            return lambda model_name: serverless_variant(
                model_name=model_name,
                memory_size_mb=hosting.memory_size_mb,
                max_concurrency=hosting.max_concurrency,
                provisioned_concurrency=hosting.provisioned_concurrency,
            )
        return lambda model_name: instance_variant(
            model_name=model_name,
            instance_type=config.instance_type,
            inference_ami_version=inference_ami_for(config.instance_type, cuda_version),
            container_startup_timeout_seconds=config.container_startup_timeout_seconds,
            model_download_timeout_seconds=config.model_download_timeout_seconds,
            initial_instance_count=hosting.min_capacity if isinstance(hosting, RealtimeHosting) else 1,
        )

    def _scaling(self, config: EnvironmentConfig, *, endpoint_name: str, variant_name: str) -> None:
        """The variant's scalable target, and the hosting mode's policies on it."""
        hosting = config.hosting

        def scalable(dimension: str, min_capacity: int, max_capacity: int) -> ScalableVariant:
            return ScalableVariant(
                self,
                "Scaling",
                endpoint_name=endpoint_name,
                variant_name=variant_name,
                scalable_dimension=dimension,
                min_capacity=min_capacity,
                max_capacity=max_capacity,
            )

        if isinstance(hosting, RealtimeHosting):
            scalable(INSTANCE_COUNT, hosting.min_capacity, hosting.max_capacity).track_predefined_metric(
                metric_type="SageMakerVariantInvocationsPerInstance",
                target_value=hosting.invocations_per_instance_target,
                scale_out_cooldown_seconds=hosting.scale_out_cooldown_seconds,
                scale_in_cooldown_seconds=hosting.scale_in_cooldown_seconds,
            )
        elif isinstance(hosting, ServerlessHosting):
            # Only provisioned concurrency scales; on-demand concurrency is SageMaker's up to MaxConcurrency.
            if hosting.provisioned_concurrency is None or hosting.max_provisioned_concurrency is None:
                return
            scalable(
                PROVISIONED_CONCURRENCY, hosting.provisioned_concurrency, hosting.max_provisioned_concurrency
            ).track_predefined_metric(
                metric_type="SageMakerVariantProvisionedConcurrencyUtilization",
                target_value=hosting.provisioned_utilization_target,
                scale_out_cooldown_seconds=60,
                scale_in_cooldown_seconds=300,
            )
        else:
            add_async_policies(
                scalable(INSTANCE_COUNT, config.scaling.min_capacity, config.scaling.max_capacity),
                metric_name=config.scaling.metric,
                target_value=config.scaling.target_value,
                scale_out_cooldown_seconds=config.scaling.scale_out_cooldown_seconds,
                cold_start_seconds=config.operations.expected_cold_start_minutes * 60,
                idle_minutes_before_scale_in=config.scaling.idle_minutes_before_scale_in,
            )

    @staticmethod
    def _endpoint_operations(
        config: EnvironmentConfig,
        alarms: OperationsAlarms,
        dashboard: OperationsDashboard,
        *,
        endpoint_name: str,
        variant_name: str,
    ) -> None:
        """Alarms and dashboard widgets on the metrics the hosting mode publishes."""
        hosting = config.hosting
        where = {"endpoint_name": endpoint_name, "variant_name": variant_name}
        failures = config.operations.failures_per_5_minutes
        if isinstance(hosting, RealtimeHosting):
            alarms.add_realtime_alarms(
                **where,
                failures_per_5_minutes=failures,
                max_model_latency_ms=hosting.max_model_latency_ms,
                invocations_per_instance_target=hosting.invocations_per_instance_target,
            )
            dashboard.add_realtime_widgets(**where)
            if isinstance(hosting, MultiModelHosting):
                alarms.add_multi_model_alarms(**where, max_model_loading_wait_ms=hosting.max_model_loading_wait_ms)
                dashboard.add_multi_model_widgets(**where)
        elif isinstance(hosting, ServerlessHosting):
            alarms.add_serverless_alarms(
                **where,
                failures_per_5_minutes=failures,
                max_model_latency_ms=hosting.max_model_latency_ms,
                max_model_setup_seconds=hosting.max_model_setup_seconds,
            )
            dashboard.add_serverless_widgets(**where, provisioned=hosting.provisioned_concurrency is not None)
        else:
            alarms.add_async_alarms(
                **where,
                max_request_age_seconds=config.operations.max_request_age_seconds,
                expected_cold_start_minutes=config.operations.expected_cold_start_minutes,
                failures_per_5_minutes=failures,
            )
            dashboard.add_async_widgets(**where)
