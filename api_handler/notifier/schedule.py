"""When to try a callback again: exponential backoff with jitter inside a bounded window.

Why SQS visibility timeouts rather than a state record plus a scheduler: the message that
SNS put on the queue already is the pending work, SQS keeps it durably, hides it for as long
as ChangeMessageVisibility says (up to 12 hours:
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html)
and hands it back to the Lambda when that runs out. No table, no timer service, no polling
of "due" records; the queue's SentTimestamp marks the start of the window and its
ApproximateReceiveCount the attempt number. The delivery state the API shows is written to
S3 beside the receipt (async_api/callback_state.py) for callers only, never read back to
decide a retry.

Delay before attempt n+1 after n failed attempts: uniform in [0.5, 1] x min(max_delay,
base x 2^(n-1)) ("equal jitter": spread so a receiver coming back is not hit by every
pending event at once, yet never shorter than half the step, which bounds the number of
attempts a window can hold). When the next attempt would fall outside the window, the event
goes to the dead-letter queue instead.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

# SQS's ceiling for ChangeMessageVisibility (12 h).
MAX_VISIBILITY_SECONDS = 43_200


def backoff_seconds(
    failed_attempts: int, *, base: float, max_delay: float, rand: Callable[[], float] = random.random
) -> int:
    """Seconds to wait after `failed_attempts` (>= 1) failed attempts."""
    step = min(max_delay, base * 2.0 ** max(0, failed_attempts - 1))
    delay = step * (0.5 + 0.5 * rand())
    return max(1, min(MAX_VISIBILITY_SECONDS, math.ceil(delay)))


def max_attempts(*, base: float, max_delay: float, window: float) -> int:
    """The most attempts a window can hold (every delay at its shortest, half the step).

    The queue's redrive maxReceiveCount is set above this: it only catches messages the
    handler could not judge at all (a crash on every receive), never a scheduled retry.
    """
    attempts, elapsed = 1, 0.0
    while True:
        elapsed += max(1.0, min(max_delay, base * 2 ** (attempts - 1)) * 0.5)
        if elapsed > window:
            return attempts
        attempts += 1
