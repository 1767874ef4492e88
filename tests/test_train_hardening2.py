"""More hardening of ``fedpart train``/``distill``/``eval bias``/``report``: diverged models, label
sets the model does not know, resume after changed inputs or an interruption at any point, elapsed
time across resumes, messages that name the printing command's own options, and warnings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.distill.runner import DistillConfig, distill
from fedpart.io.sources import ReadOptions
from fedpart.train import runner
from fedpart.train.federated import FederatedConfig
from fedpart.train.rundir import CHECKPOINT_FILE, FINISHED_FILE, METRICS_FILE, MODEL_FILE
from fedpart.train.runner import train
from conftest import assert_refused as assert_one_line_error  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TINY = FederatedConfig(rounds=1, clients_per_round=2, lr=0.5, batch_size=32)
TWO = FederatedConfig(rounds=2, clients_per_round=2, lr=0.5, batch_size=32)
CPU = ["--device", "cpu", "--threads", "1", "-q"]




@pytest.fixture(scope="module")
def corpus(parts, tmp_path_factory) -> Path:
    """The partition's training rows as one Parquet file (text, label 1..4)."""
    tables = [pq.read_table(path).select(["text", "label"]) for path in sorted((parts / "clients").glob("*.parquet"))]
    out = tmp_path_factory.mktemp("hardening2") / "corpus.parquet"
    pq.write_table(pa.concat_tables(tables), out)
    return out


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _relabelled(source: Path, out: Path, mapping: dict[int, int]) -> Path:
    table = pq.read_table(source)
    labels = pa.array([mapping.get(v, v) for v in table.column("label").to_pylist()])
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label", labels), out)
    return out


# -- 1. divergence -------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["fedavg", "fedprox"])
def test_a_run_diverging_in_its_first_round_is_an_error_that_leaves_nothing(parts, tmp_path, algo):
    mu = ["--mu", "0.01"] if algo == "fedprox" else []
    result = invoke("train", parts, "--task", "tc", "--algo", algo, *mu, "--lr", "1e30", "--rounds", "2",
                    "--clients-per-round", "3", "--out", tmp_path / "r", *CPU)
    assert_one_line_error(result, "round 1: training diverged", "lower --lr than 1e+30")
    assert "--overwrite" not in result.output  # nothing is left to overwrite
    assert not (tmp_path / "r").exists()


def test_a_distillation_diverging_is_an_error_that_leaves_nothing(finished, corpus, tmp_path):
    result = invoke("distill", finished, "--data", corpus, "--lr", "1e6", "--rounds", "1", "--spacy-model", "none",
                    "--out", tmp_path / "d", *CPU)
    assert_one_line_error(result, "round 1: training diverged", "--alpha-kd")
    assert not (tmp_path / "d").exists()


def test_a_later_diverging_round_keeps_the_checkpoint_but_never_finishes(parts, tmp_path, monkeypatch):
    real_round = runner.federated_round

    def nan_in_round_2(*args, **kwargs):
        state, chosen = real_round(*args, **kwargs)
        if args[-1] == 2:
            state.weights[0] = float("nan")
        return state, chosen

    monkeypatch.setattr(runner, "federated_round", nan_in_round_2)
    with pytest.raises(runner.DivergedError, match="round 2: training diverged") as raised:
        train(parts, task="tc", out=tmp_path / "r", config=TWO, device="cpu")
    assert str(raised.value).endswith(f"train again with a lower --lr than {TWO.lr:g} and --overwrite "
                                      f"({tmp_path / 'r'} keeps the rounds before it)")
    assert torch.load(tmp_path / "r" / CHECKPOINT_FILE)["round"] == 1
    assert not (tmp_path / "r" / FINISHED_FILE).exists() and not (tmp_path / "r" / MODEL_FILE).exists()
    assert [json.loads(line)["round"] for line in (tmp_path / "r" / METRICS_FILE).read_text().splitlines()] == [1]


def test_hyper_parameters_beyond_torch_float_are_refused_up_front(parts, finished, corpus, tmp_path):
    result = invoke("train", parts, "--task", "tc", "--lr", "1e308", "--out", tmp_path / "r", *CPU)
    assert_one_line_error(result, "--lr 1e+308 overflows torch's 32-bit floats")
    result = invoke("distill", finished, "--data", corpus, "--alpha-kd", "1e308", "--out", tmp_path / "d", *CPU)
    assert_one_line_error(result, "--alpha-kd 1e+308 overflows")
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()
    with pytest.raises(fedpart.InputError, match="--server-lr"):
        FederatedConfig(server_lr=1e39)
    with pytest.raises(fedpart.InputError, match="--alpha-lm"):
        DistillConfig(alpha_lm=-1e39)


def test_eval_bias_and_distill_refuse_a_model_with_non_finite_weights_or_outputs(finished, corpus, tmp_path):
    nan_run, huge_run = tmp_path / "nan", tmp_path / "huge"
    for run, value in ((nan_run, float("nan")), (huge_run, 3e38)):
        shutil.copytree(finished, run)
        weights = torch.load(run / MODEL_FILE)
        weights["output.weight"].fill_(value)
        torch.save(weights, run / MODEL_FILE)
    result = invoke("eval", "bias", nan_run, "--spacy-model", "none", "--device", "cpu", "--plot", tmp_path / "b.png")
    assert_one_line_error(result, "NaN or infinite weights", "lower --lr")
    result = invoke("distill", nan_run, "--data", corpus, "--out", tmp_path / "d", *CPU)
    assert_one_line_error(result, "NaN or infinite weights")
    result = invoke("eval", "bias", huge_run, "--spacy-model", "none", "--device", "cpu", "--plot", tmp_path / "b.png")
    assert_one_line_error(result, "class probabilities are NaN or infinite")  # finite weights, overflowing logits
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "d").exists()


# -- 2. label sets -------------------------------------------------------------------------------


def test_data_with_labels_the_model_does_not_know_is_refused(parts, finished, corpus, tmp_path):
    partial = _relabelled(corpus, tmp_path / "partial.parquet", {4: 5})  # labels 1, 2, 3 still overlap
    result = invoke("distill", finished, "--data", partial, "--out", tmp_path / "d", *CPU)
    assert_one_line_error(result, "distillation data has labels the model was not trained on (5;", "1, 2, 3, 4")
    result = invoke("eval", "bias", finished, "--eval-data", partial, "--spacy-model", "none", "--device", "cpu",
                    "--plot", tmp_path / "b.png")
    assert_one_line_error(result, "evaluation data has labels the model was not trained on (5;")
    result = invoke("train", parts, "--task", "tc", "--clients-per-round", "3", "--eval-data", partial,
                    "--out", tmp_path / "r", *CPU)
    assert_one_line_error(result, "not trained on (5;")
    assert not (tmp_path / "d").exists() and not (tmp_path / "r").exists()


def test_a_label_only_in_the_partitions_own_test_split_does_not_block_train_eval_or_distill(tmp_path):
    texts = [f"she told her son story {i}" if i % 2 else f"he met his aunt at {i}" for i in range(41)]
    data = tmp_path / "rare.parquet"
    pq.write_table(pa.table({"text": texts, "label": ["a"] * 20 + ["b"] * 20 + ["c"]}), data)
    rare = tmp_path / "rare-parts"
    fedpart.partition(data, task="tc", scheme="iid", clients=2, test_frac=0.6, out=rare, plot=False)
    assert "c" in pq.read_table(rare / "test.parquet")["label"].to_pylist()  # the premise: c is only in test
    assert all("c" not in pq.read_table(rare / "clients" / f)["label"].to_pylist()
               for f in ("client-00000.parquet", "client-00001.parquet"))
    train(rare, task="tc", out=tmp_path / "run", config=TINY, device="cpu")  # scored as it is: c counts as wrong
    result = invoke("eval", "bias", tmp_path / "run", "--spacy-model", "none", "--device", "cpu",
                    "--plot", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    result = invoke("distill", tmp_path / "run", "--data", rare, "--algo", "fedavg", "--clients-per-round", "2",
                    "--rounds", "1", "--spacy-model", "none", "--out", tmp_path / "d", *CPU)
    assert result.exit_code == 0, result.output


def test_a_teacher_with_fewer_labels_than_the_data_is_refused(parts, corpus, tmp_path):
    binary = tmp_path / "binary-parts"
    fedpart.partition(_relabelled(corpus, tmp_path / "binary.parquet", {3: 1, 4: 2}), task="tc", scheme="iid",
                      clients=2, test_frac=0.2, out=binary, plot=False)
    train(binary, task="tc", out=tmp_path / "teacher", config=TINY, device="cpu")
    result = invoke("distill", tmp_path / "teacher", "--data", parts, "--algo", "fedavg", "--clients-per-round", "3",
                    "--out", tmp_path / "d", *CPU)
    assert_one_line_error(result, f"{parts}: the distillation data has labels", "(3, 4;", "labels: 1, 2)")
    assert not (tmp_path / "d").exists()


def test_tagging_evaluation_data_with_entity_types_the_partition_never_had_is_refused(tmp_path):
    st_parts = tmp_path / "st"
    fedpart.partition(FIXTURES / "wnut17" / "sample.conll", task="st", scheme="iid", clients=2, test_frac=0.1,
                      out=st_parts, plot=False)
    with pytest.raises(fedpart.InputError, match="has entity types the model was not trained on .'LOC', 'MISC'"):
        train(st_parts, task="st", out=tmp_path / "r", config=TINY, device="cpu",
              eval_data=str(FIXTURES / "conll2003" / "sample.conll"))
    assert not (tmp_path / "r").exists()


def test_entity_types_of_tags():
    from fedpart.evaluation.tagging import entity_types

    assert entity_types(["O", "B-PER", "I-PER", "S-LOC", "U-ORG", "NN"]) == {"PER", "LOC", "ORG", "NN"}


# -- 3. distill --resume with a changed teacher or data ------------------------------------------


def test_distill_resume_refuses_a_retrained_teacher_or_changed_data(parts, finished, corpus, tmp_path):
    teacher, data = tmp_path / "teacher", tmp_path / "data.parquet"
    shutil.copytree(finished, teacher)
    shutil.copy(corpus, data)
    options = dict(out=tmp_path / "d", config=FederatedConfig(algo="centralized", rounds=2, lr=0.5),
                   distill_config=DistillConfig(spacy_model="none"), device="cpu")
    distill(teacher, data=data, stop_after=1, **options)
    saved = json.loads((tmp_path / "d" / "config.json").read_text())
    assert saved["data_sha256"] == fedpart.verify.sha256_of(data)
    pq.write_table(pq.read_table(corpus).slice(0, 100), data)  # rewritten in place
    with pytest.raises(fedpart.OutputError, match="data_sha256.*contents of its inputs changed"):
        distill(teacher, data=data, resume=True, **options)
    shutil.copy(corpus, data)
    train(parts, task="tc", out=teacher, config=FederatedConfig(rounds=1, clients_per_round=2, lr=0.5, seed=1),
          device="cpu", overwrite=True)
    with pytest.raises(fedpart.OutputError, match="teacher_model_sha256"):
        distill(teacher, data=data, resume=True, **options)
    assert not (tmp_path / "d" / FINISHED_FILE).exists()


def test_a_distillation_started_without_input_digests_can_still_be_resumed(finished, corpus, tmp_path):
    options = dict(out=tmp_path / "d", config=FederatedConfig(algo="centralized", rounds=2, lr=0.5),
                   distill_config=DistillConfig(spacy_model="none"), device="cpu")
    distill(finished, data=corpus, stop_after=1, **options)
    config_file = tmp_path / "d" / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["data_sha256"], saved["teacher_model_sha256"]  # as an older fedpart wrote it
    config_file.write_text(json.dumps(saved))
    records = distill(finished, data=corpus, resume=True, **options)
    assert [r["round"] for r in records][-1] == 2 and (tmp_path / "d" / FINISHED_FILE).exists()


def test_distilling_on_the_corpus_the_teachers_partition_came_from_warns_of_seen_evaluation_rows(
        finished, parts, corpus, tmp_path):
    """--data without a test split scores on the teacher's test split: if --data holds those rows (the
    whole corpus the teacher's partition was made from), the student's score is on training data."""
    import warnings

    test = pq.read_table(parts / "test.parquet").select(["text", "label"])
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(corpus), test]), whole)
    options = dict(config=FederatedConfig(algo="centralized", rounds=1, lr=0.5),
                   distill_config=DistillConfig(spacy_model="none"), device="cpu")
    with pytest.warns(fedpart.errors.FedpartWarning,
                      match=rf"{test.num_rows} of {test.num_rows} evaluation rows \(.*test.parquet, the teacher's "
                            r"evaluation data, scored because --data has no test split\) have texts that are also in "
                            "--data.*pass --eval-data"):
        distill(finished, data=whole, out=tmp_path / "d", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fedpart.errors.FedpartWarning)  # the training rows alone: no warning
        distill(finished, data=corpus, out=tmp_path / "e", **options)
        distill(finished, data=whole, out=tmp_path / "f", eval_data=str(parts / "test.parquet"), **options)
    result = invoke("distill", finished, "--data", whole, "--rounds", "1", "--spacy-model", "none",
                    "--out", tmp_path / "g", *CPU)
    assert result.exit_code == 0 and f"warning: {test.num_rows} of {test.num_rows} evaluation rows" in result.output


# -- 4./5. metrics and elapsed time across an interruption -----------------------------------------


def _timeless(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    return [{k: v for k, v in record.items() if k != "wall_time_s"} for record in records]


@pytest.mark.parametrize("after_saving", [True, False])
def test_a_run_interrupted_between_metrics_and_checkpoint_logs_every_round_once(parts, tmp_path, monkeypatch,
                                                                                after_saving):
    config = FederatedConfig(rounds=3, clients_per_round=2, lr=0.5)
    train(parts, task="tc", out=tmp_path / "whole", config=config, device="cpu")
    real_save = runner._save_checkpoint
    stop_round = 1 if after_saving else 2

    def save_then_stop(out, round_index, *args):
        if not after_saving and round_index == stop_round:
            raise KeyboardInterrupt  # its metrics line is written, its checkpoint not
        real_save(out, round_index, *args)
        if after_saving and round_index == stop_round:
            raise KeyboardInterrupt  # checkpoint written, nothing after it

    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(parts, task="tc", out=tmp_path / "cut", config=config, device="cpu")
    monkeypatch.setattr(runner, "_save_checkpoint", real_save)
    train(parts, task="tc", out=tmp_path / "cut", config=config, device="cpu", resume=True)
    assert _timeless(tmp_path / "cut") == _timeless(tmp_path / "whole")
    assert [r["round"] for r in _timeless(tmp_path / "cut")] == [1, 2, 3]


def test_wall_time_goes_on_across_resume_and_report_rates_the_whole_run(parts, tmp_path):
    run = tmp_path / "run"
    train(parts, task="tc", out=run, config=TWO, device="cpu", stop_after=1)
    checkpoint = torch.load(run / CHECKPOINT_FILE)
    assert checkpoint["elapsed_s"] > 0
    torch.save({**checkpoint, "elapsed_s": 100.0}, run / CHECKPOINT_FILE)  # as if round 1 took 100 s
    records = train(parts, task="tc", out=run, config=TWO, device="cpu", resume=True)
    assert records[-1]["round"] == 2 and records[-1]["wall_time_s"] >= 100.0
    result = invoke("report", run, "--plot", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    rate = next(row for row in rows if row.startswith(str(run))).split()[header.split().index("rounds/s")]
    assert float(rate) <= 2 / 100.0


# -- 6. Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_says_whether_a_resumable_run_was_left(parts, tmp_path, monkeypatch):
    real_round = runner.federated_round

    def interrupt_in(round_to_stop):
        def federated_round(*args, **kwargs):
            if args[-1] == round_to_stop:
                raise KeyboardInterrupt
            return real_round(*args, **kwargs)
        return federated_round

    args = ["train", parts, "--task", "tc", "--rounds", "3", "--clients-per-round", "2", *CPU]
    monkeypatch.setattr(runner, "federated_round", interrupt_in(1))
    result = invoke(*args, "--out", tmp_path / "first")
    assert result.exit_code == 130 and "interrupted; nothing was written" in result.output
    assert not (tmp_path / "first").exists()
    monkeypatch.setattr(runner, "federated_round", interrupt_in(2))
    result = invoke(*args, "--out", tmp_path / "later")
    assert result.exit_code == 130, result.output
    assert "nothing was written" not in result.output and "--resume" in result.output
    monkeypatch.setattr(runner, "federated_round", real_round)
    assert invoke(*args, "--out", tmp_path / "later", "--resume").exit_code == 0
    assert (tmp_path / "later" / FINISHED_FILE).is_file()


# -- 7. hints name the printing command's options -------------------------------------------------


def test_hints_name_options_of_the_command_that_prints_them(finished, tmp_path):
    headerless, header_only, dev = tmp_path / "headerless.csv", tmp_path / "header.tsv", tmp_path / "data.dev"
    headerless.write_text("some words here,1\nother words,2\n")
    header_only.write_text("sentence\tlabel\n")
    dev.write_text("text,label\nsome words,1\n")
    out = ["--out", tmp_path / "d", *CPU]
    line = assert_one_line_error(invoke("distill", finished, "--data", headerless, *out),
                                 f"`fedpart convert {headerless} --task tc --text-col COLUMN",
                                 "pass --data FILE.parquet")
    assert "name it with" not in line
    line = assert_one_line_error(invoke("eval", "bias", finished, "--eval-data", headerless, "--device", "cpu",
                                        "--plot", tmp_path / "b.png"), "pass --eval-data FILE.parquet")
    assert "name it with" not in line
    assert_one_line_error(invoke("distill", finished, "--data", header_only, *out),
                          f"{header_only}: the distillation data has no rows")
    assert_one_line_error(invoke("eval", "bias", finished, "--eval-data", header_only, "--device", "cpu",
                                 "--plot", tmp_path / "b.png"), f"{header_only}: the evaluation data has no rows")
    line = assert_one_line_error(invoke("distill", finished, "--data", dev, *out), "rename it", "--format FORMAT",
                                 "fedpart convert", "pass --data FILE.parquet")
    assert "or pass --format" not in line
    assert not (tmp_path / "d").exists()


def test_shard_hints_say_to_repartition_and_unfinished_distillations_to_resume_distill(parts, finished, corpus,
                                                                                      tmp_path):
    raw = tmp_path / "raw"
    fedpart.partition(FIXTURES / "ag_news" / "sample.csv", scheme="iid", clients=2, out=raw, plot=False,
                      label_col="label", read_options=ReadOptions(column_names=("label", "title", "description")))
    line = assert_one_line_error(invoke("train", raw, "--task", "qa", "--clients-per-round", "2", "--out",
                                        tmp_path / "r", *CPU),
                                 "no id column", "`fedpart partition INPUT --task qa --id-col COLUMN")
    assert "name it with" not in line
    distill(finished, data=corpus, out=tmp_path / "student", stop_after=1, device="cpu",
            config=FederatedConfig(algo="centralized", rounds=2, lr=0.5),
            distill_config=DistillConfig(spacy_model="none"))
    result = invoke("distill", tmp_path / "student", "--data", corpus, "--out", tmp_path / "d", *CPU)
    line = assert_one_line_error(result,
                                 "unfinished run", "fedpart distill ... --resume")
    assert "fedpart train" not in line


# -- 8./9. options a run ignores, warnings --------------------------------------------------------


@pytest.mark.parametrize("options", [["--prompts", "no-such-prompts.json"], ["--samples", "5"],
                                     ["--max-per-profession", "2", "--top-k", "3"]])
def test_eval_bias_refuses_lm_only_options_for_tc_runs(finished, tmp_path, options):
    result = invoke("eval", "bias", finished, *options, "--device", "cpu", "--plot", tmp_path / "b.png")
    assert_one_line_error(result, options[0], "for lm runs only", "is a --task tc run")
    assert not (tmp_path / "b.png").exists()


def test_distill_warns_about_more_clients_per_round_than_shards(parts, finished, tmp_path):
    result = invoke("distill", finished, "--data", parts, "--algo", "fedavg", "--clients-per-round", "50", "--rounds",
                    "1", "--spacy-model", "none", "--out", tmp_path / "d", *CPU)
    assert result.exit_code == 0, result.output
    assert "warning: --clients-per-round 50 exceeds the 3 non-empty clients" in result.output


def test_train_and_distill_show_only_fedpart_warnings(finished, corpus, tmp_path, monkeypatch):
    import fedpart.distill.runner as distill_runner

    def warning_from(filename: Path, text: str, category: str):  # code that warns, as if it were in `filename`
        return compile(f"import warnings, fedpart.errors\nwarnings.warn({text!r}, {category})\n", str(filename), "exec")

    third_party = warning_from(tmp_path / "site-packages" / "spacy" / "cli.py",
                               "'click.utils.get_binary_stream' is deprecated", "DeprecationWarning")
    own = warning_from(Path(distill_runner.__file__), "a warning of fedpart", "fedpart.errors.FedpartWarning")

    def fake_distill(*args, **kwargs):
        exec(third_party, {})
        exec(own, {})
        return []

    monkeypatch.setattr(distill_runner, "distill", fake_distill)
    result = invoke("distill", finished, "--data", corpus, "--out", tmp_path / "d", *CPU)
    assert result.exit_code == 0, result.output
    assert "warning: a warning of fedpart" in result.output and "deprecated" not in result.output


def test_report_keeps_tasks_apart_in_its_table_and_plot(finished, tmp_path):
    from fedpart.train.report import format_report, load_run, metric_panels

    qa = tmp_path / "qa-run"  # a QA run: F1 in percent, not comparable with a classifier's accuracy
    qa.mkdir()
    (qa / "config.json").write_text(json.dumps({"task": "qa", "algo": "fedprox"}))
    (qa / METRICS_FILE).write_text("".join(
        json.dumps({"round": r, "metrics": {"exact_match": 10.0 * r, "f1": 20.0 * r}, "clients": [0],
                    "bytes_communicated": 1e6 * r, "wall_time_s": float(r)}) + "\n" for r in (1, 2)))
    runs = [load_run(finished), load_run(qa), load_run(finished)]
    panels = metric_panels(runs)
    assert list(panels) == [("tc", "accuracy"), ("qa", "f1")]
    assert [len(members) for members in panels.values()] == [2, 1]
    table = format_report(runs).splitlines()
    assert table[0].split()[:3] == ["run", "task", "algo"]
    assert table[2].split()[1:7] == ["qa", "fedprox", "2", "(incomplete)", "f1", "40.0000"]
    result = CliRunner().invoke(main, ["report", str(finished), str(qa), "--plot", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.png").stat().st_size > 0


def test_train_takes_the_task_from_the_partition_unless_given(parts, tmp_path):
    runner_ = CliRunner()
    result = runner_.invoke(main, ["train", str(parts), "--rounds", "1", "--clients-per-round", "2", *CPU,
                                   "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["task"] == "tc"

    from conftest import AG_NEWS_COLUMNS, AG_NEWS_CSV

    plain = tmp_path / "plain"  # made without --task: its columns could be any task's
    fedpart.partition(AG_NEWS_CSV, scheme="iid", clients=2, out=plain, plot=False,
                      read_options=ReadOptions(column_names=AG_NEWS_COLUMNS))
    result = runner_.invoke(main, ["train", str(plain), *CPU, "--out", str(tmp_path / "run2")])
    assert_one_line_error(result, "made without --task", "pass --task (tc, st, qa, s2s, lm)")
    assert not (tmp_path / "run2").exists()


def test_a_run_given_for_a_partition_and_a_partition_for_a_run_are_named_as_such(parts, finished, tmp_path):
    runner_ = CliRunner()
    for args in (["train", str(finished), *CPU, "--out", str(tmp_path / "t")], ["stats", str(finished)]):
        result = runner_.invoke(main, args)
        assert_one_line_error(result, f"{finished}: a training run directory, not a partition",
                              f"(this run's: {Path(parts).resolve()})")
    for args in (["distill", str(parts), "--data", str(parts), *CPU, "--out", str(tmp_path / "d")],
                 ["eval", "bias", str(parts)], ["report", str(parts)]):
        result = runner_.invoke(main, args)
        assert_one_line_error(result, f"{parts}: a partition directory, not a training run")
    assert not (tmp_path / "t").exists() and not (tmp_path / "d").exists()
