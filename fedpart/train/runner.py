"""``fedpart train``: load a partition directory, featurise every client once, run the rounds.

A run directory holds ``config.json`` (every hyper-parameter and the partition's manifest digest),
the task's vocabulary/labels, ``metrics.jsonl`` (one line per evaluated round: metrics, wall time,
bytes communicated), ``checkpoint.pt`` (written atomically after every round) and ``model.pt``.
``resume=True`` continues a killed run from its last checkpoint; because every random choice is
seeded by round, the result equals an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from fedpart.errors import InputError, OutputError
from fedpart.manifest import MANIFEST_FILE, Manifest
from fedpart.tasks import ColumnMap, get_task
from fedpart.tasks.models import make_hf_task_model, make_task_model
from fedpart.tasks.models.base import Batch, TaskModel
from fedpart.train.federated import FederatedConfig, ServerState, federated_round

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InputError(f"--device {device!r} is not a torch device (use auto, cpu, cuda, cuda:1)") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA device; use --device auto or cpu")
    return resolved


def canonical_table(path: Path, task: str) -> pa.Table:
    """A shard in the task's canonical columns (shards written without --task are mapped here)."""
    table = pq.read_table(path)
    bound = get_task(task).bind(table.schema, ColumnMap(), str(path))
    batches = [bound.to_canonical(batch) for batch in table.to_batches()]
    return pa.Table.from_batches(batches, schema=bound.schema)


@dataclass
class RunData:
    clients: list[Batch]
    sizes: list[int]
    test: Batch
    test_table: pa.Table


def _load_data(
    partition_dir: Path, manifest: Manifest, task: str, task_model: TaskModel, device: torch.device,
    eval_data: str | None, fit: bool,
) -> RunData:
    tables = [canonical_table(partition_dir / c.file, task) for c in manifest.clients]
    if eval_data is not None:
        test_path = Path(eval_data)
    elif manifest.test is not None:
        test_path = partition_dir / manifest.test.file
    else:
        raise InputError(
            f"{partition_dir}: has no test split; partition with --test-frac F or pass --eval-data FILE.parquet"
        )
    if not test_path.exists():  # a file, or a directory of part files (Ray engine)
        raise InputError(f"{test_path}: no such evaluation file")
    test_table = canonical_table(test_path, task)
    if fit:
        task_model.fit(tables)
    clients = [task_model.featurize(t, device) for t in tables]
    return RunData(clients, [t.num_rows for t in tables], task_model.featurize(test_table, device), test_table)


def _manifest_digest(partition_dir: Path) -> str:
    return hashlib.sha256((partition_dir / MANIFEST_FILE).read_bytes()).hexdigest()


def _save_checkpoint(out: Path, round_index: int, state: ServerState) -> None:
    """Replace ``out/checkpoint.pt`` atomically: a reader (or a killed run) sees the old or the new one.

    The new checkpoint is written over the file of the one before last (``.tmp``), and the replaced
    file is kept as the next round's ``.tmp`` instead of being deleted: freeing a multi-megabyte
    file costs ext4 about as much as writing it (5 ms per round for 1.3M parameters). Without hard
    links (some file systems) the old file is simply replaced.
    """
    path, tmp, spare = out / CHECKPOINT_FILE, out / (CHECKPOINT_FILE + ".tmp"), out / (CHECKPOINT_FILE + ".old")
    with open(tmp, "r+b" if tmp.is_file() else "wb") as handle:
        torch.save(
            {"round": round_index, "weights": state.weights.cpu(),
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
    """Keep only metric lines of rounds <= last_round (a killed run may have logged past its checkpoint)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line)["round"] <= last_round]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def train(
    partition_dir: str | os.PathLike[str],
    *,
    task: str,
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

    ``model_size`` picks one of the task's model sizes (``None``: its default). ``stop_after`` ends
    the run after that many rounds of this call (used to test resume). ``hf_model``: a local Hugging
    Face model directory whose tokenizer and weights replace the task's default model (needs
    ``fedpart[hf]``).

    Raises:
        InputError: bad partition directory, task or options. OutputError: ``out`` exists
        without ``resume``/``overwrite``, or ``resume`` with a different configuration.
    """
    partition_dir = Path(partition_dir)
    manifest = Manifest.read(partition_dir)
    torch_device = resolve_device(device)
    if hf_model is not None and model_size is not None:
        raise InputError("--model-size and --hf-model exclude each other: the model directory fixes the size")
    task_model = make_task_model(task, model_size) if hf_model is None else make_hf_task_model(task, hf_model)
    run_config = {"task": task, "partition": str(partition_dir), "manifest_sha256": _manifest_digest(partition_dir),
                  "eval_data": eval_data, "model_size": model_size, "hf_model": hf_model, **asdict(config)}

    def load(fit: bool) -> RunData:
        return _load_data(partition_dir, manifest, task, task_model, torch_device, eval_data, fit)

    return run_rounds(task_model, load, run_config, out, config, torch_device,
                      resume=resume, overwrite=overwrite, stop_after=stop_after, progress=progress)


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
    to ``config.json`` and must match on ``--resume`` (except ``rounds``).
    """
    out = Path(out)
    start_round, state = 0, None
    if out.exists() and resume and (out / CHECKPOINT_FILE).exists():
        saved = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
        differing = sorted(k for k in run_config if k != "rounds" and saved.get(k) != json.loads(json.dumps(run_config[k])))
        if differing:
            raise OutputError(f"{out}: cannot --resume with different settings ({', '.join(differing)})")
        task_model.load(out)
        checkpoint = torch.load(out / CHECKPOINT_FILE, map_location=device)
        start_round = int(checkpoint["round"])
        state = ServerState(*(None if checkpoint[k] is None else checkpoint[k].to(device)
                              for k in ("weights", "m", "v")))
        _truncate_metrics(out / METRICS_FILE, start_round)
    elif out.exists() and any(out.iterdir()) and not overwrite and not resume:
        raise OutputError(f"{out}: already exists; pass --overwrite to start again or --resume to continue")
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / METRICS_FILE).write_text("", encoding="utf-8")

    data = load(state is None)
    if state is None:
        task_model.save(out)
        (out / CONFIG_FILE).write_text(
            json.dumps({**run_config, "featurisation": task_model.describe()}, indent=2, default=str) + "\n",
            encoding="utf-8",
        )
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
    started = time.perf_counter()
    last = config.rounds if stop_after is None else min(config.rounds, start_round + stop_after)
    for round_index in range(start_round + 1, last + 1):
        # dropout (--hf-model models) draws from torch's global RNG: seeding it per round keeps a
        # resumed run equal to an uninterrupted one (rounds < 100003 never share a seed)
        torch.manual_seed(config.seed * 100_003 + round_index)
        state, chosen = federated_round(model, state, clients, sizes, task_model.loss, config, round_index)
        # down- and upload of the weights by each sampled client; the same every round
        round_bytes = 0 if config.algo == "centralized" else 2 * len(chosen) * n_params * state.weights.element_size()
        _save_checkpoint(out, round_index, state)
        if round_index % config.eval_every == 0 or round_index == config.rounds:
            vector_to_parameters(state.weights.clone(), model.parameters())
            model.eval()
            metrics = task_model.evaluate(model, data.test, data.test_table)
            record = {
                "round": round_index,
                "metrics": {k: round(float(v), 6) for k, v in metrics.items()},
                "clients": [int(c) for c in chosen] if config.algo != "centralized" else [],
                "bytes_communicated": round_bytes * round_index,
                "wall_time_s": round(time.perf_counter() - started, 3),
            }
            records.append(record)
            with open(out / METRICS_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        if progress is not None:  # the round, and its metrics when it was evaluated
            progress(round_index, record["metrics"] if records and records[-1]["round"] == round_index else None)
    vector_to_parameters(state.weights.clone(), model.parameters())
    torch.save(model.state_dict(), out / MODEL_FILE)
    (out / (CHECKPOINT_FILE + ".tmp")).unlink(missing_ok=True)  # the spare file of _save_checkpoint
    return records


def load_trained(run_dir: str | os.PathLike[str], device: torch.device) -> tuple[TaskModel, torch.nn.Module, dict[str, Any]]:
    """The task adapter, final model (in eval mode, on ``device``) and ``config.json`` of a finished run."""
    run_dir = Path(run_dir)
    config_file, model_file = run_dir / CONFIG_FILE, run_dir / MODEL_FILE
    if not config_file.is_file() or not model_file.is_file():
        raise InputError(f"{run_dir}: not a finished fedpart run (needs {CONFIG_FILE} and {MODEL_FILE})")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("hf_model"):
        task_model = make_hf_task_model(config["task"], config["hf_model"])
    else:
        task_model = make_task_model(config["task"], config.get("model_size"))
    task_model.load(run_dir)
    model = task_model.build_model()
    model.load_state_dict(torch.load(model_file, map_location="cpu"))
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
        raise InputError(f"{run_dir}: not a fedpart run directory (no {METRICS_FILE})")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
