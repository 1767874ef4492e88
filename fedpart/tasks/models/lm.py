"""Causal language modelling: a small GPT-style decoder (Radford et al. 2018/2019: learned positions,
pre-norm transformer blocks with a causal mask, output layer tied to the word embeddings), trained
on next-word prediction over the offline word vocabulary. Metric: perplexity (``exp`` of the mean
next-token negative log-likelihood over real, non-padding target tokens; lower is better).

Each row is one sequence: ``<bos> w1 ... wn <eos>``, truncated to ``MAX_TOKENS`` positions.
Generation samples (or, with ``temperature=0``, decodes greedily) from a seeded
:class:`torch.Generator`, so it is reproducible.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
from torch import nn

from fedpart.errors import InputError
from fedpart.evaluation.language import perplexity
from fedpart.tasks.models.base import Batch, TaskModel, pad
from fedpart.train.vocabulary import BOS, EOS, Vocabulary, tokenize

MAX_TOKENS = 48
#: the output layer dominates the cost of these small models; 4k words cover most running text
VOCAB_SIZE = 4_000


@dataclass(frozen=True)
class LMSize:
    """Width, depth and attention heads of a :class:`CausalTransformer`."""

    dim: int
    layers: int
    heads: int


MODEL_SIZES = {
    "small": LMSize(dim=64, layers=1, heads=2),
    "base": LMSize(dim=128, layers=2, heads=4),
    "large": LMSize(dim=256, layers=4, heads=8),
}


def sample_next_token(logits: torch.Tensor, temperature: float, top_k: int,
                      generator: torch.Generator) -> torch.Tensor:
    """One next-token id per row of ``(rows, vocab)`` logits: argmax at ``temperature == 0``, else a
    draw from the softmax of the ``top_k`` largest logits divided by ``temperature``."""
    if temperature == 0:
        return logits.argmax(-1)
    values, indices = logits.topk(min(top_k, logits.shape[-1]), dim=-1)
    probs = torch.softmax(values / temperature, dim=-1)
    return indices.gather(-1, torch.multinomial(probs, 1, generator=generator)).squeeze(-1)


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """``tokens`` without the trailing columns that are padding in every row (short texts are the
    norm, and the output layer's cost grows with the padded length)."""
    length = int((tokens != 0).sum(1).max())
    return tokens[:, : max(length, 2)]


class CausalTransformer(nn.Module):
    """Decoder-only transformer; ``forward(tokens) -> logits (batch, length, vocab)``."""

    def __init__(self, vocab_size: int, size: LMSize, max_len: int = MAX_TOKENS) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, size.dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, size.dim)
        layer = nn.TransformerEncoderLayer(
            size.dim, size.heads, 4 * size.dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, size.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(size.dim)
        # GPT-2's initialisation of the (tied) embeddings: unit-variance rows would start the
        # output logits far from uniform
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        positions = torch.arange(length, device=tokens.device)
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        # right padding needs no key mask: under the causal mask real tokens never see later pads
        states = self.blocks(self.embedding(tokens) + self.positions(positions), mask=causal, is_causal=True)
        return self.norm(states) @ self.embedding.weight.T


class LanguageModelTask(TaskModel):
    name: ClassVar[str] = "lm"
    main_metric: ClassVar[str] = "perplexity"
    model_sizes: ClassVar[tuple[str, ...]] = tuple(MODEL_SIZES)
    #: the id padding ``tokens`` rows (``<pad>``)
    pad_id: ClassVar[int] = 0

    def __init__(self, model_size: str = "small") -> None:
        if model_size not in MODEL_SIZES:
            raise InputError(f"--model-size must be one of {', '.join(MODEL_SIZES)}, got {model_size!r}")
        self.model_size = model_size
        self.vocab: Vocabulary | None = None

    # -- featurisation -------------------------------------------------------------------------
    def fit(self, tables: list[pa.Table]) -> None:
        self.vocab = Vocabulary.build(
            (tokenize(text) for table in tables for text in table.column("text").to_pylist()), max_size=VOCAB_SIZE
        )

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``(len(texts), MAX_TOKENS)`` ids: ``<bos> words <eos>``, truncated, right-padded."""
        bos, eos = self.vocab.index[BOS], self.vocab.index[EOS]
        return pad([[bos, *self.vocab.encode(tokenize(t))[: MAX_TOKENS - 2], eos] for t in texts], MAX_TOKENS)

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        return {"tokens": self.encode_texts(table.column("text").to_pylist()).to(device)}

    def next_token_inputs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(inputs, labels, ignore_index)`` of next-word prediction on ``tokens`` rows padded
        with :attr:`pad_id`: inputs are positions ``0..n-2``, labels ``1..n-1``."""
        return tokens[:, :-1], tokens[:, 1:], self.pad_id

    def build_model(self) -> nn.Module:
        return CausalTransformer(len(self.vocab), MODEL_SIZES[self.model_size])

    # -- training and evaluation ---------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        tokens = trim_padding(batch["tokens"])
        logits = model(tokens[:, :-1])
        return nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=0)

    @torch.no_grad()
    def token_nll(self, model: nn.Module, tokens: torch.Tensor, batch_size: int = 128) -> tuple[float, int]:
        """Summed next-token negative log-likelihood (nats) and number of predicted tokens."""
        total, count = 0.0, 0
        for start in range(0, tokens.shape[0], batch_size):
            chunk = trim_padding(tokens[start : start + batch_size])
            logits = model(chunk[:, :-1])
            total += float(nn.functional.cross_entropy(
                logits.flatten(0, 1), chunk[:, 1:].flatten(), ignore_index=0, reduction="sum"
            ))
            count += int((chunk[:, 1:] != 0).sum())
        return total, count

    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        total, count = self.token_nll(model, data["tokens"])
        nll = total / max(count, 1)
        return {"perplexity": perplexity(nll), "nll": nll}

    @torch.no_grad()
    def continuation_logprob(self, model: nn.Module, prompts: Sequence[str], continuations: Sequence[str],
                             device: torch.device, batch_size: int = 128) -> list[float]:
        """``log p(continuation | <bos> prompt)`` (nats, summed over the continuation's words) per pair;
        pairs longer than the context window are cut from the end of the continuation."""
        bos = self.vocab.index[BOS]
        sequences, starts = [], []
        for prompt, continuation in zip(prompts, continuations):
            head = [bos, *self.vocab.encode(tokenize(prompt))][: MAX_TOKENS - 1]
            sequences.append([*head, *self.vocab.encode(tokenize(continuation))][:MAX_TOKENS])
            starts.append(len(head))
        out: list[float] = []
        for first in range(0, len(sequences), batch_size):
            chunk = sequences[first : first + batch_size]
            tokens = pad(chunk, max(len(s) for s in chunk)).to(device)
            logp = torch.log_softmax(model(tokens[:, :-1]).float(), dim=-1)
            picked = logp.gather(-1, tokens[:, 1:, None]).squeeze(-1)
            positions = torch.arange(tokens.shape[1] - 1, device=device)[None, :]
            lengths = torch.tensor([len(s) for s in chunk], device=device)[:, None]
            start = torch.tensor(starts[first : first + batch_size], device=device)[:, None]
            # target position t predicts token t+1: continuation tokens are t+1 in [start, length)
            keep = (positions + 1 >= start) & (positions + 1 < lengths)
            out.extend((picked * keep).sum(1).tolist())
        return out

    @torch.no_grad()
    def generate(self, model: nn.Module, prompts: Sequence[str], device: torch.device, *, max_new_tokens: int = 20,
                 min_new_tokens: int = 0, temperature: float = 1.0, top_k: int = 40, seed: int = 0,
                 batch_size: int = 64) -> list[str]:
        """One continuation (words joined by spaces, without the prompt) per prompt.

        Sampling from the ``top_k`` most likely next words at ``temperature`` (0: greedy), stopping at
        ``<eos>`` (never before ``min_new_tokens`` words) or after ``max_new_tokens``; seeded, so the
        same call returns the same texts.
        """
        if not 0 <= min_new_tokens <= max_new_tokens <= MAX_TOKENS - 2:
            raise InputError(f"need 0 <= min_new_tokens <= max_new_tokens <= {MAX_TOKENS - 2}")
        bos, eos = self.vocab.index[BOS], self.vocab.index[EOS]
        generator = torch.Generator(device=device).manual_seed(seed)
        texts: list[str] = []
        for first in range(0, len(prompts), batch_size):
            heads = [[bos, *self.vocab.encode(tokenize(p))][-(MAX_TOKENS - max_new_tokens):]
                     for p in prompts[first : first + batch_size]]
            # left-align each prompt; generated tokens go at each row's own next position
            lengths = torch.tensor([len(h) for h in heads], device=device)
            tokens = pad(heads, max(len(h) for h in heads) + max_new_tokens).to(device)
            done = torch.zeros(len(heads), dtype=torch.bool, device=device)
            rows = torch.arange(len(heads), device=device)
            for step in range(max_new_tokens):
                position = lengths + step
                logits = model(tokens[:, : int(position.max())])[rows, position - 1].float()
                logits[:, 0] = -math.inf  # never <pad>
                if step < min_new_tokens:
                    logits[:, eos] = -math.inf
                next_token = sample_next_token(logits, temperature, top_k, generator)
                next_token = next_token.masked_fill(done, 0)
                tokens[rows, position] = next_token
                done |= next_token == eos
                if bool(done.all()):
                    break
            for row, length in zip(tokens.cpu().tolist(), lengths.cpu().tolist()):
                new = row[length : length + max_new_tokens]
                new = new[: new.index(eos)] if eos in new else new
                texts.append(" ".join(self.vocab.decode(t for t in new if t != 0)))
        return texts

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        self.vocab.save(directory / "vocab.json")
        (directory / "lm.json").write_text(
            json.dumps({"model_size": self.model_size, **asdict(MODEL_SIZES[self.model_size]),
                        "max_tokens": MAX_TOKENS}) + "\n", encoding="utf-8")

    def load(self, directory: Path) -> None:
        self.vocab = Vocabulary.load(directory / "vocab.json")
        self.model_size = json.loads((directory / "lm.json").read_text(encoding="utf-8"))["model_size"]

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "model_size": self.model_size,
                **asdict(MODEL_SIZES[self.model_size]), "max_tokens": MAX_TOKENS}
