"""Extractive QA: a span pointer over the context (a small BiDAF-style reader, Seo et al. 2017,
without character embeddings): BiLSTM context states are scored for answer start and end against
a mean-pooled question vector. Decoding picks the best start <= end within 30 tokens. Metrics:
SQuAD v1.1 exact match and F1 against every gold answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
from torch import nn

from fedpart.evaluation.squad import squad_scores
from fedpart.tasks.models.base import Batch, TaskModel, pad
from fedpart.train.vocabulary import Vocabulary, tokenize, tokenize_with_offsets

MAX_CONTEXT = 256
MAX_QUESTION = 32
MAX_ANSWER_TOKENS = 30
IGNORE = -100


def answer_token_span(
    offsets: list[tuple[int, int]], start_char: int, text: str, max_tokens: int = MAX_CONTEXT
) -> tuple[int, int]:
    """Token indices ``(first, last)`` covering the answer's characters, or ``(IGNORE, IGNORE)``
    (also when the answer ends at or past token ``max_tokens``)."""
    end_char = start_char + len(text)
    first = next((i for i, (s, e) in enumerate(offsets) if e > start_char), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < end_char), None)
    if first is None or last is None or last < first or last >= max_tokens:
        return IGNORE, IGNORE
    return first, last


def best_spans(start_logits: torch.Tensor, end_logits: torch.Tensor) -> list[tuple[int, int]]:
    """Per row of ``(rows, length)`` logits, the ``(start, end)`` maximising ``start + end`` logits
    with ``start <= end < start + MAX_ANSWER_TOKENS``."""
    scores = start_logits.unsqueeze(2) + end_logits.unsqueeze(1)  # (n, start, end)
    length = scores.shape[-1]
    allowed = torch.triu(torch.ones(length, length, dtype=torch.bool, device=scores.device))
    allowed &= ~torch.triu(allowed, diagonal=MAX_ANSWER_TOKENS)
    best = scores.masked_fill(~allowed, float("-inf")).flatten(1).argmax(-1)
    return [(int(i) // length, int(i) % length) for i in best.cpu()]


class SpanReader(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.context_lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.question_proj = nn.Linear(dim, 2 * hidden)
        self.start = nn.Linear(4 * hidden, 1)
        self.end = nn.Linear(4 * hidden, 1)

    def forward(self, context: torch.Tensor, question: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.context_lstm(self.embedding(context))
        q_mask = (question != 0).unsqueeze(-1).float()
        q = (self.embedding(question) * q_mask).sum(1) / q_mask.sum(1).clamp(min=1.0)
        q = self.question_proj(q).unsqueeze(1).expand_as(states)
        features = torch.cat([states, states * q], dim=-1)
        pad_mask = context == 0
        start = self.start(features).squeeze(-1).masked_fill(pad_mask, -1e4)
        end = self.end(features).squeeze(-1).masked_fill(pad_mask, -1e4)
        return start, end


class SpanQATask(TaskModel):
    name: ClassVar[str] = "qa"
    main_metric: ClassVar[str] = "f1"

    def __init__(self) -> None:
        self.vocab: Vocabulary | None = None

    def fit(self, tables: list[pa.Table]) -> None:
        def texts():
            for table in tables:
                for column in ("context", "question"):
                    for text in table.column(column).to_pylist():
                        yield tokenize(text)

        self.vocab = Vocabulary.build(texts())

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        contexts, starts, ends = [], [], []
        for context, answers in zip(table.column("context").to_pylist(), table.column("answers").to_pylist()):
            tokens, offsets = tokenize_with_offsets(context)
            contexts.append(self.vocab.encode(tokens))
            if answers["text"]:
                first, last = answer_token_span(offsets, answers["answer_start"][0], answers["text"][0])
            else:
                first, last = IGNORE, IGNORE
            starts.append(first)
            ends.append(last)
        questions = [self.vocab.encode(tokenize(q)) for q in table.column("question").to_pylist()]
        return {
            "context": pad(contexts, MAX_CONTEXT).to(device),
            "question": pad(questions, MAX_QUESTION).to(device),
            "start": torch.tensor(starts, dtype=torch.long).to(device),
            "end": torch.tensor(ends, dtype=torch.long).to(device),
        }

    def build_model(self) -> nn.Module:
        return SpanReader(len(self.vocab))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        start_logits, end_logits = model(batch["context"], batch["question"])
        if (batch["start"] != IGNORE).sum() == 0:
            return start_logits.sum() * 0.0
        loss = nn.functional.cross_entropy(start_logits, batch["start"], ignore_index=IGNORE)
        return loss + nn.functional.cross_entropy(end_logits, batch["end"], ignore_index=IGNORE)

    @torch.no_grad()
    def predict_spans(self, model: nn.Module, data: Batch) -> list[tuple[int, int]]:
        return best_spans(*model(data["context"], data["question"]))

    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        predictions = []
        for context, (first, last) in zip(table.column("context").to_pylist(), self.predict_spans(model, data)):
            _, offsets = tokenize_with_offsets(context)
            if first < len(offsets) and last < len(offsets):
                predictions.append(context[offsets[first][0] : offsets[last][1]])
            else:
                predictions.append("")
        golds = [a["text"] for a in table.column("answers").to_pylist()]
        return squad_scores(predictions, golds)

    def save(self, directory: Path) -> None:
        self.vocab.save(directory / "vocab.json")

    def load(self, directory: Path) -> None:
        self.vocab = Vocabulary.load(directory / "vocab.json")

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "max_context_tokens": MAX_CONTEXT}
