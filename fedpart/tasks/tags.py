"""Entity tag schemes (BIO, IOB1, IOBES, BILOU): validation, detection, normalisation to BIO, and the
dominant entity type that sequence-tagging partitions are skewed by.

Schemes (Ramshaw & Marcus 1995; Tjong Kim Sang & Veenstra 1999; Ratinov & Roth 2009):

- ``BIO`` (IOB2): every entity starts with ``B-``, continues with ``I-``.
- ``IOB1`` (original CoNLL-2003 release): entities start with ``I-``; ``B-`` only starts an entity
  that directly follows one of the same type.
- ``IOBES``: ``B-`` begin, ``I-`` inside, ``E-`` end, ``S-`` single-token entity.
- ``BILOU``: ``B-`` begin, ``I-`` inside, ``L-`` last, ``U-`` unit (single-token) entity.

Because the schemes' prefixes are disjoint apart from ``B``/``I``, one rewrite turns any of them into
BIO: ``S``/``U`` -> ``B``, ``E``/``L`` -> ``I``, and an ``I-X`` that does not continue an open
``X`` entity becomes ``B-X``. That last rule is both the IOB1 conversion and the repair of a stray
``I-`` in BIO. The scheme argument is checked (its prefixes only), so a BIO file with an ``S-`` tag
is reported rather than silently reinterpreted.

All functions are pure. The Arrow helpers are vectorised with numpy over the flattened tags and
only loop in Python over the distinct tag strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpart.errors import InputError

TagScheme = Literal["BIO", "IOB1", "IOBES", "BILOU"]
TAG_SCHEMES: tuple[TagScheme, ...] = ("BIO", "IOB1", "IOBES", "BILOU")
NO_ENTITY = "O"

_TAG_PATTERN = re.compile(r"O|[BIESUL]-\S+")
_PREFIXES_BY_SCHEME: dict[str, frozenset[str]] = {
    "BIO": frozenset("BIO"),
    "IOB1": frozenset("BIO"),
    "IOBES": frozenset("BIOES"),
    "BILOU": frozenset("BILOU"),
}
_BEGIN = frozenset("BSU")  # starts an entity
_INSIDE = frozenset("IEL")  # continues an entity (or starts one if none of its type is open)
_OPEN = frozenset("BI")  # leaves the entity open for a following I-/E-/L- of the same type
_TAG_LIST = pa.list_(pa.string())


class UnknownTagSchemeError(InputError):
    """Tags that are not ``O`` or ``PREFIX-TYPE`` with a BIO/IOB1/IOBES/BILOU prefix, or a mix of schemes."""


def _describe_bad_tags(bad: Sequence[str | None], where: str) -> str:
    shown = ", ".join(repr(tag) for tag in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    place = f"{where}: " if where else ""
    return (
        f"{place}{'tags' if len(bad) > 1 else 'tag'} {shown} {'are' if len(bad) > 1 else 'is'} not O or "
        "PREFIX-TYPE with PREFIX one of B, I, E, S, L, U (schemes BIO, IOB1, IOBES, BILOU); map the tags "
        "to one of these schemes first (integer class ids need their names, e.g. from the dataset's features)"
    )


def check_tags(tags: Iterable[str | None] | pa.Array | pa.ChunkedArray, where: str = "") -> None:
    """Raise :class:`UnknownTagSchemeError` unless every tag is ``O`` or ``[BIESUL]-TYPE``.

    Args:
        tags: a flat iterable (or Arrow string array) of tags, e.g. all tags of a batch.
        where: prefix for the message (a file or column name), optional.

    Each distinct tag is checked once, so this is cheap on large inputs. Missing (null) tags fail.
    """
    if isinstance(tags, (pa.Array, pa.ChunkedArray)):
        distinct = pc.unique(tags).to_pylist()
    else:
        distinct = list(set(tags))
    bad = [tag for tag in distinct if tag is None or not _TAG_PATTERN.fullmatch(tag)]
    bad.sort(key=lambda tag: (tag is None, str(tag)))
    if bad:
        raise UnknownTagSchemeError(_describe_bad_tags(bad, where))


def _split_tag(tag: str | None) -> tuple[str, str]:
    """(prefix, type) of a tag; ``("O", "")`` for ``O``."""
    if tag is None or not _TAG_PATTERN.fullmatch(tag):
        raise UnknownTagSchemeError(_describe_bad_tags([tag], ""))
    if tag == NO_ENTITY:
        return NO_ENTITY, ""
    return tag[0], tag[2:]


def _check_scheme(scheme: str) -> frozenset[str]:
    if scheme not in _PREFIXES_BY_SCHEME:
        raise UnknownTagSchemeError(f"unknown tag scheme {scheme!r}; choose one of {', '.join(TAG_SCHEMES)}")
    return _PREFIXES_BY_SCHEME[scheme]


def _wrong_prefix(tag: str, scheme: str) -> UnknownTagSchemeError:
    return UnknownTagSchemeError(
        f"tag {tag!r} is not valid in the {scheme} scheme (it uses prefixes "
        f"{', '.join(sorted(_PREFIXES_BY_SCHEME[scheme] - {'O'}))}); the data mixes tag schemes -- "
        "fix the tags or convert them to one scheme first"
    )


def detect_tag_scheme(tags: Iterable[Sequence[str | None] | None]) -> TagScheme:
    """The tag scheme of a collection of tag sequences (one per sentence; ``None`` rows are skipped).

    - ``IOBES`` if any tag has prefix ``S-`` or ``E-``; ``BILOU`` if any has ``U-`` or ``L-``;
    - ``IOB1`` if some entity starts with ``I-`` (at a sentence start, after ``O`` or after another
      type) and ``B-`` only appears right after an entity of the same type;
    - otherwise ``BIO`` (also when there are no entities at all).

    Raises:
        UnknownTagSchemeError: a tag is malformed, or ``S-``/``E-`` and ``U-``/``L-`` are mixed.
    """
    prefixes_seen: set[str] = set()
    starts_with_inside = False  # an entity starting with I- (IOB1, or a stray I- in BIO)
    begin_after_other = False  # a B- not directly after the same type: rules out IOB1
    for sequence in tags:
        if sequence is None:
            continue
        previous_type = ""
        for tag in sequence:
            prefix, entity_type = _split_tag(tag)
            prefixes_seen.add(prefix)
            if prefix == "I" and entity_type != previous_type:
                starts_with_inside = True
            elif prefix == "B" and entity_type != previous_type:
                begin_after_other = True
            previous_type = entity_type
    iobes = prefixes_seen & {"S", "E"}
    bilou = prefixes_seen & {"U", "L"}
    if iobes and bilou:
        raise UnknownTagSchemeError(
            f"the tags mix IOBES prefixes ({', '.join(sorted(iobes))}-) with BILOU prefixes "
            f"({', '.join(sorted(bilou))}-); convert them to one scheme first"
        )
    if iobes:
        return "IOBES"
    if bilou:
        return "BILOU"
    if starts_with_inside and not begin_after_other:
        return "IOB1"
    return "BIO"


def to_bio(tags: Sequence[str], scheme: TagScheme) -> list[str]:
    """One tag sequence in ``scheme`` rewritten to BIO (IOB2); same length, same entity types.

    ``S-``/``U-`` become ``B-``, ``E-``/``L-`` become ``I-``, and an ``I-X`` that does not continue
    an open ``X`` entity becomes ``B-X`` (the IOB1 conversion; in BIO, the repair of a stray ``I-``).
    ``S-``, ``E-``, ``U-`` and ``L-`` close their entity, so an ``I-X`` after them starts a new one.
    The result is valid BIO and ``to_bio(to_bio(t, s), "BIO") == to_bio(t, s)``.

    Raises:
        UnknownTagSchemeError: ``scheme`` is unknown, or a tag is malformed or uses a prefix
            ``scheme`` does not have.
    """
    allowed = _check_scheme(scheme)
    return _rewrite_to_bio(tags, allowed, scheme)


def _rewrite_to_bio(tags: Sequence[str], allowed: frozenset[str] | None, scheme: str = "") -> list[str]:
    """The scheme-independent BIO rewrite of :func:`to_bio`; ``allowed=None`` accepts every prefix."""
    out: list[str] = []
    open_type = ""  # type of the entity the next I-/E-/L- may continue; "" when none is open
    for tag in tags:
        prefix, entity_type = _split_tag(tag)
        if allowed is not None and prefix not in allowed:
            raise _wrong_prefix(tag, scheme)
        if prefix == NO_ENTITY:
            out.append(NO_ENTITY)
        elif prefix in _BEGIN or entity_type != open_type:
            out.append(f"B-{entity_type}")
        else:
            out.append(f"I-{entity_type}")
        open_type = entity_type if prefix in _OPEN else ""
    return out


def dominant_entity_type(tags: Sequence[str]) -> str:
    """The sentence's most frequent entity type, counting entities (not tokens); ``"O"`` if none.

    Entities are the ``B-`` starts after :func:`to_bio` normalisation (any scheme is accepted).
    Ties go to the alphabetically first type (Python string order).
    """
    counts: dict[str, int] = {}
    for tag in _rewrite_to_bio(tags, allowed=None):
        if tag.startswith("B-"):
            counts[tag[2:]] = counts.get(tag[2:], 0) + 1
    if not counts:
        return NO_ENTITY
    return min(counts, key=lambda entity_type: (-counts[entity_type], entity_type))


# --- Arrow helpers -----------------------------------------------------------------------------


def _as_tag_list_array(tags: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    if isinstance(tags, pa.ChunkedArray):
        tags = tags.combine_chunks() if tags.num_chunks != 1 else tags.chunk(0)
    if tags.type != _TAG_LIST:
        try:
            tags = tags.cast(_TAG_LIST)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise InputError(
                f"tags have type {tags.type}; expected lists of strings (list<string>)"
            ) from error
    return tags


class _BioCodes:
    """The BIO rewrite of a list<string> column as integer codes over the flattened tags.

    ``codes[i]`` is 0 for ``O``, ``1 + 2k`` for ``B-types[k]`` and ``2 + 2k`` for ``I-types[k]``,
    with ``types`` sorted alphabetically; ``row`` is each flattened tag's row.
    """

    def __init__(self, tags: pa.ListArray, allowed: frozenset[str] | None, scheme: str = "") -> None:
        lengths = pc.fill_null(pc.list_value_length(tags), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = pc.list_flatten(tags)  # skips null rows, honours slicing
        encoded = pc.dictionary_encode(flat)
        distinct = encoded.dictionary.to_pylist()
        if flat.null_count:
            raise UnknownTagSchemeError(_describe_bad_tags([None], ""))
        split = [_split_tag(tag) for tag in distinct]
        if allowed is not None:
            for tag, (prefix, _) in zip(distinct, split):
                if prefix not in allowed:
                    raise _wrong_prefix(tag, scheme)
        self.types: list[str] = sorted({entity_type for prefix, entity_type in split if prefix != NO_ENTITY})
        type_code = {entity_type: k for k, entity_type in enumerate(self.types)}
        # Per distinct tag: its type code (-1 for O), and whether it begins / continues / keeps open.
        d_type = np.array([type_code.get(t, -1) if p != NO_ENTITY else -1 for p, t in split], dtype=np.int64)
        d_begin = np.array([p in _BEGIN for p, _ in split], dtype=bool)
        d_open = np.array([p in _OPEN for p, _ in split], dtype=bool)

        index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        entity_type = d_type[index]
        open_type = np.where(d_open[index], entity_type, -1)
        continues = np.zeros(len(index), dtype=bool)
        continues[1:] = (entity_type[1:] >= 0) & (open_type[:-1] == entity_type[1:])
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        first = offsets[:-1][lengths > 0]
        continues[first] = False  # an entity never continues across sentences
        is_begin = (entity_type >= 0) & (d_begin[index] | ~continues)
        bio_code = np.where(is_begin, 1 + 2 * entity_type, 2 + 2 * entity_type)
        self.codes = np.where(entity_type < 0, 0, bio_code)
        self.is_begin = is_begin
        self.entity_type = entity_type
        self.offsets = offsets
        self.row = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        self.num_rows = len(lengths)


def normalise_tag_column(tags: pa.Array | pa.ChunkedArray, scheme: TagScheme) -> pa.ListArray:
    """A ``list<string>`` tag column rewritten to BIO, row by row as :func:`to_bio` would.

    Same row count and list lengths; null rows stay null.

    Raises:
        UnknownTagSchemeError: as :func:`to_bio`.
    """
    allowed = _check_scheme(scheme)
    tags = _as_tag_list_array(tags)
    bio = _BioCodes(tags, allowed, scheme)
    names = [NO_ENTITY] + [f"{prefix}-{t}" for t in bio.types for prefix in ("B", "I")]
    values = pc.take(pa.array(names, type=pa.string()), pa.array(bio.codes, type=pa.int64()))
    mask = tags.is_null() if tags.null_count else None
    return pa.ListArray.from_arrays(pa.array(bio.offsets, type=pa.int32()), values, mask=mask)


def dominant_entity_types(tags: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """Each row's :func:`dominant_entity_type`: a ``string`` array, one value per row of ``tags``.

    Counts ``B-`` starts after the BIO rewrite (any scheme), ties to the alphabetically first
    type, ``"O"`` for rows without entities (null and empty rows included).
    """
    tags = _as_tag_list_array(tags)
    bio = _BioCodes(tags, allowed=None)
    dominant = np.full(bio.num_rows, len(bio.types), dtype=np.int64)  # index of "O" in names
    if bio.is_begin.any():
        n_types = len(bio.types)
        key = bio.row[bio.is_begin] * n_types + bio.entity_type[bio.is_begin]
        pairs, counts = np.unique(key, return_counts=True)
        rows, types = pairs // n_types, pairs % n_types
        # Per row: highest count first, then the smallest (alphabetically first) type code.
        order = np.lexsort((types, -counts, rows))
        rows, types = rows[order], types[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        dominant[rows[first]] = types[first]
    names = pa.array([*bio.types, NO_ENTITY], type=pa.string())
    return pc.take(names, pa.array(dominant, type=pa.int64()))
