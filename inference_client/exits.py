"""The CLI's exit statuses, and how each command turns a failure into a message and a status.

Every command documents the same statuses (cli.py's help): 0 done, 1 the work failed, 2 bad
usage, 3 the service refused or is unreachable, 4 waiting gave up. Each command lists the
failures it expects in a table; `exit_status` prints the first matching row's message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from inference_client.client import ClientError, InferenceFailed, NotReady, WaitTimeout

EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_TIMEOUT = 1, 2, 3, 4


class UsageError(ClientError):
    """The command line asks for something the CLI will not do (exit status 2)."""


@dataclass(frozen=True)
class Failure:
    """An exception a command expects: what it prints on stderr ({error}: the exception) and the status."""

    kind: type[BaseException]
    message: str
    status: int


def exit_status(command: Callable[[], int], failures: Sequence[Failure], stderr: TextIO) -> int:
    """`command()`'s exit status, or, when it raises one of `failures` (the first row whose kind
    matches, so a subclass goes before its base), that row's message on stderr and its status.
    Anything else propagates: an unexpected error keeps its traceback."""
    try:
        return command()
    except tuple(failure.kind for failure in failures) as error:
        failure = next(failure for failure in failures if isinstance(error, failure.kind))
        stderr.write(failure.message.format(error=error) + "\n")
        return failure.status


# The API commands (submit, invoke, status, result): the client's errors, most specific first.
API_FAILURES = (
    Failure(InferenceFailed, "error: {error}", EXIT_FAILED),
    # The inference goes on: asking again later may find it done.
    Failure(NotReady, "not ready: {error}; try again later", EXIT_TIMEOUT),
    Failure(WaitTimeout, "gave up waiting: {error}", EXIT_TIMEOUT),
    Failure(UsageError, "error: {error}", EXIT_USAGE),
    # The rest: the API refused (after retries) or could not be reached.
    Failure(ClientError, "error: {error}", EXIT_API),
)
