"""Child processes that never outlive the pipeline that started them.

Each child runs in its own session, so a Ctrl-C in the terminal reaches only the
orchestrator, which then stops the children in order (API first, container
last). If the orchestrator dies without cleaning up (SIGKILL, a crash), the
kernel sends the child SIGTERM (``PR_SET_PDEATHSIG``): no orphan keeps a port.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        # Note: the signal fires when the *thread* that forked exits; children
        # are started from long-lived threads (the main thread or a test's).
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # argv is ours, never a shell string
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
    )


def terminate(process: subprocess.Popen[bytes], *, grace_seconds: float = 10.0) -> int | None:
    """SIGTERM, wait up to ``grace_seconds``, then SIGKILL (SageMaker's own sequence, shorter)."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=5)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for children that must be told their port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PortInUse(RuntimeError):
    """A port the pipeline is configured to use is taken; the message names the variable to change."""


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind ``host:port`` right now.

    SO_REUSEADDR only (what servers set, so a port in TIME_WAIT counts as free), never
    SO_REUSEPORT: with it, a bind succeeds next to another SO_REUSEPORT listener and two
    pipelines would share the port, each answering a random half of the requests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def check_ports(host: str, ports: Mapping[str, int]) -> None:
    """Fail before anything starts if a configured port is taken or given twice.

    ``ports`` maps the setting that chose each port (e.g. ``LOCAL_API_PORT``) to it; 0 means
    "any free port" and is not checked.
    """
    problems: list[str] = []
    seen: dict[int, str] = {}
    for variable, port in ports.items():
        if not port:
            continue
        if not 0 < port < 65536:
            problems.append(f"{variable}={port} is not a TCP port (1-65535)")
        elif port in seen:
            problems.append(f"{variable}={port} is also {seen[port]}: give each a different port")
        elif not port_is_free(host, port):
            problems.append(
                f"port {port} ({variable}) is already in use on {host}: stop what listens there "
                f"or choose another port, e.g. {variable}={_suggest(host, port)}"
            )
        seen.setdefault(port, variable)
    if problems:
        raise PortInUse("\n".join(problems))


def _suggest(host: str, port: int) -> int:
    """The next free port above ``port`` (a hint only: it may be taken by the time it is used)."""
    for candidate in range(port + 1, min(port + 100, 65536)):
        if port_is_free(host, candidate):
            return candidate
    return free_port(host)
