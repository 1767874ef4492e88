"""Pass 1: count rows per distinct value of the key (and label) columns, streaming.

Memory is O(distinct values): per-batch ``value_counts`` results are merged with an Arrow group-by
every few batches, never by materialising the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MERGE_EVERY = 32


@dataclass(frozen=True)
class ValueCounts:
    """Distinct non-null values of one column in sorted order, with their row counts.

    Attributes:
        column: the column name.
        values: sorted distinct non-null values (an Arrow array, so any key type works).
        counts: ``(len(values),)`` int64 rows per value.
        nulls: number of null rows.
    """

    column: str
    values: pa.Array
    counts: np.ndarray
    nulls: int

    def codes(self, column: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Index of each element of ``column`` in :attr:`values` (null for nulls and unseen values)."""
        return pc.index_in(plain(column), value_set=self.values)


def plain(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``column`` as one non-dictionary, non-extension array (dictionary columns are decoded; an
    extension column such as ``arrow.uuid``, which Arrow's kernels do not take, is its storage)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column.type, pa.BaseExtensionType):
        column = column.storage
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def counted_type(col_type: pa.DataType) -> pa.DataType:
    """The type of the values :func:`plain` gives for a column of ``col_type``: an extension type's
    storage, a dictionary's values, else ``col_type``."""
    if isinstance(col_type, pa.BaseExtensionType):
        col_type = col_type.storage_type
    return col_type.value_type if pa.types.is_dictionary(col_type) else col_type


class TableCounter:
    """Counts kept as small Arrow tables, merged every few additions (subclasses define the merge).

    :meth:`partial` and :meth:`add_partial` move counts between counters: a distributed pass 1
    counts pieces apart and adds their partial tables into one counter.
    """

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []

    def _merged(self) -> pa.Table:
        raise NotImplementedError

    def add_partial(self, table: pa.Table | None) -> None:
        """Add a table of counts (one batch's, or a :meth:`partial` of another counter)."""
        if table is not None:
            self._parts.append(table)
            if len(self._parts) >= _MERGE_EVERY:
                self._parts = [self._merged()]

    def partial(self) -> pa.Table | None:
        """The counts so far as one table (``None`` if nothing was counted)."""
        return self._merged() if self._parts else None


class ValueCounter(TableCounter):
    """Accumulates value counts of one column over record batches (tables of ``value, count``)."""

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def update(self, array: pa.Array) -> None:
        counted = pc.value_counts(plain(array))
        self.add_partial(
            pa.table({"value": counted.field("values"), "count": counted.field("counts").cast(pa.int64())})
        )

    def _merged(self) -> pa.Table:
        table = pa.concat_tables(self._parts)
        merged = table.group_by("value", use_threads=False).aggregate([("count", "sum")])
        return merged.select(["value", "count_sum"]).rename_columns(["value", "count"])

    def result(self, nulls: int = 0) -> ValueCounts:
        """Sorted distinct values and counts; ``nulls`` is recorded as given."""
        if not self._parts:
            return ValueCounts(self.column, pa.array([]), np.zeros(0, dtype=np.int64), nulls)
        merged = self._merged()
        values, counts = plain(merged.column("value")), merged.column("count")
        order = pc.sort_indices(values)
        return ValueCounts(
            self.column,
            values.take(order),
            np.asarray(counts.take(order).to_numpy(), dtype=np.int64),
            nulls,
        )


@dataclass(frozen=True)
class CountResult:
    """What pass 1 found.

    Attributes:
        total_rows: rows in the input.
        complete_rows: rows where every counted column is non-null (the rows that get partitioned).
        values: per counted column, value counts over the complete rows only.
        nulls: per counted column, null rows over the whole input.
        groups: :class:`fedpart.grouping.GroupCounts` when a group column was counted.
    """

    total_rows: int
    complete_rows: int
    values: dict[str, ValueCounts]
    nulls: dict[str, int]
    groups: Any = None


@dataclass(frozen=True)
class PartialCounts:
    """What pass 1 found in one piece of the input; pieces are combined with :func:`merge_counts`.

    Attributes:
        total_rows, complete_rows, nulls: as in :class:`CountResult`, for the piece.
        values: per counted column, a ``(value, count)`` table over the piece's complete rows.
        groups: ``(group, key, rows)`` table when a group column is counted.
    """

    total_rows: int
    complete_rows: int
    nulls: dict[str, int]
    values: dict[str, pa.Table | None]
    groups: pa.Table | None = None


def count_partial(
    batches: Iterable[pa.RecordBatch],
    columns: Sequence[str],
    on_batch=None,
    group_col: str | None = None,
    group_key: str | None = None,
) -> PartialCounts:
    """Count total rows and, for each of ``columns``, rows per distinct value, of some batches.

    Value counts are taken over the rows where *all* ``columns`` are non-null, so that they match
    the rows that pass 2 keeps when null rows are dropped. ``on_batch(num_rows)`` is called after
    each batch (progress reporting). With ``group_col``, rows per (group, ``group_key`` value) are
    counted too (see :mod:`fedpart.grouping`).
    """
    from fedpart.grouping import GroupCounter

    names = list(dict.fromkeys([*columns, *([group_col] if group_col else [])]))
    groups = GroupCounter(group_col, group_key) if group_col else None
    counters = {c: ValueCounter(c) for c in columns}
    nulls = dict.fromkeys(names, 0)
    total = complete = 0
    for batch in batches:
        total += batch.num_rows
        arrays = {name: plain(batch.column(name)) for name in names}
        if any(a.null_count for a in arrays.values()):
            mask = None
            for name, array in arrays.items():
                nulls[name] += array.null_count
                mask = array.is_valid() if mask is None else pc.and_(mask, array.is_valid())
            arrays = {name: array.filter(mask) for name, array in arrays.items()}
        complete += len(next(iter(arrays.values()))) if arrays else batch.num_rows
        for name in columns:
            counters[name].update(arrays[name])
        if groups is not None:
            groups.update(arrays[group_col], arrays[group_key] if group_key else None)
        if on_batch is not None:
            on_batch(batch.num_rows)
    return PartialCounts(
        total, complete, nulls, {n: counters[n].partial() for n in columns},
        groups.partial() if groups is not None else None,
    )


def merge_counts(
    partials: Sequence[PartialCounts],
    columns: Sequence[str],
    group_col: str | None = None,
    group_key: str | None = None,
) -> CountResult:
    """Combine the counts of the pieces of one input (in any order) into the input's counts."""
    from fedpart.grouping import GroupCounter

    names = list(dict.fromkeys([*columns, *([group_col] if group_col else [])]))
    counters = {c: ValueCounter(c) for c in columns}
    groups = GroupCounter(group_col, group_key) if group_col else None
    nulls = dict.fromkeys(names, 0)
    for part in partials:
        for name in names:
            nulls[name] += part.nulls.get(name, 0)
        for name in columns:
            counters[name].add_partial(part.values[name])
        if groups is not None:
            groups.add_partial(part.groups)
    values = {n: counters[n].result(nulls[n]) for n in columns}
    group_counts = None
    if groups is not None:
        group_counts = groups.result(values[group_key].values if group_key else None)
    return CountResult(
        sum(p.total_rows for p in partials), sum(p.complete_rows for p in partials), values, nulls,
        group_counts,
    )


def count_values(
    batches: Iterable[pa.RecordBatch],
    columns: Sequence[str],
    on_batch=None,
    group_col: str | None = None,
    group_key: str | None = None,
) -> CountResult:
    """Count the rows of ``batches`` as :func:`count_partial` does, as one :class:`CountResult`."""
    partial = count_partial(batches, columns, on_batch, group_col, group_key)
    return merge_counts([partial], columns, group_col, group_key)
