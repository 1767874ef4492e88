"""The keyed Feistel permutation and the RowAssigner: bijections, exact quotas, batch independence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from fedpart.assign import TEST_CLIENT, RowAssigner, _BoundsLookup, _half_bits, permute
from fedpart.errors import InputError, PlanError
from fedpart.partitioners import make_partitioner
from fedpart.plan import PERMUTATION_ROUNDS, draw_plan

FAST = settings(max_examples=40, deadline=None)

SIZES = sorted(
    {1, 2, 3, 5, 6, 7, 10, 100, 1000}
    | {2**k + d for k in range(1, 13) for d in (-1, 0, 1)}
    | {2**16 - 1, 2**16 + 1}
)


def round_keys(rows: int, seed: int, rounds: int = PERMUTATION_ROUNDS) -> np.ndarray:
    keys = np.random.default_rng(seed).integers(0, 2**64, size=(1, rounds), dtype=np.uint64, endpoint=False)
    return np.repeat(keys, rows, axis=0)


# --- permute --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_permute_is_a_bijection_of_range_n(n):
    for seed in range(3):
        out = permute(np.arange(n), np.full(n, n), round_keys(n, seed))
        assert out.dtype == np.uint64
        assert np.array_equal(np.sort(out), np.arange(n, dtype=np.uint64))


@FAST
@given(st.integers(1, 5000), st.integers(0, 2**63), st.integers(1, 6))
def test_permute_is_a_bijection_for_random_n_keys_and_round_counts(n, seed, rounds):
    out = permute(np.arange(n), np.full(n, n), round_keys(n, seed % 2**32, rounds))
    assert np.array_equal(np.sort(out), np.arange(n, dtype=np.uint64))


def test_permute_depends_on_the_round_keys_and_is_not_the_identity():
    n = 1000
    first = permute(np.arange(n), np.full(n, n), round_keys(n, 1))
    second = permute(np.arange(n), np.full(n, n), round_keys(n, 2))
    assert not np.array_equal(first, np.arange(n))
    assert not np.array_equal(first, second)
    # a pseudo-random permutation has few fixed points (about 1 expected)
    assert int((first == np.arange(n)).sum()) < 10


def test_permute_is_vectorised_over_rows_of_different_keys():
    sizes, parts = [1, 7, 64, 300], []
    for seed, n in enumerate(sizes):
        parts.append((np.arange(n), np.full(n, n), round_keys(n, seed)))
    index, n, keys = (np.concatenate(p) for p in zip(*parts))
    order = np.random.default_rng(0).permutation(index.size)  # interleave the keys' rows
    mixed = np.empty(index.size, dtype=np.uint64)
    mixed[order] = permute(index[order], n[order], keys[order])
    start = 0
    for (idx, nn, kk) in parts:
        assert np.array_equal(mixed[start : start + idx.size], permute(idx, nn, kk))
        start += idx.size


def test_permute_stays_injective_in_range_for_huge_domains():
    # ~2**40 values: no overflow of the 64-bit arithmetic, outputs in range and distinct
    n = 10**12 + 39
    index = np.random.default_rng(0).choice(n, size=20_000, replace=False).astype(np.uint64)
    out = permute(index, np.full(index.size, n, dtype=np.uint64), round_keys(index.size, 5))
    assert int(out.max()) < n
    assert np.unique(out).size == index.size


@pytest.mark.parametrize("n", SIZES + [10**9, 2**40 + 1])
def test_half_bits_is_the_smallest_domain_that_fits(n):
    half = int(_half_bits(np.array([n], dtype=np.uint64))[0])
    assert half >= 1 and 2 ** (2 * half) >= n
    # cycle walking is cheap only if the Feistel domain is < 4n (one fewer bit per half must not fit)
    assert half == 1 or 2 ** (2 * (half - 1)) < n


# --- the client lookup ----------------------------------------------------------------------------

@FAST
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=300),
    st.sampled_from([1, 10**6, 10**12]),
    st.sampled_from([4, 64, 1 << 18]),
    st.integers(0, 2**32 - 1),
)
def test_bounds_lookup_is_searchsorted(steps, scale, max_buckets, seed):
    # cumulative quotas: non-decreasing, with runs of equal bounds (clients with no rows of a key)
    bounds = np.cumsum(np.array(steps, dtype=np.int64) * scale)
    if bounds[-1] == 0:
        reject()
    lookup = _BoundsLookup(bounds, max_buckets)
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.integers(0, bounds[-1], size=500), bounds[bounds < bounds[-1]], [0, bounds[-1] - 1]])
    assert np.array_equal(lookup(x), np.searchsorted(bounds, x, side="right"))


# --- RowAssigner ----------------------------------------------------------------------------------

SCHEMES = [
    ("iid", {}),
    ("dirichlet", {"alpha": 0.3}),
    ("quantity", {"alpha": 0.5}),
    ("label-count", {"labels_per_client": 2}),
    ("natural", {}),
]


def assign_in_batches(plan, codes: np.ndarray, cuts: list[int]) -> np.ndarray:
    assigner, out, start = RowAssigner(plan), [], 0
    for cut in cuts:
        out.append(assigner.assign(codes[start : start + cut]))
        start += cut
    out.append(assigner.assign(codes[start:]))
    return np.concatenate(out)


@FAST
@given(
    st.lists(st.integers(0, 3), min_size=4, max_size=300),
    st.lists(st.integers(0, 60), max_size=12),
    st.sampled_from(SCHEMES),
    st.integers(1, 4),
    st.sampled_from([0.0, 0.3]),
    st.integers(0, 2**32 - 1),
)
def test_row_assigner_gives_exactly_the_planned_quotas_whatever_the_batches(
    codes, cuts, scheme, clients, test_frac, seed
):
    codes = np.array(codes)
    key_counts = np.bincount(codes, minlength=4)
    name, params = scheme
    if name == "natural":
        clients = min(clients, int((key_counts > 0).sum()))
    partitioner = make_partitioner(name, num_clients=clients, **params)
    try:
        plan = draw_plan(partitioner, key_counts, seed, test_frac)
    except PlanError:
        reject()  # infeasible example, e.g. a test split that takes every natural id
    whole = RowAssigner(plan).assign(codes)
    batched = assign_in_batches(plan, codes, cuts)
    assert np.array_equal(whole, batched), "batch boundaries must not change any row's client"

    # held-out rows per key are exactly the plan's holdout
    test_rows = np.bincount(codes[whole == TEST_CLIENT], minlength=4)
    assert test_rows.tolist() == plan.holdout.tolist()
    train = whole != TEST_CLIENT
    assert np.all((whole[train] >= 0) & (whole[train] < plan.num_clients))
    got = np.zeros((4, plan.num_clients), dtype=np.int64)
    np.add.at(got, (codes[train], whole[train]), 1)
    expected = plan.allocation.client_key_counts(plan.key_counts - plan.holdout).T
    assert np.array_equal(got, expected)


@FAST
@given(st.lists(st.integers(0, 2), min_size=3, max_size=200), st.integers(0, 2**32 - 1))
def test_a_rows_client_depends_only_on_its_key_and_rank_within_the_key(codes, seed):
    # interleaving the keys' rows differently must not move the i-th row of any key
    codes = np.array(codes)
    plan = draw_plan(make_partitioner("dirichlet", num_clients=3, alpha=1.0), np.bincount(codes, minlength=3), seed)
    shuffled = np.random.default_rng(seed).permutation(codes)
    first = RowAssigner(plan).assign(codes)
    second = RowAssigner(plan).assign(shuffled)
    for key in range(3):
        assert np.array_equal(first[codes == key], second[shuffled == key])


def test_natural_keys_go_whole_to_their_client():
    codes = np.array([0, 1, 2, 0, 1, 2, 2, 3, 3, 3])
    plan = draw_plan(make_partitioner("natural", num_clients=2), np.bincount(codes), seed=4)
    clients = RowAssigner(plan).assign(codes)
    for key in range(4):
        assert set(clients[codes == key].tolist()) == {int(plan.allocation.key_client[key])}


def test_row_assigner_refuses_more_rows_than_counted():
    plan = draw_plan(make_partitioner("iid", num_clients=2), np.array([3, 3]), seed=0)
    assigner = RowAssigner(plan)
    assigner.assign(np.array([0, 0, 0, 1]))
    with pytest.raises(InputError, match="the input changed between the two passes"):
        assigner.assign(np.array([0]))
