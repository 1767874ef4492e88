"""Dirichlet label-distribution skew.

For every key (label, or any categorical column given with ``--by``) the share of its rows that each
client receives is drawn from ``Dir(alpha * 1)``: the per-label variant of Yurochkin et al. 2019 and
Wang et al. 2020 (FedMA), NIID-Bench's "p_k ~ Dir_N(beta)" (Li et al. 2022), FedNLP's ``niid_label``
and Flower Datasets' ``DirichletPartitioner``. Client sizes follow from the draws (very unequal, some
clients empty, at small ``alpha``). Hsu et al. 2019 draw each client's label mix instead
(``q ~ Dir(alpha * p)``, equal client sizes): not this scheme. Small ``alpha`` gives clients
dominated by few labels, large ``alpha`` approaches the global mix (a label-stratified IID split).

Differences from those implementations, both deliberate:

- quotas are exact integers (largest-remainder rounding of ``n_k * p_k``), so the plan is an exact cover;
- ``min_client_size`` rows are reserved for every client first, split over the keys by the client's
  own drawn mix (:func:`~fedpart.partitioners.allocation.reserve_by_mix`), and only the rest is
  distributed by the draw, instead of redrawing until the minimum holds: the guarantee needs no
  unbounded rejection loop and keeps the skew (a label-blind reserve would dilute it towards IID).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedpart.partitioners.allocation import reserve_by_mix, round_preserving_sum
from fedpart.partitioners.base import Allocation, Partitioner
from fedpart.partitioners.params import (
    check_clients_fit_rows,
    check_int_at_least,
    check_positive_float,
)


@dataclass(frozen=True)
class DirichletPartitioner(Partitioner):
    """Per key, split its rows among clients in proportions drawn from ``Dir(alpha)``."""

    num_clients: int
    alpha: float
    min_client_size: int = 0
    name: ClassVar[str] = "dirichlet"
    requires_key: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self._set_checked(
            num_clients=check_int_at_least(self.num_clients, "--clients", 1),
            alpha=check_positive_float(self.alpha, "--alpha"),
            min_client_size=check_int_at_least(self.min_client_size, "--min-client-size", 0),
        )

    def allocate(self, key_counts: np.ndarray, rng: np.random.Generator) -> Allocation:
        key_counts = np.asarray(key_counts, dtype=np.int64)
        check_clients_fit_rows(self.num_clients, int(key_counts.sum()))
        proportions = self.draw_proportions(key_counts.size, rng)
        quotas = np.zeros((key_counts.size, self.num_clients), dtype=np.int64)
        if self.min_client_size:
            # each client's reserve follows the rows of each key the draw would give it
            quotas += reserve_by_mix(key_counts, proportions * key_counts[:, None], self.min_client_size)
        rest = key_counts - quotas.sum(axis=1)
        for key, n_rows in enumerate(rest):
            quotas[key] += round_preserving_sum(proportions[key], int(n_rows))
        return Allocation(self.num_clients, quotas=quotas)

    def draw_proportions(self, n_keys: int, rng: np.random.Generator) -> np.ndarray:
        """``(n_keys, num_clients)``: row ``k``, the shares of key ``k``'s rows, ``~ Dir(alpha)``."""
        concentration = np.full(self.num_clients, self.alpha)
        rows = []
        for _ in range(n_keys):
            proportions = rng.dirichlet(concentration)
            if not np.all(np.isfinite(proportions)) or proportions.sum() <= 0:
                # numerical underflow for tiny alpha: all mass on one random client (the limit alpha->0)
                proportions = np.zeros(self.num_clients)
                proportions[rng.integers(self.num_clients)] = 1.0
            rows.append(proportions)
        return np.array(rows).reshape(n_keys, self.num_clients)
