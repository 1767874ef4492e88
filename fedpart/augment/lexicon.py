"""The gender-pair lexicon: a versioned word map read from TSV, merged with user pairs, validated.

Counterfactual data augmentation (CDA) rewrites a text with binary gender roles swapped; the word
pairs it swaps are the heart of the method (Lu et al. 2018, "Gender Bias in Neural Natural Language
Processing"; Hall Maudslay et al. 2019, "It's All in the Name"). fedpart ships its own list,
``fedpart/data/gender_pairs.tsv`` (pronouns, person nouns, kinship, titles, royalty, religion,
occupations, with plurals), and a first-name list ``fedpart/data/name_pairs.tsv`` paired by
popularity rank as in Hall Maudslay et al. 2019.

Pair file format (tab-separated, ``#`` comments, optional header line ``male<TAB>female...``)::

    male<TAB>female[<TAB>category[<TAB>direction]]

``direction`` is ``both`` (default), ``male_to_female``, ``female_to_male``, or ``none`` (a user
file switching a built-in pair off). A ``# version: X`` comment names the list's version.
Name files are ``male<TAB>female`` or ``rank<TAB>male<TAB>female``.

Rules (checked, with file and line in the message):

* entries are single words of letters, with an apostrophe inside if need be (``ma'am``; a curly one
  is stored straight); case does not matter (``Actor`` is ``actor``);
* a word maps to exactly one word, except the words given in ``resolvable`` (``her`` -> his/him,
  ``his`` -> her/hers), whose several targets are told apart by part of speech;
* user pairs override: every source word a user file mentions takes *all* its targets from the user
  file(s), so ``chairman<TAB>chair`` replaces the built-in ``chairman -> chairwoman``; except that a
  user pair giving a resolvable word one of its own targets (``him<TAB>her`` repeats ``her -> him``)
  adds to the built-in targets, so ``her`` still becomes ``his`` or ``him``.

Parsing (:func:`parse_pairs`, :func:`parse_name_pairs`) and merging (:func:`build_lexicon`) are pure;
:func:`load_lexicon` and :func:`load_name_lexicon` read the files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike

from fedpart.errors import InputError

GENDER_PAIRS_FILE = "gender_pairs.tsv"
NAME_PAIRS_FILE = "name_pairs.tsv"
DIRECTIONS = ("both", "male_to_female", "female_to_male", "none")
_FORMAT = "expected male<TAB>female[<TAB>category[<TAB>direction]]"
_NAME_FORMAT = "expected male<TAB>female or rank<TAB>male<TAB>female"
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")  # letters; an apostrophe inside (ma'am)
_VERSION = re.compile(r"#\s*version:\s*(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class Pair:
    """One line of a pair file: ``male`` <-> ``female`` (lower case), where it came from."""

    male: str
    female: str
    category: str = "user"
    direction: str = "both"
    where: str = ""

    def edges(self) -> list[tuple[str, str]]:
        """The (source, target) rewrites this pair asks for, given its direction."""
        out = []
        if self.direction in ("both", "male_to_female"):
            out.append((self.male, self.female))
        if self.direction in ("both", "female_to_male"):
            out.append((self.female, self.male))
        return out


@dataclass(frozen=True)
class Lexicon:
    """A validated word map: lower-case source word -> its target word(s).

    ``targets[w]`` has one word, except for the words of ``resolvable`` given to
    :func:`build_lexicon`, which have exactly the targets their resolver chooses between.
    """

    targets: Mapping[str, tuple[str, ...]]
    categories: Mapping[str, str]
    version: str = "user"
    sources: tuple[str, ...] = ()
    pair_count: int = 0
    origins: Mapping[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.targets)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self.targets

    @property
    def ambiguous(self) -> frozenset[str]:
        """Source words with more than one target (resolved by part of speech)."""
        return frozenset(w for w, t in self.targets.items() if len(t) > 1)

    def words(self) -> frozenset[str]:
        """Every word of the lexicon, as source or as target (lower case)."""
        out = set(self.targets)
        for targets in self.targets.values():
            out.update(targets)
        return frozenset(out)


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.rstrip("\r\n").split("\t")]


def _check_word(value: str, where: str, column: int, name: str) -> str:
    if not _WORD.fullmatch(value):
        what = ("is empty" if not value else
                f"({value!r}) is not a single word of letters (an apostrophe inside, as in ma'am, is allowed)")
        raise InputError(
            f"{where}: column {column} ({name}) {what}; fedpart swaps single words "
            "(write plurals and other forms as their own lines)"
        )
    return value.lower().replace("\u2019", "'")


def _parse_version(line: str) -> str | None:
    match = _VERSION.match(line.strip())
    return match.group(1) if match else None


def _data_rows(
    text: str, source: str, is_header: Callable[[list[str]], bool]
) -> tuple[list[tuple[str, list[str], str]], str | None]:
    """``(where, columns, line)`` of each data line (blank lines, ``#`` comments and a first header
    line skipped) and the version named in a comment, if any."""
    rows: list[tuple[str, list[str], str]] = []
    version = None
    header_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            version = version or _parse_version(line)
            continue
        cols = _fields(line)
        if not header_seen and is_header([c.lower() for c in cols]):
            header_seen = True
            continue
        header_seen = True
        rows.append((f"{source}:{number}", cols, line))
    return rows, version


def parse_pairs(text: str, source: str) -> tuple[list[Pair], str | None]:
    """Parse the text of a gender-pair file named ``source``; returns (pairs, version or None).

    Raises:
        InputError: a line has fewer than 2 or more than 4 columns, a word that is not a single word
            of letters, the same word on both sides, or an unknown direction (message: file:line).
    """
    pairs: list[Pair] = []
    rows, version = _data_rows(text, source, lambda cols: cols[:2] == ["male", "female"])
    for where, cols, line in rows:
        if not 2 <= len(cols) <= 4:
            raise InputError(
                f"{where}: {len(cols)} column(s) ({line.strip()!r}); {_FORMAT} -- separate columns with a TAB"
            )
        male = _check_word(cols[0], where, 1, "male")
        female = _check_word(cols[1], where, 2, "female")
        if male == female:
            raise InputError(f"{where}: {male!r} is paired with itself; a pair needs two different words")
        category = cols[2] if len(cols) > 2 and cols[2] else "user"
        direction = cols[3].lower() if len(cols) > 3 and cols[3] else "both"
        if direction not in DIRECTIONS:
            raise InputError(
                f"{where}: column 4 (direction) is {cols[3]!r}; use one of {', '.join(DIRECTIONS)}"
            )
        pairs.append(Pair(male, female, category, direction, where))
    return pairs, version


def parse_name_pairs(text: str, source: str) -> tuple[list[Pair], str | None]:
    """Parse a first-name pair file (``male<TAB>female`` or ``rank<TAB>male<TAB>female``).

    Every pair swaps both ways and has category ``name``.

    Raises:
        InputError: a line with the wrong number of columns, a rank that is not an integer, or a
            name that is not a single word of letters (message: file:line).
    """
    pairs: list[Pair] = []
    rows, version = _data_rows(text, source, lambda cols: "male" in cols and "female" in cols)
    for where, cols, line in rows:
        if len(cols) == 3:
            if not cols[0].isdigit():
                raise InputError(f"{where}: column 1 (rank) is {cols[0]!r}, not an integer; {_NAME_FORMAT}")
            cols = cols[1:]
            offset = 1
        elif len(cols) == 2:
            offset = 0
        else:
            raise InputError(
                f"{where}: {len(cols)} column(s) ({line.strip()!r}); {_NAME_FORMAT} -- separate columns with a TAB"
            )
        male = _check_word(cols[0], where, 1 + offset, "male name")
        female = _check_word(cols[1], where, 2 + offset, "female name")
        if male == female:
            raise InputError(f"{where}: {male!r} is paired with itself; a pair needs two different names")
        pairs.append(Pair(male, female, "name", "both", where))
    return pairs, version


def _group_edges(pairs: Iterable[Pair]) -> dict[str, dict[str, Pair]]:
    """source -> {target: the first pair that asks for it}."""
    groups: dict[str, dict[str, Pair]] = {}
    for pair in pairs:
        for src, tgt in pair.edges():
            groups.setdefault(src, {}).setdefault(tgt, pair)
    return groups


def build_lexicon(
    builtin: Sequence[Pair],
    user: Sequence[Pair] = (),
    resolvable: Mapping[str, frozenset[str]] | None = None,
    version: str = "user",
    sources: Sequence[str] = (),
) -> Lexicon:
    """Merge built-in and user pairs into a validated :class:`Lexicon`.

    A user pair with direction ``none`` removes the built-in rewrites between its two words. Any
    other user pair makes its source word(s) take all their targets from the user pairs.

    Raises:
        InputError: a word would map to two different words and is not one of ``resolvable`` with
            exactly its resolver's targets; the message names the word, both targets and both lines.
    """
    resolvable = resolvable or {}
    removed = {(p.male, p.female) for p in user if p.direction == "none"}
    removed |= {(f, m) for m, f in removed}
    base = _group_edges(builtin)
    for src, tgt in removed:
        base.get(src, {}).pop(tgt, None)
    overrides = _group_edges(p for p in user if p.direction != "none")
    merged = {src: group for src, group in base.items() if group}
    for src, group in overrides.items():
        # a user pair that repeats one of a resolvable word's targets (him<TAB>her) adds to the
        # built-in targets instead of replacing them: her keeps his as well as him
        if src in resolvable and set(group) <= resolvable[src]:
            group = {**merged.get(src, {}), **group}
        merged[src] = group

    targets: dict[str, tuple[str, ...]] = {}
    categories: dict[str, str] = {}
    origins: dict[tuple[str, str], str] = {}
    for src, group in merged.items():
        names = tuple(sorted(group))
        if len(names) > 1 and frozenset(names) != resolvable.get(src):
            (a, pa_), (b, pb) = list(group.items())[:2]
            allowed = resolvable.get(src)
            hint = (
                f"{src!r} may only map to {' or '.join(sorted(allowed))} (chosen by part of speech)"
                if allowed
                else "a word can map to only one word"
            )
            raise InputError(
                f"{pb.where}: {src!r} would map to both {a!r} ({pa_.where}) and {b!r} ({pb.where}); "
                f"{hint} -- remove or change one of these lines"
            )
        targets[src] = names
        first = next(iter(group.values()))
        categories[src] = first.category
        for tgt, pair in group.items():
            origins[(src, tgt)] = pair.where
    pair_count = len({(p.male, p.female) for p in [*builtin, *user] if p.direction != "none"} - removed)
    return Lexicon(targets, categories, version, tuple(sources), pair_count, origins)


def _read_text(path: str | PathLike[str], what: str) -> str:
    try:
        # utf-8-sig: a byte-order mark (as Windows editors save "UTF-8") is not part of the first word
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except OSError as error:
        raise InputError(f"{path}: cannot read the {what} ({error.strerror or error}); check the path") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: the {what} is not UTF-8 text ({error.reason}); save it as UTF-8") from error


def _builtin_text(name: str) -> str:
    return resources.files("fedpart.data").joinpath(name).read_text(encoding="utf-8")


def load_lexicon(
    pairs: Sequence[str | PathLike[str]] = (),
    resolvable: Mapping[str, frozenset[str]] | None = None,
) -> Lexicon:
    """The built-in gender lexicon, with the user pair files ``pairs`` added on top (in order).

    ``resolvable`` defaults to the words :mod:`fedpart.augment.disambiguation` resolves by part of
    speech (her, his).

    Raises:
        InputError: a file cannot be read or is malformed, or a word maps to two words.
    """
    if resolvable is None:
        from fedpart.augment.disambiguation import resolvable_targets

        resolvable = resolvable_targets()
    builtin, version = parse_pairs(_builtin_text(GENDER_PAIRS_FILE), f"fedpart/data/{GENDER_PAIRS_FILE}")
    user: list[Pair] = []
    for path in pairs:
        parsed, _ = parse_pairs(_read_text(path, "pairs file"), str(path))
        user.extend(parsed)
    # a word given twice in the user files with different targets is an error even across files
    build_lexicon([], user, resolvable)
    sources = (f"builtin:{version or 'unversioned'}", *(str(p) for p in pairs))
    full_version = version or "unversioned"
    if pairs:
        full_version += "+user"
    return build_lexicon(builtin, user, resolvable, full_version, sources)


def load_name_lexicon(name_pairs: str | PathLike[str] | None = None) -> Lexicon:
    """First-name pairs: the built-in list, or the file ``name_pairs`` instead of it.

    Raises:
        InputError: the file cannot be read or is malformed, or a name maps to two names.
    """
    if name_pairs is None:
        pairs, version = parse_name_pairs(_builtin_text(NAME_PAIRS_FILE), f"fedpart/data/{NAME_PAIRS_FILE}")
        source = f"builtin:{version or 'unversioned'}"
    else:
        pairs, version = parse_name_pairs(_read_text(name_pairs, "name pairs file"), str(name_pairs))
        source = str(name_pairs)
    return build_lexicon(pairs, (), {}, version or "user", (source,))
