"""Group-level partitioning: rows that share a group value (a QA context) never split across clients.

With a group column the unit of the plan is the group, not the row: pass 1 counts groups per key,
the scheme allocates *groups* to clients, and every group's client is decided once from the same
keyed permutation that row-level plans use (the groups of a key, in sorted order, are that key's
"rows"). Pass 2 then only looks each row's group up. Memory is O(groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpart.assign import RowAssigner
from fedpart.counting import TableCounter, plain
from fedpart.errors import InputError
from fedpart.plan import Plan

@dataclass(frozen=True)
class GroupCounts:
    """Distinct groups in (key code, group value) order, with rows per group.

    Attributes:
        groups: sorted distinct group values (sorted by key code, then value).
        group_keys: ``(n_groups,)`` key code of each group.
        group_rows: ``(n_groups,)`` rows of each group.
    """

    groups: pa.Array
    group_keys: np.ndarray
    group_rows: np.ndarray

    def groups_per_key(self, n_keys: int) -> np.ndarray:
        """``(n_keys,)`` number of groups of each key (the plan's unit counts)."""
        return np.bincount(self.group_keys, minlength=n_keys).astype(np.int64)


class GroupCounter(TableCounter):
    """Accumulates (group, key value) -> rows over batches; checks each group has one key."""

    def __init__(self, group_col: str, key_col: str | None = None) -> None:
        super().__init__()
        self.group_col = group_col
        self.key_col = key_col

    def update(self, groups: pa.Array, keys: pa.Array | None) -> None:
        """Count one batch's rows by group value and key value (``keys=None``: a single key)."""
        if keys is None:
            keys = pa.nulls(len(groups), pa.int64())
        table = pa.table({"group": plain(groups), "key": plain(keys)})
        self.add_partial(
            table.group_by(["group", "key"], use_threads=False).aggregate([([], "count_all")])
            .rename_columns(["group", "key", "rows"])
        )

    def _merged(self) -> pa.Table:
        table = pa.concat_tables(self._parts)
        return (
            table.group_by(["group", "key"], use_threads=False).aggregate([("rows", "sum")])
            .rename_columns(["group", "key", "rows"])
        )

    def result(self, key_values: pa.Array | None) -> GroupCounts:
        """Groups sorted by (key code, group value); ``key_values`` are the sorted distinct keys."""
        table = self._merged()
        per_group = table.group_by("group", use_threads=False).aggregate([("key", "count_distinct")])
        mixed = per_group.filter(pc.greater(per_group.column("key_count_distinct"), 1))
        if mixed.num_rows:
            example = mixed.column("group")[0].as_py()
            key = repr(self.key_col) if self.key_col is not None else "the partition key"
            raise InputError(
                f"{mixed.num_rows} group(s) of {self.group_col!r} have rows with different values of {key} "
                f"(e.g. group {str(example)[:60]!r}); all rows of a group go to one client, so they must share "
                f"one value of the key the plan splits by: group by a column whose groups do, or, with "
                "--scheme iid or quantity, leave out --label-col to split the groups without stratifying"
            )
        if key_values is None:
            codes = pa.array(np.zeros(table.num_rows, dtype=np.int64))
        else:
            codes = pc.index_in(table.column("key"), value_set=key_values).cast(pa.int64())
        table = table.append_column("code", codes).sort_by([("code", "ascending"), ("group", "ascending")])
        return GroupCounts(
            groups=plain(table.column("group")),
            group_keys=np.asarray(table.column("code").to_numpy(), dtype=np.int64),
            group_rows=np.asarray(table.column("rows").to_numpy(), dtype=np.int64),
        )


class GroupAssigner:
    """Decides every group's client once from the plan, then maps rows by their group value."""

    def __init__(self, plan: Plan, counts: GroupCounts) -> None:
        self.groups = counts.groups
        # The groups of a key, in sorted order, play the role of that key's rows in RowAssigner.
        self.group_clients = RowAssigner(plan).assign(counts.group_keys)

    def assign(self, groups: pa.Array) -> np.ndarray:
        """Client (or -1 for test) of each row, given its group value."""
        index = pc.index_in(plain(groups), value_set=self.groups)
        if index.null_count:
            raise InputError("a group appeared in pass 2 that pass 1 did not see: the input changed")
        return self.group_clients[np.asarray(index.to_numpy(), dtype=np.int64)]
