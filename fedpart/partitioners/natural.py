"""Natural-id partitioning: every row with the same id (user, author, article title) on one client.

This is the "natural" split of LEAF and of Flower's ``NaturalIdPartitioner``. With ``num_clients``
unset there is one client per id (in sorted id order); otherwise ids are packed into ``num_clients``
clients balanced by row count with the longest-processing-time greedy rule (largest id first onto the
currently smallest client), ties broken by a seeded shuffle.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedpart.errors import PlanError
from fedpart.partitioners.allocation import check_min_client_size
from fedpart.partitioners.base import Allocation, Partitioner
from fedpart.partitioners.params import check_int_at_least


@dataclass(frozen=True)
class NaturalIdPartitioner(Partitioner):
    """Keep each id on one client; pack ids into ``num_clients`` clients or one client per id."""

    num_clients: int | None = None
    min_client_size: int = 0
    name: ClassVar[str] = "natural"
    requires_key: ClassVar[bool] = True
    holds_out_whole_keys: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.num_clients is not None:
            self._set_checked(num_clients=check_int_at_least(self.num_clients, "--clients", 1))
        self._set_checked(min_client_size=check_int_at_least(self.min_client_size, "--min-client-size", 0))

    def allocate(self, key_counts: np.ndarray, rng: np.random.Generator) -> Allocation:
        key_counts = np.asarray(key_counts, dtype=np.int64)
        present = np.flatnonzero(key_counts > 0)  # ids held out for testing have no training rows
        if present.size == 0:
            raise PlanError("there are no rows to partition (every id has 0 rows)")
        key_client = np.full(key_counts.size, -1, dtype=np.int64)
        if self.num_clients is None:
            key_client[present] = np.arange(present.size)
            allocation = Allocation(int(present.size), key_client=key_client)
        else:
            if self.num_clients > present.size:
                raise PlanError(
                    f"--clients {self.num_clients} exceeds the {present.size} distinct ids; "
                    f"use --clients {present.size} or fewer, or omit --clients for one client per id"
                )
            shuffled = present[rng.permutation(present.size)]
            by_size = shuffled[np.argsort(-key_counts[shuffled], kind="stable")]
            loads = [(0, client) for client in range(self.num_clients)]  # (rows, client) min-heap
            for key in by_size:
                rows, client = heapq.heappop(loads)
                key_client[key] = client
                heapq.heappush(loads, (rows + int(key_counts[key]), client))
            allocation = Allocation(self.num_clients, key_client=key_client)
        check_min_client_size(
            allocation.client_sizes(key_counts),
            self.min_client_size,
            "ids cannot be split; use fewer --clients",
        )
        return allocation
