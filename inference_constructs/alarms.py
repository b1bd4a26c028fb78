"""Operational alarms per hosting mode: is the queue served (async), is capacity keeping up,
are requests failing or slow.

Each metric is read with exactly the dimension set SageMaker publishes it with
(https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html): the
queue metrics (backlog, age, HasBacklogWithoutCapacity) with EndpointName only, the
per-variant ones (invocation failures and errors, expired requests, S3 and SNS
failures) with EndpointName AND VariantName. An alarm whose dimension set differs by
one name receives no data, ever. devtools/aws_contract checks every alarm against that
page. Missing data is decided per alarm: an endpoint at zero instances publishes
nothing for most metrics, and for a failure counter "no data" means "no failure",
while for the idle check it means "no evidence".

Delivery: CloudWatch publishes alarm notifications to SNS as the service principal
cloudwatch.amazonaws.com. A topic policy (here: the TLS-only Deny) replaces SNS's
default policy, so the topic policy allows that principal explicitly, limited to this
account's alarms, and the topic's key lets it encrypt.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from inference_constructs.arns import colon_resource_arn
from inference_constructs.encryption import customer_managed_key

# CloudWatch namespaces, defined once: SageMaker's endpoint metrics, its per-instance metrics
# (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html), API Gateway's.
NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
API_GATEWAY_NAMESPACE = "AWS/ApiGateway"
FIVE_MINUTES = cdk.Duration.minutes(5)
ONE_MINUTE = cdk.Duration.minutes(1)


def rollback_alarm_names(stack_name: str, mode: str = "async") -> dict[str, str]:
    """Names of the alarms the endpoint's deployment guardrails watch, per hosting mode.

    The endpoint must name these alarms while the alarms' metrics need the endpoint's
    generated name: referencing each other would be a dependency cycle. So these two
    alarms get names derived from the stack name (an alarm is only replaced when its
    name changes, so a stable name cannot block a replacement) and the endpoint lists
    the names as plain strings - the pattern ECS and Copilot use for rollback alarms.

    Async endpoints publish InvocationFailures; real-time (multi-model too) and serverless endpoints do not,
    and answer the caller directly, so their second alarm is on ModelLatency (p99).
    """
    if mode not in ("async", "realtime", "serverless", "multimodel"):
        raise ValueError(f"mode {mode!r}: async, realtime, serverless or multimodel")
    if mode == "async":
        return {
            "InvocationFailures": f"{stack_name}-endpoint-invocation-failures",
            "Invocation5XXErrors": f"{stack_name}-endpoint-5xx-errors",
        }
    return {
        "Invocation5XXErrors": f"{stack_name}-endpoint-5xx-errors",
        "ModelLatency": f"{stack_name}-endpoint-model-latency",
    }


def grant_describe_alarms(grantee: iam.IGrantable, alarm_names: Iterable[str]) -> iam.Grant:
    """cloudwatch:DescribeAlarms on the named alarms (the deployment's rollback alarms).

    SageMaker reads the auto-rollback alarms with the execution role during a blue/green update
    (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html);
    without this it cannot see them and never rolls back. The alarms are known by name only (see
    rollback_alarm_names), and DescribeAlarms supports alarm ARNs as resources, so the grant
    names exactly these alarms.
    """
    if not isinstance(grantee, Construct):
        raise TypeError(f"grant_describe_alarms: {grantee!r} is not a construct; the alarm ARNs need its stack")
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["cloudwatch:DescribeAlarms"],
        resource_arns=[
            colon_resource_arn(grantee, service="cloudwatch", resource="alarm", resource_name=name)
            for name in alarm_names
        ],
    )


def _metric(
    namespace: str, dimensions: dict[str, str], metric_name: str, statistic: str, period: cdk.Duration
) -> cloudwatch.Metric:
    """A metric read with exactly `dimensions`: the set its service publishes it with, or no data."""
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=metric_name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period,
    )


def async_metric(endpoint_name: str, metric_name: str, statistic: str, period: cdk.Duration) -> cloudwatch.Metric:
    """A queue metric of the endpoint: published with the EndpointName dimension only."""
    return _metric(NAMESPACE, {"EndpointName": endpoint_name}, metric_name, statistic, period)


def variant_metric(
    endpoint_name: str,
    variant_name: str,
    metric_name: str,
    statistic: str,
    period: cdk.Duration,
    *,
    namespace: str = NAMESPACE,
) -> cloudwatch.Metric:
    """A per-variant metric (failures, errors, latencies; instance metrics in INSTANCE_NAMESPACE):
    published with EndpointName and VariantName."""
    return _metric(
        namespace, {"EndpointName": endpoint_name, "VariantName": variant_name}, metric_name, statistic, period
    )


# variant_metric with the endpoint and variant bound: (metric_name, statistic, period) -> Metric.
VariantMetric = Callable[[str, str, cdk.Duration], cloudwatch.Metric]


def api_gateway_metric(
    api_name: str, stage_name: str, metric_name: str, statistic: str, period: cdk.Duration
) -> cloudwatch.Metric:
    """A REST API stage's metric: published with ApiName and Stage
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html)."""
    return _metric(API_GATEWAY_NAMESPACE, {"ApiName": api_name, "Stage": stage_name}, metric_name, statistic, period)


def allow_cloudwatch_alarms(topic: sns.Topic) -> None:
    """Let this account's CloudWatch alarms publish to `topic` (its policy replaces SNS's default)."""
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            # Confused-deputy guard: only alarms of this account may use the grant.
            conditions={
                "StringEquals": {"aws:SourceAccount": cdk.Stack.of(topic).account},
                "ArnLike": {"aws:SourceArn": colon_resource_arn(topic, service="cloudwatch", resource="alarm")},
            },
        )
    )


class OperationsAlarms(Construct):
    """Alarms to an operations topic (optionally e-mailed), one per failure mode."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_email: str | None,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = customer_managed_key(
            self, "TopicKey", description="Encrypts operations alarm notifications", retain=retain
        )
        # CloudWatch publishes alarm notifications itself; an encrypted topic needs the
        # service to be allowed to use the key, or notifications are silently dropped.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
        allow_cloudwatch_alarms(self.topic)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._action = actions.SnsAction(self.topic)

    def add_async_alarms(
        self,
        *,
        endpoint_name: str,
        variant_name: str,
        max_request_age_seconds: int,
        expected_cold_start_minutes: int,
        failures_per_5_minutes: int,
    ) -> None:
        """An asynchronous endpoint: is the queue served, did it wake, are requests failing."""
        self._add(
            "OldestRequestTooOld",
            async_metric(endpoint_name, "ApproximateAgeOfOldestRequest", "Maximum", ONE_MINUTE),
            threshold=max_request_age_seconds,
            periods=5,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,  # no data: nothing queued
            description=f"The oldest queued request is older than {max_request_age_seconds} s for 5 minutes: "
            "capacity is not keeping up (max capacity reached, or instances unhealthy).",
        )
        self._add(
            "EndpointFailedToWake",
            async_metric(endpoint_name, "HasBacklogWithoutCapacity", "Minimum", ONE_MINUTE),
            threshold=1,
            periods=expected_cold_start_minutes + 5,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,  # no data: no backlog
            description="Requests have waited with zero instances for longer than a cold start takes: "
            "the scale-from-zero policy did not bring an instance up.",
        )
        per_variant: VariantMetric = partial(variant_metric, endpoint_name, variant_name)
        for metric_name, alarm_name in rollback_alarm_names(cdk.Stack.of(self).stack_name, "async").items():
            self._add_failures_rollback_alarm(per_variant, metric_name, alarm_name, failures_per_5_minutes)
        for metric_name, meaning in (
            ("ExpiredRequests", "requests expired in the queue (RequestTTLSeconds) before any instance took them"),
            (
                "RequestDownloadFailures",
                "the endpoint could not read request payloads from S3 (permissions, KMS, deleted input)",
            ),
            ("ResponseUploadFailures", "the endpoint could not write results to S3 (permissions, KMS)"),
            ("NotificationFailures", "success/error notifications could not be published to SNS (permissions, KMS)"),
        ):
            self._add_any_occurrence(
                metric_name, per_variant(metric_name, "Sum", FIVE_MINUTES), f"{metric_name} > 0: {meaning}."
            )

    def add_realtime_alarms(
        self,
        *,
        endpoint_name: str,
        variant_name: str,
        failures_per_5_minutes: int,
        max_model_latency_ms: int,
        invocations_per_instance_target: float,
    ) -> None:
        """A real-time endpoint: errors and latency (both roll a deployment back), and capacity.

        Real-time metrics, all with EndpointName and VariantName
        (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html).
        """
        per_variant: VariantMetric = partial(variant_metric, endpoint_name, variant_name)
        self._add_synchronous_rollback_alarms(per_variant, "realtime", failures_per_5_minutes, max_model_latency_ms)
        # Target tracking keeps InvocationsPerInstance near the target; twice the target for
        # 15 minutes means it cannot (max_capacity reached, or instances failing to start).
        self._add(
            "InvocationsPerInstanceHigh",
            per_variant("InvocationsPerInstance", "Sum", ONE_MINUTE),
            threshold=2 * invocations_per_instance_target,
            periods=15,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,  # no data: no traffic
            description="InvocationsPerInstance above twice the scaling target "
            f"({invocations_per_instance_target:g}/min) "
            "for 15 minutes: capacity is not keeping up (max_capacity reached, or new instances fail).",
        )

    def add_multi_model_alarms(self, *, endpoint_name: str, variant_name: str, max_model_loading_wait_ms: int) -> None:
        """A multi-model endpoint thrashing: requests keep waiting for their model to be loaded.

        ModelLoadingWaitTime (AWS/SageMaker, EndpointName and VariantName; Average, Sum, Min,
        Max, SampleCount only: https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoint-cloudwatch-metrics.html)
        high for 15 minutes means the working set of models does not fit the instances' memory
        (SageMaker keeps unloading models it needs again): a larger instance type or more
        instances. No data is no invocation that had to wait.
        """
        self._add(
            "ModelLoadingWaitHigh",
            variant_metric(endpoint_name, variant_name, "ModelLoadingWaitTime", "Average", FIVE_MINUTES),
            threshold=max_model_loading_wait_ms * 1000,  # published in microseconds
            periods=3,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"Average ModelLoadingWaitTime above {max_model_loading_wait_ms} ms for 15 minutes: models are "
            "evicted and reloaded (the working set does not fit memory); use a larger instance type or more instances.",
        )

    def add_serverless_alarms(
        self,
        *,
        endpoint_name: str,
        variant_name: str,
        failures_per_5_minutes: int,
        max_model_latency_ms: int,
        max_model_setup_seconds: int,
    ) -> None:
        """A serverless endpoint: errors and latency (rollback), cold starts and concurrency.

        Only metrics the serverless monitoring page lists, with EndpointName and VariantName
        (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-monitoring.html).
        """
        per_variant: VariantMetric = partial(variant_metric, endpoint_name, variant_name)
        self._add_synchronous_rollback_alarms(per_variant, "serverless", failures_per_5_minutes, max_model_latency_ms)
        self._add(
            "ModelSetupTooSlow",
            # ModelSetupTime is in microseconds: the time to launch compute and load the model.
            per_variant("ModelSetupTime", "Maximum", FIVE_MINUTES),
            threshold=max_model_setup_seconds * 1_000_000,
            periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,  # no data: no cold start
            description=f"A cold start took more than {max_model_setup_seconds} s: the model or image grew, "
            "or memory_size_mb is too small to load it quickly.",
        )
        self._add(
            "ConcurrencyNearMaximum",
            per_variant("ServerlessConcurrentExecutionsUtilization", "Maximum", ONE_MINUTE),
            threshold=0.9,
            periods=5,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,  # no data: no executions
            description="Concurrent executions at 90% or more of MaxConcurrency for 5 minutes: further "
            "requests are throttled; raise hosting.max_concurrency.",
        )

    def add_api_alarms(
        self,
        *,
        api_name: str,
        stage_name: str,
        function: lambda_.IFunction,
        api_5xx_percent: float,
        api_p99_latency_ms: int,
    ) -> None:
        """API 5xx rate and latency, the handler's errors and throttles.

        Missing data is "not breaching": no traffic is not an outage of the API.
        """
        stage_metric = partial(api_gateway_metric, api_name, stage_name)
        self._add(
            "Api5xxRate",
            cloudwatch.MathExpression(
                expression="IF(requests > 0, 100 * errors / requests, 0)",
                using_metrics={
                    "errors": stage_metric("5XXError", "Sum", FIVE_MINUTES),
                    "requests": stage_metric("Count", "Sum", FIVE_MINUTES),
                },
                period=FIVE_MINUTES,
                label="API 5xx %",
            ),
            threshold=api_5xx_percent,
            periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"More than {api_5xx_percent}% of API requests failed with 5xx in 5 minutes.",
        )
        self._add(
            "ApiLatencyP99",
            stage_metric("Latency", "p99", FIVE_MINUTES),
            threshold=api_p99_latency_ms,
            periods=3,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"API p99 latency above {api_p99_latency_ms} ms for 15 minutes (API Gateway times out at 29 "
            "s).",
        )
        self._add_any_occurrence(
            "HandlerErrors",
            function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
            "The API handler raised (an unhandled error, not a mapped 4xx/5xx answer).",
        )
        self._add_any_occurrence(
            "HandlerThrottles",
            function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
            "The API handler was throttled: raise its reserved concurrency or the account limit.",
        )

    # ------------------------------------------------------------------ shared alarm shapes
    def _add_synchronous_rollback_alarms(
        self, per_variant: VariantMetric, mode: str, failures_per_5_minutes: int, max_model_latency_ms: int
    ) -> None:
        """The two alarms a real-time or serverless deployment rolls back on (rollback_alarm_names)."""
        names = rollback_alarm_names(cdk.Stack.of(self).stack_name, mode)
        self._add_failures_rollback_alarm(
            per_variant, "Invocation5XXErrors", names["Invocation5XXErrors"], failures_per_5_minutes
        )
        self._add(
            "ModelLatency",
            # ModelLatency is in microseconds.
            per_variant("ModelLatency", "p99", FIVE_MINUTES),
            threshold=max_model_latency_ms * 1000,
            periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,  # no data: no traffic
            description=f"ModelLatency p99 above {max_model_latency_ms} ms in 5 minutes (callers wait for it; "
            "API Gateway gives up at 29 s). Also rolls back an endpoint deployment in progress.",
            alarm_name=names["ModelLatency"],
        )

    def _add_failures_rollback_alarm(
        self, per_variant: VariantMetric, metric_name: str, alarm_name: str, failures_per_5_minutes: int
    ) -> None:
        """A failure count (InvocationFailures, Invocation5XXErrors) at the threshold within 5 minutes,
        under the name the endpoint's deployment guardrails watch (every hosting mode has one)."""
        self._add(
            metric_name,
            per_variant(metric_name, "Sum", FIVE_MINUTES),
            threshold=failures_per_5_minutes,
            periods=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,  # no data: no failures
            description=f"{metric_name} reached {failures_per_5_minutes} in 5 minutes. Also rolls back "
            "an endpoint deployment in progress.",
            alarm_name=alarm_name,
        )

    def _add_any_occurrence(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        """A count that should stay zero: one occurrence in a period alarms, no data is none happened."""
        self._add(
            construct_id,
            metric,
            threshold=0,
            periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=description,
        )

    def _add(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int,
        missing: cloudwatch.TreatMissingData,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarm_name: str | None = None,
    ) -> cloudwatch.Alarm:
        """An alarm on `metric` that notifies the operations topic when it fires and when it clears."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=description,
            alarm_name=alarm_name,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        return alarm
