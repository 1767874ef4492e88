"""The ``lm`` task, ``fedpart distill`` and ``fedpart eval bias`` on the AG News and BOLD fixtures:
perplexity and log-likelihoods against hand computations, generation contracts, the distillation
corpus and loss, federated distillation, resume, and the bias measurements of finished runs."""

from __future__ import annotations

import json
import warnings
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.distill.runner import DistillationTask, DistillConfig, counterfactual_training_table, distill
from fedpart.evaluation.bias import flip_rate, probability_change
from fedpart.io.sources import ReadOptions
from fedpart.manifest import Manifest
from fedpart.tasks.models.lm import LanguageModelTask
from fedpart.train.bias_eval import evaluate_classifier, load_prompts
from fedpart.train.federated import FederatedConfig
from fedpart.train.runner import load_trained, train

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS = FIXTURES / "ag_news" / "sample.csv"
AG_COLUMNS = ReadOptions(column_names=("label", "title", "description"))
BOLD = FIXTURES / "bold" / "profession_prompt.json"
CPU = torch.device("cpu")
ADAM = dict(lr=0.005, client_opt="adam", batch_size=32)


@pytest.fixture(scope="module")
def lm_parts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lm") / "parts"
    fedpart.partition(AG_NEWS, task="lm", scheme="iid", clients=3, test_frac=0.1, out=out, plot=False,
                      read_options=AG_COLUMNS)
    return out


@pytest.fixture(scope="module")
def teacher(lm_parts, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lm") / "teacher"
    train(lm_parts, task="lm", out=out, model_size="base", device="cpu",
          config=FederatedConfig(algo="centralized", rounds=2, **ADAM))
    return out


def _tiny_task(texts: list[str]) -> LanguageModelTask:
    task = LanguageModelTask("small")
    task.fit([pa.table({"text": texts})])
    return task


def test_lm_partition_keeps_every_row_once_with_text_joined(lm_parts):
    manifest = Manifest.read(lm_parts)
    tables = [pq.read_table(lm_parts / c.file) for c in manifest.clients] + [pq.read_table(lm_parts / manifest.test.file)]
    ids = sorted(i for t in tables for i in t.column("row_id").to_pylist())
    assert ids == list(range(600))
    first = tables[0]
    assert first.column_names[0] == "text"
    # title + description joined with a space, the label passed through untouched
    assert "label" in first.column_names and all(" " in t for t in first.column("text").to_pylist())


def test_uniform_model_has_perplexity_equal_to_vocabulary_size():
    task = _tiny_task(["the cat sat on the mat", "a dog ran"])
    model = task.build_model()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()  # zero embeddings: every logit is 0, the next-word distribution uniform
    table = pa.table({"text": ["the cat ran", "a mat"]})
    metrics = task.evaluate(model, task.featurize(table, CPU), table)
    assert metrics["perplexity"] == pytest.approx(len(task.vocab), rel=1e-5)
    assert metrics["nll"] == pytest.approx(math.log(len(task.vocab)), rel=1e-6)


def test_continuation_logprob_is_the_sum_of_next_word_log_probabilities():
    task = _tiny_task(["she told her son a story", "he told his daughter a story"])
    torch.manual_seed(0)
    model = task.build_model().eval()
    [got] = task.continuation_logprob(model, ["she told"], ["her son"], CPU)
    ids = task.encode_texts(["she told her son"])[0]
    ids = ids[: int((ids != 0).sum()) - 1]  # <bos> she told her son (without <eos>)
    logp = torch.log_softmax(model(ids[None, :-1]), dim=-1)[0]
    expected = sum(float(logp[t - 1, ids[t]].detach()) for t in (3, 4))  # "her" and "son"
    assert got == pytest.approx(expected, abs=1e-5)


def test_generation_is_seeded_greedy_is_argmax_and_respects_min_tokens():
    task = _tiny_task(["the cat sat on the mat"] * 3)
    torch.manual_seed(0)
    model = task.build_model().eval()
    prompts = ["the cat", "on the"]
    once = task.generate(model, prompts, CPU, seed=3, max_new_tokens=6)
    assert once == task.generate(model, prompts, CPU, seed=3, max_new_tokens=6)
    assert all(len(t.split()) >= 4 for t in task.generate(model, prompts, CPU, min_new_tokens=4, max_new_tokens=6))
    [greedy] = task.generate(model, ["the cat"], CPU, temperature=0, max_new_tokens=1, min_new_tokens=1)
    ids = task.encode_texts(["the cat"])[0][:3]  # <bos> the cat
    logits = model(ids[None])[0, -1]
    logits[0] = -math.inf
    logits[task.vocab.index["<eos>"]] = -math.inf
    assert greedy == task.vocab.tokens[int(logits.argmax())]


def test_lm_learns_on_the_fixture(teacher):
    records = [json.loads(line) for line in (teacher / "metrics.jsonl").read_text().splitlines()]
    vocab = json.loads((teacher / "config.json").read_text())["featurisation"]["vocab_size"]
    # an untrained (uniform) model scores the vocabulary size; 540 rows already take it far below
    assert all(r["metrics"]["perplexity"] < vocab / 5 for r in records)


def test_counterfactual_training_table_pairs_each_row_with_its_counterpart():
    table = pa.table({"text": ["she told her son", "the sky"], "label": [1, 2]})
    swap = lambda texts: [t.replace("she", "he").replace("her son", "his daughter") for t in texts]  # noqa: E731
    none = counterfactual_training_table(table, "none", swap)
    assert none.column("text").to_pylist() == ["she told her son", "the sky"]
    assert none.column("counterpart").to_pylist() == ["he told his daughter", "the sky"]
    one = counterfactual_training_table(table, "one-sided", swap)
    assert one.column("text").to_pylist() == ["he told his daughter", "the sky"]
    assert one.column("counterpart").to_pylist() == ["she told her son", "the sky"]
    two = counterfactual_training_table(table, "two-sided", swap)
    assert two.column("text").to_pylist() == none.column("text").to_pylist() + one.column("text").to_pylist()
    assert two.column("label").to_pylist() == [1, 2, 1, 2]


def test_student_equal_to_teacher_has_zero_distillation_loss(teacher):
    teacher_task, teacher_model, _ = load_trained(teacher, CPU)
    from fedpart.distill.runner import _permutation

    for mode in ("none", "mean"):
        task = DistillationTask(teacher_task, teacher_model, DistillConfig(teacher_perturb=mode, alpha_lm=0.0),
                                _permutation(teacher_task, CPU))
        table = pa.table({"text": ["a man and his dog", "the market fell"], "counterpart": ["a woman and her dog", "the market fell"]})
        batch = task.featurize(table, CPU)
        loss = float(task.loss(teacher_model, batch).detach())
        if mode == "none":
            assert loss == pytest.approx(0.0, abs=1e-5)
        else:  # the perturbed target differs from the teacher's own prediction where gender words follow
            assert loss > 1e-4


def test_distill_cli_trains_a_smaller_student_and_resumes_exactly(teacher, tmp_path):
    corpus = tmp_path / "corpus.parquet"
    parts = Path(json.loads((teacher / "config.json").read_text())["partition"])
    pq.write_table(pa.concat_tables([pq.read_table(p) for p in sorted((parts / "clients").glob("*.parquet"))]), corpus)
    args = ["distill", str(teacher), "--data", str(corpus), "--student-size", "small", "--cda", "two-sided",
            "--teacher-perturb", "mean", "--rounds", "2", "--lr", "0.005", "--client-opt", "adam",
            "--spacy-model", "none", "--device", "cpu", "-q"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "full")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert config["distill"]["cda"] == "two-sided" and config["featurisation"]["model_size"] == "small"
    student_task, student, _ = load_trained(tmp_path / "full", CPU)
    teacher_task, teacher_model, _ = load_trained(teacher, CPU)
    assert student_task.vocab.tokens == teacher_task.vocab.tokens
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher_model.parameters())

    distill(teacher, data=corpus, out=tmp_path / "stopped", device="cpu", stop_after=1,
            distill_config=DistillConfig(cda="two-sided", teacher_perturb="mean", spacy_model="none"),
            config=FederatedConfig(algo="centralized", rounds=2, **ADAM))
    distill(teacher, data=corpus, out=tmp_path / "stopped", device="cpu", resume=True,
            distill_config=DistillConfig(cda="two-sided", teacher_perturb="mean", spacy_model="none"),
            config=FederatedConfig(algo="centralized", rounds=2, **ADAM))
    full = torch.load(tmp_path / "full" / "model.pt")
    resumed = torch.load(tmp_path / "stopped" / "model.pt")
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_federated_distillation_over_client_shards_and_its_errors(teacher, lm_parts, tmp_path):
    records = distill(teacher, data=lm_parts, out=tmp_path / "fl", device="cpu",
                      distill_config=DistillConfig(teacher_perturb="max", spacy_model="none"),
                      config=FederatedConfig(algo="fedavg", rounds=1, clients_per_round=2, **ADAM))
    assert len(records[-1]["clients"]) == 2 and records[-1]["bytes_communicated"] > 0
    single = tmp_path / "one.parquet"
    pq.write_table(pq.read_table(lm_parts / "test.parquet"), single)
    result = CliRunner().invoke(main, ["distill", str(teacher), "--data", str(single), "--algo", "fedavg",
                                       "--out", str(tmp_path / "x"), "-q"])
    assert result.exit_code == 2 and "needs a partition directory" in result.output
    result = CliRunner().invoke(main, ["distill", str(tmp_path), "--data", str(single), "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "not a finished fedpart run" in result.output


def test_classifier_distillation_and_counterfactual_measures(tmp_path):
    parts = tmp_path / "tc"
    fedpart.partition(AG_NEWS, task="tc", scheme="iid", clients=2, test_frac=0.25, out=parts, plot=False,
                      read_options=AG_COLUMNS)
    train(parts, task="tc", out=tmp_path / "teacher", model_size="base", device="cpu",
          config=FederatedConfig(algo="centralized", rounds=2, **ADAM))
    distill(tmp_path / "teacher", data=parts, out=tmp_path / "student", device="cpu",
            distill_config=DistillConfig(cda="two-sided", teacher_perturb="mean", spacy_model="none"),
            config=FederatedConfig(algo="centralized", rounds=2, **ADAM))
    result = evaluate_classifier(tmp_path / "student", options=fedpart_bias_options())
    # the same measures computed by hand from the model's probabilities on the swapped test split
    task, model, _ = load_trained(tmp_path / "student", CPU)
    from fedpart.augment import GenderSwapper

    test = pq.read_table(parts / "test.parquet")
    swapped = test.set_column(0, "text", [[r.text for r in GenderSwapper(spacy_model="none").swap_texts(
        test.column("text").to_pylist())]])
    p = task.probabilities(model, task.featurize(test, CPU)).numpy()
    q = task.probabilities(model, task.featurize(swapped, CPU)).numpy()
    assert np.any(p != q)  # the fixture has gendered words, so some probabilities move
    assert result.metrics["flip_rate"]["value"] == pytest.approx(flip_rate(p.argmax(1), q.argmax(1)).value)
    assert result.metrics["probability_change"]["value"] == pytest.approx(probability_change(p, q).value, abs=1e-6)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    # the same on the inputs the swap changed: the unchanged ones have identical probabilities
    changed = np.array([a != b for a, b in zip(test.column("text").to_pylist(), swapped.column("text").to_pylist())])
    assert 0 < changed.sum() < len(changed) and result.metrics["changed_inputs"] == int(changed.sum())
    assert np.array_equal(p[~changed], q[~changed])
    flips = p.argmax(1) != q.argmax(1)
    assert result.metrics["flip_rate_changed"]["value"] == pytest.approx(flips[changed].mean())
    assert result.metrics["flip_rate_changed"]["n"] == int(changed.sum())
    moved = np.abs(p[np.arange(len(p)), p.argmax(1)] - q[np.arange(len(q)), p.argmax(1)])
    assert result.metrics["probability_change_changed"]["value"] == pytest.approx(moved[changed].mean(), abs=1e-6)


def fedpart_bias_options():
    from fedpart.train.bias_eval import BiasEvalOptions

    return BiasEvalOptions(n_boot=200, spacy_model="none")


def test_eval_bias_cli_on_bold_prompts(teacher, tmp_path):
    result = CliRunner().invoke(main, [
        "eval", "bias", str(teacher), "--prompts", str(BOLD), "--samples", "2", "--n-boot", "100",
        "--spacy-model", "none", "--device", "cpu", "--plot", str(tmp_path / "out" / "bias.png"),
        "--json", str(tmp_path / "out" / "bias.json"),  # the missing folder is created
    ])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bias.json", "bias.png"]
    lines = [line for line in result.output.splitlines() if not line.startswith("warning:")]
    assert lines[0].split() == [
        "run", "mean_abs_polarity", "skewed_share", "loglik_gap", "loglik_gap_changed", "changed_pairs",
        "perplexity", "generations"]
    [record] = json.loads((tmp_path / "out" / "bias.json").read_text())
    # pairs the swap left unchanged add (about: other batch padding) 0 to the all-pairs gap
    metrics = record["metrics"]
    assert metrics["loglik_gap_changed"]["n"] == metrics["changed_pairs"] > 0
    assert metrics["loglik_gap"]["value"] * metrics["loglik_gap"]["n"] == pytest.approx(
        metrics["loglik_gap_changed"]["value"] * metrics["changed_pairs"], rel=1e-3)
    prompts = load_prompts(BOLD)
    assert record["metrics"]["generations"] == 2 * len(prompts)
    assert [g["group"] for g in record["groups"]] == list(dict.fromkeys(group for group, _ in prompts))
    assert sum(g["n_texts"] for g in record["groups"]) == 2 * len(prompts)
    teacher_ppl = json.loads((teacher / "metrics.jsonl").read_text().splitlines()[-1])["metrics"]["perplexity"]
    assert record["metrics"]["perplexity"] == pytest.approx(teacher_ppl, rel=1e-4)
    assert (tmp_path / "out" / "bias.png").stat().st_size > 0


def test_eval_bias_errors_are_one_line(teacher, tmp_path):
    result = CliRunner().invoke(main, ["eval", "bias", str(teacher)])
    assert result.exit_code == 2 and "pass --prompts" in result.output
    result = CliRunner().invoke(main, ["eval", "bias", str(tmp_path)])
    assert result.exit_code == 2 and "not a fedpart run directory" in result.output
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"prompt": "the nurse said"}\n{"group": 3, "prompt": "x"}\n')
    result = CliRunner().invoke(main, ["eval", "bias", str(teacher), "--prompts", str(bad)])
    assert result.exit_code == 2 and "prompts.jsonl:1" in result.output
    result = CliRunner().invoke(main, ["eval", "bias", str(teacher), "--prompts", str(BOLD),
                                       "--eval-data", str(tmp_path / "missing.parquet")])
    assert result.exit_code == 2 and "missing.parquet: no such evaluation file" in result.output
    before = sorted(p.name for p in teacher.iterdir())
    for outputs, message in [
        (["--json", str(teacher / "bias.json")], "lies inside the run"),
        (["--json", str(BOLD)], "is the input"),
        (["--plot", str(BOLD)], "cannot write a .json plot"),
        (["--plot", str(tmp_path / "b.png"), "--json", str(tmp_path / "b.png")], "--plot and --json name the same file"),
    ]:
        result = CliRunner().invoke(main, ["eval", "bias", str(teacher), "--prompts", str(BOLD), *outputs])
        assert result.exit_code == 2 and message in result.output, result.output
    assert sorted(p.name for p in teacher.iterdir()) == before


def test_jsonl_prompts_and_model_size_errors(tmp_path, lm_parts):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"profession": g, "prompt": p}) + "\n" for g, p in
                            [("nursing", "a nurse"), ("nursing", "the nurse"), ("law", "a judge")]))
    assert load_prompts(path, max_per_profession=1) == [("nursing", "a nurse"), ("law", "a judge")]
    result = CliRunner().invoke(main, ["train", str(lm_parts), "--task", "lm", "--model-size", "huge",
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "not a size of --task lm" in result.output


def test_progress_reports_every_round_and_the_metrics_of_evaluated_ones(lm_parts, tmp_path):
    calls = []
    records = train(lm_parts, task="lm", out=tmp_path / "r", device="cpu", progress=lambda r, m: calls.append((r, m)),
                    config=FederatedConfig(rounds=3, clients_per_round=2, eval_every=2, **ADAM))
    assert [r for r, _ in calls] == [1, 2, 3]
    assert [m for _, m in calls] == [None, records[0]["metrics"], records[1]["metrics"]]


def test_professions_with_few_gendered_words_are_warned_about():
    from fedpart.errors import FedpartWarning
    from fedpart.evaluation.bias import GroupPolarity
    from fedpart.train.bias_eval import MIN_GROUP_WORDS, warn_small_groups

    groups = [GroupPolarity("nurse", 3, 0, 1, -1.0), GroupPolarity("pilot", 3, 2, 2, 0.0),
              GroupPolarity("judge", 3, 0, 0, float("nan")), GroupPolarity("cook", 3, MIN_GROUP_WORDS, 0, 1.0)]
    with pytest.warns(FedpartWarning, match=r"2 of 4 professions have fewer than 5 gendered words .*\(nurse, pilot\)"):
        warn_small_groups(groups)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_small_groups(groups[2:])  # none, or enough words: no warning
