"""``fedpart train``: load a partition directory, featurise every client once, run the rounds.

A run directory holds ``config.json`` (every hyper-parameter and the partition's manifest digest),
``environment.json`` (software versions and device), the task's vocabulary/labels,
``metrics.jsonl`` (one line per evaluated round: metrics, the round's mean local training loss,
sampled clients, wall time, bytes communicated), ``checkpoint.pt`` (written atomically after every
round), ``model.pt`` and, written last, ``finished.json``: only a directory with it is a finished
run that ``distill`` and ``eval bias`` accept. ``resume=True`` continues a killed run from its last
checkpoint; because every random choice is seeded by round, the result equals an uninterrupted run.

Every input is validated (partition shards against their manifest sha256, task, evaluation data,
device) before the run directory is created or cleared; a run that fails before its first
checkpoint removes what it wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from fedpart.checks import check_path
from fedpart.errors import DivergedError, ExcessClientsWarning, FedpartWarning, InputError, OutputError
from fedpart.io.output_dir import check_output_not_over_inputs, check_replaceable, write_text_atomic
from fedpart.manifest import Manifest, ShardRecord
from fedpart.partitioners.params import check_int_at_least
from fedpart.tasks import TASK_NAMES, ColumnMap, TaskOptions, get_task
from fedpart.tasks.base import describe_invalid, tally_invalid
from fedpart.tasks.models import make_hf_task_model, make_task_model
from fedpart.tasks.models.base import Batch, TaskModel
from fedpart.train.federated import FederatedConfig, ServerState, federated_round, mean_train_loss
from fedpart.train.rundir import (  # noqa: F401 - CONFIG_FILE, METRICS_FILE, MODEL_FILE: the layout, re-exported
    CHECKPOINT_FILE,
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    FINISHED_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_MARKERS,
    is_finished_run,
    is_run_dir,
    not_a_run,
    parse_metrics,
    read_json_object,
    read_run_config,
    write_json_object,
)
from fedpart.verify import manifest_digest
from fedpart.verify import verify_partition  # noqa: F401 - re-exported: distill and older callers import it here

#: ``config.json`` settings that are paths: compared resolved on ``--resume``
PATH_SETTINGS = ("partition", "eval_data", "teacher", "data", "hf_model")
#: torch device types fedpart trains on
DEVICE_TYPES = ("cpu", "cuda")
#: what each data option of ``train``/``distill``/``eval bias`` holds, for messages
DATA_ROLES = {"--eval-data": "evaluation data", "--data": "distillation data"}
#: label values an error message shows
SHOWN_LABELS = 4


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during the rounds of a run that keeps a checkpoint: ``str()`` says how to continue it."""


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; otherwise ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InputError(f"--device {device!r} is not a torch device (use auto, cpu, cuda, cuda:1)") from error
    if resolved.type not in DEVICE_TYPES:
        raise InputError(f"--device {device!r}: fedpart trains on auto, cpu, cuda or cuda:N only")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA device; use --device auto or cpu")
    return resolved


def canonical_table(path: Path, task: str) -> pa.Table:
    """A shard in the task's canonical columns (shards written without --task are mapped here)."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"{path}: not a readable Parquet file ({str(error).splitlines()[0]})") from error
    return _to_canonical(table, task, path)


def shard_table(partition_dir: Path, record: ShardRecord, task: str) -> pa.Table:
    """One shard in the task's canonical columns: its file, or the part files the manifest lists for
    a Ray shard (a directory), in order -- never other files that may lie in that directory.

    Raises:
        InputError: the shard lacks a column of the task (a partition made without ``--task``); the
        message says to name it when partitioning, as a run cannot rename a shard's columns.
    """
    try:
        if record.parts is None:
            return canonical_table(partition_dir / record.file, task)
        tables = [canonical_table(partition_dir / name, task) for name in record.part_files]
        return pa.concat_tables(tables) if tables else canonical_table(partition_dir / record.file, task)
    except InputError as error:
        raise InputError(_hint_options(str(error), lambda flag: (
            f"; re-partition naming it: `fedpart partition INPUT --task {task} {flag} COLUMN ...`"))) from error


def _to_canonical(table: pa.Table, task: str, path: Path) -> pa.Table:
    bound = get_task(task).bind(table.schema, ColumnMap(), str(path))
    batches = [bound.to_canonical(batch) for batch in table.to_batches()]
    return pa.Table.from_batches(batches, schema=bound.schema)


@dataclass
class RunData:
    clients: list[Batch]
    sizes: list[int]
    test: Batch
    test_table: pa.Table


def check_partition_task(partition_dir: Path, manifest: Manifest, task: str, teacher: Path | None = None) -> None:
    """Refuse a partition made with another ``--task`` (its shards hold that task's columns).

    A ``tc`` partition may be read as ``lm``: language modelling on the texts of a classification
    corpus is legitimate (the labels are ignored). Partitions made without ``--task`` are mapped by
    :func:`canonical_table`. ``teacher``: the partition is ``distill --data`` for that teacher run,
    whose task fixes ``task`` (the message says so instead of suggesting another ``--task``).
    """
    if manifest.task is None or manifest.task == task or (task == "lm" and manifest.task == "tc"):
        return
    if teacher is not None:
        raise InputError(f"{partition_dir} was made with --task {manifest.task}, but the teacher {teacher} is a "
                         f"--task {task} run; distil it on data of its task (a partition made with --task {task}, "
                         "or a data file)")
    raise InputError(f"{partition_dir} was made with --task {manifest.task}; train it with --task {manifest.task} "
                     "(or re-partition)")


def read_evaluation_table(path: Path, task: str, flag: str = "--eval-data") -> pa.Table:
    """Evaluation data in the task's canonical columns: a Parquet file (or a directory of part
    files), or any other file the task reads (CSV, TSV, JSONL; CoNLL for st; SQuAD JSON for qa).

    ``flag``: the option that named the file (``--eval-data``, ``distill``'s ``--data``), which
    the messages tell to pass a converted file to.

    Raises:
        InputError: the file is missing, unreadable or has no rows.
    """
    if not path.exists():  # a file, or a directory of part files (Ray engine)
        raise InputError(f"{path}: no such {_data_role(flag).removesuffix(' data')} file ({flag})")
    try:
        if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
            table = canonical_table(path, task)
        else:
            source = get_task(task).open(str(path))
            table = pa.Table.from_batches(list(source.iter_batches()), schema=source.schema)
    except InputError as error:
        if _has_no_rows(path, task):  # a header-only CSV has untyped (null) columns: not the problem
            raise InputError(f"{path}: the {_data_role(flag)} has no rows") from error
        raise InputError(_evaluation_hint(str(error), path, task, flag)) from error
    if table.num_rows == 0:
        raise InputError(f"{path}: the {_data_role(flag)} has no rows")
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):  # the task readers check the other formats
        check_rows_valid(table, task, path, flag)
    return table


def check_rows_valid(table: pa.Table, task: str, path: Path, flag: str) -> None:
    """Refuse a canonical ``table`` with rows the task's reader would refuse (an empty text, tags
    of another length than the tokens, an answer away from its ``answer_start``): a Parquet file is
    read as it is, so it gets the reader's checks here.

    Raises:
        InputError: per reason, how many rows and the first, with the way to a clean copy.
    """
    bound = get_task(task).bind(table.schema, ColumnMap(), str(path))
    invalid: dict[str, int] = {}
    first: dict[str, tuple[int, str]] = {}
    offset = 0
    for batch in table.to_batches():
        tally_invalid(bound, batch, offset, invalid, first)
        offset += batch.num_rows
    if invalid:
        raise InputError(f"{path}: {describe_invalid(invalid, first)}; fix the {_data_role(flag)}, or write a copy "
                         f"without those rows with `fedpart convert {path} --task {task} --drop-invalid "
                         "--out FILE.parquet`")


def _data_role(flag: str) -> str:
    """What the data given with ``flag`` is, for messages (``"data"`` for an option not in :data:`DATA_ROLES`)."""
    return DATA_ROLES.get(flag, "data")


def _has_no_rows(path: Path, task: str) -> bool:
    """Whether ``path`` reads as a file without data rows (``False`` when it cannot be read at all)."""
    try:
        source = get_task(task).open_raw(str(path), TaskOptions())
        return not any(batch.num_rows for batch in source.iter_batches())
    except (InputError, pa.ArrowException, OSError):
        return False


def _hint_options(message: str, hint: Callable[[str], str]) -> str:
    """``message`` of a task reader with its advice "; name it with --X-col" (an option of
    ``partition``/``convert``) replaced by ``hint(flag)``: what the command that prints it can do."""
    return re.sub(r"; name it with (--[\w-]+)", lambda match: hint(match.group(1)), message)


def _evaluation_hint(message: str, path: Path, task: str, flag: str = "--eval-data") -> str:
    """``message`` about unreadable data given with ``flag``, with what to do: write it in the
    task's columns with ``fedpart convert`` (the readers' own hints name options of
    ``partition``/``convert``, which ``train``, ``distill`` and ``eval bias`` lack)."""
    def convert(options: str) -> str:
        return f"`fedpart convert {path} --task {task}{options} --out FILE.parquet`"

    # an unknown extension: the readers suggest --format, an option of convert
    message, count = re.subn(r" \(or pass --format ([\w|]+)\)$", lambda match: (
        f"; rename it with one of these extensions, or write it as Parquet with {convert(' --format FORMAT')} "
        f"(FORMAT: {match.group(1).replace('|', ', ')}) and pass {flag} FILE.parquet"), message)
    if count:
        return message
    message = message.replace(", or pass --format", "")  # the suffix below says how to convert it
    hinted = _hint_options(message, lambda option: f"; write it in the task's columns with "
                           f"{convert(f' {option} COLUMN')} and pass {flag} FILE.parquet")
    hinted = hinted.replace("; pick the text with --text-col", f"; write it in the task's columns with "
                            f"{convert(' --text-col COLUMN')} and pass {flag} FILE.parquet")
    if hinted != message:
        return hinted
    return (f"{message} ({_data_role(flag)}: Parquet, or CSV/TSV/JSONL with the task's columns; write other "
            f"layouts with {convert('')})")


def model_labels(task_model: TaskModel) -> tuple[str, set[Any]] | None:
    """``(column, known values)`` that data for ``task_model`` must keep to: the ``label`` values of a
    classifier, the entity types (``PER`` of ``B-PER``; a tag without prefix as it is) of a tagger's
    ``tags``; ``None`` for tasks without labels."""
    from fedpart.evaluation.tagging import entity_types

    model = getattr(task_model, "student", task_model)  # a distillation task: its student's labels
    if model.name == "tc" and getattr(model, "labels", None):
        return "label", set(model.labels)
    tags = getattr(model, "tags", None) or getattr(model, "labels", None)
    if model.name == "st" and tags:
        return "tags", entity_types(tags)
    return None


def check_evaluation_labels(table: pa.Table, task_model: TaskModel, path: Path, flag: str = "--eval-data") -> None:
    """Refuse data (given with ``flag``) with a label -- or, for taggers, an entity type -- that the
    model was not trained on: a classifier's loss drops such rows and every prediction of them would
    count as wrong; a tagger scores F1 = 0 on such entities.

    Raises:
        InputError: naming the file, up to :data:`SHOWN_LABELS` unknown values and the model's.
    """
    from fedpart.evaluation.tagging import entity_types

    known = model_labels(task_model)
    if known is None or known[0] not in table.column_names:
        return
    column, labels = known
    values = table.column(column).to_pylist()
    found = entity_types(tag for tags in values for tag in tags or ()) if column == "tags" else set(values)
    unknown = sorted(found - labels, key=str)
    if not unknown:
        return
    what = "entity types" if column == "tags" else "labels"

    def shown(items: list[Any]) -> str:
        more = f" and {len(items) - SHOWN_LABELS} more" if len(items) > SHOWN_LABELS else ""
        return ", ".join(repr(v) for v in items[:SHOWN_LABELS]) + more

    raise InputError(f"{path}: the {_data_role(flag)} has {what} the model was not trained on ({shown(unknown)}; "
                     f"the model's {what}: {shown(sorted(labels, key=str))}); {flag} takes data labelled like the "
                     "model's training data")


def _load_data(
    partition_dir: Path, manifest: Manifest, task: str, task_model: TaskModel, device: torch.device,
    eval_data: str | None, fit: bool,
) -> RunData:
    tables = [shard_table(partition_dir, c, task) for c in manifest.clients]
    if eval_data is not None:
        test_path = Path(eval_data)
    elif manifest.test is not None:
        test_path = partition_dir / manifest.test.file
    else:
        raise InputError(
            f"{partition_dir}: has no test split; partition with --test-frac F or pass --eval-data FILE.parquet"
        )
    test_table = read_evaluation_table(test_path, task)
    if fit:
        task_model.fit(tables)
    if eval_data is not None:  # the partition's own test split is scored as it is, unseen labels included
        check_evaluation_labels(test_table, task_model, test_path)
    clients = [task_model.featurize(t, device) for t in tables]
    return RunData(clients, [t.num_rows for t in tables], task_model.featurize(test_table, device), test_table)


def check_run_arguments(config: Any, device: Any, stop_after: Any, optional_paths: dict[str, Any] | None = None,
                        **paths: Any) -> None:
    """The Python API's arguments of :func:`train` and ``distill`` that the CLI types already: a
    :class:`FederatedConfig`, a device string, ``stop_after`` ``None`` or >= 1, ``paths`` and the
    ``optional_paths`` that are not ``None``.

    Raises:
        InputError: naming the argument.
    """
    if not isinstance(config, FederatedConfig):
        raise InputError(f"config must be a FederatedConfig (e.g. FederatedConfig(rounds=5)), got {config!r:.80}")
    if not isinstance(device, str):
        raise InputError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if stop_after is not None:
        check_int_at_least(stop_after, "stop_after", 1)
    for name, value in {**paths, **(optional_paths or {})}.items():
        if value is not None or name in paths:
            check_path(value, name)


def warn_excess_clients(config: FederatedConfig, manifest: Manifest, partition_dir: Path) -> None:
    """Warn when a federated run asks for more clients per round than the partition has non-empty ones."""
    nonempty = sum(c.rows > 0 for c in manifest.clients)
    if config.algo != "centralized" and config.clients_per_round > nonempty:
        warnings.warn(f"--clients-per-round {config.clients_per_round} exceeds the {nonempty} non-empty clients of "
                      f"{partition_dir}: every round trains all {nonempty}", ExcessClientsWarning, stacklevel=3)


def check_finite_weights(weights: torch.Tensor, round_index: int, advice: str) -> None:
    """Stop a run whose aggregated weights after ``round_index`` are NaN or infinite (before they
    are saved); ``advice``: what to lower, e.g. ``"--lr"``.

    Raises:
        DivergedError: naming the round and ``advice``.
    """
    if not bool(torch.isfinite(weights).all()):
        raise DivergedError(f"round {round_index}: training diverged (the aggregated weights are NaN or infinite) "
                            f"and round {round_index} was not saved; train again with {advice}")


def _save_checkpoint(out: Path, round_index: int, state: ServerState, elapsed_s: float) -> None:
    """Replace ``out/checkpoint.pt`` atomically: a reader (or a killed run) sees the old or the new one.

    ``elapsed_s``: the run's training time so far, which a resumed run continues from.

    The new checkpoint is written over the file of the one before last (``.tmp``), and the replaced
    file is kept as the next round's ``.tmp`` instead of being deleted: freeing a multi-megabyte
    file costs ext4 about as much as writing it (5 ms per round for 1.3M parameters). Without hard
    links (some file systems) the old file is simply replaced.
    """
    path, tmp, spare = out / CHECKPOINT_FILE, out / (CHECKPOINT_FILE + ".tmp"), out / (CHECKPOINT_FILE + ".old")
    with open(tmp, "r+b" if tmp.is_file() else "wb") as handle:
        torch.save(
            {"round": round_index, "elapsed_s": elapsed_s, "weights": state.weights.cpu(),
             "m": None if state.m is None else state.m.cpu(), "v": None if state.v is None else state.v.cpu()},
            handle,
        )
        handle.truncate()
    spare.unlink(missing_ok=True)  # left only by a run killed between the two renames below
    try:
        os.link(path, spare)
        kept = True
    except OSError:  # no checkpoint yet, or no hard links here
        kept = False
    os.replace(tmp, path)
    if kept:
        os.replace(spare, tmp)


def _truncate_metrics(path: Path, last_round: int) -> None:
    """Keep only metric lines of rounds <= last_round (a killed run may have logged past its
    checkpoint, or left a partial last line)."""
    if not path.exists():
        return
    kept = [record for record in parse_metrics(path, allow_partial_last=True) if record["round"] <= last_round]
    write_text_atomic(path, "".join(json.dumps(record) + "\n" for record in kept))


def train(
    partition_dir: str | os.PathLike[str],
    *,
    task: str | None = None,
    out: str | os.PathLike[str],
    config: FederatedConfig = FederatedConfig(),
    device: str = "auto",
    eval_data: str | None = None,
    model_size: str | None = None,
    hf_model: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: Callable[[int, dict[str, float] | None], Any] | None = None,
) -> list[dict[str, Any]]:
    """Train on a partition directory; return the metric records (also in ``out/metrics.jsonl``).

    ``task`` defaults to the one the partition was made with (``fedpart partition --task``).
    ``model_size`` picks one of the task's model sizes (``None``: its default). ``stop_after`` ends
    the run after that many rounds of this call (used to test resume). ``hf_model``: a local Hugging
    Face model directory whose tokenizer and weights replace the task's default model (needs
    ``fedpart[hf]``).

    Raises:
        InputError: bad partition directory (missing, modified or unlisted shard files, made with
        another task), evaluation data, device or options. OutputError: ``out`` exists without
        ``resume``/``overwrite``, is or contains an input (partition, evaluation data, model
        directory), or ``resume`` with a different configuration.
    """
    check_run_arguments(config, device, stop_after, {"eval_data": eval_data, "hf_model": hf_model},
                        partition_dir=partition_dir, out=out)
    partition_dir = Path(partition_dir)
    manifest = Manifest.read(partition_dir)
    if task is None:
        if manifest.task is None:
            raise InputError(f"{partition_dir} was made without --task: pass --task ({', '.join(TASK_NAMES)}) to "
                             "say which task its columns hold")
        task = manifest.task
    check_output_not_over_inputs(Path(out), [p for p in (partition_dir, eval_data, hf_model) if p is not None])
    check_partition_task(partition_dir, manifest, task)
    torch_device = resolve_device(device)
    if hf_model is not None and model_size is not None:
        raise InputError("--model-size and --hf-model exclude each other: the model directory fixes the size")
    check_run_dir(Path(out), resume, overwrite)
    verify_partition(partition_dir, manifest)
    warn_excess_clients(config, manifest, partition_dir)
    task_model = make_task_model(task, model_size) if hf_model is None else make_hf_task_model(task, hf_model)
    run_config = {"task": task, "partition": str(partition_dir.resolve()),
                  "manifest_sha256": manifest_digest(partition_dir),
                  "eval_data": None if eval_data is None else str(Path(eval_data).resolve()),
                  # resolved: distill, eval bias and --resume rebuild the model from it, from any directory
                  "model_size": model_size, "hf_model": None if hf_model is None else str(Path(hf_model).resolve()),
                  **asdict(config)}

    def load(fit: bool) -> RunData:
        return _load_data(partition_dir, manifest, task, task_model, torch_device, eval_data, fit)

    return run_rounds(task_model, load, run_config, out, config, torch_device,
                      resume=resume, overwrite=overwrite, stop_after=stop_after, progress=progress)


def check_run_dir(out: Path, resume: bool, overwrite: bool) -> bool:
    """Validate the run directory before anything is written; return whether to resume from its checkpoint.

    ``resume`` without a checkpoint starts afresh in a missing or empty directory. ``overwrite``
    replaces only an earlier run (see :func:`fedpart.train.rundir.is_run_dir`) or an empty
    directory, never an unrelated one.

    Raises:
        InputError: ``resume`` and ``overwrite`` together. OutputError: ``out`` is a file, holds a
        run without ``resume``/``overwrite``, or is a non-empty directory that is not a run.
    """
    if resume and overwrite:
        raise InputError("--resume and --overwrite exclude each other: --resume continues the run in --out, "
                         "--overwrite discards it")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory; remove it or choose another --out")
    if resume and (out / CHECKPOINT_FILE).is_file():
        if read_run_config(out) is None:
            raise OutputError(f"{out}: has a {CHECKPOINT_FILE} but no valid {CONFIG_FILE} (a JSON object with the "
                              "run's settings); cannot --resume it: pass --overwrite to start again")
        return True
    if not out.exists() or not any(out.iterdir()):
        if resume:  # scripts pass --resume on every call: the first one starts the run
            warnings.warn(FedpartWarning(f"{out}: no run to --resume there yet; starting a new one"), stacklevel=3)
        return False
    if resume:
        raise OutputError(f"{out}: has no {CHECKPOINT_FILE} to --resume from; pass --overwrite to start again")
    if not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to start again or --resume to continue")
    check_replaceable(out, is_run_dir, " or ".join(RUN_MARKERS))
    return False


def _start_run_dir(out: Path) -> bool:
    """Create ``out``, or empty the earlier run in it (already checked by :func:`check_run_dir`);
    return whether the directory was created."""
    created = not out.exists()
    try:
        if created:
            out.mkdir(parents=True)
        else:
            _empty_dir(out)
    except OSError as error:
        raise OutputError(f"{out}: cannot write the run directory ({error.strerror})") from error
    return created


def _empty_dir(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _discard_run_dir(out: Path, created: bool) -> None:
    """Remove what a run that failed before its first checkpoint wrote (the directory, if it made it)."""
    try:
        if created:
            shutil.rmtree(out)
        else:
            _empty_dir(out)
    except OSError:  # the error that stopped the run matters more
        pass


def _same_setting(key: str, saved: Any, current: Any) -> bool:
    if key in PATH_SETTINGS and saved is not None and current is not None:
        return Path(saved).resolve() == Path(current).resolve()
    return saved == current


def environment(device: torch.device) -> dict[str, Any]:
    """The software and device of this process: what a paper reports beside a run's numbers."""
    import platform

    import numpy as np

    from fedpart import __version__

    described = str(device)
    if device.type == "cuda":
        described += f" ({torch.cuda.get_device_name(device)})"
    return {"fedpart": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform(), "device": described,
            "torch_threads": torch.get_num_threads() if device.type == "cpu" else None}


def record_environment(out: Path, device: torch.device, resuming: bool, extra: dict[str, Any] | None = None) -> None:
    """Write ``environment.json`` for a new run; on ``--resume`` from another environment, add it
    to the record's ``resumed_with`` list (the run's numbers then come from both). ``extra``: more
    versions to record (a Flower run's ``flwr``)."""
    current = {**environment(device), **(extra or {})}
    path = out / ENVIRONMENT_FILE
    recorded = read_json_object(path) if resuming else None
    if recorded is None:
        write_json_object(path, current)
        return
    started = {k: v for k, v in recorded.items() if k != "resumed_with"}
    if current != started and current not in recorded.get("resumed_with", []):
        write_json_object(path, {**recorded, "resumed_with": [*recorded.get("resumed_with", []), current]})


def run_rounds(
    task_model: TaskModel,
    load: Callable[[bool], RunData],
    run_config: dict[str, Any],
    out: str | os.PathLike[str],
    config: FederatedConfig,
    device: torch.device,
    *,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: Callable[[int, dict[str, float] | None], Any] | None = None,
) -> list[dict[str, Any]]:
    """The run directory and round loop shared by ``fedpart train`` and ``fedpart distill``.

    ``load(fit)`` featurises the clients and test data (fitting the task's vocabulary first when
    ``fit``; a resumed run restores it with ``task_model.load`` instead). ``run_config`` is written
    to ``config.json`` and must match on ``--resume`` (except ``rounds``, which is updated; paths
    are compared resolved). ``load`` runs before the directory is created or an earlier run in it
    is cleared, so bad input leaves ``out`` as it was; a run that fails before its first
    checkpoint removes what it wrote. ``finished.json`` is written last, after the final round.

    Raises:
        InputError, OutputError: as :func:`check_run_dir`; ``resume`` with fewer ``rounds`` than done.
        DivergedError: a round's weights are not finite (see :func:`check_finite_weights`).
        RunInterrupted: Ctrl-C once ``out`` holds a checkpoint (its message says to ``--resume``).
    """
    out = Path(out)
    resuming = check_run_dir(out, resume, overwrite)
    start_round, state, elapsed = 0, None, 0.0
    if resuming:
        saved = read_run_config(out) or {}  # checked by check_run_dir
        current = json.loads(json.dumps(run_config, default=str))
        # a digest the run did not record (started by an older fedpart) cannot be compared
        compared = [k for k in current if k != "rounds" and not (k.endswith("_sha256") and k not in saved)]
        differing = sorted(k for k in compared if not _same_setting(k, saved.get(k), current[k]))
        if differing:
            changed = [k for k in differing if k.endswith("sha256")]
            raise OutputError(f"{out}: cannot --resume with different settings ({', '.join(differing)})" + (
                f"; the contents of its inputs changed since it started ({', '.join(changed)}): pass --overwrite "
                "to start again" if changed else ""))
        checkpoint = torch.load(out / CHECKPOINT_FILE, map_location=device)
        start_round, elapsed = int(checkpoint["round"]), float(checkpoint.get("elapsed_s", 0.0))
        if config.rounds < start_round:
            raise InputError(f"{out}: has already run {start_round} rounds; --resume continues only with "
                             f"--rounds above that, not --rounds {config.rounds}")
        task_model.load(out)
        state = ServerState(*(None if checkpoint[k] is None else checkpoint[k].to(device)
                              for k in ("weights", "m", "v")))

    data = load(state is None)  # reads and checks every input before `out` is touched
    created = False
    if resuming:
        (out / FINISHED_FILE).unlink(missing_ok=True)
        _truncate_metrics(out / METRICS_FILE, start_round)
        write_json_object(out / CONFIG_FILE, {**saved, "rounds": config.rounds})
        record_environment(out, device, resuming=True)
    else:
        created = _start_run_dir(out)
    try:
        if not resuming:
            (out / METRICS_FILE).write_text("", encoding="utf-8")
            task_model.save(out)
            write_json_object(out / CONFIG_FILE, {**run_config, "featurisation": task_model.describe()})
            record_environment(out, device, resuming=False)
        return _train_rounds(task_model, data, out, config, device, state, start_round, elapsed, stop_after,
                             progress)
    except BaseException as error:
        kept = resuming or (out / CHECKPOINT_FILE).exists()
        if not kept:
            _discard_run_dir(out, created)
        elif isinstance(error, DivergedError):
            raise DivergedError(f"{error} and --overwrite ({out} keeps the rounds before it)") from error
        elif isinstance(error, KeyboardInterrupt) and not isinstance(error, RunInterrupted):
            raise RunInterrupted(f"interrupted; {out} keeps the run up to its last checkpoint: continue it with the "
                                 "same command and --resume") from error
        raise


def _train_rounds(
    task_model: TaskModel, data: RunData, out: Path, config: FederatedConfig, device: torch.device,
    state: ServerState | None, start_round: int, elapsed: float, stop_after: int | None,
    progress: Callable[[int, dict[str, float] | None], Any] | None,
) -> list[dict[str, Any]]:
    """Rounds ``start_round + 1 ..`` of :func:`run_rounds`, then ``model.pt`` and (after the last
    round) ``finished.json``; ``elapsed``: seconds the run has trained before (its wall time goes on).

    A round's metrics line is appended before its checkpoint is saved: a run stopped in between
    redoes the round on ``--resume``, which first drops the lines of rounds after its checkpoint,
    so every round is logged exactly once.

    Raises:
        DivergedError: a round's aggregated weights are not finite (the round is not saved).
    """
    clients, sizes = data.clients, data.sizes
    if config.algo == "centralized":
        pooled = {k: torch.cat([c[k] for c in clients if c[k].shape[0]]) for k in clients[0]}
        clients, sizes = [pooled], [sum(sizes)]

    torch.manual_seed(config.seed)
    model = task_model.build_model().to(device)
    if state is None:
        state = ServerState(parameters_to_vector(model.parameters()).detach().clone())
    n_params = state.weights.numel()
    records: list[dict[str, Any]] = []
    started = time.perf_counter() - elapsed
    advice = f"a lower --lr than {config.lr:g}" + (" or smaller --alpha-kd/--alpha-lm" if task_model.name == "distill"
                                                   else "")
    last = config.rounds if stop_after is None else min(config.rounds, start_round + stop_after)
    for round_index in range(start_round + 1, last + 1):
        # dropout (--hf-model models) draws from torch's global RNG: seeding it per round keeps a
        # resumed run equal to an uninterrupted one (rounds < 100003 never share a seed); modulo
        # 2**64, the range torch.manual_seed takes, for seeds up to 2**63 - 1
        torch.manual_seed((config.seed * 100_003 + round_index) % 2**64)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        state, chosen = federated_round(model, state, clients, sizes, task_model.loss, config, round_index,
                                        loss_sum=loss_sum)
        # down- and upload of the weights by each sampled client; the same every round
        round_bytes = 0 if config.algo == "centralized" else 2 * len(chosen) * n_params * state.weights.element_size()
        check_finite_weights(state.weights, round_index, advice)
        if round_index % config.eval_every == 0 or round_index == config.rounds:
            vector_to_parameters(state.weights.clone(), model.parameters())
            model.eval()
            metrics = task_model.evaluate(model, data.test, data.test_table)
            record = {
                "round": round_index,
                "metrics": {k: round(float(v), 6) for k, v in metrics.items()},
                "train_loss": round(mean_train_loss(loss_sum, config.local_epochs,
                                                    sum(sizes[c] for c in chosen)), 6),
                "clients": [int(c) for c in chosen] if config.algo != "centralized" else [],
                "bytes_communicated": round_bytes * round_index,
                "wall_time_s": round(time.perf_counter() - started, 3),
            }
            records.append(record)
            with open(out / METRICS_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        _save_checkpoint(out, round_index, state, time.perf_counter() - started)
        if progress is not None:  # the round, and its metrics when it was evaluated
            progress(round_index, record["metrics"] if records and records[-1]["round"] == round_index else None)
    vector_to_parameters(state.weights.clone(), model.parameters())
    torch.save(model.state_dict(), out / MODEL_FILE)
    (out / (CHECKPOINT_FILE + ".tmp")).unlink(missing_ok=True)  # the spare file of _save_checkpoint
    if last == config.rounds:
        write_json_object(out / FINISHED_FILE, {"rounds": config.rounds, "model": MODEL_FILE})
    return records


def load_trained(run_dir: str | os.PathLike[str], device: torch.device) -> tuple[TaskModel, torch.nn.Module, dict[str, Any]]:
    """The task adapter, final model (in eval mode, on ``device``) and ``config.json`` of a finished run.

    Raises:
        InputError: ``run_dir`` is not a run, a run that has not finished (see :func:`is_finished_run`),
        or its model's weights are not finite (an old run that diverged).
    """
    run_dir = Path(run_dir)
    config_file, model_file = run_dir / CONFIG_FILE, run_dir / MODEL_FILE
    if not config_file.is_file():
        raise not_a_run(run_dir, CONFIG_FILE, "finished fedpart run")
    config = read_run_config(run_dir)
    if config is None:
        raise InputError(f"{config_file}: not a fedpart run configuration (a JSON object with the run's task); "
                         "the file was edited or damaged: train the run again")
    if (run_dir / FINISHED_FILE).exists() and not is_finished_run(run_dir):
        raise InputError(f"{run_dir / FINISHED_FILE}: not a fedpart completion record (a JSON object with rounds "
                         "and model); the file was edited or damaged: train the run again")
    if not is_finished_run(run_dir):
        if config.get("runtime") == "flower":
            raise InputError(f"{run_dir}: an unfinished Flower run (no {MODEL_FILE}: it stopped or failed before its "
                             "last round); Flower runs cannot be resumed: run it again")
        command = "distill" if config.get("teacher") else "train"
        raise InputError(f"{run_dir}: an unfinished run (no {FINISHED_FILE}: it stopped or failed before its last "
                         f"round); finish it with `fedpart {command} ... --resume` or {command} it again")
    if not model_file.is_file():
        raise InputError(f"{run_dir}: finished, but its {MODEL_FILE} is missing (moved or deleted); train it again")
    if config.get("hf_model"):
        task_model = make_hf_task_model(config["task"], config["hf_model"])
    else:
        task_model = make_task_model(config["task"], config.get("model_size"))
    task_model.load(run_dir)
    model = task_model.build_model()
    model.load_state_dict(torch.load(model_file, map_location="cpu"))
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise InputError(f"{run_dir}: its {MODEL_FILE} holds NaN or infinite weights (the training diverged); "
                         "train it again with a lower --lr")
    return task_model, model.to(device).eval(), config


def run_evaluation_file(run_dir: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """The held-out file a finished run was evaluated on: its ``eval_data``, else its partition's test split."""
    if config.get("eval_data"):
        path = Path(config["eval_data"])
    else:
        partition = Path(config["partition"])
        manifest = Manifest.read(partition)
        if manifest.test is None:
            raise InputError(f"{run_dir}: its partition has no test split; pass --eval-data FILE.parquet")
        path = partition / manifest.test.file
    if not path.exists():  # a file, or a directory of part files (Ray engine)
        raise InputError(f"{path}: no such evaluation file (from {run_dir}); pass --eval-data FILE.parquet")
    return path


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The metric records of a run directory."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise not_a_run(run_dir, METRICS_FILE)
    return parse_metrics(path)
