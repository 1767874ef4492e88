"""ROUGE-1, ROUGE-2 and ROUGE-L F1 (Lin 2004), as Google's ``rouge_score`` computes them without
stemming: text is lower-cased, non-alphanumeric characters become spaces, tokens are split on
whitespace; ROUGE-N counts clipped n-gram overlaps, ROUGE-L uses the longest common subsequence.
Corpus scores are means of per-pair F1."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _NON_ALNUM.sub(" ", text.lower()).split()


def _f1(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_pred, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def rouge_n(prediction: str, reference: str, n: int) -> float:
    """ROUGE-N F1 of one pair."""
    pred, ref = tokenize(prediction), tokenize(reference)
    pred_grams = Counter(tuple(pred[i:i + n]) for i in range(len(pred) - n + 1))
    ref_grams = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
    overlap = sum((pred_grams & ref_grams).values())
    return _f1(overlap, sum(pred_grams.values()), sum(ref_grams.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one pair."""
    pred, ref = tokenize(prediction), tokenize(reference)
    return _f1(lcs_length(pred, ref), len(pred), len(ref))


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ``rouge1``, ``rouge2``, ``rougeL`` F1 over parallel predictions and references."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references must have the same length")
    if not predictions:
        return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    pairs = list(zip(predictions, references))
    return {
        "rouge1": sum(rouge_n(p, r, 1) for p, r in pairs) / len(pairs),
        "rouge2": sum(rouge_n(p, r, 2) for p, r in pairs) / len(pairs),
        "rougeL": sum(rouge_l(p, r) for p, r in pairs) / len(pairs),
    }
