"""CoNLL column files (one token per line, blank line between sentences) as Arrow record batches.

Covers the two layouts fedpart meets in practice:

- WNUT-17 (Derczynski et al. 2017): ``token<TAB>tag``; some sentence separators in
  ``wnut17train.conll`` are a lone TAB rather than an empty line, so whitespace-only lines count
  as blank.
- CoNLL-2003 (Tjong Kim Sang & De Meulder 2003): ``token POS chunk NER`` separated by single
  spaces, documents introduced by a ``-DOCSTART- -X- -X- O`` line, which is skipped.

A line that holds a TAB is split on TABs (so a token may contain a space); any other line is split
on runs of ASCII spaces. Token is the first column, the tag the last one (or ``tag_column``).
Reading is streaming: at most ``batch_rows`` sentences are held at a time, never the whole file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from fedpart.errors import InputError

DOCSTART = "-DOCSTART-"
#: file suffixes read as CoNLL column files (``--task st``)
CONLL_SUFFIXES = (".conll", ".conllu", ".txt", ".annotated", ".bio", ".iob", ".iobes", ".tags")
_EXPECTED = (
    "expected 'token<TAB>tag' or 'token ... tag' columns (separated by tabs or spaces), "
    "one token per line, with a blank line between sentences"
)


def conll_schema() -> pa.Schema:
    """The schema of every batch :func:`iter_conll_batches` yields: one row per sentence."""
    return pa.schema([pa.field("tokens", pa.list_(pa.string())), pa.field("tags", pa.list_(pa.string()))])


def split_conll_line(line: str) -> list[str]:
    """The non-empty columns of one CoNLL line (no line terminator): TAB-separated if it holds a TAB,
    else separated by runs of ASCII spaces. Surrounding spaces of each TAB field are dropped."""
    if "\t" in line:
        fields = [field.strip(" ") for field in line.split("\t")]
    else:
        fields = line.split(" ")
    return [field for field in fields if field]


def _sentence_batch(tokens: list[str], tags: list[str], offsets: list[int]) -> pa.RecordBatch:
    offsets_array = pa.array(offsets, type=pa.int32())
    return pa.RecordBatch.from_arrays(
        [
            pa.ListArray.from_arrays(offsets_array, pa.array(tokens, type=pa.string())),
            pa.ListArray.from_arrays(offsets_array, pa.array(tags, type=pa.string())),
        ],
        schema=conll_schema(),
    )


#: ``check_tags(tags, where)`` raises :class:`InputError` (prefixed with ``where``) for invalid tags
TagCheck = Callable[[list[str], str], None]


def iter_conll_batches(
    path: str, batch_rows: int = 4096, tag_column: int = -1, check_tags: TagCheck | None = None
) -> Iterator[pa.RecordBatch]:
    """Yield the sentences of the CoNLL file ``path`` as record batches of :func:`conll_schema`.

    Args:
        path: a UTF-8 text file (a leading byte-order mark, CRLF line ends and a missing final
            blank line are accepted).
        batch_rows: sentences per batch (the last batch may be shorter); memory is bounded by one
            batch, not by the file.
        tag_column: index of the tag column among a line's columns (``-1``: the last one). The
            token is always column 0.
        check_tags: called once per distinct tag with ``path:line`` of its first occurrence, so
            that a bad tag's error names where it is.

    Invariants: rows are the file's sentences in order; ``len(tokens) == len(tags)`` in every row;
    no row is empty; ``-DOCSTART-`` lines are not sentences.

    Raises:
        InputError: naming ``path:line`` and the line, if a line has fewer than two columns, no
            column ``tag_column`` or another number of columns than the first token line (a tag or
            a middle column missing would otherwise shift the tag column silently), or the file is
            not UTF-8 (or ``check_tags`` refuses a tag).
    """
    if batch_rows < 1:
        raise InputError(f"batch_rows must be at least 1, got {batch_rows}")
    if tag_column == 0:
        raise InputError(f"tag_column {tag_column!r} is the token column; pass the index of the tag column")
    tokens: list[str] = []
    tags: list[str] = []
    offsets: list[int] = [0]
    checked: set[str] = set()
    columns: tuple[int, int] | None = None  # (columns, line number) of the first token line
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise InputError(f"{path}: cannot be opened ({error.strerror or error}); check the path") from error
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(
                    f"{path}:{number}: is not valid UTF-8 ({error.reason} at byte {error.start} of the "
                    "line); re-encode the file as UTF-8"
                ) from error
            if number == 1:
                line = line.removeprefix("\ufeff")
            line = line.rstrip("\r\n")
            if line.strip():
                fields = split_conll_line(line)
                if fields[0] != DOCSTART:
                    if len(fields) < 2:
                        raise InputError(f"{path}:{number}: line {line!r} has only one column; {_EXPECTED}")
                    if columns is None:
                        columns = (len(fields), number)
                    elif len(fields) != columns[0]:
                        raise InputError(
                            f"{path}:{number}: line {line!r} has {len(fields)} columns but the first token line "
                            f"(line {columns[1]}) has {columns[0]}; every token line needs the same columns "
                            "(a column missing, or a space inside a token of a space-separated file?)"
                        )
                    try:
                        tag = fields[tag_column]
                    except IndexError:
                        raise InputError(
                            f"{path}:{number}: line {line!r} has {len(fields)} columns, so there is no "
                            f"tag column {tag_column}; pass the index of the tag column (-1 for the last)"
                        ) from None
                    if check_tags is not None and tag not in checked:
                        check_tags([tag], f"{path}:{number}")
                        checked.add(tag)
                    tokens.append(fields[0])
                    tags.append(tag)
                    continue
            # A sentence boundary: a blank line (WNUT-17 train also uses a lone TAB) or a
            # -DOCSTART- line, which also closes a sentence left open by a missing blank line.
            if len(tokens) > offsets[-1]:
                offsets.append(len(tokens))
                if len(offsets) > batch_rows:
                    yield _sentence_batch(tokens, tags, offsets)
                    tokens, tags, offsets = [], [], [0]
    if len(tokens) > offsets[-1]:
        offsets.append(len(tokens))
    if len(offsets) > 1:
        yield _sentence_batch(tokens, tags, offsets)
