"""Any fedpart scheme as a Flower Datasets ``Partitioner``.

``FedpartPartitioner("dirichlet", partition_by="label", num_clients=100, alpha=0.1)`` computes the
partition of a ``datasets.Dataset`` with fedpart's own pure functions -- the scheme's allocation
(:mod:`fedpart.partitioners`), :func:`fedpart.plan.draw_plan` and the row permutation of
:mod:`fedpart.assign` (or :mod:`fedpart.grouping` with ``group_by``) -- so partition ``i`` holds
exactly the rows that ``fedpart partition`` writes to client ``i`` for the same rows, scheme, parameters
and seed (no test split: Flower keeps splits apart; for ``cluster`` the k-means model is fitted on
the dataset's record batches, so its clusters can differ from a streamed ``fedpart partition``). The
partition is an exact cover of the dataset's rows and is computed once, on first use.

It subclasses ``flwr_datasets.partitioner.Partitioner`` when flwr-datasets is installed, so
``FederatedDataset(dataset=..., partitioners={"train": FedpartPartitioner(...)})`` accepts it.
flwr-datasets pins ``datasets<5``; without it the class works on its own with the same interface
(``dataset``, ``num_partitions``, ``load_partition``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from fedpart.counting import count_values
from fedpart.errors import InputError
from fedpart.partitioners import make_partitioner
from fedpart.plan import draw_plan

try:  # pragma: no cover - which branch runs depends on the environment
    from flwr_datasets.partitioner import Partitioner as _FlowerPartitioner
except ImportError:  # flwr-datasets absent (or unusable with this datasets version)

    class _FlowerPartitioner:  # type: ignore[no-redef]
        """The interface of ``flwr_datasets.partitioner.Partitioner``, for when it is not installed."""

        def __init__(self) -> None:
            self._dataset: Any = None

        @property
        def dataset(self) -> Any:
            if self._dataset is None:
                raise AttributeError("assign the dataset first: partitioner.dataset = a datasets.Dataset")
            return self._dataset

        @dataset.setter
        def dataset(self, value: Any) -> None:
            import datasets

            if self._dataset is not None:
                raise ValueError("the dataset can be assigned to a partitioner only once")
            if not isinstance(value, datasets.Dataset):
                raise TypeError(f"the dataset must be a datasets.Dataset, got {type(value).__name__}")
            self._dataset = value

        def is_dataset_assigned(self) -> bool:
            return self._dataset is not None


class FedpartPartitioner(_FlowerPartitioner):
    """A fedpart scheme (``iid``, ``dirichlet``, ``label-count``, ``quantity``, ``natural``, ``cluster``)
    over a ``datasets.Dataset``.

    Args:
        scheme: the fedpart scheme name, as after ``fedpart partition --scheme``.
        partition_by: the key column: the label for label skew, the id for ``natural`` (``--by``).
            Optional for ``iid`` and ``quantity`` (then used to stratify).
        group_by: rows with equal values here stay on one client (QA contexts; ``--group-col``).
        text_by: the text column(s) that ``cluster`` embeds and clusters (``--text-col``).
        seed: the seed of the plan and the row permutation (``--seed``).
        **params: the scheme's parameters, named as in :mod:`fedpart.partitioners`
            (``num_clients``, ``alpha``, ``labels_per_client``, ``min_client_size``, ...).

    Raises:
        InputError: an unknown scheme or parameter, a missing column, or a key column with nulls.
        PlanError: the parameters cannot be met by the dataset's counts (e.g. ``min_client_size``).
    """

    def __init__(
        self,
        scheme: str,
        *,
        partition_by: str | None = None,
        group_by: str | None = None,
        text_by: str | Sequence[str] | None = None,
        seed: int = 0,
        **params: Any,
    ) -> None:
        super().__init__()
        self.scheme = make_partitioner(scheme, **params)
        self.derived_key = getattr(self.scheme, "derived_key", None)
        if self.scheme.name == "natural" and partition_by is None:
            raise InputError("scheme natural needs partition_by=COLUMN (the natural id: user, author, title...)")
        if self.derived_key is not None:
            if partition_by is not None:
                raise InputError("partition_by does not apply to scheme cluster (the key is the cluster id)")
            if not text_by:
                raise InputError("scheme cluster needs text_by=COLUMN (the text to cluster)")
        elif self.scheme.requires_key and partition_by is None:
            raise InputError(f"scheme {self.scheme.name} needs partition_by=COLUMN (the label, or another key)")
        if self.scheme.name == "natural" and group_by is not None:  # as fedpart partition refuses --group-col
            raise InputError("group_by does not apply to scheme natural: all rows of one partition_by value already "
                             "stay in one partition; drop group_by")
        self.partition_by = partition_by
        self.group_by = group_by
        self.text_by = (text_by,) if isinstance(text_by, str) else tuple(text_by or ())
        self.seed = seed
        self._indices: list[np.ndarray] | None = None

    @property
    def num_partitions(self) -> int:
        """Number of partitions (for ``natural`` without ``num_clients``: the number of ids)."""
        if self.scheme.num_clients is not None:
            return int(self.scheme.num_clients)
        return len(self.partition_indices())

    def load_partition(self, partition_id: int) -> Any:
        """The rows of partition ``partition_id``, in dataset order (``dataset.select``)."""
        indices = self.partition_indices()
        if not 0 <= partition_id < len(indices):
            raise InputError(f"no partition {partition_id}; partitions are 0..{len(indices) - 1}")
        return self.dataset.select(indices[partition_id])

    def partition_indices(self) -> list[np.ndarray]:
        """Row indices of every partition (int64, ascending); together an exact cover of the dataset."""
        if self._indices is None:
            clients, num_clients = self._assign_rows()
            order = np.argsort(clients, kind="stable")
            bounds = np.cumsum(np.bincount(clients, minlength=num_clients))[:-1]
            self._indices = np.split(order.astype(np.int64), bounds)
        return self._indices

    def _columns(self, names: Sequence[str]) -> pa.Table:
        """The named columns of the dataset's rows, in dataset order (honours select/shuffle)."""
        missing = [c for c in names if c not in self.dataset.column_names]
        if missing:
            raise InputError(f"the dataset has no column(s) {missing}; it has {self.dataset.column_names}")
        return self.dataset.select_columns(list(names)).with_format("arrow")[:]

    def _assign_rows(self) -> tuple[np.ndarray, int]:
        """The client of every row and the number of clients, from fedpart's counts -> plan -> assignment."""
        from fedpart.assign import RowAssigner
        from fedpart.grouping import GroupAssigner

        n_rows = len(self.dataset)
        if n_rows == 0:
            raise InputError("the dataset is empty: nothing to partition")
        key, group = self.partition_by, self.group_by
        if not (key or group or self.derived_key):  # unkeyed iid/quantity: all rows are one key
            plan = draw_plan(self.scheme, np.array([n_rows]), self.seed, test_frac=0.0)
            return RowAssigner(plan).assign(np.zeros(n_rows, dtype=np.int64)), plan.num_clients
        texts = self.text_by if self.derived_key is not None else ()
        table = self._columns(list(dict.fromkeys([c for c in (key, group) if c] + list(texts))))
        if self.derived_key is not None:
            table, key = self._add_clusters(table), self.derived_key
        for name in [c for c in (key, group) if c]:
            column = table.column(name)
            if column.null_count:
                raise InputError(f"column {name!r} has {column.null_count} null value(s); fill or filter them "
                                 "(dataset.filter) before partitioning: every row must go to one partition")
            if pa.types.is_floating(column.type) or pa.types.is_nested(column.type):
                raise InputError(f"column {name!r} has type {column.type}; a partition key must hold "
                                 "categorical values (integers, strings, booleans)")
        # the engine's pass 1, plan and pass 2, over the dataset's rows as one stream
        counted = count_values(table.to_batches(), [key] if key else [], group_col=group, group_key=key)
        key_counts = counted.values[key] if key else None
        if counted.groups is not None:
            unit_counts = counted.groups.groups_per_key(len(key_counts.values) if key_counts is not None else 1)
        else:
            unit_counts = key_counts.counts
        plan = draw_plan(self.scheme, unit_counts, self.seed, test_frac=0.0)
        if counted.groups is not None:
            return GroupAssigner(plan, counted.groups).assign(table.column(group)), plan.num_clients
        codes = np.asarray(key_counts.codes(table.column(key)).to_numpy(), dtype=np.int64)
        return RowAssigner(plan).assign(codes), plan.num_clients

    def _add_clusters(self, table: pa.Table) -> pa.Table:
        """``table`` plus the k-means cluster id of each row's text (``scheme cluster``, as the engine's
        pass 0; the clusters are fitted on this dataset's record batches)."""
        from fedpart.clustering import TextClusterer, texts_of

        clusterer = TextClusterer(self.scheme.clusters, seed=self.seed, embedder=self.scheme.embedder)
        clusterer.fit(texts_of(batch, self.text_by) for batch in table.to_batches())
        ids = np.concatenate([clusterer.predict(texts_of(batch, self.text_by)) for batch in table.to_batches()])
        return table.append_column(self.derived_key, pa.array(ids, pa.int64()))
