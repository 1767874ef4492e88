"""QA pass 7 on the training side: run records that outlive the working directory, option
combinations a run would silently ignore, up-front option checks of ``eval bias``, and the Flower
integration's sampling and run config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from fedpart.cli import main
from fedpart.distill.runner import DistillConfig
from fedpart.errors import InputError, OutputError
from fedpart.train.bias_eval import BiasEvalOptions
from fedpart.train.federated import FederatedConfig
from fedpart.train.runner import load_trained, train
from conftest import assert_refused as assert_one_line_error  # noqa: E402

CPU = ["--device", "cpu", "--threads", "1", "-q"]
ONE_ROUND = FederatedConfig(rounds=1, clients_per_round=2, lr=0.05, batch_size=32)


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


# -- --hf-model runs: the model directory is recorded resolved --------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A 1-layer BERT without task heads, with a WordPiece tokenizer, written by ``save_pretrained``."""
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("qa7-hf")
    model_dir = root / "models" / "tiny-bert"
    model_dir.mkdir(parents=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789",
             *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789")]
    (model_dir / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(model_dir)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=128)
    transformers.BertModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def hf_run(parts, tiny_bert, tmp_path_factory) -> Path:
    """A finished ``--hf-model`` tc run, trained with the model directory given relative to the cwd."""
    out = tmp_path_factory.mktemp("qa7-hf-run") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tiny_bert.parent.parent)
        train(parts, task="tc", out=out, config=ONE_ROUND, device="cpu", hf_model="models/tiny-bert")
    return out


def test_an_hf_model_given_relative_is_found_from_any_directory_and_resume_checks_it(
        parts, hf_run, tiny_bert, tmp_path, monkeypatch):
    # the run was started in tiny_bert's grandparent; distill and eval bias may run anywhere
    monkeypatch.chdir(tmp_path)
    task_model, model, config = load_trained(hf_run, torch.device("cpu"))
    assert Path(config["hf_model"]) == tiny_bert.resolve()
    assert task_model.name == "tc" and sum(p.numel() for p in model.parameters()) > 0
    # the same relative name, here another (copied) model: resuming with it is another setting
    shutil.copytree(tiny_bert, tmp_path / "models" / "tiny-bert")
    resumed = tmp_path / "resumed"
    shutil.copytree(hf_run, resumed)
    two_rounds = FederatedConfig(rounds=2, clients_per_round=2, lr=0.05)
    with pytest.raises(OutputError, match="different settings.*hf_model"):
        train(parts, task="tc", out=resumed, config=two_rounds, device="cpu", hf_model="models/tiny-bert", resume=True)
    # from the directory the run started in, the same name is the same model
    monkeypatch.chdir(tiny_bert.parent.parent)
    records = train(parts, task="tc", out=resumed, config=two_rounds, device="cpu", hf_model="models/tiny-bert",
                    resume=True)
    assert [r["round"] for r in records] == [2]


def test_eval_bias_scores_an_hf_classifier_run(hf_run, tmp_path):
    """An --hf-model tc run gets the classifier measures, with probabilities from its own logits."""
    import pyarrow.parquet as pq

    result = invoke("eval", "bias", hf_run, "--spacy-model", "none", "--n-boot", "10", "--device", "cpu",
                    "--plot", tmp_path / "b.png", "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "b.json").read_text())
    record = record[0] if isinstance(record, list) else record
    assert 0 <= record["metrics"]["flip_rate"]["value"] <= 1 and (tmp_path / "b.png").exists()
    task, model, config = load_trained(hf_run, torch.device("cpu"))
    table = pq.read_table(Path(config["partition"]) / "test.parquet")
    data = task.featurize(table, torch.device("cpu"))
    probs = task.probabilities(model, data)
    assert probs.shape == (table.num_rows, len(task.labels))
    assert torch.allclose(probs.sum(-1), torch.ones(table.num_rows))
    with torch.no_grad():
        logits = model(**task._model_inputs(data)).logits
    assert torch.equal(probs.argmax(-1), logits.argmax(-1))
    assert record["metrics"]["accuracy"] == round(task.evaluate(model, data, table)["accuracy"], 4)


# -- options a run would silently ignore --------------------------------------------------------------


def test_centralised_training_refuses_client_sampling_options(parts, finished, tmp_path):
    args = ["--algo", "centralized", "--rounds", "1", *CPU]
    result = invoke("train", parts, "--task", "tc", *args, "--clients-per-round", "2", "--out", tmp_path / "r")
    assert_one_line_error(result, "--clients-per-round", "--algo centralized")
    result = invoke("train", parts, "--task", "tc", *args, "--sampling", "activity", "--out", tmp_path / "r")
    assert_one_line_error(result, "--sampling", "--algo centralized")
    # distill is centralised by default: client options need a federated --algo
    result = invoke("distill", finished, "--data", parts, "--clients-per-round", "2", "--spacy-model", "none",
                    "--rounds", "1", "--out", tmp_path / "d", "--device", "cpu", "-q")
    assert_one_line_error(result, "--clients-per-round", "pick a federated --algo")
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()
    # the defaults are no choice of the user's, and federated runs use both options
    assert invoke("train", parts, "--task", "tc", *args, "--out", tmp_path / "c").exit_code == 0
    result = invoke("train", parts, "--task", "tc", "--rounds", "1", "--clients-per-round", "2", "--sampling",
                    "activity", *CPU, "--out", tmp_path / "f")
    assert result.exit_code == 0, result.output


def test_mu_without_fedprox_is_refused_by_the_python_api_too(parts, tmp_path):
    for algo in ("fedavg", "centralized"):
        with pytest.raises(InputError, match="--mu applies to --algo fedprox only"):
            FederatedConfig(algo=algo, mu=0.1)
    assert FederatedConfig(algo="fedprox", mu=0.1).mu == 0.1
    assert FederatedConfig(algo="fedavg", mu=0.0).mu == 0.0


def test_teacher_perturbation_needs_a_distillation_term():
    with pytest.raises(InputError, match="--teacher-perturb mean.*--alpha-kd 0"):
        DistillConfig(teacher_perturb="mean", alpha_kd=0.0, alpha_lm=1.0)
    assert DistillConfig(teacher_perturb="none", alpha_kd=0.0, alpha_lm=1.0).alpha_kd == 0.0


def test_a_temperature_given_with_alpha_kd_0_is_refused(finished, parts, tmp_path):
    common = ["distill", finished, "--data", parts, "--alpha-kd", "0", "--alpha-lm", "1", "--spacy-model", "none",
              "--rounds", "1", "--device", "cpu", "-q"]
    result = invoke(*common, "--temperature", "4", "--out", tmp_path / "d")
    assert_one_line_error(result, "--temperature", "--alpha-kd 0")
    assert not (tmp_path / "d").exists()


# -- eval bias: options checked before any model is loaded, with the flags' names -------------------------


@pytest.mark.parametrize(("options", "flag"), [
    (["--n-boot", "0"], "--n-boot"),
    (["--max-per-profession", "0"], "--max-per-profession"),
    (["--min-new-tokens", "30", "--max-new-tokens", "20"], "--min-new-tokens"),
    (["--min-new-tokens", "-1"], "--min-new-tokens"),
])
def test_eval_bias_checks_its_counts_up_front(tmp_path, options, flag):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"group": "nursing", "prompt": "the nurse said"}\n', encoding="utf-8")
    # no run is read: the options are wrong whatever the runs are
    result = invoke("eval", "bias", tmp_path / "no-run", "--prompts", prompts, *options, "--plot", tmp_path / "b.png")
    assert_one_line_error(result, flag)
    with pytest.raises(InputError, match=flag):
        BiasEvalOptions(**{"n_boot": 0} if flag == "--n-boot" else
                        {"max_per_profession": 0} if flag == "--max-per-profession" else {"min_new_tokens": 30})


# -- Flower ---------------------------------------------------------------------------------------------


def test_flowers_own_sampler_with_more_clients_per_round_than_nodes_trains_them_all(tmp_path, monkeypatch):
    """Flower's FedAvg samples int(nodes * fraction_train) nodes and waits until that many are
    connected: a fraction above 1 waited forever (e.g. the default 10 clients per round, 3 nodes)."""
    pytest.importorskip("flwr")
    import flwr.serverapp.strategy.strategy_utils as strategy_utils
    from flwr.app import ArrayRecord, ConfigRecord

    from fedpart.flower.apps import _strategy
    from fedpart.flower.run_config import FlowerRun

    def no_waiting(*_: object) -> None:
        raise AssertionError("Flower waits for more nodes than there are partitions")

    monkeypatch.setattr(strategy_utils, "sleep", no_waiting)

    class Grid:
        def get_node_ids(self) -> list[int]:
            return [11, 12, 13]

    run = FlowerRun(tmp_path, "tc", tmp_path / "out", FederatedConfig(clients_per_round=10), sampler="flower")
    strategy = _strategy(run, [5, 5, 5], {0: 11, 1: 12, 2: 13})
    monkeypatch.setattr(strategy, "_construct_messages", lambda record, nodes, kind: nodes)
    assert sorted(strategy.configure_train(1, ArrayRecord(), ConfigRecord(), Grid())) == [11, 12, 13]


def test_flower_run_config_refuses_values_it_would_truncate_or_ignore(tmp_path):
    pytest.importorskip("torch")
    from fedpart.flower import FlowerRun

    base = {"partition-dir": str(tmp_path), "task": "tc", "out": str(tmp_path / "out")}
    assert FlowerRun.from_user_config({**base, "rounds": 3.0}).federated.rounds == 3
    for key, value in (("rounds", 2.5), ("clients-per-round", True), ("seed", False), ("lr", True)):
        with pytest.raises(InputError, match=f"{key} = {value!r} is not a"):
            FlowerRun.from_user_config({**base, key: value})
    with pytest.raises(InputError, match="--mu applies to --algo fedprox only"):
        FlowerRun.from_user_config({**base, "algo": "fedavg", "mu": 0.1})
    with pytest.raises(InputError, match="sampling 'activity' needs sampler 'fedpart'"):
        FlowerRun.from_user_config({**base, "sampler": "flower", "sampling": "activity"})
    assert FlowerRun.from_user_config({**base, "sampling": "activity"}).federated.sampling == "activity"


def test_flower_partitioner_refuses_group_by_with_the_natural_scheme():
    from fedpart.flower import FedpartPartitioner

    with pytest.raises(InputError, match="group_by does not apply to scheme natural"):
        FedpartPartitioner("natural", partition_by="user", group_by="thread")


def test_a_flower_run_records_its_partition_resolved(parts, tmp_path, monkeypatch):
    """A FlowerRun built with a relative partition-dir (as in the README's simulation example): the run
    directory's config must lead distill and eval bias to the partition's test split from any directory."""
    pytest.importorskip("flwr")
    from fedpart.flower import FlowerRun, apps
    from fedpart.train.runner import run_evaluation_file

    class NoNodes(Exception):
        pass

    def no_nodes(*_: object, **__: object) -> None:
        raise NoNodes  # the config is written; no need to run the rounds

    monkeypatch.setattr(apps, "map_partitions", no_nodes)
    monkeypatch.chdir(parts.parent)
    run = FlowerRun(parts.name, "tc", tmp_path / "run", ONE_ROUND)
    with pytest.raises(NoNodes):
        apps.run_server(None, run)
    monkeypatch.chdir(tmp_path)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert Path(config["partition"]) == parts.resolve()
    assert run_evaluation_file(tmp_path / "run", config) == parts.resolve() / "test.parquet"


def test_a_flower_run_over_an_earlier_run_drops_its_stale_files(parts, tmp_path, monkeypatch):
    """Flower writes config, metrics and model over an earlier run in `out`; the earlier run's
    model.pt (Flower writes its own only at the end), finished.json and checkpoint.pt (which Flower
    does not write) must not describe the new run."""
    pytest.importorskip("flwr")
    from fedpart.flower import FlowerRun, apps
    from fedpart.train.rundir import is_finished_run

    class NoNodes(Exception):
        pass

    def no_nodes(*_: object, **__: object) -> None:
        raise NoNodes

    out = tmp_path / "run"
    out.mkdir()
    # an earlier Flower run (the only kind a Flower run replaces), with files of any run
    (out / "config.json").write_text(json.dumps({"task": "tc", "runtime": "flower"}), encoding="utf-8")
    (out / "finished.json").write_text(json.dumps({"rounds": 7, "model": "model.pt"}), encoding="utf-8")
    (out / "checkpoint.pt").write_bytes(b"an earlier run's checkpoint")
    (out / "model.pt").write_bytes(b"an earlier run's model")
    monkeypatch.setattr(apps, "map_partitions", no_nodes)
    with pytest.raises(NoNodes):
        apps.run_server(None, FlowerRun(parts, "tc", out, ONE_ROUND))
    assert not any((out / name).exists() for name in ("finished.json", "checkpoint.pt", "model.pt"))
    assert json.loads((out / "config.json").read_text())["runtime"] == "flower"
    assert not is_finished_run(out)  # stopped before its model.pt: not the earlier run's finished model


def test_prompts_are_swapped_with_their_continuations():
    """A BOLD prompt ending in "her " is a possessive before the continuation: swapped alone, the rule
    for a text ending in "her" gives "him"; swapped with its continuation, "his"."""
    from fedpart.train.bias_eval import swap_prompted

    prompts = ["If not, the midwife used her ", "She said ", "Among his "]
    continuations = ["hands to help.", "he is her son.", "pupils"]
    swapped_prompts, swapped_continuations = swap_prompted(prompts, continuations, "none")
    assert swapped_prompts == ["If not, the midwife used his ", "He said ", "Among her "]
    assert swapped_continuations == ["hands to help.", "she is his daughter.", "pupils"]
