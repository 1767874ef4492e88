"""Dirichlet label-distribution skew.

For every key (label, or any categorical column given with ``--by``) the share of its rows that each
client receives is drawn from ``Dir(alpha * 1)``: Hsu et al. 2019, "Measuring the effects of
non-identical data distribution for federated visual classification"; FedNLP's ``niid_label``;
NIID-Bench's "p_k ~ Dir(beta)" (Li et al. 2022). Small ``alpha`` gives clients dominated by few labels,
large ``alpha`` approaches the global mix.

Differences from those implementations, both deliberate:

- quotas are exact integers (largest-remainder rounding of ``n_k * p_k``), so the plan is an exact cover;
- ``min_client_size`` rows are reserved for every client first (a hypergeometric deal), and only the
  rest is distributed by the Dirichlet draw, instead of redrawing until the minimum holds -- so the
  guarantee needs no unbounded rejection loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedpart.partitioners.allocation import reserve_minimum, round_preserving_sum
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
        quotas = np.zeros((key_counts.size, self.num_clients), dtype=np.int64)
        if self.min_client_size:
            quotas += reserve_minimum(key_counts, self.num_clients, self.min_client_size, rng)
        rest = key_counts - quotas.sum(axis=1)
        concentration = np.full(self.num_clients, self.alpha)
        for key, n_rows in enumerate(rest):
            proportions = rng.dirichlet(concentration)
            if not np.all(np.isfinite(proportions)) or proportions.sum() <= 0:
                # numerical underflow for tiny alpha: all mass on one random client (the limit alpha->0)
                proportions = np.zeros(self.num_clients)
                proportions[rng.integers(self.num_clients)] = 1.0
            quotas[key] += round_preserving_sum(proportions, int(n_rows))
        return Allocation(self.num_clients, quotas=quotas)
