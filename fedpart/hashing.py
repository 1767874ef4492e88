"""The splitmix64 finaliser (Steele, Lea & Flood 2014), vectorised on numpy uint64.

Shared by the keyed row permutation (:mod:`fedpart.assign`) and the counterfactual-substitution
draws (:mod:`fedpart.augment.substitution`): both need a fast, seedable, stateless hash of integers.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's mixing function, elementwise; uint64 multiplication wraps, as intended."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))
