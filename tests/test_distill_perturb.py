"""Counterfactual teacher perturbation (Gupta et al. 2022) and the distillation loss (Hinton et al. 2015):
each mode's formula on hand-made distributions, the gender permutation on real vocabularies, position
alignment of swapped texts, and the loss against its closed form and gradient."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpart.augment import GenderSwapper
from fedpart.augment.lexicon import load_lexicon, load_name_lexicon
from fedpart.distill import (
    MODES,
    aligned_positions,
    distillation_loss,
    distillation_terms,
    gender_token_permutation,
    identity_permutation,
    lexicon_swap_pairs,
    perturb_teacher,
)
from fedpart.errors import InputError
from fedpart.train.vocabulary import SPECIALS, Vocabulary, tokenize

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _ag_news_texts() -> list[str]:
    with open(FIXTURES / "ag_news" / "sample.csv", encoding="utf-8", newline="") as handle:
        return [f"{title} {description}" for _, title, description in csv.reader(handle)]


def _dialogsum_texts() -> list[str]:
    with open(FIXTURES / "dialogsum" / "sample.jsonl", encoding="utf-8") as handle:
        return [f"{row['dialogue']} {row['summary']}" for row in map(json.loads, handle)]


def _is_involution(perm: torch.Tensor) -> bool:
    return bool(torch.equal(perm[perm], torch.arange(perm.numel())))


# -- the four modes on hand-made distributions ------------------------------------------------------

# vocabulary <pad> he she ran: he <-> she
PERM = torch.tensor([0, 2, 1, 3])
P_ORIG = torch.tensor([0.0, 0.6, 0.1, 0.3])  # after "Mary said that", the teacher favours "he"...
P_CF = torch.tensor([0.0, 0.2, 0.5, 0.3])  # ...after "John said that", it favours "she"
# the counterfactual mapped back: mapped[v] = P_CF[PERM[v]] = [0, 0.5, 0.2, 0.3]
EXPECTED = {
    "none": [0.0, 0.6, 0.1, 0.3],
    "mean": [0.0, 0.55, 0.15, 0.3],
    "max": [0.0, 0.6 / 1.1, 0.2 / 1.1, 0.3 / 1.1],
    "swap": [0.0, 0.5, 0.2, 0.3],
}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_matches_its_formula_on_a_hand_made_distribution(mode):
    out = perturb_teacher(P_ORIG, P_CF, PERM, mode)
    torch.testing.assert_close(out, torch.tensor(EXPECTED[mode]))
    assert out.dtype == torch.float32
    assert float(out.sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("mode", MODES)
def test_modes_are_batched_over_leading_axes(mode):
    # (batch 2, positions 3, vocabulary 4): every position is perturbed on its own
    p_orig = torch.stack([P_ORIG, P_CF, P_ORIG]).expand(2, 3, 4).contiguous()
    p_cf = torch.stack([P_CF, P_ORIG, P_CF]).expand(2, 3, 4).contiguous()
    out = perturb_teacher(p_orig, p_cf, PERM, mode)
    assert out.shape == (2, 3, 4)
    torch.testing.assert_close(out[1, 2], torch.tensor(EXPECTED[mode]))
    torch.testing.assert_close(out[0, 1], perturb_teacher(P_CF, P_ORIG, PERM, mode))
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 3))


def test_classification_distillation_uses_the_identity_permutation():
    p_orig = torch.tensor([[0.7, 0.2, 0.1]])
    p_cf = torch.tensor([[0.5, 0.3, 0.2]])
    perm = identity_permutation(3)
    torch.testing.assert_close(perturb_teacher(p_orig, p_cf, perm, "mean"), torch.tensor([[0.6, 0.25, 0.15]]))
    torch.testing.assert_close(
        perturb_teacher(p_orig, p_cf, perm, "max"), torch.tensor([[0.7 / 1.2, 0.3 / 1.2, 0.2 / 1.2]])
    )
    torch.testing.assert_close(perturb_teacher(p_orig, p_cf, perm, "swap"), p_cf)
    with pytest.raises(InputError, match="at least one"):
        identity_permutation(0)


def test_mask_keeps_the_original_prediction_at_unaligned_positions():
    p_orig = torch.stack([P_ORIG, P_ORIG])
    p_cf = torch.stack([P_CF, P_CF])
    out = perturb_teacher(p_orig, p_cf, PERM, "mean", mask=torch.tensor([True, False]))
    torch.testing.assert_close(out[0], torch.tensor(EXPECTED["mean"]))
    torch.testing.assert_close(out[1], P_ORIG)


def test_perturbation_errors_name_the_problem():
    with pytest.raises(InputError, match="none, mean, max, swap"):
        perturb_teacher(P_ORIG, P_CF, PERM, "average")
    with pytest.raises(InputError, match="counterfactual contexts"):
        perturb_teacher(P_ORIG, None, PERM, "mean")
    torch.testing.assert_close(perturb_teacher(P_ORIG, None, PERM, "none"), P_ORIG)
    with pytest.raises(InputError, match="differ in shape"):
        perturb_teacher(P_ORIG, P_CF[:3], PERM, "mean")
    with pytest.raises(InputError, match="permutation has shape"):
        perturb_teacher(P_ORIG, P_CF, PERM[:3], "mean")
    with pytest.raises(InputError, match="one value per position"):
        perturb_teacher(P_ORIG[None], P_CF[None], PERM, "mean", mask=torch.tensor([True, False]))


@st.composite
def _involution_and_distributions(draw):
    size = draw(st.integers(2, 12))
    order = draw(st.permutations(list(range(size))))
    n_pairs = draw(st.integers(0, size // 2))
    perm = list(range(size))
    for k in range(n_pairs):
        a, b = order[2 * k], order[2 * k + 1]
        perm[a], perm[b] = b, a
    rows = draw(st.integers(1, 3))
    weights = st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size).filter(lambda w: sum(w) > 1e-3)
    p = torch.tensor([draw(weights) for _ in range(rows)])
    q = torch.tensor([draw(weights) for _ in range(rows)])
    return torch.tensor(perm), p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)


@settings(max_examples=60, deadline=None)
@given(_involution_and_distributions())
def test_modes_give_distributions_and_mean_max_are_symmetric_under_role_reversal(case):
    perm, p, q = case
    for mode in MODES:
        out = perturb_teacher(p, q, perm, mode)
        torch.testing.assert_close(out.sum(-1), torch.ones(p.shape[0]))
        assert bool((out >= 0).all())
    for mode in ("mean", "max"):
        # the target built for the counterfactual context is the original's target, mapped through pi
        torch.testing.assert_close(perturb_teacher(q, p, perm, mode), perturb_teacher(p, q, perm, mode)[:, perm])
    # a teacher that already treats both genders alike (p(pi(v)|x') = p(v|x)) is left unchanged
    for mode in MODES:
        torch.testing.assert_close(perturb_teacher(p, p[:, perm], perm, mode), p)


# -- the gender permutation -------------------------------------------------------------------------


def test_lexicon_pairs_are_one_to_one_and_choose_his_for_her():
    pairs = lexicon_swap_pairs()
    words = [w for pair in pairs for w in pair]
    assert len(words) == len(set(words))
    assert ("he", "she") in pairs and ("himself", "herself") in pairs and ("his", "her") in pairs
    assert "him" not in words and "hers" not in words  # their only counterpart, her/his, is taken
    # one-way rewrites: host <- hostess is kept, lord -> lady is dropped (lady pairs with gentleman)
    assert ("gentleman", "lady") in pairs and "lord" not in words
    assert {"host", "hostess"} in [set(p) for p in pairs]
    # every pair is a rewrite the swapper really makes, in at least one direction
    targets = load_lexicon().targets
    assert all(b in targets.get(a, ()) or a in targets.get(b, ()) for a, b in pairs)
    with_names = lexicon_swap_pairs(name_lexicon=load_name_lexicon())
    assert ("michael", "jessica") in with_names and set(pairs) <= set(with_names)


def test_permutation_on_a_real_vocabulary_swaps_he_and_she_and_fixes_specials():
    vocab = Vocabulary.build(tokenize(t) for t in _dialogsum_texts())
    perm = gender_token_permutation(vocab)
    ids = vocab.index
    assert perm.dtype == torch.long and perm.shape == (len(vocab),)
    assert _is_involution(perm)
    assert int(perm[ids["he"]]) == ids["she"] and int(perm[ids["she"]]) == ids["he"]
    assert int(perm[ids["his"]]) == ids["her"]
    assert int(perm[ids["men"]]) == ids["women"]
    assert int(perm[ids["him"]]) == ids["him"]
    assert int(perm[ids["himself"]]) == ids["himself"]  # "herself" is not in this vocabulary
    for special in SPECIALS:
        assert int(perm[ids[special]]) == ids[special]
    assert int(perm[ids["the"]]) == ids["the"]
    # a gendered word whose counterpart is not in the vocabulary stays where it is
    missing = [w for a, b in lexicon_swap_pairs() for w, other in ((a, b), (b, a)) if w in ids and other not in ids]
    assert missing, "the fixture vocabulary should have a gendered word without its counterpart"
    for word in missing:
        assert int(perm[ids[word]]) == ids[word]
    moved = int((perm != torch.arange(len(vocab))).sum())
    assert moved >= 10 and moved % 2 == 0


def test_permutation_handles_casing_variants_prefixes_and_one_sided_pairs():
    tokens = ["<pad>", "<unk>", "he", "She", "He", "she", "HIS", "HER", "king", "Ġhe", "Ġshe", "queen", "Him", "his"]
    perm = gender_token_permutation(tokens, prefixes=("", "Ġ")).tolist()
    pos = {t: i for i, t in enumerate(tokens)}
    assert perm[pos["he"]] == pos["she"] and perm[pos["He"]] == pos["She"]
    assert perm[pos["HIS"]] == pos["HER"]
    assert perm[pos["Ġhe"]] == pos["Ġshe"]
    assert perm[pos["king"]] == pos["queen"]
    assert perm[pos["his"]] == pos["his"]  # "her" (lower case) is not a token
    assert perm[pos["Him"]] == pos["Him"]
    assert perm[:2] == [0, 1]
    # without the prefix, the BPE tokens stay
    assert gender_token_permutation(tokens).tolist()[pos["Ġhe"]] == pos["Ġhe"]


def test_permutation_rejects_a_word_in_two_pairs():
    with pytest.raises(InputError, match="'her' is in two swap pairs"):
        gender_token_permutation(["he", "her", "him", "his"], [("him", "her"), ("his", "her")])
    with pytest.raises(InputError, match="itself"):
        gender_token_permutation(["he"], [("he", "He")])


_LEXICON_WORDS = sorted({w for pair in lexicon_swap_pairs() for w in pair} | {"him", "hers", "lord"})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_LEXICON_WORDS),
            st.sampled_from(_LEXICON_WORDS).map(str.capitalize),
            st.sampled_from(["<pad>", "<unk>", "the", "ran", ".", "history"]),
        ),
        unique=True,
        max_size=40,
    )
)
def test_permutation_is_an_involution_that_only_swaps_counterparts(tokens):
    perm = gender_token_permutation(tokens)
    assert sorted(perm.tolist()) == list(range(len(tokens)))  # one-to-one
    assert _is_involution(perm)
    pairs = {frozenset(p) for p in lexicon_swap_pairs()}
    for i, j in enumerate(perm.tolist()):
        if i != j:
            assert frozenset((tokens[i].lower(), tokens[j].lower())) in pairs
            assert tokens[i][0].isupper() == tokens[j][0].isupper()
        else:
            partner = next((p for p in pairs if tokens[i].lower() in p), None)
            # fixed: not gendered, or its counterpart (in the same case) is absent
            if partner is not None:
                (other,) = partner - {tokens[i].lower()}
                cased = other.capitalize() if tokens[i][0].isupper() else other
                assert cased not in tokens


# -- alignment of a text and its counterfactual -----------------------------------------------------


def test_counterfactual_texts_keep_every_token_position():
    """The claim behind position-wise perturbation: the swapper changes words, not token counts,
    but where ma'am (ma ' am) becomes sir, and aligned_positions then masks the row."""
    tricky = "She'll ask HER mother-in-law; the fiancée's sister (Mrs. Ann) said so."
    texts = _ag_news_texts()[:200] + _dialogsum_texts()[:100] + [tricky]
    swapper = GenderSwapper(spacy_model="none", names=True)
    lexicon_words = load_lexicon().words() | load_name_lexicon().words()
    changed = shifted = 0
    for text, swapped in zip(texts, swapper.swap_texts(texts)):
        original, counterfactual = tokenize(text), tokenize(swapped.text)
        if "ma'am" in text.lower():
            shifted += 1
            assert len(original) - len(counterfactual) == 2 * text.lower().count("ma'am")
            ids = [[hash(t) % 1000 + 1 for t in toks] for toks in (original, counterfactual)]
            width = max(map(len, ids))
            padded = torch.tensor([row + [0] * (width - len(row)) for row in ids])
            assert not aligned_positions(padded[:1], padded[1:]).any()
            continue
        assert len(original) == len(counterfactual), text
        for a, b in zip(original, counterfactual):
            assert a == b or (a in lexicon_words and b in lexicon_words)
        changed += original != counterfactual
    assert changed > 20 and shifted >= 1


def test_aligned_positions_marks_real_positions_of_rows_with_the_same_layout():
    orig = torch.tensor([[2, 5, 7, 3, 0], [2, 5, 3, 0, 0], [2, 3, 0, 0, 0]])
    cf = torch.tensor([[2, 6, 7, 3, 0], [2, 5, 9, 3, 0], [2, 3, 0, 0, 0]])
    mask = aligned_positions(orig, cf)
    assert mask.tolist() == [
        [True, True, True, True, False],
        [False, False, False, False, False],  # lengths differ: nothing to align
        [True, True, False, False, False],
    ]
    with pytest.raises(InputError, match="same length"):
        aligned_positions(orig, cf[:, :4])


# -- the distillation loss --------------------------------------------------------------------------


def test_loss_is_zero_when_the_student_matches_the_softened_teacher():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    temperature = 2.5
    teacher = torch.softmax(logits / temperature, dim=-1)
    labels = torch.randint(0, 7, (2, 5))
    loss = distillation_loss(logits, teacher, labels, temperature, alpha_kd=1.0, alpha_lm=0.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    other = torch.softmax(torch.randn(2, 5, 7), dim=-1)
    assert float(distillation_loss(logits, other, labels, temperature, 1.0, 0.0)) > 1e-3


def test_loss_equals_the_closed_form_on_a_two_token_example():
    logits = torch.tensor([[2.0, 0.0]])
    teacher = torch.tensor([[0.25, 0.75]])
    labels = torch.tensor([0])
    temperature, alpha_kd, alpha_lm = 2.0, 0.7, 0.3
    s0 = math.e / (math.e + 1)  # softmax([2, 0] / 2)
    kl = 0.25 * math.log(0.25 / s0) + 0.75 * math.log(0.75 / (1 - s0))
    ce = -math.log(math.exp(2) / (math.exp(2) + 1))
    loss = distillation_loss(logits, teacher, labels, temperature, alpha_kd, alpha_lm)
    assert float(loss) == pytest.approx(alpha_kd * 4 * kl + alpha_lm * ce, rel=1e-6)
    soft, hard = distillation_terms(logits, teacher, labels, temperature)
    assert float(soft) == pytest.approx(4 * kl, rel=1e-6) and float(hard) == pytest.approx(ce, rel=1e-6)


def test_soft_gradient_is_temperature_times_student_minus_teacher():
    """d/dz T^2 KL(q || softmax(z/T)) = T (softmax(z/T) - q): descent moves the student toward the teacher."""
    torch.manual_seed(1)
    logits = torch.randn(4, 6, requires_grad=True)
    teacher = torch.softmax(torch.randn(4, 6), dim=-1)
    temperature = 3.0
    distillation_loss(logits, teacher, torch.zeros(4, dtype=torch.long), temperature, 1.0, 0.0).backward()
    expected = temperature * (torch.softmax(logits.detach() / temperature, -1) - teacher) / 4
    torch.testing.assert_close(logits.grad, expected)
    before = float(distillation_loss(logits.detach(), teacher, None, temperature, 1.0, 0.0))
    after = float(distillation_loss(logits.detach() - 0.1 * logits.grad, teacher, None, temperature, 1.0, 0.0))
    assert after < before


def test_ignored_positions_count_in_neither_term():
    torch.manual_seed(2)
    logits = torch.randn(2, 4, 5)
    teacher = torch.softmax(torch.randn(2, 4, 5), dim=-1)
    labels = torch.tensor([[1, 2, 0, 0], [3, 4, 1, 0]])  # 0 is <pad>
    loss = distillation_loss(logits, teacher, labels, 2.0, 0.5, 0.5, ignore_index=0)
    keep = labels != 0
    alone = distillation_loss(logits[keep], teacher[keep], labels[keep], 2.0, 0.5, 0.5, ignore_index=0)
    assert float(loss) == pytest.approx(float(alone), rel=1e-6)
    scrambled = logits.clone()
    scrambled[~keep] = 100 * torch.randn(int((~keep).sum()), 5)
    assert float(distillation_loss(scrambled, teacher, labels, 2.0, 0.5, 0.5, ignore_index=0)) == pytest.approx(
        float(loss), rel=1e-6
    )
    nothing = torch.zeros_like(labels)
    assert float(distillation_loss(logits, teacher, nothing, 2.0, 0.5, 0.5, ignore_index=0)) == 0.0


def test_loss_errors_name_the_problem():
    logits, teacher, labels = torch.zeros(2, 3), torch.full((2, 3), 1 / 3), torch.tensor([0, 1])
    with pytest.raises(InputError, match="temperature must be positive"):
        distillation_loss(logits, teacher, labels, 0.0, 1.0, 0.0)
    with pytest.raises(InputError, match="differ in shape"):
        distillation_loss(logits, teacher[:, :2], labels, 1.0, 1.0, 0.0)
    with pytest.raises(InputError, match="one label per position"):
        distillation_loss(logits, teacher, labels[:1], 1.0, 1.0, 0.0)
    with pytest.raises(InputError, match="needs labels"):
        distillation_loss(logits, teacher, None, 1.0, 1.0, 0.5)
    with pytest.raises(InputError, match=">= 0"):
        distillation_loss(logits, teacher, labels, 1.0, -1.0, 0.0)
