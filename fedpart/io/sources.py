"""Readers: every input becomes a :class:`Source`, a re-iterable stream of Arrow record batches.

Local files (Parquet, Arrow IPC/Feather, CSV, TSV, JSON Lines; single files, directories or globs)
are scanned with :mod:`pyarrow.dataset`, so only one batch is in memory at a time and pass 1 reads
only the columns it counts. Hugging Face datasets (``hf://NAME``) are read with
``datasets.load_dataset(..., streaming=True)``.

Row order is the order of files (sorted by path) and of rows within them; ``row_id`` is the 0-based
position in that stream, so it is stable for the same input.
"""

from __future__ import annotations

import glob
import json
import os
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from fedpart.errors import FedpartWarning, InputError
from fedpart.io.conll import CONLL_SUFFIXES
from fedpart.verify import sha256_of

DEFAULT_BATCH_ROWS = 65_536
HF_PREFIX = "hf://"

# file extension -> format name used by this module
FORMAT_BY_EXTENSION: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
SUPPORTED_FORMATS = ("parquet", "arrow", "csv", "tsv", "jsonl")
#: formats whose files may lack a header row (``ReadOptions.column_names`` names their columns)
HEADERLESS_FORMATS = ("csv", "tsv")
#: text formats: a file of them holding only white space holds no rows
TEXT_FORMATS = ("csv", "tsv", "jsonl")
#: a file longer than this is not blank (see :func:`is_blank_file`)
_BLANK_FILE_MAX_BYTES = 4096
_JSON_PARSE_ERROR = "JSON parse error:"


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: a column name this long with this many spaces reads as a sentence of data, not as a name
_SENTENCE_CHARS, _SENTENCE_SPACES = 40, 4


def header_looks_like_data(names: Sequence[str]) -> bool:
    """Whether column names read from a header row look like a row of data: a name that is a number
    (AG News' ``3``) or a sentence, as when a CSV without a header row is read as if it had one."""
    return any(_NUMBER.fullmatch(name.strip()) is not None
               or (len(name) > _SENTENCE_CHARS and name.count(" ") >= _SENTENCE_SPACES) for name in names)


def columns_listing(names: Sequence[str]) -> str:
    """``columns are: a, b`` for an error about a missing column, with the way out when the names
    look like a data row (:func:`header_looks_like_data`)."""
    listing = f"columns are: {', '.join(names)}"
    if header_looks_like_data(names):
        listing += ("; these names look like a row of data: for a CSV/TSV without a header row, name its "
                    "columns with --column-names")
    return listing


def warn_if_header_looks_like_data(source: Source) -> None:
    """Warn (:class:`FedpartWarning`) when ``source`` is a CSV/TSV read with a header row whose
    names look like data (:func:`header_looks_like_data`). For inputs whose columns are used as
    they are (a partition without a task): the task readers' missing-column errors say the same."""
    options = getattr(source, "options", None)
    if (getattr(source, "format", None) in HEADERLESS_FORMATS and options is not None and not options.column_names
            and header_looks_like_data(source.schema.names)):
        shown = ", ".join(repr(n if len(n) <= 30 else n[:27] + "...") for n in source.schema.names[:3])
        warnings.warn(FedpartWarning(
            f"{source.description}: its header row looks like data ({shown}); if the file has no header row, "
            "name its columns with --column-names (its first row is read as names, not as a row)"
        ), stacklevel=2)


@dataclass(frozen=True)
class ReadOptions:
    """How to read local files.

    Attributes:
        format: one of :data:`SUPPORTED_FORMATS`; ``None`` infers it from the file extension.
        column_names: names for a CSV/TSV without a header row (e.g. AG News: label,title,description).
        batch_rows: rows per record batch (Parquet/Arrow; CSV/JSON use a byte block size).
    """

    format: str | None = None
    column_names: tuple[str, ...] | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS


@dataclass(frozen=True)
class SourceUnit:
    """A contiguous piece of a local input that can be read on its own (see :meth:`Source.split`).

    Attributes:
        index: position of the piece among all pieces (pieces are in input order).
        file: the file the piece is in.
        row_groups: the Parquet row groups of ``file`` in the piece; ``None``: the whole file.
        rows: rows in the piece when known without reading it (Parquet metadata), else ``None``.
    """

    index: int
    file: str
    row_groups: tuple[int, ...] | None = None
    rows: int | None = None


class Source:
    """A re-iterable stream of record batches with a known schema."""

    description: str
    schema: pa.Schema
    #: rows dropped as invalid in the last complete pass, by reason (task sources fill it)
    invalid: Mapping[str, int] = MappingProxyType({})

    def split(self, target_rows: int) -> list[SourceUnit]:
        """Cut the input into pieces, in input order, of about ``target_rows`` rows where the format
        allows (runs of Parquet row groups; other files are one piece each) -- for engines that read
        the pieces in parallel.

        Raises:
            InputError: the input cannot be read piece by piece (a Hugging Face stream).
        """
        raise InputError(
            f"{self.description}: cannot be read in independent pieces; distributed engines read local "
            "files (save the dataset to Parquet first, e.g. with datasets' to_parquet) or use --engine local"
        )

    def piece(self, unit: SourceUnit) -> Source:
        """This source restricted to ``unit`` (same schema); positions count from the piece's first row."""
        raise NotImplementedError

    def iter_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Yield the input as record batches, in a fixed order, optionally projected to ``columns``."""
        raise NotImplementedError

    def iter_batches_with_ids(
        self, columns: Sequence[str] | None = None
    ) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        """Like :meth:`iter_batches`, with each row's 0-based position in the input (int64).

        Sources that drop rows (invalid task rows) override this so positions stay input positions.
        """
        start = 0
        for batch in self.iter_batches(columns):
            yield batch, np.arange(start, start + batch.num_rows, dtype=np.int64)
            start += batch.num_rows

    def count_rows(self) -> int | None:
        """The number of rows if it is cheap to know (Parquet metadata), else ``None``."""
        return None

    def fingerprint(self, hash_files: FileHasher | None = None) -> dict[str, Any]:
        """A JSON-able identity of the input (files with sizes and sha256, or a hub name and split).

        ``hash_files(paths) -> sha256 hex digests`` hashes the input files (default: one by one
        here; the Ray engine hashes them in parallel tasks).
        """
        raise NotImplementedError

    def require_columns(self, columns: Sequence[str | None], option_names: Sequence[str] = ()) -> None:
        """Raise :class:`InputError` naming the first missing column and listing the ones present."""
        present = self.schema.names
        for i, col in enumerate(columns):
            if col is not None and col not in present:
                flag = f" (from {option_names[i]})" if i < len(option_names) else ""
                raise InputError(f"{self.description}: no column {col!r}{flag}; {columns_listing(present)}")


def input_files(source: Source) -> list[str]:
    """The local files ``source`` reads, through task and transform wrappers (none for a hub dataset)."""
    while not hasattr(source, "files"):
        wrapped = getattr(source, "raw", None) or getattr(source, "inner", None)
        if wrapped is None:
            return []
        source = wrapped
    return list(source.files)


def portable_source(description: str) -> str:
    """How the manifest names the input: a hub dataset as given, a local file, directory or glob by
    its last path component (the fingerprint lists the files relative to it), so the manifest does
    not depend on the working directory or on how the path was typed."""
    if description.startswith(HF_PREFIX):
        return description
    return os.path.basename(os.path.abspath(description)) or description  # "." -> the directory's name


FileHasher = Callable[[Sequence[str]], list[str]]


def files_fingerprint(
    format: str, files: Sequence[str], base: str, hash_files: FileHasher | None = None
) -> dict[str, Any]:
    """The fingerprint of local input files: format, and each file's name (relative to ``base``),
    size and sha256."""
    digests = hash_files(files) if hash_files is not None else [sha256_of(f) for f in files]
    return {
        "kind": "files",
        "format": format,
        "files": [
            {"name": os.path.relpath(f, base), "bytes": os.path.getsize(f), "sha256": digest}
            for f, digest in zip(files, digests)
        ],
    }


def check_local_for_ray(spec: str) -> None:
    """Refuse a Hugging Face input (``hf://NAME``) for ``--engine ray``, before it is loaded.

    Raises:
        InputError: ``spec`` names a hub dataset.
    """
    if spec.startswith(HF_PREFIX):
        raise InputError(
            f"{spec}: --engine ray reads local files (pieces of Parquet/CSV/JSONL... files); save the "
            "dataset to Parquet first (datasets' to_parquet) or use --engine local"
        )


def is_glob(spec: str) -> bool:
    """Whether the input ``spec`` is a glob pattern (rather than a file or directory path)."""
    return any(ch in spec for ch in "*?[")


def check_read_options(
    spec: str, format: str | None, options: ReadOptions, hf_split: str | None, hf_config: str | None
) -> None:
    """Refuse read options that would be silently ignored for the input ``spec`` read as ``format``
    (``None``: a Hugging Face dataset): ``--split``/``--hf-config`` for a local input, and
    ``--column-names`` for anything but CSV/TSV.

    Raises:
        InputError: naming the option and what it applies to.
    """
    if not spec.startswith(HF_PREFIX):
        for flag, value in (("--split", hf_split), ("--hf-config", hf_config)):
            if value is not None:
                raise InputError(
                    f"{spec}: {flag} applies to Hugging Face inputs (hf://NAME) only; a local input is "
                    f"read whole: drop {flag}"
                )
    if options.column_names and format not in HEADERLESS_FORMATS:
        kind = f"a {format} input" if format is not None else "a Hugging Face dataset"
        raise InputError(
            f"{spec}: --column-names names the columns of a CSV/TSV file without a header row; {kind} "
            "is not read as CSV/TSV: drop --column-names"
        )


def directory_data_files(directory: Path, suffixes: Collection[str] = tuple(FORMAT_BY_EXTENSION)) -> list[str]:
    """The data files under ``directory`` in the order their rows are read (``row_id`` order): every
    file whose extension is in ``suffixes`` (lower case; default: the formats Arrow reads), hidden
    (``.``) and ``_``-prefixed names (markers) skipped, sorted by path string (``a-b.csv`` before
    ``a/x.csv``)."""
    return sorted(
        str(p)
        for p in directory.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith((".", "_")) for part in p.relative_to(directory).parts)
    )


def is_blank_file(path: str) -> bool:
    """Whether the file ``path`` holds nothing but white space (reads at most a few KiB)."""
    if os.path.getsize(path) > _BLANK_FILE_MAX_BYTES:
        return False
    with open(path, "rb") as handle:
        return not handle.read().strip()


def without_blank_files(files: Sequence[str], format: str | None = None) -> list[str]:
    """``files`` less the blank text files (:func:`is_blank_file`), which hold no rows and from which
    Arrow cannot read a schema (e.g. the empty partitions a Spark job writes). ``format``: the
    input's (``--format``); ``None``: each file's, by its extension."""
    return [
        f for f in files
        if not ((format or FORMAT_BY_EXTENSION.get(Path(f).suffix.lower())) in TEXT_FORMATS and is_blank_file(f))
    ]


def _expand_paths(spec: str) -> tuple[list[str], str]:
    """Turn a file, directory or glob into a sorted list of data files and a base for relative names."""
    if is_glob(spec):
        files = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
        if not files:
            raise InputError(f"{spec}: the pattern matches no files; check the path and quoting")
        return files, os.path.commonpath([os.path.dirname(p) or "." for p in files])
    path = Path(spec)
    if path.is_dir():
        files = directory_data_files(path)
        if not files:
            raise InputError(
                f"{spec}: directory has no data files; expected one of "
                f"{', '.join(sorted(FORMAT_BY_EXTENSION))}"
            )
        return files, str(path)
    if path.is_file():
        return [str(path)], str(path.parent)
    raise InputError(f"{spec}: no such file or directory")


def _infer_format(files: Sequence[str], spec: str) -> str:
    formats = {FORMAT_BY_EXTENSION.get(Path(f).suffix.lower()) for f in files}
    if None in formats:
        bad = next(f for f in files if Path(f).suffix.lower() not in FORMAT_BY_EXTENSION)
        if Path(bad).suffix.lower() in CONLL_SUFFIXES:
            raise InputError(
                f"{bad}: {Path(bad).suffix!r} files are read as CoNLL column files with --task st; other "
                f"inputs are {', '.join(sorted(FORMAT_BY_EXTENSION))} files (or pass --format "
                f"{'|'.join(SUPPORTED_FORMATS)})"
            )
        raise InputError(
            f"{bad}: unsupported file type {Path(bad).suffix or '(no extension)'!r}; fedpart reads "
            f"{', '.join(sorted(FORMAT_BY_EXTENSION))} (or pass --format {'|'.join(SUPPORTED_FORMATS)})"
        )
    if len(formats) > 1:
        raise InputError(f"{spec}: mixes file types {sorted(formats)}; point fedpart at one type")
    return formats.pop()  # type: ignore[return-value]


def _file_format(fmt: str, options: ReadOptions) -> pads.FileFormat:
    import pyarrow.csv as pacsv

    if fmt == "parquet":
        return pads.ParquetFileFormat()
    if fmt == "arrow":
        return pads.IpcFileFormat()
    if fmt in ("csv", "tsv"):
        read = pacsv.ReadOptions(
            column_names=list(options.column_names) if options.column_names else None,
            block_size=8 << 20,
        )
        # TSV has no quoting (IANA text/tab-separated-values; SST-2, GLUE): a field that starts with
        # a double quote is text, not the start of a quoted field spanning lines
        parse = (
            pacsv.ParseOptions(delimiter="\t", quote_char=False)
            if fmt == "tsv"
            else pacsv.ParseOptions(delimiter=",", newlines_in_values=True)
        )
        return pads.CsvFileFormat(read_options=read, parse_options=parse)
    if fmt == "jsonl":
        return pads.JsonFileFormat()
    raise InputError(f"unsupported --format {fmt!r}; use one of {', '.join(SUPPORTED_FORMATS)}")


def without_views(schema: pa.Schema) -> pa.Schema:
    """``schema`` with Arrow's ``string_view`` and ``binary_view`` (as polars writes Arrow IPC files),
    also inside lists and structs, read as ``large_string`` and ``large_binary``: most Arrow kernels
    (sort, take, index_in) have none for them. ``list_view`` is kept (take handles it, and pyarrow's
    cast of it to a list corrupts the offsets); other types are kept as they are."""
    fields = [field.with_type(_without_views(field.type)) for field in schema]
    if all(new.type == old.type for new, old in zip(fields, schema)):
        return schema
    return pa.schema(fields, metadata=schema.metadata)


def _without_views(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_string_view(type_):
        return pa.large_string()
    if pa.types.is_binary_view(type_):
        return pa.large_binary()
    if pa.types.is_large_list(type_):
        return pa.large_list(type_.value_field.with_type(_without_views(type_.value_type)))
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(_without_views(type_.value_type)))
    if pa.types.is_struct(type_):
        return pa.struct([field.with_type(_without_views(field.type)) for field in type_])
    return type_


def _sliced(blocks: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``blocks`` (a streaming reader's, of its own size) as batches of at most ``rows``."""
    for block in blocks:
        for start in range(0, block.num_rows, rows):
            yield block.slice(start, rows)


def _conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the dataset's column types (a later file or block may infer others)."""
    return batch if batch.schema.equals(target) else batch.select(target.names).cast(target)


_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): .*CSV conversion error to (\w+): invalid value '(.*)'")
_JSON_CONVERSION = re.compile(r"Failed to convert JSON to (\w+), couldn't parse:(.*)")


_CSV_FIELD_COUNT = re.compile(r"(?:Row #\d+: )?Expected (\d+) columns, got \d+.*")
_CSV_DUPLICATE_NAME = re.compile(r"contained multiple columns named (.+?)\s*$", re.MULTILINE)


def _explain_format_error(
    where: str, message: str, format: str, files: Sequence[str], column_names: Sequence[str] | None
) -> InputError | None:
    """An error of a valid file that Arrow reads otherwise than its user expects, said in the
    format's terms (``message``: Arrow's); ``None`` if it is none of those:

    - an Arrow IPC *stream* where Arrow reads IPC files;
    - a JSON Lines number field whose first lines are integers and a later one is not;
    - a CSV/TSV row with another number of fields than the header (or ``--column-names``), or two
      columns of the same name.
    """
    if format == "arrow":
        stream = next((f for f in files if _is_arrow_stream(f)), None)
        if stream is not None:
            return InputError(
                f"{stream}: holds an Arrow IPC stream (as datasets' save_to_disk writes), but fedpart reads "
                "Arrow IPC files (Feather v2) with a footer; convert it first, e.g. with "
                f"datasets.load_from_disk(DIR).to_parquet('data.parquet') or pyarrow.parquet.write_table("
                f"pyarrow.ipc.open_stream('{stream}').read_all(), 'data.parquet')"
            )
    conversion = _JSON_CONVERSION.search(message) if format == "jsonl" else None
    if conversion is not None:  # types come from the first lines of the first file; a later value differs
        return InputError(
            f"{where}: a JSON Lines field holds {conversion[1]} values in the first lines, but a later line "
            f"holds {conversion[2].strip()[:60]}; give each field one type in every line and file (e.g. write "
            "every number of a decimal field with a decimal point, 1.0 not 1)"
        )
    if format not in HEADERLESS_FORMATS:
        return None
    fields = _CSV_FIELD_COUNT.search(message)
    if fields is not None:
        detail = fields[0] if len(fields[0]) <= 100 else fields[0][:97] + "..."
        if column_names and len(column_names) == int(fields[1]):
            advice = f"--column-names names {fields[1]} columns: give one name per column of the file"
        else:
            quote = " (a field holding a comma must be quoted)" if format == "csv" else ""
            advice = f"give every row as many fields as the header has columns{quote}"
        return InputError(f"{where}: cannot be read ({detail}); {advice}")
    duplicate = _CSV_DUPLICATE_NAME.search(message)
    if duplicate is not None:
        names_from = "--column-names" if column_names else "the header"
        return InputError(
            f"{where}: {names_from} names two columns {duplicate[1]!r}; give every column its own name"
        )
    return None


def _explain_arrow_error(where: str, error: Exception, names: Sequence[str] = ()) -> InputError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    conversion = _CSV_CONVERSION.search(first_line)
    if conversion is not None:  # the type was inferred from the first block; a later value differs
        index, type_name, value = int(conversion[1]), conversion[2], conversion[3]
        column = repr(names[index]) if index < len(names) else f"#{index}"
        return InputError(
            f"{where}: column {column} looked like {type_name} in the first rows, but a later row holds "
            f"{value!r}; make the column's values one type, or convert the file to Parquet with the "
            "column typed as string"
        )
    return InputError(
        f"{where}: cannot be read ({first_line}); check that the file is a valid, complete "
        "file of its type, or pass --format"
    )


def _starts_json_array(path: str) -> bool:
    """Whether the file ``path`` starts with ``[`` (after a byte-order mark and white space)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


def _is_arrow_stream(path: str) -> bool:
    """Whether ``path`` holds the Arrow IPC *stream* format (no file footer), as ``datasets``'
    ``save_to_disk`` writes its ``.arrow`` files."""
    try:
        with pa.ipc.open_stream(path):
            return True
    except (pa.ArrowException, OSError):
        return False


def _late_json_field(path: str, schema: pa.Schema) -> InputError:
    """The error for a JSON Lines field missing from ``schema`` (the columns Arrow inferred from the
    file's first block), naming the first line that holds one (found by reading the file again)."""
    fix = ("the columns are inferred from the first block (1 MiB) of the first file: put a line holding "
           "every field first, or convert the file to Parquet")
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            late = [key for key in record if key not in schema.names] if isinstance(record, dict) else []
            if late:
                return InputError(f"{path}:{number}: field {late[0]!r} first appears here, not in the lines "
                                  f"before; {fix}")
    return InputError(f"{path}: a line holds a nested field the first lines lack; {fix}")


def _explain_json_lines_error(where: str, error: Exception, files: Sequence[str]) -> InputError:
    """A JSON parse error of a .json/.jsonl input: a file holding one JSON array, or a broken line
    (``--format`` cannot help with either)."""
    detail = (str(error).split(_JSON_PARSE_ERROR, 1)[-1].strip().splitlines() or [""])[0]
    array = next((f for f in files if _starts_json_array(f)), None)
    if array is not None:
        converted = Path(array).with_suffix(".jsonl")
        converted = converted.with_suffix(".lines.jsonl") if converted == Path(array) else converted
        return InputError(
            f"{array}: holds a JSON array, but fedpart reads .json/.jsonl files as JSON Lines (one object "
            f"per line); convert it first, e.g. jq -c '.[]' {array} > {converted}"
        )
    if "changed from" in detail:  # e.g. "Column(/a) changed from number to string in row 1"
        return InputError(
            f"{where}: a JSON Lines field changes type ({detail}); give each field one type in every line "
            "and file (e.g. quote the numbers of a text field)"
        )
    return InputError(
        f"{where}: cannot be read as JSON Lines ({detail}); fedpart reads .json/.jsonl files as one JSON "
        "object per line: fix or remove the broken line (is the file truncated?)"
    )


class LocalSource(Source):
    """Local files read through :mod:`pyarrow.dataset`."""

    def __init__(self, spec: str, options: ReadOptions = ReadOptions()) -> None:
        self.spec = spec
        self.options = options
        self.files, self._base = _expand_paths(spec)
        self.format = options.format or _infer_format(self.files, spec)
        if self.format not in SUPPORTED_FORMATS:
            raise InputError(
                f"unsupported --format {self.format!r}; use one of {', '.join(SUPPORTED_FORMATS)}"
            )
        self.description = spec
        #: the files read: blank text files of a directory or glob hold no rows (e.g. the empty
        #: partitions a Spark job writes) and Arrow cannot read a schema from them, so they are
        #: skipped (all blank: the input is empty); ``files`` lists them all
        self._read_files = without_blank_files(self.files, self.format)
        if not self._read_files:
            what = "the file is" if len(self.files) == 1 else f"all {len(self.files)} files are"
            raise InputError(f"{spec}: the input is empty ({what} blank)")
        try:
            self._dataset = pads.dataset(self._read_files, format=_file_format(self.format, options))
            self.schema = without_views(self._dataset.schema)  # batches are cast to it as they are read
        except (pa.ArrowException, OSError, ValueError) as error:
            raise self._read_error(spec, error, self._read_files, ()) from error
        if not self.schema.names:
            raise InputError(f"{spec}: the input has no columns (is it empty?)")
        #: row groups to read when this source is a piece of a Parquet file (see :meth:`piece`)
        self._row_groups: tuple[int, ...] | None = None
        self._is_piece = False
        self._first_file = self._read_files[0]

    def split(self, target_rows: int) -> list[SourceUnit]:
        units: list[SourceUnit] = []
        for path in self._read_files:
            if self.format != "parquet":
                units.append(SourceUnit(len(units), path))
                continue
            import pyarrow.parquet as pq

            try:
                metadata = pq.read_metadata(path)
            except (pa.ArrowException, OSError) as error:
                raise _explain_arrow_error(path, error, self.schema.names) from error
            run: list[int] = []
            rows = 0
            for group in range(metadata.num_row_groups):
                run.append(group)
                rows += metadata.row_group(group).num_rows
                if rows >= target_rows or group == metadata.num_row_groups - 1:
                    units.append(SourceUnit(len(units), path, tuple(run), rows))
                    run, rows = [], 0
            if metadata.num_row_groups == 0:
                units.append(SourceUnit(len(units), path, (), 0))
        return units

    def piece(self, unit: SourceUnit) -> LocalSource:
        import copy

        piece = copy.copy(self)
        piece.files = piece._read_files = [unit.file]
        piece._row_groups = unit.row_groups
        piece._is_piece = True
        groups = unit.row_groups
        piece.description = unit.file if not groups else f"{unit.file} (row groups {groups[0]}-{groups[-1]})"
        try:
            piece._dataset = pads.dataset(
                [unit.file], schema=self.schema, format=_file_format(self.format, self.options)
            )
        except (pa.ArrowException, OSError, ValueError) as error:
            raise _explain_arrow_error(unit.file, error, self.schema.names) from error
        return piece

    def iter_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        # Fragment by fragment keeps the order of files and lets errors name the file.
        for fragment in self._dataset.get_fragments():
            try:
                if len(self.files) > 1 or self._is_piece:
                    self._check_same_columns(fragment)
                if self.format == "parquet":
                    yield from self._parquet_batches(fragment.path, columns)
                    continue
                if self.format in ("csv", "tsv"):
                    yield from self._csv_batches(fragment.path, columns)
                    continue
                if self.format == "jsonl":
                    yield from self._jsonl_batches(fragment.path, columns)
                    continue
                scanner = fragment.scanner(
                    schema=self.schema,
                    columns=list(columns) if columns is not None else None,
                    batch_size=self.options.batch_rows,
                    use_threads=True,
                    # Arrow reads 16 batches ahead by default; 2 keeps memory flat at little cost
                    batch_readahead=2,
                    fragment_readahead=1,
                )
                for batch in scanner.to_batches():
                    if batch.num_rows:
                        yield batch
            except (pa.ArrowException, OSError, ValueError) as error:
                raise (
                    self._type_difference(fragment) or self._read_error(fragment.path, error, [fragment.path])
                ) from error

    def _read_error(
        self, where: str, error: Exception, files: Sequence[str], names: Sequence[str] | None = None
    ) -> InputError:
        """Why ``where`` cannot be read, in its format's terms (:func:`_explain_json_lines_error`,
        :func:`_explain_format_error`), else :func:`_explain_arrow_error`."""
        if self.format == "jsonl" and _JSON_PARSE_ERROR in str(error):
            return _explain_json_lines_error(where, error, files)
        explained = _explain_format_error(where, str(error), self.format, files, self.options.column_names)
        return explained or _explain_arrow_error(where, error, self.schema.names if names is None else names)

    def _type_difference(self, fragment: pads.Fragment) -> InputError | None:
        """An error naming a column whose type in ``fragment``'s file differs from the first file's
        (a later file's values are cast to the first file's types, which can fail); ``None`` if none."""
        if self.format not in ("parquet", "arrow"):
            return None
        for column in fragment.physical_schema:
            if column.name in self.schema.names and column.type != self.schema.field(column.name).type:
                return InputError(
                    f"{fragment.path}: column {column.name!r} has type {column.type} here but "
                    f"{self.schema.field(column.name).type} in {self._first_file}; all files of one input "
                    "must have the same column types: write the column with one type in every file"
                )
        return None

    def _parquet_batches(self, path: str, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        # pre_buffer=False: with pyarrow's default (True) the reader buffers the column chunks of
        # every row group it will read -- the whole file (2 GB resident for a 2 GB file); the dataset
        # scanner does the same. Without it, memory is one row group.
        import pyarrow.parquet as pq

        names = list(columns) if columns is not None else self.schema.names
        target = pa.schema([self.schema.field(n) for n in names])
        with pq.ParquetFile(path, pre_buffer=False) as parquet_file:
            for batch in parquet_file.iter_batches(
                batch_size=self.options.batch_rows, row_groups=self._row_groups, columns=names,
                use_threads=True,
            ):
                if batch.num_rows:
                    yield _conform(batch, target)

    def _csv_batches(self, path: str, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        # pyarrow.csv's streaming reader reads block by block as asked; the dataset scanner reads
        # ahead of a slow consumer without bound (0.9 GB resident for a 1 GB CSV). Column types are
        # the dataset's (inferred from the first block) so every block and file agrees.
        import pyarrow.csv as pacsv

        csv_format = _file_format(self.format, self.options)
        names = list(columns) if columns is not None else self.schema.names
        convert = pacsv.ConvertOptions(
            column_types={f.name: f.type for f in self.schema}, include_columns=names
        )
        target = pa.schema([self.schema.field(n) for n in names])
        with pacsv.open_csv(path, read_options=csv_format.default_fragment_scan_options.read_options,
                            parse_options=csv_format.parse_options, convert_options=convert) as reader:
            yield from _sliced((_conform(block, target) for block in reader), self.options.batch_rows)

    def _jsonl_batches(self, path: str, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        # pyarrow.json's streaming reader with the dataset's schema (inferred from the first block),
        # refusing fields it lacks: the dataset scanner drops a field that first appears in a later
        # block without a word
        import pyarrow.json as pajson

        parse = pajson.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="error")
        names = list(columns) if columns is not None else self.schema.names
        try:
            blocks = (block.select(names) for block in pajson.open_json(path, parse_options=parse))
            yield from _sliced(blocks, self.options.batch_rows)
        except pa.ArrowInvalid as error:
            if "unexpected field" in str(error):
                raise _late_json_field(path, self.schema) from error
            raise

    def _check_same_columns(self, fragment: pads.Fragment) -> None:
        # The dataset's schema is the first file's: a later file's extra columns would be dropped
        # and its missing ones filled with nulls, silently. Refuse instead.
        names = fragment.physical_schema.names
        if set(names) != set(self.schema.names):
            missing = [c for c in self.schema.names if c not in names]
            extra = [c for c in names if c not in self.schema.names]
            raise InputError(
                f"{fragment.path}: has other columns than {self._first_file} (missing: "
                f"{', '.join(missing) or '-'}; extra: {', '.join(extra) or '-'}); all files of one "
                "input must have the same columns"
            )

    def count_rows(self) -> int | None:
        if self.format != "parquet":
            return None
        if self._row_groups is not None:
            import pyarrow.parquet as pq

            metadata = pq.read_metadata(self.files[0])
            return sum(metadata.row_group(g).num_rows for g in self._row_groups)
        try:
            return int(self._dataset.count_rows())
        except (pa.ArrowException, OSError) as error:
            raise _explain_arrow_error(self.spec, error) from error

    def fingerprint(self, hash_files: FileHasher | None = None) -> dict[str, Any]:
        return files_fingerprint(self.format, self.files, self._base, hash_files)


@dataclass
class HFSource(Source):
    """A Hugging Face dataset, read with ``datasets.load_dataset(..., streaming=True)``.

    ``name`` is anything ``load_dataset`` accepts: a hub id (``ag_news``) or a local folder.
    """

    name: str
    split: str = "train"
    config: str | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    description: str = field(init=False)
    schema: pa.Schema = field(init=False)

    def __post_init__(self) -> None:
        from fedpart.io.hub import check_hub_reachable

        self.description = f"{HF_PREFIX}{self.name} (split {self.split})"
        check_hub_reachable(self.description, self.name)
        stream = self._load()
        features = stream.features
        if features is None:  # some streaming builders only know their features after a row
            first = next(iter(stream.iter(batch_size=1)), None)
            if first is None:
                raise InputError(f"{self.description}: the split is empty")
            self.schema = pa.RecordBatch.from_pydict(first).schema
        else:
            self.schema = features.arrow_schema

    def _load(self) -> Any:
        import datasets

        try:
            return datasets.load_dataset(self.name, self.config, split=self.split, streaming=True)
        except Exception as error:  # datasets raises many types; all mean "cannot load this"
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise InputError(
                f"{self.description}: cannot be loaded ({first_line}); check the name, "
                "--hf-config and --split, and that you are online or the dataset is cached"
            ) from error

    def iter_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        schema = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        stream = self._load()
        if columns is not None:
            stream = stream.select_columns(list(columns))
        for rows in stream.iter(batch_size=self.batch_rows):
            batch = pa.RecordBatch.from_pydict(rows, schema=schema)
            if batch.num_rows:
                yield batch

    def fingerprint(self, hash_files: FileHasher | None = None) -> dict[str, Any]:
        return {"kind": "huggingface", "name": self.name, "config": self.config, "split": self.split}


def open_source(
    spec: str,
    options: ReadOptions = ReadOptions(),
    hf_split: str | None = None,
    hf_config: str | None = None,
) -> Source:
    """Open ``spec`` (a path, directory, glob or ``hf://NAME``) as a :class:`Source`.

    Raises:
        InputError: the path does not exist, has an unsupported type, or cannot be parsed; or a read
            option does not apply to it (see :func:`check_read_options`).
    """
    if spec.startswith(HF_PREFIX):
        check_read_options(spec, None, options, hf_split, hf_config)
        return HFSource(
            spec[len(HF_PREFIX) :],
            split=hf_split or "train",
            config=hf_config,
            batch_rows=options.batch_rows,
        )
    source = LocalSource(spec, options)
    check_read_options(spec, source.format, options, hf_split, hf_config)
    return source
