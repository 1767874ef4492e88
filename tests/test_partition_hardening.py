"""Edges found by an exploratory QA pass of `fedpart partition`, `convert` and `stats`: inputs and
outputs that used to be mishandled silently or with an internal error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.errors import InputError
from fedpart.manifest import Manifest
from fedpart.partitioners import make_partitioner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS_CSV = FIXTURES / "ag_news" / "sample.csv"
AG = ["--task", "tc", "--column-names", "label,title,description"]
DIALOGSUM = FIXTURES / "dialogsum" / "sample.jsonl"


def cli(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args])


def read_rows(out: Path) -> list[dict]:
    return [row for shard in sorted((out / "clients").glob("*.parquet")) for row in pq.read_table(shard).to_pylist()]


def test_tsv_fields_starting_with_a_quote_are_text(tmp_path):
    # TSV has no quoting: a leading '"' used to open a quoted field that swallowed the next rows
    path = tmp_path / "q.tsv"
    path.write_text('label\ttext\n1\ta "q" b\n2\t"start quote\n1\tc\n', encoding="utf-8")
    result = cli(["partition", path, "--label-col", "label", "--clients", "2", "--out", tmp_path / "o", "-q"])
    assert result.exit_code == 0, result.output
    rows = sorted(read_rows(tmp_path / "o"), key=lambda r: r["row_id"])
    assert [r["text"] for r in rows] == ['a "q" b', '"start quote', "c"]
    assert [r["label"] for r in rows] == [1, 2, 1]


def test_convert_refuses_to_overwrite_its_input(tmp_path):
    data = tmp_path / "x.jsonl"
    shutil.copy(DIALOGSUM, data)
    table = tmp_path / "x.parquet"
    assert cli(["convert", data, "--task", "s2s", "--out", table]).exit_code == 0
    before = table.read_bytes()
    result = cli(["convert", table, "--task", "s2s", "--out", table, "--overwrite"])
    assert result.exit_code == 2 and "is or contains the input" in result.output
    assert table.read_bytes() == before
    folder = tmp_path / "folder"
    folder.mkdir()
    result = cli(["convert", data, "--task", "s2s", "--out", folder, "--overwrite"])
    assert result.exit_code == 2 and "is a directory" in result.output
    assert list(folder.iterdir()) == []
    shutil.copy(DIALOGSUM, folder / "in.jsonl")  # nor inside an input directory
    result = cli(["convert", folder, "--task", "s2s", "--out", folder / "out.parquet"])
    assert result.exit_code == 2 and "lies inside the input directory" in result.output
    result = cli(["convert", data, "--task", "s2s", "--out", tmp_path / "x.csv"])
    assert result.exit_code == 2 and "*.parquet" in result.output and not (tmp_path / "x.csv").exists()
    parts = tmp_path / "p"
    fedpart.partition(data, task="s2s", clients=2, out=parts, plot=False)
    result = cli(["convert", parts, "--task", "s2s", "--out", tmp_path / "c.parquet"])
    assert result.exit_code == 2 and "is a partition" in result.output


def test_load_client_reads_only_the_listed_parts_and_checks_the_id(tmp_path):
    out = tmp_path / "p"
    fedpart.partition(DIALOGSUM, task="s2s", clients=2, out=out, plot=False)
    rows = fedpart.load_client(out, 0, format="arrow").num_rows
    with pytest.raises(InputError, match="client_id must be an integer"):
        fedpart.load_client(out, True)
    with pytest.raises(InputError, match="no client 2"):
        fedpart.load_client(out, 2)
    assert len(fedpart.load_client(out, 0, format="polars")) == rows


def test_api_arguments_of_the_wrong_type_are_input_errors(tmp_path):
    for kwargs in ({"test_frac": "0.1"}, {"read_options": {"column_names": ["a"]}}):
        with pytest.raises(InputError):
            fedpart.partition(DIALOGSUM, task="s2s", clients=2, out=tmp_path / "o", **kwargs)
    with pytest.raises(InputError, match="--alpha must be a number"):
        make_partitioner("dirichlet", num_clients=2, alpha="0.1")
    from fedpart.plan import draw_plan

    with pytest.raises(InputError, match=">= 0"):
        draw_plan(make_partitioner("dirichlet", num_clients=2, alpha=0.5), [10, -5], 0)
    assert not (tmp_path / "o").exists()


def test_stats_prints_the_table_when_the_plot_cannot_be_written(tmp_path):
    out = tmp_path / "p"
    assert cli(["partition", AG_NEWS_CSV, *AG, "--clients", "3", "--out", out, "-q", "--no-plot"]).exit_code == 0
    (out / "label_distribution.png").mkdir()  # stands in for a read-only partition: savefig fails
    result = CliRunner().invoke(main, ["stats", str(out)])
    assert result.exit_code == 0
    assert "clients" in result.stdout and "cannot write the plot" in result.stderr and "--no-plot" in result.stderr


@pytest.mark.parametrize("content", ['[1, 2]', '{"schema_version": 1, "clients": []}', '{"schema_version": 1}'])
def test_malformed_manifest_is_an_input_error(tmp_path, content):
    out = tmp_path / "p"
    assert cli(["partition", AG_NEWS_CSV, *AG, "--clients", "2", "--out", out, "-q", "--no-plot"]).exit_code == 0
    version = json.loads((out / "manifest.json").read_text())["schema_version"]
    (out / "manifest.json").write_text(content.replace('"schema_version": 1', f'"schema_version": {version}'))
    with pytest.raises(InputError, match="manifest"):
        Manifest.read(out)
    result = cli(["stats", out, "--no-plot"])
    assert result.exit_code == 2 and result.output.startswith("error: ")


def test_manifest_does_not_depend_on_how_the_input_path_is_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    relative = Path("ag_news") / "sample.csv"
    for out, spec in ((tmp_path / "a", AG_NEWS_CSV), (tmp_path / "b", relative)):
        assert cli(["partition", spec, *AG, "--clients", "3", "--out", out, "-q"]).exit_code == 0
    manifest = (tmp_path / "a" / "manifest.json").read_bytes()
    assert manifest == (tmp_path / "b" / "manifest.json").read_bytes()
    assert json.loads(manifest)["input"]["source"] == "sample.csv"


def test_quantity_refuses_parameters_of_the_other_size_distribution():
    with pytest.raises(InputError, match="--alpha does not apply"):
        make_partitioner("quantity", num_clients=3, size_dist="lognormal", sigma=1.0, alpha=0.3)
    with pytest.raises(InputError, match="--sigma applies to --size-dist lognormal"):
        make_partitioner("quantity", num_clients=3, size_dist="dirichlet", alpha=0.3, sigma=1.0)


def test_input_rows_count_the_invalid_rows_dropped(tmp_path):
    data = tmp_path / "d.jsonl"
    records = [{"dialogue": "a b", "summary": "x"}, {"dialogue": "", "summary": "y"}, {"dialogue": "c", "summary": "z"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    manifest = fedpart.partition(data, out=tmp_path / "o", task="s2s", clients=1, drop_invalid=True, plot=False)
    assert manifest.rows == {"input": 3, "dropped_null": 0, "written": 2, "dropped_invalid": 1}
    assert sorted(r["row_id"] for r in read_rows(tmp_path / "o")) == [0, 2]  # positions in the input
    result = cli(["stats", tmp_path / "o", "--no-plot"])
    assert "3 (0 dropped as null, 1 as invalid)" in result.output


def test_plan_refusals_on_grouped_rows_say_they_count_groups(tmp_path):
    data = tmp_path / "g.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(40)], "grp": [i // 10 for i in range(40)]}), data)
    with pytest.raises(fedpart.FedpartError, match=r"counts groups of 'grp', not rows: 4 groups in 40 rows"):
        fedpart.partition(data, out=tmp_path / "o", clients=5, group_col="grp", plot=False)
    assert not (tmp_path / "o").exists()


def test_empty_row_id_column_name_is_refused(tmp_path):
    result = cli(["partition", AG_NEWS_CSV, *AG, "--clients", "2", "--row-id-col", "", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "--row-id-col" in result.output


def test_a_csv_type_change_after_the_first_block_names_the_column_and_value():
    from fedpart.io.sources import _explain_arrow_error

    error = pa.ArrowInvalid("In CSV column #1: CSV conversion error to int64: invalid value 'abc'")
    message = str(_explain_arrow_error("late.csv", error, ["text", "label"]))
    assert message.startswith("late.csv: column 'label' looked like int64") and "'abc'" in message
