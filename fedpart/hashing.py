"""The splitmix64 finaliser (Steele, Lea & Flood 2014), vectorised on numpy uint64.

Shared by the keyed row permutation (:mod:`fedpart.assign`) and the counterfactual-substitution
draws (:mod:`fedpart.augment.substitution`): both need a fast, seedable, stateless hash of integers.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's mixing function, elementwise; uint64 multiplication wraps, as intended."""
    with np.errstate(over="ignore"):
        z = z ^ (z >> _S30)  # a new array: the input is never modified; the rest is in place
        z *= _M1
        z ^= z >> _S27
        z *= _M2
        z ^= z >> _S31
    return z
