"""Exact match and F1 for extractive QA, following the official SQuAD v1.1 evaluation script
(``evaluate-v1.1.py``): lower-case, remove punctuation, remove the articles a/an/the, collapse
whitespace; a prediction's score is its maximum over the gold answers; corpus scores are means.

A row without gold answers (a SQuAD v2.0 unanswerable question), which v1.1 cannot score, is scored
as the official v2.0 script does (``evaluate-v2.0.py``): 1 (EM and F1) for a prediction that
normalises to nothing (the model abstains), else 0."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 answer normalisation."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent (as the official script), max over each row's gold answers;
    a row without gold answers scores 1 only for an empty prediction (SQuAD v2.0)."""
    if len(predictions) != len(golds):
        raise ValueError("predictions and golds must have the same length")
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    em = sum(max((exact_match(p, g) for g in gs), default=_abstained(p)) for p, gs in zip(predictions, golds))
    f1 = sum(max((token_f1(p, g) for g in gs), default=_abstained(p)) for p, gs in zip(predictions, golds))
    return {"exact_match": 100.0 * em / len(predictions), "f1": 100.0 * f1 / len(predictions)}


def _abstained(prediction: str) -> float:
    """The score of ``prediction`` for a question without an answer (SQuAD v2.0): 1 for no answer."""
    return float(not normalize_answer(prediction))
