"""The task interface: how a task's files become canonical record batches, and how they are keyed.

A :class:`Task` turns any supported input (its native format, or Parquet/CSV/JSONL/HF with column
names mapped by :class:`ColumnMap`) into a :class:`TaskSource`: a stream of batches with the task's
canonical columns first, then any input columns it did not consume. It validates rows as they
stream; invalid rows are dropped and counted with ``drop_invalid``, otherwise the first pass fails
with the count and an example.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from fedpart.errors import FedpartWarning, InputError
from fedpart.io.sources import (
    ReadOptions,
    Source,
    SourceUnit,
    check_read_options,
    columns_listing,
    directory_data_files,
    open_source,
)


@dataclass(frozen=True)
class ColumnMap:
    """The input's names for a task's canonical columns (``None``: the task's defaults)."""

    text: tuple[str, ...] | None = None
    label: str | None = None
    tokens: str | None = None
    tags: str | None = None
    id: str | None = None
    title: str | None = None
    context: str | None = None
    question: str | None = None
    answers: str | None = None
    source: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class TaskOptions:
    """How a task reads its input."""

    columns: ColumnMap = field(default_factory=ColumnMap)
    drop_invalid: bool = False
    read: ReadOptions = field(default_factory=ReadOptions)
    hf_split: str | None = None
    hf_config: str | None = None


@dataclass
class Validation:
    """One check over a batch: ``valid[i]`` is False for failing rows; ``reason`` reads after
    "N row(s) ..." and ``example`` describes the first failing row."""

    valid: np.ndarray
    reason: str
    example: str = ""


def non_empty_text(batch: pa.RecordBatch, column: str) -> Validation:
    """Rows whose ``column`` is null or only whitespace fail."""
    import pyarrow.compute as pc

    values = batch.column(column)
    stripped = pc.utf8_trim_whitespace(values)
    valid = pc.fill_null(pc.greater(pc.utf8_length(stripped), 0), False).to_numpy(zero_copy_only=False)
    example = ""
    if not valid.all():
        example = f"{column} is {values[int(np.flatnonzero(~valid)[0])].as_py()!r}"
    return Validation(np.asarray(valid, dtype=bool), f"have an empty {column}", example)


def pick_column(
    names: Sequence[str], given: str | None, defaults: Sequence[str], flag: str, what: str, where: str
) -> str:
    """The input column that plays role ``what``: ``given`` if set, else the first default present."""
    if given is not None:
        if given not in names:
            raise InputError(f"{where}: no column {given!r} (from {flag}); {columns_listing(names)}")
        return given
    for name in defaults:
        if name in names:
            return name
    raise InputError(
        f"{where}: no {what} column (looked for {', '.join(map(repr, defaults))}); "
        f"name it with {flag}; {columns_listing(names)}"
    )


class Task(ABC):
    """One NLP task family: canonical schema, readers, validation and partition keys."""

    #: registry name, as typed after ``--task``
    name: ClassVar[str]
    #: human-readable name
    title: ClassVar[str]
    #: canonical column holding the label used for label skew and metrics (None: no label)
    label_col: ClassVar[str | None] = None
    #: canonical column whose rows must stay on one client (QA contexts); None: rows are independent
    group_col: ClassVar[str | None] = None
    #: canonical columns embedded by ``--scheme cluster``
    text_cols: ClassVar[tuple[str, ...]] = ()
    #: columns (canonical, or common in the task's datasets) to suggest for ``--by`` when a scheme
    #: needs a key and the task has no label
    by_examples: ClassVar[tuple[str, ...]] = ()

    def open(self, spec: str, options: TaskOptions = TaskOptions()) -> TaskSource:
        """Open ``spec`` as a stream of canonical, validated batches."""
        raw = self.open_raw(spec, options)
        # a task's own formats (CoNLL, SQuAD JSON) are read without open_source's checks
        check_read_options(spec, getattr(raw, "format", None), options.read, options.hf_split, options.hf_config)
        return TaskSource(self, raw, options)

    def data_files(self, directory: str, options: TaskOptions = TaskOptions()) -> list[str]:
        """The files of the local ``directory`` that :meth:`open` reads, in ``row_id`` order; tasks
        with their own file formats (CoNLL, SQuAD) override this."""
        return directory_data_files(Path(directory))

    def open_raw(self, spec: str, options: TaskOptions) -> Source:
        """The raw source; tasks with their own file formats (CoNLL, SQuAD) override this."""
        return open_source(spec, options.read, hf_split=options.hf_split, hf_config=options.hf_config)

    @abstractmethod
    def bind(self, raw_schema: pa.Schema, columns: ColumnMap, where: str) -> BoundTask:
        """Resolve column names against the raw schema (raising :class:`InputError` if missing)."""


class BoundTask(ABC):
    """A task with its input columns resolved: converts raw batches to canonical ones."""

    #: canonical schema (canonical columns, then the unconsumed input columns)
    schema: pa.Schema

    @abstractmethod
    def to_canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Rename/convert one raw batch into the canonical schema (no rows added or removed)."""

    def validate(self, batch: pa.RecordBatch) -> list[Validation]:
        """Checks of a canonical batch, one per reason; a row is valid if it passes them all."""
        return []


def passthrough_fields(raw_schema: pa.Schema, consumed: Sequence[str], canonical: Sequence[str]) -> list[pa.Field]:
    """Input fields that are neither consumed by the mapping nor shadowed by a canonical name
    (see :func:`warn_replaced_columns`)."""
    skip = set(consumed) | set(canonical)
    return [f for f in raw_schema if f.name not in skip]


def warn_replaced_columns(raw_schema: pa.Schema, reads: Sequence[str], canonical: Sequence[str], where: str) -> None:
    """Warn (:class:`FedpartWarning`) about input columns named like a ``canonical`` column that the
    mapping does not read (``reads``): the canonical column replaces them, so they are not kept
    (e.g. a ``text`` column beside ``--text-col title,description``)."""
    replaced = [name for name in raw_schema.names if name in canonical and name not in reads]
    if replaced:
        names = ", ".join(repr(name) for name in replaced)
        warnings.warn(FedpartWarning(
            f"{where}: input column{'s' if len(replaced) > 1 else ''} {names} "
            f"{'are' if len(replaced) > 1 else 'is'} not read by the task "
            f"(it reads {', '.join(repr(r) for r in dict.fromkeys(reads))}) "
            "and dropped: the task's own column takes the name; rename it in the input to keep it"
        ), stacklevel=3)


def tally_invalid(bound: BoundTask, batch: pa.RecordBatch, offset: int, invalid: dict[str, int],
                  first: dict[str, tuple[int, str]]) -> np.ndarray:
    """Which rows of the canonical ``batch`` pass every check of ``bound`` (a boolean mask). The
    failures are added to ``invalid`` (rows per reason) and ``first`` (per reason, the first
    failing row's position -- ``offset`` is the batch's first row -- and its example)."""
    valid = np.ones(batch.num_rows, dtype=bool)
    for check in bound.validate(batch):
        bad = np.flatnonzero(~check.valid)
        if bad.size:
            invalid[check.reason] = invalid.get(check.reason, 0) + int(bad.size)
            first.setdefault(check.reason, (offset + int(bad[0]), check.example))
            valid &= check.valid
    return valid


def describe_invalid(invalid: dict[str, int], first: dict[str, tuple[int, str]]) -> str:
    """``N row(s) REASON (first: row P: EXAMPLE)`` for each reason of :func:`tally_invalid`."""
    return "; ".join(f"{count} row(s) {reason} (first: row {first[reason][0]}: {first[reason][1]})"
                     for reason, count in invalid.items())


class InvalidRowsError(InputError):
    """Rows that fail the task's validation, without ``--drop-invalid``: per reason, how many and the
    first (input position, example); ``rows_read`` counts every row of the stream."""

    def __init__(self, description: str, invalid: dict[str, int], first: dict[str, tuple[int, str]],
                 rows_read: int) -> None:
        self.description, self.invalid, self.first, self.rows_read = description, invalid, first, rows_read
        super().__init__(f"{description}: {describe_invalid(invalid, first)}; fix the data or pass --drop-invalid "
                         "to drop and report them")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (Ray tasks return it) with its fields
        return type(self), (self.description, self.invalid, self.first, self.rows_read)

    @classmethod
    def merged(cls, description: str, parts: Sequence[tuple[int, InvalidRowsError | None]]
               ) -> InvalidRowsError | None:
        """The error of a stream read in pieces, as if read whole: ``parts`` are, in input order, each
        piece's rows read and its error (``None``: no invalid row); a piece's positions start after
        the rows read before it. ``None`` when no piece has an invalid row."""
        invalid: dict[str, int] = {}
        first: dict[str, tuple[int, str]] = {}
        start = 0
        for rows_read, error in parts:
            if error is not None:
                for reason, count in error.invalid.items():
                    invalid[reason] = invalid.get(reason, 0) + count
                    position, example = error.first[reason]
                    first.setdefault(reason, (start + position, example))
            start += rows_read
        return cls(description, invalid, first, start) if invalid else None


class TaskSource(Source):
    """Canonical, validated batches of a task's input (see :class:`Task`)."""

    def __init__(self, task: Task, raw: Source, options: TaskOptions) -> None:
        self.task = task
        self.raw = raw
        self.options = options
        self.description = raw.description
        self.bound = task.bind(raw.schema, options.columns, raw.description)
        self.schema = self.bound.schema
        #: rows dropped as invalid in the last complete pass, by reason
        self.invalid: dict[str, int] = {}
        #: input rows (valid or not) read in the last complete pass
        self.rows_read = 0

    def iter_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        for batch, _ in self.iter_batches_with_ids(columns):
            yield batch

    def iter_batches_with_ids(
        self, columns: Sequence[str] | None = None
    ) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        """Canonical batches with the input position of every kept row.

        Without ``drop_invalid`` the stream is read to the end and then fails with the number of
        invalid rows per reason and the first example of each.
        """
        invalid: dict[str, int] = {}
        first_example: dict[str, tuple[int, str]] = {}
        row_offset = 0
        for raw_batch in self.raw.iter_batches():
            batch = self.bound.to_canonical(raw_batch)
            positions = np.arange(row_offset, row_offset + batch.num_rows, dtype=np.int64)
            valid = tally_invalid(self.bound, batch, row_offset, invalid, first_example)
            row_offset += batch.num_rows
            if not valid.all():
                if not self.options.drop_invalid:
                    continue
                batch, positions = batch.filter(pa.array(valid)), positions[valid]
            if batch.num_rows and (not invalid or self.options.drop_invalid):
                yield (batch.select(list(columns)) if columns is not None else batch), positions
        if invalid and not self.options.drop_invalid:
            raise InvalidRowsError(self.description, invalid, first_example, row_offset)
        self.invalid = invalid
        self.rows_read = row_offset

    def split(self, target_rows: int) -> list[SourceUnit]:
        return self.raw.split(target_rows)

    def piece(self, unit: SourceUnit) -> TaskSource:
        return TaskSource(self.task, self.raw.piece(unit), self.options)

    def count_rows(self) -> int | None:
        return None

    def fingerprint(self, hash_files: Any = None) -> dict[str, Any]:
        """The raw input's fingerprint, the task, and the input columns a joined ``text`` was made
        from (``text_from``; `augment` swaps them with ``text`` so it stays their join)."""
        parts = list(getattr(self.bound, "text_cols", None) or ())
        return {**self.raw.fingerprint(hash_files), "task": self.task.name,
                **({"text_from": parts} if len(parts) > 1 else {})}
