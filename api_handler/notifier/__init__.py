"""The completion-callback notifier: a second Lambda in the API's asset.

SageMaker's success/error SNS topics -> an SQS queue -> this Lambda, which reads the
inference's receipt and result (the API's own code: async_api.service), signs the event
(async_api.webhooks) and POSTs it to the caller's callback URL (delivery.py), retrying on a
schedule kept by the queue itself (schedule.py). Entry point: `api_handler.notifier.handler.handler`.
"""
