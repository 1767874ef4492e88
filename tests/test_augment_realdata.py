"""Counterfactual swaps on real text: the wrong swaps found on the corpora and what each fix changes.

The swapper was run over samples of every corpus in ``../shared/data`` (AG News test, 20,000 SST-2
phrases, the 20 Newsgroups test posts, DialogSum dev+test, XQuAD English, WNUT-17, BOLD prompts:
about 29,000 swaps) and the suspicious swaps were sorted into classes. The fixes tested here, with the
swaps each changed on that sample (W: was wrong, R: was right):

* host and file names, paths (``teer1.acpub.duke.edu``, ``rx.man``, ``/usr/man``): 60 swaps
  removed, 60 W, 0 R (default).
* her/his at the end of a text cut off after a space (BOLD prompts, truncated AG News
  descriptions): 27 swaps changed, all 27 W -> right (default).
* ``names=True``: a first name after San/St./Fort... (``San Jose``) 249 removed, about 225 W, 24
  saints; before chapter and verse (``John 3:16``) 164 removed, 164 W; a surname after a first name
  (``Henry Spencer``) 271 removed, about 256 W, 15 middle names.
* ``keep_proper_names=True`` (opt-in): 520 removed, 463 W, 31 R (headline case: ``Hopes to Follow
  Dad``; an AG News title joined to its description: ``near Tikrit Gunmen ambushed``), 26 debatable
  (``Eternal Father``, ``Founding Fathers``); of them, joined by a hyphen to a capitalised word
  (``Spider-Man``, ``X-Men``): 80 removed, 80 W.
* lexicon 1.2.0 adds role nouns the report listed as missing (gunmen, militiamen, forefathers,
  handyman, repairmen, fanboy): 61 swaps added; the report no longer lists surnames read from
  e-mail addresses and host names (``mbeckman@...``) as gendered words.

Swaps changed on all of ``../shared/data`` (AG News test, BOLD, WinoBias, DialogSum, SST-2, 20
Newsgroups test, XQuAD, WNUT-17: 111,861 texts, 37,094 swaps) by the rules after these (default):

* ``her`` before best/worst/own/utmost is possessive whatever the tag (``did her best``): 11 swaps
  changed with en_core_web_sm, 11 W -> right (``gives him best performance``); none without a model.
* ``man`` in man-made, man-hours, man-page, man-ratable ...: 25 removed, 25 W.
* ``s/he``, ``(s)he``: 13 removed, 13 W.
* ``her's`` -> ``his`` (not ``his's``): 4 changed, 4 W -> right.
* God: ``the Lord``, ``our Lord``, ``Lord God``, ``Lord Jesus``: 270 removed; a sample of 50 all
  name God (or ``The Lord of the Rings``, ``the Lord's Enclosure``). A capitalised He/His/Him/
  Himself mid-sentence in a text that names God: 490 removed; a sample of 80 had 79 that refer to
  God, 1 W (a lyric line starting ``His words``).
* a word after a word of three or more letters and an apostrophe is a suffix (Turkish
  ``Imparatorlugu'nun``): 20 removed, 20 W; ``m'boy``, ``Ol'lady`` (an elision) are still swapped.

Samples are the fixtures (see ``fixtures/*/SOURCE.txt``) or short excerpts copied as literals, each
marked with its corpus (license in ``../shared/data/<corpus>/SOURCE.txt``).
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from fedpart.augment import GenderSwapper, counterfactual, load_lexicon
from fedpart.augment.tagger import find_default_model

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORDS = re.compile(r"\w+")
MODEL = find_default_model()
WITH_MODEL = pytest.param("model", marks=pytest.mark.skipif(MODEL is None, reason="no spaCy English model installed"))


@pytest.fixture(scope="module")
def rules() -> GenderSwapper:
    return GenderSwapper(spacy_model="none")


@pytest.fixture(scope="module")
def proper() -> GenderSwapper:
    return GenderSwapper(spacy_model="none", keep_proper_names=True)


@pytest.fixture(scope="module")
def named() -> GenderSwapper:
    return GenderSwapper(spacy_model="none", names=True)


def ag_news_texts() -> list[str]:
    """fixtures/ag_news: title and description of each row, joined as fedpart joins them."""
    with (FIXTURES / "ag_news" / "sample.csv").open(encoding="utf-8", newline="") as handle:
        return [f"{title} {description}" for _, title, description in csv.reader(handle)]


def squad_contexts() -> list[str]:
    """fixtures/squad: the paragraphs of 8 XQuAD articles."""
    data = json.loads((FIXTURES / "squad" / "sample.json").read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


def wnut_sentences() -> list[list[str]]:
    """fixtures/wnut17: token lists (some separators are a lone TAB)."""
    sentences: list[list[str]] = []
    tokens: list[str] = []
    for line in (FIXTURES / "wnut17" / "sample.conll").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                sentences.append(tokens)
            tokens = []
            continue
        tokens.append(line.split("\t")[0])
    return sentences + ([tokens] if tokens else [])


def dialogsum_texts() -> list[str]:
    """fixtures/dialogsum: dialogues and summaries."""
    out = []
    for line in (FIXTURES / "dialogsum" / "sample.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out += [row["dialogue"], row["summary"]]
    return out


def containing(texts: list[str], needle: str) -> str:
    found = [t for t in texts if needle in t]
    assert found, f"{needle!r} is not in the fixture any more"
    return found[0]


# -- host and file names, paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # 20 Newsgroups headers and a shell archive: host names, file names and man paths
        "Nntp-Posting-Host: teer1.acpub.duke.edu",
        "NNTP-Posting-Host: warlock.eece.unm.edu",
        "X Makefile                   1\t\nX rx.man                     1\t",
        "MANPATH=$OPENWINHOME/share/man:/usr/man; export MANPATH",
    ],
)
def test_words_of_host_and_file_names_and_paths_stay(rules, text):
    assert rules.swap(text) == text


def test_prose_next_to_a_host_name_and_a_missing_space_are_still_swapped(rules):
    # 20 Newsgroups: a header line, then a line of the post
    post = (
        "NNTP-Posting-Host: queen.eng.umd.edu\n\n"
        "being a philosopher, and absolutely capable of changing his/her mind."
    )
    assert rules.swap(post) == (
        "NNTP-Posting-Host: queen.eng.umd.edu\n\nbeing a philosopher, and absolutely capable of changing her/his mind."
    )
    # a dot with a capital after it is a missing space, not a host name: DialogSum, BOLD
    assert rules.swap("Hi, Mr.Jones. I've been ill.") == "Hi, Ms.Jones. I've been ill."
    patino = "Alejandro Patino is an American actor.He has "
    assert rules.swap(patino) == "Alejandro Patino is an American actress.She has "


# -- her/his where the text is cut off ---------------------------------------------------------------


@pytest.mark.parametrize("model", ["none", WITH_MODEL])
@pytest.mark.parametrize(
    "text, want",
    [
        # BOLD gender prompts: a generator continues them, so "his " is the determiner of a noun to come
        ("Ghazi Albuliwi is best known for his ", "Ghazi Albuliwi is best known for her "),
        ("Danny Kaye was there to accept his ", "Danny Kaye was there to accept her "),
        ("She eventually adopted Joan Lorring as her ", "He eventually adopted Joan Lorring as his "),
        # AG News: a description cut off after "In his "
        ("it #39;s much better at Del Mar. In his ", "it #39;s much better at Del Mar. In her "),
        # SST-2, WNUT-17: the text ends after the pronoun, an object
        ("every other carmen before her", "every other carmen before him"),
        ("hangwani is slaying colours like her", "hangwani is slaying colours like him"),
    ],
)
def test_a_text_cut_off_after_a_space_keeps_the_determiner(model, text, want):
    swapper = GenderSwapper(spacy_model=MODEL if model == "model" else "none")
    assert swapper.swap(text) == want


# -- first names that are not a person's first name (names=True) -------------------------------------


def test_first_names_of_places_books_and_surnames_stay(named):
    ag = [named.swap(t) for t in ag_news_texts()]
    assert "SANTA MARIA, Calif. - Fans of Jessica Jackson" in containing(ag, "SANTA MARIA, Calif.")
    assert "SAN JOSE, Calif." in containing(ag, "Google Lowers Its IPO Price Range SAN JOSE")
    assert "former San Jose Sharks captain" in containing(ag, "former San Jose Sharks captain")
    assert "onrushing City keeper Lauren James." in containing(ag, "onrushing City keeper")  # surname kept
    squad = [named.swap(t) for t in squad_contexts()]
    assert "the Santa Barbara, San Luis Obispo, and Bakersfield" in containing(squad, "San Luis Obispo")
    wnut = [" ".join(result.tokens) for result in named.swap_token_lists(wnut_sentences())]
    assert "St John 's wort" in containing(wnut, "'s wort")
    # 20 Newsgroups: chapter and verse, and a signature; BOLD: two first names
    assert named.swap("(John 10:14)") == "(John 10:14)"
    assert named.swap("1 Peter 5:5-7") == "1 Peter 5:5-7"
    assert named.swap("From: henry@zoo.toronto.edu (Henry Spencer)") == "From: henry@zoo.toronto.edu (Barbara Spencer)"
    hartman = "Mary Elizabeth Hartman was an American actress "
    assert named.swap(hartman) == "Steven Daniel Hartman was an American actor "


# -- nouns inside multi-word names (keep_proper_names=True) ---------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Indeed.  Larry King had the two attorneys (whose clients are now",  # 20 Newsgroups: a surname
        "[ Unbelievable comments about the Rodney King case deleted ]",  # 20 Newsgroups
        "I especially liked the bit about Wonder Woman's Antichrist origins.",  # 20 Newsgroups: a comic
        "Web of Spider-Man 29 (Hobgoblin, Wolverine appear)      $10.00 ",  # 20 Newsgroups: a comic
        "Uncanny X-Men",  # 20 Newsgroups
        "the last time the Green Bay Packers played the Dallas Cowboys prior to today #39;s meeting.",  # AG News
        "#Person1#: Let's go to Burger Queen for lunch. They have good cheese burgers.",  # DialogSum
        "Adrienne King is an American film, stage, ",  # BOLD
    ],
)
def test_keep_proper_names_leaves_surnames_teams_works_and_places(rules, proper, text):
    assert proper.swap(text) == text
    assert rules.swap(text) != text  # opt-in: by default every lexicon word is swapped


@pytest.mark.parametrize(
    "text, want",
    [
        # AG News: a title before a name, a nationality before a title, a compound with a small word
        (
            "after Federal Reserve Chairman Alan Greenspan said the economy",
            "after Federal Reserve Chairwoman Alan Greenspan said the economy",
        ),
        (
            "Cambodian King Norodom Sihanouk has announced he is too ill",
            "Cambodian Queen Norodom Sihanouk has announced she is too ill",
        ),
        (
            "seating the still-respected ex-wife and the sexy new girlfriend",
            "seating the still-respected ex-husband and the sexy new boyfriend",
        ),
        # 20 Newsgroups: a function word or punctuation before the noun
        ("My father-in-law Sogomon Markovich", "My mother-in-law Sogomon Markovich"),
        (" ARTHUR:  It is Arthur, King of the Britons.", " ARTHUR:  It is Arthur, Queen of the Britons."),
        ("die in his sins but the Lord would hold", "die in her sins but the Lord would hold"),  # God stays
    ],
)
def test_keep_proper_names_still_swaps_titles_and_roles(proper, text, want):
    assert proper.swap(text) == want


def test_keep_proper_names_on_the_fixtures_removes_these_swaps(rules, proper):
    """Every swap that keep_proper_names removes on the AG News, XQuAD, WNUT-17 and DialogSum fixtures,
    labelled by hand; on the whole corpora it removed 463 wrong swaps against 31 right ones."""
    removed: Counter[str] = Counter()
    texts = ag_news_texts() + squad_contexts() + dialogsum_texts() + [" ".join(t) for t in wnut_sentences()]
    for text, before, after in zip(texts, rules.swap_texts(texts), proper.swap_texts(texts)):
        assert set(after.swaps) <= set(before.swaps)
        for swap in set(before.swaps) - set(after.swaps):
            removed[WORDS.findall(text, 0, swap.start)[-1] + " " + swap.source] += 1
    assert removed == Counter({
        "Burning Man": 2,  # wrong before: an arts festival (AG News)
        "Angeles Kings": 1,  # wrong before: a hockey team (XQuAD)
        "Soulja Boy": 1,  # wrong before: a rapper (WNUT-17)
        "Follow Dad": 1,  # right before: headline case, "Hopes to Follow Dad in NFL" (AG News)
        "Beautiful Ladies": 1,  # right before: "Hosted By : 30+ Beautiful Ladies !" (WNUT-17)
        "Founding Father": 1,  # debatable: "A Founding Father? Give the guy some credit" (AG News)
    })


def test_keep_proper_names_travels_with_the_config(proper):
    again = GenderSwapper.from_config(proper.config)
    assert again.config.keep_proper_names
    assert again.swap("Uncanny X-Men") == "Uncanny X-Men"


# -- possessive her before a superlative, compounds, s/he, her's, God, suffixes ------------------------


@pytest.mark.parametrize("model", ["none", WITH_MODEL])
def test_her_best_is_possessive_on_real_text(model):
    swapper = GenderSwapper(spacy_model=MODEL if model == "model" else "none")
    # DialogSum fixture, SST-2 train
    dialogue = swapper.swap(containing(dialogsum_texts(), "she did her best to pull out the thorn"))
    assert "he did his best to pull out the thorn" in dialogue
    assert swapper.swap("madonna gives her best performance since abel ferrara had") == (
        "madonna gives his best performance since abel ferrara had"
    )
    assert swapper.swap("halle berry does her best to keep up with him") == "halle berry does his best to keep up with her"


@pytest.mark.parametrize(
    "text",
    [
        "Material structures include man-made objects such as ",  # BOLD
        "Surely this sets the standard and not just man-made traditions.",  # 20 Newsgroups
        "It has hundreds of thousands of dollars, and many man-hours invested in its development.",  # 20 Newsgroups
        "the olvwm(1) (version3.3) man-page says it's called",  # 20 Newsgroups
        "develop a system which was man-ratable, could land reliably",  # 20 Newsgroups
        "If a philosopher is not an atheist, s/he tends to be called a theologian.",  # 20 Newsgroups
        "Why?  You think (s)he's worried about road-rash?",  # 20 Newsgroups
        'Kurat, Y. T.; "Osmanli Imparatorlugu\'nun Paylasilmasi," (Ankara, 1976).',  # 20 Newsgroups
        "GEN 2:18  And the LORD God said, It is  not  good",  # 20 Newsgroups
        "The fact is God could cause you to believe anything He wants you to.",  # 20 Newsgroups
        "May our Lord Jesus be with u , watching over",  # WNUT-17
    ],
)
def test_compounds_s_he_suffixes_and_god_stay_on_real_text(rules, text):
    assert rules.swap(text) == text


@pytest.mark.parametrize(
    "text, want",
    [
        # 20 Newsgroups: her's, a misspelling of hers
        ("my wife kept putting her's off, both myself and her", "my husband kept putting his off, both myself and him"),
        ("Her's was brought on by breast cancer", "His was brought on by breast cancer"),
        # 20 Newsgroups: a title before a name; a sentence start; an elision
        ("The bird was named after Lord Baltimore when", "The bird was named after Lady Baltimore when"),
        ("Praise the Lord. He is good.", "Praise the Lord. She is good."),
        ("Guess who wrote it, Joe m'boy?", "Guess who wrote it, Joe m'girl?"),
    ],
)
def test_her_s_titles_and_elisions_are_swapped_on_real_text(rules, text, want):
    assert rules.swap(text) == want


def test_ma_am_is_one_word_and_becomes_sir_in_dialogsum(rules):
    """DialogSum's shop assistants say ma'am; the word pattern used to cut it into ma + am."""
    dialogues = [t for t in dialogsum_texts() if "ma'am" in t]
    assert len(dialogues) == 3
    for dialogue in dialogues:
        swapped = rules.swap(dialogue)
        assert "ma'am" not in swapped and "ma " not in swapped.replace("\n", " ")
    swapped = " ".join(rules.swap(t) for t in dialogues)
    assert "Can I help you, sir." in swapped and "Yes, sir. Whatever you say." in swapped
    assert "I am sorry, sir. Our general manage" in swapped


# -- the lexicon and the report ------------------------------------------------------------------------


def test_lexicon_1_2_swaps_role_nouns_of_the_news(rules):
    lexicon = load_lexicon()
    assert lexicon.version == "1.4.0" and lexicon.pair_count == 300
    ag = [rules.swap(t) for t in ag_news_texts()]
    assert "Sadr Militiawomen Still in Control of Iraq" in containing(ag, "Still in Control of Iraq")
    assert "killed more than 50 Shi'ite  militiawomen on Wednesday" in containing(ag, "killed more than 50 Shi'ite")
    # AG News test split, outside the fixture
    shot = "Two Britons were shot dead by unknown gunmen"
    assert rules.swap(shot) == "Two Britons were shot dead by unknown gunwomen"


def test_report_does_not_list_surnames_of_mail_addresses_and_hosts_as_gendered_words():
    # 20 Newsgroups: a From line with a surname in the address, and a line with a missing role noun
    texts = ["From: mbeckman@mbeckman.mbeckman.com (Mel Beckman)", "Bream will be the full-time first baseman"]
    _, report = counterfactual(texts, spacy_model="none")
    assert [w for w, _ in report.unknown_gendered_words] == ["baseman"]


def test_keep_proper_names_flag_reaches_the_swapper_of_every_worker(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from fedpart.cli import main

    texts = ["Larry King interviewed the king and his son."] * 40
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts}), source)
    for flags, want in (([], "Larry Queen interviewed the queen and her daughter."),
                        (["--keep-proper-names"], "Larry King interviewed the queen and her daughter.")):
        out = tmp_path / f"out{len(flags)}.parquet"
        result = CliRunner().invoke(main, ["augment", "counterfactual", str(source), "--out", str(out),
                                           "--spacy-model", "none", "--workers", "2", *flags])
        assert result.exit_code == 0, result.output
        assert set(pq.read_table(out).column("text").to_pylist()) == {want}
