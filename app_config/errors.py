"""The one error type for a configuration that cannot be deployed."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot be deployed; the message names field, value and rule."""
