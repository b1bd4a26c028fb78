"""Present but not the entry point: SAGEMAKER_PROGRAM names serve_transform.py."""


def transform_fn(model, input_data, content_type, accept):
    return '{"script": "inference.py (wrong one)"}'
