"""Classification metrics: accuracy and macro-averaged F1 (scikit-learn's ``f1_score(average="macro")``)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Share of predictions equal to the truth (0.0 for no examples)."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    return float((true == pred).mean()) if true.size else 0.0


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[int] | None = None) -> float:
    """Unweighted mean over labels of per-label F1 = 2PR/(P+R); a label with no support and no
    predictions is skipped unless listed in ``labels``, where it counts as F1 = 0."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.asarray(labels) if labels is not None else np.union1d(true, pred)
    scores = []
    for label in classes:
        tp = np.sum((pred == label) & (true == label))
        fp = np.sum((pred == label) & (true != label))
        fn = np.sum((pred != label) & (true == label))
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def gold_codes(values: Sequence[Hashable], labels: Sequence[Hashable]) -> list[int]:
    """Each gold label's index in the model's ``labels``; a label the model does not know gets a
    negative code of its own (``-1``, ``-2``, ... in order of first appearance), never a prediction.

    Every unseen label thus stays a class of its own in :func:`macro_f1` (with F1 = 0), as
    scikit-learn's macro-F1 over the true labels counts it; one shared code for all of them (the
    loss's ignore index) merged them into one class and inflated the mean.
    """
    index = {label: i for i, label in enumerate(labels)}
    unseen: dict[Hashable, int] = {}
    return [index[v] if v in index else -1 - unseen.setdefault(v, len(unseen)) for v in values]
