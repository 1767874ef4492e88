"""QA pass on the Ray Data engine: relative input paths on workers started elsewhere, an input that
changes between the two passes, and bad ``piece_rows`` values.

Same local 2-CPU Ray as ``test_ray_engine.py``; skipped when Ray Data is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray.data")

from fedpart.augment import CounterfactualOptions  # noqa: E402
from fedpart.augment.files import augment_counterfactual  # noqa: E402
from fedpart.engine import partition  # noqa: E402
from fedpart.errors import InputError  # noqa: E402
from fedpart.manifest import Manifest  # noqa: E402

from conftest import read_partition, write_table  # noqa: E402


pytestmark = pytest.mark.usefixtures("local_ray")


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.choice(["sports", "world", "business"], n).astype(object)
    labels[rng.random(n) < 0.02] = None
    texts = [f"she told her son {i}" if i % 2 else f"he met his aunt {i}" for i in range(n)]
    return pa.table({"text": texts, "label": pa.array(labels, pa.string())})


def _same_clients(a: Path, b: Path) -> None:
    local, ray_run = read_partition(a), read_partition(b)
    assert [t.num_rows for t in local.clients] == [t.num_rows for t in ray_run.clients]
    for x, y in zip(local.clients, ray_run.clients):
        assert x.equals(y)
    assert local.test.equals(ray_run.test)
    assert local.manifest.rows == ray_run.manifest.rows


def test_relative_paths_work_when_ray_workers_run_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # This module's Ray started in another directory, so its workers' working directory is not this
    # one -- as with a cluster joined by --ray-address auto. Relative paths must still name the input.
    write_table(tmp_path / "in" / "a.parquet", _table(400), row_group_size=100)
    write_table(tmp_path / "in" / "b.parquet", _table(300, seed=1), row_group_size=100)
    monkeypatch.chdir(tmp_path)
    params = dict(scheme="dirichlet", alpha=0.5, clients=3, label_col="label", drop_null_labels=True,
                  test_frac=0.2, plot=False)
    partition("in", out="local", **params)
    manifest = partition("in", out="ray", engine="ray", piece_rows=200, **params)
    assert manifest.extra["engine"]["pieces"] == 4
    _same_clients(Path("local"), Path("ray"))
    assert manifest.input == Manifest.read("local").input  # files hashed in the tasks, named as locally
    # augment: a file cut into pieces, and a partition's part files, both by relative path
    options = CounterfactualOptions(task="tc", mode="cds", seed=1)
    augment_counterfactual("in/a.parquet", out="cf_local.parquet", options=options)
    augment_counterfactual("in/a.parquet", out="cf_ray", options=options, engine="ray", piece_rows=100)
    assert pq.read_table("cf_local.parquet").equals(pq.read_table("cf_ray"))
    augment_counterfactual("ray", out="ray_cf_local", options=options)
    augment_counterfactual("ray", out="ray_cf_ray", options=options, engine="ray")
    assert Path("ray_cf_local/manifest.json").read_text() == Path("ray_cf_ray/manifest.json").read_text()


def _change_between_passes(monkeypatch: pytest.MonkeyPatch, path: Path, changed: pa.Table) -> None:
    """Rewrite ``path`` with ``changed`` right after the Ray engine's pass 1."""
    from fedpart.raydata.partition import RayPasses

    count = RayPasses.count

    def count_then_change(self, *args):
        counted = count(self, *args)
        write_table(path, changed, row_group_size=100)
        return counted

    monkeypatch.setattr(RayPasses, "count", count_then_change)


@pytest.mark.parametrize("change", ["more null labels", "a label changed", "more null labels, grouped"])
def test_an_input_changed_between_the_passes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    # the same number of rows, so only checks piece by piece see it; the local engine refuses all
    # three (the second with a RuntimeError from RowAssigner)
    table = _table(1000, seed=2)
    grouped = change.endswith("grouped")
    if grouped:  # groups of 5 rows with one label each
        names = ["sports", "world", "business"]
        table = table.set_column(1, "label", pa.array([names[i // 5 % 3] for i in range(1000)]))
        table = table.append_column("group", pa.array(np.arange(1000) // 5))
    src = write_table(tmp_path / "in.parquet", table, row_group_size=100)
    labels = table.column("label").to_pylist()
    if change.startswith("more null labels"):
        labels[500:503] = [None] * 3
    else:
        labels[300] = "world" if labels[300] != "world" else "sports"
    _change_between_passes(monkeypatch, src, table.set_column(1, "label", pa.array(labels, pa.string())))
    with pytest.raises(InputError, match="the input changed between the two passes"):
        partition(src, out=tmp_path / "out", scheme="iid", clients=3, label_col="label", drop_null_labels=True,
                  group_col="group" if grouped else None, plot=False, engine="ray", piece_rows=200)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize("piece_rows", [0, -5, "100", 2.5, True])
def test_bad_piece_rows_is_a_one_line_error(tmp_path: Path, piece_rows: object) -> None:
    src = write_table(tmp_path / "in.parquet", _table(50), row_group_size=10)
    with pytest.raises(InputError, match="--piece-rows must be"):
        partition(src, out=tmp_path / "p", scheme="iid", clients=2, engine="ray", piece_rows=piece_rows)
    with pytest.raises(InputError, match="--piece-rows must be"):
        augment_counterfactual(src, out=tmp_path / "a", options=CounterfactualOptions(task="tc"), engine="ray",
                               piece_rows=piece_rows)
    assert not (tmp_path / "p").exists() and not (tmp_path / "a").exists()


def test_piece_rows_for_a_partition_input_is_refused_not_ignored(tmp_path: Path) -> None:
    # a partition is augmented one shard file per task: --piece-rows would change nothing
    from click.testing import CliRunner

    from fedpart.cli import main

    src = write_table(tmp_path / "in.parquet", _table(60), row_group_size=10)
    partition(src, out=tmp_path / "parts", scheme="iid", clients=2, plot=False)
    result = CliRunner().invoke(main, ["augment", "counterfactual", str(tmp_path / "parts"), "--out",
                                       str(tmp_path / "cf"), "--engine", "ray", "--piece-rows", "10"])
    assert result.exit_code == 2, result.output
    assert "--piece-rows applies to other inputs" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "cf").exists()


def test_augment_on_ray_refuses_a_hub_dataset_before_loading_it(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import fedpart.io.sources as sources
    from fedpart.cli import main

    def no_loading(*_: object, **__: object) -> None:
        raise AssertionError("the hub dataset was opened")

    monkeypatch.setattr(sources.HFSource, "__post_init__", no_loading)
    result = CliRunner().invoke(main, ["augment", "counterfactual", "hf://ag_news", "--engine", "ray",
                                       "--out", str(tmp_path / "x.parquet"), "--spacy-model", "none"])
    assert result.exit_code == 2 and "--engine ray reads local files" in result.output, result.output


def test_invalid_rows_in_several_pieces_are_reported_as_by_the_local_engine(tmp_path: Path) -> None:
    import json

    data = tmp_path / "st"
    data.mkdir()
    bad = {5, 150, 151, 290}  # tags shorter than tokens, in both files
    for name, rows in (("a.jsonl", range(0, 100)), ("b.jsonl", range(100, 300))):
        (data / name).write_text("".join(
            json.dumps({"tokens": ["She", "ran", str(i)], "tags": ["O"] if i in bad else ["O", "O", "O"]}) + "\n"
            for i in rows), encoding="utf-8")
    messages = []
    for engine in ("local", "ray"):
        with pytest.raises(InputError) as caught:
            partition(data, task="st", scheme="iid", clients=2, plot=False, engine=engine, out=tmp_path / engine)
        messages.append(str(caught.value))
        assert not (tmp_path / engine).exists()
    assert messages[0] == messages[1]
    assert "4 row(s) have tokens and tags of different lengths (first: row 5:" in messages[1]
