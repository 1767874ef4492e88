"""Loading written shards back: one client, or the global test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedpart.errors import InputError
from fedpart.manifest import Manifest, ShardRecord

FORMATS = ("datasets", "polars", "arrow")


def _convert(paths: list[Path], format: str) -> Any:
    """The rows of ``paths`` (one shard file, or a Ray shard's listed parts, in order) as ``format``
    (one of :data:`FORMATS`, checked by :func:`_load_shard`)."""
    if format == "polars":
        import polars as pl

        return pl.concat([pl.read_parquet(path) for path in paths]) if len(paths) > 1 else pl.read_parquet(paths[0])
    table = pa.concat_tables([pq.read_table(path) for path in paths]) if len(paths) > 1 else pq.read_table(paths[0])
    if format == "arrow":
        return table
    import datasets

    return datasets.Dataset(table)


def shard_paths(directory: str | Path, record: ShardRecord) -> list[Path]:
    """The files of one shard: its Parquet file, or the part files the manifest lists for a Ray
    shard (a directory), in order -- never other files that may lie in that directory."""
    return [Path(directory) / name for name in record.part_files]


def load_client(directory: str | Path, client_id: int, format: str = "datasets") -> Any:
    """Load client ``client_id`` of a partition directory.

    Returns a ``datasets.Dataset`` (default), a ``polars.DataFrame`` (``format="polars"``) or a
    ``pyarrow.Table`` (``format="arrow"``), with the input's columns plus the row-id column.

    Raises:
        InputError: not a partition directory, no such client, or the shard's files are missing or
            not the ones the manifest records (checked by sha256 before they are read).
    """
    manifest = Manifest.read(directory)
    if isinstance(client_id, bool) or not isinstance(client_id, (int, np.integer)):
        raise InputError(f"client_id must be an integer, got {client_id!r}")
    if not 0 <= client_id < manifest.num_clients:
        raise InputError(
            f"{directory}: no client {client_id}; clients are 0..{manifest.num_clients - 1}"
        )
    return _load_shard(directory, manifest.clients[int(client_id)], format)


def load_test(directory: str | Path, format: str = "datasets") -> Any:
    """Load the global test split written with ``--test-frac`` (checked as in :func:`load_client`)."""
    manifest = Manifest.read(directory)
    if manifest.test is None:
        raise InputError(f"{directory}: has no test split; partition with --test-frac F to make one")
    return _load_shard(directory, manifest.test, format)


def _load_shard(directory: str | Path, record: ShardRecord, format: str) -> Any:
    """The shard of ``record`` as ``format``, after checking its files against the manifest."""
    from fedpart.verify import verify_shard

    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    verify_shard(directory, record)
    return _convert(shard_paths(directory, record), format)
