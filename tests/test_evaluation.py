"""Task metrics on inputs whose values are worked out by hand (and against scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpart.evaluation.classification import accuracy, macro_f1
from fedpart.evaluation.rouge import lcs_length, rouge_l, rouge_n, rouge_scores
from fedpart.evaluation.squad import normalize_answer, squad_scores
from fedpart.evaluation.tagging import entity_f1, entity_spans


def test_accuracy_and_macro_f1_by_hand():
    y_true = [0, 0, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0]
    assert accuracy(y_true, y_pred) == pytest.approx(3 / 5)
    # label 0: tp1 fp1 fn1 -> 0.5; label 1: tp2 fp1 fn0 -> 0.8; label 2: tp0 fp0 fn1 -> 0
    assert macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_macro_f1_matches_sklearn(pairs):
    from sklearn.metrics import f1_score

    y_true, y_pred = zip(*pairs)
    expected = f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert macro_f1(y_true, y_pred) == pytest.approx(expected)


def test_entity_spans_follow_conlleval():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "O"]
    assert entity_spans(tags) == {("PER", 0, 2), ("LOC", 3, 5), ("LOC", 5, 6), ("ORG", 6, 7)}
    assert entity_spans(["S-PER", "B-LOC", "E-LOC"]) == {("PER", 0, 1), ("LOC", 1, 3)}


def test_entity_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    # gold: PER(0,2) LOC(3,4) ORG(0,1) = 3; pred: PER(0,1) LOC ORG MISC = 4; correct: LOC, ORG = 2
    scores = entity_f1(gold, pred)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert entity_f1(gold, gold)["f1"] == 1.0


def test_squad_normalisation_and_scores():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple a day") == "apple day"
    scores = squad_scores(
        ["the Denver Broncos", "Santa Clara, California", "1990"],
        [["Denver Broncos"], ["Levi's Stadium", "Santa Clara"], ["1989"]],
    )
    # row 1: EM 1 F1 1; row 2: EM 0, F1 vs "santa clara": p=2/3 r=1 -> 0.8; row 3: 0, 0
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.8) / 3)


def test_squad_rows_without_gold_answers_are_scored_as_squad_v2_does():
    """evaluate-v2.0.py: an unanswerable question scores 1 for an empty prediction, 0 otherwise."""
    assert squad_scores(["", "The", "Denver"], [[], [], []]) == {"exact_match": 100 * 2 / 3, "f1": 100 * 2 / 3}
    scores = squad_scores(["Denver Broncos", "Denver"], [["Denver Broncos"], []])
    assert scores == {"exact_match": 50.0, "f1": 50.0}
    # answerable rows keep v1.1's rule: an empty prediction scores 0
    assert squad_scores([""], [["Denver"]]) == {"exact_match": 0.0, "f1": 0.0}


def test_rouge_by_hand():
    pred, ref = "the cat sat on the mat", "the cat lay on the mat"
    # unigrams: overlap the x2, cat, on, mat = 5 of 6 -> F1 5/6
    assert rouge_n(pred, ref, 1) == pytest.approx(5 / 6)
    # bigrams: pred {the cat, cat sat, sat on, on the, the mat}; overlap the cat, on the, the mat = 3/5
    assert rouge_n(pred, ref, 2) == pytest.approx(3 / 5)
    assert lcs_length("the cat sat on the mat".split(), "the cat lay on the mat".split()) == 5
    assert rouge_l(pred, ref) == pytest.approx(5 / 6)
    assert rouge_n("A-B c", "a b C", 1) == 1.0  # case and punctuation are ignored
    assert rouge_scores([pred, "x"], [ref, "y"])["rouge1"] == pytest.approx((5 / 6 + 0) / 2)
    assert rouge_l("", "abc") == 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=12), st.lists(st.sampled_from("abcd"), max_size=12))
def test_lcs_is_symmetric_and_bounded(a, b):
    assert lcs_length(a, b) == lcs_length(b, a) <= min(len(a), len(b))
    assert lcs_length(a, a) == len(a)
    assert np.isclose(rouge_l(" ".join(a), " ".join(a)), 1.0 if a else 0.0)


def test_perplexity_is_exp_of_the_nll_and_inf_past_the_float_range():
    import math

    from fedpart.evaluation.language import perplexity

    assert perplexity(0.0) == 1.0 and perplexity(math.log(50.0)) == pytest.approx(50.0)
    assert perplexity(709.0) == math.exp(709.0)
    assert perplexity(710.0) == math.inf  # math.exp raises OverflowError there
