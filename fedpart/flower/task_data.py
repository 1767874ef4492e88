"""What both Flower apps need from a partition directory: the task state, shards and test split.

The task state (vocabulary, label set) is fitted once on the training shards exactly as ``fedpart
train`` fits it, saved with the task adapter's ``save``, and read back by every ClientApp, so all
nodes featurise with the same vocabulary. Featurised shards are cached per process: a Flower
simulation reuses its worker processes, so each client's shard is read and tokenised once per worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from fedpart.errors import InputError
from fedpart.manifest import Manifest, ShardRecord
from fedpart.tasks.models import get_task_model
from fedpart.tasks.models.base import Batch, TaskModel
from fedpart.train.runner import shard_table
from fedpart.verify import verify_partition

# (task, state dir) -> (task adapter, model); (task, state dir, shard file) -> featurised shard
_TASKS: dict[tuple[str, str], tuple[TaskModel, torch.nn.Module]] = {}
_SHARDS: dict[tuple[str, str, str], Batch] = {}


def prepare_task_state(partition_dir: str | os.PathLike[str], task: str, out: str | os.PathLike[str]) -> TaskModel:
    """Fit the task's vocabulary/labels on every client shard of ``partition_dir``; save them in ``out``.

    The same fit as ``fedpart train`` (so a Flower run and a fedpart run featurise identically).
    For a real deployment run this once and copy ``out`` to every SuperNode (node config
    ``task-state-dir``).
    """
    partition_dir, out = Path(partition_dir), Path(out)
    manifest = verify_partition(partition_dir)  # every shard as the manifest records it
    task_model = get_task_model(task)()
    task_model.fit([shard_table(partition_dir, c, task) for c in manifest.clients])
    out.mkdir(parents=True, exist_ok=True)
    task_model.save(out)
    return task_model


def load_task(task: str, state_dir: Path) -> tuple[TaskModel, torch.nn.Module]:
    """The task adapter restored from ``state_dir`` and a model to train in place (cached per process)."""
    key = (task, str(state_dir))
    if key not in _TASKS:
        task_model = get_task_model(task)()
        try:
            task_model.load(state_dir)
        except FileNotFoundError as error:
            raise InputError(
                f"{state_dir}: no task state for --task {task} ({error.filename} is missing); run "
                "fedpart.flower.prepare_task_state(PARTITION, TASK, DIR) and set task-state-dir=DIR"
            ) from None
        _TASKS[key] = (task_model, task_model.build_model())
    return _TASKS[key]


def client_shard(partition_dir: Path, partition_id: int) -> tuple[ShardRecord, int]:
    """The manifest record and row count of client ``partition_id``."""
    manifest = Manifest.read(partition_dir)
    if not 0 <= partition_id < manifest.num_clients:
        raise InputError(f"{partition_dir}: no client {partition_id}; node config partition-id must be in "
                         f"0..{manifest.num_clients - 1}")
    record = manifest.clients[partition_id]
    return record, record.rows


def featurized_shard(
    task: str, state_dir: Path, task_model: TaskModel, partition_dir: Path, record: ShardRecord
) -> Batch:
    """The featurised rows of one shard (its file, or a Ray shard's listed parts) on the CPU (cached
    per process)."""
    key = (task, str(state_dir), str(partition_dir / record.file))
    if key not in _SHARDS:
        _SHARDS[key] = task_model.featurize(shard_table(partition_dir, record, task), torch.device("cpu"))
    return _SHARDS[key]


def test_split(partition_dir: Path, task: str, task_model: TaskModel) -> tuple[Batch, Any]:
    """The featurised global test split and its canonical table (for reference-based metrics)."""
    manifest = Manifest.read(partition_dir)
    if manifest.test is None:
        raise InputError(f"{partition_dir}: has no test split; partition with --test-frac F so the "
                         "ServerApp can evaluate")
    table = shard_table(partition_dir, manifest.test, task)
    return task_model.featurize(table, torch.device("cpu")), table
