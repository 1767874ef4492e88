"""Sequence tagging: word embeddings, a bidirectional LSTM and a per-token linear layer (Lample et
al. 2016 without the CRF). Metric: entity-level precision/recall/F1 (conlleval definition)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
from torch import nn

from fedpart.evaluation.tagging import entity_f1
from fedpart.tasks.models.base import Batch, TaskModel, pad
from fedpart.train.vocabulary import Vocabulary

MAX_TOKENS = 64
IGNORE = -100


def tag_set(tables: list[pa.Table]) -> list[str]:
    """``O`` first, then the other tags of the training tables sorted (unseen tags later map to ``O``)."""
    found = {tag for table in tables for tags in table.column("tags").to_pylist() for tag in tags}
    return ["O", *sorted(found - {"O"})]


class BiLSTMTagger(nn.Module):
    def __init__(self, vocab_size: int, n_tags: int, dim: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.output = nn.Linear(2 * hidden, n_tags)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embedding(tokens))
        return self.output(states)


class TaggerTask(TaskModel):
    name: ClassVar[str] = "st"
    main_metric: ClassVar[str] = "f1"

    def __init__(self) -> None:
        self.vocab: Vocabulary | None = None
        self.tags: list[str] = []

    def fit(self, tables: list[pa.Table]) -> None:
        self.vocab = Vocabulary.build(
            [t.lower() for t in tokens] for table in tables for tokens in table.column("tokens").to_pylist()
        )
        self.tags = tag_set(tables)

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        index = {tag: i for i, tag in enumerate(self.tags)}
        tokens = pad([self.vocab.encode(t.lower() for t in s) for s in table.column("tokens").to_pylist()], MAX_TOKENS)
        tags = pad([[index.get(t, 0) for t in s] for s in table.column("tags").to_pylist()], MAX_TOKENS, IGNORE)
        tags[tokens == 0] = IGNORE
        return {"tokens": tokens.to(device), "tags": tags.to(device)}

    def build_model(self) -> nn.Module:
        return BiLSTMTagger(len(self.vocab), len(self.tags))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        logits = model(batch["tokens"])
        return nn.functional.cross_entropy(logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=IGNORE)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        predicted = model(data["tokens"]).argmax(-1).cpu().tolist()
        gold_sentences = table.column("tags").to_pylist()
        pred_sentences = [
            [self.tags[i] for i in row[: min(len(gold), MAX_TOKENS)]] + ["O"] * max(0, len(gold) - MAX_TOKENS)
            for row, gold in zip(predicted, gold_sentences)
        ]
        return entity_f1(gold_sentences, pred_sentences)

    def save(self, directory: Path) -> None:
        self.vocab.save(directory / "vocab.json")
        (directory / "labels.json").write_text(json.dumps(self.tags) + "\n", encoding="utf-8")

    def load(self, directory: Path) -> None:
        self.vocab = Vocabulary.load(directory / "vocab.json")
        self.tags = json.loads((directory / "labels.json").read_text(encoding="utf-8"))

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "tags": self.tags}
