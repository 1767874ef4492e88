"""Loading written shards back: one client, or the global test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fedpart.errors import InputError
from fedpart.manifest import Manifest

FORMATS = ("datasets", "polars", "arrow")


def _convert(path: Path, format: str) -> Any:
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    if format == "polars":
        import polars as pl

        return pl.read_parquet(path)
    table = pq.read_table(path)
    if format == "arrow":
        return table
    import datasets

    return datasets.Dataset(table)


def load_client(directory: str | Path, client_id: int, format: str = "datasets") -> Any:
    """Load client ``client_id`` of a partition directory.

    Returns a ``datasets.Dataset`` (default), a ``polars.DataFrame`` (``format="polars"``) or a
    ``pyarrow.Table`` (``format="arrow"``), with the input's columns plus the row-id column.

    Raises:
        InputError: not a partition directory, or no such client.
    """
    manifest = Manifest.read(directory)
    if not 0 <= client_id < manifest.num_clients:
        raise InputError(
            f"{directory}: no client {client_id}; clients are 0..{manifest.num_clients - 1}"
        )
    return _convert(Path(directory) / manifest.clients[client_id].file, format)


def load_test(directory: str | Path, format: str = "datasets") -> Any:
    """Load the global test split written with ``--test-frac``."""
    manifest = Manifest.read(directory)
    if manifest.test is None:
        raise InputError(f"{directory}: has no test split; partition with --test-frac F to make one")
    return _convert(Path(directory) / manifest.test.file, format)
