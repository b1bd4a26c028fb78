"""The one way this project makes a CloudWatch Logs log group: retention in days, encrypted, removal per environment."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from inference_constructs.encryption import removal_policy

# CloudWatch Logs accepts only these retention periods (RetentionInDays,
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html);
# the configuration validates log_retention_days against the same set.
RETENTION_BY_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def encrypted_log_group(
    scope: Construct, construct_id: str, *, retention_days: int, key: kms.IKey, retain: bool
) -> logs.LogGroup:
    """A log group with a generated name, encrypted with `key`, kept `retention_days` days.

    The key's policy must admit CloudWatch Logs first (encryption.allow_cloudwatch_logs), or
    creating the log group fails. `retain` keeps the group when the stack is deleted, like the
    data whose requests it logs.
    """
    return logs.LogGroup(
        scope,
        construct_id,
        retention=RETENTION_BY_DAYS[retention_days],
        removal_policy=removal_policy(retain=retain),
        encryption_key=key,
    )
