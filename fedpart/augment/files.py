"""``fedpart augment counterfactual`` on files: one file, a directory of shards, or a partition.

- A single input (any format fedpart reads; with ``task`` through the task's reader, so SQuAD JSON
  or CoNLL work) becomes one Parquet file.
- A directory of data files becomes a directory with one Parquet file per input file, and the
  augmentation report as ``_augmentation.json`` (:data:`AUGMENT_MARKER`).
- A partition directory (it has ``manifest.json``) becomes a new partition directory: every client
  shard is augmented, ``test.parquet`` is copied unchanged (evaluation data stays real), and the
  manifest is rewritten with the new row counts, label counts, checksums, metrics and the
  augmentation report under ``extra.augmentation`` (with the source partition's directory name and
  manifest sha256, never its path).

Every output is written to a temporary path and renamed into place only on success. ``out`` may
not be the input, lie inside an input directory, or contain the input (``--overwrite`` would
destroy it), and a single-file output must be named ``*.parquet``; both are checked before any row
is read. ``--overwrite`` replaces a non-empty directory only if it is an earlier output of the same
kind: a partition (a fedpart ``manifest.json``) for a partition input, else a directory holding a
fedpart ``_augmentation.json``.

With ``--task tc`` on an input whose ``text`` is joined from several raw columns (``title`` +
``description``), those raw columns are kept and re-cut from the swapped ``text``, so every output
row still has ``text == title + " " + description`` (:attr:`CounterfactualOptions.text_parts`).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedpart.augment.augmenter import CounterfactualOptions, check_schema
from fedpart.augment.report import CounterfactualReport, ReportCounts, write_report
from fedpart.augment.stream import AugmentedStream, merged_report
from fedpart.errors import InputError, OutputError
from fedpart.io.output_dir import atomic_output_dir, check_output_not_over_inputs, check_output_path
from fedpart.io.sources import (
    ReadOptions,
    Source,
    check_local_for_ray,
    directory_data_files,
    is_glob,
    open_source,
    portable_source,
    without_blank_files,
)
from fedpart.manifest import MANIFEST_FILE, Manifest
from fedpart.metrics import client_metrics, client_record, partition_summary
from fedpart.verify import manifest_digest, sha256_of, verify_partition

#: The report that an augmented directory of files (or of Ray part files) holds beside its data: it
#: marks the directory as an augment output, the only kind of non-empty directory (besides a
#: partition, marked by its manifest) that ``--overwrite`` replaces. The ``_`` prefix keeps fedpart,
#: pyarrow and polars from reading it as data.
AUGMENT_MARKER = "_augmentation.json"


def open_input(
    spec: str, task: str | None, read: ReadOptions, columns: Any = None, drop_invalid: bool = False
) -> Source:
    """``spec`` as a source: raw (no ``task``) or through the task's reader with ``columns``
    (a :class:`~fedpart.tasks.ColumnMap`) and ``drop_invalid``."""
    if task is None:
        if columns is not None or drop_invalid:
            raise InputError(
                "--drop-invalid and the --*-col options of the task reader need --task (tc, st, qa, s2s or lm)"
            )
        return open_source(spec, read)
    from fedpart.tasks import ColumnMap, TaskOptions, get_task

    return get_task(task).open(spec, TaskOptions(columns=columns or ColumnMap(), drop_invalid=drop_invalid, read=read))


def _directory_targets(spec: str, task: str | None, read: ReadOptions) -> dict[Path, Path]:
    """The data files of the directory ``spec`` (those ``fedpart partition DIR`` reads, in its
    ``row_id`` order; blank text files skipped) and the output of each, relative to ``--out``: its
    path with ``.parquet``.

    Raises:
        InputError: the directory has no data file, or two files would share an output name.
    """
    if task is None:
        files = directory_data_files(Path(spec))
    else:
        from fedpart.tasks import TaskOptions, get_task

        files = get_task(task).data_files(spec, TaskOptions(read=read))
    if not files:
        raise InputError(f"{spec}: directory has no data files to augment")
    # blank text files hold no rows (as `fedpart partition DIR` skips them); all blank: reading says why
    files = without_blank_files(files) or files
    targets: dict[Path, Path] = {}
    sources: dict[Path, Path] = {}
    for file in map(Path, files):
        name = file.relative_to(spec).with_suffix(".parquet")
        if name in sources:
            raise InputError(
                f"{spec}: {sources[name].relative_to(spec)} and {file.relative_to(spec)} would both be written "
                f"to {name}; rename one, or augment them one at a time"
            )
        sources[name], targets[file] = file, name
    return targets


def text_parts_of(source: Source, options: CounterfactualOptions) -> tuple[str, ...]:
    """The raw columns that ``source``'s tc reader joined into ``text`` and kept beside it (empty
    unless ``text`` is built from several columns and is the only column swapped)."""
    bound = getattr(source, "bound", None)
    parts = tuple(getattr(bound, "text_cols", ()) or ())
    if options.task != "tc" or options.text_cols not in (None, ("text",)) or len(parts) < 2:
        return ()
    return parts if all(p in source.schema.names for p in parts) else ()


def input_paths(spec: str) -> list[Path]:
    """The local paths ``spec`` names: the file or directory, or what a glob matches (none for hf://)."""
    if is_glob(spec):
        return [Path(p) for p in glob.glob(spec, recursive=True)]
    return [Path(spec)] if Path(spec).exists() else []


def check_output_apart(out: Path, spec: str) -> None:
    """Refuse an ``out`` that is the input, contains it, or lies inside an input directory.

    ``--overwrite`` would otherwise replace the input with the output (or write the output into
    the input, where the next run reads it back).

    Raises:
        OutputError: naming the input.
    """
    check_output_not_over_inputs(out, input_paths(spec))


def check_file_output(out: Path, overwrite: bool) -> None:
    """Check up front that the single Parquet file ``out`` can be written.

    Raises:
        OutputError: ``out`` is not named ``*.parquet``, exists without ``overwrite``, is a
            directory, or its folder cannot be created or written.
    """
    if out.suffix.lower() != ".parquet":
        raise OutputError(
            f"{out}: augment counterfactual writes Parquet; name the output file *.parquet "
            "(or pass a directory input to get a directory)"
        )
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; the output of a single input is one .parquet file")
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=f".{out.name}.probe-", dir=out.parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"{out}: cannot write here ({error.strerror or error}); choose another --out") from error


def write_stream(stream: AugmentedStream, schema: pa.Schema, path: Path) -> int:
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in stream:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _augment_file(
    source: Source, options: CounterfactualOptions, workers: int, path: Path, first_row: int = 0
) -> tuple[int, AugmentedStream]:
    """Augment ``source`` into the Parquet file ``path``; its first row is input position ``first_row``
    (a file of a directory starts after the earlier files' rows). Returns the rows written and the
    consumed stream."""
    schema = check_schema(source.schema, options)
    # input positions, not output counts: a task reader's --drop-invalid skips the dropped rows, so
    # cf_of and the cds draws match the partition made from the same input (its row_id)
    stream = AugmentedStream(source.iter_batches_with_ids(), options, workers=workers, first_row=first_row)
    rows = write_stream(stream, schema, path)
    stream.counts.dropped_invalid.update(getattr(source, "invalid", {}))  # a task reader's --drop-invalid
    return rows, stream


def _input_positions(source: Source, counts: ReportCounts) -> int:
    """The input positions a pass over ``source`` (its augmented stream's ``counts``) consumed: a task
    reader counts the rows ``--drop-invalid`` dropped (they keep their positions; a row failing two
    checks is one row), any other source every row it read."""
    return source.rows_read if hasattr(source, "rows_read") else counts.rows_read


def write_marker(report: CounterfactualReport, directory: Path) -> None:
    """Write ``report`` to ``directory/`` :data:`AUGMENT_MARKER`, which marks ``directory`` as an
    augment output that a later ``--overwrite`` may replace."""
    write_report(report, directory / AUGMENT_MARKER)


def augment_counterfactual(
    input: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    options: CounterfactualOptions,
    task: str | None = None,
    workers: int = 1,
    overwrite: bool = False,
    read_options: ReadOptions = ReadOptions(),
    engine: str = "local",
    ray_address: str | None = None,
    piece_rows: int | None = None,
    columns: Any = None,
    drop_invalid: bool = False,
) -> CounterfactualReport:
    """Write the counterfactual corpus of ``input`` to ``out``; return the report.

    ``task`` (when given) reads ``input`` through that task's reader and canonical columns, with
    ``columns`` (a :class:`~fedpart.tasks.ColumnMap` naming the input's columns) and
    ``drop_invalid`` (drop rows the task's validation rejects); ``options.task`` decides which
    columns are swapped.

    ``engine="ray"`` augments pieces of the input in parallel Ray Data tasks
    (:mod:`fedpart.raydata.augment`), with the same rows out as the local engine: a partition
    directory keeps its layout (every shard file or part file is augmented by one task); any other
    input becomes a directory of part files ``part-00000.parquet``... in input order.

    Raises:
        InputError: unreadable input, missing or mistyped columns, bad options.
        OutputError: ``out`` exists without ``overwrite``, is or contains or lies inside the
            input, is a single file not named ``*.parquet``, is a non-empty directory that is not
            an earlier output of the same kind (see the module docstring), or cannot be written.
    """
    spec, out = os.fspath(input), Path(out)
    if engine not in ("local", "ray"):
        raise InputError(f"unknown --engine {engine!r}; use one of local, ray")
    if engine == "local" and (ray_address is not None or piece_rows is not None):
        raise InputError("--piece-rows and --ray-address apply to --engine ray only")
    if engine == "ray":
        check_local_for_ray(spec)
    check_output_apart(out, spec)
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    partition_input = Path(spec).is_dir() and (Path(spec) / MANIFEST_FILE).is_file()
    if partition_input or Path(spec).is_dir() or engine == "ray":  # a directory output: checked before any row is read
        check_output_path(out, overwrite, MANIFEST_FILE if partition_input else AUGMENT_MARKER)
    if partition_input and (columns is not None or drop_invalid):
        raise InputError(
            f"{spec}: is a partition (its shards are already in the task's columns); "
            "drop --drop-invalid and the --*-col options"
        )
    manifest = None
    if partition_input:  # a modified shard would be augmented into a manifest with fresh checksums
        manifest = verify_partition(spec)
        options = _partition_task_options(Path(spec), manifest, options, task)
    if engine == "ray":
        from fedpart.raydata.augment import augment_on_ray

        if task is not None and not partition_input:
            if columns is not None or drop_invalid:
                raise InputError("--drop-invalid and the --*-col options apply to --engine local only")
            source = open_input(spec, task, read_options)
            options = dataclasses.replace(options, text_parts=text_parts_of(source, options))

        return augment_on_ray(spec, out, options, partition_input, task=task, read_options=read_options,
                              overwrite=overwrite, address=ray_address, piece_rows=piece_rows)
    if manifest is not None:
        return _augment_partition(Path(spec), manifest, out, options, workers, overwrite)
    if Path(spec).is_dir():
        targets = _directory_targets(spec, task, read_options)
        streams = []
        with atomic_output_dir(out, overwrite, AUGMENT_MARKER) as tmp:
            first_row = 0  # positions run on across the files, as the row_id of `fedpart partition DIR`
            for path, name in targets.items():
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = open_input(str(path), task, read_options, columns, drop_invalid)
                file_options = dataclasses.replace(options, text_parts=text_parts_of(source, options))
                streams.append(_augment_file(source, file_options, workers, target, first_row)[1])
                first_row += _input_positions(source, streams[-1].counts)
            report = merged_report([s.counts for s in streams], options)
            write_marker(report, tmp)
        return report
    check_file_output(out, overwrite)
    source = open_input(spec, task, read_options, columns, drop_invalid)
    options = dataclasses.replace(options, text_parts=text_parts_of(source, options))
    handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    os.close(handle)
    try:
        _, stream = _augment_file(source, options, workers, Path(tmp_name))
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return stream.report()


@dataclass(frozen=True)
class ShardJob:
    """One shard file (or part file) of a partition to augment: where it is and where it goes.

    ``first_row`` is the position of its first row in its client's shard (earlier parts' rows).
    """

    record: int
    file: str
    first_row: int


@dataclass(frozen=True)
class ShardResult:
    job: ShardJob
    rows: int
    sha256: str
    label_counts: list[int] | None
    counts: ReportCounts


#: the columns the tc reader joins into ``text`` by default (see :mod:`fedpart.tasks.tc`)
DEFAULT_TEXT_PARTS = ("title", "description")


def partition_text_parts(schema: pa.Schema, options: CounterfactualOptions) -> tuple[str, ...]:
    """``options.text_parts`` (the columns a partition's ``text`` was joined from, see
    :func:`_partition_task_options`) when a tc shard keeps them beside ``text``, else empty. Rows
    whose ``text`` is not their join get the parts swapped on their own."""
    parts = options.text_parts
    if options.task != "tc" or options.text_cols not in (None, ("text",)):
        return ()
    if not all(p in schema.names and pa.types.is_string(schema.field(p).type) for p in parts):
        return ()
    return parts


def shard_jobs(manifest: Manifest) -> list[ShardJob]:
    """Every file of every client shard, in client then row order."""
    jobs = []
    for index, record in enumerate(manifest.clients):
        first = 0
        for part in record.parts or [{"file": record.file, "rows": record.rows}]:
            jobs.append(ShardJob(index, part["file"], first))
            first += int(part["rows"])
    return jobs


def augment_shard(
    job: ShardJob, directory: Path, tmp: Path, options: CounterfactualOptions, workers: int,
    label_col: str | None, labels: list | None,
) -> ShardResult:
    """Augment one shard file of partition ``directory`` into the same relative path under ``tmp``."""
    target = tmp / job.file
    target.parent.mkdir(parents=True, exist_ok=True)
    source = open_source(str(directory / job.file))
    options = dataclasses.replace(options, text_parts=partition_text_parts(source.schema, options))
    schema = check_schema(source.schema, options)
    stream = AugmentedStream(source.iter_batches(), options, workers=workers, first_row=job.first_row)
    rows = write_stream(stream, schema, target)
    label_counts = None
    if label_col and labels is not None:
        values = pq.read_table(target, columns=[label_col]).column(label_col).to_pylist()
        label_counts = [values.count(v) for v in labels]
    return ShardResult(job, rows, sha256_of(target), label_counts, stream.counts)


def source_record(directory: Path) -> dict[str, str]:
    """How an augmented partition names its source partition ``directory``, the same however the
    path was typed (``.``, relative, absolute): the directory's own name and its manifest's sha256."""
    return {
        "source_partition": portable_source(str(directory)),
        "source_manifest_sha256": manifest_digest(directory),
    }


def write_augmented_partition(
    directory: Path, tmp: Path, manifest: Manifest, results: list[ShardResult], options: CounterfactualOptions
) -> CounterfactualReport:
    """Copy the test split, and write the manifest of the augmented shards ``results`` (in job order)."""
    from fedpart.manifest import parts_digest

    labels = manifest.labels
    report = merged_report([r.counts for r in results], options)
    by_record: dict[int, list[ShardResult]] = {}
    for result in results:  # in job order: each client's files in row order
        by_record.setdefault(result.job.record, []).append(result)
    clients = []
    for index, record in enumerate(manifest.clients):
        mine = by_record[index]
        label_counts = record.label_counts
        if mine[0].label_counts is not None:
            label_counts = [int(sum(c)) for c in zip(*(r.label_counts for r in mine))]
        rows = sum(r.rows for r in mine)
        if record.parts is None:
            clients.append(dataclasses.replace(record, rows=rows, sha256=mine[0].sha256, label_counts=label_counts))
        else:
            parts = [{"file": r.job.file, "rows": r.rows, "sha256": r.sha256} for r in mine]
            clients.append(dataclasses.replace(record, rows=rows, sha256=parts_digest(parts), parts=parts,
                                               label_counts=label_counts))
    if manifest.test is not None:
        for name in manifest.test.part_files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(directory / name, tmp / name)
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
        extra={**manifest.extra, "augmentation": {**source_record(directory), **report.to_dict()}},
    )
    new.write(tmp)
    return report


def _partition_task_options(
    directory: Path, manifest: Manifest, options: CounterfactualOptions, task: str | None
) -> CounterfactualOptions:
    """``options`` for the shards of the partition in ``directory`` (its ``manifest``): its task is
    the one it was made with unless ``task`` is given, and a ``task`` that differs is refused --
    swapping a qa or st partition as text would break its answer offsets or token alignment. Row
    ids (``cf_of``, the ``cds`` draws) are read from the partition's ``row_id_col``, and a tc
    ``text`` joined from several columns has them swapped too (the manifest's ``text_from``;
    ``title`` and ``description`` for partitions that predate it)."""
    options = dataclasses.replace(options, row_id_col=manifest.row_id_col)
    made_with = manifest.task
    if made_with is not None:
        if task is not None and task != made_with:
            raise InputError(
                f"{directory}: was made with --task {made_with}; augment it with --task {made_with} "
                "(or without --task)"
            )
        options = dataclasses.replace(options, task=made_with)
    if options.task == "tc":
        options = dataclasses.replace(options, text_parts=tuple(manifest.input.get("text_from", DEFAULT_TEXT_PARTS)))
    return options


def _augment_partition(
    directory: Path, manifest: Manifest, out: Path, options: CounterfactualOptions, workers: int, overwrite: bool
) -> CounterfactualReport:
    with atomic_output_dir(out, overwrite, MANIFEST_FILE) as tmp:
        (tmp / "clients").mkdir()
        results = [
            augment_shard(job, directory, tmp, options, workers, manifest.label_col, manifest.labels)
            for job in shard_jobs(manifest)
        ]
        return write_augmented_partition(directory, tmp, manifest, results, options)
