"""Checks of option values shared by the library and the CLI, with messages that name the flag.

Light to import (no numpy): ``fedpart --help`` loads it through the CLI's option types. numpy's
integer and float scalars pass as the :mod:`numbers` types they register as.
"""

from __future__ import annotations

import math
import numbers
import os

from fedpart.errors import InputError

#: the largest 32-bit float (``torch.finfo(torch.float32).max``): a hyper-parameter above it overflows
#: the arithmetic of a float32 model (torch refuses to turn such a Python float into a parameter scalar)
FLOAT32_MAX = 3.4028234663852886e38
#: the largest seed: seeds are non-negative 64-bit integers (numpy's SeedSequence entropy, torch.manual_seed)
MAX_SEED = 2**63 - 1


def check_seed(value: object, flag: str = "--seed") -> int:
    """Return ``value`` as an int, or raise :class:`InputError` unless it is an integer in ``[0, MAX_SEED]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= MAX_SEED:
        raise InputError(f"{flag} must be an integer from 0 to {MAX_SEED} (2**63 - 1), got {value!r}")
    return int(value)


def check_finite(value: float, flag: str) -> float:
    """Return ``value``, or raise :class:`InputError` if it is ``nan`` or infinite (both pass every
    range check, so they must be refused first)."""
    if not math.isfinite(value):
        raise InputError(f"{flag} must be a finite number, got {value!r}")
    return value


def check_number(value: object, flag: str) -> float:
    """Return ``value`` as a float, or raise :class:`InputError` unless it is a real number (not a
    bool, a string or ``None``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{flag} must be a number, got {value!r}")
    return float(value)


def check_float32(value: float, flag: str) -> float:
    """Return ``value``, or raise :class:`InputError` if it is not a number (:func:`check_number`),
    not finite (:func:`check_finite`) or beyond the range of 32-bit floats (:data:`FLOAT32_MAX`),
    the type of the models' parameters."""
    if abs(check_finite(check_number(value, flag), flag)) > FLOAT32_MAX:
        raise InputError(f"{flag} {value:g} overflows torch's 32-bit floats (largest {FLOAT32_MAX:.4g}); "
                         f"use a much smaller {flag}")
    return value


def check_path(value: object, name: str) -> str | os.PathLike[str]:
    """Return ``value``, or raise :class:`InputError` unless it is a path: a non-empty ``str`` or an
    ``os.PathLike`` such as :class:`pathlib.Path` (``name``: the argument, for the message)."""
    if isinstance(value, str) and value or isinstance(value, os.PathLike) and not isinstance(value, bytes):
        return value
    raise InputError(f"{name} must be a path (a str or pathlib.Path), got {value!r}")

