"""The partition pipeline: read -> count -> plan -> assign -> write -> report.

:func:`partition` is the library entry point behind ``fedpart partition``. It makes two streaming
passes over the input: pass 1 counts rows per key, :func:`fedpart.plan.draw_plan` draws the plan
from the counts and the seed, and pass 2 assigns every row to exactly one client and writes the
shards into a temporary directory that is renamed into place only when everything succeeded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpart._version import __version__
from fedpart.assign import RowAssigner
from fedpart.counting import ValueCounts, count_values
from fedpart.errors import InputError
from fedpart.io.output_dir import atomic_output_dir, check_output_path
from fedpart.io.shards import DEFAULT_BUFFER_BYTES, ShardWriter, WrittenShard
from fedpart.io.sources import ReadOptions, Source, open_source
from fedpart.manifest import Manifest, ShardRecord
from fedpart.metrics import client_metrics, partition_summary
from fedpart.partitioners import make_partitioner
from fedpart.plan import draw_plan

ProgressFactory = Callable[[str, int | None], Any]


@dataclass(frozen=True)
class Columns:
    """Which input columns play which role."""

    label: str | None
    key: str | None
    row_id: str

    @property
    def counted(self) -> list[str]:
        return [c for c in dict.fromkeys([self.key, self.label]) if c is not None]


def _resolve_columns(
    scheme: str, requires_key: bool, label_col: str | None, by: str | None, row_id_col: str
) -> Columns:
    if scheme == "natural" and by is None:
        raise InputError("--scheme natural needs --by COLUMN (the natural id: user, author, title...)")
    if requires_key and by is None and label_col is None:
        raise InputError(f"--scheme {scheme} needs --label-col (or --by COLUMN to skew on another column)")
    return Columns(label=label_col, key=by or label_col, row_id=row_id_col)


def _check_schema(source: Source, columns: Columns) -> None:
    source.require_columns([columns.label, columns.key], ["--label-col", "--by"])
    if columns.row_id in source.schema.names:
        raise InputError(
            f"{source.description}: already has a column {columns.row_id!r}; pass --row-id-col NAME "
            "to store fedpart's row ids under another name"
        )
    for col in columns.counted:
        col_type = source.schema.field(col).type
        if pa.types.is_nested(col_type) or pa.types.is_floating(col_type):
            raise InputError(
                f"{source.description}: column {col!r} has type {col_type}; a label or --by column "
                "must hold categorical values (integers, strings, booleans)"
            )


def _check_nulls(nulls: dict[str, int], drop_null_labels: bool, description: str) -> None:
    for col, n_null in nulls.items():
        if n_null and not drop_null_labels:
            raise InputError(
                f"{description}: column {col!r} has {n_null} null value(s); clean them, or "
                "pass --drop-null-labels to drop those rows (their count is recorded in the manifest)"
            )


def _json_values(values: pa.Array) -> list[Any]:
    return [v if isinstance(v, (int, str, bool)) else str(v) for v in values.to_pylist()]


def _metrics_record(metrics: Any, index: int) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in ("entropy", "tv", "hellinger", "emd"):
        value = float(getattr(metrics, name)[index])
        out[name] = None if math.isnan(value) else round(value, 6)
    return out


def _no_progress(desc: str, total: int | None) -> Any:
    return None


def partition(
    input: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    scheme: str = "iid",
    clients: int | None = None,
    label_col: str | None = None,
    by: str | None = None,
    alpha: float | None = None,
    labels_per_client: int | None = None,
    size_dist: str | None = None,
    sigma: float | None = None,
    min_client_size: int | None = None,
    test_frac: float = 0.0,
    seed: int = 0,
    drop_null_labels: bool = False,
    overwrite: bool = False,
    row_id_col: str = "row_id",
    read_options: ReadOptions = ReadOptions(),
    hf_split: str | None = None,
    hf_config: str | None = None,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    plot: bool = True,
    progress: ProgressFactory | None = None,
) -> Manifest:
    """Partition ``input`` into client shards under ``out`` and return the manifest.

    ``input`` is a file, directory, glob or ``hf://NAME``. The result is an exact cover: every input
    row (except rows dropped with ``drop_null_labels``, which are counted) is in exactly one shard,
    carrying its 0-based input position in ``row_id_col``. Same input, parameters and seed give
    byte-identical shards and manifest.

    Raises:
        InputError, PlanError, OutputError: with a one-line message saying what to change.
    """
    progress = progress or _no_progress
    partitioner = make_partitioner(
        scheme,
        num_clients=clients,
        alpha=alpha,
        labels_per_client=labels_per_client,
        size_dist=size_dist,
        sigma=sigma,
        min_client_size=min_client_size,
    )
    columns = _resolve_columns(scheme, partitioner.requires_key, label_col, by, row_id_col)
    out = Path(out)
    check_output_path(out, overwrite)
    source = open_source(os.fspath(input), read_options, hf_split=hf_split, hf_config=hf_config)
    _check_schema(source, columns)

    # pass 1: count
    bar = progress("pass 1/2: counting", source.count_rows())
    counted = count_values(
        source.iter_batches(columns.counted or [source.schema.names[0]]),
        columns.counted,
        on_batch=bar.update if bar is not None else None,
    )
    if bar is not None:
        bar.close()
    total_rows = counted.total_rows
    if total_rows == 0:
        raise InputError(f"{source.description}: the input is empty (no rows)")
    _check_nulls(counted.nulls, drop_null_labels, source.description)
    key_counts = counted.values[columns.key] if columns.key else None
    label_counts = counted.values[columns.label] if columns.label else None
    kept_rows = counted.complete_rows
    dropped = total_rows - kept_rows
    if kept_rows == 0:
        raise InputError(f"{source.description}: no rows left after dropping null labels")

    # plan
    key_count_array = key_counts.counts if key_counts is not None else np.array([kept_rows])
    plan = draw_plan(partitioner, key_count_array, seed, test_frac)
    num_clients = plan.num_clients
    n_labels = len(label_counts.values) if label_counts is not None else 0

    # pass 2: assign and write
    assigner = RowAssigner(plan)
    out_schema = source.schema.append(pa.field(columns.row_id, pa.int64(), nullable=False))
    client_labels = np.zeros((num_clients + 1, n_labels), dtype=np.int64)
    with atomic_output_dir(out, overwrite) as tmp:
        writer = ShardWriter(tmp, out_schema, num_clients, with_test=plan.holdout.sum() > 0,
                             buffer_bytes=buffer_bytes)
        bar = progress("pass 2/2: writing", total_rows)
        try:
            row_start = 0
            for batch in source.iter_batches():
                row_ids = pa.array(np.arange(row_start, row_start + batch.num_rows, dtype=np.int64))
                row_start += batch.num_rows
                batch = pa.RecordBatch.from_arrays([*batch.columns, row_ids], schema=out_schema)
                batch, key_codes, label_codes = _codes(batch, columns, key_counts, label_counts)
                destinations = assigner.assign(key_codes)
                writer.write(batch, destinations)
                if label_codes is not None:
                    client_labels += _count_pairs(destinations, label_codes, num_clients, n_labels)
                if bar is not None:
                    bar.update(len(row_ids))
        except BaseException:
            writer.abort()
            raise
        finally:
            if bar is not None:
                bar.close()
        if row_start != total_rows or not np.array_equal(assigner.seen, plan.key_counts):
            raise InputError(f"{source.description}: the input changed between the two passes")
        shards = writer.close()
        manifest = _build_manifest(
            source, partitioner, seed, test_frac, columns, total_rows, dropped,
            key_counts, label_counts, plan, shards, client_labels,
        )
        manifest.write(tmp)
        if plot:
            from fedpart.stats import write_label_plot

            write_label_plot(manifest, tmp)
    return manifest


def _count_pairs(
    destinations: np.ndarray, label_codes: np.ndarray, num_clients: int, n_labels: int
) -> np.ndarray:
    """``(num_clients + 1, n_labels)`` counts of (destination, label) pairs; the test split is last."""
    dest = np.where(destinations < 0, num_clients, destinations)
    flat = np.bincount(dest * n_labels + label_codes, minlength=(num_clients + 1) * n_labels)
    return flat.reshape(num_clients + 1, n_labels)


def _codes(
    batch: pa.RecordBatch,
    columns: Columns,
    key_counts: ValueCounts | None,
    label_counts: ValueCounts | None,
) -> tuple[pa.RecordBatch, np.ndarray, np.ndarray | None]:
    """Drop rows with a null key/label, and return key and label codes of the remaining rows."""
    key_codes = key_counts.codes(batch.column(columns.key)) if key_counts is not None else None
    label_codes = label_counts.codes(batch.column(columns.label)) if label_counts is not None else None
    present = [c for c in (key_codes, label_codes) if c is not None]
    if present and any(c.null_count for c in present):
        mask = present[0].is_valid()
        for codes in present[1:]:
            mask = pc.and_(mask, codes.is_valid())
        batch = batch.filter(mask)
        key_codes = key_codes.filter(mask) if key_codes is not None else None
        label_codes = label_codes.filter(mask) if label_codes is not None else None
    keys = (
        np.asarray(key_codes.to_numpy(), dtype=np.int64)
        if key_codes is not None
        else np.zeros(batch.num_rows, dtype=np.int64)
    )
    labels = np.asarray(label_codes.to_numpy(), dtype=np.int64) if label_codes is not None else None
    return batch, keys, labels


def _build_manifest(
    source: Source,
    partitioner: Any,
    seed: int,
    test_frac: float,
    columns: Columns,
    total_rows: int,
    dropped: int,
    key_counts: ValueCounts | None,
    label_counts: ValueCounts | None,
    plan: Any,
    shards: Sequence[WrittenShard],
    client_labels: np.ndarray,
) -> Manifest:
    num_clients = plan.num_clients
    has_labels = label_counts is not None
    separate_keys = key_counts is not None and columns.key != columns.label and partitioner.name != "natural"
    client_keys = plan.allocation.client_key_counts(plan.key_counts - plan.holdout) if separate_keys else None
    metrics = client_metrics(client_labels[:num_clients]) if has_labels else None
    records = []
    for client, shard in enumerate(shards[:num_clients]):
        records.append(
            ShardRecord(
                client_id=client,
                file=shard.file,
                rows=shard.rows,
                sha256=shard.sha256,
                label_counts=client_labels[client].tolist() if has_labels else None,
                key_counts=client_keys[client].tolist() if client_keys is not None else None,
                metrics=_metrics_record(metrics, client) if metrics is not None else None,
            )
        )
    test = None
    if len(shards) > num_clients:
        shard = shards[num_clients]
        test = ShardRecord(
            None, shard.file, shard.rows, shard.sha256,
            label_counts=client_labels[num_clients].tolist() if has_labels else None,
            key_counts=plan.holdout.tolist() if separate_keys else None,
        )
    sizes = np.array([r.rows for r in records])
    summary = partition_summary(client_labels[:num_clients] if has_labels else None, sizes)
    return Manifest(
        fedpart_version=__version__,
        input={"source": source.description, "columns": source.schema.names, **source.fingerprint()},
        scheme=partitioner.name,
        params={k: v for k, v in partitioner.params().items()},
        seed=seed,
        test_frac=test_frac,
        label_col=columns.label,
        key_col=columns.key,
        row_id_col=columns.row_id,
        rows={"input": total_rows, "dropped_null": dropped, "written": int(sum(s.rows for s in shards))},
        labels=_json_values(label_counts.values) if has_labels else None,
        keys=_json_values(key_counts.values) if separate_keys else None,
        clients=records,
        test=test,
        metrics=summary,
    )
