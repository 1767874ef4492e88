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
from fedpart.distill.runner import distill as fedpart_distill
from fedpart.errors import ExcessClientsWarning
from fedpart.manifest import Manifest
from fedpart.train.federated import FederatedConfig
from fedpart.train.runner import check_partition_task, load_trained, train
from fedpart.train.rundir import FINISHED_FILE
from conftest import AG_NEWS_CSV  # noqa: E402
from conftest import assert_refused as assert_one_line_error  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TINY = FederatedConfig(rounds=1, clients_per_round=2, lr=0.5, batch_size=32)




def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


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
    for name, fragment in (("empty.parquet", "has no rows"), ("str.parquet", "labels the model was not trained on")):
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
    blocked = tmp_path / "file" / "sub"  # a missing folder is created, one under a file cannot be
    assert_one_line_error(invoke("report", finished, "--plot", blocked / "r.png"), "is a file, not a folder", "--plot")
    assert_one_line_error(invoke("eval", "bias", finished, "--json", blocked / "b.json", "--plot", tmp_path / "b.png"),
                          "is a file, not a folder", "--json")
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "m").exists()
    result = invoke("distill", finished, "--data", parts, "--student-size", "large", "--out", tmp_path / "d")
    assert_one_line_error(result, "--student-size 'large'")


def test_clients_per_round_above_the_clients_is_reported(parts, tmp_path):
    result = invoke("train", parts, "--task", "tc", "--rounds", "1", "--clients-per-round", "10", "--device", "cpu",
                    "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    assert "--clients-per-round 10 exceeds the 3 non-empty clients" in result.output
    default = invoke("train", parts, "--task", "tc", "--rounds", "1", "--device", "cpu", "--out", tmp_path / "d", "-q")
    assert default.exit_code == 0, default.output
    assert default.output == ""  # the default 10 reads "at most 10": nothing to warn about
    with pytest.warns(ExcessClientsWarning, match="--clients-per-round 10 exceeds the 3"):  # the API cannot tell
        train(parts, task="tc", out=tmp_path / "api", config=FederatedConfig(rounds=1), device="cpu")


# -- outputs over inputs, earlier runs, partition verification, plots, messages ---------------------------


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_an_out_that_is_or_holds_an_input_is_refused_before_anything_is_deleted(parts, finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    shutil.copytree(parts, run / "part")
    shutil.copy(parts / "test.parquet", run / "data.parquet")
    before = _tree(run)
    cases = [
        ["train", run / "part", "--task", "tc", "--out", run, "--overwrite"],  # the partition
        ["distill", run, "--data", parts / "test.parquet", "--out", run, "--overwrite"],  # the teacher
        ["distill", finished, "--data", run / "data.parquet", "--out", run, "--overwrite"],  # --data
        ["train", parts, "--task", "tc", "--eval-data", run / "data.parquet", "--out", run, "--overwrite"],
    ]
    for args in cases:
        assert_one_line_error(invoke(*args, "--device", "cpu", "--rounds", "1"), f"{run}: is or contains the input")
        assert _tree(run) == before
    with pytest.raises(fedpart.OutputError, match="is or contains the input"):
        train(run / "part", task="tc", out=run, config=TINY, device="cpu", overwrite=True)
    assert _tree(run) == before


@pytest.mark.parametrize(
    ("config", "metrics", "earlier_run"),
    [("{}", None, False), ("not json", None, False), ('{"task": 3}', None, False), ("[1]", "", False),
     ('{"task": "tc"}', None, True),
     (None, '{"round": 1, "metrics": {"accuracy": 0.5}}\n', True), (None, '{"round": 1}\n', False)],
)
def test_only_a_real_run_record_makes_a_directory_an_earlier_run(parts, tmp_path, config, metrics, earlier_run):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    if config is not None:
        (out / "config.json").write_text(config)
    if metrics is not None:
        (out / "metrics.jsonl").write_text(metrics)
    if earlier_run:
        train(parts, task="tc", out=out, config=TINY, device="cpu", overwrite=True)
        assert not (out / "notes.txt").exists() and (out / FINISHED_FILE).is_file()
    else:
        with pytest.raises(fedpart.OutputError, match="not an earlier fedpart output"):
            train(parts, task="tc", out=out, config=TINY, device="cpu", overwrite=True)
        assert (out / "notes.txt").read_text() == "keep me"


def _as_multi_part(parts: Path, out: Path) -> Path:
    """``parts`` rewritten with Ray-engine shards: each client a directory of part files listed in
    the manifest (two parts for client 0)."""
    from fedpart.manifest import parts_digest
    from fedpart.verify import sha256_of

    shutil.copytree(parts, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for index, record in enumerate(manifest["clients"]):
        table = pq.read_table(out / record["file"])
        (out / record["file"]).unlink()
        directory = f"clients/client-{index:05d}"
        (out / directory).mkdir(parents=True)
        pieces = [table.slice(0, 2), table.slice(2)] if index == 0 else [table]
        listing = []
        for number, piece in enumerate(pieces):
            name = f"{directory}/part-{number:05d}.parquet"
            pq.write_table(piece, out / name)
            listing.append({"file": name, "rows": piece.num_rows, "sha256": sha256_of(out / name)})
        record.update(file=directory, parts=listing, sha256=parts_digest(listing))
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_a_file_the_manifest_does_not_list_in_a_shard_directory_is_refused(parts, tmp_path):
    from fedpart.train.runner import shard_table
    from fedpart.verify import verify_partition

    multi = _as_multi_part(parts, tmp_path / "multi")
    manifest = verify_partition(multi)  # as written: every part listed and intact
    first = manifest.clients[0]
    assert shard_table(multi, first, "tc").num_rows == first.rows
    shutil.copy(multi / "clients/client-00001/part-00000.parquet", multi / "clients/client-00000/part-00002.parquet")
    # read as a directory, the shard would take in the other client's rows
    assert pq.read_table(multi / first.file).num_rows > first.rows
    assert shard_table(multi, first, "tc").num_rows == first.rows  # reads the listed parts only
    result = invoke("train", multi, "--task", "tc", "--device", "cpu", "--out", tmp_path / "r")
    assert_one_line_error(result, "clients/client-00000: holds files manifest.json does not list (part-00002.parquet)")
    assert not (tmp_path / "r").exists()
    (multi / "clients/client-00000/part-00002.parquet").unlink()
    (multi / "clients/client-00000/part-00001.parquet").unlink()
    with pytest.raises(fedpart.InputError, match="part-00001.parquet: shard listed in manifest.json is missing"):
        verify_partition(multi)


def test_light_modules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, fedpart.verify, fedpart.figures, fedpart.train.report; "
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_paths_are_checked_first_and_get_png_without_extension(finished, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("report", finished, "--plot", "r.txt"), "--plot r.txt: cannot write a .txt plot",
                          ".png, .pdf, .svg")
    assert_one_line_error(invoke("eval", "bias", finished, "--device", "cpu", "--plot", "b.txt"),
                          "cannot write a .txt plot")
    assert not list(tmp_path.iterdir())
    result = invoke("report", finished, "--plot", "noext")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "plot: noext.png"
    assert (tmp_path / "noext.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "noext").exists()
    assert invoke("report", finished, "--plot", "r.PDF").exit_code == 0
    assert (tmp_path / "r.PDF").read_bytes()[:5] == b"%PDF-"
    assert invoke("report", finished, "--plot", "r.svg").exit_code == 0
    assert b"<svg" in (tmp_path / "r.svg").read_bytes()


def test_messages_name_what_to_do(parts, finished, tmp_path):
    (tmp_path / "bad.csv").write_text("foo,bar\nx,1\n")
    result = invoke("train", parts, "--task", "tc", "--device", "cpu", "--clients-per-round", "2",
                    "--eval-data", tmp_path / "bad.csv", "--out", tmp_path / "r")
    assert_one_line_error(result, f"`fedpart convert {tmp_path / 'bad.csv'} --task tc --text-col COLUMN")
    assert "name it with" not in result.output
    assert "CSV/TSV/JSONL" in invoke("train", "--help").output
    other = tmp_path / "st-part"
    shutil.copytree(parts, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "task": "st"}))
    result = invoke("distill", finished, "--data", other, "--device", "cpu", "--out", tmp_path / "d")
    assert_one_line_error(result, f"the teacher {finished} is a --task tc run")
    assert "train it with" not in result.output


def test_a_finished_run_needs_a_valid_completion_record_and_its_model(finished, tmp_path):
    import torch

    from fedpart.train.report import load_run

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / FINISHED_FILE).write_text("garbage")
    with pytest.raises(fedpart.InputError, match="finished.json: not a fedpart completion record"):
        load_trained(run, torch.device("cpu"))
    assert not load_run(run).finished and load_run(finished).finished
    (run / FINISHED_FILE).write_text('{"rounds": "one"}')
    assert not load_run(run).finished
    shutil.copy(finished / FINISHED_FILE, run / FINISHED_FILE)
    (run / "model.pt").unlink()
    with pytest.raises(fedpart.InputError, match="finished, but its model.pt is missing"):
        load_trained(run, torch.device("cpu"))
    (run / "config.json").write_text("[]")
    with pytest.raises(fedpart.InputError, match="config.json: not a fedpart run configuration"):
        load_trained(run, torch.device("cpu"))


def test_an_hf_model_directory_without_a_tokenizer_vocabulary_is_refused(parts, tmp_path):
    transformers = pytest.importorskip("transformers")
    from fedpart.tasks.models import make_hf_task_model

    model_dir = tmp_path / "tiny-bert"
    model_dir.mkdir()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (model_dir / "vocab.txt").write_text("\n".join([*specials, "the", "world", "news"]) + "\n")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(model_dir)
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=8, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=16)
    transformers.BertModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    table = pq.read_table(parts / "test.parquet")
    make_hf_task_model("tc", str(model_dir)).fit([table])  # with its tokenizer: loads
    for name in ("tokenizer.json", "vocab.txt"):
        (model_dir / name).unlink()  # weights and config only (tokenizer_config.json stays)
    with pytest.raises(fedpart.InputError, match="cannot load its Hugging Face tokenizer .no vocabulary file"):
        make_hf_task_model("tc", str(model_dir)).fit([table])
    (model_dir / "vocab.txt").write_text("\n".join(specials) + "\n")  # special tokens only
    with pytest.raises(fedpart.InputError, match="its vocabulary holds only its 5 special tokens"):
        make_hf_task_model("tc", str(model_dir)).fit([table])
    result = invoke("train", parts, "--task", "tc", "--device", "cpu", "--clients-per-round", "2",
                    "--hf-model", model_dir, "--out", tmp_path / "r")
    assert_one_line_error(result, "cannot load its Hugging Face tokenizer")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("changes, message", [
    (dict(rounds="2"), "--rounds must be an integer, got '2'"),
    (dict(rounds=2.5), "--rounds must be an integer, got 2.5"),
    (dict(local_epochs=True), "--local-epochs must be an integer, got True"),
    (dict(batch_size=None), "--batch-size must be an integer, got None"),
    (dict(lr="0.1"), "--lr must be a number, got '0.1'"),
    (dict(algo="fedprox", mu=None), "--mu must be a number, got None"),
    (dict(server_opt="adam", server_tau=0), r"server_tau \(the server Adam's epsilon\) must be > 0"),
    (dict(server_betas=(2, 0.5)), r"server_betas must be two numbers in \[0, 1\)"),
    (dict(server_betas="x"), r"server_betas must be two numbers in \[0, 1\)"),
])
def test_federated_config_refuses_wrong_types_with_the_option_name(changes, message):
    with pytest.raises(fedpart.InputError, match=message):
        FederatedConfig(**changes)


def test_federated_config_takes_numpy_numbers_as_plain_python_ones():
    import numpy as np

    config = FederatedConfig(rounds=np.int64(3), lr=np.float32(0.1), server_betas=[0.9, 0.999])
    assert (config.rounds, config.lr, config.server_betas) == (3, 0.1, (0.9, 0.999))
    assert type(config.rounds) is int and type(config.lr) is float  # config.json is JSON


@pytest.mark.parametrize("changes, message", [
    (dict(config=None), "config must be a FederatedConfig"),
    (dict(config={"rounds": 1}), "config must be a FederatedConfig"),
    (dict(device=None), "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got None"),
    (dict(eval_data=3), r"eval_data must be a path \(a str or pathlib.Path\), got 3"),
    (dict(out=None), "out must be a path"),
    (dict(stop_after=0), "stop_after must be at least 1, got 0"),
])
def test_train_and_distill_refuse_wrong_argument_types(parts, finished, tmp_path, changes, message):
    arguments = {**dict(out=tmp_path / "r", config=FederatedConfig(rounds=1), device="cpu"), **changes}
    with pytest.raises(fedpart.InputError, match=message):
        train(parts, task="tc", **arguments)
    with pytest.raises(fedpart.InputError, match=message):
        fedpart_distill(finished, data=parts, **arguments)
    assert not (tmp_path / "r").exists()


def test_train_refuses_an_hf_model_that_is_not_a_path(parts, tmp_path):
    with pytest.raises(fedpart.InputError, match=r"hf_model must be a path \(a str or pathlib.Path\), got 3"):
        train(parts, task="tc", out=tmp_path / "r", config=FederatedConfig(rounds=1), device="cpu", hf_model=3)
    assert not (tmp_path / "r").exists()


def test_resume_without_a_run_starts_one_and_says_so(parts, tmp_path):
    result = invoke("train", parts, "--task", "tc", "--rounds", "1", "--clients-per-round", "2", "--device", "cpu",
                    "--resume", "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    assert f"warning: {tmp_path / 'r'}: no run to --resume there yet; starting a new one" in result.output
    assert (tmp_path / "r" / FINISHED_FILE).is_file()
    again = invoke("train", parts, "--task", "tc", "--rounds", "1", "--clients-per-round", "2", "--device", "cpu",
                   "--resume", "--out", tmp_path / "r", "-q")
    assert again.exit_code == 0 and "no run to --resume" not in again.output  # finished: nothing to run


def test_unknown_task_and_header_only_input_are_named_as_such(tmp_path):
    with pytest.raises(fedpart.InputError, match="unknown --task 'TC'"):
        fedpart.partition(AG_NEWS_CSV, task="TC", label_col="label", out=tmp_path / "o", scheme="iid", clients=2)
    (tmp_path / "empty.csv").write_text("text,label\n")
    with pytest.raises(fedpart.InputError, match="text column 'text' holds no values at all"):
        fedpart.partition(tmp_path / "empty.csv", task="tc", out=tmp_path / "o", scheme="iid", clients=1)


def test_parquet_evaluation_data_gets_the_task_readers_checks(parts, tmp_path):
    """An --eval-data Parquet file with empty texts is refused as a CSV with them is, with the
    convert command that writes a clean copy; that copy is accepted."""
    bad = tmp_path / "eval.parquet"
    pq.write_table(pa.table({"text": ["she won", None, "", "he lost"], "label": [1, 2, 1, 3]}), bad)
    result = invoke("train", parts, "--task", "tc", "--rounds", "1", "--clients-per-round", "2", "--device", "cpu",
                    "--eval-data", bad, "--out", tmp_path / "r", "-q")
    assert_one_line_error(result, f"{bad}: 2 row(s) have an empty text (first: row 1: text is None)",
                          f"`fedpart convert {bad} --task tc --drop-invalid --out FILE.parquet`")
    assert not (tmp_path / "r").exists()
    clean = tmp_path / "clean.parquet"
    assert invoke("convert", bad, "--task", "tc", "--drop-invalid", "--out", clean).exit_code == 0
    result = invoke("train", parts, "--task", "tc", "--rounds", "1", "--clients-per-round", "2", "--device", "cpu",
                    "--eval-data", clean, "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
