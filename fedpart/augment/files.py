"""``fedpart augment counterfactual`` on files: one file, a directory of shards, or a partition.

- A single input (any format fedpart reads; with ``task`` through the task's reader, so SQuAD JSON
  or CoNLL work) becomes one Parquet file.
- A directory of data files becomes a directory with one Parquet file per input file.
- A partition directory (it has ``manifest.json``) becomes a new partition directory: every client
  shard is augmented, ``test.parquet`` is copied unchanged (evaluation data stays real), and the
  manifest is rewritten with the new row counts, label counts, checksums, metrics and the
  augmentation report under ``extra.augmentation``.

Every output is written to a temporary path and renamed into place only on success.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedpart.augment.augmenter import CounterfactualOptions, check_schema
from fedpart.augment.report import CounterfactualReport, ReportCounts
from fedpart.augment.stream import AugmentedStream
from fedpart.errors import InputError, OutputError
from fedpart.io.output_dir import atomic_output_dir
from fedpart.io.sources import FORMAT_BY_EXTENSION, ReadOptions, Source, open_source, sha256_file
from fedpart.manifest import MANIFEST_FILE, Manifest
from fedpart.metrics import client_metrics, client_record, partition_summary


def _open(spec: str, task: str | None, read: ReadOptions) -> Source:
    if task is None:
        return open_source(spec, read)
    from fedpart.tasks import TaskOptions, get_task

    return get_task(task).open(spec, TaskOptions(read=read))


def _write_stream(stream: AugmentedStream, schema: pa.Schema, path: Path) -> int:
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in stream:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _augment_file(
    source: Source, options: CounterfactualOptions, workers: int, path: Path
) -> tuple[int, AugmentedStream]:
    schema = check_schema(source.schema, options)
    stream = AugmentedStream(source.iter_batches(), options, workers=workers)
    return _write_stream(stream, schema, path), stream


def _merge_reports(streams: list[AugmentedStream]) -> CounterfactualReport:
    total = ReportCounts()
    for stream in streams:
        total.add(stream.counts)
    total.tagger = streams[0].counts.tagger if streams else ""
    first = streams[0]
    first.counts = total
    return first.report()


def _data_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix.lower() in FORMAT_BY_EXTENSION and not path.name.startswith("."):
            yield path


def augment_counterfactual(
    input: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    options: CounterfactualOptions,
    task: str | None = None,
    workers: int = 1,
    overwrite: bool = False,
    read_options: ReadOptions = ReadOptions(),
) -> CounterfactualReport:
    """Write the counterfactual corpus of ``input`` to ``out``; return the report.

    ``task`` (when given) reads ``input`` through that task's reader and canonical columns;
    ``options.task`` decides which columns are swapped.

    Raises:
        InputError: unreadable input, missing or mistyped columns, bad options.
        OutputError: ``out`` exists without ``overwrite``.
    """
    spec, out = os.fspath(input), Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    if Path(spec).is_dir() and (Path(spec) / MANIFEST_FILE).is_file():
        return _augment_partition(Path(spec), out, options, workers, overwrite)
    if Path(spec).is_dir():
        files = list(_data_files(Path(spec)))
        if not files:
            raise InputError(f"{spec}: directory has no data files to augment")
        streams = []
        with atomic_output_dir(out, overwrite) as tmp:
            for path in files:
                target = (tmp / path.relative_to(spec)).with_suffix(".parquet")
                target.parent.mkdir(parents=True, exist_ok=True)
                streams.append(_augment_file(_open(str(path), task, read_options), options, workers, target)[1])
        return _merge_reports(streams)
    source = _open(spec, task, read_options)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    os.close(handle)
    try:
        _, stream = _augment_file(source, options, workers, Path(tmp_name))
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return stream.report()


def _augment_partition(
    directory: Path, out: Path, options: CounterfactualOptions, workers: int, overwrite: bool
) -> CounterfactualReport:
    manifest = Manifest.read(directory)
    streams = []
    clients = []
    labels = manifest.labels
    with atomic_output_dir(out, overwrite) as tmp:
        (tmp / "clients").mkdir()
        for record in manifest.clients:
            source = open_source(str(directory / record.file))
            target = tmp / record.file
            rows, stream = _augment_file(source, options, workers, target)
            streams.append(stream)
            label_counts = record.label_counts
            if manifest.label_col and labels is not None:
                values = pq.read_table(target, columns=[manifest.label_col]).column(manifest.label_col).to_pylist()
                label_counts = [values.count(v) for v in labels]
            clients.append(dataclasses.replace(record, rows=rows, sha256=sha256_file(str(target)),
                                               label_counts=label_counts))
        if manifest.test is not None:
            shutil.copyfile(directory / manifest.test.file, tmp / manifest.test.file)
        report = _merge_reports(streams)
        counts = np.array([c.label_counts for c in clients]) if labels is not None else None
        if counts is not None:
            metrics = client_metrics(counts)
            for i, client in enumerate(clients):
                client.metrics = client_record(metrics, i)
        sizes = np.array([c.rows for c in clients])
        new = dataclasses.replace(
            manifest,
            clients=clients,
            rows={**manifest.rows, "written": int(sizes.sum()) + (manifest.test.rows if manifest.test else 0)},
            metrics=partition_summary(counts, sizes),
            extra={**manifest.extra, "augmentation": {"source_partition": str(directory), **report.to_dict()}},
        )
        new.write(tmp)
    return report
