"""ShardWriter: bounded memory, the tail allowance, in-memory shards, dictionary encoding by column."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fedpart.io.shards as shards
from fedpart.io.shards import ShardWriter, dictionary_columns

SCHEMA = pa.schema([("text", pa.string()), ("label", pa.int64()), ("row_id", pa.int64())])


def make_batches(rows: int, batch_rows: int, seed: int = 0) -> list[pa.RecordBatch]:
    """Unique ~100-byte texts, 5 repeated labels, row ids: like a corpus with fedpart's row_id column."""
    letters = np.random.default_rng(seed).integers(ord("a"), ord("h") + 1, size=(rows, 90), dtype=np.uint8)
    text = [f"document {i} " + chars.tobytes().decode() for i, chars in enumerate(letters)]
    table = pa.table({"text": text, "label": np.arange(rows) % 5, "row_id": np.arange(rows)}, schema=SCHEMA)
    return table.to_batches(max_chunksize=batch_rows)


def destinations(batches: list[pa.RecordBatch], clients: int, seed: int = 1, skew: float = 1.0) -> list[np.ndarray]:
    """Random clients; with ``skew < 1`` client ``k`` is ``skew**k`` times as likely as client 0."""
    rng = np.random.default_rng(seed)
    p = skew ** np.arange(clients)
    return [rng.choice(clients, size=b.num_rows, p=p / p.sum()) for b in batches]


def write_all(directory, batches, dests, clients: int, **options) -> list[shards.WrittenShard]:
    writer = ShardWriter(directory, SCHEMA, clients, **options)
    for batch, dest in zip(batches, dests):
        writer.write(batch, dest)
    return writer.close()


def read_clients(directory, written) -> list[pa.Table]:
    return [pq.read_table(directory / shard.file) for shard in written]


def row_groups(directory, written) -> list[int]:
    return [pq.ParquetFile(directory / shard.file).num_row_groups for shard in written]


def test_every_row_lands_in_its_client_in_input_order_and_checksums_match(tmp_path):
    batches = make_batches(3000, 700)
    dests = destinations(batches, 7)
    written = write_all(tmp_path, batches, dests, 7)
    everything = pa.Table.from_batches(batches)
    dest = np.concatenate(dests)
    for client, (shard, table) in enumerate(zip(written, read_clients(tmp_path, written))):
        expected = everything.filter(pa.array(dest == client))
        assert table.equals(expected) and shard.rows == expected.num_rows
        assert shard.sha256 == hashlib.sha256((tmp_path / shard.file).read_bytes()).hexdigest()


def test_in_memory_and_streamed_shards_are_the_same_bytes(tmp_path, monkeypatch):
    batches = make_batches(2000, 500)
    dests = destinations(batches, 4)
    in_memory = write_all(tmp_path / "memory", batches, dests, 4)
    monkeypatch.setattr(shards, "MAX_IN_MEMORY_FILE", -1)  # every file through a ParquetWriter on disk
    streamed = write_all(tmp_path / "disk", batches, dests, 4)
    assert [s.sha256 for s in in_memory] == [s.sha256 for s in streamed]
    for a, b in zip(in_memory, streamed):
        assert (tmp_path / "memory" / a.file).read_bytes() == (tmp_path / "disk" / b.file).read_bytes()


def test_a_buffer_exceeded_only_by_the_tail_of_the_input_is_not_flushed(tmp_path):
    batches = make_batches(4000, 500)
    dests = destinations(batches, 5)
    total = sum(b.nbytes for b in batches)
    buffer = int(total * 0.8)  # the last fifth of the input overflows the buffer
    known = write_all(tmp_path / "known", batches, dests, 5, buffer_bytes=buffer, expected_rows=4000)
    unknown = write_all(tmp_path / "unknown", batches, dests, 5, buffer_bytes=buffer)
    assert row_groups(tmp_path / "known", known) == [1] * 5  # one row group per client, no flush
    assert max(row_groups(tmp_path / "unknown", unknown)) == 2  # flushed, then the rest at close
    assert read_clients(tmp_path / "known", known) == read_clients(tmp_path / "unknown", unknown)
    # the allowance is bounded: a rest larger than half a buffer is flushed as before
    small = write_all(tmp_path / "small", batches, dests, 5, buffer_bytes=total // 3, expected_rows=4000)
    assert max(row_groups(tmp_path / "small", small)) > 1


@pytest.mark.parametrize("expected_rows", [None, "known"])
def test_memory_stays_bounded_by_the_buffer_whatever_the_rows(tmp_path, expected_rows, monkeypatch):
    batch_rows, buffer, rounds = 2000, 4 << 20, 30
    batches = make_batches(4 * batch_rows, batch_rows)  # reused: the writer copies what it keeps
    total_rows = rounds * 4 * batch_rows
    writer = ShardWriter(tmp_path, SCHEMA, 200, buffer_bytes=buffer,
                         expected_rows=total_rows if expected_rows else None)
    baseline, peak = pa.total_allocated_bytes(), [0]
    write_rows = shards._write_row_group

    def measured(*args):  # flushes run in the background: measure while they write, too
        write_rows(*args)
        peak[0] = max(peak[0], pa.total_allocated_bytes() - baseline)

    monkeypatch.setattr(shards, "_write_row_group", measured)
    for i in range(rounds):  # 7x the buffer in all; sizes as skewed as a Dirichlet split's
        for batch, dest in zip(batches, destinations(batches, 200, seed=i, skew=0.97)):
            writer.write(batch, dest)
            peak[0] = max(peak[0], pa.total_allocated_bytes() - baseline)
    written = writer.close()
    assert sum(s.rows for s in written) == total_rows
    # the pending rows, a flush in flight and its copies, never the whole input (7 buffers); the slack
    # is for the Parquet encoder's buffers of the row groups being written, which a loaded machine can
    # make overlap (seen: 3 batches over the bound once in CI)
    assert peak[0] < shards.memory_bound(buffer) + 5 * batches[0].nbytes
    assert max(row_groups(tmp_path, written)) > 1


def test_kept_rows_are_copied_out_of_the_batch_they_came_from():
    # a client holding a single slice must not pin the whole batch once the others are written
    batch = make_batches(1000, 1000)[0]
    compact = shards._compact([batch.slice(10, 5)], SCHEMA)
    assert compact.equals(batch.slice(10, 5))
    assert sum(buf.size for col in compact.columns for buf in col.buffers() if buf is not None) < batch.nbytes / 50


def test_mostly_distinct_columns_are_not_dictionary_encoded(tmp_path):
    batches = make_batches(3000, 3000)
    written = write_all(tmp_path, batches, destinations(batches, 3), 3)
    chunks = pq.ParquetFile(tmp_path / written[0].file).metadata.row_group(0)
    encoded = {chunks.column(i).path_in_schema: chunks.column(i).has_dictionary_page for i in range(3)}
    assert encoded == {"text": False, "label": True, "row_id": False}


def test_dictionary_columns_keeps_nested_and_repeated_columns_and_needs_a_real_sample():
    schema = pa.schema([("text", pa.string()), ("tags", pa.list_(pa.string())), ("label", pa.string()),
                        ("score", pa.float64())])
    n = 2000
    sample = pa.table({"text": [f"t{i}" for i in range(n)], "tags": [["a", f"b{i}"] for i in range(n)],
                       "label": [["pos", "neg"][i % 2] for i in range(n)], "score": [i / 7 for i in range(n)]},
                      schema=schema)
    assert dictionary_columns(schema, sample) == ["tags.list.element", "label"]
    assert dictionary_columns(schema, sample.slice(0, 999)) is True  # too few rows to judge
    repeated = pa.table({name: sample.column(name).take([0, 1] * (n // 2)) for name in schema.names})
    assert dictionary_columns(schema, repeated) is True
    only_unique = pa.schema([("text", pa.string())])
    assert dictionary_columns(only_unique, sample.select(["text"])) is False


@pytest.mark.parametrize("batch_rows", [333, 10_000])
def test_the_encoding_does_not_depend_on_the_batches(tmp_path, batch_rows):
    reference = make_batches(10_000, 10_000)
    dest = destinations(reference, 3)[0]
    base = write_all(tmp_path / "base", reference, [dest], 3)
    batches = make_batches(10_000, batch_rows)
    cuts = np.cumsum([b.num_rows for b in batches])[:-1]
    other = write_all(tmp_path / "other", batches, np.split(dest, cuts), 3)
    assert [s.sha256 for s in base] == [s.sha256 for s in other]


def test_the_bytes_do_not_depend_on_the_thread_schedule(tmp_path, monkeypatch):
    # gathers and flushes run in a pool: with one thread, or several whose jobs finish in a random
    # order, every file must get the same row groups, bytes and checksum (flushes included)
    batches = make_batches(6000, 500)
    dests = destinations(batches, 9, skew=0.8)
    options = dict(buffer_bytes=sum(b.nbytes for b in batches) // 6, expected_rows=6000)
    monkeypatch.setattr(shards, "writer_threads", lambda: 1)
    serial = write_all(tmp_path / "serial", batches, dests, 9, **options)

    rng = np.random.default_rng(3)
    gather, write_rows = shards._group_rows, shards._write_row_group

    def late(function):
        def run(*args):
            time.sleep(float(rng.uniform(0, 0.004)))
            return function(*args)
        return run

    monkeypatch.setattr(shards, "writer_threads", lambda: 4)
    monkeypatch.setattr(shards, "_group_rows", late(gather))
    monkeypatch.setattr(shards, "_write_row_group", late(write_rows))
    shuffled = write_all(tmp_path / "shuffled", batches, dests, 9, **options)
    assert max(row_groups(tmp_path / "serial", serial)) > 1  # the flushes ran
    assert serial == shuffled
    for shard in shuffled:
        data = (tmp_path / "shuffled" / shard.file).read_bytes()
        assert data == (tmp_path / "serial" / shard.file).read_bytes()
        assert shard.sha256 == hashlib.sha256(data).hexdigest()  # hashed row group by row group


def test_a_failed_background_write_is_raised_and_abort_closes_the_files(tmp_path, monkeypatch):
    batches = make_batches(3000, 300)
    dests = destinations(batches, 4)
    writer = ShardWriter(tmp_path, SCHEMA, 4, buffer_bytes=1)  # a flush at every batch
    calls = {"n": 0}
    original = shards._write_row_group

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError("disk full")
        return original(*args)

    monkeypatch.setattr(shards, "_write_row_group", failing)
    with pytest.raises(OSError, match="disk full"):
        for batch, dest in zip(batches, dests):
            writer.write(batch, dest)
        writer.close()
    writer.abort()
    assert all(sink is None or sink.closed for sink in writer._sinks)


def test_encode_parquet_gives_the_bytes_and_checksum_of_one_row_group():
    batches = make_batches(1000, 300)
    data, digest = shards.encode_parquet(batches, SCHEMA, ["label"])
    assert digest == hashlib.sha256(data).hexdigest()
    parquet = pq.ParquetFile(pa.BufferReader(data))
    assert parquet.num_row_groups == 1 and parquet.read().equals(pa.Table.from_batches(batches))
    assert shards.encode_parquet(pa.Table.from_batches(batches), SCHEMA, ["label"]) == (data, digest)
    one_batch = pa.Table.from_batches(batches).combine_chunks().to_batches()
    assert shards.encode_parquet(one_batch, SCHEMA, ["label"]) == (data, digest)
    empty, _ = shards.encode_parquet([], SCHEMA)
    assert pq.read_table(pa.BufferReader(empty)).num_rows == 0


@pytest.mark.parametrize(("usable", "expected"), [(1, 1), (2, 2), (4, 4), (16, shards.MAX_WRITER_THREADS)])
def test_writer_threads_follow_the_usable_cpus_up_to_the_cap(monkeypatch, usable, expected):
    monkeypatch.setattr(shards.os, "sched_getaffinity", lambda pid: set(range(usable)), raising=False)
    monkeypatch.setattr(shards.os, "cpu_count", lambda: 64)  # the machine's count: not what this process may use
    assert shards.writer_threads() == expected


def test_writer_threads_without_affinity_use_the_cpu_count(monkeypatch):
    monkeypatch.delattr(shards.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(shards.os, "cpu_count", lambda: None)  # unknown: one thread
    assert shards.writer_threads() == 1
    monkeypatch.setattr(shards.os, "cpu_count", lambda: 3)
    assert shards.writer_threads() == 3
