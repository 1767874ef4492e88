"""fedpart: honest non-IID federated-learning partitions of real NLP corpora.

Light to import: heavy libraries (datasets, matplotlib, torch, spaCy) load only where used.
"""

from __future__ import annotations

from typing import Any

from fedpart._version import __version__
from fedpart.errors import DivergedError, FedpartError, FedpartWarning, InputError, OutputError, PlanError

__all__ = [
    "DivergedError",
    "FedpartError",
    "FedpartWarning",
    "InputError",
    "OutputError",
    "PlanError",
    "__version__",
    "load_client",
    "load_test",
    "partition",
]


def partition(input: Any, **kwargs: Any) -> Any:
    """Partition a dataset into client shards; see :func:`fedpart.engine.partition`."""
    from fedpart.engine import partition as _partition

    return _partition(input, **kwargs)


def load_client(directory: Any, client_id: int, format: str = "datasets") -> Any:
    """Load one client's shard; see :func:`fedpart.io.loading.load_client`."""
    from fedpart.io.loading import load_client as _load_client

    return _load_client(directory, client_id, format)


def load_test(directory: Any, format: str = "datasets") -> Any:
    """Load the global test split; see :func:`fedpart.io.loading.load_test`."""
    from fedpart.io.loading import load_test as _load_test

    return _load_test(directory, format)
