"""Every scheme's allocation: exact cover, the statistics the scheme promises, minimum sizes, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpart.errors import InputError, PlanError
from fedpart.metrics import client_metrics
from fedpart.partitioners import PARTITIONERS, make_partitioner
from fedpart.plan import draw_plan

FAST = settings(max_examples=40, deadline=None)

SCHEMES = {
    "iid": {},
    "dirichlet": {"alpha": 0.5},
    "label-count": {"labels_per_client": 2},
    "quantity": {"alpha": 0.5},
    "natural": {},
}


def allocate(scheme: str, counts, seed: int = 0, **params):
    counts = np.asarray(counts, dtype=np.int64)
    allocation = make_partitioner(scheme, **params).allocate(counts, np.random.default_rng(seed))
    return allocation, allocation.client_key_counts(counts)


# --- exact cover ----------------------------------------------------------------------------------

@FAST
@given(
    st.sampled_from(sorted(SCHEMES)),
    st.lists(st.integers(0, 400), min_size=2, max_size=8).filter(lambda c: sum(1 for x in c if x) >= 2),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_every_scheme_covers_the_counts_exactly(scheme, counts, clients, seed):
    counts = np.array(counts)
    present = int((counts > 0).sum())
    if scheme == "natural":
        clients = min(clients, present)
    if scheme == "label-count":
        clients = max(clients, -(-counts.size // 2))  # clients x 2 labels must cover every label
    clients = min(clients, int(counts.sum()))
    allocation, per_client = allocate(scheme, counts, seed, num_clients=clients, **SCHEMES[scheme])
    assert allocation.num_clients == clients
    assert per_client.shape == (clients, counts.size)
    assert (per_client >= 0).all()
    assert per_client.sum(axis=0).tolist() == counts.tolist(), "every row of every key placed once"
    assert allocation.client_sizes(counts).tolist() == per_client.sum(axis=1).tolist()
    # pure function of (counts, parameters, generator)
    again, _ = allocate(scheme, counts, seed, num_clients=clients, **SCHEMES[scheme])
    for field in ("quotas", "key_client"):
        a, b = getattr(allocation, field), getattr(again, field)
        assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_plans_differ_between_seeds(scheme):
    # equal counts: natural packing is deterministic LPT apart from its seeded tie-breaking
    counts = np.array([300, 200, 100, 50, 25, 10, 5, 1]) if scheme != "natural" else np.full(8, 10)
    params = {"num_clients": 4, **SCHEMES[scheme]}
    plans = [draw_plan(make_partitioner(scheme, **params), counts, seed) for seed in range(6)]
    matrices = {p.allocation.client_key_counts(counts).tobytes() for p in plans}
    assert len(matrices) > 1
    keys = {p.permutation_keys.tobytes() for p in plans}
    assert len(keys) == 6


# --- iid ------------------------------------------------------------------------------------------

def test_iid_sizes_differ_by_at_most_one_and_leftovers_go_to_random_clients():
    counts = np.array([40, 31, 30])  # 101 rows over 10 clients: one client gets 11
    winners = set()
    for seed in range(20):
        allocation, per_client = allocate("iid", counts, seed, num_clients=10)
        sizes = per_client.sum(axis=1)
        assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 101
        winners.add(int(np.argmax(sizes)))
    assert len(winners) > 3, "the extra row must not always go to the same client"


def test_iid_label_mix_is_near_global():
    counts = np.array([6000, 3000, 1000])
    _, per_client = allocate("iid", counts, 0, num_clients=5)
    assert np.nanmax(client_metrics(per_client).tv) < 0.03


# --- dirichlet ------------------------------------------------------------------------------------

def dirichlet_matrix(alpha: float, seed: int) -> np.ndarray:
    return allocate("dirichlet", np.full(10, 1000), seed, num_clients=20, alpha=alpha)[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dirichlet_large_alpha_approaches_the_global_mix(seed):
    per_client = dirichlet_matrix(1000.0, seed)
    tv = client_metrics(per_client).tv
    assert np.nanmean(tv) < 0.05 and np.nanmax(tv) < 0.1


def test_dirichlet_small_alpha_gives_clients_dominated_by_one_or_two_labels():
    top2_shares, mean_tv = [], []
    for seed in range(5):
        per_client = dirichlet_matrix(0.05, seed)
        sizes = per_client.sum(axis=1)
        nonempty = sizes > 0
        top2 = np.sort(per_client, axis=1)[:, -2:].sum(axis=1)[nonempty] / sizes[nonempty]
        assert np.median(top2) > 0.85, top2
        top2_shares.append(top2)
        mean_tv.append(np.nanmean(client_metrics(per_client).tv))
    # over 200 seeds about 79% of clients have a top-2 share above 0.9 (never fewer than 50%)
    assert np.mean(np.concatenate(top2_shares) > 0.9) > 0.65
    assert min(mean_tv) > 0.5


def test_dirichlet_skew_grows_as_alpha_shrinks():
    mean_tv = [
        np.mean([np.nanmean(client_metrics(dirichlet_matrix(alpha, seed)).tv) for seed in range(3)])
        for alpha in (100.0, 1.0, 0.1)
    ]
    assert mean_tv[0] < mean_tv[1] < mean_tv[2], mean_tv


# --- label-count ----------------------------------------------------------------------------------

@FAST
@given(
    st.lists(st.integers(1, 200), min_size=1, max_size=10), st.integers(1, 12), st.data(),
    st.integers(0, 2**32 - 1),
)
def test_label_count_gives_each_client_exactly_c_labels_and_holds_every_label(counts, clients, data, seed):
    counts = np.array(counts)
    n_labels = counts.size
    per_client_labels = data.draw(st.integers(-(-n_labels // clients), n_labels))
    clients = min(clients, int(counts.sum()))
    if per_client_labels * clients < n_labels:
        return
    _, per_client = allocate(
        "label-count", counts, seed, num_clients=clients, labels_per_client=per_client_labels
    )
    holds = per_client > 0
    held = holds.sum(axis=1)
    # a label with fewer rows than holders leaves some holders without rows of it
    assert np.all(held <= per_client_labels)
    if counts.min() >= clients:
        assert held.tolist() == [per_client_labels] * clients
    assert holds.any(axis=0).all(), "every label is held by some client"
    assert per_client.sum(axis=0).tolist() == counts.tolist()


def test_label_count_splits_a_label_evenly_among_its_holders():
    counts = np.array([101, 77, 60, 43, 20])
    _, per_client = allocate("label-count", counts, 3, num_clients=7, labels_per_client=2)
    assert (per_client > 0).sum(axis=1).tolist() == [2] * 7
    holders = (per_client > 0).sum(axis=0)
    assert holders.max() - holders.min() <= 1, "labels are drawn among the least-held"
    for label in range(counts.size):
        shares = per_client[:, label][per_client[:, label] > 0]
        assert shares.max() - shares.min() <= 1


@pytest.mark.parametrize("seed", range(3))
def test_label_count_label_sets_are_not_a_fixed_grouping(seed):
    """When C divides the number of labels, clients do not fall into K/C groups that never share a
    label (a window over one shuffled cycle did that: AG News, C=2 gave 2 label pairs for any number
    of clients); holder counts still differ by at most one."""
    counts = np.full(4, 1000)
    _, per_client = allocate("label-count", counts, seed, num_clients=20, labels_per_client=2)
    sets = {tuple(np.flatnonzero(row)) for row in per_client}
    assert len(sets) >= 4, sets  # of the 6 pairs; a fixed grouping gives 2
    holders = (per_client > 0).sum(axis=0)
    assert holders.tolist() == [10, 10, 10, 10]


def test_label_count_refuses_more_labels_than_exist_and_uncovered_labels():
    with pytest.raises(PlanError, match=r"--labels-per-client 5 exceeds the 4 distinct labels"):
        allocate("label-count", [10, 10, 10, 10], num_clients=3, labels_per_client=5)
    with pytest.raises(PlanError, match=r"2 clients x 1 labels cover only 2 of the 4 labels"):
        allocate("label-count", [10, 10, 10, 10], num_clients=2, labels_per_client=1)


# --- quantity -------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{"alpha": 0.3}, {"size_dist": "lognormal", "sigma": 1.0}])
def test_quantity_sizes_vary_but_labels_stay_iid(params):
    counts = np.array([6000, 3000, 1000])
    allocation, per_client = allocate("quantity", counts, 0, num_clients=10, **params)
    sizes = per_client.sum(axis=1)
    assert sizes.sum() == 10_000
    assert sizes.max() > 3 * max(sizes.min(), 1), sizes
    big = sizes >= 300
    assert big.sum() >= 2
    tv = client_metrics(per_client[big]).tv
    assert np.max(tv) < 0.08, "labels are a hypergeometric draw within every client"


def test_quantity_large_alpha_gives_near_equal_sizes():
    _, per_client = allocate("quantity", [5000, 5000], 0, num_clients=10, alpha=10_000.0)
    sizes = per_client.sum(axis=1)
    assert np.all(np.abs(sizes - 1000) < 60), sizes


def test_quantity_validates_its_size_distribution_parameters():
    with pytest.raises(InputError, match="needs --sigma"):
        make_partitioner("quantity", num_clients=3, size_dist="lognormal")
    with pytest.raises(InputError, match="needs --alpha"):
        make_partitioner("quantity", num_clients=3)
    with pytest.raises(InputError, match="--size-dist must be one of dirichlet, lognormal"):
        make_partitioner("quantity", num_clients=3, size_dist="pareto", alpha=1.0)
    with pytest.raises(InputError, match="--sigma must be a finite number > 0"):
        make_partitioner("quantity", num_clients=3, size_dist="lognormal", sigma=0)


# --- natural --------------------------------------------------------------------------------------

@FAST
@given(st.lists(st.integers(1, 100), min_size=1, max_size=30), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_natural_never_splits_an_id_and_packs_clients_balanced(counts, clients, seed):
    counts = np.array(counts)
    clients = min(clients, counts.size)
    allocation, per_client = allocate("natural", counts, seed, num_clients=clients)
    assert allocation.key_client is not None and allocation.quotas is None
    assert ((per_client > 0).sum(axis=0) == 1).all(), "every id on exactly one client"
    sizes = per_client.sum(axis=1)
    assert (sizes > 0).all()
    # greedy longest-processing-time: the largest client exceeds the smallest by at most one id
    assert sizes.max() - sizes.min() <= counts.max()


def test_natural_without_clients_gives_one_client_per_id_in_sorted_order():
    counts = np.array([5, 0, 3, 7])  # an id with no training rows (held out) gets no client
    allocation, per_client = allocate("natural", counts, 0)
    assert allocation.num_clients == 3
    assert allocation.key_client.tolist() == [0, -1, 1, 2]
    assert per_client.sum(axis=1).tolist() == [5, 3, 7]


def test_natural_refuses_more_clients_than_ids():
    with pytest.raises(PlanError, match=r"--clients 4 exceeds the 3 distinct ids"):
        allocate("natural", [5, 3, 7], num_clients=4)


def test_natural_test_split_holds_out_whole_ids():
    counts = np.array([30, 25, 20, 10, 8, 5, 2])
    for seed in range(10):
        plan = draw_plan(make_partitioner("natural", num_clients=3), counts, seed, test_frac=0.25)
        assert all(h in (0, c) for h, c in zip(plan.holdout, counts)), plan.holdout
        assert plan.holdout.sum() >= round(0.25 * counts.sum())
        assert plan.allocation.client_sizes(counts - plan.holdout).sum() + plan.holdout.sum() == counts.sum()


def test_natural_test_split_taking_every_id_is_refused():
    with pytest.raises(PlanError, match="holds out every id"):
        draw_plan(make_partitioner("natural"), np.array([10]), 0, test_frac=0.5)


# --- min_client_size ------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["dirichlet", "quantity"])
@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0])
def test_min_client_size_is_guaranteed_even_for_tiny_alpha(scheme, alpha):
    counts = np.array([500, 300, 150, 40, 10])
    for seed in range(5):
        plan = draw_plan(
            make_partitioner(scheme, num_clients=25, alpha=alpha, min_client_size=30), counts, seed
        )
        sizes = plan.allocation.client_sizes(counts)
        assert sizes.min() >= 30 and sizes.sum() == counts.sum()
        assert plan.allocation.quotas.sum(axis=1).tolist() == counts.tolist()


def _mean_tv_and_dominated(quotas: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Mean total variation to the global mix, and the share of clients with one label >= 0.9, over
    the non-empty clients (computed here, not with fedpart.metrics)."""
    sizes = quotas.sum(axis=0)
    mixes = quotas[:, sizes > 0] / sizes[sizes > 0]
    tv = 0.5 * np.abs(mixes - (counts / counts.sum())[:, None]).sum(axis=0)
    return float(tv.mean()), float((mixes.max(axis=0) >= 0.9).mean())


@pytest.mark.parametrize("minimum", [20, 40, 60])
def test_the_reserved_minimum_keeps_the_dirichlet_skew(minimum):
    """The reserve follows each client's drawn mix: a minimum does not dilute alpha=0.1 towards IID.
    (An IID reserve of 20 rows per client -- 2,000 of 6,840 -- halved the mean TV, 0.63 -> 0.31,
    and left 3 % of clients dominated by one label instead of 55 %.)"""
    counts = np.array([1710, 1710, 1710, 1710])  # AG News test after --test-frac 0.1
    skewed, kept = [], []
    for seed in range(4):
        free = draw_plan(make_partitioner("dirichlet", num_clients=100, alpha=0.1), counts, seed)
        reserved = draw_plan(
            make_partitioner("dirichlet", num_clients=100, alpha=0.1, min_client_size=minimum), counts, seed
        )
        assert reserved.allocation.client_sizes(counts).min() >= minimum
        skewed.append(_mean_tv_and_dominated(free.allocation.quotas, counts))
        kept.append(_mean_tv_and_dominated(reserved.allocation.quotas, counts))
    (tv_free, dominated_free), (tv_kept, dominated_kept) = np.mean(skewed, axis=0), np.mean(kept, axis=0)
    assert tv_kept >= 0.9 * tv_free, (tv_kept, tv_free)
    assert dominated_kept >= 0.8 * dominated_free, (dominated_kept, dominated_free)


def test_without_a_minimum_tiny_alpha_leaves_clients_empty():
    # the guarantee above is not vacuous: the same plan without it starves clients
    counts = np.array([500, 300, 150, 40, 10])
    plan = draw_plan(make_partitioner("dirichlet", num_clients=25, alpha=0.01), counts, 0)
    assert plan.allocation.client_sizes(counts).min() < 30


@pytest.mark.parametrize(
    "scheme, params",
    [
        ("dirichlet", {"alpha": 0.5}),
        ("quantity", {"alpha": 0.5}),
        ("iid", {}),
        ("label-count", {"labels_per_client": 1}),
        ("natural", {}),
    ],
)
def test_infeasible_min_client_size_is_a_plan_error_naming_the_flag(scheme, params):
    counts = np.array([40, 30, 20, 9])  # 99 rows
    with pytest.raises(PlanError, match="--min-client-size 30"):
        draw_plan(make_partitioner(scheme, num_clients=4, min_client_size=30, **params), counts, 0)


# --- make_partitioner -----------------------------------------------------------------------------

def test_registry_names_match_the_classes():
    assert set(PARTITIONERS) == {"iid", "dirichlet", "label-count", "quantity", "natural", "cluster"}
    for name, cls in PARTITIONERS.items():
        assert cls.name == name


@pytest.mark.parametrize(
    "scheme, params, message",
    [
        ("iid", {"num_clients": 3, "alpha": 0.1}, "--alpha does not apply to --scheme iid"),
        ("iid", {"num_clients": 3, "labels_per_client": 2}, "--labels-per-client does not apply"),
        ("dirichlet", {"num_clients": 3, "alpha": 1, "sigma": 1.0}, "--sigma does not apply"),
        ("natural", {"alpha": 1.0}, "--alpha does not apply to --scheme natural"),
        ("dirichlet", {"num_clients": 3}, "--scheme dirichlet needs --alpha"),
        ("dirichlet", {"alpha": 1.0}, "--scheme dirichlet needs --clients"),
        ("label-count", {"num_clients": 3}, "needs --labels-per-client"),
        ("iid", {}, "--scheme iid needs --clients"),
        ("random", {"num_clients": 3}, "unknown --scheme 'random'"),
        ("iid", {"num_clients": 0}, "--clients must be at least 1, got 0"),
        ("iid", {"num_clients": True}, "--clients must be an integer"),
        ("iid", {"num_clients": 2.5}, "--clients must be an integer"),
        ("dirichlet", {"num_clients": 3, "alpha": 0}, "--alpha must be a finite number > 0"),
        ("dirichlet", {"num_clients": 3, "alpha": -1.0}, "--alpha must be a finite number > 0"),
        ("dirichlet", {"num_clients": 3, "alpha": float("inf")}, "--alpha must be a finite number > 0"),
        ("dirichlet", {"num_clients": 3, "alpha": "abc"}, "--alpha must be a number > 0"),
        ("dirichlet", {"num_clients": 3, "alpha": 1.0, "min_client_size": -1}, "--min-client-size must be at least 0"),
        ("label-count", {"num_clients": 3, "labels_per_client": 0}, "--labels-per-client must be at least 1"),
    ],
)
def test_make_partitioner_rejects_bad_parameters(scheme, params, message):
    with pytest.raises(InputError) as info:
        make_partitioner(scheme, **params)
    assert message in str(info.value)


def test_none_means_not_given_and_params_are_json():
    partitioner = make_partitioner("iid", num_clients=3, alpha=None, sigma=None)
    assert partitioner.params() == {"num_clients": 3, "min_client_size": 0}
    for scheme, params in SCHEMES.items():
        record = make_partitioner(scheme, num_clients=2, **params).params()
        assert json.loads(json.dumps(record)) == record


def test_clients_more_than_rows_is_a_plan_error():
    for scheme, params in SCHEMES.items():
        if scheme == "natural":
            continue
        with pytest.raises(PlanError, match=r"--clients 6 exceeds the 5 rows"):
            allocate(scheme, [3, 2], num_clients=6, **params)
