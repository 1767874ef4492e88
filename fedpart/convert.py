"""``fedpart convert``: write a task's canonical form of any supported input as one Parquet file."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from fedpart.errors import InputError, OutputError
from fedpart.io.output_dir import check_output_not_over_inputs
from fedpart.io.sources import input_files
from fedpart.manifest import MANIFEST_FILE
from fedpart.tasks import ColumnMap, TaskOptions, get_task


@dataclass(frozen=True)
class ConvertReport:
    """What a conversion read and wrote."""

    out: str
    rows: int
    columns: list[str]
    dropped_invalid: dict[str, int] = field(default_factory=dict)


def convert(
    input: str | os.PathLike[str],
    *,
    task: str,
    out: str | os.PathLike[str],
    options: TaskOptions = TaskOptions(),
    overwrite: bool = False,
) -> ConvertReport:
    """Read ``input`` as ``task`` and write its canonical columns to the Parquet file ``out``.

    Streaming (one batch in memory); written to a temp file beside ``out`` and renamed at the end.

    Raises:
        InputError: unreadable input or invalid rows (without ``options.drop_invalid``).
        OutputError: ``out`` exists without ``overwrite``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; --out names the Parquet file to write")
    if out.suffix.lower() != ".parquet":
        raise OutputError(f"{out}: convert writes Parquet; name the output file *.parquet")
    if (Path(input) / MANIFEST_FILE).is_file():
        raise InputError(
            f"{input}: is a partition; its shards are already in the task's columns "
            "(read them with fedpart.load_client, or pass one shard file)"
        )
    source = get_task(task).open(os.fspath(input), options)
    check_output_not_over_inputs(out, [*input_files(source), input])
    try:  # e.g. a part of the parent path is a file, or the directory is read-only
        out.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    except OSError as error:
        raise OutputError(
            f"{out}: cannot be created in {out.parent} ({error.strerror or error}); choose another --out"
        ) from error
    os.close(handle)
    rows = 0
    try:
        with pq.ParquetWriter(tmp_name, source.schema) as writer:
            for batch in source.iter_batches():
                writer.write_batch(batch)
                rows += batch.num_rows
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return ConvertReport(str(out), rows, source.schema.names, dict(source.invalid))


__all__ = ["ColumnMap", "ConvertReport", "TaskOptions", "convert"]
