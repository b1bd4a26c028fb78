"""transform_fn with context, echoing what it was given (like the toolkit's own test script)."""

import os


def model_fn(model_dir, context=None):
    return f"Loading {os.path.basename(__file__)}"


def transform_fn(model, input_data, content_type, accept, context=None):
    kind = type(input_data).__name__
    return f"output {model} {kind} {content_type} {accept} {context.system_properties['batch_size']}"
