"""One CloudWatch dashboard per environment: queue, capacity, failures, latency, API."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from inference_constructs.alarms import (
    INSTANCE_NAMESPACE,
    NAMESPACE,
    api_gateway_metric,
    async_metric,
    variant_metric,
)

ONE_MINUTE = cdk.Duration.minutes(1)
PEAK = "Maximum"


def _graph(
    title: str, metrics: Sequence[cloudwatch.IMetric], right: Sequence[cloudwatch.IMetric] | None = None
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, right=right, width=8, height=6)


def _powertools_counts(namespace: str, service_name: str) -> Callable[[str], cloudwatch.Metric]:
    """count(name) of a function's own Powertools metrics: dimension "service" is its
    POWERTOOLS_SERVICE_NAME."""

    def count(name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map={"service": service_name},
            statistic="Sum",
            period=ONE_MINUTE,
        )

    return count


def _per_variant(
    endpoint_name: str, variant_name: str, *, namespace: str = NAMESPACE
) -> Callable[[str, str], cloudwatch.Metric]:
    """metric(name, statistic) for one variant: failures, errors and latencies in AWS/SageMaker,
    instance utilization and LoadedModelCount in /aws/sagemaker/Endpoints, all per variant."""

    def metric(name: str, stat: str) -> cloudwatch.Metric:
        return variant_metric(endpoint_name, variant_name, name, stat, ONE_MINUTE, namespace=namespace)

    return metric


class OperationsDashboard(Construct):
    """Widgets in the order an operator asks questions: is work waiting, is there
    capacity, is it failing, how slow is it, and is the API healthy. One add_*_widgets
    per hosting mode: each shows only metrics that mode publishes."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=cdk.Duration.hours(3))

    def add_async_widgets(self, *, endpoint_name: str, variant_name: str) -> None:
        def m(name: str, stat: str = "Maximum") -> cloudwatch.Metric:
            return async_metric(endpoint_name, name, stat, ONE_MINUTE)

        # Failures, errors and latencies are published per variant (EndpointName + VariantName).
        v = _per_variant(endpoint_name, variant_name)
        self.dashboard.add_widgets(
            _graph("Backlog size", [m("ApproximateBacklogSize"), m("ApproximateBacklogSizePerInstance", "Average")]),
            _graph("Age of oldest request (s)", [m("ApproximateAgeOfOldestRequest")]),
            _graph(
                "Instances",
                [
                    # No metric carries the instance count of an async variant; while there is a
                    # backlog it is backlog / backlog-per-instance. 0 instances shows as the flag below.
                    cloudwatch.MathExpression(
                        expression="IF(perInstance > 0, backlog / perInstance, 0)",
                        using_metrics={
                            "backlog": m("ApproximateBacklogSize", "Average"),
                            "perInstance": m("ApproximateBacklogSizePerInstance", "Average"),
                        },
                        label="Instances (derived while backlog > 0)",
                        period=ONE_MINUTE,
                    ),
                    m("HasBacklogWithoutCapacity"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Failures",
                [
                    v(name, "Sum")
                    for name in (
                        "InvocationFailures",
                        "Invocation5XXErrors",
                        "Invocation4XXErrors",
                        "ExpiredRequests",
                        "RequestDownloadFailures",
                        "ResponseUploadFailures",
                        "NotificationFailures",
                    )
                ],
            ),
            _graph(
                "Processing time (ms)",
                [v("TimeInBacklog", "Average"), v("TotalProcessingTime", "Average"), v("TotalProcessingTime", "p99")],
            ),
            # OverheadLatency is not published for async endpoints: model latency only.
            _graph("Model latency (us)", [v("ModelLatency", "Average"), v("ModelLatency", "p99")]),
        )

    def add_realtime_widgets(self, *, endpoint_name: str, variant_name: str) -> None:
        """Real-time metrics (EndpointName + VariantName), instance metrics in /aws/sagemaker/Endpoints."""
        v = _per_variant(endpoint_name, variant_name)
        instance = _per_variant(endpoint_name, variant_name, namespace=INSTANCE_NAMESPACE)
        self.dashboard.add_widgets(
            _graph("Invocations", [v("Invocations", "Sum"), v("InvocationsPerInstance", "Sum")]),
            _graph("Errors", [v("Invocation4XXErrors", "Sum"), v("Invocation5XXErrors", "Sum")]),
            _graph(
                "Latency (us)",
                [v("ModelLatency", "Average"), v("ModelLatency", "p99"), v("OverheadLatency", "p99")],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Instance utilization (%)",
                [
                    instance(n, "Average")
                    for n in ("CPUUtilization", "MemoryUtilization", "GPUUtilization", "GPUMemoryUtilization")
                ],
            ),
        )

    def add_multi_model_widgets(self, *, endpoint_name: str, variant_name: str) -> None:
        """A multi-model endpoint's loading metrics, beside the real-time ones.

        https://docs.aws.amazon.com/sagemaker/latest/dg/multi-model-endpoint-cloudwatch-metrics.html:
        the loading times and ModelCacheHit in AWS/SageMaker, LoadedModelCount in
        /aws/sagemaker/Endpoints, all with EndpointName and VariantName (no per-model metrics).
        Their valid statistics are Average, Sum, Min, Max and SampleCount: no percentiles.
        """
        v = _per_variant(endpoint_name, variant_name)
        loaded = _per_variant(endpoint_name, variant_name, namespace=INSTANCE_NAMESPACE)("LoadedModelCount", "Maximum")
        self.dashboard.add_widgets(
            _graph(
                "Model loading (us)",
                [
                    v("ModelLoadingWaitTime", "Average"),
                    v("ModelLoadingWaitTime", "Maximum"),
                    v("ModelDownloadingTime", "Average"),
                    v("ModelLoadingTime", "Average"),
                    v("ModelUnloadingTime", "Average"),
                ],
            ),
            # Average of ModelCacheHit is the share of requests whose model was already loaded.
            _graph("Model cache", [v("ModelCacheHit", "Average")], right=[loaded]),
        )

    def add_serverless_widgets(self, *, endpoint_name: str, variant_name: str, provisioned: bool) -> None:
        """Only what the serverless monitoring page lists (its list is exhaustive)."""
        v = _per_variant(endpoint_name, variant_name)
        self.dashboard.add_widgets(
            _graph(
                "Invocations and errors",
                [v("Invocations", "Sum"), v("Invocation4XXErrors", "Sum"), v("Invocation5XXErrors", "Sum")],
            ),
            _graph(
                "Latency (us)",
                [v("ModelLatency", "p99"), v("OverheadLatency", "p99"), v("ModelSetupTime", "Maximum")],
            ),
            _graph(
                "Concurrency used (share of MaxConcurrency)",
                [v("ServerlessConcurrentExecutionsUtilization", "Maximum")],
            ),
        )
        if provisioned:
            self.dashboard.add_widgets(
                _graph(
                    "Provisioned concurrency",
                    [
                        v("ServerlessProvisionedConcurrencyExecutions", "Maximum"),
                        v("ServerlessProvisionedConcurrencyUtilization", "Maximum"),
                    ],
                    right=[
                        v("ServerlessProvisionedConcurrencyInvocations", "Sum"),
                        v("ServerlessProvisionedConcurrencySpilloverInvocations", "Sum"),
                    ],
                ),
            )

    def add_api_widgets(
        self, *, api_name: str, stage_name: str, function: lambda_.IFunction, service_name: str, metrics_namespace: str
    ) -> None:
        handler = _powertools_counts(metrics_namespace, service_name)

        def api(name: str, stat: str = "Sum") -> cloudwatch.Metric:
            return api_gateway_metric(api_name, stage_name, name, stat, ONE_MINUTE)

        self.dashboard.add_widgets(
            _graph("API requests and errors", [api("Count"), api("4XXError"), api("5XXError")]),
            _graph(
                "API latency (ms)", [api("Latency", "p50"), api("Latency", "p99"), api("IntegrationLatency", "p99")]
            ),
            _graph(
                "Handler",
                [function.metric_errors(period=ONE_MINUTE), function.metric_throttles(period=ONE_MINUTE)],
                right=[function.metric_duration(period=ONE_MINUTE, statistic="p99")],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Submissions",
                [
                    handler(n)
                    for n in (
                        "InferencesSubmitted",
                        "IdempotentReplays",
                        "UploadsCreated",
                        "ClientErrors",
                        "ServerErrors",
                    )
                ],
            ),
        )

    def add_callback_widgets(
        self,
        *,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        function: lambda_.IFunction,
        service_name: str,
        metrics_namespace: str,
    ) -> None:
        """Completion callbacks: what the notifier did (its Powertools counts, dimension
        "service"), what waits in its queue (retries hide there), and the dead letters."""

        outcome = _powertools_counts(metrics_namespace, service_name)

        self.dashboard.add_widgets(
            _graph(
                "Callbacks",
                [
                    outcome(n)
                    for n in ("CallbacksDelivered", "CallbackRetries", "CallbacksRefused", "CallbacksDeadLettered")
                ],
            ),
            _graph(
                "Callback queue (not visible: retries waiting)",
                [
                    queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic=PEAK),
                    queue.metric_approximate_number_of_messages_not_visible(period=ONE_MINUTE, statistic=PEAK),
                    dead_letter_queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic=PEAK),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=ONE_MINUTE, statistic=PEAK)],
            ),
            _graph(
                "Notifier",
                [function.metric_errors(period=ONE_MINUTE), function.metric_throttles(period=ONE_MINUTE)],
                right=[function.metric_duration(period=ONE_MINUTE, statistic="p99")],
            ),
        )
