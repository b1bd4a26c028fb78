"""Lambda entry point of the notifier: SQS batches (from the success and error topics).

Powertools' batch utility reports each record that raised as a batch item failure
(the event source mapping has ReportBatchItemFailures), so one slow receiver's retry never
sends the other events of the batch around again. I/O wiring only; notify.py decides.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from api_handler.async_api.service import InferenceService, build_clients
from api_handler.async_api.settings import Settings
from api_handler.contract import METRICS_NAMESPACE, Env
from api_handler.notifier.notify import Notifier, RetryLater
from api_handler.notifier.settings import NotifierSettings

logger = Logger(service=os.environ.get(Env.POWERTOOLS_SERVICE_NAME, "inference-callbacks"))
metrics = Metrics(namespace=os.environ.get(Env.POWERTOOLS_METRICS_NAMESPACE, METRICS_NAMESPACE))
# One count per outcome of an attempt (notify.Notifier.handle's first word), for dashboards.
OUTCOME_METRICS = {
    "delivered": "CallbacksDelivered",
    "failed": "CallbacksRefused",
    "dead-lettered": "CallbacksDeadLettered",
    "ignored": "CallbackEventsIgnored",
}
# A record that raised stays on the queue; an all-failed batch is not an error of the Lambda.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# The signing secret is read at most every 5 minutes per execution environment.
SECRET_MAX_AGE_SECONDS = 300
_AWS_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})


@cache
def notifier() -> Notifier:
    api_settings = Settings.from_environment(os.environ)
    settings = NotifierSettings.from_environment(os.environ)
    clients = build_clients(api_settings)
    secrets = SecretsProvider(
        boto3_client=boto3.client(
            "secretsmanager", endpoint_url=settings.secrets_manager_endpoint_url, config=_AWS_CONFIG
        )
    )
    return Notifier(
        settings=settings,
        service=InferenceService(api_settings, clients),
        sqs=boto3.client("sqs", endpoint_url=settings.sqs_endpoint_url, config=_AWS_CONFIG),
        secret=lambda: str(secrets.get(settings.secret_arn, max_age=SECRET_MAX_AGE_SECONDS)),
    )


def record_handler(record: Any) -> None:
    raw = record.raw_event
    try:
        outcome = notifier().handle(raw)
    except RetryLater as pending:
        metrics.add_metric(name="CallbackRetries", unit=MetricUnit.Count, value=1)
        logger.info("callback retry scheduled", extra={"reason": str(pending), "message_id": raw.get("messageId")})
        raise
    name = OUTCOME_METRICS.get(outcome.split(" ", 1)[0].rstrip(":"))
    if name:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    logger.info("callback processed", extra={"outcome": outcome, "message_id": raw.get("messageId")})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
