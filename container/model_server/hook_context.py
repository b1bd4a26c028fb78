"""The ``context`` argument user hooks may take, shaped like the toolkit's.

Under the Hugging Face toolkit, hooks that declare a trailing ``context``
receive Multi Model Server's ``Context`` object. Scripts use a few parts of it:
``context.system_properties`` (``model_dir``, ``gpu_id`` to pick a device),
request headers, and setting the response's content type, status or headers.
This class offers those same methods and attributes; there is no MMS here.
"""

from __future__ import annotations

from typing import Any

SERVER_NAME = "model_server"


class HookContext:
    """One request's context (or the load-time context given to ``model_fn``)."""

    def __init__(self, *, model_dir: str, gpu_id: int, headers: dict[str, str] | None = None) -> None:
        self.model_name = "model"
        self.manifest: dict[str, Any] = {}
        self._system_properties = {
            "model_dir": model_dir,
            # MMS gives the GPU's index, and -1 on a CPU-only host (as the toolkit's own tests do).
            "gpu_id": gpu_id,
            # One request per call: user hooks are never batched.
            "batch_size": 1,
            "server_name": SERVER_NAME,
            "server_version": "1",
        }
        # Header names are case-insensitive: store them lower-cased, look them up lower-cased.
        self._request_headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.response_content_type: str | None = None
        self.response_status: int | None = None
        self.response_headers: dict[str, str] = {}

    @property
    def system_properties(self) -> dict[str, Any]:
        return self._system_properties

    # --- MMS Context methods (idx is the request's index in a batch: always 0 here)
    def get_request_id(self, idx: int = 0) -> str | None:
        return self._request_headers.get("x-amzn-sagemaker-inference-id")

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self._request_headers.get(key.lower())

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        return dict(self._request_headers)

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.response_content_type = value

    def get_response_content_type(self, idx: int) -> str | None:
        return self.response_content_type

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.response_status = code

    def get_response_status(self, idx: int) -> int:
        return self.response_status or 200

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.response_headers[key] = value

    def get_response_headers(self, idx: int) -> dict[str, str]:
        return dict(self.response_headers)
