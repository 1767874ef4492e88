"""IID partitioning: a uniform random split into near-equal shards (Flower's ``IidPartitioner``).

Client sizes differ by at most one row. When a key (label) is counted, each client's mix of keys is a
multivariate hypergeometric draw, i.e. exactly what a uniform random split produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedpart.partitioners.allocation import check_min_client_size, deal_by_hypergeometric, min_size_advice
from fedpart.partitioners.base import Allocation, Partitioner
from fedpart.partitioners.params import check_clients_fit_rows, check_int_at_least


@dataclass(frozen=True)
class IidPartitioner(Partitioner):
    """Split rows uniformly at random into ``num_clients`` shards of near-equal size."""

    num_clients: int
    min_client_size: int = 0
    name: ClassVar[str] = "iid"

    def __post_init__(self) -> None:
        self._set_checked(
            num_clients=check_int_at_least(self.num_clients, "--clients", 1),
            min_client_size=check_int_at_least(self.min_client_size, "--min-client-size", 0),
        )

    def allocate(self, key_counts: np.ndarray, rng: np.random.Generator) -> Allocation:
        total = int(key_counts.sum())
        check_clients_fit_rows(self.num_clients, total)
        sizes = np.full(self.num_clients, total // self.num_clients, dtype=np.int64)
        # which clients get the leftover rows is random, not always the first ones
        sizes[rng.permutation(self.num_clients)[: total % self.num_clients]] += 1
        advice = min_size_advice(total, self.num_clients, self.min_client_size)
        check_min_client_size(sizes, self.min_client_size, f"with {total} rows {advice}")
        return Allocation(self.num_clients, quotas=deal_by_hypergeometric(key_counts, sizes, rng))
