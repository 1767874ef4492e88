"""The partition manifest (``manifest.json``): what was partitioned, how, and what was written.

Serialised with a schema version and no timestamps or absolute paths, so the same input, parameters
and seed give a byte-identical manifest.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedpart.errors import InputError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"


@dataclass
class ShardRecord:
    """One written shard. ``client_id`` is ``None`` for the test split.

    ``label_counts[i]`` counts rows whose label is ``Manifest.labels[i]``; ``key_counts`` likewise for
    ``Manifest.keys`` when the partition key is not the label and clients x keys is at most two
    million (large natural partitions, e.g. one client per id of many ids, record none).

    A shard is one Parquet file, or -- written by the Ray engine -- a directory of part files
    (``file`` is the directory, ``parts`` lists its files in row order, each with ``file``, ``rows``
    and ``sha256``, and ``sha256`` is the sha256 of the ``sha256sum``-style listing
    ``"<part sha256>  <part file>\n"`` of the parts). Either way ``pyarrow.parquet.read_table(file)``
    reads the shard's rows in order.
    """

    client_id: int | None
    file: str
    rows: int
    sha256: str
    label_counts: list[int] | None = None
    key_counts: list[int] | None = None
    metrics: dict[str, float | None] | None = None
    parts: list[dict[str, Any]] | None = None

    @property
    def part_files(self) -> list[str]:
        """The shard's files relative to the partition directory, in row order."""
        return [p["file"] for p in self.parts] if self.parts is not None else [self.file]


def _inside(name: Any) -> bool:
    """Whether the shard path ``name`` (from a manifest) is relative and stays inside the directory."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or "\\" in name:
        return False
    return ".." not in Path(name).parts


def _record_dict(record: ShardRecord) -> dict[str, Any]:
    data = dict(vars(record))
    if data["parts"] is None:  # single-file shards: the manifest has no parts key
        del data["parts"]
    return data


def parts_digest(parts: list[dict[str, Any]]) -> str:
    """The ``sha256`` of a multi-part shard: sha256 of its ``sha256sum``-style part listing."""
    import hashlib

    listing = "".join(f"{p['sha256']}  {p['file']}\n" for p in parts)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


@dataclass
class Manifest:
    """Everything about one partition directory."""

    fedpart_version: str
    input: dict[str, Any]
    scheme: str
    params: dict[str, Any]
    seed: int
    test_frac: float
    label_col: str | None
    key_col: str | None
    row_id_col: str
    rows: dict[str, int]
    labels: list[Any] | None
    keys: list[Any] | None
    clients: list[ShardRecord]
    test: ShardRecord | None
    metrics: dict[str, Any]
    task: str | None = None
    group_col: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    @property
    def shards(self) -> list[ShardRecord]:
        """Every shard: the client shards, then the test split when there is one."""
        return [*self.clients, *([self.test] if self.test is not None else [])]

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON-able data (fields in declaration order)."""
        # shallow by hand: dataclasses.asdict deep-copies every value, slow with thousands of clients
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["clients"] = [_record_dict(c) for c in self.clients]
        data["test"] = _record_dict(self.test) if self.test is not None else None
        return data

    def to_json(self) -> str:
        """Deterministic JSON text (fixed key order, trailing newline)."""
        return json.dumps(self.to_dict(), indent=2, default=str, allow_nan=False) + "\n"

    def write(self, directory: Path) -> None:
        (Path(directory) / MANIFEST_FILE).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        """Read ``DIR/manifest.json``.

        Raises:
            InputError: not a fedpart partition directory, or a manifest of another schema version.
        """
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            from fedpart.train.rundir import read_run_config  # light: no torch

            run = read_run_config(directory)
            if run is not None:  # a run directory where its partition was meant
                trained_on = f" (this run's: {run['partition']})" if isinstance(run.get("partition"), str) else ""
                raise InputError(f"{directory}: a training run directory, not a partition; pass a partition "
                                 f"directory{trained_on}")
            raise InputError(
                f"{directory}: not a fedpart partition directory (no {MANIFEST_FILE}); "
                "create one with `fedpart partition`"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: unreadable manifest ({error})") from error
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise InputError(
                f"{path}: manifest schema version {version!r}, this fedpart reads {SCHEMA_VERSION}; "
                "re-run `fedpart partition` with this version"
            )
        try:
            data["clients"] = [ShardRecord(**c) for c in data["clients"]]
            data["test"] = ShardRecord(**data["test"]) if data.get("test") else None
            manifest = cls(**data)
        except (KeyError, TypeError) as error:
            raise InputError(f"{path}: malformed manifest ({error}); re-run `fedpart partition`") from error
        if not manifest.clients:
            raise InputError(f"{path}: the manifest lists no clients; re-run `fedpart partition`")
        for record in manifest.shards:
            for name in [record.file, *record.part_files]:
                if not _inside(name):
                    raise InputError(f"{path}: shard path {name!r} leaves the partition directory (absolute, or "
                                     "through ..); the manifest was edited: re-run `fedpart partition`")
        return manifest
