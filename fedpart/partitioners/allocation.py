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


def reserve_minimum(
    key_counts: np.ndarray, num_clients: int, min_client_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Reserve ``min_client_size`` rows for every client before a skewed plan distributes the rest.

    Returns a ``(n_keys, n_clients)`` quota matrix with every column summing to ``min_client_size``.
    This guarantees the minimum without rejection sampling (Flower/NIID-Bench redraw until it holds).

    Raises:
        PlanError: ``min_client_size * num_clients`` exceeds the number of rows.
    """
    total = int(np.sum(key_counts))
    need = min_client_size * num_clients
    if need > total:
        raise PlanError(
            f"--min-client-size {min_client_size} x {num_clients} clients needs {need} rows but the "
            f"input has {total}; {min_size_advice(total, num_clients, min_client_size)}"
        )
    sizes = np.full(num_clients, min_client_size, dtype=np.int64)
    return deal_by_hypergeometric(key_counts, sizes, rng)


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
