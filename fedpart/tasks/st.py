"""Sequence tagging / NER (``--task st``): canonical ``tokens: list<string>``, ``tags: list<string>``.

Reads CoNLL column files (CoNLL-2003 with ``-DOCSTART-`` and the tag in the last column, WNUT-17
``token<TAB>tag``) or Parquet/JSONL/HF with token and tag list columns. Tags in BIO, IOB1, IOBES or
BILOU are normalised to BIO.

Partition key (also the label of the metrics): ``entity_type``, the sentence's dominant entity type --
the most frequent entity type among its entities (ties alphabetical), ``O`` when it has none. The
column is added to every shard so the skew can be inspected.
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpart.errors import InputError
from fedpart.io.conll import CONLL_SUFFIXES, conll_schema, iter_conll_batches
from fedpart.io.native import NativeFormatSource, expand_native_paths, native_directory_files
from fedpart.io.sources import FORMAT_BY_EXTENSION, HF_PREFIX, Source
from fedpart.tasks.base import (
    BoundTask,
    ColumnMap,
    Task,
    TaskOptions,
    Validation,
    passthrough_fields,
    pick_column,
    warn_replaced_columns,
)
from fedpart.tasks.tags import check_tags, detect_tag_scheme, dominant_entity_types, normalise_tag_column

ENTITY_TYPE = "entity_type"


def _is_native(spec: str, options: TaskOptions) -> bool:
    if spec.startswith(HF_PREFIX) or options.read.format is not None:
        return False
    if os.path.isdir(spec):
        return any(
            name.lower().endswith(CONLL_SUFFIXES) for _, _, files in os.walk(spec) for name in files
        )
    return os.path.splitext(spec)[1].lower() not in FORMAT_BY_EXTENSION


class SequenceTagging(Task):
    name: ClassVar[str] = "st"
    title: ClassVar[str] = "sequence tagging (NER)"
    label_col: ClassVar[str | None] = ENTITY_TYPE
    text_cols: ClassVar[tuple[str, ...]] = ("tokens",)

    def data_files(self, directory: str, options: TaskOptions = TaskOptions()) -> list[str]:
        if _is_native(directory, options):
            return native_directory_files(directory, CONLL_SUFFIXES, "CoNLL")
        return super().data_files(directory, options)

    def open_raw(self, spec: str, options: TaskOptions) -> Source:
        if not _is_native(spec, options):
            return super().open_raw(spec, options)
        files = expand_native_paths(spec, CONLL_SUFFIXES, "CoNLL")
        return NativeFormatSource(
            spec, files, lambda path, rows: iter_conll_batches(path, rows, check_tags=check_tags), conll_schema(),
            "conll", batch_rows=4096,
        )

    def bind(self, raw_schema: pa.Schema, columns: ColumnMap, where: str) -> BoundTask:
        names = raw_schema.names
        tokens = pick_column(names, columns.tokens, ("tokens", "words"), "--tokens-col", "tokens", where)
        tags = pick_column(names, columns.tags, ("tags", "ner_tags", "labels"), "--tags-col", "tags", where)
        for col in (tokens, tags):
            col_type = raw_schema.field(col).type
            if not (pa.types.is_list(col_type) or pa.types.is_large_list(col_type)) or not (
                pa.types.is_string(col_type.value_type) or pa.types.is_large_string(col_type.value_type)
            ):
                raise InputError(
                    f"{where}: column {col!r} has type {col_type}; sequence tagging needs lists of strings "
                    "(integer tag ids must be mapped to tag names first)"
                )
        warn_replaced_columns(raw_schema, [tokens, tags], ["tokens", "tags"], where)
        return _BoundSequenceTagging(raw_schema, tokens, tags)


class _BoundSequenceTagging(BoundTask):
    def __init__(self, raw_schema: pa.Schema, tokens: str, tags: str) -> None:
        self.tokens, self.tags = tokens, tags
        self.extra = passthrough_fields(raw_schema, [tokens, tags], ["tokens", "tags", ENTITY_TYPE])
        self.schema = pa.schema(
            [
                pa.field("tokens", pa.list_(pa.string())),
                pa.field("tags", pa.list_(pa.string())),
                pa.field(ENTITY_TYPE, pa.string()),
                *self.extra,
            ]
        )

    def to_canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        tokens = batch.column(self.tokens).cast(pa.list_(pa.string()))
        tags = batch.column(self.tags).cast(pa.list_(pa.string()))
        check_tags(pc.list_flatten(tags))
        scheme = detect_tag_scheme(tags.to_pylist())
        tags = normalise_tag_column(tags, scheme)
        arrays = [tokens, tags, dominant_entity_types(tags), *(batch.column(f.name) for f in self.extra)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def validate(self, batch: pa.RecordBatch) -> list[Validation]:
        n_tokens = pc.fill_null(pc.list_value_length(batch.column("tokens")), 0).to_numpy()
        n_tags = pc.fill_null(pc.list_value_length(batch.column("tags")), 0).to_numpy()
        same = n_tokens == n_tags
        example = ""
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            example = f"{int(n_tokens[i])} tokens {batch.column('tokens')[i].as_py()[:8]} but {int(n_tags[i])} tags"
        empty = n_tokens > 0
        return [
            Validation(same, "have tokens and tags of different lengths", example),
            Validation(empty, "have no tokens", "an empty sentence"),
        ]
