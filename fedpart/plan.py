"""A partition plan: the pure function from counts, parameters and a seed to per-key quotas.

``draw_plan`` never opens a file. Its output plus the input's key sequence decides every row's client
(see :mod:`fedpart.assign`), so two runs with the same counts, parameters and seed are identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fedpart.errors import InputError, PlanError
from fedpart.partitioners.allocation import round_preserving_sum
from fedpart.partitioners.base import Allocation, Partitioner
from fedpart.partitioners.params import plain_float

PERMUTATION_ROUNDS = 4


@dataclass(frozen=True)
class Plan:
    """Everything pass 2 needs, as arrays.

    Attributes:
        key_counts: ``(n_keys,)`` rows per key in the input (after dropped rows).
        holdout: ``(n_keys,)`` rows per key that go to the global test split.
        allocation: the scheme's split of the remaining ``key_counts - holdout`` rows.
        permutation_keys: ``(n_keys, PERMUTATION_ROUNDS)`` uint64 round keys of each key's row
            permutation (see :func:`fedpart.assign.permute`).
    """

    key_counts: np.ndarray
    holdout: np.ndarray
    allocation: Allocation
    permutation_keys: np.ndarray

    @property
    def num_clients(self) -> int:
        return self.allocation.num_clients


def check_counts(key_counts: Any) -> np.ndarray:
    """``key_counts`` as a 1-D int64 array, or :class:`InputError` unless it holds non-negative integers."""
    counts = np.asarray(key_counts)
    if counts.ndim != 1 or not (np.issubdtype(counts.dtype, np.integer) or counts.size == 0):
        raise InputError(f"key counts must be a 1-D array of integers, got {counts.dtype} of shape {counts.shape}")
    if (counts < 0).any():
        raise InputError(f"key counts must be >= 0, got {counts.min()}")
    return counts.astype(np.int64)


def check_test_frac(test_frac: object) -> float:
    """``test_frac`` as a plain float (``0`` and ``np.float32(0.1)`` are recorded as ``0.0`` and
    ``0.1``), or :class:`InputError` unless it is a number in ``[0, 1)``."""
    if isinstance(test_frac, bool) or not isinstance(test_frac, (int, float, np.integer, np.floating)):
        raise InputError(f"--test-frac must be a number in [0, 1), got {test_frac!r}")
    if not 0.0 <= test_frac < 1.0:
        raise InputError(f"--test-frac must be in [0, 1), got {test_frac}")
    return plain_float(test_frac)


def draw_holdout(
    key_counts: np.ndarray, test_frac: float, whole_keys: bool, rng: np.random.Generator
) -> np.ndarray:
    """Rows per key held out as a global test split of ``round(test_frac * total)`` rows.

    Stratified by key (largest-remainder shares of every key) unless ``whole_keys``, in which case
    whole keys (ids) are held out in a seeded random order until the target is reached, so no id is
    split between train and test.

    Raises:
        InputError: ``test_frac`` is not in ``[0, 1)``.
        PlanError: the split would hold out every row, leaving none to partition.
    """
    test_frac = check_test_frac(test_frac)
    total = int(key_counts.sum())
    target = int(round(test_frac * total))
    holdout = np.zeros_like(key_counts)
    if target == 0:
        return holdout
    if not whole_keys:
        holdout = round_preserving_sum(key_counts, target)
    else:
        taken = 0
        for key in rng.permutation(key_counts.size):
            if taken >= target:
                break
            holdout[key] = key_counts[key]
            taken += int(key_counts[key])
    if holdout.sum() == total:
        raise PlanError(
            f"--test-frac {test_frac} holds out every id; use a smaller --test-frac or more ids" if whole_keys
            else f"--test-frac {test_frac} holds out all {total} rows and leaves none to partition; "
            "use a smaller --test-frac"
        )
    return holdout


def draw_plan(
    partitioner: Partitioner, key_counts: np.ndarray, seed: int, test_frac: float = 0.0
) -> Plan:
    """Draw the partition plan for ``key_counts`` with ``partitioner`` and ``seed``.

    Invariant: for every key, ``holdout[k] + allocation rows of k == key_counts[k]``.
    """
    key_counts = check_counts(key_counts)
    if key_counts.sum() == 0:
        raise InputError("the input has no rows to partition")
    holdout_rng, allocation_rng, permutation_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    holdout = draw_holdout(key_counts, test_frac, partitioner.holds_out_whole_keys, holdout_rng)
    try:
        allocation = partitioner.allocate(key_counts - holdout, allocation_rng)
    except PlanError as error:
        if not holdout.any():
            raise
        # the scheme sees only the rows left for the clients: say so, or "the input has N" misleads
        raise PlanError(
            f"{error} (the clients share the {int(key_counts.sum() - holdout.sum())} rows left after "
            f"--test-frac {test_frac} held out {int(holdout.sum())} of {int(key_counts.sum())} for the test split)"
        ) from error
    placed = allocation.client_sizes(key_counts - holdout).sum() + holdout.sum()
    if placed != key_counts.sum():  # a broken scheme must never write a partial cover
        raise PlanError(f"internal: scheme {partitioner.name} placed {placed} of {key_counts.sum()} rows")
    permutation_keys = permutation_rng.integers(
        0, np.iinfo(np.uint64).max, size=(key_counts.size, PERMUTATION_ROUNDS), dtype=np.uint64,
        endpoint=True,
    )
    return Plan(key_counts, holdout, allocation, permutation_keys)
