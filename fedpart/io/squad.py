"""SQuAD v1.1 / v2.0 JSON (Rajpurkar et al. 2016, 2018) flattened to the Hugging Face ``squad`` schema.

The file format nests questions under paragraphs under articles::

    {"version": ..., "data": [{"title": ..., "paragraphs": [{"context": ...,
        "qas": [{"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": ...}],
                 "is_impossible": ...}]}]}]}

and becomes one row per question: ``id``, ``title``, ``context``, ``question`` and ``answers``
(``struct<text: list<string>, answer_start: list<int32>>``), as ``datasets.load_dataset("squad")``
gives. SQuAD v2.0 unanswerable questions (``"is_impossible": true``) get empty answer lists; their
``plausible_answers`` are dropped, as Hugging Face ``squad_v2`` does.

Memory: a SQuAD file is a single JSON document, so it is parsed whole (``json.load``); the output
is then yielded ``batch_rows`` questions at a time. The official files are small (train v2.0 is
about 40 MB), so this is the accepted exception to fedpart's stream-everything rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from fedpart.errors import InputError

_LAYOUT = (
    'expected SQuAD JSON: {"data": [{"title", "paragraphs": [{"context", "qas": '
    '[{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}'
)


def squad_schema() -> pa.Schema:
    """The Hugging Face ``squad`` schema of every batch :func:`iter_squad_batches` yields."""
    answers = pa.struct(
        [pa.field("text", pa.list_(pa.string())), pa.field("answer_start", pa.list_(pa.int32()))]
    )
    return pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("title", pa.string()),
            pa.field("context", pa.string()),
            pa.field("question", pa.string()),
            pa.field("answers", answers),
        ]
    )


def _load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise InputError(f"{path}: cannot be opened ({error.strerror or error}); check the path") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: is not UTF-8 text ({error.reason}); {_LAYOUT}") from error
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}:{error.lineno}:{error.colno}: is not valid JSON ({error.msg}); {_LAYOUT} "
            "(JSON Lines files are read with --format jsonl)"
        ) from error


def _field(path: str, obj: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    """``obj[key]``, checked to exist and be of ``kind``; ``where`` is a JSON path like ``data[3]``."""
    if not isinstance(obj, dict):
        raise InputError(f"{path}: {where} is a {type(obj).__name__}, not an object; {_LAYOUT}")
    if key not in obj:
        raise InputError(f"{path}: {where} has no {key!r} key; {_LAYOUT}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InputError(
            f"{path}: {where}.{key} is {type(value).__name__} {_preview(value)}, expected {names}; {_LAYOUT}"
        )
    return value


def _preview(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iter_questions(path: str, document: Any) -> Iterator[tuple[str, str, str, str, list[str], list[int]]]:
    """Each question of a parsed SQuAD document as (id, title, context, question, texts, starts)."""
    articles = _field(path, document, "data", "the top level", list)
    for a, article in enumerate(articles):
        where_a = f"data[{a}]"
        title = _field(path, article, "title", where_a, str)
        for p, paragraph in enumerate(_field(path, article, "paragraphs", where_a, list)):
            where_p = f"{where_a}.paragraphs[{p}]"
            context = _field(path, paragraph, "context", where_p, str)
            for q, qa in enumerate(_field(path, paragraph, "qas", where_p, list)):
                where_q = f"{where_p}.qas[{q}]"
                qid = _field(path, qa, "id", where_q, (str, int))
                question = _field(path, qa, "question", where_q, str)
                impossible = isinstance(qa, dict) and qa.get("is_impossible") is True
                texts: list[str] = []
                starts: list[int] = []
                if not impossible:
                    for n, answer in enumerate(_field(path, qa, "answers", where_q, list)):
                        where_n = f"{where_q}.answers[{n}]"
                        texts.append(_field(path, answer, "text", where_n, str))
                        starts.append(_field(path, answer, "answer_start", where_n, int))
                yield str(qid), title, context, question, texts, starts


def _question_batch(rows: list[tuple[str, str, str, str, list[str], list[int]]]) -> pa.RecordBatch:
    ids, titles, contexts, questions, texts, starts = zip(*rows)
    answers = pa.StructArray.from_arrays(
        [pa.array(texts, type=pa.list_(pa.string())), pa.array(starts, type=pa.list_(pa.int32()))],
        names=["text", "answer_start"],
    )
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids, type=pa.string()),
            pa.array(titles, type=pa.string()),
            pa.array(contexts, type=pa.string()),
            pa.array(questions, type=pa.string()),
            answers,
        ],
        schema=squad_schema(),
    )


def iter_squad_batches(path: str, batch_rows: int = 4096) -> Iterator[pa.RecordBatch]:
    """Yield the questions of the SQuAD v1.1/v2.0 JSON file ``path`` as batches of :func:`squad_schema`.

    One row per question, in file order (article, paragraph, question). Answer spans are copied,
    not checked (see :func:`fedpart.tasks.qa_spans.answer_span_validity`); ``answer_start`` counts
    Python characters (code points), as in SQuAD. Questions with ``"is_impossible": true`` have
    empty ``answers.text`` and ``answers.answer_start`` lists. Integer ids become strings.

    The whole JSON document is parsed at once (it is one document); batches of ``batch_rows``
    questions are built from it.

    Raises:
        InputError: the file is not JSON, or lacks a key the layout needs (the message gives the
            JSON path, e.g. ``data[3].paragraphs[0].qas[2] has no 'question' key``), or a value
            has the wrong type.
    """
    if batch_rows < 1:
        raise InputError(f"batch_rows must be at least 1, got {batch_rows}")
    document = _load_json(path)
    rows: list[tuple[str, str, str, str, list[str], list[int]]] = []
    for row in _iter_questions(path, document):
        rows.append(row)
        if len(rows) == batch_rows:
            yield _question_batch(rows)
            rows = []
    if rows:
        yield _question_batch(rows)
