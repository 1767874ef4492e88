"""Extractive QA (``--task qa``): canonical ``id``, ``title``, ``context``, ``question``,
``answers: {text: list<string>, answer_start: list<int32>}`` (the Hugging Face ``squad`` schema).

Reads SQuAD v1.1/v2.0 JSON or Parquet/JSONL/HF in the ``squad`` layout. Every answer must satisfy
``context[answer_start:answer_start + len(text)] == text``; rows that do not are counted, and
dropped with ``--drop-invalid``.

Group integrity: all questions of one context are one group (``group_col = "context"``), so a
context never appears on two clients (nor in both a client and the test split). Skew with
``--scheme natural --by title`` (whole articles per client) or ``--scheme cluster`` (contexts
clustered by content).
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np
import pyarrow as pa

from fedpart.errors import InputError
from fedpart.io.native import NativeFormatSource, expand_native_paths, native_directory_files
from fedpart.io.sources import HF_PREFIX, Source
from fedpart.io.squad import iter_squad_batches, squad_schema
from fedpart.tasks.base import (
    BoundTask,
    ColumnMap,
    Task,
    TaskOptions,
    Validation,
    non_empty_text,
    passthrough_fields,
    pick_column,
    warn_replaced_columns,
)
from fedpart.tasks.qa_spans import answer_span_validity, describe_first_invalid

CANONICAL = ("id", "title", "context", "question", "answers")


def _is_squad_json(spec: str, options: TaskOptions) -> bool:
    if spec.startswith(HF_PREFIX) or options.read.format is not None:
        return False
    if os.path.isdir(spec):
        return any(name.endswith(".json") for _, _, files in os.walk(spec) for name in files)
    return spec.lower().endswith(".json")


class ExtractiveQA(Task):
    name: ClassVar[str] = "qa"
    title: ClassVar[str] = "extractive question answering"
    group_col: ClassVar[str | None] = "context"
    text_cols: ClassVar[tuple[str, ...]] = ("context",)
    by_examples: ClassVar[tuple[str, ...]] = ("title",)

    def data_files(self, directory: str, options: TaskOptions = TaskOptions()) -> list[str]:
        if _is_squad_json(directory, options):
            return native_directory_files(directory, (".json",), "SQuAD JSON")
        return super().data_files(directory, options)

    def open_raw(self, spec: str, options: TaskOptions) -> Source:
        if not _is_squad_json(spec, options):
            return super().open_raw(spec, options)
        files = expand_native_paths(spec, (".json",), "SQuAD JSON")
        return NativeFormatSource(spec, files, iter_squad_batches, squad_schema(), "squad-json", 4096)

    def bind(self, raw_schema: pa.Schema, columns: ColumnMap, where: str) -> BoundTask:
        names = raw_schema.names
        mapping = {
            "id": pick_column(names, columns.id, ("id",), "--id-col", "id", where),
            "title": pick_column(names, columns.title, ("title",), "--title-col", "title", where),
            "context": pick_column(names, columns.context, ("context",), "--context-col", "context", where),
            "question": pick_column(names, columns.question, ("question",), "--question-col", "question", where),
            "answers": pick_column(names, columns.answers, ("answers",), "--answers-col", "answers", where),
        }
        answers_type = raw_schema.field(mapping["answers"]).type
        if not pa.types.is_struct(answers_type) or {f.name for f in answers_type} < {"text", "answer_start"}:
            raise InputError(
                f"{where}: column {mapping['answers']!r} has type {answers_type}; expected "
                "struct<text: list<string>, answer_start: list<int>> as in the SQuAD layout"
            )
        warn_replaced_columns(raw_schema, list(mapping.values()), CANONICAL, where)
        return _BoundQA(raw_schema, mapping)


class _BoundQA(BoundTask):
    def __init__(self, raw_schema: pa.Schema, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.extra = passthrough_fields(raw_schema, list(mapping.values()), CANONICAL)
        base = squad_schema()
        self.schema = pa.schema([base.field(name) for name in CANONICAL] + self.extra)

    def to_canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = [batch.column(self.mapping[name]).cast(self.schema.field(name).type) for name in CANONICAL]
        arrays += [batch.column(f.name) for f in self.extra]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def validate(self, batch: pa.RecordBatch) -> list[Validation]:
        contexts, answers = batch.column("context"), batch.column("answers")
        valid = np.asarray(answer_span_validity(contexts, answers), dtype=bool)
        example = ""
        if not valid.all():
            example = describe_first_invalid(batch.column("id"), contexts, answers, valid)
        return [
            non_empty_text(batch, "context"),
            non_empty_text(batch, "question"),
            Validation(valid, "have an answer_start that does not point at the answer text", example),
        ]
