"""Second QA pass of `fedpart partition`: groupings, outputs inside the input, numeric parameter
types, options that used to be silently ignored, and error messages that blamed the wrong thing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.errors import InputError, OutputError, PlanError
from fedpart.manifest import Manifest
from fedpart.partitioners import make_partitioner
from fedpart.partitioners.params import check_clients_fit_rows
from fedpart.io.sources import ReadOptions
from fedpart.tasks import ColumnMap
from conftest import assert_refused  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS_CSV = FIXTURES / "ag_news" / "sample.csv"
AG = ["--task", "tc", "--column-names", "label,title,description"]
SQUAD = FIXTURES / "squad" / "sample.json"
DIALOGSUM = FIXTURES / "dialogsum" / "sample.jsonl"
WNUT = FIXTURES / "wnut17" / "sample.conll"


def cli(args: list[object]):
    return CliRunner().invoke(main, [str(a) for a in args])


def partition_cli(spec: Path, tmp_path: Path):
    return cli(["partition", spec, "--label-col", "label", "--clients", "2", "--out", tmp_path / "o"])


def write_parquet(path: Path, **columns: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


# --- 1. QA keeps its context grouping ---------------------------------------------------------------

def test_qa_refuses_a_group_column_that_would_split_contexts(tmp_path):
    out = tmp_path / "o"
    message = assert_refused(
        cli(["partition", SQUAD, "--task", "qa", "--clients", "3", "--test-frac", "0.2", "--group-col", "id",
             "--out", out, "-q"]),
        "--group-col does not apply to --task qa", "context", "--scheme natural --by title", out=out,
    )
    assert "id" not in message.split("--group-col")[0]
    # naming QA's own grouping is the same as leaving it out
    fedpart.partition(SQUAD, task="qa", clients=3, test_frac=0.2, group_col="context", out=tmp_path / "c", plot=False)
    # without it, no context is split between clients and test
    fedpart.partition(SQUAD, task="qa", clients=3, test_frac=0.2, out=out, plot=False)
    assert (out / "manifest.json").read_bytes() == (tmp_path / "c" / "manifest.json").read_bytes()
    shards = (out / "clients").glob("*.parquet")
    client_contexts = {c for shard in shards for c in pq.read_table(shard)["context"].to_pylist()}
    assert not client_contexts & set(pq.read_table(out / "test.parquet")["context"].to_pylist())


# --- 2. the output never lies where the input is read from ------------------------------------------

def test_output_inside_an_input_directory_or_glob_is_refused(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    shutil.copy(AG_NEWS_CSV, data / "sub" / "ag.csv")
    for spec in (data, f"{data}/**", f"{data}/*/*"):  # each can match a file the output will hold
        out = data / "parts"
        assert_refused(cli(["partition", spec, *AG, "--clients", "2", "--out", out, "-q"]),
                       f"{out}: lies", "choose an --out outside the input", out=out)
    with pytest.raises(OutputError, match="lies inside the input directory"):  # before Ray starts
        fedpart.partition(data, task="tc", read_options=ReadOptions(column_names=("label", "title", "description")),
                          clients=2, out=data / "parts", engine="ray")
    conll = tmp_path / "conll"
    conll.mkdir()
    shutil.copy(WNUT, conll / "w.conll")
    assert_refused(cli(["partition", conll, "--task", "st", "--clients", "2", "--out", conll / "p", "-q"]),
                   "lies inside the input directory", out=conll / "p")
    # a glob that cannot match the output's files is fine, and the next run reads the same input
    out = data / "parts"
    for spec in (f"{data}/sub/*.csv", f"{data}/**/*.csv", f"{data}/**/*.csv"):
        result = cli(["partition", spec, *AG, "--clients", "2", "--out", out, "-q", "--overwrite"])
        assert result.exit_code == 0, result.output
        assert Manifest.read(out).rows["input"] == 600


# --- 3. numeric parameters are plain numbers in the manifest ----------------------------------------

def test_numpy_parameters_give_the_same_manifest_as_python_numbers(tmp_path):
    common = {"task": "tc", "read_options": ReadOptions(column_names=("label", "title", "description")),
              "scheme": "dirichlet", "plot": False}
    fedpart.partition(AG_NEWS_CSV, out=tmp_path / "py", clients=5, alpha=0.3, min_client_size=2, test_frac=0.1,
                      seed=1, **common)
    fedpart.partition(AG_NEWS_CSV, out=tmp_path / "np", clients=np.int64(5), alpha=np.float32(0.3),
                      min_client_size=np.int64(2), test_frac=np.float32(0.1), seed=np.int64(1), **common)
    python = (tmp_path / "py" / "manifest.json").read_text()
    assert (tmp_path / "np" / "manifest.json").read_text() == python
    assert json.loads(python)["params"] == {"num_clients": 5, "alpha": 0.3, "min_client_size": 2}
    fedpart.partition(AG_NEWS_CSV, out=tmp_path / "zero", clients=5, test_frac=0, **{**common, "scheme": "iid"})
    fedpart.partition(AG_NEWS_CSV, out=tmp_path / "default", clients=5, **{**common, "scheme": "iid"})
    assert json.loads((tmp_path / "zero" / "manifest.json").read_text())["test_frac"] == 0.0
    assert '"test_frac": 0.0,' in (tmp_path / "zero" / "manifest.json").read_text()
    assert (tmp_path / "zero" / "manifest.json").read_bytes() == (tmp_path / "default" / "manifest.json").read_bytes()


# --- 4. a test split that takes every row -------------------------------------------------------------

def test_a_test_fraction_taking_every_row_says_so(tmp_path):
    data = write_parquet(tmp_path / "d.parquet", text=list("abcd"), label=[0, 1, 0, 1])
    out = tmp_path / "o"
    message = assert_refused(
        cli(["partition", data, "--label-col", "label", "--clients", "5", "--test-frac", "0.9", "--out", out, "-q"]),
        "--test-frac 0.9 holds out all 4 rows and leaves none to partition", "smaller --test-frac", out=out,
    )
    assert "--clients 0" not in message
    with pytest.raises(PlanError) as error:
        check_clients_fit_rows(5, 0)
    assert "--clients 0" not in str(error.value)
    with pytest.raises(PlanError, match="no rows to partition") as error:
        make_partitioner("natural", num_clients=2).allocate(np.array([0, 0]), np.random.default_rng(0))
    assert "--clients 0" not in str(error.value)


# --- 5. label-less tasks are told to use --by ---------------------------------------------------------

@pytest.mark.parametrize("spec, task, example", [(SQUAD, "qa", "--by title"), (DIALOGSUM, "s2s", "--by topic")])
def test_a_label_less_task_is_told_to_pass_by(tmp_path, spec, task, example):
    message = assert_refused(
        cli(["partition", spec, "--task", task, "--scheme", "dirichlet", "--alpha", "1", "--clients", "2",
             "--out", tmp_path / "o", "-q"]),
        "--by COLUMN", example, f"--task {task} has no label",
    )
    assert "--label-col" not in message
    assert cli(["partition", spec, "--task", task, "--scheme", "dirichlet", "--alpha", "1", "--clients", "2",
                "--by", example.split()[1], "--out", tmp_path / "o", "-q"]).exit_code == 0


# --- 6. options that do not apply are refused, not ignored -------------------------------------------

@pytest.mark.parametrize("args, fragments", [
    (["--label-col", "label", "--text-col", "text"], ["--text-col applies with --task", "--scheme cluster"]),
    (["--label-col", "label", "--column-names", "a,b"], ["--column-names", "CSV/TSV", "parquet"]),
    (["--label-col", "label", "--split", "test"], ["--split applies to Hugging Face inputs"]),
    (["--label-col", "label", "--hf-config", "en"], ["--hf-config applies to Hugging Face inputs"]),
    (["--scheme", "natural", "--by", "label", "--group-col", "nope"], ["--group-col does not apply", "--scheme natural"]),
    (["--scheme", "natural", "--by", "label", "--group-col", "text"], ["--group-col does not apply", "--scheme natural"]),
    (["--label-col", "label", "--tokens-col", "text"], ["--tokens-col", "need --task"]),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, args, fragments):
    data = write_parquet(tmp_path / "d.parquet", text=list("abcdef"), label=[0, 1] * 3)
    out = tmp_path / "o"
    assert_refused(cli(["partition", data, "--clients", "2", *args, "--out", out, "-q"]), *fragments, out=out)


def test_task_native_inputs_refuse_local_only_read_options(tmp_path):
    for args, fragment in ((["--split", "test"], "--split applies"),
                           (["--column-names", "a,b"], "is not read as CSV/TSV: drop --column-names")):
        result = cli(["partition", SQUAD, "--task", "qa", "--clients", "2", *args, "--out", tmp_path / "o", "-q"])
        assert_refused(result, fragment)


def test_api_refuses_what_it_used_to_ignore(tmp_path):
    data = write_parquet(tmp_path / "d.parquet", text=list("abcdef"), label=[0, 1] * 3)
    out = tmp_path / "o"
    with pytest.raises(InputError, match="--text-col .*need --task"):
        fedpart.partition(data, columns=ColumnMap(text=("text",)), label_col="label", clients=2, out=out)
    with pytest.raises(InputError, match="ColumnMap"):
        fedpart.partition(data, columns={"text": "text"}, task="tc", clients=2, out=out)
    for piece_rows in (0, -3):
        with pytest.raises(InputError, match="--piece-rows must be at least 1"):
            fedpart.partition(data, label_col="label", clients=2, out=out, engine="ray", piece_rows=piece_rows)
    assert not out.exists()


def test_a_text_column_given_as_a_string_is_one_column(tmp_path):
    data = write_parquet(tmp_path / "d.parquet", text=[f"w{i} x" for i in range(8)], label=[0, 1] * 4)
    fedpart.partition(data, task="tc", text_col="text", clients=2, out=tmp_path / "s", plot=False)
    fedpart.partition(data, task="tc", text_col=["text"], clients=2, out=tmp_path / "l", plot=False)
    assert (tmp_path / "s" / "manifest.json").read_bytes() == (tmp_path / "l" / "manifest.json").read_bytes()
    fedpart.partition(data, scheme="cluster", clusters=2, alpha=1.0, text_col="text", label_col="label", clients=2,
                      out=tmp_path / "c", plot=False)


# --- 7. label-count says when clients get fewer than C labels ---------------------------------------

def test_label_count_warns_when_a_label_has_fewer_rows_than_holders(tmp_path):
    data = write_parquet(tmp_path / "d.parquet", text=[f"t{i}" for i in range(40)], label=[0] * 30 + [1] * 9 + [2])
    with pytest.warns(UserWarning, match=r"3 of 6 clients hold rows of fewer than 2 labels.*1 row\(s\) for 4 clients"):
        fedpart.partition(data, scheme="label-count", labels_per_client=2, label_col="label", clients=6,
                          out=tmp_path / "a", plot=False)
    result = CliRunner().invoke(main, ["partition", str(data), "--scheme", "label-count", "--labels-per-client", "2",
                                       "--label-col", "label", "--clients", "6", "--out", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 0 and result.stderr.startswith("warning: --scheme label-count: 3 of 6 clients")
    ok = CliRunner().invoke(main, ["partition", str(data), "--scheme", "label-count", "--labels-per-client", "2",
                                   "--label-col", "label", "--clients", "2", "--out", str(tmp_path / "c"), "-q"])
    assert ok.exit_code == 0 and "warning" not in ok.stderr


# --- 8. read errors name the real problem -----------------------------------------------------------

def test_a_json_array_file_is_told_to_be_converted_to_json_lines(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"text": "a", "label": 1}, {"text": "b", "label": 2}]))
    message = assert_refused(partition_cli(path, tmp_path),
                             f"{path}: holds a JSON array", "JSON Lines (one object per line)", "jq -c")
    assert "--format" not in message


def test_a_truncated_json_lines_file_does_not_suggest_format(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "lab')
    message = assert_refused(partition_cli(path, tmp_path),
                             "cut.jsonl: cannot be read as JSON Lines", "broken line")
    assert "--format" not in message


def test_a_json_lines_field_changing_type_is_named_as_such(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": 1, "label": 1}\n{"text": "b", "label": 2}\n')
    message = assert_refused(partition_cli(path, tmp_path), "mixed.jsonl: a JSON Lines field changes type",
                             "Column(/text) changed from number to string", "one type in every line")
    assert "broken line" not in message


def test_parquet_files_whose_column_types_differ_name_the_column_and_types(tmp_path):
    write_parquet(tmp_path / "d" / "a.parquet", text=["a", "b"], label=pa.array([1, 2], pa.uint64()))
    write_parquet(tmp_path / "d" / "b.parquet", text=["c", "d"], label=["pos", "neg"])
    assert_refused(partition_cli(tmp_path / "d", tmp_path),
                   "b.parquet: column 'label' has type string here but uint64 in", "a.parquet", "same column types")


def test_conll_files_point_at_task_st_and_bad_tags_name_file_and_line(tmp_path):
    assert_refused(cli(["partition", WNUT, "--task", "qa", "--clients", "2", "--out", tmp_path / "o"]),
                   "'.conll' files are read as CoNLL column files with --task st")
    path = tmp_path / "bad.conll"
    path.write_text("a\tO\nb\tB-loc\n\nc\tO\nd\tX-location\n")
    assert_refused(cli(["partition", path, "--task", "st", "--clients", "2", "--out", tmp_path / "o"]),
                   f"{path}:5: tag 'X-location'")


# --- 9. binary labels ---------------------------------------------------------------------------------

def test_binary_labels_are_decoded_in_the_manifest(tmp_path):
    labels = [b"neg", b"pos", b"\xffx", b"neg"]
    data = write_parquet(tmp_path / "b.parquet", text=list("abcd"), label=pa.array(labels, pa.binary()))
    manifest = fedpart.partition(data, label_col="label", clients=2, out=tmp_path / "o", plot=False)
    assert manifest.labels == ["neg", "pos", "\\xffx"]
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["labels"] == ["neg", "pos", "\\xffx"]


# --- 10. the summary line counts client and test rows apart ----------------------------------------

def test_summary_line_counts_client_and_test_rows_apart(tmp_path):
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["partition", str(AG_NEWS_CSV), *AG, "--clients", "10", "--test-frac", "0.1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"wrote 10 client shards (540 rows) and a test split (60 rows) to {out}"
    result = CliRunner().invoke(main, ["partition", str(AG_NEWS_CSV), *AG, "--clients", "10", "--out", str(out),
                                       "--overwrite"])
    assert result.stdout.splitlines()[0] == f"wrote 10 client shards (600 rows) to {out}"


def test_groups_with_mixed_labels_name_the_key_and_the_way_out(tmp_path):
    data = tmp_path / "g.csv"
    data.write_text("g,label,text\n1,a,x\n1,b,y\n2,a,z\n3,b,w\n", encoding="utf-8")
    args = ["partition", str(data), "--group-col", "g", "--scheme", "iid", "--clients", "2", "--no-plot"]
    result = CliRunner().invoke(main, [*args, "--label-col", "label", "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "1 group(s) of 'g' have rows with different values of 'label' (e.g. group '1')" in result.output
    assert "leave out --label-col" in result.output and not (tmp_path / "p").exists()
    # the way out it names works: the groups are split whole, unstratified
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "q")]).exit_code == 0
    rows = pq.read_table(tmp_path / "q" / "clients").to_pylist()
    clients_of_group = {}
    for path in sorted((tmp_path / "q" / "clients").glob("*.parquet")):
        for g in pq.read_table(path).column("g").to_pylist():
            clients_of_group.setdefault(g, set()).add(path.name)
    assert len(rows) == 4 and all(len(c) == 1 for c in clients_of_group.values())


def test_lognormal_sizes_with_a_huge_sigma_do_not_overflow():
    counts = np.array([300, 300])
    for sigma in (800.0, 1e300):  # exp of such draws is inf; the sizes are proportions of them
        plan = make_partitioner("quantity", num_clients=5, size_dist="lognormal", sigma=sigma).allocate(
            counts, np.random.default_rng(0))
        sizes = plan.client_sizes(counts)
        assert sizes.sum() == 600 and sorted(sizes.tolist()) == [0, 0, 0, 0, 600]
    # a moderate sigma draws the same sizes as numpy's lognormal (exp of the same normal draws)
    plan = make_partitioner("quantity", num_clients=50, size_dist="lognormal", sigma=1.5).allocate(
        counts, np.random.default_rng(3))
    weights = np.random.default_rng(3).lognormal(0.0, 1.5, 50)
    assert np.abs(plan.client_sizes(counts) - 600 * weights / weights.sum()).max() < 1


def test_a_json_lines_field_first_appearing_after_the_first_block_is_refused_naming_its_line(tmp_path):
    rows = [json.dumps({"text": "x" * 60, "label": i % 3}) for i in range(20_000)]  # > 1 MiB: past the first block
    data = tmp_path / "late.jsonl"
    data.write_text("\n".join([*rows, json.dumps({"text": "late", "label": 1, "source": "web"})]) + "\n",
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["partition", str(data), "--label-col", "label", "--scheme", "iid",
                                       "--clients", "2", "--out", str(tmp_path / "p"), "--no-plot"])
    assert_refused(result, "late.jsonl:20001: field 'source' first appears here",
                   "put a line holding every field first", out=tmp_path / "p")
    nested = tmp_path / "nested.jsonl"
    lines = [json.dumps({"text": "x" * 60, "meta": {"a": i}}) for i in range(20_000)]
    nested.write_text("\n".join([*lines, json.dumps({"text": "y", "meta": {"a": 1, "b": 2}})]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="a line holds a nested field the first lines lack"):
        fedpart.partition(nested, scheme="iid", clients=2, out=tmp_path / "q", plot=False)
    # every field in the first lines: read whole, fields missing from later lines are nulls
    early = tmp_path / "early.jsonl"
    first = json.dumps({"text": "a", "label": 0, "source": "web"})
    early.write_text("\n".join([first, *rows]) + "\n", encoding="utf-8")
    manifest = fedpart.partition(early, scheme="iid", clients=2, label_col="label", out=tmp_path / "r", plot=False)
    table = pa.concat_tables(pq.read_table(tmp_path / "r" / c.file) for c in manifest.clients)
    assert table.num_rows == 20_001 and table.column("source").drop_null().to_pylist() == ["web"]
