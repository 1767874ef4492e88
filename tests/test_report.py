"""``fedpart report``: JSON/CSV records equal to the runs' files, the differing-settings columns, legend
labels that tell equally named runs apart, ``--metric``, refused outputs, and no torch import."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import assert_refused

from fedpart.cli import main
from fedpart.train.report import (
    LOWER_IS_BETTER,
    distinguishing_names,
    load_run,
    run_labels,
    write_report_json,
)

SETTINGS = ("algo", "rounds", "clients_per_round", "local_epochs", "lr", "batch_size", "mu", "server_opt",
            "server_lr", "sampling", "seed")


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def read_lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def edit_config(run: Path, **changes) -> None:
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **changes}, indent=2))


def copy_run(run: Path, to: Path, **changes) -> Path:
    shutil.copytree(run, to)
    if changes:
        edit_config(to, **changes)
    return to


@pytest.fixture(scope="module")
def fedprox(parts, tmp_path_factory) -> Path:
    """A finished two-round FedProx run on :func:`parts`, differing from ``finished`` in algo, mu and rounds."""
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.runner import train

    out = tmp_path_factory.mktemp("report-run") / "fedprox"
    train(parts, task="tc", out=out, device="cpu",
          config=FederatedConfig(algo="fedprox", mu=0.01, rounds=2, clients_per_round=2, lr=0.5, batch_size=32))
    return out


def table(output: str) -> tuple[list[str], dict[str, list[str]]]:
    """The printed table's header cells and each row's cells by run path (cells have no spaces but
    ``MB sent`` and ``(incomplete)``, which these tests do not need apart)."""
    lines = output.splitlines()
    header = lines[0].replace("MB sent", "MB_sent").split()
    rows = {line.split()[0]: line.split() for line in lines[1:] if not line.startswith(("plot:", "json:", "csv:"))}
    return header, rows


# -- JSON and CSV -----------------------------------------------------------------------------------


def test_json_and_csv_records_equal_the_runs_files(finished, fedprox, parts, tmp_path):
    out_json, out_csv = tmp_path / "cmp.json", tmp_path / "cmp.csv"
    result = invoke("report", finished, fedprox, "--plot", tmp_path / "r.png", "--json", out_json, "--csv", out_csv)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [f"json: {out_json}", f"csv: {out_csv}"]
    data = json.loads(out_json.read_text())
    assert data["schema_version"] == 1 and [r["path"] for r in data["runs"]] == [str(finished), str(fedprox)]
    manifest = json.loads((parts / "manifest.json").read_text())
    for record, run in zip(data["runs"], (finished, fedprox)):
        config = json.loads((run / "config.json").read_text())
        lines = read_lines(run)
        environment = json.loads((run / "environment.json").read_text())
        assert record["task"] == config["task"] == "tc" and record["finished"] is True
        assert {name: record[name] for name in SETTINGS} == {name: config[name] for name in SETTINGS}
        assert record["runtime"] == "fedpart" and record["partition"] == config["partition"]
        assert (record["partition_scheme"], record["partition_alpha"]) == (manifest["scheme"], None)  # iid: no alpha
        assert record["partition_clients"] == len(manifest["clients"]) == 3
        assert record["partition_seed"] == manifest["seed"] and record["partition_manifest"] == "verified"
        assert (record["device"], record["torch_version"]) == (environment["device"], environment["torch"])
        assert record["rounds_done"] == lines[-1]["round"] == config["rounds"]
        assert record["wall_time_s"] == lines[-1]["wall_time_s"]
        assert record["bytes_communicated"] == lines[-1]["bytes_communicated"]
        assert record["final_train_loss"] == lines[-1]["train_loss"]
        assert record["main_metric"] == "accuracy"
        for metric in ("accuracy", "macro_f1"):
            values = [line["metrics"][metric] for line in lines]
            assert record[f"final_{metric}"] == values[-1]
            assert record[f"best_{metric}"] == (min if metric in LOWER_IS_BETTER else max)(values)
    assert data["runs"][1]["mu"] == 0.01 and data["runs"][1]["algo"] == "fedprox"

    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for row, record in zip(rows, data["runs"]):
        assert list(row) == list(record)  # the same columns in the same order
        for key, value in record.items():
            if value is None:
                assert row[key] == "", key
            elif isinstance(value, bool):
                assert row[key] == str(value).lower(), key
            elif isinstance(value, (int, float)):
                assert float(row[key]) == value, key
            else:
                assert row[key] == value, key


def test_records_give_the_model_size_and_clients_per_round_the_run_used(parts, tmp_path):
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.runner import train

    # asked for 10 clients per round of a 3-client partition, model size left to the default
    run = tmp_path / "asked"
    with pytest.warns(UserWarning, match="exceeds the 3 non-empty clients"):
        train(parts, task="tc", out=run, device="cpu", config=FederatedConfig(rounds=1, clients_per_round=10))
    config = json.loads((run / "config.json").read_text())
    assert (config["clients_per_round"], config["model_size"]) == (10, None)
    assert {len(line["clients"]) for line in read_lines(run)} == {3}
    out = tmp_path / "r.json"
    assert invoke("report", run, "--plot", tmp_path / "r.png", "--json", out).exit_code == 0
    [record] = json.loads(out.read_text())["runs"]
    assert record["clients_per_round"] == 3
    assert record["model_size"] == config["featurisation"]["model_size"] == "small"


def test_report_json_is_strict_json(tmp_path):
    path = write_report_json([{"path": "r", "final_perplexity": float("inf"), "best_loss": float("nan"),
                               "final_accuracy": 0.5}], tmp_path / "r.json")
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["runs"] == [{"path": "r", "final_perplexity": None, "best_loss": None,
                                         "final_accuracy": 0.5}]


def test_records_of_an_old_incomplete_run_and_of_a_changed_or_missing_partition(finished, parts, tmp_path):
    old = copy_run(finished, tmp_path / "old", partition=str(tmp_path / "gone"))
    (old / "environment.json").unlink()
    (old / "finished.json").unlink()  # a checkpoint and no completion record: not finished
    (old / "metrics.jsonl").write_text("".join(
        json.dumps({k: v for k, v in line.items() if k != "train_loss"}) + "\n" for line in read_lines(finished)))
    moved = shutil.copytree(parts, tmp_path / "parts2")
    with open(moved / "manifest.json", "a") as handle:
        handle.write("\n")  # partitioned again since the run: another sha256
    changed = copy_run(finished, tmp_path / "changed", partition=str(moved))
    out = tmp_path / "r.json"
    result = invoke("report", old, changed, "--plot", tmp_path / "r.png", "--json", out)
    assert result.exit_code == 0, result.output
    old_record, changed_record = json.loads(out.read_text())["runs"]
    assert old_record["finished"] is False and "(incomplete)" in result.output
    assert old_record["final_train_loss"] is None and old_record["device"] is None
    assert old_record["partition_manifest"] == "missing" and old_record["partition_scheme"] is None
    assert changed_record["partition_manifest"] == "changed" and changed_record["partition_scheme"] is None
    assert changed_record["final_accuracy"] == read_lines(finished)[-1]["metrics"]["accuracy"]


def test_outputs_are_replaced_atomically(finished, tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    out.write_text("earlier")
    records = [{"path": str(finished), "final_accuracy": 0.5}]
    write_report_json(records, out)
    assert json.loads(out.read_text())["runs"] == records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report_json([{"path": "other"}], out)
    assert json.loads(out.read_text())["runs"] == records  # the earlier file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_centralised_run_records_no_client_sampling(finished, tmp_path):
    from fedpart.train.federated import CLIENT_SAMPLING_OPTIONS
    from fedpart.train.report import CLIENT_SAMPLING_SETTINGS, run_record

    assert CLIENT_SAMPLING_SETTINGS == CLIENT_SAMPLING_OPTIONS
    central = copy_run(finished, tmp_path / "central", algo="centralized", clients_per_round=10)
    record = run_record(load_run(central))
    assert (record["clients_per_round"], record["sampling"], record["sampler"]) == (None, None, None)
    assert record["lr"] == 0.5 and record["algo"] == "centralized"
    assert run_record(load_run(finished))["clients_per_round"] == 2
    assert run_record(load_run(finished))["sampler"] == "fedpart"  # fedpart train's own sampler


# -- the printed table --------------------------------------------------------------------------------


def test_table_adds_only_the_settings_that_differ(finished, fedprox, tmp_path):
    plot = ["--plot", tmp_path / "r.png"]
    header, rows = table(invoke("report", finished, *plot).output)
    assert header[-1] == "MB_sent"  # one run: nothing differs
    header, rows = table(invoke("report", finished, fedprox, *plot).output)
    assert header[:10] == ["run", "task", "algo", "rounds", "metric", "final", "best", "rounds/s", "MB_sent", "mu"]
    assert header[10:] == []  # algo and rounds are columns already
    assert rows[str(fedprox)][2] == "fedprox" and rows[str(fedprox)][9] == "0.01" and rows[str(finished)][9] == "0"

    seeds = [copy_run(finished, tmp_path / name / "run", seed=seed) for name, seed in (("a", 0), ("b", 7))]
    header, rows = table(invoke("report", *seeds, *plot).output)
    assert header[9:] == ["seed"]
    assert [rows[str(run)][9] for run in seeds] == ["0", "7"]

    other = copy_run(finished, tmp_path / "c" / "run", lr=0.1, sampling="activity",
                     partition=str(tmp_path / "elsewhere" / "parts"))
    header, rows = table(invoke("report", seeds[0], other, *plot).output)
    assert header[9:] == ["lr", "sampling", "partition", "partition_scheme", "partition_clients", "partition_seed"]
    assert rows[str(other)][9:13] == ["0.1", "activity", "elsewhere/parts", "-"]
    partition = Path(json.loads((finished / "config.json").read_text())["partition"])
    assert rows[str(seeds[0])][11] == f"{partition.parent.name}/parts"


# -- the plot legend ----------------------------------------------------------------------------------


@pytest.mark.parametrize("paths, names", [
    (["x/fedavg", "x/fedprox"], ["fedavg", "fedprox"]),
    (["/p/a/run", "/p/b/run", "/q/a/run"], ["p/a/run", "b/run", "q/a/run"]),
    (["/r/run", "/r/run"], ["run", "run"]),  # the same run twice cannot be told apart
    (["/s/t/run", "/t/run"], ["s/t/run", "/t/run"]),
])
def test_distinguishing_names_are_the_shortest_unique_suffixes(paths, names):
    assert distinguishing_names(paths) == names


def test_distinguishing_names_compare_absolute_paths(tmp_path, monkeypatch):
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    assert distinguishing_names(["../a/run", "run"]) == ["a/run", "b/run"]


def test_plot_legend_tells_equally_named_runs_apart(finished, tmp_path, monkeypatch):
    import fedpart.figures

    runs = [copy_run(finished, tmp_path / name / "run") for name in ("a", "b")]
    assert run_labels([load_run(run) for run in runs]) == ["a/run (fedavg)", "b/run (fedavg)"]
    drawn = {}
    save = fedpart.figures.save_figure

    def capture(fig, path):
        ax = fig.axes[0]
        drawn.update(labels=[t.get_text() for t in ax.get_legend().get_texts()], ylabel=ax.get_ylabel(),
                     lines=[list(line.get_ydata()) for line in ax.get_lines()])
        return save(fig, path)

    monkeypatch.setattr(fedpart.figures, "save_figure", capture)
    result = invoke("report", *runs, "--plot", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    assert drawn["labels"] == ["a/run (fedavg)", "b/run (fedavg)"] and drawn["ylabel"] == "accuracy (tc)"
    result = invoke("report", *runs, "--plot", tmp_path / "r.png", "--metric", "macro_f1")
    assert result.exit_code == 0, result.output
    assert drawn["ylabel"] == "macro_f1 (tc)"
    assert drawn["lines"][0] == [line["metrics"]["macro_f1"] for line in read_lines(finished)]


# -- --metric ------------------------------------------------------------------------------------------


def test_metric_option_tabulates_another_metric_and_lists_the_known_ones(finished, fedprox, tmp_path):
    result = invoke("report", finished, fedprox, "--plot", tmp_path / "r.png", "--metric", "macro_f1")
    assert result.exit_code == 0, result.output
    header, rows = table(result.output)
    values = [line["metrics"]["macro_f1"] for line in read_lines(fedprox)]
    assert rows[str(fedprox)][4:7] == ["macro_f1", f"{values[-1]:.4f}", f"{max(values):.4f}"]
    result = invoke("report", finished, "--plot", tmp_path / "s.png", "--metric", "rougeL")
    assert_refused(result, "--metric rougeL", str(finished), "accuracy, macro_f1", out=tmp_path / "s.png")


# -- refused outputs ------------------------------------------------------------------------------------


def test_outputs_inside_a_run_or_colliding_are_refused_before_any_work(finished, tmp_path):
    before = sorted(p.name for p in finished.iterdir())
    plot = ["--plot", tmp_path / "r.png"]
    assert_refused(invoke("report", finished, *plot, "--json", finished / "cmp.json"),
                   "lies inside the run", "--json", out=finished / "cmp.json")
    assert_refused(invoke("report", finished, *plot, "--csv", finished / "sub" / "cmp.csv"),
                   "lies inside the run", "--csv")
    assert_refused(invoke("report", finished, *plot, "--csv", finished), "is a directory", "--csv")
    assert_refused(invoke("report", finished, *plot, "--json", tmp_path / "x", "--csv", tmp_path / "x"),
                   "--json and --csv name the same file", out=tmp_path / "x")
    assert_refused(invoke("report", finished, *plot, "--json", tmp_path / "r.png"), "--plot and --json")
    assert sorted(p.name for p in finished.iterdir()) == before
    assert not (tmp_path / "r.png").exists()


def test_missing_folders_of_the_outputs_are_created_as_for_out_directories(finished, tmp_path):
    result = invoke("report", finished, "--plot", tmp_path / "figs" / "r", "--csv", tmp_path / "tables" / "x.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figs" / "r.png").is_file() and (tmp_path / "tables" / "x.csv").is_file()
    assert f"plot: {tmp_path / 'figs' / 'r.png'}" in result.output


# -- light ----------------------------------------------------------------------------------------------


def test_report_does_not_import_torch(finished, fedprox, tmp_path):
    code = ("import sys; from click.testing import CliRunner; from fedpart.cli import main; "
            f"r = CliRunner().invoke(main, ['report', {str(finished)!r}, {str(fedprox)!r}, '--metric', 'macro_f1', "
            f"'--plot', {str(tmp_path / 'r.png')!r}, '--json', {str(tmp_path / 'r.json')!r}, "
            f"'--csv', {str(tmp_path / 'r.csv')!r}]); "
            "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "r.json").is_file() and (tmp_path / "r.csv").is_file()


# -- distilled runs: their own partition (a partition --data) and the teacher's ---------------------------


def test_a_distilled_run_records_its_partition_and_its_teachers(finished, parts, tmp_path):
    from fedpart.train.report import run_record

    parts = shutil.copytree(parts, tmp_path / "parts")  # both are changed below
    teacher = copy_run(finished, tmp_path / "teacher", partition=str(parts))
    common = ["--spacy-model", "none", "--rounds", "1", "--device", "cpu", "-q"]
    on_parts = tmp_path / "fl-student"
    result = invoke("distill", teacher, "--data", parts, "--algo", "fedavg", "--clients-per-round", "2", *common,
                    "--out", on_parts)
    assert result.exit_code == 0, result.output
    data_file = tmp_path / "corpus.parquet"
    shutil.copy(parts / "test.parquet", data_file)
    on_file = tmp_path / "student"
    result = invoke("distill", teacher, "--data", data_file, *common, "--out", on_file)
    assert result.exit_code == 0, result.output

    manifest = json.loads((parts / "manifest.json").read_text())
    partition_of = {"partition_scheme": manifest["scheme"], "partition_clients": len(manifest["clients"]),
                    "partition_seed": manifest["seed"], "partition_manifest": "verified"}
    fl, central = run_record(load_run(on_parts)), run_record(load_run(on_file))
    assert fl["partition"] == str(parts.resolve()) and {k: fl[k] for k in partition_of} == partition_of
    assert (fl["sampler"], fl["clients_per_round"]) == ("fedpart", 2)
    assert central["partition"] is None and central["partition_manifest"] == "none"
    assert central["partition_scheme"] is None and central["sampler"] is None  # centralised: no clients
    for record in (fl, central):
        assert record["teacher"] == str(teacher.resolve()) and record["teacher_partition"] == str(parts)
        assert {k: record[f"teacher_{k}"] for k in partition_of} == partition_of
    header, rows = table(invoke("report", on_parts, on_file, "--plot", tmp_path / "r.png").output)
    assert "partition" in header and "teacher_partition" not in header  # the same teacher: no column

    shutil.rmtree(teacher)  # the teacher's run directory is gone
    central = run_record(load_run(on_file))
    assert central["teacher_partition"] is None and central["teacher_partition_manifest"] == "missing"
    with open(parts / "manifest.json", "a") as handle:  # partitioned again since the distillation
        handle.write("\n")
    changed = run_record(load_run(on_parts))
    assert changed["partition_manifest"] == "changed" and changed["partition_scheme"] is None
