"""``sagemaker_inference.errors``: the exceptions scripts raise and catch.

They carry their HTTP status: ``UnsupportedFormatError`` is a 415 (406 when it
is about the response), and ``GenericInferenceToolkitError(status_code, ...)``
answers with the status the script chose.
"""

from __future__ import annotations

from model_server.errors import ServerError


class UnsupportedFormatError(ServerError):
    status = 415
    title = "Unsupported Media Type"

    def __init__(self, content_type: str, **kwargs: object) -> None:
        super().__init__(f"Content type {content_type} is not supported by this framework. "
                         "Implement input_fn to deserialize the request or output_fn to serialize the response.")


class UnsupportedAcceptError(UnsupportedFormatError):
    """The same error about a response type (an ``encoder.encode`` failure): 406."""

    status = 406
    title = "Not Acceptable"


class BaseInferenceToolkitError(Exception):
    def __init__(self, status_code: int, message: str, phrase: str) -> None:
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super().__init__(status_code, message, phrase)

    @property
    def error_code(self) -> int:
        # The attribute this server reads for a status a script chose (as MMS's PredictionException has it).
        return self.status_code

    def __str__(self) -> str:
        return str(self.message)


class GenericInferenceToolkitError(BaseInferenceToolkitError):
    def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
        message = message or "Invalid Request"
        super().__init__(status_code, message, phrase or message)
