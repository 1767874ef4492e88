"""The partition pipeline: read -> count -> plan -> assign -> write -> report.

:func:`partition` is the library entry point behind ``fedpart partition``. It makes two streaming
passes over the input: pass 1 counts rows per key, :func:`fedpart.plan.draw_plan` draws the plan
from the counts and the seed, and pass 2 assigns every row to exactly one client and writes the
shards into a temporary directory that is renamed into place only when everything succeeded.
``--scheme cluster`` adds a pass 0 that fits the text clusterer.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpart._version import __version__
from fedpart.assign import RowAssigner
from fedpart.checks import check_path, check_seed
from fedpart.counting import CountResult, ValueCounts, count_values, counted_type
from fedpart.errors import InputError, OutputError, PlanError
from fedpart.io.output_dir import atomic_output_dir, check_output_not_over_inputs, check_output_path
from fedpart.io.shards import DEFAULT_BUFFER_BYTES, ShardWriter, WrittenShard
from fedpart.io.prefetch import prefetch
from fedpart.io.sources import (
    HF_PREFIX,
    ReadOptions,
    Source,
    check_local_for_ray,
    input_files,
    open_source,
    portable_source,
    warn_if_header_looks_like_data,
)
from fedpart.manifest import MANIFEST_FILE, Manifest, ShardRecord
from fedpart.metrics import client_metrics, client_record, partition_summary
from fedpart.partitioners import Partitioner, make_partitioner
from fedpart.partitioners.params import check_int_at_least
from fedpart.plan import Plan, check_test_frac, draw_plan

ProgressFactory = Callable[[str, int | None], Any]
ENGINES = ("local", "ray")
CLUSTERS_FILE = "clusters.npz"
MAX_KEY_TALLY = 2_000_000


@dataclass(frozen=True)
class Columns:
    """Which columns play which role: label (metrics), key (skew), group (kept together), row id."""

    label: str | None
    key: str | None
    row_id: str
    group: str | None = None

    @property
    def counted(self) -> list[str]:
        return [c for c in dict.fromkeys([self.key, self.label]) if c is not None]


def _resolve_columns(
    partitioner: Partitioner, label_col: str | None, by: str | None, group_col: str | None, row_id_col: str,
    key_options: str,
) -> Columns:
    """The column roles; ``key_options`` (:func:`_key_options`) says what to pass when the scheme
    needs a key and has none."""
    scheme = partitioner.name
    if scheme == "natural" and by is None:
        raise InputError("--scheme natural needs --by COLUMN (the natural id: user, author, title...)")
    if partitioner.requires_key and by is None and label_col is None:
        raise InputError(f"--scheme {scheme} needs {key_options}")
    # a natural id is itself the unit that stays together; groups would only be nested inside it
    group = None if scheme == "natural" else group_col
    return Columns(label=label_col, key=by or label_col, row_id=row_id_col, group=group)


def _key_options(task_obj: Any, names: Sequence[str]) -> str:
    """What to pass for a key: ``--label-col``, or with a task that has no label ``--by COLUMN`` (with
    an example column of the input, if it has one)."""
    if task_obj is None:
        return "--label-col (or --by COLUMN to skew on another column)"
    examples = [c for c in task_obj.by_examples if c in names]
    example = f"e.g. --by {examples[0]}" if examples else "a categorical column of the input"
    return f"--by COLUMN ({example}): --task {task_obj.name} has no label to skew on"


def _check_group_col(group_col: str | None, partitioner: Partitioner, task: str | None) -> None:
    """Refuse a ``--group-col`` that would replace a task's own grouping (naming that grouping's
    column is fine) or that natural ignores; before the input is opened (an hf:// input is downloaded)."""
    if group_col is None:
        return
    from fedpart.tasks import get_task

    task_obj = get_task(task) if task is not None else None
    if task_obj is not None and task_obj.group_col not in (None, group_col):
        examples = "".join(f" --by {c}" for c in task_obj.by_examples[:1]) or " --by COLUMN"
        raise InputError(
            f"--group-col does not apply to --task {task_obj.name}: it already keeps all rows of one "
            f"{task_obj.group_col} on one client (never split between clients or test); to keep larger "
            f"units together use --scheme natural{examples}"
        )
    if partitioner.name == "natural":
        raise InputError(
            "--group-col does not apply to --scheme natural: all rows of one --by value already stay on "
            "one client; drop --group-col"
        )


def _check_schema(source: Source, columns: Columns) -> None:
    source.require_columns([columns.label, columns.key, columns.group], ["--label-col", "--by", "--group-col"])
    if not columns.row_id.strip():
        raise InputError("--row-id-col must name a column (got an empty name)")
    if columns.row_id in source.schema.names:
        raise InputError(
            f"{source.description}: already has a column {columns.row_id!r}; pass --row-id-col NAME "
            "to store fedpart's row ids under another name"
        )
    for col in columns.counted:
        col_type = source.schema.field(col).type
        value_type = counted_type(col_type)
        if pa.types.is_nested(value_type) or pa.types.is_floating(value_type):
            raise InputError(
                f"{source.description}: column {col!r} has type {col_type}; a label or --by column "
                "must hold categorical values (integers, strings, booleans)"
            )
    if columns.group is not None:
        group_type = source.schema.field(columns.group).type
        if pa.types.is_nested(counted_type(group_type)):  # Arrow groups by no list or struct
            raise InputError(
                f"{source.description}: column {columns.group!r} (from --group-col) has type {group_type}; "
                "a group column must hold one id per row (integers, strings, ...): name another column"
            )


def _check_nulls(nulls: dict[str, int], drop_null_labels: bool, description: str) -> None:
    for col, n_null in nulls.items():
        if n_null and not drop_null_labels:
            raise InputError(
                f"{description}: column {col!r} has {n_null} null value(s); clean them, or "
                "pass --drop-null-labels to drop those rows (their count is recorded in the manifest)"
            )


def _json_values(values: pa.Array, col_type: pa.DataType | None = None) -> list[Any]:
    """Counted values as JSON values: binary ones decoded as UTF-8 (undecodable bytes as ``\\xNN``),
    those of an extension column ``col_type`` as its values print (a uuid as ``8-4-4-4-12`` hex)."""
    if isinstance(col_type, pa.BaseExtensionType) and values.type == col_type.storage_type:
        values = pa.ExtensionArray.from_storage(col_type, values)
    return [
        v if isinstance(v, (int, str, bool))
        else v.decode("utf-8", errors="backslashreplace") if isinstance(v, bytes)
        else str(v)
        for v in values.to_pylist()
    ]


def _no_progress(desc: str, total: int | None) -> Any:
    return None


def _open_input(
    spec: str,
    task: str | None,
    columns: Any,
    drop_invalid: bool,
    read_options: ReadOptions,
    hf_split: str | None,
    hf_config: str | None,
) -> tuple[Source, Any]:
    """Open the input, through a task's canonical reader when ``task`` is given."""
    from fedpart.tasks import ColumnMap, TaskOptions, get_task

    if columns is not None and not isinstance(columns, ColumnMap):
        raise InputError(f"columns must be a fedpart ColumnMap (e.g. ColumnMap(text=('title',))), got {columns!r}")
    if task is None:
        if drop_invalid:
            raise InputError("--drop-invalid needs --task (validation is task-specific)")
        mapped = [name for name, value in vars(columns or ColumnMap()).items() if value is not None]
        if mapped:
            raise InputError(
                f"{', '.join(f'--{name}-col' for name in mapped)} (ColumnMap field {', '.join(mapped)}) name a "
                "task's input columns and need --task; without --task the input's columns are kept as they "
                "are (name the label with --label-col / label_col=)"
            )
        source = open_source(spec, read_options, hf_split=hf_split, hf_config=hf_config)
        warn_if_header_looks_like_data(source)  # its columns are taken as they are
        return source, None

    task_obj = get_task(task)
    options = TaskOptions(
        columns=columns or ColumnMap(), drop_invalid=drop_invalid, read=read_options,
        hf_split=hf_split, hf_config=hf_config,
    )
    return task_obj.open(spec, options), task_obj


def _map_task_columns(
    task: str, columns: Any, label_col: str | None, text_col: Sequence[str] | None
) -> Any:
    """With a task, ``label_col``/``text_col`` name *input* columns: fold them into the ColumnMap."""
    from dataclasses import replace

    from fedpart.tasks import ColumnMap, get_task

    get_task(task)  # an unknown --task says so before its options are judged
    columns = columns or ColumnMap()
    if label_col is not None:
        if task != "tc":
            raise InputError(f"--label-col does not apply to --task {task} (its key is derived by the task)")
        columns = replace(columns, label=label_col)
    if text_col:
        if task not in ("tc", "lm"):
            raise InputError(f"--text-col does not apply to --task {task}; see `fedpart partition --help`")
        columns = replace(columns, text=tuple(text_col))
    return columns


def _add_cluster_column(
    source: Source, partitioner: Any, text_cols: Sequence[str], seed: int, progress: ProgressFactory
) -> tuple[Source, Any]:
    """Pass 0 of ``--scheme cluster``: fit the clusterer, return the source with a cluster column."""
    from fedpart.clustering import TextClusterer, check_text_columns, texts_of
    from fedpart.io.transform import TransformedSource

    source.require_columns(list(text_cols), ["--text-col"] * len(text_cols))
    check_text_columns(source.schema, text_cols, source.description)
    key = partitioner.derived_key
    if key in source.schema.names:
        raise InputError(f"{source.description}: already has a column {key!r}, which --scheme cluster writes")
    clusterer = TextClusterer(partitioner.clusters, seed=seed, embedder=partitioner.embedder)
    bar = progress("pass 0: clustering", source.count_rows())
    batches = (
        (texts_of(b, text_cols), bar.update(b.num_rows) if bar is not None else None)[0]
        for b in source.iter_batches(list(text_cols))
    )
    clusterer.fit(batches)
    if bar is not None:
        bar.close()
    schema = source.schema.append(pa.field(key, pa.int64()))

    def add_cluster(batch: pa.RecordBatch) -> pa.RecordBatch:
        ids = pa.array(clusterer.predict(texts_of(batch, text_cols)), pa.int64())
        return pa.RecordBatch.from_arrays([*batch.columns, ids], schema=schema)

    return TransformedSource(source, add_cluster, schema), clusterer


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
    clusters: int | None = None,
    embedder: str | None = None,
    test_frac: float = 0.0,
    seed: int = 0,
    task: str | None = None,
    columns: Any = None,
    text_col: Sequence[str] | None = None,
    group_col: str | None = None,
    drop_invalid: bool = False,
    drop_null_labels: bool = False,
    overwrite: bool = False,
    row_id_col: str = "row_id",
    read_options: ReadOptions = ReadOptions(),
    hf_split: str | None = None,
    hf_config: str | None = None,
    buffer_bytes: int | None = None,
    plot: bool = True,
    progress: ProgressFactory | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    piece_rows: int | None = None,
) -> Manifest:
    """Partition ``input`` into client shards under ``out`` and return the manifest.

    ``input`` is a file, directory, glob or ``hf://NAME``. With ``task`` (``tc``, ``st``, ``qa``,
    ``s2s``) it is read in that task's formats and canonical columns (``columns``: a
    :class:`fedpart.tasks.ColumnMap` of input names), validated, and keyed as the task says (label,
    dominant entity type, QA contexts kept whole). ``group_col`` keeps rows with equal values on
    one client (QA sets it to ``context`` and refuses another column).

    The result is an exact cover: every input row (except rows dropped with ``drop_null_labels`` or
    ``drop_invalid``, which are counted) is in exactly one shard, carrying its 0-based input position
    in ``row_id_col``. Same input, parameters and seed give byte-identical shards and manifest.

    ``engine="ray"`` runs both passes on Ray Data (:mod:`fedpart.raydata`; ``ray_address`` as in
    ``ray.init``, e.g. ``"auto"``; default: a local Ray): the input's pieces (runs of Parquet row
    groups of at least ``piece_rows`` rows, or whole files of other formats) are counted and written
    in parallel, every row goes to the same client as with the local engine, and each client is a
    directory of part files (listed in the manifest).

    ``buffer_bytes``: bytes of rows held before row groups are written (row-group sizes, not the
    rows, depend on it); ``None``: 192 MiB for the local engine, 128 MiB per piece in flight on Ray.

    Raises:
        InputError, PlanError, OutputError: with a one-line message saying what to change.
    """
    progress = progress or _no_progress
    check_path(input, "input")
    check_path(out, "out")
    if not isinstance(row_id_col, str):
        raise InputError(f"row_id_col must be a column name (a str), got {row_id_col!r}")
    seed = check_seed(seed)
    test_frac = check_test_frac(test_frac)
    if isinstance(text_col, str):  # comma-separated as --text-col, not a sequence of one-letter names
        text_col = tuple(name.strip() for name in text_col.split(",") if name.strip())
    if not isinstance(read_options, ReadOptions):
        raise InputError(
            "read_options must be a fedpart ReadOptions (e.g. ReadOptions(column_names=(...))), "
            f"got {type(read_options).__name__}"
        )
    if engine not in ENGINES:
        raise InputError(f"unknown --engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "ray":
        check_local_for_ray(os.fspath(input))
    partitioner = make_partitioner(
        scheme, num_clients=clients, alpha=alpha, labels_per_client=labels_per_client,
        size_dist=size_dist, sigma=sigma, min_client_size=min_client_size, clusters=clusters,
        embedder=embedder,
    )
    if piece_rows is not None:
        piece_rows = check_int_at_least(piece_rows, "--piece-rows", 1)
    if buffer_bytes is not None:
        buffer_bytes = check_int_at_least(buffer_bytes, "buffer_bytes", 1)
    derived_key = getattr(partitioner, "derived_key", None)
    if text_col and task is None and derived_key is None:
        raise InputError(
            "--text-col applies with --task (tc, lm: the text columns to join) or --scheme cluster (the "
            "text to cluster); drop it, the input's columns are kept as they are"
        )
    out = Path(out)
    check_output_path(out, overwrite, MANIFEST_FILE)
    if task is not None:
        # with a task these name input columns; the canonical ones are the task's own
        columns = _map_task_columns(task, columns, label_col, text_col)
        text_col = None
    _check_group_col(group_col, partitioner, task)
    spec = os.fspath(input)
    source, task_obj = _open_input(spec, task, columns, drop_invalid, read_options, hf_split, hf_config)
    # the spec too: a directory or glob the output lies in would read it back on the next run
    check_output_not_over_inputs(out, [*input_files(source), *([] if spec.startswith(HF_PREFIX) else [spec])])
    if task_obj is not None:
        label_col = task_obj.label_col
        group_col = group_col or task_obj.group_col
    clusterer = None
    if derived_key is not None:
        if by is not None:
            raise InputError("--by does not apply to --scheme cluster (the key is the cluster id)")
        if engine != "local":
            raise InputError("--scheme cluster runs on --engine local only (its clusterer is fitted in one process)")
        text_cols = tuple(text_col) if text_col else (task_obj.text_cols if task_obj is not None else ())
        if not text_cols:
            raise InputError("--scheme cluster needs --task or --text-col COLUMN (the text to cluster)")
        # the other columns are checked before pass 0, which reads (and embeds) the whole input
        _check_schema(source, Columns(label=label_col, key=None, row_id=row_id_col, group=group_col))
        source, clusterer = _add_cluster_column(source, partitioner, text_cols, seed, progress)
        by = derived_key
    roles = _resolve_columns(
        partitioner, label_col, by, group_col, row_id_col, _key_options(task_obj, source.schema.names)
    )
    _check_schema(source, roles)
    passes: Any = _LocalPasses()
    if engine == "ray":
        from fedpart.raydata.partition import RayPasses

        passes = RayPasses(source, ray_address, piece_rows)
    elif piece_rows is not None or ray_address is not None:
        raise InputError("--piece-rows and --ray-address apply to --engine ray only")

    with passes.session():  # a Ray session spans both passes
        counted = passes.count(source, roles, progress)
        if counted.total_rows == 0:
            raise InputError(f"{source.description}: the input is empty (no rows)")
        if roles.group and counted.nulls.get(roles.group):
            raise InputError(
                f"{source.description}: column {roles.group!r} has {counted.nulls[roles.group]} null value(s); "
                "every row needs a group value"
            )
        _check_nulls(counted.nulls, drop_null_labels, source.description)
        if counted.complete_rows == 0:
            raise InputError(f"{source.description}: no rows left after dropping null labels")
        key_counts = counted.values[roles.key] if roles.key else None
        label_counts = counted.values[roles.label] if roles.label else None

        if counted.groups is not None:  # the plan's units are groups
            n_keys = len(key_counts.values) if key_counts is not None else 1
            unit_counts = counted.groups.groups_per_key(n_keys)
        else:
            unit_counts = key_counts.counts if key_counts is not None else np.array([counted.complete_rows])
        plan = _draw_plan(partitioner, unit_counts, seed, test_frac, roles, counted)

        with atomic_output_dir(out, overwrite, MANIFEST_FILE) as tmp, ThreadPoolExecutor(max_workers=1) as background:
            # hashing the input files is a full read: overlap it with pass 2 (hashlib releases the GIL)
            fingerprint = background.submit(passes.fingerprint, source)
            written = passes.assign_and_write(source, roles, plan, counted, tmp, buffer_bytes, progress)
            manifest = _build_manifest(
                source, partitioner, seed, test_frac, roles, counted, key_counts, label_counts, plan,
                written, task_obj, dict(passes.invalid(source)), fingerprint.result(),
            )
            manifest.extra.update(passes.manifest_extra())
            if clusterer is not None:
                clusterer.save(tmp / CLUSTERS_FILE)
                manifest.extra["clusters_file"] = CLUSTERS_FILE
            manifest.write(tmp)
            if plot:
                from fedpart.stats import write_label_plot

                write_label_plot(manifest, tmp)
        return manifest


def _draw_plan(
    partitioner: Partitioner, unit_counts: np.ndarray, seed: int, test_frac: float, roles: Columns,
    counted: CountResult,
) -> Plan:
    """:func:`draw_plan`; when rows are grouped, a refusal says that its "rows" are groups."""
    try:
        return draw_plan(partitioner, unit_counts, seed, test_frac)
    except (PlanError, InputError) as error:
        if counted.groups is None:
            raise
        raise type(error)(
            f"{error} (with grouped rows the plan counts groups of {roles.group!r}, not rows: "
            f"{len(counted.groups.groups)} groups in {counted.complete_rows} rows; --min-client-size "
            "and --clients are checked against groups)"
        ) from error


class _LocalPasses:
    """Pass 1 and pass 2 in this process (the Ray engine's :class:`fedpart.raydata.partition.RayPasses`
    has the same methods)."""

    def count(self, source: Source, roles: Columns, progress: ProgressFactory) -> CountResult:
        return _count(source, roles, progress)

    def assign_and_write(self, *args: Any) -> WrittenShards:
        return _assign_and_write(*args)

    def invalid(self, source: Source) -> Mapping[str, int]:
        return source.invalid

    def manifest_extra(self) -> dict[str, Any]:
        return {}

    def fingerprint(self, source: Source) -> dict[str, Any]:
        return source.fingerprint()

    def session(self) -> AbstractContextManager[Any]:
        return nullcontext()


def _count(source: Source, roles: Columns, progress: ProgressFactory) -> CountResult:
    """Pass 1: rows per key/label value, and rows per group when rows are grouped."""
    bar = progress("pass 1/2: counting", source.count_rows())
    read = [*roles.counted, *([roles.group] if roles.group else [])] or [source.schema.names[0]]
    counted = count_values(
        source.iter_batches(list(dict.fromkeys(read))),
        roles.counted,
        on_batch=bar.update if bar is not None else None,
        group_col=roles.group,
        group_key=roles.key,
    )
    if bar is not None:
        bar.close()
    return counted


@dataclass
class WrittenShards:
    """What pass 2 wrote: one shard per client (then the test split), and per-client tallies."""

    shards: list[Any]  # WrittenShard, or the Ray engine's PartedShard (a directory of part files)
    client_labels: np.ndarray | None
    client_keys: np.ndarray | None


def _assign_and_write(
    source: Source,
    roles: Columns,
    plan: Plan,
    counted: CountResult,
    directory: Path,
    buffer_bytes: int | None,
    progress: ProgressFactory,
) -> WrittenShards:
    """Pass 2: assign every row to its client and write the shards; count what was written
    (``buffer_bytes``: ``None`` for :data:`DEFAULT_BUFFER_BYTES`)."""
    from fedpart.grouping import GroupAssigner

    key_counts = counted.values.get(roles.key) if roles.key else None
    label_counts = counted.values.get(roles.label) if roles.label else None
    num_clients = plan.num_clients
    assigner: Any = GroupAssigner(plan, counted.groups) if counted.groups is not None else RowAssigner(plan)
    label_tally, key_tally = make_tallies(roles, num_clients, key_counts, label_counts)

    out_schema = source.schema.append(pa.field(roles.row_id, pa.int64(), nullable=False))
    writer = ShardWriter(directory, out_schema, num_clients, with_test=bool(plan.holdout.sum() > 0),
                         buffer_bytes=DEFAULT_BUFFER_BYTES if buffer_bytes is None else buffer_bytes,
                         expected_rows=counted.complete_rows)
    bar = progress("pass 2/2: writing", counted.total_rows)
    try:
        rows_seen = route_rows(
            prefetch(source.iter_batches_with_ids()), roles, counted, assigner, writer, out_schema,
            (label_tally, key_tally), on_batch=bar.update if bar is not None else None,
        )
        shards = writer.close()  # the last flush writes most rows and can fail too
    except BaseException:
        writer.abort()  # frees the open files, so the temp directory can be removed
        raise
    finally:
        if bar is not None:
            bar.close()
    written = sum(s.rows for s in shards)
    if rows_seen != counted.total_rows or written != counted.complete_rows:
        raise InputError(f"{source.description}: the input changed between the two passes")
    return WrittenShards(
        shards,
        label_tally.counts if label_tally is not None else None,
        key_tally.counts if key_tally is not None else None,
    )


def route_rows(
    batches: Iterable[tuple[pa.RecordBatch, np.ndarray]],
    roles: Columns,
    counted: CountResult,
    assigner: Any,
    writer: Any,
    out_schema: pa.Schema,
    tallies: tuple[PairTally | None, PairTally | None],
    first_row: int = 0,
    on_batch: Callable[[int], Any] | None = None,
) -> int:
    """Pass 2's loop: give each row its row id (input position + ``first_row``), drop rows with a
    null key/label, assign the rest with ``assigner`` and hand them to ``writer.write``; tally
    (label, key) per destination. Returns the rows read."""
    key_counts = counted.values.get(roles.key) if roles.key else None
    label_counts = counted.values.get(roles.label) if roles.label else None
    label_tally, key_tally = tallies
    rows_seen = 0
    for batch, positions in batches:
        rows_seen += batch.num_rows
        ids = pa.array(positions + first_row if first_row else positions)
        batch = pa.RecordBatch.from_arrays([*batch.columns, ids], schema=out_schema)
        batch, key_codes, label_codes = row_codes(batch, roles, key_counts, label_counts)
        if counted.groups is not None:
            destinations = assigner.assign(batch.column(roles.group))
        else:
            destinations = assigner.assign(key_codes)
        writer.write(batch, destinations)
        if label_tally is not None:
            label_tally.add(destinations, label_codes)
        if key_tally is not None:
            key_tally.add(destinations, key_codes)
        if on_batch is not None:
            on_batch(batch.num_rows)
    return rows_seen


def make_tallies(
    roles: Columns, num_clients: int, key_counts: ValueCounts | None, label_counts: ValueCounts | None
) -> tuple[PairTally | None, PairTally | None]:
    """Per-client label and key tallies of pass 2 (``None`` where not recorded)."""
    # per-client key counts are a dense (clients x keys) tally: skip it when that would be large
    # (e.g. natural ids with one client per id)
    track_keys = (
        key_counts is not None
        and roles.key != roles.label
        and num_clients * len(key_counts.values) <= MAX_KEY_TALLY
    )
    label_tally = PairTally(num_clients, len(label_counts.values)) if label_counts is not None else None
    key_tally = PairTally(num_clients, len(key_counts.values)) if track_keys else None
    return label_tally, key_tally


class PairTally:
    """``(num_clients + 1, n_values)`` counts of (destination, value code); the test split is last."""

    def __init__(self, num_clients: int, n_values: int) -> None:
        self.num_clients, self.n_values = num_clients, n_values
        self.counts = np.zeros((num_clients + 1, n_values), dtype=np.int64)

    def add(self, destinations: np.ndarray, codes: np.ndarray) -> None:
        dest = np.where(destinations < 0, self.num_clients, destinations)
        flat = np.bincount(dest * self.n_values + codes, minlength=self.counts.size)
        self.counts += flat.reshape(self.counts.shape)


def row_codes(
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


def _summary(
    labels: np.ndarray | None, keys: np.ndarray | None, sizes: np.ndarray, num_clients: int
) -> dict[str, Any]:
    """Size and label-skew metrics, plus skew of the partition key when it is not the label."""
    summary = partition_summary(labels[:num_clients] if labels is not None else None, sizes)
    if keys is not None:
        key_summary = partition_summary(keys[:num_clients], sizes)
        summary["key"] = {k: v for k, v in key_summary.items() if k.startswith(("mean_", "global_"))}
    return summary


def _build_manifest(
    source: Source,
    partitioner: Partitioner,
    seed: int,
    test_frac: float,
    roles: Columns,
    counted: CountResult,
    key_counts: ValueCounts | None,
    label_counts: ValueCounts | None,
    plan: Plan,
    written: WrittenShards,
    task_obj: Any,
    invalid: dict[str, int],
    fingerprint: dict[str, Any],
) -> Manifest:
    num_clients = plan.num_clients
    labels = written.client_labels
    keys = written.client_keys
    metrics = client_metrics(labels[:num_clients]) if labels is not None else None
    records = [
        ShardRecord(
            client_id=client,
            file=shard.file,
            rows=shard.rows,
            sha256=shard.sha256,
            label_counts=labels[client].tolist() if labels is not None else None,
            key_counts=keys[client].tolist() if keys is not None else None,
            metrics=client_record(metrics, client) if metrics is not None else None,
            parts=getattr(shard, "parts", None),
        )
        for client, shard in enumerate(written.shards[:num_clients])
    ]
    test = None
    if len(written.shards) > num_clients:
        shard = written.shards[num_clients]
        test = ShardRecord(
            None, shard.file, shard.rows, shard.sha256,
            label_counts=labels[num_clients].tolist() if labels is not None else None,
            key_counts=keys[num_clients].tolist() if keys is not None else None,
            parts=getattr(shard, "parts", None),
        )
    sizes = np.array([r.rows for r in records])
    rows = {
        "input": counted.total_rows,
        "dropped_null": counted.total_rows - counted.complete_rows,
        "written": int(sum(s.rows for s in written.shards)),
    }
    if task_obj is not None:  # invalid rows never reach the counting pass: add them back to the input
        rows["dropped_invalid"] = int(sum(invalid.values()))
        rows["input"] += rows["dropped_invalid"]
    extra: dict[str, Any] = {}
    if invalid:
        extra["invalid_rows"] = dict(sorted(invalid.items()))
    if counted.groups is not None:
        extra["groups"] = {
            "column": roles.group,
            "count": len(counted.groups.groups),
            "note": "plan quotas, sizes in the plan and --min-client-size count groups, not rows",
        }
    return Manifest(
        fedpart_version=__version__,
        input={"source": portable_source(source.description), "columns": source.schema.names, **fingerprint},
        scheme=partitioner.name,
        params=partitioner.params(),
        seed=seed,
        test_frac=test_frac,
        label_col=roles.label,
        key_col=roles.key,
        row_id_col=roles.row_id,
        rows=rows,
        labels=(
            _json_values(label_counts.values, source.schema.field(roles.label).type)
            if label_counts is not None else None
        ),
        keys=(
            _json_values(key_counts.values, source.schema.field(roles.key).type)
            if keys is not None and key_counts is not None else None
        ),
        clients=records,
        test=test,
        metrics=_summary(labels, keys, sizes, num_clients),
        task=task_obj.name if task_obj is not None else None,
        group_col=roles.group,
        extra=extra,
    )
