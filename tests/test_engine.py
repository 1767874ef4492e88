"""The partition pipeline end to end: exact cover, row content, manifest counts, determinism, test
split, --by skew, natural ids, groups, loading, dropped nulls, small write buffers, HF sources."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedpart
from fedpart.io.sources import ReadOptions
from fedpart.partitioners import make_partitioner
from fedpart.plan import draw_plan

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "ag_news" / "sample.csv"
AG = ReadOptions(column_names=("label", "title", "description"))

PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def make_rows(n: int, labels: list, users: list | None = None) -> dict[str, list]:
    """Columns with awkward text (commas, quotes, newlines, unicode), an int, an exact float and the label."""
    data = {
        "text": [f'row {i}, "quoted" \u00e9\u4e2d {"x" * (i % 5)}' + " two\nlines" * (i % 4 == 0) for i in range(n)],
        "num": [i * 3 - 7 for i in range(n)],
        "score": [i / 4 for i in range(n)],
        "label": labels,
    }
    if users is not None:
        data["user"] = users
    return data


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dir_digest(out: Path, include_plot: bool = False) -> dict[str, str]:
    return {
        str(p.relative_to(out)): sha(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and (include_plot or p.suffix != ".png")
    }


# --- the core property ----------------------------------------------------------------------------

@PROPERTY
@given(
    n=st.integers(1, 60),
    n_labels=st.integers(1, 4),
    label_kind=st.sampled_from(["int", "str"]),
    scheme=st.sampled_from(["iid", "dirichlet", "label-count", "quantity", "natural"]),
    fmt=st.sampled_from([".parquet", ".csv", ".jsonl"]),
    batch_rows=st.sampled_from([1, 3, 17, 10_000]),
    test_frac=st.sampled_from([0.0, 0.0, 0.3]),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_partition_is_an_exact_cover_that_preserves_rows_and_matches_its_manifest(
    tmp_path_factory, table_writer, partition_reader, n, n_labels, label_kind, scheme, fmt, batch_rows,
    test_frac, seed, data,
):
    codes = data.draw(st.lists(st.integers(0, n_labels - 1), min_size=n, max_size=n))
    labels = [f"lab{c}" for c in codes] if label_kind == "str" else [c * 10 - 5 for c in codes]
    n_users = data.draw(st.integers(1, 6))
    users = [f"user{(i * 7) % n_users}" for i in range(n)]
    rows = make_rows(n, labels, users)
    tmp = tmp_path_factory.mktemp("cover")
    path = table_writer(tmp / f"input{fmt}", rows, row_group_size=data.draw(st.integers(1, 20)))

    present_labels = len(set(labels))
    train_rows = n - round(test_frac * n)
    clients = data.draw(st.integers(1, max(1, min(5, train_rows))))
    kwargs: dict = {"label_col": "label"}
    if scheme == "dirichlet":
        kwargs["alpha"] = data.draw(st.sampled_from([0.05, 1.0, 100.0]))
    elif scheme == "quantity":
        kwargs["alpha"] = 0.5
    elif scheme == "label-count":
        # clients x labels_per_client must cover every label
        kwargs["labels_per_client"] = data.draw(st.integers(-(-present_labels // clients), present_labels))
    elif scheme == "natural":
        kwargs["by"] = "user"
        test_frac = 0.0  # a natural test split may take every id; tested separately
        present_users = len(set(users))
        clients = data.draw(st.one_of(st.none(), st.integers(1, present_users)))

    out = tmp / "out"
    manifest = fedpart.partition(
        path, out=out, scheme=scheme, clients=clients, seed=seed, test_frac=test_frac,
        read_options=ReadOptions(batch_rows=batch_rows), plot=False, **kwargs,
    )
    part = partition_reader(out)

    # exact cover: every input position exactly once
    ids = part.all_row_ids()
    assert sorted(ids) == list(range(n)), "every row exactly once"

    # every written row equals the input row with that id; rows keep input order within a shard
    expected = pa.table(rows).to_pylist()
    for table in [*part.clients, *([part.test] if part.test is not None else [])]:
        assert table.column_names == [*rows, "row_id"]
        shard_rows = table.to_pylist()
        assert [r["row_id"] for r in shard_rows] == sorted(r["row_id"] for r in shard_rows)
        for row in shard_rows:
            row_id = row.pop("row_id")
            assert row == expected[row_id]

    # the manifest's counts are the shards' counts
    assert manifest.rows == {"input": n, "dropped_null": 0, "written": n}
    label_index = {value: i for i, value in enumerate(manifest.labels)}
    assert sorted(label_index) == sorted(set(labels))
    records = [*manifest.clients, *([manifest.test] if manifest.test is not None else [])]
    tables = [*part.clients, *([part.test] if part.test is not None else [])]
    assert len(records) == len(tables)
    for record, table in zip(records, tables):
        assert record.rows == table.num_rows
        assert record.sha256 == sha(out / record.file)
        tally = Counter(table.column("label").to_pylist())
        assert record.label_counts == [tally.get(v, 0) for v in manifest.labels]
    assert (manifest.test is not None) == (round(test_frac * n) > 0)
    if manifest.test is not None:
        assert manifest.test.rows == round(test_frac * n)

    # the shards realise the plan drawn from the counts (what the library promises to be pure math)
    if scheme != "natural":
        key_counts = np.array([Counter(labels)[v] for v in manifest.labels])
        partitioner = make_partitioner(scheme, num_clients=clients, **{
            k: v for k, v in kwargs.items() if k not in ("label_col", "by")
        })
        plan = draw_plan(partitioner, key_counts, seed, test_frac)
        got = np.array([c.label_counts for c in manifest.clients])
        assert np.array_equal(got, plan.allocation.client_key_counts(key_counts - plan.holdout))
    else:
        # no id is split across clients
        owners: dict = {}
        for client, table in enumerate(part.clients):
            for user in set(table.column("user").to_pylist()):
                assert owners.setdefault(user, client) == client
        if clients is None:
            assert manifest.num_clients == len(set(users))
            assert all(len(set(t.column("user").to_pylist())) == 1 for t in part.clients)


# --- determinism ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "scheme, params",
    [("iid", {}), ("dirichlet", {"alpha": 0.3}), ("label-count", {"labels_per_client": 2}),
     ("quantity", {"size_dist": "lognormal", "sigma": 1.0})],
)
def test_same_seed_gives_byte_identical_output(tmp_path, scheme, params):
    runs = []
    for name in ("a", "b"):
        fedpart.partition(
            FIXTURE, out=tmp_path / name, scheme=scheme, clients=4, label_col="label", seed=7,
            test_frac=0.1, read_options=AG, plot=False, **params,
        )
        runs.append(dir_digest(tmp_path / name))
    assert runs[0] == runs[1]
    assert "manifest.json" in runs[0] and "test.parquet" in runs[0]
    assert len([f for f in runs[0] if f.startswith("clients/")]) == 4


def test_output_does_not_depend_on_the_process_hash_seed(tmp_path, table_writer):
    # string labels and ids: nothing may depend on Python's per-process string hashing
    import os
    import subprocess
    import sys

    n = 120
    path = table_writer(tmp_path / "in.parquet", {"text": [f"t{i}" for i in range(n)],
                                                   "label": [f"lab{(i * 7) % 5}" for i in range(n)],
                                                   "user": [f"user{(i * 3) % 11}" for i in range(n)]})
    digests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}"
        code = (f"import fedpart; fedpart.partition({str(path)!r}, out={str(out)!r}, scheme='dirichlet', alpha=0.5, "
                "clients=4, label_col='label', by='user', test_frac=0.2, seed=11, plot=False)")
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        digests.append(dir_digest(out))
    assert digests[0] == digests[1]


def test_batch_size_does_not_change_the_output(tmp_path):
    # with the default (large) write buffer, shards are one row group and independent of batching
    digests = []
    for batch_rows in (7, 65_536):
        out = tmp_path / f"b{batch_rows}"
        fedpart.partition(FIXTURE, out=out, scheme="dirichlet", alpha=0.5, clients=5, label_col="label",
                          seed=3, read_options=ReadOptions(column_names=AG.column_names, batch_rows=batch_rows),
                          plot=False)
        digests.append(dir_digest(out))
    assert digests[0] == digests[1]


def test_the_plot_is_deterministic_too(tmp_path):
    for name in ("a", "b"):
        fedpart.partition(FIXTURE, out=tmp_path / name, clients=3, label_col="label", read_options=AG)
    assert sha(tmp_path / "a" / "label_distribution.png") == sha(tmp_path / "b" / "label_distribution.png")


def test_different_seeds_give_different_assignments(tmp_path, partition_reader):
    assignments = []
    for seed in (0, 1):
        out = tmp_path / f"s{seed}"
        fedpart.partition(FIXTURE, out=out, clients=4, label_col="label", seed=seed, read_options=AG, plot=False)
        assignments.append([sorted(partition_reader(out).row_ids(c)) for c in range(4)])
    assert assignments[0] != assignments[1]
    # iid sizes are fixed by the row count; only which rows go where changes
    assert [len(a) for a in assignments[0]] == [150] * 4 == [len(a) for a in assignments[1]]


# --- test split -----------------------------------------------------------------------------------

def test_test_split_is_stratified_and_disjoint(tmp_path, partition_reader):
    out = tmp_path / "out"
    manifest = fedpart.partition(
        FIXTURE, out=out, scheme="dirichlet", alpha=0.1, clients=5, label_col="label", test_frac=0.2,
        read_options=AG, seed=2, plot=False,
    )
    part = partition_reader(out)
    test_ids = set(part.test.column("row_id").to_pylist())
    train_ids = {i for c in range(5) for i in part.row_ids(c)}
    assert not test_ids & train_ids
    assert test_ids | train_ids == set(range(600))
    assert len(test_ids) == 120 == manifest.test.rows
    all_labels = Counter(
        v for t in [*part.clients, part.test] for v in t.column("label").to_pylist()
    )
    test_labels = Counter(part.test.column("label").to_pylist())
    for label, count in all_labels.items():
        assert abs(test_labels[label] - 0.2 * count) < 1, (label, test_labels[label], count)
    assert manifest.test.label_counts == [test_labels[v] for v in manifest.labels]


def test_test_split_can_be_loaded(tmp_path):
    out = tmp_path / "out"
    fedpart.partition(FIXTURE, out=out, clients=2, label_col="label", test_frac=0.25, read_options=AG, plot=False)
    test = fedpart.load_test(out, format="arrow")
    assert test.num_rows == 150
    assert sorted(test.column("row_id").to_pylist()) == sorted(fedpart.load_test(out).to_dict()["row_id"])
    fedpart.partition(FIXTURE, out=tmp_path / "no_test", clients=2, read_options=AG, plot=False)
    assert not (tmp_path / "no_test" / "test.parquet").exists()
    with pytest.raises(fedpart.InputError, match="has no test split"):
        fedpart.load_test(tmp_path / "no_test")


# --- --by skew, natural ids, groups ---------------------------------------------------------------

def test_by_column_skews_that_column_and_still_reports_labels(tmp_path, table_writer, partition_reader):
    rng = np.random.default_rng(0)
    n = 400
    domains = [f"d{i}" for i in rng.integers(0, 5, n)]
    labels = rng.integers(0, 3, n).tolist()
    columns = {"text": [f"t{i}" for i in range(n)], "label": labels, "domain": domains}
    path = table_writer(tmp_path / "in.parquet", columns)
    out = tmp_path / "out"
    manifest = fedpart.partition(path, out=out, scheme="dirichlet", alpha=0.05, clients=6, label_col="label",
                                 by="domain", seed=1, plot=False)
    part = partition_reader(out)
    assert manifest.key_col == "domain" and manifest.label_col == "label"
    assert manifest.keys == sorted(set(domains)) and manifest.labels == [0, 1, 2]
    key_counts = np.array([Counter(domains)[d] for d in manifest.keys])
    plan = draw_plan(make_partitioner("dirichlet", num_clients=6, alpha=0.05), key_counts, 1)
    expected = plan.allocation.client_key_counts(key_counts)
    for client, (record, table) in enumerate(zip(manifest.clients, part.clients)):
        domain_tally = Counter(table.column("domain").to_pylist())
        assert record.key_counts == [domain_tally.get(d, 0) for d in manifest.keys] == expected[client].tolist()
        label_tally = Counter(table.column("label").to_pylist())
        assert record.label_counts == [label_tally.get(v, 0) for v in manifest.labels]
    # skewed on the domain, so the domain mix is far from global while labels stay mixed
    assert manifest.metrics["key"]["mean_tv"] > 0.4
    assert manifest.metrics["mean_tv"] < manifest.metrics["key"]["mean_tv"]


def test_natural_scheme_keeps_ids_together_including_the_test_split(tmp_path, table_writer, partition_reader):
    n = 300
    rng = np.random.default_rng(5)
    users = [f"u{int(u)}" for u in rng.zipf(1.5, n) % 40]
    columns = {"text": [f"t{i}" for i in range(n)], "user": users, "label": rng.integers(0, 4, n).tolist()}
    path = table_writer(tmp_path / "in.csv", columns)
    out = tmp_path / "out"
    manifest = fedpart.partition(path, out=out, scheme="natural", by="user", clients=4, label_col="label",
                                 test_frac=0.2, seed=3, plot=False)
    part = partition_reader(out)
    where: dict[str, set] = {}
    tables = {**{c: t for c, t in enumerate(part.clients)}, "test": part.test}
    for dest, table in tables.items():
        for user in table.column("user").to_pylist():
            where.setdefault(user, set()).add(dest)
    assert all(len(dests) == 1 for dests in where.values()), "an id is never split"
    assert set(where) == set(users)
    assert manifest.test.rows >= round(0.2 * n)
    assert sorted(part.all_row_ids()) == list(range(n))
    # small enough to tally: each client's id counts are exactly its ids
    assert manifest.keys == sorted(set(users))
    for record, table in zip(manifest.clients, part.clients):
        tally = Counter(table.column("user").to_pylist())
        assert record.key_counts == [tally.get(u, 0) for u in manifest.keys]
    assert manifest.test.key_counts == [Counter(part.test.column("user").to_pylist()).get(u, 0) for u in manifest.keys]


def test_key_tally_is_skipped_when_clients_times_keys_is_large(tmp_path, table_writer, monkeypatch):
    import fedpart.engine

    users = [f"u{i % 12}" for i in range(60)]
    path = table_writer(tmp_path / "in.parquet", {"user": users, "label": [i % 2 for i in range(60)]})
    monkeypatch.setattr(fedpart.engine, "MAX_KEY_TALLY", 12 * 12 - 1)  # one client per id: 12 x 12
    manifest = fedpart.partition(path, out=tmp_path / "out", scheme="natural", by="user", label_col="label",
                                 plot=False)
    assert manifest.num_clients == 12
    assert manifest.keys is None and all(c.key_counts is None for c in manifest.clients)
    assert "key" not in manifest.metrics
    assert [sum(c.label_counts) for c in manifest.clients] == [5] * 12, "labels are still tallied"


def test_natural_without_clients_gives_one_client_per_id(tmp_path, table_writer, partition_reader):
    users = ["bob", "alice", "carol", "alice", "bob", "alice"]
    path = table_writer(tmp_path / "in.jsonl", {"text": list("abcdef"), "user": users})
    out = tmp_path / "out"
    manifest = fedpart.partition(path, out=out, scheme="natural", by="user", plot=False)
    part = partition_reader(out)
    assert manifest.num_clients == 3
    # one client per id, in sorted id order
    assert [set(t.column("user").to_pylist()) for t in part.clients] == [{"alice"}, {"bob"}, {"carol"}]
    assert part.row_ids(0) == [1, 3, 5]


def test_group_column_keeps_groups_on_one_client(tmp_path, table_writer, partition_reader):
    n = 200
    rng = np.random.default_rng(2)
    groups = [f"g{int(g)}" for g in rng.integers(0, 30, n)]
    group_label = {g: i % 3 for i, g in enumerate(sorted(set(groups)))}
    path = table_writer(tmp_path / "in.parquet", {"text": [f"t{i}" for i in range(n)], "ctx": groups,
                                                    "label": [group_label[g] for g in groups]})
    out = tmp_path / "out"
    manifest = fedpart.partition(path, out=out, scheme="dirichlet", alpha=1.0, clients=4, label_col="label",
                                 group_col="ctx", test_frac=0.2, seed=0, plot=False)
    part = partition_reader(out)
    owners: dict = {}
    for client, table in [*enumerate(part.clients), ("test", part.test)]:
        for group in table.column("ctx").to_pylist():
            assert owners.setdefault(group, client) == client, "a group is never split, not even by the test split"
    assert sorted(part.all_row_ids()) == list(range(n))
    assert manifest.extra["groups"]["count"] == len(set(groups))
    # the test split takes round(0.2 x groups) whole groups
    assert len(set(part.test.column("ctx").to_pylist())) == round(0.2 * len(set(groups)))


# --- inputs: directories, nulls, buffers, Hugging Face --------------------------------------------

def test_glob_input_and_forced_format(tmp_path, table_writer, partition_reader):
    table_writer(tmp_path / "b.csv", {"text": ["c"], "label": [1]})
    table_writer(tmp_path / "a.csv", {"text": ["a", "b"], "label": [0, 1]})
    (tmp_path / "notes.txt").write_text("text,label\nz,0\n")
    out = tmp_path / "out"
    fedpart.partition(str(tmp_path / "*.csv"), out=out, clients=1, plot=False)
    assert partition_reader(out).clients[0].column("text").to_pylist() == ["a", "b", "c"]
    # an unknown extension is read when the format is given
    manifest = fedpart.partition(tmp_path / "notes.txt", out=tmp_path / "txt", clients=1,
                                 read_options=ReadOptions(format="csv"), plot=False)
    assert manifest.rows["written"] == 1


def test_directory_input_reads_files_in_sorted_path_order(tmp_path, table_writer, partition_reader):
    data = tmp_path / "data"
    table_writer(data / "part-1.parquet", {"text": ["c", "d", "e"], "label": [1, 1, 0]})
    table_writer(data / "part-0.parquet", {"text": ["a", "b"], "label": [0, 1]})
    table_writer(data / "_hidden.parquet", {"text": ["zzz"], "label": [5]})  # ignored like Spark/Arrow
    out = tmp_path / "out"
    manifest = fedpart.partition(data, out=out, clients=2, label_col="label", plot=False)
    part = partition_reader(out)
    by_id = {r["row_id"]: r["text"] for t in part.clients for r in t.to_pylist()}
    assert by_id == {0: "a", 1: "b", 2: "c", 3: "d", 4: "e"}
    assert [f["name"] for f in manifest.input["files"]] == ["part-0.parquet", "part-1.parquet"]


def test_files_with_the_same_columns_in_another_order_are_matched_by_name(tmp_path, table_writer, partition_reader):
    data = tmp_path / "data"
    table_writer(data / "a.csv", {"text": ["a", "b"], "label": [0, 1]})
    table_writer(data / "b.csv", {"label": [1, 0], "text": ["c", "d"]})
    out = tmp_path / "out"
    fedpart.partition(data, out=out, clients=2, label_col="label", plot=False)
    rows = sorted((r for t in partition_reader(out).clients for r in t.to_pylist()), key=lambda r: r["row_id"])
    assert [(r["text"], r["label"]) for r in rows] == [("a", 0), ("b", 1), ("c", 1), ("d", 0)]


def test_drop_null_labels_drops_and_counts_them(tmp_path, table_writer, partition_reader):
    labels = ["x", None, "y", "x", None, "y", "y", None, "x", "x"]
    path = table_writer(tmp_path / "in.parquet", {"text": [f"t{i}" for i in range(10)], "label": labels})
    with pytest.raises(fedpart.InputError, match=r"3 null value\(s\).*--drop-null-labels"):
        fedpart.partition(path, out=tmp_path / "refused", clients=2, label_col="label", plot=False)
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "out"
    # one-row batches: some batches are entirely null
    manifest = fedpart.partition(path, out=out, scheme="dirichlet", alpha=1.0, clients=2, label_col="label",
                                 drop_null_labels=True, read_options=ReadOptions(batch_rows=1), plot=False)
    assert manifest.rows == {"input": 10, "dropped_null": 3, "written": 7}
    ids = partition_reader(out).all_row_ids()
    assert sorted(ids) == [i for i, v in enumerate(labels) if v is not None], "row ids stay input positions"
    assert sum(sum(c.label_counts) for c in manifest.clients) == 7


def test_drop_null_labels_drops_rows_null_in_the_label_or_the_by_column(tmp_path, table_writer, partition_reader):
    n = 40
    labels = [None if i % 7 == 0 else i % 3 for i in range(n)]
    domains = [None if i % 5 == 1 else f"d{i % 4}" for i in range(n)]
    columns = {"text": [f"t{i}" for i in range(n)], "label": labels, "domain": domains}
    path = table_writer(tmp_path / "in.parquet", columns)
    with pytest.raises(fedpart.InputError, match="column 'domain' has 8 null"):
        fedpart.partition(path, out=tmp_path / "refused", scheme="dirichlet", alpha=1.0, clients=3,
                          label_col="label", by="domain", plot=False)
    out = tmp_path / "out"
    manifest = fedpart.partition(path, out=out, scheme="dirichlet", alpha=1.0, clients=3, label_col="label",
                                 by="domain", drop_null_labels=True, plot=False)
    kept = [i for i in range(n) if labels[i] is not None and domains[i] is not None]
    assert manifest.rows == {"input": n, "dropped_null": n - len(kept), "written": len(kept)}
    assert sorted(partition_reader(out).all_row_ids()) == kept
    assert sum(sum(c.key_counts) for c in manifest.clients) == len(kept)


def test_a_tiny_write_buffer_writes_the_same_rows(tmp_path, partition_reader):
    contents = []
    for name, buffer_bytes in (("big", 64 << 20), ("tiny", 1)):
        out = tmp_path / name
        manifest = fedpart.partition(
            FIXTURE, out=out, scheme="dirichlet", alpha=0.5, clients=4, label_col="label", test_frac=0.1,
            read_options=ReadOptions(column_names=AG.column_names, batch_rows=50), buffer_bytes=buffer_bytes,
            plot=False,
        )
        part = partition_reader(out)
        contents.append([t.to_pylist() for t in [*part.clients, part.test]])
        if name == "tiny":
            # every batch was flushed on its own: several row groups per shard
            assert max(pq.ParquetFile(out / c.file).num_row_groups for c in manifest.clients) > 1
    assert contents[0] == contents[1]


def test_load_client_in_every_format(tmp_path):
    out = tmp_path / "out"
    manifest = fedpart.partition(FIXTURE, out=out, scheme="dirichlet", alpha=1.0, clients=3, label_col="label",
                                 read_options=AG, plot=False)
    arrow = fedpart.load_client(out, 1, format="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == manifest.clients[1].rows
    assert arrow.column_names == ["label", "title", "description", "row_id"]
    ds = fedpart.load_client(out, 1)
    import datasets
    import polars as pl

    assert isinstance(ds, datasets.Dataset)
    assert ds.num_rows == arrow.num_rows and ds["row_id"] == arrow.column("row_id").to_pylist()
    frame = fedpart.load_client(out, 1, format="polars")
    assert isinstance(frame, pl.DataFrame)
    assert frame["title"].to_list() == arrow.column("title").to_pylist()
    with pytest.raises(fedpart.InputError, match="no client 3; clients are 0..2"):
        fedpart.load_client(out, 3)
    with pytest.raises(fedpart.InputError, match="unknown format 'pandas'"):
        fedpart.load_client(out, 0, format="pandas")
    with pytest.raises(fedpart.InputError, match="not a fedpart partition directory"):
        fedpart.load_client(tmp_path, 0)


def test_row_id_column_name_is_configurable_and_clashes_are_refused(tmp_path, table_writer, partition_reader):
    path = table_writer(tmp_path / "in.parquet", {"row_id": [10, 11, 12, 13], "label": [0, 1, 0, 1]})
    with pytest.raises(fedpart.InputError, match="already has a column 'row_id'.*--row-id-col"):
        fedpart.partition(path, out=tmp_path / "x", clients=2, plot=False)
    out = tmp_path / "out"
    fedpart.partition(path, out=out, clients=2, row_id_col="fp_id", plot=False)
    part = partition_reader(out)
    rows = [r for t in part.clients for r in t.to_pylist()]
    assert sorted(r["fp_id"] for r in rows) == [0, 1, 2, 3]
    assert all(r["row_id"] == 10 + r["fp_id"] for r in rows)


def test_hugging_face_local_folder_works_offline(tmp_path, table_writer, partition_reader):
    pytest.importorskip("datasets")
    folder = tmp_path / "hf_data"
    rows = {"text": [f"t{i}" for i in range(40)], "label": [i % 4 for i in range(40)]}
    table_writer(folder / "train.parquet", rows)
    out = tmp_path / "out"
    manifest = fedpart.partition("hf://" + str(folder), out=out, scheme="dirichlet", alpha=1.0, clients=3,
                                 label_col="label", read_options=ReadOptions(batch_rows=7), plot=False)
    part = partition_reader(out)
    assert manifest.input["kind"] == "huggingface" and manifest.input["name"] == str(folder)
    assert sorted(part.all_row_ids()) == list(range(40))
    expected = pa.table(rows).to_pylist()
    for table in part.clients:
        for row in table.to_pylist():
            assert {"text": row["text"], "label": row["label"]} == expected[row["row_id"]]
