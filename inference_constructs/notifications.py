"""SNS topics SageMaker notifies when an async request succeeds or fails."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from inference_constructs.encryption import customer_managed_key


class InferenceNotifications(Construct):
    """Success and error topics, encrypted with a customer-managed key.

    A customer-managed key (not the AWS-managed alias/aws/sns) because the
    publisher is SageMaker acting with our execution role and subscribers such as
    SQS queues need key-policy access that an AWS-managed key cannot grant.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        email_subscribers: Sequence[str] = (),
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = customer_managed_key(
            self, "TopicKey", description="Encrypts async inference success and error notifications", retain=retain
        )
        self.success_topic = sns.Topic(self, "Success", master_key=self.key, enforce_ssl=True)
        self.error_topic = sns.Topic(self, "Error", master_key=self.key, enforce_ssl=True)
        for email in email_subscribers:
            self.success_topic.add_subscription(subscriptions.EmailSubscription(email))
            self.error_topic.add_subscription(subscriptions.EmailSubscription(email))

    @property
    def topics(self) -> tuple[sns.Topic, sns.Topic]:
        return (self.success_topic, self.error_topic)

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """sns:Publish on both topics, plus the key use that encrypted topics require.

        Not topic.grant_publish: with a customer key it also grants kms:GenerateDataKey*, a wildcard.
        """
        publish = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sns:Publish"],
            resource_arns=[topic.topic_arn for topic in self.topics],
        )
        return publish.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resource_arns=[self.key.key_arn],
            )
        )
