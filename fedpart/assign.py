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

from fedpart.errors import InputError
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
    n = np.asarray(n, dtype=np.uint64)
    return _permute(index, n, _half_bits(n), round_keys)


def _permute(index: np.ndarray, n: np.ndarray, half: np.ndarray, round_keys: np.ndarray) -> np.ndarray:
    """:func:`permute` with each row's Feistel half width ``half`` (``_half_bits(n)``) given."""
    out = _feistel(np.asarray(index, dtype=np.uint64), half, round_keys)
    outside = np.flatnonzero(out >= n)
    while outside.size:  # cycle walking: expected < 4 extra rounds since 2**(2h) < 4n
        out[outside] = _feistel(out[outside], half[outside], round_keys[outside])
        outside = outside[out[outside] >= n[outside]]
    return out


class _BoundsLookup:
    """``np.searchsorted(bounds, x, side="right")`` for many ``x`` in ``[0, bounds[-1])``, faster.

    A table over fixed-width buckets of the value range holds the answer for every bucket that no
    bound splits, so most values need one table lookup instead of a binary search over all bounds
    (clients times keys: 20,000 bounds is 15 cache-missing steps per row). The table has at most
    ``max_buckets`` entries, whatever the number of rows. Exact: values in a split bucket fall back
    to ``np.searchsorted``.
    """

    def __init__(self, bounds: np.ndarray, max_buckets: int = 1 << 18) -> None:
        self.bounds = np.asarray(bounds, dtype=np.int64)
        top = max(int(self.bounds[-1]), 1)
        buckets = min(max_buckets, 4 * self.bounds.size)
        self.shift = max(0, (top - 1).bit_length() - max(buckets - 1, 1).bit_length())
        starts = np.arange(((top - 1) >> self.shift) + 2, dtype=np.int64) << self.shift
        edges = np.searchsorted(self.bounds, starts, side="right")  # answer at each bucket's start
        self.first = edges[:-1]
        # a bucket is whole when its last value has the same answer as its first
        self.whole = np.searchsorted(self.bounds, starts[1:] - 1, side="right") == self.first

    def __call__(self, x: np.ndarray) -> np.ndarray:
        bucket = x >> self.shift
        out = self.first[bucket]
        split = np.flatnonzero(~self.whole[bucket])
        out[split] = np.searchsorted(self.bounds, x[split], side="right")
        return out


class RowAssigner:
    """Assigns successive batches of key codes to clients according to a :class:`Plan`.

    State is one counter per key (rows of that key seen so far), so memory is O(keys) however many
    rows pass through. ``start`` sets those counters for a stream that begins inside the input: a
    piece of it whose earlier rows hold ``start[k]`` rows of key ``k`` (the Ray engine assigns every
    piece this way, in parallel, exactly as one assigner running over the whole input would).
    """

    def __init__(self, plan: Plan, start: np.ndarray | None = None) -> None:
        self.plan = plan
        self.seen = np.zeros(plan.key_counts.size, dtype=np.int64)
        if start is not None:
            self.seen += np.asarray(start, dtype=np.int64)
        self._n = plan.key_counts.astype(np.uint64)
        self._half = _half_bits(self._n)
        self._holdout = plan.holdout.astype(np.int64)
        allocation = plan.allocation
        if allocation.quotas is not None:
            # Flatten per-key cumulative quotas into one non-decreasing array: key k occupies the
            # global position range [offset_k, offset_k + train_k), so one lookup serves all keys.
            train = plan.key_counts - plan.holdout
            offsets = np.concatenate([[0], np.cumsum(train)[:-1]])
            self._client_of = _BoundsLookup((np.cumsum(allocation.quotas, axis=1) + offsets[:, None]).ravel())
            # a row's flat position is offset_k + position - holdout_k
            self._shift = offsets - self._holdout

    def assign(self, codes: np.ndarray) -> np.ndarray:
        """Return the client of each row (``TEST_CLIENT`` for the test split) for key ``codes``.

        ``codes`` are indices into the plan's keys, in input order; successive calls continue
        where the previous one stopped.
        """
        codes = np.asarray(codes, dtype=np.int64)
        counts = np.bincount(codes, minlength=self.seen.size)
        first = self.seen.copy()
        self.seen += counts
        if np.any(self.seen > self.plan.key_counts):
            raise InputError("the input changed between the two passes (more rows of a key than pass 1 "
                             "counted): partition an input that nothing writes to meanwhile")
        # In stable key order, the rows of a key are a run taking that key's next ranks in input
        # order: work in that order and put the clients back in input order at the end.
        order = stable_order(codes, self.seen.size)
        sorted_codes = np.repeat(np.arange(counts.size), counts)
        run_start = first - (np.cumsum(counts) - counts)
        local = np.repeat(run_start, counts) + np.arange(codes.size)
        clients = np.empty(codes.size, dtype=np.int64)
        clients[order] = self._assign_rows(sorted_codes, local)
        return clients

    def _assign_rows(self, codes: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Clients of the rows of keys ``codes`` whose ranks within their key are ``local``."""
        plan = self.plan
        position = _permute(local, self._n[codes], self._half[codes], plan.permutation_keys[codes])
        position = position.view(np.int64)
        if plan.allocation.quotas is not None:
            flat = position + self._shift[codes]
            np.maximum(flat, 0, out=flat)  # test rows (below their key's range) are replaced below
            clients = self._client_of(flat) % plan.num_clients
        else:
            clients = plan.allocation.key_client[codes].astype(np.int64)
        if self._holdout.any():
            clients[position < self._holdout[codes]] = TEST_CLIENT
        return clients
