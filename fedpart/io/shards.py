"""Writing rows to one Parquet file per client, with bounded memory.

Each batch is gathered once so that every client's rows are contiguous, and clients keep
zero-copy slices of it. When the slices held reach ``buffer_bytes`` the clients holding the most
bytes are written (one row group each) until :data:`FLUSH_FRACTION` of the buffer is written, and
the others' rows are copied out compactly so the shared batches can be freed -- unless the rest of
the input fits in :data:`TAIL_ALLOWANCE` buffers, since the last write (in
:meth:`ShardWriter.close`) is coming anyway. A flush runs in the background while the next batches
arrive; when the rows it writes and the pending ones would pass ``TAIL_ALLOWANCE * buffer_bytes``
the caller waits for it. Memory is therefore bounded by about :func:`memory_bound` (1.75 buffers:
the allowance plus the copies of a flush) whatever the number of rows, and the row groups (hence
the bytes) depend only on the input, the plan, the read batch size and ``buffer_bytes`` -- never on
the thread schedule.

Every shard's sha256 is computed while it is written: a shard written in one go is encoded in
memory and hashed there; a shard written in several row groups is hashed a row group at a time,
read back just after it is written (from the page cache), so no file is read again at the end.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fedpart.errors import OutputError
from fedpart.sorting import stable_order

DEFAULT_BUFFER_BYTES = 192 << 20
#: a flush writes the largest clients until this fraction of the pending bytes is written and
#: copies the rest (at 10M rows x 1000 clients, 3/4 takes half the copying time of 1/2 and writes
#: 12 % more row groups)
FLUSH_FRACTION = 0.75
#: a flush is skipped when the rest of the input fits with the pending rows in this many buffers
TAIL_ALLOWANCE = 1.5
#: shards written in one go up to this size are encoded in memory (one per writer thread at a time)
MAX_IN_MEMORY_FILE = 64 << 20
#: most threads writing shards: the reading and assigning thread keeps about four busy. More add no
#: speed but each keeps its allocator's freed pages (at 10M rows x 1000 clients on 16 cores: the same
#: wall time as 8 threads, about 100 MiB less peak RSS)
MAX_WRITER_THREADS = 4
#: a file written in several row groups is hashed as it is written, reading back this much at a time
HASH_BLOCK = 1 << 20
#: which columns repeat is judged on the input's first DICTIONARY_SAMPLE rows (whatever the batches)
MIN_DICTIONARY_SAMPLE, DICTIONARY_SAMPLE = 1_000, 8_192
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


def dictionary_columns(schema: pa.Schema, sample: pa.Table) -> bool | list[str]:
    """The ``use_dictionary`` argument for shards of ``schema``: every column (Parquet leaf path)
    except the flat ones whose values in ``sample`` (the input's first rows) are mostly distinct.

    Dictionary encoding pays off for repeated values (labels, categories). For mostly distinct
    values (text, row ids) it hashes every value and writes a dictionary as large as the data plus
    an index page: Parquet falls back to plain encoding only past a 1 MiB dictionary, which small
    client shards never reach. A sample of fewer than :data:`MIN_DICTIONARY_SAMPLE` rows says too
    little: then every column is dictionary-encoded, as Parquet does by default.
    """
    if sample.num_rows < MIN_DICTIONARY_SAMPLE:
        return True
    distinct_columns = set()
    for field, column in zip(schema, sample.columns):
        if pa.types.is_nested(field.type) or pa.types.is_dictionary(field.type):
            continue
        try:
            distinct = pc.count_distinct(column, mode="only_valid").as_py()
        except pa.ArrowNotImplementedError:  # e.g. view types: keep Parquet's default
            continue
        if distinct > (len(column) - column.null_count) // 2:
            distinct_columns.add(field.name)
    if not distinct_columns:
        return True
    sink = pa.BufferOutputStream()  # Parquet's leaf paths of the schema, e.g. "tags.list.element"
    pq.write_table(schema.empty_table(), sink)
    parquet_schema = pq.read_metadata(pa.BufferReader(sink.getvalue())).schema
    paths = [parquet_schema.column(i).path for i in range(len(parquet_schema))]
    return [p for p in paths if p not in distinct_columns] or False


def memory_bound(buffer_bytes: int) -> float:
    """About the most bytes of rows a :class:`ShardWriter` holds at once, for its ``buffer_bytes``:
    the rows of a flush in flight and the pending ones (the tail allowance), plus the copies of the
    rows a flush does not write. The Parquet encoder's working buffers for the row groups being
    written (at most one per pool thread) come on top."""
    return (TAIL_ALLOWANCE + 1 - FLUSH_FRACTION) * buffer_bytes


def writer_threads() -> int:
    """Threads of a :class:`ShardWriter`'s pool: the CPUs this process may use, at most
    :data:`MAX_WRITER_THREADS`."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_WRITER_THREADS, usable or 1))


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
    The work runs in a small thread pool while the caller reads and assigns the next batches: the
    gather of each batch, and each flush's writes and copies. What is written where is decided in
    :meth:`write`'s thread from row counts and batch sizes only, so the bytes never depend on the
    thread schedule.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        num_clients: int,
        with_test: bool = False,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        expected_rows: int | None = None,
    ) -> None:
        """``expected_rows``: how many rows :meth:`write` will receive in all, if known."""
        self.directory = directory
        self.schema = schema
        self.num_clients = num_clients
        self.files = [client_file(c) for c in range(num_clients)] + ([TEST_FILE] if with_test else [])
        ensure_open_file_limit(len(self.files))
        self.buffer_bytes = buffer_bytes
        self.expected_rows = expected_rows
        self._received_bytes = 0
        # per file: zero-copy slices of grouped batches, or a pool job copying earlier rows out
        self._pending: list[list[pa.RecordBatch | Future[pa.RecordBatch]]] = [[] for _ in self.files]
        self._pending_bytes = 0
        # batches whose gather runs in the pool, in input order, with their rows per file
        self._gathering: deque[tuple[Future[pa.RecordBatch], np.ndarray]] = deque()
        self._flushing: list[Future[None]] = []  # the jobs of the flush in flight
        self._flushing_bytes = 0
        self._rows = np.zeros(len(self.files), dtype=np.int64)
        self._writers: list[pq.ParquetWriter | None] = [None] * len(self.files)
        self._sinks: list[pa.NativeFile | None] = [None] * len(self.files)
        self._digests: list[Any] = [None] * len(self.files)  # running sha256 of files written in parts
        self._hashed = [0] * len(self.files)  # bytes of each file already in its digest
        self._executor: ThreadPoolExecutor | None = None
        self._client_bytes = np.zeros(len(self.files), dtype=np.float64)
        self._dictionary: bool | list[str] = True
        self._sample: list[pa.RecordBatch] | None = []  # the first rows, until _dictionary is decided
        (directory / CLIENTS_DIR).mkdir(parents=True, exist_ok=True)

    def write(self, batch: pa.RecordBatch, destinations: np.ndarray) -> None:
        """Append each row of ``batch`` to the file of its destination (client id, or -1 for test)."""
        dest = np.where(destinations < 0, self.num_clients, destinations)
        if dest.max(initial=-1) >= len(self.files):
            raise ValueError("destination outside the clients (or test without with_test)")
        if self._sample is not None:
            self._sample.append(batch.slice(0, DICTIONARY_SAMPLE))
            if sum(b.num_rows for b in self._sample) >= DICTIONARY_SAMPLE:
                self._decide_encoding()
        counts = np.bincount(dest, minlength=len(self.files))
        # one gather puts every client's rows next to each other (clients keep zero-copy slices);
        # it runs in the pool while the caller reads and assigns the next batch
        self._gathering.append((self._pool().submit(_group_rows, batch, dest, len(self.files)), counts))
        self._distribute(wait=False)
        self._rows += counts
        # each client's share of the batch's bytes, by rows (an estimate; the total is exact)
        self._client_bytes += counts * (batch.nbytes / max(batch.num_rows, 1))
        self._pending_bytes += batch.nbytes
        self._received_bytes += batch.nbytes
        if self._pending_bytes >= self.buffer_bytes and not self._rest_fits():
            self._decide_encoding()  # on fewer rows only if the buffer is smaller than the sample
            self._flush_largest()
        elif self._pending_bytes + self._flushing_bytes > TAIL_ALLOWANCE * self.buffer_bytes:
            self._settle()  # the rows being written and the pending ones would pass the allowance

    def _decide_encoding(self) -> None:
        """Choose the dictionary-encoded columns from the sample, before any file is opened."""
        if self._sample is not None:
            sample = pa.Table.from_batches(self._sample, schema=self.schema).slice(0, DICTIONARY_SAMPLE)
            self._dictionary = dictionary_columns(self.schema, sample)
            self._sample = None

    def _rest_fits(self) -> bool:
        """Whether the rows still to come fit, with the pending ones, in the tail allowance: then a
        flush now would only split the clients' last row groups in two (and copy part of the buffer)."""
        received = int(self._rows.sum())
        if self.expected_rows is None or received == 0:
            return False
        rest = max(self.expected_rows - received, 0) * self._received_bytes / received
        return self._pending_bytes + rest <= TAIL_ALLOWANCE * self.buffer_bytes

    def _distribute(self, wait: bool = True) -> None:
        """Hand the gathered batches' slices to their files, in input order; without ``wait`` only
        the batches whose gather has finished (the slices are the same either way)."""
        while self._gathering and (wait or self._gathering[0][0].done()):
            future, counts = self._gathering.popleft()
            grouped = future.result()
            starts = np.cumsum(counts) - counts
            for index in np.flatnonzero(counts):
                self._pending[index].append(grouped.slice(int(starts[index]), int(counts[index])))

    def _settle(self) -> None:
        """Wait for the flush in flight and the gathers; afterwards every pending item is a slice."""
        flushing, self._flushing, self._flushing_bytes = self._flushing, [], 0
        for future in flushing:
            future.result()  # re-raises a failed write here
        for items in self._pending:
            if items and isinstance(items[0], Future):  # a copy of earlier rows comes first
                items[0] = items[0].result()
        self._distribute()

    def _flush_largest(self) -> None:
        """Start writing the clients holding the most pending bytes, until :data:`FLUSH_FRACTION`
        of them is written, and copying the rest out of the shared batches so those can be freed.

        Large clients then get large row groups and small ones are written rarely, instead of every
        client getting a tiny row group at every flush. Deterministic: ties go to the lower index.
        The flush runs in the pool; the next one (or :meth:`close`) waits for it.
        """
        self._settle()
        order = np.argsort(-self._client_bytes, kind="stable")
        written = np.cumsum(self._client_bytes[order])
        cut = int(np.searchsorted(written, written[-1] * FLUSH_FRACTION)) + 1
        flush = [int(i) for i in order[:cut] if self._pending[i]]
        kept = [int(i) for i in order[cut:] if self._pending[i]]
        pool = self._pool()
        # largest first (order is by pending bytes): the longest jobs start early
        self._flushing = [pool.submit(self._write_rows, index, self._pending[index]) for index in flush]
        for index in kept:
            self._pending[index] = [pool.submit(_compact, self._pending[index], self.schema)]
        self._flushing_bytes = int(self._client_bytes[flush].sum())
        for index in flush:
            self._pending[index] = []
            self._client_bytes[index] = 0.0
        self._pending_bytes = int(self._client_bytes[kept].sum())

    def _write_rows(self, index: int, slices: list[pa.RecordBatch]) -> None:
        _write_row_group(self._writer(index), slices, self.schema)
        self._hash_written(index)

    def _hash_written(self, index: int) -> None:
        """Add the bytes written to the file since the last call to its running sha256.

        They were just written, so they are read back from the page cache (and mostly the CPU
        cache), instead of the whole file once more at the end.
        """
        end = self._sinks[index].tell()
        start = self._hashed[index]
        if end > start:
            digest = self._digests[index]
            with open(self.directory / self.files[index], "rb", buffering=0) as handle:
                handle.seek(start)
                while start < end:
                    block = handle.read(min(end - start, HASH_BLOCK))
                    if not block:
                        raise OutputError(f"{self.directory / self.files[index]}: shorter than written")
                    digest.update(block)
                    start += len(block)
            self._hashed[index] = end

    def _finish(self, index: int) -> str:
        """Write the file's last rows and close it (an empty client gets a valid empty file);
        return the sha256 of its bytes."""
        slices = self._pending[index]
        if self._writers[index] is None and self._client_bytes[index] <= MAX_IN_MEMORY_FILE:
            # a file written in one go is encoded in memory, hashed there and written with one call:
            # no re-read to hash it, no small writes of page headers
            data, digest = encode_parquet(slices, self.schema, self._dictionary)
            with open(self.directory / self.files[index], "wb") as handle:
                handle.write(data)
            return digest
        if slices:
            _write_row_group(self._writer(index), slices, self.schema)
        self._writer(index).close()  # writes the footer; the sink stays open for its position
        self._hash_written(index)
        self._sinks[index].close()
        return self._digests[index].hexdigest()

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # Parquet encoding, take, hashing and file writes release the GIL
            self._executor = ThreadPoolExecutor(max_workers=writer_threads(), thread_name_prefix="fedpart-shards")
        return self._executor

    def _writer(self, index: int) -> pq.ParquetWriter:
        writer = self._writers[index]
        if writer is None:
            sink = pa.OSFile(str(self.directory / self.files[index]), "wb")  # unbuffered: tell() is on disk
            self._sinks[index] = sink
            self._digests[index] = hashlib.sha256()
            writer = _open_writer(sink, self.schema, self._dictionary)
            self._writers[index] = writer
        return writer

    def close(self) -> list[WrittenShard]:
        """Write every client's pending rows as one row group, close every file and checksum them.

        Returns one :class:`WrittenShard` per client in client order, then the test file if any.
        """
        self._decide_encoding()
        self._settle()
        order = [int(i) for i in np.argsort(-self._client_bytes, kind="stable")]
        # largest first, so that the pool's threads end together
        digests = dict(zip(order, self._pool().map(self._finish, order)))
        self._pending = [[] for _ in self.files]
        if self._executor is not None:
            self._executor.shutdown()
        return [
            WrittenShard(name, int(rows), digests[index])
            for index, (name, rows) in enumerate(zip(self.files, self._rows))
        ]

    def abort(self) -> None:
        """Close open files without flushing (the caller removes the directory)."""
        if self._executor is not None:  # jobs not started yet are dropped, running ones finish
            self._executor.shutdown(wait=True, cancel_futures=True)
        for writer, sink in zip(self._writers, self._sinks):
            if writer is not None:
                try:
                    writer.close()
                except (pa.ArrowException, OSError):  # e.g. the disk is full: the file goes anyway
                    pass
            if sink is not None:
                sink.close()


def encode_parquet(
    rows: pa.Table | Sequence[pa.RecordBatch], schema: pa.Schema, use_dictionary: bool | list[str] = True
) -> tuple[pa.Buffer, str]:
    """The bytes of one Parquet file holding ``rows`` as one row group, and their sha256.

    ``use_dictionary`` as from :func:`dictionary_columns`. No rows gives a valid file without row
    groups. The bytes depend only on the rows, the schema and ``use_dictionary``, not on how the
    rows are cut into batches or chunks.
    """
    slices = [b for b in (rows.to_batches() if isinstance(rows, pa.Table) else rows) if b.num_rows]
    sink = pa.BufferOutputStream()
    with _open_writer(sink, schema, use_dictionary) as writer:
        if slices:
            _write_row_group(writer, slices, schema)
    data = sink.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _open_writer(sink: pa.NativeFile, schema: pa.Schema, use_dictionary: bool | list[str]
                 ) -> pq.ParquetWriter:
    return pq.ParquetWriter(sink, schema, use_dictionary=use_dictionary)


def _group_rows(batch: pa.RecordBatch, dest: np.ndarray, files: int) -> pa.RecordBatch:
    """``batch``'s rows ordered by destination, input order kept within each."""
    return batch.take(pa.array(stable_order(dest, files)))


def _write_row_group(writer: pq.ParquetWriter, slices: list[pa.RecordBatch], schema: pa.Schema) -> None:
    # one chunk per column: encoding many small chunks costs more than copying them together
    batch = slices[0] if len(slices) == 1 else _compact(slices, schema)
    writer.write_batch(batch, row_group_size=batch.num_rows)


def _compact(slices: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    """One batch holding a copy of ``slices``' rows, so the batches they are cut from can be freed."""
    if hasattr(pa, "concat_batches"):  # pyarrow >= 19: one C++ call instead of one per column
        return pa.concat_batches(slices)
    columns = [pa.concat_arrays([s.column(i) for s in slices]) for i in range(len(schema))]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
