"""fedpart on Flower: apps that train fedpart task models, and fedpart schemes as a Flower Partitioner.

- :func:`client_app` / :func:`server_app` (:mod:`fedpart.flower.apps`): a Flower ``ClientApp`` and
  ``ServerApp`` for a :class:`FlowerRun` (partition directory, task, FedAvg/FedProx settings); the same
  experiment as ``fedpart train``, in Flower's simulation engine or on SuperLink + SuperNodes.
  Needs ``pip install 'fedpart[train,flower]'``.
- :class:`FedpartPartitioner` (:mod:`fedpart.flower.partitioner`): any fedpart scheme as a Flower
  Datasets ``Partitioner`` over a ``datasets.Dataset``. Needs only ``datasets``; it subclasses
  ``flwr_datasets``' ``Partitioner`` when that is installed, so ``FederatedDataset`` accepts it.

Names load lazily, so importing this package imports neither flwr nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FedpartPartitioner": "fedpart.flower.partitioner",
    "FlowerRun": "fedpart.flower.run_config",
    "client_app": "fedpart.flower.apps",
    "server_app": "fedpart.flower.apps",
    "run_server": "fedpart.flower.apps",
    "prepare_task_state": "fedpart.flower.task_data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fedpart.flower' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
