"""Offline word-level tokenisation and vocabularies, built from the training shards and saved with a run.

Tokens are ``\\w+`` runs and single punctuation characters, lower-cased; character offsets are kept
so extractive-QA answers can be mapped between characters and tokens exactly.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r"\w+|[^\w\s]")

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of ``text``."""
    return [m.group().lower() for m in _TOKEN.finditer(text or "")]


def tokenize_with_offsets(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Tokens of ``text`` and each token's ``(start, end)`` character offsets."""
    matches = list(_TOKEN.finditer(text or ""))
    return [m.group().lower() for m in matches], [m.span() for m in matches]


@dataclass
class Vocabulary:
    """Token <-> id mapping; ids 0..3 are ``<pad> <unk> <bos> <eos>``."""

    tokens: list[str]

    def __post_init__(self) -> None:
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], max_size: int = 30_000, min_freq: int = 1) -> Vocabulary:
        """Most frequent tokens first (ties alphabetical, so the result is deterministic)."""
        counts = Counter(token for tokens in token_lists for token in tokens)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls([*SPECIALS, *ranked[: max_size - len(SPECIALS)]])

    def encode(self, tokens: Iterable[str]) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids if self.tokens[i] not in SPECIALS]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"tokens": self.tokens}) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls(json.loads(Path(path).read_text(encoding="utf-8"))["tokens"])
