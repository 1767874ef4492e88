"""Seventh QA pass of `fedpart partition`, `stats` and `convert`: unusual column types (nested group
columns, dictionary-encoded floats, Arrow view and extension types, nested text to cluster), plots of
many labels and of labels matplotlib misreads, blank files in a directory, Arrow IPC streams, JSON/CSV
values Arrow reads otherwise than expected, refusals with a test split or an impossible minimum, column
checks before the clustering pass, and an uncreatable convert output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.errors import PlanError
from fedpart.manifest import Manifest, ShardRecord
from conftest import assert_refused  # noqa: E402


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def read_row_ids(directory: Path) -> list[int]:
    manifest = json.loads((directory / "manifest.json").read_text())
    records = manifest["clients"] + ([manifest["test"]] if manifest["test"] else [])
    return sorted(i for r in records for i in pq.read_table(directory / r["file"])["row_id"].to_pylist())


# --- column types ------------------------------------------------------------------------------------

@pytest.mark.parametrize("group", [[[i % 5] for i in range(40)], [{"doc": i % 5} for i in range(40)]],
                         ids=["list", "struct"])
def test_a_nested_group_column_is_refused_in_one_line(tmp_path, group):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"label": [i % 5 for i in range(40)], "doc": group}), path)
    out = tmp_path / "out"
    result = cli("partition", path, "--label-col", "label", "--group-col", "doc", "--clients", "2", "--out", out)
    assert_refused(result, "in.parquet", "'doc'", "--group-col", out=out)  # was: internal error, exit 1


def test_a_dictionary_encoded_float_label_is_refused_like_a_float_label(tmp_path):
    path = tmp_path / "in.arrow"
    label = pa.array([float(i % 3) for i in range(30)])
    feather.write_feather(pa.table({"label": label.dictionary_encode(), "x": list(range(30))}), path)
    assert pa.types.is_dictionary(feather.read_table(path).schema.field("label").type)
    out = tmp_path / "out"
    result = cli("partition", path, "--label-col", "label", "--clients", "2", "--out", out)
    assert_refused(result, "'label'", "double", "categorical", out=out)
    # a dictionary of strings is still a categorical label
    feather.write_feather(pa.table({"label": pa.array(["a", "b", "c"] * 10).dictionary_encode()}), path)
    assert cli("partition", path, "--label-col", "label", "--clients", "2", "--out", out, "-q").exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["labels"] == ["a", "b", "c"]


def test_arrow_files_with_view_types_are_partitioned(tmp_path):
    """polars' write_ipc writes string_view columns; most Arrow kernels have none for them."""
    n = 30
    table = pa.table({
        "label": pa.array([f"v{i % 3}" for i in range(n)], pa.string_view()),
        "text": pa.array([f"some text {i}" for i in range(n)], pa.string_view()),
        "raw": pa.array([bytes([i]) for i in range(n)], pa.binary_view()),
        "tokens": pa.array([["a", f"b{i % 3}"] for i in range(n)], pa.list_(pa.string_view())),
        "meta": pa.array([{"q": str(i)} for i in range(n)], pa.struct([("q", pa.string_view())])),
        "spans": pa.array([["x"] * (i % 4) for i in range(n)], pa.list_view(pa.string())),
    })
    path = tmp_path / "polars.arrow"
    feather.write_feather(table, path)
    out = tmp_path / "out"
    result = cli("partition", path, "--label-col", "label", "--scheme", "dirichlet", "--alpha", "1",
                 "--clients", "3", "--out", out, "-q")
    assert result.exit_code == 0, result.output  # was: internal error (no array_sort_indices for string_view)
    assert json.loads((out / "manifest.json").read_text())["labels"] == ["v0", "v1", "v2"]
    rows = pa.concat_tables(pq.read_table(p) for p in sorted((out / "clients").iterdir())).sort_by("row_id")
    assert rows["row_id"].to_pylist() == list(range(n))
    for name in table.column_names:  # every value comes through
        assert rows[name].to_pylist() == table[name].to_pylist(), name
    for args in (["--task", "tc", "--text-col", "text"],  # was: "text column 'text' has type string_view"
                 ["--scheme", "cluster", "--text-col", "tokens", "--clusters", "2", "--alpha", "1"]):
        result = cli("partition", path, *args, "--clients", "2", "--out", tmp_path / "o2", "-q", "--overwrite")
        assert result.exit_code == 0, (args, result.output)
        assert read_row_ids(tmp_path / "o2") == list(range(n))


def test_an_extension_typed_id_column_is_a_key(tmp_path):
    import uuid

    if not hasattr(pa, "uuid"):
        pytest.skip("pyarrow < 18 has no arrow.uuid type")

    ids = [uuid.UUID(int=i % 4) for i in range(40)]
    users = pa.ExtensionArray.from_storage(pa.uuid(), pa.array([u.bytes for u in ids], pa.binary(16)))
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"user": users, "label": [i % 2 for i in range(40)]}), path)
    out = tmp_path / "out"
    result = cli("partition", path, "--scheme", "natural", "--by", "user", "--label-col", "label", "--out", out, "-q")
    assert result.exit_code == 0, result.output  # was: internal error (no value_counts kernel for arrow.uuid)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["keys"] == [str(uuid.UUID(int=i)) for i in range(4)]
    for client in range(4):  # one client per id, holding all of that id's rows
        shard = pq.read_table(out / "clients" / f"client-{client:05d}.parquet")
        assert shard["user"].to_pylist() == [uuid.UUID(int=client)] * 10
    assert read_row_ids(out) == list(range(40))
    result = cli("partition", path, "--label-col", "user", "--scheme", "dirichlet", "--alpha", "1", "--clients", "2",
                 "--out", tmp_path / "o2", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o2" / "manifest.json").read_text())["labels"] == manifest["keys"]


def test_cluster_refuses_a_nested_text_column_and_takes_token_lists(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({
        "meta": [{"a": i} for i in range(40)],
        "tokens": [["word", f"w{i % 4}", "more"] for i in range(40)],
    }), path)
    out = tmp_path / "out"
    args = ["--scheme", "cluster", "--clusters", "2", "--alpha", "1", "--clients", "2", "--out", out]
    result = cli("partition", path, "--text-col", "meta", *args)
    assert_refused(result, "'meta'", "struct", "--text-col", out=out)  # was: internal error, exit 1
    assert cli("partition", path, "--text-col", "tokens", *args, "-q").exit_code == 0
    assert read_row_ids(out) == list(range(40))


# --- the label plot -------------------------------------------------------------------------------

def test_the_plot_draws_at_most_twenty_labels_and_folds_the_rest(tmp_path, monkeypatch):
    from fedpart import stats

    drawn = {}

    def keep_figure(fig, path, flag="--plot"):
        top = fig.axes[0]
        drawn["patches"] = len(top.patches)
        drawn["legend"] = [t.get_text() for t in top.get_legend().get_texts()]
        drawn["heights"] = np.zeros(3)
        for patch in top.patches:  # stacked bars: the top of each client's stack is its size
            x = int(round(patch.get_x() + patch.get_width() / 2))
            drawn["heights"][x] = max(drawn["heights"][x], patch.get_y() + patch.get_height())
        Path(path).write_bytes(b"")

    monkeypatch.setattr(stats, "save_figure", keep_figure)
    n_labels = 200
    counts = [[1] * n_labels, [2] * n_labels, [0] * n_labels]
    counts[0][7] = 50  # the most frequent labels keep their own band
    counts[1][150] = 40
    long_name = "x" * 500
    labels = [f"l{i}" for i in range(n_labels - 1)] + [long_name]
    clients = [ShardRecord(c, f"clients/client-{c:05d}.parquet", sum(row), "0" * 64, label_counts=row)
               for c, row in enumerate(counts)]
    manifest = Manifest("0", {}, "iid", {"num_clients": 3}, 0, 0.0, "label", "label", "row_id", {},
                        labels, None, clients, None, {})
    assert stats.write_label_plot(manifest, tmp_path) == tmp_path / stats.PLOT_FILE
    # was: one artist per label (hours for 50,000 labels) and no legend above 30 labels
    assert drawn["patches"] == 3 * stats.MAX_PLOT_LABELS == 60
    assert len(drawn["legend"]) == 20 and drawn["legend"][-1] == "other (181 labels)"
    assert "l7" in drawn["legend"] and "l150" in drawn["legend"]
    assert all(len(name) <= stats.MAX_LEGEND_NAME for name in drawn["legend"])
    np.testing.assert_allclose(drawn["heights"], [sum(row) for row in counts])  # no row lost


def test_every_label_value_gets_a_literal_legend_entry(tmp_path, monkeypatch):
    """matplotlib parses "$...$" as mathtext (and fails on "$x^$") and leaves out legend entries that
    start with "_" (fastText's "__label__pos")."""
    from fedpart import stats

    legends = []
    original = stats.save_figure

    def keep_legend(fig, path, flag="--plot"):
        legends.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        return original(fig, path, flag)

    monkeypatch.setattr(stats, "save_figure", keep_legend)
    path = tmp_path / "in.parquet"
    values = ["$x^$", "$\\frac{", "__label__pos", "_neg", ""]
    pq.write_table(pa.table({"label": values * 6}), path)
    out = tmp_path / "out"
    result = cli("partition", path, "--label-col", "label", "--clients", "2", "--out", out, "-q")
    assert result.exit_code == 0, result.output  # was: internal error, mathtext ParseSyntaxException
    assert (out / "label_distribution.png").stat().st_size > 0
    labels = json.loads((out / "manifest.json").read_text())["labels"]
    assert labels == sorted(values)
    assert legends == [['""', r"\$\frac{", r"\$x^\$", "__label__pos", "_neg"]]  # "\$": a dollar sign


def test_fold_rare_labels_keeps_every_clients_total():
    from fedpart.stats import fold_rare_labels

    counts = np.array([[5, 0, 1, 3], [0, 4, 1, 0]], dtype=np.float64)
    folded, names = fold_rare_labels(counts, ["a", "b", "c", "d"], max_labels=3)
    assert names == ["a", "b", "other (2 labels)"]
    np.testing.assert_array_equal(folded, [[5, 0, 4], [0, 4, 1]])
    same, same_names = fold_rare_labels(counts, ["a", "b", "c", "d"], max_labels=4)
    assert same is counts and same_names == ["a", "b", "c", "d"]


# --- inputs -----------------------------------------------------------------------------------------

def test_blank_text_files_in_a_directory_hold_no_rows(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.jsonl").write_bytes(b"")  # e.g. empty partitions written by a Spark job
    (data / "part-1.jsonl").write_text('{"label": "a", "text": "x"}\n{"label": "b", "text": "y"}\n')
    (data / "part-2.jsonl").write_text("\n")
    (data / "part-3.jsonl").write_text('{"label": "a", "text": "z"}\n')
    out = tmp_path / "out"
    result = cli("partition", data, "--label-col", "label", "--clients", "2", "--out", out, "-q")
    assert result.exit_code == 0, result.output  # was: "part-0.jsonl: cannot be read (Empty JSON stream)"
    assert read_row_ids(out) == [0, 1, 2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["name"] for f in manifest["input"]["files"]] == [f"part-{i}.jsonl" for i in range(4)]
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "a.csv").write_text("label,text\na,x\nb,y\n")
    (csv_dir / "b.csv").write_bytes(b"")
    assert cli("partition", csv_dir, "--label-col", "label", "--clients", "2", "--out", tmp_path / "o2",
               "-q").exit_code == 0
    assert read_row_ids(tmp_path / "o2") == [0, 1]
    # only blank files: refused as an empty input
    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "a.csv").write_bytes(b"")
    (blank / "b.csv").write_bytes(b"")
    assert_refused(cli("partition", blank, "--clients", "1", "--out", tmp_path / "o3"),
                   "blank: the input is empty (all 2 files are blank)")


def test_an_arrow_ipc_stream_is_named_as_such(tmp_path):
    path = tmp_path / "data-00000-of-00001.arrow"  # what datasets' save_to_disk writes
    table = pa.table({"label": [0, 1] * 5, "text": ["t"] * 10})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    out = tmp_path / "out"
    result = cli("partition", path, "--label-col", "label", "--clients", "2", "--out", out)
    assert_refused(result, "data-00000-of-00001.arrow", "Arrow IPC stream", "to_parquet", out=out)
    assert "pass --format" not in result.output  # was: "check that the file is a valid ... or pass --format"


def test_a_json_lines_number_field_turning_decimal_names_the_value(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text('{"label": "a", "score": 1}\n{"label": "b", "score": 2}\n')
    (data / "b.jsonl").write_text('{"label": "a", "score": 2.5}\n')
    out = tmp_path / "out"
    result = cli("partition", data, "--label-col", "label", "--clients", "2", "--out", out)
    line = assert_refused(result, "b.jsonl", "int64", "2.5", "1.0", out=out)
    assert "pass --format" not in line


def test_csv_rows_of_another_width_say_what_to_fix(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("label,text\na,x\nb,x,extra\n")
    result = cli("partition", ragged, "--label-col", "label", "--clients", "2", "--out", tmp_path / "o")
    line = assert_refused(result, "ragged.csv", "cannot be read", "Expected 2 columns", "quoted")
    assert "pass --format" not in line
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("1,title,description\n2,title,description\n")
    result = cli("partition", headerless, "--column-names", "label,title", "--label-col", "label",
                 "--clients", "2", "--out", tmp_path / "o")
    assert_refused(result, "--column-names names 2 columns")
    result = cli("partition", headerless, "--column-names", "label,label,description", "--label-col", "label",
                 "--clients", "2", "--out", tmp_path / "o")
    assert_refused(result, "--column-names names two columns 'label'")


# --- plans and outputs ----------------------------------------------------------------------------

def test_plan_refusals_with_a_test_split_count_the_rows_left(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"label": ["x", "y"] * 5}), path)
    with pytest.raises(PlanError, match=r"8 rows left after --test-frac 0.2 held out 2 of 10"):
        fedpart.partition(path, out=tmp_path / "o", scheme="dirichlet", alpha=1.0, clients=5,
                          min_client_size=2, label_col="label", test_frac=0.2)
    result = cli("partition", path, "--label-col", "label", "--clients", "9", "--test-frac", "0.2",
                 "--out", tmp_path / "o")
    assert_refused(result, "--clients 9 exceeds the 8 rows", "--test-frac 0.2 held out 2 of 10", out=tmp_path / "o")
    # without a test split the message is as before
    with pytest.raises(PlanError) as error:
        fedpart.partition(path, out=tmp_path / "o", clients=11, label_col="label")
    assert "--test-frac" not in str(error.value)


def test_convert_to_an_uncreatable_path_is_an_output_error(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a", "label": 0}\n')
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in (blocker / "x.parquet", blocker / "sub" / "x.parquet"):
        result = cli("convert", source, "--task", "tc", "--out", out)
        assert_refused(result, str(out), "cannot be created", "--out")  # was: internal error, exit 1


@pytest.mark.parametrize("scheme", [["iid"], ["dirichlet", "--alpha", "1"], ["quantity", "--alpha", "1"]])
def test_a_minimum_above_all_rows_never_advises_zero_clients(tmp_path, scheme):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"label": ["x", "y"] * 5}), path)
    result = cli("partition", path, "--label-col", "label", "--scheme", *scheme, "--clients", "3",
                 "--min-client-size", "40", "--out", tmp_path / "o")
    line = assert_refused(result, "--min-client-size 3 or fewer", out=tmp_path / "o")
    assert "at most 0 clients" not in line  # was: "use at most 0 clients" (iid, dirichlet)
    # when a client of that size fits, fewer clients are suggested too
    result = cli("partition", path, "--label-col", "label", "--scheme", *scheme, "--clients", "3",
                 "--min-client-size", "4", "--out", tmp_path / "o")
    assert_refused(result, "--min-client-size 3 or fewer", out=tmp_path / "o")


@pytest.mark.parametrize("option", [{"label_col": "nosuch"}, {"group_col": "nosuch"}, {"row_id_col": "text"}])
def test_cluster_checks_the_other_columns_before_its_clustering_pass(tmp_path, monkeypatch, option):
    from fedpart.clustering import TextClusterer
    from fedpart.errors import InputError

    def no_fit(self, batches):
        raise AssertionError("pass 0 ran before the columns were checked")

    monkeypatch.setattr(TextClusterer, "fit", no_fit)
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"text {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}), path)
    with pytest.raises(InputError) as error:
        fedpart.partition(path, out=tmp_path / "o", scheme="cluster", clusters=2, alpha=1.0, clients=2,
                          text_col="text", **option)
    message = str(error.value)
    assert "columns are:" not in message or message.endswith("columns are: text, label")  # no derived "cluster"
