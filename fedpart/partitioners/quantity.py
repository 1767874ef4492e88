"""Quantity skew: client sizes vary, labels stay IID within a client.

Sizes are proportional to a ``Dir(alpha)`` draw (NIID-Bench's quantity-based skew, Li et al. 2022) or
to log-normal draws ``exp(N(0, sigma^2))`` (``size_dist="lognormal"``, as LEAF-style unbalanced
splits). ``min_client_size`` rows are given to every client first and only the rest is skewed.
Each client's key mix is a multivariate hypergeometric draw, so labels are IID within clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedpart.errors import InputError, PlanError
from fedpart.partitioners.allocation import deal_by_hypergeometric, round_preserving_sum
from fedpart.partitioners.base import Allocation, Partitioner
from fedpart.partitioners.params import (
    check_clients_fit_rows,
    check_int_at_least,
    check_positive_float,
)

SIZE_DISTRIBUTIONS = ("dirichlet", "lognormal")


@dataclass(frozen=True)
class QuantityPartitioner(Partitioner):
    """Draw client sizes from ``Dir(alpha)`` or a log-normal with ``sigma``; keys IID within clients."""

    num_clients: int
    alpha: float | None = None
    size_dist: str = "dirichlet"
    sigma: float | None = None
    min_client_size: int = 0
    name: ClassVar[str] = "quantity"

    def __post_init__(self) -> None:
        self._set_checked(
            num_clients=check_int_at_least(self.num_clients, "--clients", 1),
            min_client_size=check_int_at_least(self.min_client_size, "--min-client-size", 0),
        )
        if self.size_dist not in SIZE_DISTRIBUTIONS:
            raise InputError(
                f"--size-dist must be one of {', '.join(SIZE_DISTRIBUTIONS)}, got {self.size_dist!r}"
            )
        if self.size_dist == "dirichlet":
            if self.alpha is None:
                raise InputError("scheme quantity with --size-dist dirichlet needs --alpha")
            if self.sigma is not None:
                raise InputError("--sigma applies to --size-dist lognormal only; drop it or pass --size-dist lognormal")
            self._set_checked(alpha=check_positive_float(self.alpha, "--alpha"))
        else:
            if self.sigma is None:
                raise InputError("scheme quantity with --size-dist lognormal needs --sigma")
            if self.alpha is not None:
                raise InputError("--alpha does not apply to --size-dist lognormal (its spread is --sigma); drop it")
            self._set_checked(sigma=check_positive_float(self.sigma, "--sigma"))

    def allocate(self, key_counts: np.ndarray, rng: np.random.Generator) -> Allocation:
        key_counts = np.asarray(key_counts, dtype=np.int64)
        total = int(key_counts.sum())
        check_clients_fit_rows(self.num_clients, total)
        reserved = self.min_client_size * self.num_clients
        if reserved > total:
            raise PlanError(
                f"--min-client-size {self.min_client_size} x {self.num_clients} clients needs "
                f"{reserved} rows but the input has {total}; use --min-client-size "
                f"{total // self.num_clients} or fewer"
            )
        if self.size_dist == "dirichlet":
            weights = rng.dirichlet(np.full(self.num_clients, self.alpha))
            if not np.all(np.isfinite(weights)) or weights.sum() <= 0:
                weights = np.zeros(self.num_clients)
                weights[rng.integers(self.num_clients)] = 1.0
        else:
            # exp(N(0, sigma^2)) as rng.lognormal draws it, scaled by the largest (the sizes are
            # proportional): exp of a large sigma's draws overflows to inf
            logs = rng.normal(loc=0.0, scale=self.sigma, size=self.num_clients)
            weights = np.exp(logs - logs.max())
        sizes = self.min_client_size + round_preserving_sum(weights, total - reserved)
        return Allocation(self.num_clients, quotas=deal_by_hypergeometric(key_counts, sizes, rng))
