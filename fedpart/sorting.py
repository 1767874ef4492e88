"""Stable ordering of small non-negative integer codes (key codes, client ids)."""

from __future__ import annotations

import numpy as np


def stable_order(codes: np.ndarray, bound: int) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` for codes in ``[0, bound)``.

    Codes that fit in int16 are sorted as int16, for which numpy's stable sort is a radix sort
    (about 4x faster on a 65k-row batch).
    """
    if bound < np.iinfo(np.int16).max:
        codes = codes.astype(np.int16)
    return np.argsort(codes, kind="stable")
