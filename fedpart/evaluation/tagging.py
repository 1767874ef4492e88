"""Entity-level precision, recall and F1 for BIO/IOB tags, as defined by CoNLL's ``conlleval``.

An entity is a maximal chunk: it starts at ``B-X``, or at ``I-X`` that does not continue an open
``X`` chunk, and ends before the next tag that does not continue it. A predicted entity counts only
if its type, start and end all match a gold entity (micro-averaged over all sentences).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: the prefixes of BIO, IOB1, IOBES and BILOU tags
TAG_PREFIXES = frozenset("BIESLU")


def entity_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """``{(type, start, end_exclusive)}`` of the chunks in one sentence's tags."""
    spans: set[tuple[str, int, int]] = set()
    current: tuple[str, int] | None = None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, kind = tag.partition("-")
        continues = current is not None and prefix in ("I", "E", "L") and kind == current[0]
        if current is not None and not continues:
            spans.add((current[0], current[1], i))
            current = None
        if prefix in ("B", "S", "U") or (prefix in ("I", "E", "L") and not continues):
            current = (kind, i)
        if prefix in ("S", "U", "E", "L") and current is not None:
            spans.add((current[0], current[1], i + 1))
            current = None
    return spans


def entity_types(tags: Iterable[str]) -> set[str]:
    """The entity types that ``tags`` mark: ``PER`` for ``B-PER``/``I-PER``/...; a tag without a
    scheme prefix (e.g. a part-of-speech tag) counts as it is; ``O`` marks none."""
    types = set()
    for tag in tags:
        prefix, dash, kind = tag.partition("-")
        if tag != "O":
            types.add(kind if dash and prefix in TAG_PREFIXES else tag)
    return types


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision/recall/F1 of predicted entities against gold, over parallel sentences."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted must have the same number of sentences")
    correct = n_gold = n_pred = 0
    for gold_tags, pred_tags in zip(gold, predicted):
        gold_spans, pred_spans = entity_spans(gold_tags), entity_spans(pred_tags)
        correct += len(gold_spans & pred_spans)
        n_gold += len(gold_spans)
        n_pred += len(pred_spans)
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
