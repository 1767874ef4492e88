"""Feature skew: the Dirichlet skew of :mod:`~fedpart.partitioners.dirichlet` over k-means cluster ids.

FedNLP's ``niid_cluster``: examples are embedded and clustered (:mod:`fedpart.clustering`), then each
cluster's rows are split among clients in ``Dir(alpha)`` proportions. The engine derives the
``cluster`` column before counting; the allocation itself is the Dirichlet one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedpart.partitioners.dirichlet import DirichletPartitioner
from fedpart.partitioners.params import check_int_at_least

CLUSTER_COL = "cluster"


@dataclass(frozen=True)
class ClusterPartitioner(DirichletPartitioner):
    """Dirichlet skew over ``clusters`` k-means clusters of the examples' text."""

    clusters: int = 10
    embedder: str = "hashed-tfidf"
    name: ClassVar[str] = "cluster"
    #: the key column is derived by clustering, not read from the input
    derived_key: ClassVar[str] = CLUSTER_COL

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set_checked(clusters=check_int_at_least(self.clusters, "--clusters", 1))
