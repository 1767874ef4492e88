"""Pass 2 math: which client each row goes to, with O(keys) state and no per-row memory.

Row ``i`` of key ``k`` (``i`` counts that key's rows in input order) is sent to position
``pi_k(i)`` of a seeded pseudo-random permutation ``pi_k`` of ``range(n_k)``. Positions
``[0, holdout_k)`` form the test split; the rest are cut into consecutive runs of the plan's quotas,
one run per client. Since ``pi_k`` is a bijection, every client receives exactly its quota of every
key and every row is placed exactly once -- whatever the batch boundaries.

``pi_k`` is a 4-round balanced Feistel network over ``2**(2h) >= n_k`` values with cycle walking
(Black & Rogaway 2002, "Ciphers with arbitrary finite domains"), round function splitmix64. It
needs only the round keys, so no permutation of ``n_k`` indices is ever stored.
"""

from __future__ import annotations

import numpy as np

from fedpart.hashing import splitmix64
from fedpart.plan import Plan
from fedpart.sorting import stable_order

TEST_CLIENT = -1

def _half_bits(n: np.ndarray) -> np.ndarray:
    """Bits per Feistel half so that ``2**(2*h) >= n`` (at least 1)."""
    bits = np.ceil(np.log2(np.maximum(n, 2).astype(np.float64))).astype(np.uint64)
    # float log2 can be off by one near powers of two: fix up exactly
    bits = np.where((np.uint64(1) << bits) < n, bits + np.uint64(1), bits)
    return np.maximum((bits + np.uint64(1)) // np.uint64(2), np.uint64(1))


def _feistel(x: np.ndarray, half: np.ndarray, round_keys: np.ndarray) -> np.ndarray:
    mask = (np.uint64(1) << half) - np.uint64(1)
    left, right = x >> half, x & mask
    for r in range(round_keys.shape[1]):
        left, right = right, left ^ (splitmix64(right ^ round_keys[:, r]) & mask)
    return (left << half) | right


def permute(index: np.ndarray, n: np.ndarray, round_keys: np.ndarray) -> np.ndarray:
    """Map ``index[j]`` in ``[0, n[j])`` through the keyed permutation given by ``round_keys[j]``.

    Vectorised over rows that may belong to different keys (each row carries its own ``n`` and keys).
    For fixed ``n`` and round keys the map is a bijection of ``range(n)``.
    """
    index = np.asarray(index, dtype=np.uint64)
    n = np.asarray(n, dtype=np.uint64)
    half = _half_bits(n)
    out = _feistel(index, half, round_keys)
    outside = np.flatnonzero(out >= n)
    while outside.size:  # cycle walking: expected < 4 extra rounds since 2**(2h) < 4n
        out[outside] = _feistel(out[outside], half[outside], round_keys[outside])
        outside = outside[out[outside] >= n[outside]]
    return out


class RowAssigner:
    """Assigns successive batches of key codes to clients according to a :class:`Plan`.

    State is one counter per key (rows of that key seen so far), so memory is O(keys) however many
    rows pass through.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.seen = np.zeros(plan.key_counts.size, dtype=np.int64)
        allocation = plan.allocation
        if allocation.quotas is not None:
            # Flatten per-key cumulative quotas into one non-decreasing array: key k occupies the
            # global position range [offset_k, offset_k + train_k), so one searchsorted serves all keys.
            train = plan.key_counts - plan.holdout
            offsets = np.concatenate([[0], np.cumsum(train)[:-1]])
            self._flat_bounds = (np.cumsum(allocation.quotas, axis=1) + offsets[:, None]).ravel()
            self._offsets = offsets

    def assign(self, codes: np.ndarray) -> np.ndarray:
        """Return the client of each row (``TEST_CLIENT`` for the test split) for key ``codes``.

        ``codes`` are indices into the plan's keys, in input order; successive calls continue
        where the previous one stopped.
        """
        codes = np.asarray(codes, dtype=np.int64)
        plan = self.plan
        order = stable_order(codes, plan.key_counts.size)
        sorted_codes = codes[order]
        group_start = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        group_sizes = np.diff(np.r_[group_start, sorted_codes.size])
        rank = np.arange(sorted_codes.size) - np.repeat(group_start, group_sizes)
        local = np.empty_like(codes)
        local[order] = self.seen[sorted_codes] + rank
        self.seen += np.bincount(codes, minlength=self.seen.size)
        if np.any(self.seen > plan.key_counts):
            raise RuntimeError("more rows of a key than counted in pass 1: the input changed")

        position = permute(local, plan.key_counts[codes], plan.permutation_keys[codes]).astype(np.int64)
        holdout = plan.holdout[codes]
        clients = np.full(codes.size, TEST_CLIENT, dtype=np.int64)
        train = position >= holdout
        if plan.allocation.quotas is not None:
            flat = self._offsets[codes[train]] + position[train] - holdout[train]
            clients[train] = np.searchsorted(self._flat_bounds, flat, side="right") % plan.num_clients
        else:
            clients[train] = plan.allocation.key_client[codes[train]]
        return clients
