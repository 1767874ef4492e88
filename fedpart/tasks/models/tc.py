"""Text classification: mean-pooled word embeddings and a linear layer (fastText-style, Joulin et
al. 2017). Metrics: accuracy and macro-F1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
from torch import nn

from fedpart.evaluation.classification import accuracy, gold_codes, macro_f1
from fedpart.tasks.models.base import Batch, TaskModel, pad
from fedpart.train.vocabulary import Vocabulary, tokenize

MAX_TOKENS = 128
#: embedding width per ``--model-size``
MODEL_DIMS = {"small": 64, "base": 256}


def class_labels(tables: list[pa.Table]) -> list[Any]:
    """The distinct ``label`` values of the training tables, sorted by their string form."""
    return sorted({v for table in tables for v in table.column("label").to_pylist()}, key=str)


class MeanPoolClassifier(nn.Module):
    """Mean of the non-padding token embeddings (zero for an all-padding row), then a linear layer.

    The mean is an ``nn.EmbeddingBag`` sum weighted by ``1 / (non-padding tokens)`` per row: it pools
    without materialising the ``(rows, tokens, dim)`` embeddings, and with ``sparse=True`` its
    gradient is sparse, so an SGD step updates only the rows of the minibatch's tokens instead of the
    whole vocabulary (``local_update`` switches to dense gradients where FedProx or Adam need them).
    Padding (id 0) is weighted 0 rather than declared ``padding_idx``: that argument makes the CUDA
    backward synchronise with the host twice per step. Row 0 starts at zero and, with weight 0, gets
    a zero gradient, as an ``nn.Embedding(padding_idx=0)``'s would; the initial weights and the
    parameter names are those of ``nn.Embedding``, so saved models load unchanged.
    Against ``nn.Embedding`` + masked mean, on a 10-client AG News round (1.3M parameters, 2 CPU
    cores): local training 1.3-1.7x and evaluating the 1,520-row test split 15x faster.
    """

    def __init__(self, vocab_size: int, n_classes: int, dim: int = 64) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, dim, mode="sum", sparse=True)
        with torch.no_grad():
            self.embedding.weight[0].zero_()  # the padding id
        self.output = nn.Linear(dim, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).to(self.embedding.weight.dtype)
        weights = mask / mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.output(self.embedding(tokens, per_sample_weights=weights))


class TextClassifierTask(TaskModel):
    name: ClassVar[str] = "tc"
    main_metric: ClassVar[str] = "accuracy"
    model_sizes: ClassVar[tuple[str, ...]] = tuple(MODEL_DIMS)

    def __init__(self, model_size: str = "small") -> None:
        self.model_size = model_size
        self.vocab: Vocabulary | None = None
        self.labels: list[Any] = []

    def fit(self, tables: list[pa.Table]) -> None:
        self.vocab = Vocabulary.build(tokenize(t) for table in tables for t in table.column("text").to_pylist())
        self.labels = class_labels(tables)

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        index = {label: i for i, label in enumerate(self.labels)}
        texts = table.column("text").to_pylist()
        tokens = pad([self.vocab.encode(tokenize(t)) for t in texts], MAX_TOKENS)
        labels = torch.tensor([index.get(v, -100) for v in table.column("label").to_pylist()], dtype=torch.long)
        return {"tokens": tokens.to(device), "label": labels.to(device)}

    def build_model(self) -> nn.Module:
        return MeanPoolClassifier(len(self.vocab), len(self.labels), dim=MODEL_DIMS[self.model_size])

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return nn.functional.cross_entropy(model(batch["tokens"]), batch["label"], ignore_index=-100)

    @torch.no_grad()
    def predict(self, model: nn.Module, data: Batch) -> torch.Tensor:
        return self.probabilities(model, data).argmax(-1)

    @torch.no_grad()
    def probabilities(self, model: nn.Module, data: Batch) -> torch.Tensor:
        """``(rows, classes)`` softmax class probabilities."""
        return torch.softmax(model(data["tokens"]).float(), dim=-1)

    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        predicted = self.predict(model, data).cpu().tolist()
        gold = gold_codes(table.column("label").to_pylist(), self.labels)  # each unseen label a class of its own
        return {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted)}

    def save(self, directory: Path) -> None:
        self.vocab.save(directory / "vocab.json")
        (directory / "labels.json").write_text(json.dumps(self.labels) + "\n", encoding="utf-8")
        (directory / "tc.json").write_text(json.dumps({"model_size": self.model_size}) + "\n", encoding="utf-8")

    def load(self, directory: Path) -> None:
        self.vocab = Vocabulary.load(directory / "vocab.json")
        self.labels = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
        self.model_size = json.loads((directory / "tc.json").read_text(encoding="utf-8"))["model_size"]

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "labels": self.labels, "model_size": self.model_size,
                "dim": MODEL_DIMS[self.model_size]}
