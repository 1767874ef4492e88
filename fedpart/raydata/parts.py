"""One piece's rows, written as one part file per destination (client or test split).

A Ray task writes the rows of its piece of the input: part ``u`` of client ``c`` is
``clients/client-{c:05d}/part-{u:05d}.parquet`` (the test split: ``test/part-{u:05d}.parquet``), so
the part files of a client, in name order, hold its rows in input order. Files are opened only for
destinations that receive rows. Memory is bounded by ``buffer_bytes``: when the rows held reach it,
every destination's rows are written as one row group; parts never flushed are encoded and hashed in
memory (:func:`fedpart.io.shards.encode_parquet`). The bytes depend only on the piece, the
plan, the read batch size and ``buffer_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedpart.io.shards import CLIENTS_DIR, encode_parquet
from fedpart.verify import sha256_of
from fedpart.sorting import stable_order

TEST_DIR = "test"
DEFAULT_PART_BUFFER = 128 << 20


def shard_dir(destination: int) -> str:
    """A destination's directory relative to the partition directory (``-1``: the test split)."""
    return TEST_DIR if destination < 0 else f"{CLIENTS_DIR}/client-{destination:05d}"


def part_file(destination: int, piece: int) -> str:
    """The part file of ``piece`` for ``destination``, relative to the partition directory."""
    return f"{shard_dir(destination)}/part-{piece:05d}.parquet"


@dataclass(frozen=True)
class WrittenPart:
    """One written part file: its destination (client, ``-1`` for test), path, rows and sha256."""

    destination: int
    file: str
    rows: int
    sha256: str


class PartWriter:
    """Routes the rows of one piece to part files, one per destination that gets rows."""

    def __init__(
        self,
        directory: Path,
        piece: int,
        schema: pa.Schema,
        use_dictionary: bool | list[str] = True,
        buffer_bytes: int = DEFAULT_PART_BUFFER,
    ) -> None:
        self.directory, self.piece, self.schema = directory, piece, schema
        self.use_dictionary, self.buffer_bytes = use_dictionary, buffer_bytes
        self._pending: dict[int, list[pa.RecordBatch]] = {}
        self._pending_bytes = 0
        self._rows: dict[int, int] = {}
        self._writers: dict[int, pq.ParquetWriter] = {}

    def write(self, batch: pa.RecordBatch, destinations: np.ndarray) -> None:
        """Append each row of ``batch`` to its destination's part (client id, or -1 for test)."""
        shifted = destinations + 1  # test (-1) sorts first
        size = int(shifted.max(initial=0)) + 1
        order = stable_order(shifted, size)
        grouped = batch.take(pa.array(order))
        counts = np.bincount(shifted, minlength=size)
        starts = np.cumsum(counts) - counts
        for index in np.flatnonzero(counts):
            destination = int(index) - 1
            self._pending.setdefault(destination, []).append(
                grouped.slice(int(starts[index]), int(counts[index]))
            )
            self._rows[destination] = self._rows.get(destination, 0) + int(counts[index])
        self._pending_bytes += grouped.nbytes
        if self._pending_bytes >= self.buffer_bytes:
            self._flush()

    def _flush(self) -> None:
        for destination in sorted(self._pending):
            self._write(destination, self._pending[destination])
        self._pending, self._pending_bytes = {}, 0

    def _write(self, destination: int, slices: list[pa.RecordBatch]) -> None:
        table = pa.Table.from_batches(slices, schema=self.schema).combine_chunks()
        self._writer(destination).write_table(table, row_group_size=table.num_rows)

    def _writer(self, destination: int) -> pq.ParquetWriter:
        if destination not in self._writers:
            path = self.directory / part_file(destination, self.piece)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writers[destination] = pq.ParquetWriter(path, self.schema, use_dictionary=self.use_dictionary)
        return self._writers[destination]

    def close(self) -> list[WrittenPart]:
        """Write the pending rows, close every part file and checksum it; parts in destination order.

        A part whose rows were all still pending (the usual case: one flush-free piece) is encoded
        and hashed in memory and written with one call; the others get their last row group and are
        hashed from the file.
        """
        parts = []
        for destination in sorted(set(self._writers) | set(self._pending)):
            name = part_file(destination, self.piece)
            path = self.directory / name
            if destination not in self._writers:
                data, digest = encode_parquet(self._pending[destination], self.schema, self.use_dictionary)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            else:
                if destination in self._pending:
                    self._write(destination, self._pending[destination])
                self._writers[destination].close()
                digest = sha256_of(path)
            parts.append(WrittenPart(destination, name, self._rows[destination], digest))
        self._pending, self._pending_bytes, self._writers = {}, 0, {}
        return parts

    def abort(self) -> None:
        """Close open files without writing the pending rows (the caller removes the directory)."""
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def write_empty_part(directory: Path, destination: int, schema: pa.Schema, piece: int = 0) -> WrittenPart:
    """A valid empty part file, for a destination that no piece sent rows to."""
    name = part_file(destination, piece)
    data, digest = encode_parquet([], schema)
    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    return WrittenPart(destination, name, 0, digest)


def part_records(parts: list[WrittenPart]) -> list[dict[str, Any]]:
    """Manifest entries of one shard's parts, in piece order."""
    return [{"file": p.file, "rows": p.rows, "sha256": p.sha256} for p in parts]
