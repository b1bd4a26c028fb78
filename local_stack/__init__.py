"""The whole async inference pipeline on one machine, for `make local` and the end-to-end tests.

Four pieces, all on 127.0.0.1, none needing an AWS account, Docker or a GPU:

- ``aws.py``: a moto server standing in for S3, SNS and SQS, with the stack's
  buckets and topics (and one SQS queue per topic, so notifications can be read);
- ``async_runtime.py``: a stand-in for SageMaker's asynchronous runtime that
  speaks the real ``InvokeEndpointAsync`` wire protocol and drives the container
  the way SageMaker's asynchronous inference guide describes;
- ``container.py``: the real model server as a child process;
- ``api_gateway.py``: the real API Lambda behind an HTTP adapter that
  builds API Gateway REST proxy (v1) events.

``pipeline.LocalPipeline`` starts and stops them together; ``python -m local_stack``
is what `make local` runs.
"""
