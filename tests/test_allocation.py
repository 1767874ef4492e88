"""Integer-allocation helpers: exact totals, closeness to the exact shares, determinism, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpart.errors import PlanError
from fedpart.partitioners.allocation import (
    check_min_client_size,
    deal_by_hypergeometric,
    reserve_by_mix,
    round_columns,
    round_preserving_sum,
)

FAST = settings(max_examples=40, deadline=None)

weights_st = st.lists(st.floats(0, 1e3, allow_subnormal=False), min_size=1, max_size=30).filter(
    lambda w: sum(w) > 0
)


# --- round_preserving_sum -------------------------------------------------------------------------

@FAST
@given(weights_st, st.integers(0, 100_000))
def test_round_preserving_sum_is_exact_and_within_one_of_the_share(weights, total):
    weights = np.array(weights)
    out = round_preserving_sum(weights, total)
    assert out.dtype.kind == "i"
    assert int(out.sum()) == total
    assert (out >= 0).all()
    exact = weights / weights.sum() * total
    assert np.all(np.abs(out - exact) < 1 + 1e-9), (out, exact)
    assert np.all(out[weights == 0] == 0), "a zero weight never receives rows"


@FAST
@given(st.lists(st.integers(0, 500), min_size=1, max_size=20).filter(lambda c: sum(c) > 0), st.data())
def test_round_preserving_sum_of_counts_never_exceeds_a_count(counts, data):
    # this is how the stratified test split is drawn: no key may lose more rows than it has
    counts = np.array(counts)
    target = data.draw(st.integers(0, int(counts.sum())))
    out = round_preserving_sum(counts, target)
    assert int(out.sum()) == target
    assert np.all(out <= counts)


def test_round_preserving_sum_breaks_ties_towards_lower_indices():
    assert round_preserving_sum(np.ones(3), 2).tolist() == [1, 1, 0]
    assert round_preserving_sum(np.ones(4), 6).tolist() == [2, 2, 1, 1]
    # largest remainder wins over index order
    assert round_preserving_sum(np.array([1.0, 1.0, 2.0]), 1).tolist() == [0, 0, 1]


@FAST
@given(weights_st, st.integers(0, 10_000))
def test_round_preserving_sum_is_deterministic_and_scale_free(weights, total):
    weights = np.array(weights)
    first = round_preserving_sum(weights, total)
    assert np.array_equal(first, round_preserving_sum(weights.copy(), total))
    # scaling all weights by a power of two changes no share, so it must change no count
    assert np.array_equal(first, round_preserving_sum(weights * 4.0, total))


def test_round_preserving_sum_total_zero_needs_no_weights():
    assert round_preserving_sum(np.zeros(3), 0).tolist() == [0, 0, 0]


@pytest.mark.parametrize("weights", [[0.0, 0.0], [1.0, np.inf], [np.nan, 1.0]])
def test_round_preserving_sum_rejects_degenerate_weights(weights):
    with pytest.raises(PlanError, match="proportions"):
        round_preserving_sum(np.array(weights), 5)


# --- deal_by_hypergeometric -----------------------------------------------------------------------

@FAST
@given(
    st.lists(st.integers(0, 300), min_size=1, max_size=8),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_deal_has_exact_row_and_column_sums(key_counts, clients, seed, deal_everything):
    key_counts = np.array(key_counts)
    total = int(key_counts.sum())
    dealt = total if deal_everything else total // 2
    sizes = round_preserving_sum(np.random.default_rng(seed).random(clients) + 0.01, dealt)
    quotas = deal_by_hypergeometric(key_counts, sizes, np.random.default_rng(seed))
    assert quotas.shape == (key_counts.size, clients)
    assert (quotas >= 0).all()
    assert quotas.sum(axis=0).tolist() == sizes.tolist()
    if deal_everything:
        assert quotas.sum(axis=1).tolist() == key_counts.tolist()
    else:
        assert np.all(quotas.sum(axis=1) <= key_counts)
    again = deal_by_hypergeometric(key_counts, sizes, np.random.default_rng(seed))
    assert np.array_equal(quotas, again), "same generator state, same deal"


def test_deal_mixes_keys_like_the_pool():
    # a multivariate hypergeometric draw of half the rows has about half of every key
    key_counts = np.array([40_000, 20_000, 10_000])
    quotas = deal_by_hypergeometric(key_counts, np.array([35_000, 35_000]), np.random.default_rng(1))
    shares = quotas[:, 0] / key_counts
    assert np.all(np.abs(shares - 0.5) < 0.02), shares


def test_deal_refuses_more_rows_than_exist():
    with pytest.raises(PlanError, match="more rows than there are"):
        deal_by_hypergeometric(np.array([3, 2]), np.array([4, 2]), np.random.default_rng(0))


# --- round_columns ---------------------------------------------------------------------------------

@FAST
@given(st.lists(weights_st, min_size=1, max_size=6), st.data())
def test_round_columns_equals_round_preserving_sum_column_by_column(columns, data):
    size = min(len(c) for c in columns)
    weights = np.array([c[:size] for c in columns]).T
    weights[:, weights.sum(axis=0) == 0] = 1.0
    totals = np.array([data.draw(st.integers(0, 10_000)) for _ in columns])
    out = round_columns(weights, totals)
    for column, total in enumerate(totals):
        assert out[:, column].tolist() == round_preserving_sum(weights[:, column], int(total)).tolist()


def test_round_columns_gives_zeros_to_an_empty_column_and_refuses_weightless_rows():
    assert round_columns(np.array([[0.0, 1.0], [0.0, 3.0]]), np.array([0, 4])).tolist() == [[0, 1], [0, 3]]
    with pytest.raises(PlanError, match="all zero"):
        round_columns(np.array([[0.0], [0.0]]), np.array([2]))


# --- reserve_by_mix / check_min_client_size ---------------------------------------------------------

@FAST
@given(
    st.lists(st.integers(0, 200), min_size=1, max_size=6).filter(lambda c: sum(c) > 0),
    st.integers(1, 10),
    st.integers(0, 2**32 - 1),
    st.data(),
)
def test_reserve_by_mix_gives_every_client_exactly_the_minimum(key_counts, clients, seed, data):
    key_counts = np.array(key_counts)
    minimum = data.draw(st.integers(0, int(key_counts.sum()) // clients))
    rng = np.random.default_rng(seed)
    # Dirichlet mixes with exact zeros too (underflow at tiny alpha), as the partitioner draws them
    mix = rng.dirichlet(np.full(clients, 0.05), size=key_counts.size) * (rng.random((key_counts.size, clients)) < 0.7)
    quotas = reserve_by_mix(key_counts, mix, minimum)
    assert quotas.shape == (key_counts.size, clients)
    assert quotas.sum(axis=0).tolist() == [minimum] * clients
    assert np.all(quotas.sum(axis=1) <= key_counts) and (quotas >= 0).all()
    assert np.array_equal(quotas, reserve_by_mix(key_counts, mix, minimum))  # deterministic


def test_reserve_by_mix_follows_each_clients_mix():
    """Each client's reserve is its own mix, not an IID sample: client 0 wants key 0 only, client 1
    mostly key 1; key 2 is nobody's."""
    mix = np.array([[1.0, 0.0], [0.0, 3.0], [0.0, 1.0]])
    quotas = reserve_by_mix(np.array([100, 100, 100]), mix, 8)
    assert quotas.tolist() == [[8, 0], [0, 6], [0, 2]]


def test_reserve_by_mix_moves_to_other_keys_where_a_key_runs_out():
    """Three clients all want key 0, which has 5 rows: they share them in proportion to what they
    asked, and take the rest from the keys left (client 2, with no weight there, by their rows left)."""
    mix = np.array([[2.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    quotas = reserve_by_mix(np.array([5, 10, 10]), mix, 4)
    # round 1 asks key 0 for 3, 2 and 4 rows (client 0: 4 x 2/3 rounded up; client 1: 4 x 1/2;
    # client 2: all 4), 9 > 5: the 5 are shared 2, 1, 2 (5 x 3/9, 5 x 2/9, 5 x 4/9, largest
    # remainder), beside 1 of key 1 for client 0 and 2 of key 2 for client 1. Round 2: clients 0
    # and 1 take their last row by their mixes; client 2 has weight only on key 0, used up, so it
    # takes 2 rows by the rows left (9 of key 1, 8 of key 2: one each)
    assert quotas.tolist() == [[2, 1, 2], [2, 0, 1], [0, 3, 1]]


def test_reserve_by_mix_infeasible_says_what_fits():
    with pytest.raises(PlanError) as info:
        reserve_by_mix(np.array([10, 9]), np.ones((2, 4)), 5)
    message = str(info.value)
    assert "--min-client-size 5" in message and "4 clients" in message and "20 rows" in message
    assert "19" in message and "--min-client-size 4 or fewer" in message


def test_reserve_by_mix_exactly_feasible_uses_every_row():
    quotas = reserve_by_mix(np.array([7, 5]), np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]), 3)
    assert quotas.sum(axis=1).tolist() == [7, 5] and quotas.sum(axis=0).tolist() == [3, 3, 3, 3]


def test_check_min_client_size_names_the_smallest_client():
    check_min_client_size(np.array([5, 5]), 5, "hint")  # exactly the minimum is fine
    check_min_client_size(np.array([0, 0]), 0, "hint")  # no minimum asked
    with pytest.raises(PlanError) as info:
        check_min_client_size(np.array([9, 3, 1, 7]), 5, "use fewer clients")
    message = str(info.value)
    assert "2 client(s)" in message and "client 2 gets 1" in message and "use fewer clients" in message
