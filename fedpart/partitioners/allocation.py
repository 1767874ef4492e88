"""Pure integer-allocation helpers shared by the partitioners.

Every function here maps counts (numpy int arrays) and a ``numpy.random.Generator`` to exact integer
allocations; none touches files. All allocations preserve totals exactly, which is what makes the
final partition an exact cover.
"""

from __future__ import annotations

import numpy as np

from fedpart.errors import PlanError


def round_preserving_sum(weights: np.ndarray, total: int) -> np.ndarray:
    """Round ``total * weights / weights.sum()`` to integers that sum to exactly ``total``.

    Largest-remainder (Hamilton) rounding; ties go to the lower index so the result is deterministic.
    ``weights`` must be non-negative with a positive sum (or ``total`` must be 0).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if total == 0:
        return np.zeros(weights.shape, dtype=np.int64)
    weight_sum = weights.sum()
    if not np.isfinite(weight_sum) or weight_sum <= 0:
        raise PlanError("cannot allocate rows: the proportions are all zero or not finite")
    exact = weights / weight_sum * total
    floors = np.floor(exact).astype(np.int64)
    shortfall = int(total - floors.sum())
    if shortfall > 0:
        remainders = exact - floors
        # stable sort on -remainder: equal remainders keep index order
        order = np.argsort(-remainders, kind="stable")
        floors[order[:shortfall]] += 1
    return floors


def deal_by_hypergeometric(
    key_counts: np.ndarray, client_sizes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Deal ``client_sizes[c]`` rows to each client, drawn without replacement from the key pool.

    Returns a ``(n_keys, n_clients)`` matrix whose row sums are ``key_counts`` and column sums are
    ``client_sizes`` (which must add up to ``key_counts.sum()`` or less). Each client's mix of keys is
    a multivariate hypergeometric draw, i.e. keys are IID within a client. O(keys x clients) memory.
    """
    key_counts = np.asarray(key_counts, dtype=np.int64)
    client_sizes = np.asarray(client_sizes, dtype=np.int64)
    if client_sizes.sum() > key_counts.sum():
        raise PlanError("cannot deal more rows than there are")
    remaining = key_counts.copy()
    quotas = np.zeros((key_counts.size, client_sizes.size), dtype=np.int64)
    for client, size in enumerate(client_sizes):
        if size == 0:
            continue
        if remaining.size == 1:
            draw = np.array([size], dtype=np.int64)
        else:
            # "marginals" needs O(keys) memory; the default "count" method needs O(rows).
            draw = rng.multivariate_hypergeometric(remaining, int(size), method="marginals")
        quotas[:, client] = draw
        remaining -= draw
    return quotas


def round_columns(weights: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """:func:`round_preserving_sum` of every column of ``weights`` (``(n, m)``, non-negative) to
    ``totals`` (``(m,)``), vectorised; a column with total 0 gets zeros, and one whose weights are
    all zero must have total 0."""
    weights = np.asarray(weights, dtype=np.float64)
    totals = np.asarray(totals, dtype=np.int64)
    sums = weights.sum(axis=0)
    if np.any((totals > 0) & ~(sums > 0)):
        raise PlanError("cannot allocate rows: the proportions are all zero or not finite")
    exact = np.divide(weights * totals, sums, out=np.zeros_like(weights), where=sums > 0)
    floors = np.floor(exact).astype(np.int64)
    shortfall = totals - floors.sum(axis=0)
    # rank of each entry's remainder within its column (0: largest; ties: lower index first)
    order = np.argsort(-(exact - floors), axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(weights.shape[0])[:, None], axis=0)
    return floors + (ranks < shortfall).astype(np.int64)


def reserve_by_mix(key_counts: np.ndarray, mix: np.ndarray, min_client_size: int) -> np.ndarray:
    """Reserve ``min_client_size`` rows for every client, each client's rows split over the keys in
    proportion to its column of ``mix`` (``(n_keys, num_clients)``, non-negative: e.g. the rows the
    skewed plan would give it), so the reserve keeps the plan's skew instead of diluting it with
    an IID sample. Where keys run out, a client's remaining reserve follows its mix over the keys
    left (or, if it has no weight on any of them, their rows left). Deterministic; no rejection loop:
    every round exhausts a key or completes the reserve, so at most ``n_keys + 1`` rounds.

    Returns a ``(n_keys, num_clients)`` quota matrix with every column summing to ``min_client_size``
    and row ``k`` summing to at most ``key_counts[k]``.

    Raises:
        PlanError: ``min_client_size * num_clients`` exceeds the number of rows.
    """
    key_counts = np.asarray(key_counts, dtype=np.int64)
    mix = np.asarray(mix, dtype=np.float64)
    num_clients = mix.shape[1]
    total = int(key_counts.sum())
    need_total = min_client_size * num_clients
    if need_total > total:
        raise PlanError(
            f"--min-client-size {min_client_size} x {num_clients} clients needs {need_total} rows but the "
            f"input has {total}; {min_size_advice(total, num_clients, min_client_size)}"
        )
    reserved = np.zeros(mix.shape, dtype=np.int64)
    need = np.full(num_clients, min_client_size, dtype=np.int64)
    left = key_counts.copy()
    while need.any():
        weights = mix * (left > 0)[:, None]
        lost = (need > 0) & ~(weights.sum(axis=0) > 0)  # every key of its mix is used up
        weights[:, lost] = left[:, None]
        wanted = round_columns(weights, need)
        over = wanted.sum(axis=1) > left
        if over.any():  # share each over-asked key's rows out in proportion to what was asked
            wanted[over] = round_columns(wanted[over].T, left[over]).T
        reserved += wanted
        left -= wanted.sum(axis=1)
        need -= wanted.sum(axis=0)
    return reserved


def min_size_advice(total: int, num_clients: int, min_client_size: int) -> str:
    """What to change when ``num_clients`` clients of ``min_client_size`` rows do not fit in ``total``
    rows: a smaller minimum, or fewer clients when at least one client of that size fits."""
    advice = f"use --min-client-size {total // num_clients} or fewer"
    most_clients = total // max(min_client_size, 1)
    return advice + (f", or at most {most_clients} clients" if most_clients >= 1 else "")


def check_min_client_size(client_sizes: np.ndarray, min_client_size: int, hint: str) -> None:
    """Raise :class:`PlanError` if a plan that cannot reserve rows leaves a client below the minimum."""
    if min_client_size <= 0:
        return
    small = np.flatnonzero(client_sizes < min_client_size)
    if small.size:
        worst = int(small[np.argmin(client_sizes[small])])
        raise PlanError(
            f"--min-client-size {min_client_size} is infeasible for this scheme: {small.size} "
            f"client(s) get fewer rows (client {worst} gets {int(client_sizes[worst])}); {hint}"
        )
