"""Checks of option values shared by the library and the CLI, with messages that name the flag.

Light to import (no numpy): ``fedpart --help`` loads it through the CLI's option types. numpy's
integer and float scalars pass as the :mod:`numbers` types they register as.
"""

from __future__ import annotations

import math
import numbers

from fedpart.errors import InputError

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
