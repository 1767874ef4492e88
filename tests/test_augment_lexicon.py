"""The gender-pair lexicon and name list: shipped data, file format, merging and its errors."""

from __future__ import annotations

from collections import Counter
from importlib import resources

import pytest

from fedpart.augment import GenderSwapper
from fedpart.augment.disambiguation import resolvable_targets
from fedpart.augment.lexicon import (
    build_lexicon,
    load_lexicon,
    load_name_lexicon,
    parse_name_pairs,
    parse_pairs,
)
from fedpart.errors import InputError


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped lists ---------------------------------------------------------------------------


def test_builtin_lexicon_is_versioned_large_and_covers_every_category():
    text = resources.files("fedpart.data").joinpath("gender_pairs.tsv").read_text(encoding="utf-8")
    pairs, version = parse_pairs(text, "gender_pairs.tsv")
    assert version == "1.4.0"
    assert len(pairs) >= 200
    categories = Counter(p.category for p in pairs)
    for category in ("pronoun", "person", "kinship", "title", "royalty", "occupation"):
        assert categories[category] > 0, category
    lexicon = load_lexicon()
    assert lexicon.pair_count == len(pairs)
    assert lexicon.version == "1.4.0"
    # the required examples, both ways
    for male, female in [("actor", "actress"), ("chairman", "chairwoman"), ("policeman", "policewoman"),
                         ("king", "queen"), ("mr", "ms"), ("himself", "herself"), ("fathers", "mothers")]:
        assert lexicon.targets[male] == (female,)
        assert lexicon.targets[female] == (male,)
    assert lexicon.targets["her"] == ("him", "his")
    assert lexicon.targets["his"] == ("her", "hers")
    assert lexicon.targets["hers"] == ("his",)
    assert lexicon.ambiguous == {"her", "his"}
    # one-way pairs: the neutral word is not rewritten
    assert lexicon.targets["hostess"] == ("host",) and "host" not in lexicon.targets
    assert lexicon.targets["mrs"] == ("mr",) and lexicon.targets["mr"] == ("ms",)
    assert "heir" not in lexicon.targets


def test_builtin_name_list_pairs_at_least_100_names_by_rank():
    names = load_name_lexicon()
    assert len(names) >= 200  # both directions
    assert names.targets["michael"] == ("jessica",)  # rank 1 <-> rank 1
    assert names.targets["jessica"] == ("michael",)
    text = resources.files("fedpart.data").joinpath("name_pairs.tsv").read_text(encoding="utf-8")
    pairs, version = parse_name_pairs(text, "name_pairs.tsv")
    assert version == "1.0.0" and len(pairs) >= 100
    # names never collide with lexicon words (a name is never also a gendered common noun)
    assert not names.words() & load_lexicon().words()


# -- format errors name the file and line ---------------------------------------------------------


@pytest.mark.parametrize(
    "line, message",
    [
        ("lonely", "1 column(s)"),
        ("a\tb\tc\td\te", "5 column(s)"),
        ("best man\tmaid of honour", "column 1 (male) ('best man') is not a single word"),
        ("duke\tduch3ss", "column 2 (female) ('duch3ss') is not a single word"),
        ("sir\t'am", "column 2 (female) (\"'am\") is not a single word"),  # an apostrophe only inside
        ("sir\tma''am", "column 2 (female) (\"ma''am\") is not a single word"),
        ("duke\tduchess\troyalty\tsideways", "column 4 (direction) is 'sideways'"),
        ("twin\ttwin", "paired with itself"),
        ("\tqueen", "column 1 (male) is empty"),
    ],
)
def test_malformed_pairs_file_names_the_line(tmp_path, line, message):
    path = _write(tmp_path, "pairs.tsv", f"# my pairs\nmale\tfemale\nbaron\tbaroness\n{line}\n")
    with pytest.raises(InputError) as error:
        load_lexicon([path])
    assert f"{path}:4:" in str(error.value)
    assert message in str(error.value)


def test_unreadable_pairs_file(tmp_path):
    with pytest.raises(InputError, match="cannot read the pairs file"):
        load_lexicon([tmp_path / "missing.tsv"])
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes("se\xf1or\tse\xf1ora\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_lexicon([bad])


def test_a_word_mapped_to_two_words_is_an_error_that_says_which(tmp_path):
    path = _write(tmp_path, "pairs.tsv", "wizard\twitch\nwarlock\twitch\n")
    with pytest.raises(InputError) as error:
        load_lexicon([path])
    text = str(error.value)
    assert "'witch' would map to both 'wizard'" in text and "and 'warlock'" in text
    assert f"'wizard' ({path}:1)" in text and f"'warlock' ({path}:2)" in text


def test_ambiguity_is_allowed_only_for_her_and_his_with_their_exact_targets():
    resolvable = resolvable_targets()
    pairs, _ = parse_pairs("him\ther\nhis\ther\n", "p.tsv")
    assert build_lexicon(pairs, (), resolvable).targets["her"] == ("him", "his")
    pairs, _ = parse_pairs("him\ther\nthem\ther\n", "p.tsv")
    with pytest.raises(InputError, match="'her' may only map to him or his"):
        build_lexicon(pairs, (), resolvable)


def test_user_pairs_add_override_and_switch_off(tmp_path):
    path = _write(
        tmp_path,
        "pairs.tsv",
        "# version: 7\nchairman\tchair\toccupation\n"  # override a built-in pair
        "squire\tdamsel\n"  # add a new one (direction defaults to both)
        "monk\tnun\trole\tnone\n",  # switch a built-in pair off
    )
    lexicon = load_lexicon([path])
    assert lexicon.targets["chairman"] == ("chair",)
    assert lexicon.targets["chair"] == ("chairman",)
    assert lexicon.targets["chairwoman"] == ("chairman",)  # built-in reverse stays
    assert lexicon.targets["squire"] == ("damsel",) and lexicon.targets["damsel"] == ("squire",)
    assert "monk" not in lexicon.targets and "nun" not in lexicon.targets
    assert lexicon.version == "1.4.0+user"
    assert str(path) in lexicon.sources


def test_a_word_with_an_apostrophe_inside_is_one_word_stored_with_a_straight_apostrophe(tmp_path):
    pairs, _ = parse_pairs("guv\u2019nor\tgov'ness\trole\n", "p.tsv")  # curly and straight
    assert (pairs[0].male, pairs[0].female) == ("guv'nor", "gov'ness")
    assert load_lexicon().targets["ma'am"] == ("sir",)  # built in, one way: sir stays madam's
    assert load_lexicon().targets["sir"] == ("madam",)
    path = _write(tmp_path, "pairs.tsv", "guv\u2019nor\tgov\u2019ness\n")
    assert GenderSwapper(pairs=[path], spacy_model="none").swap("The Guv\u2019nor thanked the guv'nor.") == (
        "The Gov\u2019ness thanked the gov'ness.")  # each keeps its apostrophe


def test_name_pairs_file_formats_and_errors(tmp_path):
    ranked = _write(tmp_path, "names.tsv", "rank\tmale\tfemale\n1\tOtto\tGreta\n")
    assert load_name_lexicon(ranked).targets == {"otto": ("greta",), "greta": ("otto",)}
    plain = _write(tmp_path, "plain.tsv", "Otto\tGreta\nHans\tGreta\n")
    with pytest.raises(InputError, match="'greta' would map to both 'otto' .* and 'hans'"):
        load_name_lexicon(plain)
    bad = _write(tmp_path, "bad.tsv", "one\tOtto\tGreta\n")
    with pytest.raises(InputError, match=r"bad.tsv:1: column 1 \(rank\) is 'one'"):
        load_name_lexicon(bad)
