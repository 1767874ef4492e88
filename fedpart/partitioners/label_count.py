"""Label-count ("pathological") skew: every client holds rows of exactly ``C`` labels.

NIID-Bench's ``#C=k`` (Li et al. 2022) and the shard scheme of McMahan et al. 2017. Each client's
labels are drawn at random among the labels with the fewest holders so far, preferring labels with
rows for one more holder (:func:`draw_label_sets`), so every label is held by some client, holder
counts differ by at most one, and any set of ``C`` labels can occur; a label's rows are split as
evenly as possible among its holders (as NIID-Bench's ``array_split``). Unlike NIID-Bench, whose
uniform draw can leave a label unheld and its rows dropped, no row is ever dropped: if
``clients x C`` is smaller than the number of labels the request is refused. A label with fewer
rows than clients holding it leaves some of them with rows of fewer than ``C`` labels: a warning
says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedpart.errors import FedpartWarning, PlanError
from fedpart.partitioners.allocation import check_min_client_size
from fedpart.partitioners.base import Allocation, Partitioner
from fedpart.partitioners.params import check_clients_fit_rows, check_int_at_least


@dataclass(frozen=True)
class LabelCountPartitioner(Partitioner):
    """Each client holds ``labels_per_client`` distinct labels."""

    num_clients: int
    labels_per_client: int
    min_client_size: int = 0
    name: ClassVar[str] = "label-count"
    requires_key: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self._set_checked(
            num_clients=check_int_at_least(self.num_clients, "--clients", 1),
            labels_per_client=check_int_at_least(self.labels_per_client, "--labels-per-client", 1),
            min_client_size=check_int_at_least(self.min_client_size, "--min-client-size", 0),
        )

    def allocate(self, key_counts: np.ndarray, rng: np.random.Generator) -> Allocation:
        key_counts = np.asarray(key_counts, dtype=np.int64)
        n_labels, per_client = key_counts.size, self.labels_per_client
        check_clients_fit_rows(self.num_clients, int(key_counts.sum()))
        if per_client > n_labels:
            raise PlanError(
                f"--labels-per-client {per_client} exceeds the {n_labels} distinct labels; "
                f"use --labels-per-client {n_labels} or fewer"
            )
        if per_client * self.num_clients < n_labels:
            raise PlanError(
                f"{self.num_clients} clients x {per_client} labels cover only "
                f"{per_client * self.num_clients} of the {n_labels} labels and rows would be lost; use "
                f"--labels-per-client {-(-n_labels // self.num_clients)} or more clients"
            )
        holds = draw_label_sets(key_counts, self.num_clients, per_client, rng)
        quotas = np.zeros((n_labels, self.num_clients), dtype=np.int64)
        for label in range(n_labels):
            holders = np.flatnonzero(holds[label])
            share, extra = divmod(int(key_counts[label]), holders.size)
            quotas[label, holders] = share
            quotas[label, holders[rng.permutation(holders.size)[:extra]]] += 1
        warn_labels_short(quotas, holds, per_client)
        check_min_client_size(
            quotas.sum(axis=0),
            self.min_client_size,
            "use fewer --clients or more --labels-per-client",
        )
        return Allocation(self.num_clients, quotas=quotas)


def draw_label_sets(key_counts: np.ndarray, num_clients: int, per_client: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """``(n_labels, num_clients)`` booleans: the ``per_client`` labels each client holds.

    Client by client, the labels are drawn at random among the least-held ones (the fewest holders
    so far), preferring among those the labels with rows left for one more holder (``key_counts``:
    rows per label); remaining ties are broken by ``rng``. So every label is held once
    ``num_clients x per_client >= n_labels``, holder counts differ by at most one, and any set of
    ``per_client`` labels can occur (each pass over the labels is a fresh random grouping), as in
    NIID-Bench's uniform draw, which can leave a label unheld.
    """
    n_labels = key_counts.size
    holds = np.zeros((n_labels, num_clients), dtype=bool)
    held = np.zeros(n_labels, dtype=np.int64)
    for client in range(num_clients):
        chosen = np.lexsort((rng.random(n_labels), key_counts <= held, held))[:per_client]
        holds[chosen, client] = True
        held[chosen] += 1
    return holds


def warn_labels_short(quotas: np.ndarray, holds: np.ndarray, per_client: int) -> None:
    """Warn when a label has fewer rows than clients holding it, so some clients get rows of fewer
    than ``per_client`` labels (``quotas``, ``holds``: ``(n_labels, num_clients)``)."""
    short = int(((quotas > 0).sum(axis=0) < per_client).sum())
    if not short:
        return
    holders = holds.sum(axis=1)
    rows = quotas.sum(axis=1)
    scarce = np.flatnonzero(rows < holders)
    label = int(scarce[np.argmin(rows[scarce])])
    warnings.warn(
        f"--scheme label-count: {short} of {quotas.shape[1]} clients hold rows of fewer than {per_client} "
        f"label{'s' if per_client > 1 else ''}, because {scarce.size} label(s) have fewer rows than clients "
        f"holding them (key #{label} of the manifest's labels/keys, from 0, has {rows[label]} row(s) for "
        f"{holders[label]} clients); use fewer --clients or --labels-per-client",
        FedpartWarning,
        stacklevel=2,
    )
