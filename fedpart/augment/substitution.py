"""Which rows Counterfactual Data Substitution replaces (Hall Maudslay et al. 2019).

CDS replaces each row by its counterfactual independently with probability ``p`` instead of
appending it, so the corpus keeps its size and never holds both versions of a text. The draw for a
row is a pure function of ``(seed, row index)`` -- a splitmix64 hash (Steele et al. 2014) turned
into a uniform number in [0, 1) -- so it does not depend on batch sizes, worker count or order.
"""

from __future__ import annotations

import numpy as np

from fedpart.hashing import splitmix64

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uniform_draws(rows: np.ndarray, seed: int) -> np.ndarray:
    """A uniform float64 in [0, 1) for each row index (int array), fixed by ``seed``."""
    rows = np.asarray(rows, dtype=np.uint64)
    key = splitmix64(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        z = splitmix64(rows * _GOLDEN + key)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def substitution_mask(rows: np.ndarray, p: float, seed: int) -> np.ndarray:
    """True for the rows (global 0-based indices) that CDS replaces by their counterfactual.

    Each row is chosen independently with probability ``p``; the same (rows, p, seed) always give
    the same mask, and a row's draw does not depend on the other rows.
    """
    return uniform_draws(rows, seed) < p
