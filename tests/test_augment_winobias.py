"""Counterfactuals of WinoBias: a pro-stereotyped sentence swapped should be its anti-stereotyped twin.

WinoBias (fixtures/winobias, see its SOURCE.txt) writes each sentence twice with the pronouns'
gender reversed, and marks the pronoun in brackets: ``because [his] idea`` / ``because [her] idea``.
That makes it an answer key for the her/his rules on real sentences, including the bracketed
mentions of coreference data (a closing bracket after a pronoun does not end its phrase).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fedpart.augment import GenderSwapper
from fedpart.augment.swapper import ABBREVIATED_TITLES, bracketed, next_word
from fedpart.augment.tagger import find_default_model, tagging_view

WINOBIAS = Path(__file__).resolve().parent.parent / "fixtures" / "winobias"
MODEL = find_default_model()
WITH_MODEL = pytest.param("model", marks=pytest.mark.skipif(MODEL is None, reason="no spaCy model"))
PRONOUNS = {"he", "she", "him", "her", "his"}


def twins() -> list[tuple[str, str]]:
    """(pro, anti) line pairs of the dev files."""
    pairs = []
    for kind in ("type1", "type2"):
        pro = (WINOBIAS / f"pro_stereotyped_{kind}.txt.dev").read_text(encoding="utf-8").splitlines()
        anti = (WINOBIAS / f"anti_stereotyped_{kind}.txt.dev").read_text(encoding="utf-8").splitlines()
        assert len(pro) == len(anti) == 396
        pairs += zip(pro, anti)
    return pairs


def pronoun_agreement(swapper: GenderSwapper) -> tuple[Counter[tuple[str, bool]], Counter[bool]]:
    """For each bracketed pronoun whose twin differs, whether the counterfactual has the twin's word
    (keyed by the pronoun), and for each line whether the whole counterfactual is the twin."""
    by_pronoun: Counter[tuple[str, bool]] = Counter()
    lines: Counter[bool] = Counter()
    for pro, anti in twins():
        swapped = swapper.swap(pro)
        lines[swapped == anti] += 1
        words, want, got = pro.split(), anti.split(), swapped.split()
        if not len(words) == len(want) == len(got):
            continue  # a few twins differ in more than the pronouns
        for word, w, g in zip(words, want, got):
            bare = word.strip(".,")
            if bare.startswith("[") and bare[1:-1].lower() in PRONOUNS and word != w:
                by_pronoun[(bare[1:-1].lower(), g == w)] += 1
    return by_pronoun, lines


@pytest.mark.parametrize("model", ["none", WITH_MODEL])
def test_counterfactuals_of_pro_stereotyped_sentences_are_their_anti_stereotyped_twins(model):
    by_pronoun, lines = pronoun_agreement(GenderSwapper(spacy_model=MODEL if model == "model" else "none"))
    # every bracketed his is a determiner before a noun ("[his] idea"): before the closing bracket
    # was looked through, all 45 became "[hers]"
    assert by_pronoun[("his", True)] == 45 and by_pronoun[("his", False)] == 0
    # he/she/him have one counterpart; the one she that differs is a typo'd twin ("because of [she]")
    for word in ("he", "him"):
        assert by_pronoun[(word, True)] > 150 and by_pronoun[(word, False)] == 0
    assert by_pronoun[("she", True)] > 150 and by_pronoun[("she", False)] <= 1
    # her is his or him: the rules (and spaCy's tags) get most of them; the misses are double objects
    # such as "gave [her] advice" (83.9 % without brackets looked through, 91.9 % now; 96.0 % tagged)
    her_right, her_wrong = by_pronoun[("her", True)], by_pronoun[("her", False)]
    assert her_right + her_wrong == 223
    assert her_right / 223 >= (0.95 if model == "model" else 0.9)
    assert lines[True] / sum(lines.values()) >= (0.96 if model == "model" else 0.95)


@pytest.mark.parametrize("model", ["none", WITH_MODEL])
@pytest.mark.parametrize(("text", "want"), [
    ("because [his] idea cannot be implemented.", "because [her] idea cannot be implemented."),
    ("it was [her] job.", "it was [his] job."),
    ("the car is [his].", "the car is [hers]."),
    ("slapped [her] in the face.", "slapped [him] in the face."),
    ("and believed [her].", "and believed [him]."),
    ("[His] idea won.", "[Her] idea won."),
    ("a gift for (her)", "a gift for (him)"),
    ("and gave her some tips.", "and gave him some tips."),
    ("and wished [her] well.", "and wished [him] well."),
])
def test_bracketed_and_object_her_his(model, text, want):
    assert GenderSwapper(spacy_model=MODEL if model == "model" else "none").swap(text) == want


def test_without_a_tagger_her_before_words_that_follow_possessives_too_stays_possessive():
    swapper = GenderSwapper(spacy_model="none")
    assert swapper.swap("watched her every move") == "watched his every move"
    assert swapper.swap("one of her many friends") == "one of his many friends"


def test_next_word_looks_past_the_closing_bracket_of_a_bracketed_word():
    text = "because [his] idea; [his]."
    assert bracketed(text, 9, 12) and next_word(text, 12, 9) == "idea" and next_word(text, 12) == "]"
    assert bracketed(text, 21, 24) and next_word(text, 24, 21) == "."
    assert not bracketed("his] idea", 0, 3) and not bracketed("(his] idea", 1, 4)
    assert not bracketed("[his idea]", 1, 4)


def test_tagging_view_drops_the_brackets_around_one_word_keeping_offsets():
    text = "because [her]  idea, [the designer] said"
    view, shift = tagging_view(text)
    assert view == "because her idea, [the designer] said"
    assert shift is not None and view[shift(9):shift(12)] == "her" and view[shift(15):shift(19)] == "idea"


# WinoBias' own swap lists, and where fedpart's lexicon differs from them on purpose
DELIBERATE = {
    # informal words whose counterpart is a judgement call, left unswapped
    "chick", "chicks", "dude", "dudes", "guy", "guys",
    # no reliable counterpart in one word: sir -> madam (not ma'am), miss -> mr (WinoBias: sir),
    # Mr. -> Ms. (not Mrs.); ma'am -> sir as in WinoBias
    "miss", "sir", "mr.",
    # his is her or hers by its role; alone it is standalone (hers)
    "his",
    # neutral or non-gendered in modern usage, or the pair carries another sense (mistress, spinster,
    # nun, governess), or the counterpart is coined (busgirl, bellgirl)
    "busboy", "busboys", "bellboy", "bellboys", "tailor", "tailors", "governor", "governors",
    "god", "gods", "host", "hosts", "bachelor", "bachelors", "beau", "beaus", "master", "masters",
    "priest", "priests", "barman", "barmen",
    # misspellings in the lists (mentleman, adultor, heros, barnoesses, chairwomen -> chairman)
    "mentleman", "adultor", "adultors", "heros", "barons", "chairwomen",
}


def winobias_swap_lists() -> list[tuple[str, str]]:
    pairs = []
    for name in ("generalized_swaps.txt", "extra_gendered_words.txt"):
        for line in (WINOBIAS / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                source, target = (part.strip() for part in line.split("\t"))
                pairs.append((source, target))
    return pairs


def test_the_lexicon_swaps_winobias_swap_lists_as_they_do_but_for_listed_choices():
    swapper = GenderSwapper(spacy_model="none")
    pairs = winobias_swap_lists()
    assert len(pairs) == 196

    def swap_word(word: str) -> str:  # an abbreviated title is one before a name: "mr. smith"
        if word.rstrip(".") in ABBREVIATED_TITLES:
            return swapper.swap(f"{word} smith").removesuffix(" smith")
        return swapper.swap(word)

    differ = {source for source, target in pairs if swap_word(source) != target}
    assert differ == DELIBERATE
    # the listed choices still swap where fedpart has a counterpart of its own
    assert swap_word("mr.") == "ms." and swapper.swap("barman") == "barmaid"
    assert swapper.swap("priests") == "priestesses" and swapper.swap("his") == "hers"
