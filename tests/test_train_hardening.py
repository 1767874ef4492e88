"""Bad input to ``fedpart train``/``distill``/``report``/``eval bias``: one-line errors (exit 2), checked
before the run directory is touched; finished runs recognised by their completion record."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.distill.runner import DistillConfig
from fedpart.io.sources import ReadOptions
from fedpart.manifest import Manifest
from fedpart.train.federated import FederatedConfig
from fedpart.train.runner import check_partition_task, load_trained, train
from fedpart.train.rundir import FINISHED_FILE

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TINY = FederatedConfig(rounds=1, clients_per_round=2, lr=0.5, batch_size=32)


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hardening") / "parts"
    fedpart.partition(FIXTURES / "ag_news" / "sample.csv", task="tc", scheme="iid", clients=3, test_frac=0.2,
                      out=out, plot=False, read_options=ReadOptions(column_names=("label", "title", "description")))
    return out


@pytest.fixture(scope="module")
def finished(parts, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hardening") / "run"
    train(parts, task="tc", out=out, config=TINY, device="cpu")
    return out


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output


def test_modified_or_missing_shard_is_refused_before_the_run_directory_exists(parts, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(parts, copy)
    shard = copy / json.loads((copy / "manifest.json").read_text())["clients"][1]["file"]
    with open(shard, "ab") as handle:
        handle.write(b"x")
    result = invoke("train", copy, "--task", "tc", "--device", "cpu", "--out", tmp_path / "r")
    assert_one_line_error(result, str(shard), "modified or corrupted", "fedpart partition")
    assert not (tmp_path / "r").exists()
    shard.unlink()
    with pytest.raises(fedpart.InputError, match="missing"):
        train(copy, task="tc", out=tmp_path / "r", config=TINY, device="cpu")
    assert not (tmp_path / "r").exists()


def test_distill_checks_the_shards_of_a_partition_it_reads(parts, finished, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(parts, copy)
    (copy / "test.parquet").write_bytes(b"")  # truncated
    result = invoke("distill", finished, "--data", copy, "--device", "cpu", "--out", tmp_path / "d")
    assert_one_line_error(result, "test.parquet", "modified or corrupted")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "P", "--task", "tc", "--lr", "nan"], "--lr must be a finite number"),
        (["train", "P", "--task", "tc", "--algo", "fedprox", "--mu", "inf"], "--mu must be a finite number"),
        (["train", "P", "--task", "tc", "--server-lr", "nan"], "--server-lr must be a finite number"),
        (["distill", "T", "--data", "D", "--temperature", "nan"], "--temperature must be a finite number"),
        (["distill", "T", "--data", "D", "--alpha-kd", "-inf"], "--alpha-kd must be a finite number"),
        (["eval", "bias", "R", "--temperature", "nan"], "--temperature must be a finite number"),
        (["train", "P", "--task", "tc", "--seed", "-5"], "--seed must be an integer from 0"),
        (["train", "P", "--task", "tc", "--seed", str(2**64)], "--seed must be an integer from 0"),
        (["partition", "IN", "--seed", "-1"], "--seed must be an integer from 0"),
        (["eval", "bias", "R", "--seed", "-1"], "--seed must be an integer from 0"),
    ],
)
def test_non_finite_floats_and_out_of_range_seeds_are_one_line_errors(tmp_path, args, fragment):
    if args[0] in ("train", "distill", "partition"):
        args = [*args, "--out", str(tmp_path / "o")]
    assert_one_line_error(invoke(*args), fragment)
    assert not (tmp_path / "o").exists()


def test_library_configs_refuse_non_finite_values_and_bad_seeds(tmp_path):
    with pytest.raises(fedpart.InputError, match="--lr must be a finite number"):
        FederatedConfig(lr=float("nan"))
    with pytest.raises(fedpart.InputError, match="--mu must be a finite number"):
        FederatedConfig(algo="fedprox", mu=float("nan"))
    with pytest.raises(fedpart.InputError, match="--seed"):
        FederatedConfig(seed=-1)
    with pytest.raises(fedpart.InputError, match="--temperature must be a finite number"):
        DistillConfig(temperature=float("nan"))
    with pytest.raises(fedpart.InputError, match="--seed"):
        fedpart.partition(FIXTURES / "ag_news" / "sample.csv", clients=2, seed=-1, out=tmp_path / "p", plot=False)


def test_largest_seed_trains(parts, tmp_path):
    config = FederatedConfig(rounds=1, clients_per_round=2, seed=2**63 - 1)
    assert train(parts, task="tc", out=tmp_path / "r", config=config, device="cpu")[-1]["round"] == 1


def test_bad_input_leaves_no_run_directory_and_a_failed_overwrite_keeps_the_old_run(parts, finished, tmp_path):
    for bad in (dict(eval_data=str(tmp_path / "missing.parquet")), dict(device="mps")):
        with pytest.raises(fedpart.InputError):
            train(parts, task="tc", out=tmp_path / "r", config=TINY, **{"device": "cpu", **bad})
        assert not (tmp_path / "r").exists()
    old = tmp_path / "old"
    shutil.copytree(finished, old)
    before = sorted(p.name for p in old.iterdir())
    with pytest.raises(fedpart.InputError):
        train(parts, task="tc", out=old, config=TINY, device="cpu", overwrite=True,
              eval_data=str(tmp_path / "missing.parquet"))
    assert sorted(p.name for p in old.iterdir()) == before and (old / FINISHED_FILE).is_file()


def test_overwrite_replaces_every_file_of_the_old_run_but_no_other_directory(parts, finished, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(finished, old)
    (old / "lm.json").write_text("{}")  # left by an earlier run of another task
    train(parts, task="tc", out=old, config=TINY, device="cpu", overwrite=True)
    assert not (old / "lm.json").exists() and (old / FINISHED_FILE).is_file()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(fedpart.OutputError, match="not an earlier fedpart output"):
        train(parts, task="tc", out=other, config=TINY, device="cpu", overwrite=True)
    assert (other / "thesis.tex").read_text() == "keep me"


def test_a_run_failing_in_its_first_round_removes_its_directory(parts, tmp_path, monkeypatch):
    import fedpart.train.runner as runner

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(runner, "federated_round", fail)
    with pytest.raises(RuntimeError):
        train(parts, task="tc", out=tmp_path / "r", config=TINY, device="cpu")
    assert not (tmp_path / "r").exists()


def test_unfinished_runs_are_refused_by_consumers_and_marked_in_report(parts, finished, tmp_path):
    config = FederatedConfig(rounds=2, clients_per_round=2, lr=0.5)
    train(parts, task="tc", out=tmp_path / "cut", config=config, device="cpu", stop_after=1)
    assert (tmp_path / "cut" / "model.pt").is_file() and not (tmp_path / "cut" / FINISHED_FILE).exists()
    with pytest.raises(fedpart.InputError, match="unfinished run"):
        load_trained(tmp_path / "cut", device=__import__("torch").device("cpu"))
    result = invoke("eval", "bias", tmp_path / "cut", "--device", "cpu", "--plot", tmp_path / "b.png")
    assert_one_line_error(result, "unfinished run")
    result = invoke("distill", tmp_path / "cut", "--data", parts, "--device", "cpu", "--out", tmp_path / "d")
    assert_one_line_error(result, "unfinished run")
    assert not (tmp_path / "d").exists()
    result = invoke("report", tmp_path / "cut", finished, "--plot", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()}
    assert "(incomplete)" in rows[str(tmp_path / "cut")] and "(incomplete)" not in rows[str(finished)]


def test_resume_extends_rounds_tolerates_a_partial_metrics_line_and_other_cwd(parts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(parts, tmp_path)  # the same partition, spelled differently
    config = FederatedConfig(rounds=2, clients_per_round=2, lr=0.5)
    train(relative, task="tc", out="run", config=config, device="cpu", stop_after=1)
    with open(tmp_path / "run" / "metrics.jsonl", "a") as handle:
        handle.write('{"round": 2, "metr')  # killed mid-write
    result = invoke("report", "run", "--plot", "r.png")
    assert_one_line_error(result, "metrics.jsonl:2", "malformed")
    records = train(parts, task="tc", out=tmp_path / "run", config=FederatedConfig(rounds=3, clients_per_round=2,
                    lr=0.5), device="cpu", resume=True)
    assert [r["round"] for r in records] == [2, 3]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["rounds"] == 3
    assert (tmp_path / "run" / FINISHED_FILE).is_file()
    with pytest.raises(fedpart.InputError, match="already run 3 rounds"):
        train(parts, task="tc", out=tmp_path / "run", config=config, device="cpu", resume=True)


def test_partition_of_another_task_is_refused_but_lm_may_read_tc_text(parts, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(parts, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "task": "st"}))
    result = invoke("train", copy, "--task", "tc", "--device", "cpu", "--out", tmp_path / "r")
    assert_one_line_error(result, "was made with --task st; train it with --task st")
    assert not (tmp_path / "r").exists()
    check_partition_task(parts, Manifest.read(parts), "lm")  # no error: lm on the texts of tc rows


def test_evaluation_data_empty_mislabelled_or_csv(parts, tmp_path):
    test = pq.read_table(parts / "test.parquet")
    pq.write_table(test.slice(0, 0), tmp_path / "empty.parquet")
    labels = pa.array([f"class-{v}" for v in test.column("label").to_pylist()])
    pq.write_table(test.set_column(test.schema.get_field_index("label"), "label", labels), tmp_path / "str.parquet")
    for name, fragment in (("empty.parquet", "has no rows"), ("str.parquet", "none of its labels")):
        with pytest.raises(fedpart.InputError, match=fragment):
            train(parts, task="tc", out=tmp_path / "r", config=TINY, device="cpu", eval_data=str(tmp_path / name))
        assert not (tmp_path / "r").exists()
    import pyarrow.csv as pacsv

    pacsv.write_csv(test.select(["text", "label"]), tmp_path / "test.csv")
    csv = train(parts, task="tc", out=tmp_path / "csv", config=TINY, device="cpu", eval_data=str(tmp_path / "test.csv"))
    parquet = train(parts, task="tc", out=tmp_path / "pq", config=TINY, device="cpu")
    assert csv[-1]["metrics"] == parquet[-1]["metrics"]


def test_output_paths_and_option_combinations_are_checked_first(parts, finished, tmp_path):
    (tmp_path / "file").write_text("")
    args = ["train", parts, "--task", "tc", "--device", "cpu", "--clients-per-round", "2"]
    assert_one_line_error(invoke(*args, "--out", tmp_path / "file"), "is not a directory")
    assert_one_line_error(invoke(*args, "--out", tmp_path / "m", "--device", "xpu"), "cpu, cuda or cuda:N")
    assert_one_line_error(invoke(*args, "--out", tmp_path / "m", "--mu", "0.5"), "--mu applies to --algo fedprox")
    assert_one_line_error(invoke(*args, "--out", finished, "--resume", "--overwrite"), "exclude each other")
    missing = tmp_path / "no" / "such" / "dir"
    assert_one_line_error(invoke("report", finished, "--plot", missing / "r.png"), "does not exist", "--plot")
    assert_one_line_error(invoke("eval", "bias", finished, "--json", missing / "b.json", "--plot", tmp_path / "b.png"),
                          "does not exist", "--json")
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "m").exists()
    result = invoke("distill", finished, "--data", parts, "--student-size", "large", "--out", tmp_path / "d")
    assert_one_line_error(result, "--student-size 'large'")


def test_clients_per_round_above_the_clients_is_reported(parts, tmp_path):
    result = invoke("train", parts, "--task", "tc", "--rounds", "1", "--clients-per-round", "10", "--device", "cpu",
                    "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    assert "--clients-per-round 10 exceeds the 3 non-empty clients" in result.output
