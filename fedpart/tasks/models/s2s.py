"""Seq2seq / summarisation: a small transformer encoder-decoder (Vaswani et al. 2017) with shared
word embeddings and learned positions, trained with teacher forcing and decoded greedily.
Metric: ROUGE-1/2/L F1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
from torch import nn

from fedpart.evaluation.rouge import rouge_scores
from fedpart.tasks.models.base import Batch, TaskModel, pad
from fedpart.train.vocabulary import BOS, EOS, Vocabulary, tokenize

MAX_SOURCE = 192
MAX_TARGET = 48


class TinyTransformer(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 64, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.positions = nn.Embedding(max(MAX_SOURCE, MAX_TARGET) + 1, dim)
        encoder_layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True)
        encoder = nn.TransformerEncoder(encoder_layer, layers, enable_nested_tensor=False)
        self.transformer = nn.Transformer(
            d_model=dim, nhead=heads, num_encoder_layers=layers, num_decoder_layers=layers,
            dim_feedforward=4 * dim, dropout=0.0, batch_first=True, custom_encoder=encoder,
        )
        self.output = nn.Linear(dim, vocab_size)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.embedding(tokens) + self.positions(positions)

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        length = target_in.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=source.device), diagonal=1)
        states = self.transformer(
            self._embed(source), self._embed(target_in), tgt_mask=causal,
            src_key_padding_mask=source == 0, tgt_key_padding_mask=target_in == 0,
            memory_key_padding_mask=source == 0,
        )
        return self.output(states)


class Seq2SeqTask(TaskModel):
    name: ClassVar[str] = "s2s"
    main_metric: ClassVar[str] = "rougeL"

    def __init__(self) -> None:
        self.vocab: Vocabulary | None = None

    def fit(self, tables: list[pa.Table]) -> None:
        self.vocab = Vocabulary.build(
            tokenize(text) for table in tables for col in ("source", "target") for text in table.column(col).to_pylist()
        )

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        bos, eos = self.vocab.index[BOS], self.vocab.index[EOS]
        sources = [self.vocab.encode(tokenize(t)) for t in table.column("source").to_pylist()]
        targets = [[bos, *self.vocab.encode(tokenize(t))[: MAX_TARGET - 1], eos] for t in table.column("target").to_pylist()]
        return {"source": pad(sources, MAX_SOURCE).to(device), "target": pad(targets, MAX_TARGET + 1).to(device)}

    def build_model(self) -> nn.Module:
        return TinyTransformer(len(self.vocab))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        target = batch["target"]
        logits = model(batch["source"], target[:, :-1])
        return nn.functional.cross_entropy(logits.flatten(0, 1), target[:, 1:].flatten(), ignore_index=0)

    @torch.no_grad()
    def generate(self, model: nn.Module, source: torch.Tensor, max_len: int = MAX_TARGET) -> list[list[int]]:
        """Greedy decoding; stops at ``<eos>``."""
        bos, eos = self.vocab.index[BOS], self.vocab.index[EOS]
        out = torch.full((source.shape[0], 1), bos, dtype=torch.long, device=source.device)
        done = torch.zeros(source.shape[0], dtype=torch.bool, device=source.device)
        for _ in range(max_len):
            next_token = model(source, out)[:, -1].argmax(-1)
            next_token = next_token.masked_fill(done, 0)
            out = torch.cat([out, next_token[:, None]], dim=1)
            done |= next_token == eos
            if bool(done.all()):
                break
        return [[t for t in row[1:] if t not in (0,)] for row in out.cpu().tolist()]

    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        eos = self.vocab.index[EOS]
        predictions = []
        for start in range(0, data["source"].shape[0], 64):
            for ids in self.generate(model, data["source"][start : start + 64]):
                ids = ids[: ids.index(eos)] if eos in ids else ids
                predictions.append(" ".join(self.vocab.decode(ids)))
        return rouge_scores(predictions, table.column("target").to_pylist())

    def save(self, directory: Path) -> None:
        self.vocab.save(directory / "vocab.json")

    def load(self, directory: Path) -> None:
        self.vocab = Vocabulary.load(directory / "vocab.json")

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "max_source_tokens": MAX_SOURCE, "max_target_tokens": MAX_TARGET}
