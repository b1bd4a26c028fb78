"""Structured (one JSON object per line) logging for the whole process.

CloudWatch Logs Insights can filter and aggregate JSON fields directly, so the
per-batch size and latency are queryable without parsing free text.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_drop_color_message)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn configures nothing (log_config=None), so its loggers propagate here.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _drop_color_message(record: logging.LogRecord) -> bool:
    # uvicorn attaches an ANSI-coloured copy of some messages; noise in JSON.
    record.__dict__.pop("color_message", None)
    return True


def route_library_logs() -> None:
    """Send transformers' and huggingface_hub's logs through the JSON handler.

    Both libraries install their own plain-text stderr handler and draw
    progress bars; in CloudWatch those are unparseable noise.
    """
    import transformers.utils.logging as tf_logging
    from huggingface_hub.utils.tqdm import disable_progress_bars

    tf_logging.disable_default_handler()
    tf_logging.enable_propagation()
    tf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated in transformers
    disable_progress_bars()
