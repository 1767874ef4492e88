"""Extractive-QA answer spans: does each ``answer_start`` point at its answer text in the context?

SQuAD (Rajpurkar et al. 2016) defines ``answer_start`` as a character offset into ``context``, i.e.
a Python string index (code points, not UTF-8 bytes and not UTF-16 units), so an answer is valid
when ``context[answer_start:answer_start + len(text)] == text``. A converter that counted bytes or
UTF-16 units, or re-tokenised the context, breaks this for non-ASCII text; checking it before
partitioning keeps broken rows out of every client.

Pure functions over Arrow arrays; no I/O.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return array


def _answer_lists(answers: pa.StructArray | pa.ChunkedArray) -> tuple[list, list]:
    """Per row: the list of answer texts and the list of starts (``None`` for a null answers struct)."""
    answers = _combined(answers)
    texts = answers.field("text").to_pylist()
    starts = answers.field("answer_start").to_pylist()
    if answers.null_count:
        present = answers.is_valid().to_pylist()
        texts = [t if ok else None for t, ok in zip(texts, present)]
        starts = [s if ok else None for s, ok in zip(starts, present)]
    return texts, starts


def _span_ok(context: str | None, text: str | None, start: int | None) -> bool:
    if context is None or text is None or start is None or start < 0:
        return False
    return context[start : start + len(text)] == text


def answer_span_validity(
    contexts: pa.StringArray | pa.ChunkedArray, answers: pa.StructArray | pa.ChunkedArray
) -> np.ndarray:
    """A boolean array, one value per row: True when every answer of the row is found in its context.

    Args:
        contexts: the ``context`` strings.
        answers: ``struct<text: list<string>, answer_start: list<int>>`` (the SQuAD layout).

    A row is valid when, for every ``k``, ``context[answer_start[k]:answer_start[k] + len(text[k])]
    == text[k]`` (code-point offsets). Rows without answers (SQuAD v2.0 unanswerable questions: empty
    lists, or a null ``answers``) are valid. Invalid: a negative or null start, a null text or
    context, or ``text`` and ``answer_start`` lists of different lengths.
    """
    context_list = _combined(contexts).to_pylist()
    texts, starts = _answer_lists(answers)
    valid = np.ones(len(context_list), dtype=bool)
    for row, (context, row_texts, row_starts) in enumerate(zip(context_list, texts, starts)):
        row_texts, row_starts = row_texts or [], row_starts or []
        if len(row_texts) != len(row_starts):
            valid[row] = False
        elif not all(_span_ok(context, text, start) for text, start in zip(row_texts, row_starts)):
            valid[row] = False
    return valid


def _first_bad_answer(context: str | None, texts: list, starts: list) -> str:
    if len(texts) != len(starts):
        return f"has {len(texts)} answer texts but {len(starts)} answer_start values"
    for text, start in zip(texts, starts):
        if _span_ok(context, text, start):
            continue
        if context is None:
            return "has no context"
        if text is None or start is None:
            return f"has a missing answer {'text' if text is None else 'answer_start'}"
        in_range = 0 <= start < len(context)
        found = repr(context[start : start + len(text)]) if in_range else "nothing (out of range)"
        where = context.find(text)
        hint = f"; the text occurs at {where}" if where >= 0 else "; the text does not occur in the context"
        return f"expects {text!r} at answer_start {start} but the context has {found} there{hint}"
    return "is valid"


def describe_invalid(
    ids: pa.Array | pa.ChunkedArray,
    contexts: pa.StringArray | pa.ChunkedArray,
    answers: pa.StructArray | pa.ChunkedArray,
    valid: np.ndarray,
) -> str:
    """A one-line summary of the invalid rows: their count and the first one's id, expected answer text
    and what the context holds at that offset (plus where the text does occur, which tells an
    offset shift from a wrong answer). ``""`` when every row is valid.
    """
    valid = np.asarray(valid, dtype=bool)
    bad = np.flatnonzero(~valid)
    if bad.size == 0:
        return ""
    return (
        f"{bad.size} of {valid.size} rows have an answer that is not at its answer_start; "
        f"first: {describe_first_invalid(ids, contexts, answers, valid)}"
    )


def describe_first_invalid(
    ids: pa.Array | pa.ChunkedArray,
    contexts: pa.StringArray | pa.ChunkedArray,
    answers: pa.StructArray | pa.ChunkedArray,
    valid: np.ndarray,
) -> str:
    """The first invalid row alone (``id 'b' expects 'a book' at answer_start 3 but ...``), for
    messages that count the rows themselves; ``""`` when every row is valid."""
    bad = np.flatnonzero(~np.asarray(valid, dtype=bool))
    if bad.size == 0:
        return ""
    i = int(bad[0])
    row_id = _combined(ids)[i].as_py()
    context = _combined(contexts)[i].as_py()
    answer = _combined(answers)[i].as_py() or {}
    detail = _first_bad_answer(context, answer.get("text") or [], answer.get("answer_start") or [])
    return f"id {row_id!r} {detail}"
