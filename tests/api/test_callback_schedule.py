"""The retry schedule (api_handler/notifier/schedule.py) and the callbacks configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api_handler.notifier.schedule import (
    MAX_VISIBILITY_SECONDS,
    backoff_seconds,
    max_attempts,
)
from api_handler.notifier.settings import NotifierSettings
from app_config.callbacks import CallbacksConfig
from local_stack.callbacks import RETRY_BASE_SECONDS, RETRY_MAX_DELAY_SECONDS

PRODUCTION = CallbacksConfig()


def _delays(rand: float, base: float, max_delay: float, count: int) -> list[int]:
    return [backoff_seconds(n, base=base, max_delay=max_delay, rand=lambda: rand) for n in range(1, count + 1)]


def test_delays_double_with_jitter_between_half_and_the_whole_step():
    base, cap = PRODUCTION.retry_base_seconds, PRODUCTION.retry_max_delay_seconds
    assert _delays(0.0, base, cap, 5) == [15, 30, 60, 120, 240]  # shortest
    assert _delays(0.999999, base, cap, 5) == [30, 60, 120, 240, 480]  # longest
    assert _delays(0.5, base, cap, 10)[-1] == 2700  # capped: 3/4 of an hour at the middle of the jitter
    assert max(_delays(0.999999, base, cap, 40)) == cap


def test_no_delay_exceeds_what_change_message_visibility_accepts():
    assert backoff_seconds(60, base=3600, max_delay=10**9, rand=lambda: 0.99) == MAX_VISIBILITY_SECONDS


def test_the_window_holds_a_bounded_number_of_attempts():
    window = PRODUCTION.retry_window_hours * 3600
    most = max_attempts(base=PRODUCTION.retry_base_seconds, max_delay=PRODUCTION.retry_max_delay_seconds, window=window)
    # Every delay at its shortest still spends the window: that many attempts and no more.
    elapsed, attempts = 0, 1
    while True:
        elapsed += _delays(0.0, PRODUCTION.retry_base_seconds, PRODUCTION.retry_max_delay_seconds, attempts)[-1]
        if elapsed > window:
            break
        attempts += 1
    assert most == attempts
    assert 40 < most < 60  # about two attempts an hour once the cap is reached


def test_local_schedule_makes_three_attempts_within_a_minute():
    longest = _delays(0.999999, RETRY_BASE_SECONDS, RETRY_MAX_DELAY_SECONDS, 2)
    assert sum(longest) < 60  # attempt 1 at once, then these two waits


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"allowed_hosts": ("Hooks.Example.com",)}, "'Hooks.Example.com' is not a lower-case DNS name"),
        ({"allowed_hosts": ("10.0.0.1",)}, "is not a lower-case DNS name"),
        ({"allowed_hosts": ("https://hooks.example.com",)}, "is not a lower-case DNS name"),
        ({"retry_base_seconds": 600, "retry_max_delay_seconds": 60}, "must not exceed retry_max_delay_seconds"),
        ({"retry_max_delay_seconds": 43_201}, "less than or equal to 43200"),
        ({"retry_window_hours": 14 * 24}, "less than or equal to 312"),
        ({"retry_window_hours": 1, "retry_max_delay_seconds": 7200}, "must fit in the retry window"),
        ({"max_concurrency": 1}, "greater than or equal to 2"),
    ],
)
def test_bad_callback_settings_are_named(change: dict, message: str):
    with pytest.raises(ValidationError, match=message):
        CallbacksConfig(**change)


def test_wildcard_entries_admit_subdomains_only():
    from api_handler.async_api.callback_url import CallbackPolicy

    policy = CallbackPolicy(CallbacksConfig(allowed_hosts=("*.example.com", "hooks.partner.io")).allowed_hosts)
    assert policy.host_allowed("a.example.com") and policy.host_allowed("a.b.example.com")
    assert not policy.host_allowed("example.com") and not policy.host_allowed("badexample.com")
    assert policy.host_allowed("hooks.partner.io") and not policy.host_allowed("x.hooks.partner.io")


def test_notifier_settings_name_the_bad_variable():
    with pytest.raises(ValueError, match="CALLBACK_RETRY_MAX_DELAY_SECONDS"):
        NotifierSettings.from_environment(
            {
                "CALLBACK_SECRET_ARN": "a",
                "CALLBACK_QUEUE_URL": "q",
                "CALLBACK_DEAD_LETTER_QUEUE_URL": "d",
                "CALLBACK_RETRY_MAX_DELAY_SECONDS": "99999",
            }
        )
    with pytest.raises(ValueError, match="CALLBACK_SECRET_ARN"):
        NotifierSettings.from_environment({"CALLBACK_QUEUE_URL": "q", "CALLBACK_DEAD_LETTER_QUEUE_URL": "d"})
