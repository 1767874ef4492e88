"""Writing rows to one Parquet file per client, with bounded memory.

Rows routed to a client are kept as zero-copy slices of the batch they came from; when the slices
held reach ``buffer_bytes`` the clients holding the most rows are written (one row group each) until
half the buffer is written, and the others' rows are copied out compactly so the shared batches can
be freed. Memory is therefore
bounded by ``buffer_bytes`` plus one batch, whatever the number of rows, and the row groups (hence
the bytes) depend only on the input, the plan, the read batch size and ``buffer_bytes``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedpart.errors import OutputError
from fedpart.io.sources import sha256_file
from fedpart.sorting import stable_order

DEFAULT_BUFFER_BYTES = 192 << 20
CLIENTS_DIR = "clients"
TEST_FILE = "test.parquet"


def ensure_open_file_limit(files: int, margin: int = 64) -> None:
    """Raise the soft limit on open files so ``files`` shards can be open at once (POSIX only).

    Every shard stays open until the end of pass 2; the usual soft limit (1024 on Linux, 256 on
    macOS) is lower than the number of clients of a natural split, while the hard limit rarely is.

    Raises:
        OutputError: the hard limit is too low to raise the soft limit far enough.
    """
    try:
        import resource
    except ImportError:  # Windows: the C runtime limit is not adjustable here
        return
    need = files + margin
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    try:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < need:
        raise OutputError(
            f"writing {files} shard files at once needs about {need} open files but the limit is {soft}; "
            f"raise it (ulimit -n {need}) or use fewer --clients"
        )


def client_file(client_id: int) -> str:
    """Path of a client's shard relative to the partition directory."""
    return f"{CLIENTS_DIR}/client-{client_id:05d}.parquet"


@dataclass(frozen=True)
class WrittenShard:
    """One written Parquet file: path relative to the output dir, row count, sha256 of its bytes."""

    file: str
    rows: int
    sha256: str


class ShardWriter:
    """Routes rows of record batches to ``num_clients`` client files (and optionally a test file).

    Use :meth:`write` for every batch, then :meth:`close` once; destination ``-1`` is the test split.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        num_clients: int,
        with_test: bool = False,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        self.directory = directory
        self.schema = schema
        self.num_clients = num_clients
        self.files = [client_file(c) for c in range(num_clients)] + ([TEST_FILE] if with_test else [])
        ensure_open_file_limit(len(self.files))
        self.buffer_bytes = buffer_bytes
        self._pending: list[list[pa.RecordBatch]] = [[] for _ in self.files]
        self._pending_bytes = 0
        self._rows = np.zeros(len(self.files), dtype=np.int64)
        self._writers: list[pq.ParquetWriter | None] = [None] * len(self.files)
        self._executor: ThreadPoolExecutor | None = None
        self._client_bytes = np.zeros(len(self.files), dtype=np.float64)
        (directory / CLIENTS_DIR).mkdir(parents=True, exist_ok=True)

    def write(self, batch: pa.RecordBatch, destinations: np.ndarray) -> None:
        """Append each row of ``batch`` to the file of its destination (client id, or -1 for test)."""
        dest = np.where(destinations < 0, self.num_clients, destinations)
        if dest.max(initial=-1) >= len(self.files):
            raise ValueError("destination outside the clients (or test without with_test)")
        order = stable_order(dest, len(self.files))
        grouped = batch.take(pa.array(order))
        counts = np.bincount(dest, minlength=len(self.files))
        starts = np.cumsum(counts) - counts
        for index in np.flatnonzero(counts):
            self._pending[index].append(grouped.slice(int(starts[index]), int(counts[index])))
        self._rows += counts
        # each client's share of the batch's bytes, by rows (an estimate; the total is exact)
        self._client_bytes += counts * (grouped.nbytes / max(batch.num_rows, 1))
        self._pending_bytes += grouped.nbytes
        if self._pending_bytes >= self.buffer_bytes:
            self._flush_largest()

    def _flush_largest(self) -> None:
        """Write the clients holding the most pending bytes, until half the buffer is written, and
        copy the rest out of the shared batches so those can be freed.

        Large clients then get large row groups and small ones are written rarely, instead of every
        client getting a tiny row group at every flush. Deterministic: ties go to the lower index.
        """
        order = np.argsort(-self._client_bytes, kind="stable")
        written = np.cumsum(self._client_bytes[order])
        cut = int(np.searchsorted(written, written[-1] / 2)) + 1
        flush = sorted(int(i) for i in order[:cut] if self._pending[i])
        self._write_jobs([(index, self._pending[index]) for index in flush])
        kept = 0.0
        for index in order[cut:]:
            slices = self._pending[index]
            if slices:  # one compact copy (slices are never empty), so the shared batches are released
                compact = pa.Table.from_batches(slices, schema=self.schema).combine_chunks()
                self._pending[index] = compact.to_batches()
                kept += self._client_bytes[index]
        for index in flush:
            self._pending[index] = []
            self._client_bytes[index] = 0.0
        self._pending_bytes = int(kept)

    def flush(self) -> None:
        """Write every client's pending rows as one row group."""
        jobs = [(index, slices) for index, slices in enumerate(self._pending) if slices]
        self._pending = [[] for _ in self.files]
        self._client_bytes[:] = 0.0
        self._pending_bytes = 0
        self._write_jobs(jobs)

    def _write_jobs(self, jobs: list[tuple[int, list[pa.RecordBatch]]]) -> None:
        # Files are written concurrently (Parquet encoding releases the GIL); each file still gets
        # its row groups in order, so the bytes do not depend on the thread schedule.
        for index, _ in jobs:
            self._writer(index)  # open files here, not in threads
        list(self._pool().map(self._write_group, jobs))

    def _write_group(self, job: tuple[int, list[pa.RecordBatch]]) -> None:
        index, slices = job
        table = pa.Table.from_batches(slices, schema=self.schema)
        self._writers[index].write_table(table, row_group_size=table.num_rows)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)))
        return self._executor

    def _writer(self, index: int) -> pq.ParquetWriter:
        writer = self._writers[index]
        if writer is None:
            writer = pq.ParquetWriter(self.directory / self.files[index], self.schema)
            self._writers[index] = writer
        return writer

    def close(self) -> list[WrittenShard]:
        """Flush, close every file (empty clients get a valid empty file) and checksum them.

        Returns one :class:`WrittenShard` per client in client order, then the test file if any.
        """
        self.flush()
        for index in range(len(self.files)):
            self._writer(index).close()
        digests = list(self._pool().map(lambda name: sha256_file(str(self.directory / name)), self.files))
        if self._executor is not None:
            self._executor.shutdown()
        return [
            WrittenShard(name, int(rows), digest) for name, rows, digest in zip(self.files, self._rows, digests)
        ]

    def abort(self) -> None:
        """Close open files without flushing (the caller removes the directory)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        for writer in self._writers:
            if writer is not None:
                writer.close()
