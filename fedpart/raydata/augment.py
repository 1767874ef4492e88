"""``fedpart augment counterfactual --engine ray``: the local augmentation, piece by piece on Ray Data.

* A partition directory: one task per shard file (or part file), each running the same
  :func:`fedpart.augment.files.augment_shard` as the local engine into the same relative path; the
  driver copies the test split and writes the manifest as locally.
* Any other input: the input's pieces (:meth:`fedpart.io.sources.Source.split`) are counted (rows
  of pieces whose size the metadata does not give), then piece ``u`` is augmented from its first
  row's input position -- so ``cf_of`` and ``cds``'s draws are those of the local engine -- into
  ``part-{u:05d}.parquet``, beside the report ``_augmentation.json`` (which marks the directory
  for a later ``--overwrite``). Reading the output directory gives the local engine's rows in order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fedpart.augment.augmenter import CounterfactualOptions, check_schema
from fedpart.augment.report import CounterfactualReport, ReportCounts
from fedpart.errors import InputError
from fedpart.io.output_dir import atomic_output_dir
from fedpart.io.sources import ReadOptions
from fedpart.raydata.session import guarded, ray_session, run_pieces, split_pieces

DEFAULT_PIECE_ROWS = 200_000


def _augment_shard_piece(piece: int, *, jobs: Any, directory: str, tmp: str, options: Any,
                         label_col: Any, labels: Any) -> Any:
    from fedpart.augment.files import augment_shard

    return augment_shard(jobs[piece], Path(directory), Path(tmp), options, 1, label_col, labels)


def _count_rows_piece(piece: int, *, source: Any, units: Any) -> int:
    reader = source.piece(units[piece])
    return sum(batch.num_rows for batch in reader.iter_batches([reader.schema.names[0]]))


def _augment_file_piece(piece: int, *, source: Any, units: Any, starts: Any, tmp: str, options: Any) -> ReportCounts:
    from fedpart.augment.files import write_stream
    from fedpart.augment.stream import AugmentedStream

    reader = source.piece(units[piece])
    stream = AugmentedStream(reader.iter_batches(), options, first_row=int(starts[piece]))
    write_stream(stream, check_schema(reader.schema, options), Path(tmp) / f"part-{piece:05d}.parquet")
    return stream.counts


_shard_task = guarded(_augment_shard_piece)
_count_task = guarded(_count_rows_piece)
_file_task = guarded(_augment_file_piece)


def augment_on_ray(
    spec: str, out: Path, options: CounterfactualOptions, partition_input: bool, *, task: str | None,
    read_options: ReadOptions, overwrite: bool, address: str | None, piece_rows: int | None,
) -> CounterfactualReport:
    """Augment ``spec`` into ``out`` on Ray (see the module docstring); return the merged report."""
    from fedpart.augment.files import AUGMENT_MARKER, open_input, shard_jobs, write_augmented_partition, write_marker
    from fedpart.augment.lexicon import load_lexicon
    from fedpart.augment.stream import merged_report
    from fedpart.manifest import MANIFEST_FILE, Manifest

    load_lexicon(options.swapper.pairs)  # a bad pair file fails here, not in every task
    if partition_input:
        if piece_rows is not None:  # its pieces are its shard files
            raise InputError(f"{spec}: is a partition, augmented one shard file per Ray task; --piece-rows "
                             "applies to other inputs: drop it")
        manifest = Manifest.read(spec)
        jobs = shard_jobs(manifest)
        with atomic_output_dir(out, overwrite, MANIFEST_FILE) as tmp, ray_session(address):
            (tmp / "clients").mkdir()
            results = run_pieces(_shard_task, len(jobs), jobs=jobs, directory=os.path.abspath(spec), tmp=str(tmp),
                                 options=options, label_col=manifest.label_col, labels=manifest.labels)
            return write_augmented_partition(Path(spec), tmp, manifest, results, options)
    source = open_input(spec, task, read_options)
    check_schema(source.schema, options)
    units = split_pieces(source, piece_rows, DEFAULT_PIECE_ROWS)
    with atomic_output_dir(out, overwrite, AUGMENT_MARKER) as tmp, ray_session(address):
        rows = [u.rows for u in units]
        if any(n is None for n in rows):  # formats whose metadata has no row count: count the pieces
            rows = run_pieces(_count_task, len(units), source=source, units=units)
        starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        counts = run_pieces(_file_task, len(units), source=source, units=units, starts=starts, tmp=str(tmp),
                            options=options)
        report = merged_report(counts, options)
        write_marker(report, tmp)
    return report
