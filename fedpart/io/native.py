"""Sources for task-native file formats that Arrow cannot scan (CoNLL columns, SQuAD JSON).

A :class:`NativeFormatSource` reads one file or every matching file of a directory (sorted), each
through a reader function yielding record batches of a fixed schema.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from fedpart.errors import InputError
from fedpart.io.sources import (
    FORMAT_BY_EXTENSION,
    FileHasher,
    Source,
    SourceUnit,
    directory_data_files,
    files_fingerprint,
    is_glob,
)

BatchReader = Callable[[str, int], Iterator[pa.RecordBatch]]


def native_directory_files(directory: str, suffixes: Sequence[str], kind: str) -> list[str]:
    """The files of ``directory`` that a task reads with its own reader (``kind`` files, named by
    ``suffixes``), in ``row_id`` order, with the same rules as :func:`directory_data_files`.

    Raises:
        InputError: the directory also holds data files of a format Arrow reads, which would be
            skipped without a word (or it holds no ``kind`` file).
    """
    found = directory_data_files(Path(directory), {*suffixes, *FORMAT_BY_EXTENSION})  # one walk
    files = [f for f in found if Path(f).suffix.lower() in suffixes]
    others = [f for f in found if Path(f).suffix.lower() not in suffixes]
    if files and others:
        raise InputError(
            f"{directory}: holds {kind} files ({os.path.relpath(files[0], directory)}) and other data files "
            f"({os.path.relpath(others[0], directory)}); a directory is read in one format: move one kind out, "
            f"or name the files with a glob such as '{os.path.join(directory, '*' + suffixes[0])}'"
        )
    if not files:
        raise InputError(f"{directory}: no {'/'.join(suffixes)} files found")
    return files


def expand_native_paths(spec: str, suffixes: Sequence[str], kind: str) -> list[str]:
    """One file, a glob, or the ``kind`` files of a directory (see :func:`native_directory_files`)."""
    if is_glob(spec):
        files = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
    elif os.path.isdir(spec):
        return native_directory_files(spec, suffixes, kind)
    elif os.path.isfile(spec):
        files = [spec]
    else:
        raise InputError(f"{spec}: no such file or directory")
    if not files:
        raise InputError(f"{spec}: no {'/'.join(suffixes)} files found")
    return files


class NativeFormatSource(Source):
    """Batches from ``reader(path, batch_rows)`` over the files of ``spec``."""

    def __init__(
        self, spec: str, files: Sequence[str], reader: BatchReader, schema: pa.Schema, format: str,
        batch_rows: int,
    ) -> None:
        self.description = spec
        self.files = list(files)
        self.reader = reader
        self.schema = schema
        self.format = format
        self.batch_rows = batch_rows

    def iter_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        for path in self.files:
            try:
                for batch in self.reader(path, self.batch_rows):
                    if batch.num_rows:
                        yield batch.select(list(columns)) if columns is not None else batch
            except InputError as error:
                if not os.path.isdir(self.description) or len(self.files) < 2:
                    raise
                others = Counter(Path(f).suffix for f in self.files if Path(f).suffix != Path(path).suffix)
                suffix = others.most_common(1)[0][0] if others else Path(path).suffix
                raise InputError(f"{error}; {self.description} is a directory, whose every {self.format} file "
                                 f"({', '.join(sorted({Path(f).suffix for f in self.files}))}) is read: name only "
                                 f"the data files with a glob such as "
                                 f"'{os.path.join(self.description, '*' + suffix)}'") from error

    def split(self, target_rows: int) -> list[SourceUnit]:
        return [SourceUnit(i, path) for i, path in enumerate(self.files)]

    def piece(self, unit: SourceUnit) -> NativeFormatSource:
        return NativeFormatSource(unit.file, [unit.file], self.reader, self.schema, self.format,
                                  self.batch_rows)

    def fingerprint(self, hash_files: FileHasher | None = None) -> dict[str, Any]:
        base = os.path.commonpath([os.path.dirname(f) or "." for f in self.files])
        return files_fingerprint(self.format, self.files, base, hash_files)
