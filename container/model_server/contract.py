"""The model server's contract with whoever starts it: environment variable names and defaults.

Plain data, standard library only: the stack (stacks/, inference_constructs/), app_config and
the local stack import it at synth time without the server's dependencies, and the server's
settings (settings.py) read exactly these names. A variable is renamed here, once.

SageMaker and the Hugging Face inference toolkit define some of the names
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html,
https://github.com/aws/sagemaker-huggingface-inference-toolkit#environment-variables): those
are kept verbatim so a model configured for the toolkit runs unchanged. The server's own
knobs share ENV_PREFIX.
"""

from __future__ import annotations

from typing import Final

# ------------------------------------------------------------------ set by SageMaker / the toolkit
BIND_TO_PORT: Final = "SAGEMAKER_BIND_TO_PORT"
MULTI_MODEL: Final = "SAGEMAKER_MULTI_MODEL"
PROGRAM: Final = "SAGEMAKER_PROGRAM"
MODEL_DIR: Final = "MODEL_DIR"
HF_MODEL_ID: Final = "HF_MODEL_ID"
HF_MODEL_REVISION: Final = "HF_MODEL_REVISION"
HF_API_TOKEN: Final = "HF_API_TOKEN"  # noqa: S105 - the variable's name, not a token
HF_TASK: Final = "HF_TASK"

# ------------------------------------------------------------------ the server's own knobs
ENV_PREFIX: Final = "MODEL_SERVER_"
HOST: Final = f"{ENV_PREFIX}HOST"
# "cuda" on GPU instance types, "cpu" on CPU ones (the stack decides; app_config.container_device).
DEVICE: Final = f"{ENV_PREFIX}DEVICE"
MAX_REQUEST_BYTES: Final = f"{ENV_PREFIX}MAX_REQUEST_BYTES"
MAX_BATCH_SIZE: Final = f"{ENV_PREFIX}MAX_BATCH_SIZE"

# Variables the stack sets from the environment's config: a user's container_environment may
# not override them (app_config refuses it).
STACK_VARIABLES: Final = frozenset({DEVICE, MAX_REQUEST_BYTES, MAX_BATCH_SIZE, HF_MODEL_ID, HF_MODEL_REVISION, HF_TASK})

# ------------------------------------------------------------------ defaults
DEFAULT_PORT: Final = 8080  # SageMaker's, when SAGEMAKER_BIND_TO_PORT is unset
# Every interface inside the container: SageMaker connects from outside it. Tests, `make serve`
# and the local stack set MODEL_SERVER_HOST=127.0.0.1.
DEFAULT_HOST: Final = "0.0.0.0"  # noqa: S104 - see above
DEFAULT_MODEL_DIR: Final = "/opt/ml/model"  # where SageMaker unpacks ModelDataUrl
# The largest payload an asynchronous endpoint accepts, 1 GB
# (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html).
DEFAULT_MAX_REQUEST_BYTES: Final = 1024**3
DEFAULT_MAX_BATCH_SIZE: Final = 32
