"""Which word an ambiguous pronoun becomes: ``her`` -> his/him, ``his`` -> her/hers.

English uses one female form where the male side has two (possessive determiner *his* and object
*him* are both *her*), and one male form where the female side has two (*his* is the determiner *her*
and the standalone *hers*). Counterfactual augmentation must pick the right one (Lu et al. 2018;
Zhao et al. 2018 swap by part of speech for the same reason).

The rules, given the Penn Treebank tag of the word from a real English tagger (spaCy's
``token.tag_``, :mod:`fedpart.augment.tagger`) and the next word or punctuation mark after it
(opening brackets, quotes, ``#`` and ``$`` before a word are looked through: in ``her (adopted)
son`` and ``her #1 fan`` the next word is ``adopted``/``1``; see :func:`fedpart.augment.swapper.next_word`;
the swapper does not ask the tagger there, as spaCy tags *her* before a bracket or quote ``PRP``;
a word written alone in brackets, as in WinoBias' ``because [her] idea``, is followed by the word
after its closing bracket, and tagged without the brackets):

``her``
    * no next word, or next is closing punctuation (``. , ; : ! ? ) ] }`` and closing quotes)
      -> ``him`` (a determiner needs a noun after it);
    * next word ``own``, ``best``, ``worst``, ``utmost`` or ``damnedest`` -> ``his`` whatever the
      tag (``did her best``, ``at her worst``, ``her own``: spaCy tags *her* ``PRP`` before a
      superlative; the object reading, ``I like her best``, is the rarer one);
    * tag ``PRP$`` -> ``his``; tag ``PRP`` -> ``him``;
    * other punctuation next (``--``) without a tag -> ``him``;
    * no tag (no tagger, or an unaligned token): ``him`` when the next word is a function word that
      cannot follow a possessive (to, that, and, the, a, in, some, well, ...), else ``his``.

``his``
    * no next word, or next is closing punctuation -> ``hers`` ("the car is his.");
    * tag ``PRP`` -> ``hers`` (spaCy tags standalone *his* PRP: "it is his to keep");
    * next word is ``is/was/are/were`` -> ``hers`` ("his was the best");
    * other punctuation next without a ``PRP$`` tag -> ``hers``;
    * otherwise -> ``her`` (determiner).

A text that stops after the word with only spaces or tabs after it (a prompt to be continued, as
BOLD's ``known for his ``, or a description cut off, as in AG News) has not ended its phrase: its
next word is :data:`CUT_OFF` and the tag decides (without a tag: the possessive ``his``, the
determiner ``her``). A text that simply ends after the word has no next word.

``his/her``, ``her/his``, ``his & her``: coordinated with each other, both are possessive
determiners (the object and standalone forms would be written ``him/her``, ``his/hers``):
:func:`coordinated_target`.

These functions are pure; the tagger only supplies ``tag``. Without a tagger the same rules run with
``tag=None`` (the documented heuristic fallback).
"""

from __future__ import annotations

ROLES: dict[str, dict[str, str]] = {
    "her": {"possessive": "his", "object": "him"},
    "his": {"determiner": "her", "standalone": "hers"},
}

# words after which "her" is the object pronoun: prepositions, particles, conjunctions, determiners,
# pronouns and adverbs that cannot follow a possessive determiner ("gave her some", "wished her well";
# not every/many/all/no/more, as in "her every move", "her many friends", "gave it her all")
_OBJECT_NEXT = frozenset(
    """to that and or but nor as at by for from in into of off on onto out over up down about back away
    with without through after before again too so if when while because than like since until alone
    here there now then a an the this these those what how why where who which whom whose he she it
    they we i you me him them us is was are were be been
    not never also just even still yet
    some any nothing something anything everything anywhere everywhere somewhere well instead often enough""".split()
)
_STANDALONE_NEXT = frozenset({"is", "was", "are", "were"})
# words after which "her" is the possessive determiner even where the tagger says PRP: en_core_web_sm
# tags "did her best" and "gives her best performance" PRP (on the corpora of ../shared/data: 11 of
# the 15 "her best"), while "her best/worst/own" is almost always possessive
_POSSESSIVE_NEXT = frozenset({"own", "best", "worst", "utmost", "damnedest"})


def resolvable_targets() -> dict[str, frozenset[str]]:
    """For each ambiguous word, the set of words it may become (what the lexicon must list)."""
    return {word: frozenset(roles.values()) for word, roles in ROLES.items()}


#: the "next word" of a text that stops after the word with only spaces or tabs left: cut off mid-phrase
CUT_OFF = ""

_CLOSING = frozenset(".,;:!?)]}\u201d\u2019\u00bb\u2026\"'")


def _ends_phrase(next_word: str | None) -> bool:
    return next_word is None or next_word in _CLOSING


def _is_punctuation(next_word: str | None) -> bool:
    return bool(next_word) and not next_word[:1].isalnum()


def needs_tag(word: str, next_word: str | None) -> bool:
    """Whether the tag can change the role of ``word`` before ``next_word`` (else skip the tagger)."""
    following = None if next_word is None else next_word.lower()
    if _ends_phrase(following):
        return False
    if word == "her" and following in _POSSESSIVE_NEXT:
        return False
    return not (word == "his" and following in _STANDALONE_NEXT)


def coordinated_target(word: str, partner: str) -> str | None:
    """The target of ``word`` written as ``word/partner`` or ``partner & word`` (lower case), or None
    when the pair is not his with her (then the usual rules apply)."""
    if {word, partner} == {"his", "her"}:
        return "his" if word == "her" else "her"
    return None


def role_of(word: str, tag: str | None, next_word: str | None) -> str:
    """The grammatical role of ``word`` (lower case ``her`` or ``his``) in context.

    Args:
        word: ``"her"`` or ``"his"``.
        tag: the Penn Treebank tag of the occurrence (``PRP``, ``PRP$``, ...), or None when there is
            no tagger or its token does not line up with the word.
        next_word: the next word or punctuation mark after the occurrence, None at the end of text,
            :data:`CUT_OFF` where only spaces or tabs follow (the tag decides).

    Returns:
        A key of ``ROLES[word]``: possessive/object for her, determiner/standalone for his.
    """
    following = None if next_word is None else next_word.lower()
    if word == "her":
        if _ends_phrase(following):
            return "object"
        if tag == "PRP$" or following in _POSSESSIVE_NEXT:
            return "possessive"
        if tag == "PRP" or _is_punctuation(following):
            return "object"
        return "object" if following in _OBJECT_NEXT else "possessive"
    if word == "his":
        if _ends_phrase(following) or tag == "PRP" or following in _STANDALONE_NEXT:
            return "standalone"
        if _is_punctuation(following) and tag != "PRP$":
            return "standalone"
        return "determiner"
    raise ValueError(f"no part-of-speech rule for {word!r}; only {sorted(ROLES)} are ambiguous")


def resolve(word: str, tag: str | None, next_word: str | None) -> str:
    """The lower-case word that ``word`` (her/his) becomes; see the module rules."""
    return ROLES[word][role_of(word, tag, next_word)]
