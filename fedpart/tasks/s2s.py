"""Sequence-to-sequence / summarisation (``--task s2s``): canonical columns ``source`` and ``target``.

Defaults recognise common layouts: ``source``/``target``, DialogSum ``dialogue``/``summary``, XSum
``document``/``summary``, CNN/DailyMail ``article``/``highlights``; ``--source-col``/``--target-col``
name others. There is no label: partition with ``iid``, ``quantity``, ``natural --by`` or ``cluster``.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from fedpart.tasks.base import (
    BoundTask,
    ColumnMap,
    Task,
    Validation,
    non_empty_text,
    passthrough_fields,
    pick_column,
    warn_replaced_columns,
)

DEFAULT_SOURCE = ("source", "dialogue", "document", "article", "text", "input")
DEFAULT_TARGET = ("target", "summary", "highlights", "summary1", "output")


class Seq2Seq(Task):
    name: ClassVar[str] = "s2s"
    title: ClassVar[str] = "seq2seq / summarisation"
    text_cols: ClassVar[tuple[str, ...]] = ("source",)
    by_examples: ClassVar[tuple[str, ...]] = ("topic",)  # DialogSum

    def bind(self, raw_schema: pa.Schema, columns: ColumnMap, where: str) -> BoundTask:
        names = raw_schema.names
        source = pick_column(names, columns.source, DEFAULT_SOURCE, "--source-col", "source", where)
        target = pick_column(names, columns.target, DEFAULT_TARGET, "--target-col", "target", where)
        warn_replaced_columns(raw_schema, [source, target], ["source", "target"], where)
        return _BoundSeq2Seq(raw_schema, source, target)


class _BoundSeq2Seq(BoundTask):
    def __init__(self, raw_schema: pa.Schema, source: str, target: str) -> None:
        self.source, self.target = source, target
        self.extra = passthrough_fields(raw_schema, [source, target], ["source", "target"])
        self.schema = pa.schema([pa.field("source", pa.string()), pa.field("target", pa.string()), *self.extra])

    def to_canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = [
            batch.column(self.source).cast(pa.string()),
            batch.column(self.target).cast(pa.string()),
            *(batch.column(f.name) for f in self.extra),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def validate(self, batch: pa.RecordBatch) -> list[Validation]:
        return [non_empty_text(batch, "source"), non_empty_text(batch, "target")]
