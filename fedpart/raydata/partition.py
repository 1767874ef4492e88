"""``fedpart partition --engine ray``: pass 1 and pass 2 of :func:`fedpart.engine.partition` on Ray Data.

The driver splits the input into pieces (:meth:`fedpart.io.sources.Source.split`), and
:class:`RayPasses` runs the local engine's functions on every piece in Ray Data tasks:

1. count: :func:`fedpart.counting.count_partial` per piece; the driver merges the partial tables
   (:func:`fedpart.counting.merge_counts`) -- the same counts, hence the same plan, as one pass.
2. assign and write: piece ``u`` starts every key's rank at the rows of that key in pieces
   ``0..u-1`` (prefix sums of pass 1's per-piece counts) and its row ids at the rows before it, so
   :class:`fedpart.assign.RowAssigner` gives each row the client the local engine gives it; the
   piece's rows go to part files (:mod:`fedpart.raydata.parts`), and per-client tallies come back.

Nothing is shuffled: each row is read twice (once per pass) and written once.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpart.assign import RowAssigner
from fedpart.counting import CountResult, PartialCounts, count_partial, merge_counts
from fedpart.errors import InputError
from fedpart.io.shards import DICTIONARY_SAMPLE, dictionary_columns
from fedpart.io.sources import Source, SourceUnit
from fedpart.manifest import parts_digest
from fedpart.plan import Plan
from fedpart.raydata.parts import DEFAULT_PART_BUFFER, PartWriter, WrittenPart, part_records, shard_dir, write_empty_part
from fedpart.raydata.session import guarded, ray_session, run_pieces, split_pieces
from fedpart.tasks.base import InvalidRowsError
from fedpart.verify import sha256_of

#: pieces are runs of Parquet row groups of at least this many rows (other formats: one file each)
DEFAULT_PIECE_ROWS = 1_000_000


@dataclass(frozen=True)
class PartedShard:
    """A shard written as a directory of part files (``parts``: manifest entries in row order)."""

    file: str
    rows: int
    sha256: str
    parts: list[dict[str, Any]]


@dataclass(frozen=True)
class _PieceCount:
    counts: PartialCounts | None  # None when the piece has invalid rows (and no --drop-invalid)
    rows_read: int  # input rows of the piece, invalid ones included (row ids count them)
    invalid: dict[str, int]
    error: InvalidRowsError | None = None  # the piece's invalid rows, positions within the piece


@dataclass(frozen=True)
class _PieceWritten:
    parts: list[WrittenPart]
    rows_seen: int
    label_tally: np.ndarray | None
    key_tally: np.ndarray | None


def _count_piece(piece: int, *, source: Any, units: Any, roles: Any) -> _PieceCount:
    reader = source.piece(units[piece])
    read = [*roles.counted, *([roles.group] if roles.group else [])] or [reader.schema.names[0]]
    try:
        counts = count_partial(
            reader.iter_batches(list(dict.fromkeys(read))), roles.counted, group_col=roles.group, group_key=roles.key
        )
    except InvalidRowsError as error:  # the driver reports every piece's, as one read of the whole input
        return _PieceCount(None, error.rows_read, dict(error.invalid), error)
    # task sources count the invalid rows they drop, which still take row ids
    rows_read = reader.rows_read if hasattr(reader, "rows_read") else counts.total_rows
    return _PieceCount(counts, rows_read, dict(reader.invalid))


def _write_piece(
    piece: int, *, source: Any, units: Any, roles: Any, plan: Any, counted: Any, group_assigner: Any,
    starts: Any, key_offsets: Any, out_schema: Any, use_dictionary: Any, directory: str, buffer_bytes: int,
) -> _PieceWritten:
    from fedpart.engine import make_tallies, route_rows

    key_counts = counted.values.get(roles.key) if roles.key else None
    label_counts = counted.values.get(roles.label) if roles.label else None
    reader = source.piece(units[piece])
    assigner = group_assigner if group_assigner is not None else RowAssigner(plan, start=key_offsets[piece])
    label_tally, key_tally = make_tallies(roles, plan.num_clients, key_counts, label_counts)
    writer = PartWriter(Path(directory), piece, out_schema, use_dictionary, buffer_bytes)
    try:
        rows_seen = route_rows(reader.iter_batches_with_ids(), roles, counted, assigner, writer, out_schema,
                               (label_tally, key_tally), first_row=int(starts[piece]))
        # each key's ranks must end where the next piece's start (pass 1), or two rows share a rank
        if group_assigner is None and not np.array_equal(assigner.seen, key_offsets[piece + 1]):
            raise InputError(f"{reader.description}: the input changed between the two passes")
        parts = writer.close()
    except BaseException:
        writer.abort()
        raise
    return _PieceWritten(
        parts, rows_seen,
        label_tally.counts if label_tally is not None else None,
        key_tally.counts if key_tally is not None else None,
    )


def _hash_file(index: int, *, files: Any) -> str:
    return sha256_of(files[index])


_count_task = guarded(_count_piece)
_write_task = guarded(_write_piece)
_hash_task = guarded(_hash_file)


def hash_files(files: list[str]) -> list[str]:
    """sha256 of every file, one Ray task per file (absolute paths: see :func:`split_pieces`)."""
    return run_pieces(_hash_task, len(files), files=[os.path.abspath(f) for f in files])


def _key_offsets(pieces: list[_PieceCount], key: str | None, counted: CountResult) -> list[np.ndarray]:
    """Per piece, the rows of every key code in the pieces before it (dense, O(keys) each), then
    the rows of every key in all pieces: piece ``u``'s ranks of each key run from ``offsets[u]``
    to ``offsets[u + 1]``."""
    n_keys = len(counted.values[key].values) if key else 1
    running = np.zeros(n_keys, dtype=np.int64)
    offsets = []
    for piece in pieces:
        offsets.append(running.copy())
        if key is None:
            running[0] += piece.counts.complete_rows
            continue
        table = piece.counts.values[key]
        if table is not None and table.num_rows:
            codes = pc.index_in(table.column("value"), value_set=counted.values[key].values)
            np.add.at(running, np.asarray(codes.to_numpy(), dtype=np.int64),
                      np.asarray(table.column("count").to_numpy(), dtype=np.int64))
    return [*offsets, running]


class RayPasses:
    """Pass 1 and pass 2 of the partition engine on Ray Data (same methods as the local engine's)."""

    def __init__(self, source: Source, address: str | None = None, piece_rows: int | None = None) -> None:
        """``piece_rows``: Parquet pieces hold at least this many rows (``None``: :data:`DEFAULT_PIECE_ROWS`)."""
        self.address = address
        self.units: list[SourceUnit] = split_pieces(source, piece_rows, DEFAULT_PIECE_ROWS)
        self._pieces: list[_PieceCount] = []

    def session(self) -> AbstractContextManager[Any]:
        """The Ray session both passes run in (joined, or started and stopped here)."""
        return ray_session(self.address)

    def count(self, source: Source, roles: Any, progress: Any) -> CountResult:
        bar = progress(f"pass 1/2: counting {len(self.units)} piece(s) on Ray", len(self.units))
        self._pieces = run_pieces(_count_task, len(self.units), source=source, units=self.units, roles=roles)
        if bar is not None:
            bar.update(len(self.units))
            bar.close()
        error = InvalidRowsError.merged(source.description, [(p.rows_read, p.error) for p in self._pieces])
        if error is not None:
            raise error
        return merge_counts([p.counts for p in self._pieces], roles.counted, roles.group, roles.key)

    def invalid(self, source: Source) -> dict[str, int]:
        total: dict[str, int] = {}
        for piece in self._pieces:
            for reason, n in piece.invalid.items():
                total[reason] = total.get(reason, 0) + n
        return total

    def fingerprint(self, source: Source) -> dict[str, Any]:
        """The input's fingerprint, its files hashed in parallel Ray tasks (not all on the driver)."""
        return source.fingerprint(hash_files)

    def manifest_extra(self) -> dict[str, Any]:
        return {"engine": {"name": "ray", "pieces": len(self.units)}}

    def assign_and_write(
        self, source: Source, roles: Any, plan: Plan, counted: CountResult, directory: Path,
        buffer_bytes: int | None, progress: Any,
    ) -> Any:
        """Pass 2, one Ray task per piece; ``buffer_bytes`` per task (``None``: :data:`DEFAULT_PART_BUFFER`)."""
        from fedpart.engine import WrittenShards
        from fedpart.grouping import GroupAssigner

        rows_read = np.array([p.rows_read for p in self._pieces], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(rows_read)[:-1]]).astype(np.int64)
        group_assigner = GroupAssigner(plan, counted.groups) if counted.groups is not None else None
        offsets = None if group_assigner is not None else _key_offsets(self._pieces, roles.key, counted)
        out_schema = source.schema.append(pa.field(roles.row_id, pa.int64(), nullable=False))
        bar = progress(f"pass 2/2: writing {len(self.units)} piece(s) on Ray", len(self.units))
        written: list[_PieceWritten] = run_pieces(
            _write_task, len(self.units), source=source, units=self.units, roles=roles, plan=plan,
            counted=counted, group_assigner=group_assigner, starts=starts, key_offsets=offsets,
            out_schema=out_schema, use_dictionary=_dictionary(source, out_schema, self.units),
            directory=str(directory), buffer_bytes=DEFAULT_PART_BUFFER if buffer_bytes is None else buffer_bytes,
        )
        if bar is not None:
            bar.update(len(self.units))
            bar.close()
        for counted_piece, piece in zip(self._pieces, written):  # rows read and kept as pass 1 counted
            kept = sum(part.rows for part in piece.parts)
            if (piece.rows_seen, kept) != (counted_piece.counts.total_rows, counted_piece.counts.complete_rows):
                raise InputError(f"{source.description}: the input changed between the two passes")
        return WrittenShards(
            _shards(written, plan, directory, out_schema),
            _summed([w.label_tally for w in written]),
            _summed([w.key_tally for w in written]),
        )


def _dictionary(source: Source, schema: pa.Schema, units: list[SourceUnit]) -> bool | list[str]:
    """Which columns the parts dictionary-encode, judged on the input's first rows as locally."""
    sample: list[pa.RecordBatch] = []
    rows = 0
    for unit in units:
        for batch, positions in source.piece(unit).iter_batches_with_ids():
            batch = pa.RecordBatch.from_arrays([*batch.columns, pa.array(positions)], schema=schema)
            sample.append(batch.slice(0, DICTIONARY_SAMPLE - rows))
            rows += sample[-1].num_rows
            if rows >= DICTIONARY_SAMPLE:
                break
        if rows >= DICTIONARY_SAMPLE:
            break
    return dictionary_columns(schema, pa.Table.from_batches(sample, schema=schema))


def _summed(tallies: list[np.ndarray | None]) -> np.ndarray | None:
    present = [t for t in tallies if t is not None]
    return np.sum(present, axis=0) if present else None


def _shards(written: list[_PieceWritten], plan: Plan, directory: Path, schema: pa.Schema) -> list[PartedShard]:
    """One :class:`PartedShard` per client, then the test split if the plan holds one out."""
    by_destination: dict[int, list[WrittenPart]] = {}
    for piece in written:  # pieces in input order, so each destination's parts are in row order
        for part in piece.parts:
            by_destination.setdefault(part.destination, []).append(part)
    destinations = list(range(plan.num_clients)) + ([-1] if plan.holdout.sum() > 0 else [])
    shards = []
    for destination in destinations:
        parts = by_destination.get(destination) or [write_empty_part(directory, destination, schema)]
        records = part_records(parts)
        shards.append(PartedShard(shard_dir(destination), sum(p.rows for p in parts), parts_digest(records), records))
    return shards
