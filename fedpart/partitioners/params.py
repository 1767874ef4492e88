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


def plain_float(value: int | float | np.integer | np.floating) -> float:
    """``value`` as a Python float; a numpy float as the number its shortest repr names, so
    ``np.float32(0.1)`` is ``0.1`` (as typed), not ``0.10000000149011612`` (its binary value)."""
    if isinstance(value, np.floating) and not isinstance(value, np.float64):
        return float(str(value))
    return float(value)


def check_positive_float(value: object, flag: str) -> float:
    """Return ``value`` as a plain float, or raise :class:`InputError` unless it is finite and > 0."""
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{flag} must be a number > 0, got {value!r}")
    number = plain_float(value)
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{flag} must be a finite number > 0, got {value!r}")
    return number


def check_clients_fit_rows(num_clients: int, total_rows: int) -> None:
    """Raise :class:`PlanError` if there are more clients than rows to give them."""
    if total_rows == 0:
        raise PlanError(f"there are no rows to partition among --clients {num_clients}")
    if num_clients > total_rows:
        raise PlanError(
            f"--clients {num_clients} exceeds the {total_rows} rows to partition; "
            f"use --clients {total_rows} or fewer"
        )
