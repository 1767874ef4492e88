"""Validation of scheme parameters, with messages that name the CLI flag."""

from __future__ import annotations

import math

import numpy as np

from fedpart.checks import MAX_SEED, check_seed  # noqa: F401 - re-exported with the other parameter checks
from fedpart.errors import InputError, PlanError


def check_int_at_least(value: object, flag: str, minimum: int) -> int:
    """Return ``value`` as an int, or raise :class:`InputError` if it is not an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{flag} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{flag} must be at least {minimum}, got {value}")
    return int(value)


def check_positive_float(value: object, flag: str) -> float:
    """Return ``value`` as a float, or raise :class:`InputError` unless it is finite and > 0."""
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{flag} must be a number > 0, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{flag} must be a finite number > 0, got {value!r}")
    return number


def check_clients_fit_rows(num_clients: int, total_rows: int) -> None:
    """Raise :class:`PlanError` if there are more clients than rows to give them."""
    if num_clients > total_rows:
        raise PlanError(
            f"--clients {num_clients} exceeds the {total_rows} rows to partition; "
            f"use --clients {total_rows} or fewer"
        )
