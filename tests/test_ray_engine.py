"""The Ray Data engine (``--engine ray``) against the local engine, on a local 2-CPU Ray.

Same input, parameters and seed must give every row the same client as the local engine; a client
is then a directory of part files whose rows, read in order, equal the local shard. Skipped when
Ray Data is not installed (``make test`` installs it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

pytest.importorskip("ray.data")

from fedpart.augment import CounterfactualOptions, SwapperConfig  # noqa: E402
from fedpart.augment.files import augment_counterfactual  # noqa: E402
from fedpart.cli import main  # noqa: E402
from fedpart.engine import partition  # noqa: E402
from fedpart.errors import InputError  # noqa: E402
from fedpart.io.sources import ReadOptions  # noqa: E402
from fedpart.manifest import Manifest, parts_digest  # noqa: E402

from conftest import AG_NEWS_COLUMNS, AG_NEWS_CSV, read_partition, write_table  # noqa: E402


pytestmark = pytest.mark.usefixtures("local_ray")


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.choice(["sports", "world", "business", "sci"], n, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    labels[rng.random(n) < 0.02] = None  # a few null labels, dropped with drop_null_labels
    return pa.table({
        "text": [f"text of row {i}" for i in range(n)],
        "label": pa.array(labels, pa.string()),
        "user": rng.integers(0, 40, n),
    })


def _assert_same_partition(local_dir: Path, ray_dir: Path) -> None:
    local, ray_run = read_partition(local_dir), read_partition(ray_dir)
    assert len(local.clients) == len(ray_run.clients)
    for client, (a, b) in enumerate(zip(local.clients, ray_run.clients)):
        assert a.equals(b), f"client {client} differs"
    assert (local.test is None) == (ray_run.test is None)
    if local.test is not None:
        assert local.test.equals(ray_run.test)
    m_local, m_ray = local.manifest.to_dict(), ray_run.manifest.to_dict()
    for key in ("rows", "labels", "keys", "metrics", "params", "seed", "input"):
        assert m_local[key] == m_ray[key], key
    for a, b in zip(m_local["clients"], m_ray["clients"]):
        assert (a["rows"], a["label_counts"], a["key_counts"]) == (b["rows"], b["label_counts"], b["key_counts"])


def _assert_parts_checksummed(directory: Path, manifest: Manifest) -> None:
    records = manifest.clients + ([manifest.test] if manifest.test else [])
    for record in records:
        assert record.parts, record.file
        assert (directory / record.file).is_dir()
        for part in record.parts:
            data = (directory / part["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == part["sha256"]
            assert pq.read_metadata(directory / part["file"]).num_rows == part["rows"]
        assert sum(p["rows"] for p in record.parts) == record.rows
        assert record.sha256 == parts_digest(record.parts)


def test_parquet_pieces_give_the_local_assignment(tmp_path: Path) -> None:
    src = write_table(tmp_path / "in.parquet", _table(3000), row_group_size=250)
    params = dict(scheme="dirichlet", alpha=0.3, clients=6, label_col="label", test_frac=0.1, seed=3,
                  drop_null_labels=True, plot=False)
    partition(src, out=tmp_path / "local", **params)
    manifest = partition(src, out=tmp_path / "ray", engine="ray", piece_rows=700, **params)
    assert manifest.extra["engine"] == {"name": "ray", "pieces": 4}  # 12 row groups of 250, >= 700 rows each
    _assert_same_partition(tmp_path / "local", tmp_path / "ray")
    _assert_parts_checksummed(tmp_path / "ray", manifest)
    assert max(len(c.parts) for c in manifest.clients) > 1  # clients really are spread over pieces
    ids = read_partition(tmp_path / "ray").all_row_ids()
    assert len(ids) == len(set(ids)) == manifest.rows["input"] - manifest.rows["dropped_null"]


def test_csv_files_natural_ids_and_label_count(tmp_path: Path) -> None:
    table = _table(900, seed=1).drop_columns(["label"]).append_column("label", pa.array(np.arange(900) % 5))
    for i in range(3):
        write_table(tmp_path / "in" / f"part{i}.csv", table.slice(300 * i, 300))
    for name, params in {
        "natural": dict(scheme="natural", by="user", clients=5),
        "label_count": dict(scheme="label-count", labels_per_client=2, clients=4, label_col="label"),
    }.items():
        partition(tmp_path / "in", out=tmp_path / f"{name}_local", plot=False, **params)
        manifest = partition(tmp_path / "in", out=tmp_path / f"{name}_ray", engine="ray", plot=False, **params)
        assert manifest.extra["engine"]["pieces"] == 3  # one piece per CSV file
        _assert_same_partition(tmp_path / f"{name}_local", tmp_path / f"{name}_ray")


def test_task_input_with_dropped_invalid_rows_keeps_input_row_ids(tmp_path: Path) -> None:
    # tc rows with an empty text are invalid: dropped rows still take row ids, in every piece
    rows = pa.table({"text": [("" if i % 7 == 0 else f"t{i}") for i in range(400)], "label": [i % 3 for i in range(400)]})
    for i in range(2):
        write_table(tmp_path / "in" / f"f{i}.jsonl", rows.slice(200 * i, 200))
    params = dict(task="tc", scheme="iid", clients=3, drop_invalid=True, plot=False)
    partition(tmp_path / "in", out=tmp_path / "local", **params)
    manifest = partition(tmp_path / "in", out=tmp_path / "ray", engine="ray", **params)
    _assert_same_partition(tmp_path / "local", tmp_path / "ray")
    assert manifest.rows["dropped_invalid"] == len(range(0, 400, 7))
    ids = sorted(read_partition(tmp_path / "ray").all_row_ids())
    assert ids == [i for i in range(400) if i % 7]


def test_ray_output_is_reproducible_and_loads(tmp_path: Path) -> None:
    import fedpart

    src = write_table(tmp_path / "in.parquet", _table(1200, seed=2), row_group_size=200)
    params = dict(scheme="quantity", alpha=1.0, clients=4, label_col="label", drop_null_labels=True,
                  engine="ray", piece_rows=400)
    partition(src, out=tmp_path / "a", **params)
    partition(src, out=tmp_path / "b", **params)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = Manifest.read(tmp_path / "a")
    for client in range(4):
        arrow = fedpart.load_client(tmp_path / "a", client, format="arrow")
        assert arrow.num_rows == manifest.clients[client].rows
        assert fedpart.load_client(tmp_path / "a", client, format="polars").height == arrow.num_rows
        assert len(fedpart.load_client(tmp_path / "a", client)) == arrow.num_rows
    # partition(buffer_bytes=) reaches the Ray tasks: every read batch is flushed as its own row group
    batches = ReadOptions(batch_rows=50)
    partition(src, out=tmp_path / "batched", read_options=batches, **params)
    partition(src, out=tmp_path / "tiny", read_options=batches, buffer_bytes=1, **params)
    _assert_same_partition(tmp_path / "a", tmp_path / "tiny")

    def row_groups(out: Path) -> int:
        return sum(pq.ParquetFile(p).num_row_groups for p in out.rglob("*.parquet"))

    assert row_groups(tmp_path / "tiny") > row_groups(tmp_path / "batched") == row_groups(tmp_path / "a")
    with pytest.raises(InputError, match="buffer_bytes must be at least 1, got 0"):
        partition(src, out=tmp_path / "zero", buffer_bytes=0, **params)


def test_augment_on_ray_matches_local(tmp_path: Path) -> None:
    texts = [f"she told her son {i}" if i % 2 else f"he met his aunt {i}" for i in range(600)]
    src = write_table(tmp_path / "in.parquet", {"text": texts, "label": [i % 2 for i in range(600)]}, row_group_size=100)
    options = CounterfactualOptions(task="tc", mode="cds", p=0.5, seed=1)
    local = augment_counterfactual(src, out=tmp_path / "cf_local.parquet", options=options)
    remote = augment_counterfactual(src, out=tmp_path / "cf_ray", options=options, engine="ray", piece_rows=150)
    assert len(list((tmp_path / "cf_ray").glob("part-*.parquet"))) == 3
    assert pq.read_table(tmp_path / "cf_local.parquet").equals(pq.read_table(tmp_path / "cf_ray"))
    assert local.to_dict() == remote.to_dict()
    # a partition written by the Ray engine, augmented by both engines: the same directory
    partition(src, out=tmp_path / "parts", scheme="iid", clients=3, test_frac=0.2, engine="ray", piece_rows=200)
    augment_counterfactual(tmp_path / "parts", out=tmp_path / "aug_local", options=options)
    augment_counterfactual(tmp_path / "parts", out=tmp_path / "aug_ray", options=options, engine="ray")
    assert (tmp_path / "aug_local" / "manifest.json").read_text() == (tmp_path / "aug_ray" / "manifest.json").read_text()
    augmented = Manifest.read(tmp_path / "aug_ray")
    _assert_parts_checksummed(tmp_path / "aug_ray", augmented)
    assert augmented.test.rows == Manifest.read(tmp_path / "parts").test.rows


def test_augment_keep_proper_names_reaches_the_ray_workers(tmp_path: Path) -> None:
    texts = [f"Larry King asked her about Spider-Man {i}" for i in range(300)]
    src = write_table(tmp_path / "in.parquet", {"text": texts, "label": [0] * 300}, row_group_size=100)
    options = CounterfactualOptions(task="tc", swapper=SwapperConfig(keep_proper_names=True))
    augment_counterfactual(src, out=tmp_path / "local.parquet", options=options)
    augment_counterfactual(src, out=tmp_path / "ray", options=options, engine="ray", piece_rows=100)
    swapped = pq.read_table(tmp_path / "ray").column("text").to_pylist()
    assert swapped == pq.read_table(tmp_path / "local.parquet").column("text").to_pylist()
    assert swapped == [f"Larry King asked him about Spider-Man {i}" for i in range(300)]
    augment_counterfactual(src, out=tmp_path / "default", options=CounterfactualOptions(task="tc"), engine="ray",
                           piece_rows=100)
    assert pq.read_table(tmp_path / "default").column("text")[0].as_py() == "Larry Queen asked him about Spider-Woman 0"


def test_augment_directory_on_ray_matches_local(tmp_path: Path) -> None:
    # a directory of plain files: the local engine writes one file per input file, Ray one per piece;
    # both number rows across the files (cf_of, cds draws) as `partition` numbers them (row_id)
    for name, n in (("a.parquet", 1700), ("b.parquet", 1300)):
        texts = [f"she told her son {name} {i}" if i % 2 else f"he met his aunt {name} {i}" for i in range(n)]
        data = {"text": texts, "label": [i % 2 for i in range(n)], "user": [i % 7 for i in range(n)]}
        write_table(tmp_path / "in" / name, data, row_group_size=250)
    options = CounterfactualOptions(task="tc", mode="cds", p=0.5, seed=0)
    local = augment_counterfactual(tmp_path / "in", out=tmp_path / "local", options=options)
    remote = augment_counterfactual(tmp_path / "in", out=tmp_path / "ray", options=options, engine="ray",
                                    piece_rows=1000)
    rows = {}
    for engine in ("local", "ray"):
        table = pq.read_table(tmp_path / engine).to_pylist()
        rows[engine] = {r["cf_of"]: r for r in table}
        assert len(rows[engine]) == len(table) == 3000  # cf_of unique across the files
    assert sorted(rows["local"]) == list(range(3000))
    assert rows["local"] == rows["ray"]  # same rows swapped, same texts
    assert local.to_dict() == remote.to_dict()


def test_cli_engine_ray_and_its_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, [
        "partition", str(AG_NEWS_CSV), "--column-names", ",".join(AG_NEWS_COLUMNS), "--label-col", "label",
        "--scheme", "dirichlet", "--alpha", "0.5", "--clients", "4", "--out", str(tmp_path / "p"),
        "--engine", "ray", "--quiet", "--no-plot",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["extra"]["engine"]["name"] == "ray"
    bad = {
        "hf input": ["partition", "hf://ag_news", "--clients", "2", "--out", str(tmp_path / "x"), "--engine", "ray"],
        "cluster": ["partition", str(AG_NEWS_CSV), "--column-names", ",".join(AG_NEWS_COLUMNS), "--text-col",
                    "title", "--scheme", "cluster", "--alpha", "1", "--clusters", "2", "--clients", "2", "--out", str(tmp_path / "x"),
                    "--engine", "ray"],
        "address without ray": ["partition", str(AG_NEWS_CSV), "--column-names", ",".join(AG_NEWS_COLUMNS),
                                "--out", str(tmp_path / "x"), "--clients", "2", "--ray-address", "auto"],
        "workers with ray": ["augment", "counterfactual", str(AG_NEWS_CSV), "--column-names",
                             ",".join(AG_NEWS_COLUMNS), "--text-col", "title", "--out", str(tmp_path / "x"),
                             "--engine", "ray", "--workers", "2"],
    }
    expected = {"hf input": "local files", "cluster": "--engine local only",
                "address without ray": "--engine ray only", "workers with ray": "--workers applies"}
    for name, args in bad.items():
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (name, result.output)
        assert expected[name] in result.output, (name, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_missing_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from fedpart.raydata.session import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'fedpart\[ray\]'"):
        import_ray()


def test_fedpart_train_reads_a_ray_partition(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.runner import train

    partition(AG_NEWS_CSV, out=tmp_path / "p", read_options=_ag_news_read(), task="tc", label_col="label", text_col=["title", "description"],
              scheme="iid", clients=3, test_frac=0.2, engine="ray", plot=False)
    records = train(tmp_path / "p", task="tc", out=tmp_path / "run",
                    config=FederatedConfig(rounds=1, clients_per_round=2, batch_size=16), device="cpu")
    assert records[-1]["round"] == 1
    assert 0.0 <= records[-1]["metrics"]["accuracy"] <= 1.0


def _ag_news_read():
    from fedpart.io.sources import ReadOptions

    return ReadOptions(column_names=AG_NEWS_COLUMNS)


def test_a_bad_file_fails_in_its_task_with_fedparts_message(tmp_path: Path) -> None:
    good = pa.table({"text": ["a", "b"], "label": [0, 1]})
    write_table(tmp_path / "in" / "a.csv", good)
    (tmp_path / "in" / "b.csv").write_text('text,label\n"unterminated,1\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"b\.csv: cannot be read"):
        partition(tmp_path / "in", out=tmp_path / "out", scheme="iid", clients=2, engine="ray")
    assert not (tmp_path / "out").exists()


def test_part_writer_flushes_keep_rows_in_order_and_checksums_true(tmp_path: Path) -> None:
    from fedpart.raydata.parts import PartWriter

    schema = pa.schema([("x", pa.int64())])
    rng = np.random.default_rng(0)
    batches = [pa.record_batch([pa.array(np.arange(i * 50, i * 50 + 50))], schema=schema) for i in range(6)]
    destinations = [rng.integers(-1, 4, 50) for _ in batches]
    results = {}
    for name, buffer in (("flushing", 1), ("in_memory", 1 << 30)):
        writer = PartWriter(tmp_path / name, 3, schema, buffer_bytes=buffer)
        for batch, dest in zip(batches, destinations):
            writer.write(batch, dest)
        results[name] = writer.close()
    assert [(p.destination, p.file, p.rows) for p in results["flushing"]] == \
        [(p.destination, p.file, p.rows) for p in results["in_memory"]]
    every = np.concatenate(destinations)
    for part in results["flushing"]:
        assert part.file.endswith("part-00003.parquet")
        expected = np.flatnonzero(every == part.destination)  # x is the row's position
        for name in results:
            path = tmp_path / name / part.file
            assert pq.read_table(path).column("x").to_pylist() == expected.tolist()
        assert pq.read_metadata(tmp_path / "flushing" / part.file).num_row_groups == 6
        for name, parts in results.items():
            digest = next(p.sha256 for p in parts if p.destination == part.destination)
            assert hashlib.sha256((tmp_path / name / part.file).read_bytes()).hexdigest() == digest
