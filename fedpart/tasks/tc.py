"""Text classification (``--task tc``): canonical columns ``text`` (string) and ``label``.

``text`` is one input column or several joined with a space, the join's surrounding whitespace
trimmed (``--text-col title,description`` for AG News style ``label,title,description`` files; the
raw columns are kept as they are); by default the first of ``text``, ``sentence``,
``content``, or ``title`` + ``description`` when both exist. The label is the partition key.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from fedpart.errors import InputError
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

DEFAULT_TEXT = ("text", "sentence", "content")
DEFAULT_LABEL = ("label", "labels", "class", "category")


class TextClassification(Task):
    name: ClassVar[str] = "tc"
    title: ClassVar[str] = "text classification"
    label_col: ClassVar[str | None] = "label"
    text_cols: ClassVar[tuple[str, ...]] = ("text",)

    def bind(self, raw_schema: pa.Schema, columns: ColumnMap, where: str) -> BoundTask:
        text_cols = resolve_text_columns(raw_schema, columns, where)
        label = pick_column(raw_schema.names, columns.label, DEFAULT_LABEL, "--label-col", "label", where)
        if label in text_cols:
            raise InputError(
                f"{where}: --label-col {label} is also read as text (text from {', '.join(text_cols)}): each text "
                "would hold its own label; pick another --label-col, or the text columns with --text-col"
            )
        warn_replaced_columns(raw_schema, [*text_cols, label], ["text", "label"], where)
        return _BoundTextClassification(raw_schema, text_cols, label)


def resolve_text_columns(raw_schema: pa.Schema, columns: ColumnMap, where: str) -> list[str]:
    """The string column(s) that make up ``text``: ``--text-col`` (comma-separated names are joined),
    else the first of ``text``/``sentence``/``content``, else ``title`` + ``description``."""
    names = raw_schema.names
    if columns.text is not None:
        text_cols = list(columns.text)
        for col in text_cols:
            pick_column(names, col, (), "--text-col", "text", where)
    elif not any(c in names for c in DEFAULT_TEXT) and {"title", "description"} <= set(names):
        text_cols = ["title", "description"]
    else:  # raises, listing the columns, when no default text column exists
        text_cols = [pick_column(names, None, DEFAULT_TEXT, "--text-col", "text", where)]
    for col in text_cols:
        if pa.types.is_null(raw_schema.field(col).type):  # what Arrow infers for a CSV with a header and no rows
            raise InputError(f"{where}: text column {col!r} holds no values at all (has the input any rows?)")
        if not (pa.types.is_string(raw_schema.field(col).type) or pa.types.is_large_string(raw_schema.field(col).type)):
            raise InputError(
                f"{where}: text column {col!r} has type {raw_schema.field(col).type}, expected strings; "
                "pick the text with --text-col"
            )
    return text_cols


def text_array(batch: pa.RecordBatch, text_cols: list[str]) -> pa.Array:
    """The ``text`` column of a raw batch: one column as strings, or several joined with a space
    (nulls as empty strings) with the surrounding whitespace of the join trimmed."""
    if len(text_cols) == 1:
        return batch.column(text_cols[0]).cast(pa.string())
    parts = [pc.fill_null(batch.column(c).cast(pa.string()), "") for c in text_cols]
    return pc.utf8_trim_whitespace(pc.binary_join_element_wise(*parts, " "))


class _BoundTextClassification(BoundTask):
    def __init__(self, raw_schema: pa.Schema, text_cols: list[str], label: str) -> None:
        self.text_cols, self.label = text_cols, label
        self.extra = passthrough_fields(raw_schema, [*text_cols, label] if len(text_cols) == 1 else [label], ["text", "label"])
        self.schema = pa.schema(
            [pa.field("text", pa.string()), pa.field("label", raw_schema.field(label).type), *self.extra]
        )

    def to_canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = [text_array(batch, self.text_cols), batch.column(self.label), *(batch.column(f.name) for f in self.extra)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def validate(self, batch: pa.RecordBatch) -> list[Validation]:
        return [non_empty_text(batch, "text")]
