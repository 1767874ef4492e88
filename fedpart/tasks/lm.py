"""Causal language modelling (``--task lm``): one canonical column ``text``.

``text`` is chosen like text classification's (``--text-col``, several names joined with a space, or
the first of ``text``/``sentence``/``content``); any label in the input is passed through, not used.
There is no label: partition with ``iid``, ``quantity``, ``natural --by`` or ``cluster``.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from fedpart.tasks.base import BoundTask, ColumnMap, Task, Validation, non_empty_text, passthrough_fields, warn_replaced_columns
from fedpart.tasks.tc import resolve_text_columns, text_array


class LanguageModeling(Task):
    name: ClassVar[str] = "lm"
    title: ClassVar[str] = "causal language modelling"
    text_cols: ClassVar[tuple[str, ...]] = ("text",)

    def bind(self, raw_schema: pa.Schema, columns: ColumnMap, where: str) -> BoundTask:
        text_cols = resolve_text_columns(raw_schema, columns, where)
        warn_replaced_columns(raw_schema, text_cols, ["text"], where)
        return _BoundLanguageModeling(raw_schema, text_cols)


class _BoundLanguageModeling(BoundTask):
    def __init__(self, raw_schema: pa.Schema, text_cols: list[str]) -> None:
        self.text_cols = text_cols
        self.extra = passthrough_fields(raw_schema, text_cols if len(text_cols) == 1 else [], ["text"])
        self.schema = pa.schema([pa.field("text", pa.string()), *self.extra])

    def to_canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = [text_array(batch, self.text_cols), *(batch.column(f.name) for f in self.extra)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def validate(self, batch: pa.RecordBatch) -> list[Validation]:
        return [non_empty_text(batch, "text")]
