"""The interface every training task adapter implements.

``fit`` builds what featurisation needs (vocabulary, label set) from the training tables only;
``featurize`` turns a canonical Arrow table into a dict of equally long tensors (first dimension =
rows) placed on the training device once; ``loss`` is the mean loss of a batch (a dict of row-sliced
tensors); ``evaluate`` returns the task's metrics on a featurised table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch

Batch = dict[str, torch.Tensor]


class TaskModel(ABC):
    """Featurisation, model, loss and metrics of one task."""

    name: ClassVar[str]
    #: the metric that ``fedpart report`` plots and compares
    main_metric: ClassVar[str]
    #: names accepted by ``__init__(model_size=...)`` (``--model-size``); empty: one fixed size
    model_sizes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(self, tables: list[pa.Table]) -> None:
        """Build vocabulary/labels from the training tables."""

    @abstractmethod
    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        """Tensors for every row of ``table`` (canonical columns), on ``device``."""

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        """A freshly initialised model (initialisation uses torch's global RNG)."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        """Mean loss over the batch."""

    @abstractmethod
    def evaluate(self, model: torch.nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        """Task metrics of ``model`` on featurised ``data`` (``table`` holds the raw references)."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write what :meth:`load` needs (vocabulary, labels) into the run directory."""

    @abstractmethod
    def load(self, directory: Path) -> None:
        """Restore the state written by :meth:`save`."""

    def describe(self) -> dict[str, Any]:
        """JSON-able facts about the featurisation (vocabulary size, labels)."""
        return {}


def rows(data: Batch) -> int:
    """Number of rows of a featurised table."""
    return next(iter(data.values())).shape[0]


def take(data: Batch, index: torch.Tensor) -> Batch:
    """The rows ``index`` of every tensor."""
    return {key: value[index] for key, value in data.items()}


def pad(sequences: list[list[int]], length: int, value: int = 0) -> torch.Tensor:
    """``(len(sequences), length)`` int64, each sequence truncated or right-padded to ``length``."""
    out = torch.full((len(sequences), length), value, dtype=torch.long)
    for i, seq in enumerate(sequences):
        seq = seq[:length]
        if seq:
            out[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out
