"""Checking a partition directory's shards against its manifest before anything reads them.

Light to import (hashlib and the manifest only; no torch, pyarrow or polars), so every consumer --
``fedpart train``, ``distill``, ``augment counterfactual`` -- can refuse a modified partition first.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fedpart.errors import InputError
from fedpart.manifest import MANIFEST_FILE, Manifest, ShardRecord, parts_digest

#: bytes read at a time when hashing a shard file
HASH_CHUNK = 1 << 20
_REPARTITION = "the partition was modified or corrupted; re-run `fedpart partition`"


def verify_partition(partition_dir: str | os.PathLike[str], manifest: Manifest | None = None) -> Manifest:
    """Check that every shard (client shards and the test split) is exactly what the manifest records;
    return the manifest (read from ``partition_dir`` when not given).

    A single-file shard must exist with its recorded sha256. A multi-part shard (a directory written
    by the Ray engine) must hold exactly its listed part files, each with its recorded sha256, and
    its part listing must match the shard's sha256: a file the manifest does not list would be read
    with the shard (``pyarrow.parquet.read_table(dir)`` reads every file in it). Files are hashed
    in 1 MiB chunks, so memory stays flat whatever their size.

    Raises:
        InputError: naming the first missing, modified or unlisted shard file.
    """
    partition_dir = Path(partition_dir)
    if manifest is None:
        manifest = Manifest.read(partition_dir)
    for record in manifest.shards:
        verify_shard(partition_dir, record)
    return manifest


def verify_shard(partition_dir: str | os.PathLike[str], record: ShardRecord) -> None:
    """Check one shard of ``partition_dir`` against its manifest ``record`` (see :func:`verify_partition`).

    Raises:
        InputError: naming the missing, modified or unlisted file.
    """
    partition_dir = Path(partition_dir)
    if record.parts is None:
        _verify_file(partition_dir, record.file, record.sha256)
        return
    _refuse_unlisted_files(partition_dir, record)
    for part in record.parts:
        _verify_file(partition_dir, part["file"], part["sha256"])
    if parts_digest(record.parts) != record.sha256:
        raise InputError(f"{partition_dir / MANIFEST_FILE}: the part listing of {record.file} does not match "
                         f"its sha256; {_REPARTITION}")


def manifest_digest(partition_dir: str | os.PathLike[str]) -> str:
    """The sha256 of a partition's ``manifest.json`` (which records every shard's): runs and augmented
    partitions record it, so a partition made again since can be told."""
    return sha256_of(Path(partition_dir) / MANIFEST_FILE)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in :data:`HASH_CHUNK` blocks (memory stays flat).

    Plain ``read`` calls: on the partition benchmark they were faster than ``readinto`` one reused
    buffer (the blocks come from the page cache either way)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _verify_file(partition_dir: Path, file: str, sha256: str) -> None:
    path = partition_dir / file
    if not path.is_file():
        raise InputError(f"{path}: shard listed in {MANIFEST_FILE} is missing; {_REPARTITION}")
    if sha256_of(path) != sha256:
        raise InputError(f"{path}: shard does not match the sha256 in {MANIFEST_FILE}; {_REPARTITION}")


def _refuse_unlisted_files(partition_dir: Path, record: ShardRecord) -> None:
    directory = partition_dir / record.file
    if not directory.is_dir():
        raise InputError(f"{directory}: shard directory listed in {MANIFEST_FILE} is missing; {_REPARTITION}")
    listed = {os.path.normpath(name) for name in record.part_files}
    unlisted = sorted(entry.name for entry in directory.iterdir()
                      if os.path.normpath(os.path.join(record.file, entry.name)) not in listed)
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
        raise InputError(f"{directory}: holds files {MANIFEST_FILE} does not list ({shown}), which would be read "
                         "as part of the shard; remove them, or re-run `fedpart partition`")
