"""A SageMaker-contract model server with dynamic batching.

Run it as ``python -m model_server serve`` (what ``docker run IMAGE serve`` does).
Nothing heavy is imported here: the server must be listening within 250 ms of
start, long before torch and transformers finish importing.
"""
