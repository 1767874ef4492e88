"""The partition engine: exact cover, determinism, scheme statistics, minimum sizes, test split,
natural ids, loading, and the keyed permutation -- as properties over random inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedpart
from fedpart.assign import RowAssigner, permute
from fedpart.io.sources import ReadOptions
from fedpart.manifest import Manifest
from fedpart.metrics import client_metrics
from fedpart.partitioners import (
    DirichletPartitioner,
    LabelCountPartitioner,
    NaturalIdPartitioner,
    QuantityPartitioner,
    make_partitioner,
)
from fedpart.partitioners.allocation import deal_by_hypergeometric, round_preserving_sum
from fedpart.plan import draw_plan

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write_table(path: Path, labels: list, extra: dict | None = None) -> Path:
    columns = {"text": [f"row {i} text" for i in range(len(labels))], "label": labels, **(extra or {})}
    table = pa.table(columns)
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=7)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    return path


def read_shards(out: Path) -> tuple[Manifest, list[pa.Table]]:
    manifest = Manifest.read(out)
    return manifest, [pq.read_table(out / c.file) for c in manifest.clients]


# --- plan math -----------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.floats(0, 10), min_size=1, max_size=30).filter(lambda w: sum(w) > 0), st.integers(0, 10_000))
def test_round_preserving_sum_is_exact_and_close(weights, total):
    out = round_preserving_sum(np.array(weights), total)
    assert out.sum() == total and (out >= 0).all()
    exact = np.array(weights) / sum(weights) * total
    assert np.all(np.abs(out - exact) < 1 + 1e-9)


@SETTINGS
@given(st.lists(st.integers(0, 50), min_size=1, max_size=8), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_hypergeometric_deal_has_exact_margins(key_counts, clients, seed):
    rng = np.random.default_rng(seed)
    total = sum(key_counts)
    sizes = round_preserving_sum(np.ones(clients), total)
    quotas = deal_by_hypergeometric(np.array(key_counts), sizes, rng)
    assert quotas.sum(axis=1).tolist() == key_counts
    assert quotas.sum(axis=0).tolist() == sizes.tolist()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 255, 256, 257, 1000, 4097])
def test_keyed_permutation_is_a_bijection(n):
    for seed in range(3):
        keys = np.random.default_rng(seed).integers(0, 2**63, size=(1, 4), dtype=np.uint64)
        out = permute(np.arange(n), np.full(n, n), np.repeat(keys, n, axis=0))
        assert sorted(out.tolist()) == list(range(n))


@SETTINGS
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=200),
    st.lists(st.integers(1, 40), min_size=1, max_size=10),
    st.integers(0, 1000),
)
def test_row_assigner_hits_quotas_whatever_the_batches(codes, cuts, seed):
    codes = np.array(codes)
    counts = np.bincount(codes, minlength=4)
    partitioner = DirichletPartitioner(num_clients=3, alpha=0.5)
    if counts.sum() < 3:
        return
    plan = draw_plan(partitioner, counts, seed)
    assigner = RowAssigner(plan)
    out, start = [], 0
    for cut in cuts * 50:
        if start >= len(codes):
            break
        out.append(assigner.assign(codes[start : start + cut]))
        start += cut
    clients = np.concatenate(out)
    got = np.zeros((4, 3), dtype=int)
    np.add.at(got, (codes[: len(clients)], clients), 1)
    if len(clients) == len(codes):
        assert np.array_equal(got, plan.allocation.quotas)
    # the same rows in one batch land on the same clients
    whole = RowAssigner(plan).assign(codes)
    assert np.array_equal(whole[: len(clients)], clients)


# --- schemes -------------------------------------------------------------------------------------

def _dirichlet_counts(alpha: float, seed: int = 0) -> np.ndarray:
    counts = np.full(10, 1000)
    plan = draw_plan(DirichletPartitioner(num_clients=20, alpha=alpha), counts, seed)
    return plan.allocation.client_key_counts(counts)


def test_dirichlet_large_alpha_is_near_global_small_alpha_is_dominated():
    near = client_metrics(_dirichlet_counts(1000.0))
    assert np.nanmean(near.tv) < 0.05
    skewed = _dirichlet_counts(0.05)
    sizes = skewed.sum(axis=1)
    top2 = np.sort(skewed, axis=1)[:, -2:].sum(axis=1)[sizes > 0] / sizes[sizes > 0]
    assert np.mean(top2 > 0.9) > 0.7, "most clients should be dominated by one or two labels"
    assert np.nanmean(client_metrics(skewed).tv) > 0.6


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0])
def test_min_client_size_is_guaranteed(alpha):
    counts = np.array([500, 300, 150, 50])
    for seed in range(5):
        for partitioner in (DirichletPartitioner(num_clients=25, alpha=alpha, min_client_size=30),
                            QuantityPartitioner(num_clients=25, alpha=alpha, min_client_size=30)):
            plan = draw_plan(partitioner, counts, seed)
            assert plan.allocation.client_sizes(counts).min() >= 30
            assert plan.allocation.quotas.sum(axis=1).tolist() == counts.tolist()


def test_label_count_gives_each_client_exactly_c_labels_and_covers_all():
    counts = np.array([100, 80, 60, 40, 20])
    plan = draw_plan(LabelCountPartitioner(num_clients=7, labels_per_client=2), counts, 3)
    held = (plan.allocation.quotas > 0).sum(axis=0)
    assert held.tolist() == [2] * 7
    assert plan.allocation.quotas.sum(axis=1).tolist() == counts.tolist()


def test_quantity_lognormal_sizes_vary_and_labels_stay_mixed():
    counts = np.array([5000, 5000])
    plan = draw_plan(QuantityPartitioner(num_clients=20, size_dist="lognormal", sigma=1.0), counts, 0)
    sizes = plan.allocation.client_sizes(counts)
    assert sizes.sum() == 10_000 and sizes.max() > 3 * sizes.min()
    shares = plan.allocation.quotas[0] / np.maximum(sizes, 1)
    assert np.all(np.abs(shares[sizes > 200] - 0.5) < 0.15)


def test_natural_packs_ids_balanced_or_one_client_per_id():
    counts = np.array([50, 40, 30, 20, 10, 10, 5, 5])
    packed = NaturalIdPartitioner(num_clients=3).allocate(counts, np.random.default_rng(0))
    sizes = packed.client_sizes(counts)
    assert sizes.sum() == 170 and sizes.max() - sizes.min() <= 10
    single = NaturalIdPartitioner().allocate(counts, np.random.default_rng(0))
    assert single.num_clients == 8 and single.key_client.tolist() == list(range(8))


def test_make_partitioner_rejects_inapplicable_and_missing_parameters():
    with pytest.raises(fedpart.InputError, match="--alpha does not apply to --scheme iid"):
        make_partitioner("iid", num_clients=3, alpha=0.1)
    with pytest.raises(fedpart.InputError, match="needs --alpha"):
        make_partitioner("dirichlet", num_clients=3)
    with pytest.raises(fedpart.InputError, match="--alpha must be a finite number > 0"):
        make_partitioner("dirichlet", num_clients=3, alpha=float("nan"))


# --- the engine end to end ----------------------------------------------------------------------

SCHEMES = [
    ("iid", {}),
    ("dirichlet", {"alpha": 0.3}),
    ("label-count", {"labels_per_client": 2}),
    ("quantity", {"alpha": 0.5}),
    ("natural", {"by": "user"}),
]


@SETTINGS
@given(
    n=st.integers(8, 120),
    n_labels=st.integers(2, 5),
    clients=st.integers(1, 6),
    scheme=st.sampled_from(SCHEMES),
    seed=st.integers(0, 10**6),
    batch_rows=st.sampled_from([3, 16, 1000]),
    test_frac=st.sampled_from([0.0, 0.25]),
    data=st.data(),
)
def test_partition_is_an_exact_cover_with_matching_manifest(tmp_path_factory, n, n_labels, clients, scheme, seed,
                                                            batch_rows, test_frac, data):
    labels = data.draw(st.lists(st.integers(0, n_labels - 1), min_size=n, max_size=n))
    users = [f"u{i % 11}" for i in range(n)]
    tmp = tmp_path_factory.mktemp("cover")
    path = write_table(tmp / "in.parquet", labels, {"user": users})
    name, params = scheme
    clients = min(clients, len(set(labels)) * 2 if name == "label-count" else clients)
    try:
        manifest = fedpart.partition(path, out=tmp / "out", scheme=name, clients=clients, label_col="label",
                                     seed=seed, test_frac=test_frac, plot=False,
                                     read_options=ReadOptions(batch_rows=batch_rows), **params)
    except fedpart.PlanError:
        return  # e.g. more clients than distinct users: refused with a message, nothing written
    _, shards = read_shards(tmp / "out")
    tables = shards + ([pq.read_table(tmp / "out" / manifest.test.file)] if manifest.test else [])
    ids = np.concatenate([t.column("row_id").to_numpy() for t in tables])
    assert sorted(ids.tolist()) == list(range(n)), "every row exactly once"
    for table in tables:
        ids_here = table.column("row_id").to_pylist()
        assert table.column("label").to_pylist() == [labels[i] for i in ids_here]
        assert table.column("text").to_pylist() == [f"row {i} text" for i in ids_here]
        assert ids_here == sorted(ids_here), "rows keep input order within a shard"
    for record, table in zip(manifest.clients, shards):
        assert record.rows == table.num_rows
        expected = [table.column("label").to_pylist().count(v) for v in manifest.labels]
        assert record.label_counts == expected
    if name == "natural":
        owner = {}
        for c, table in enumerate(tables):
            for user in table.column("user").to_pylist():
                assert owner.setdefault(user, c) == c, "an id was split"


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    labels = [i % 4 for i in range(400)]
    path = write_table(tmp_path / "in.parquet", labels)
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        fedpart.partition(path, out=tmp_path / name, scheme="dirichlet", alpha=0.5, clients=5, label_col="label",
                          seed=seed, test_frac=0.1)
        runs[name] = {p.relative_to(tmp_path / name): p.read_bytes()
                      for p in sorted((tmp_path / name).rglob("*")) if p.is_file()}
    assert runs["a"] == runs["b"]
    assert runs["a"][Path("manifest.json")] != runs["c"][Path("manifest.json")]


def test_test_split_is_stratified_and_disjoint(tmp_path):
    labels = [0] * 300 + [1] * 100
    path = write_table(tmp_path / "in.parquet", labels)
    manifest = fedpart.partition(path, out=tmp_path / "o", scheme="iid", clients=4, label_col="label",
                                 test_frac=0.25, plot=False)
    assert manifest.test.rows == 100 and manifest.test.label_counts == [75, 25]
    test_ids = set(fedpart.load_test(tmp_path / "o", format="arrow").column("row_id").to_pylist())
    client_ids = {i for c in range(4) for i in fedpart.load_client(tmp_path / "o", c, "arrow").column("row_id").to_pylist()}
    assert not test_ids & client_ids and len(test_ids | client_ids) == 400


def test_by_column_skews_on_that_column(tmp_path):
    labels = [i % 2 for i in range(600)]
    topics = [["a", "b", "c"][i % 3] for i in range(600)]
    path = write_table(tmp_path / "in.parquet", labels, {"topic": topics})
    manifest = fedpart.partition(path, out=tmp_path / "o", scheme="label-count", labels_per_client=1, clients=3,
                                 label_col="label", by="topic", plot=False)
    assert manifest.key_col == "topic" and manifest.keys == ["a", "b", "c"]
    for record in manifest.clients:
        assert sorted(record.key_counts) == [0, 0, 200]
        assert sum(record.label_counts) == 200


def test_load_client_formats_and_tiny_buffer(tmp_path):
    path = write_table(tmp_path / "in.parquet", [i % 3 for i in range(90)])
    fedpart.partition(path, out=tmp_path / "a", scheme="iid", clients=3, label_col="label", plot=False)
    fedpart.partition(path, out=tmp_path / "b", scheme="iid", clients=3, label_col="label", plot=False,
                      buffer_bytes=1)
    ds = fedpart.load_client(tmp_path / "a", 1)
    pl_frame = fedpart.load_client(tmp_path / "a", 1, format="polars")
    table = fedpart.load_client(tmp_path / "b", 1, format="arrow")
    assert ds.num_rows == pl_frame.height == table.num_rows == 30
    assert ds["row_id"] == pl_frame["row_id"].to_list() == table.column("row_id").to_pylist()
    with pytest.raises(fedpart.InputError, match="no client 3"):
        fedpart.load_client(tmp_path / "a", 3)


def test_drop_null_labels_counts_and_keeps_input_positions(tmp_path):
    path = write_table(tmp_path / "in.parquet", [0, None, 1, 1, None, 0])
    manifest = fedpart.partition(path, out=tmp_path / "o", scheme="iid", clients=2, label_col="label",
                                 drop_null_labels=True, plot=False)
    assert manifest.rows == {"input": 6, "dropped_null": 2, "written": 4}
    _, shards = read_shards(tmp_path / "o")
    assert sorted(i for s in shards for i in s.column("row_id").to_pylist()) == [0, 2, 3, 5]


def test_csv_jsonl_directory_and_glob_inputs(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_table(folder / "a.csv", [0, 1, 0, 1])
    write_table(folder / "b.csv", [1, 1, 0])
    for spec in (folder, str(folder / "*.csv")):
        out = tmp_path / f"o{len(str(spec))}"
        manifest = fedpart.partition(spec, out=out, scheme="iid", clients=2, label_col="label", plot=False)
        assert manifest.rows["written"] == 7 and [f["name"] for f in manifest.input["files"]] == ["a.csv", "b.csv"]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"text": "x", "label": "pos"}\n{"text": "y", "label": "neg"}\n', encoding="utf-8")
    manifest = fedpart.partition(jsonl, out=tmp_path / "j", scheme="iid", clients=1, label_col="label", plot=False)
    assert manifest.labels == ["neg", "pos"]


def test_hugging_face_source_through_datasets_offline(tmp_path):
    folder = tmp_path / "hfdata"
    folder.mkdir()
    write_table(folder / "train.parquet", [i % 2 for i in range(20)])
    manifest = fedpart.partition(f"hf://{folder}", hf_split="train", out=tmp_path / "o", scheme="dirichlet",
                                 alpha=1.0, clients=2, label_col="label", plot=False)
    assert manifest.input["kind"] == "huggingface" and manifest.rows["written"] == 20
    with pytest.raises(fedpart.InputError, match="cannot be loaded"):
        fedpart.partition(f"hf://{tmp_path / 'missing'}", out=tmp_path / "x", scheme="iid", clients=1)
