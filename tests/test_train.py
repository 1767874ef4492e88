"""The torch training core: exactness of FedAvg/FedProx/FedOpt against closed forms and centralised
gradient descent, sampling, determinism, resume, and one round of every task on its fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

import fedpart
from fedpart.cli import main
from fedpart.io.sources import ReadOptions
from fedpart.train.federated import (
    FederatedConfig,
    ServerState,
    aggregate,
    federated_round,
    local_update,
    sample_clients,
    server_step,
)
from fedpart.train.runner import train

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def mse(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return ((model(batch["x"]) - batch["y"]) ** 2).mean()


def _client(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n, 3, generator=g, dtype=torch.float64),
            "y": torch.randn(n, 2, generator=g, dtype=torch.float64)}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return Linear().double()


def _full_batch_gd(model: nn.Module, start: torch.Tensor, data, lr: float, steps: int) -> torch.Tensor:
    vector_to_parameters(start.clone(), model.parameters())
    for _ in range(steps):
        model.zero_grad()
        mse(model, data).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return parameters_to_vector(model.parameters()).detach().clone()


def test_one_client_full_participation_equals_centralised_gd():
    model, data = _model(), _client(20, 1)
    start = parameters_to_vector(model.parameters()).detach().clone()
    config = FederatedConfig(rounds=1, clients_per_round=1, local_epochs=4, lr=0.1, batch_size=100)
    state, chosen = federated_round(model, ServerState(start), [data], [20], mse, config, 1)
    expected = _full_batch_gd(_model(), start, data, 0.1, 4)
    assert chosen.tolist() == [0]
    torch.testing.assert_close(state.weights, expected)


def test_full_participation_one_step_equals_pooled_full_batch_gd():
    model = _model()
    clients = [_client(5, 1), _client(11, 2), _client(8, 3)]
    sizes = [5, 11, 8]
    start = parameters_to_vector(model.parameters()).detach().clone()
    config = FederatedConfig(rounds=1, clients_per_round=3, local_epochs=1, lr=0.2, batch_size=1000)
    state, _ = federated_round(model, ServerState(start), clients, sizes, mse, config, 1)
    pooled = {k: torch.cat([c[k] for c in clients]) for k in clients[0]}
    expected = _full_batch_gd(_model(), start, pooled, 0.2, 1)
    torch.testing.assert_close(state.weights, expected)


def test_round_loss_sum_is_the_mean_task_loss_of_every_local_step_without_the_proximal_term():
    model = _model()
    clients, sizes = [_client(5, 1), _client(11, 2), _client(8, 3)], [5, 11, 8]
    start = parameters_to_vector(model.parameters()).detach().clone()
    # full batches, two epochs: each client's steps see the start weights, then one GD step from them
    # (the proximal gradient is zero at the start, so that step is FedAvg's; the term is not zero after it)
    config = FederatedConfig(algo="fedprox", mu=5.0, rounds=1, clients_per_round=3, local_epochs=2, lr=0.2,
                             batch_size=1000)
    loss_sum = torch.zeros((), dtype=torch.float64)
    federated_round(model, ServerState(start), clients, sizes, mse, config, 1, loss_sum)
    reference = _model()
    expected = 0.0
    for data, n in zip(clients, sizes):
        vector_to_parameters(start.clone(), reference.parameters())
        first = float(mse(reference, data).detach())
        vector_to_parameters(_full_batch_gd(_model(), start, data, 0.2, 1), reference.parameters())
        expected += n * (first + float(mse(reference, data).detach()))
    assert float(loss_sum) / (2 * sum(sizes)) == pytest.approx(expected / (2 * sum(sizes)), rel=1e-12)


def test_fedprox_mu_zero_is_fedavg_bit_for_bit():
    model = _model()
    clients, sizes = [_client(12, 1), _client(7, 2)], [12, 7]
    start = parameters_to_vector(model.parameters()).detach().clone()
    base = dict(rounds=1, clients_per_round=2, local_epochs=2, lr=0.1, batch_size=4)
    avg, _ = federated_round(model, ServerState(start), clients, sizes, mse, FederatedConfig(algo="fedavg", **base), 1)
    prox, _ = federated_round(model, ServerState(start), clients, sizes, mse,
                              FederatedConfig(algo="fedprox", mu=0.0, **base), 1)
    assert torch.equal(avg.weights, prox.weights)
    prox1, _ = federated_round(model, ServerState(start), clients, sizes, mse,
                               FederatedConfig(algo="fedprox", mu=1.0, **base), 1)
    assert not torch.equal(avg.weights, prox1.weights)


class Point(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())


def test_fedprox_local_update_matches_closed_form_on_a_quadratic():
    # f(w) = 0.5 ||w - a||^2; GD with the proximal term converges geometrically to (a + mu w_g)/(1 + mu)
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    w_global = torch.tensor([0.3, 0.1, -1.0], dtype=torch.float64)
    lr, mu, steps = 0.1, 0.5, 7
    model = Point(w_global)

    def quadratic(m: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return 0.5 * ((m.w - batch["a"][0]) ** 2).sum()

    result = local_update(model, w_global, {"a": a[None, :]}, quadratic, steps, lr, 1, mu, (0, 1, 1))
    fixed = (a + mu * w_global) / (1 + mu)
    expected = fixed + (1 - lr * (1 + mu)) ** steps * (w_global - fixed)
    torch.testing.assert_close(result, expected)


def test_fedadam_server_step_by_hand():
    config = FederatedConfig(server_opt="adam", server_lr=0.1, server_betas=(0.9, 0.99), server_tau=1e-3)
    state = ServerState(torch.tensor([1.0, 2.0], dtype=torch.float64))
    average = torch.tensor([1.5, 1.0], dtype=torch.float64)
    new = server_step(state, average, config)
    delta = average - state.weights
    m, v = 0.1 * delta, 0.01 * delta**2
    torch.testing.assert_close(new.weights, state.weights + 0.1 * m / (v.sqrt() + 1e-3))
    sgd = server_step(state, average, FederatedConfig(server_lr=0.5))
    torch.testing.assert_close(sgd.weights, torch.tensor([1.25, 1.5], dtype=torch.float64))


def test_aggregate_is_sample_weighted_mean():
    out = aggregate([torch.tensor([0.0, 2.0]), torch.tensor([3.0, 5.0])], [1, 2])
    torch.testing.assert_close(out, torch.tensor([2.0, 4.0]))


def test_sampling_is_seeded_skips_empty_clients_and_activity_prefers_big_clients():
    sizes = [0, 1, 1, 1, 1, 1, 1, 1, 1, 100]
    first = sample_clients(sizes, 3, "uniform", seed=1, round_index=5)
    assert first.tolist() == sample_clients(sizes, 3, "uniform", seed=1, round_index=5).tolist()
    assert 0 not in first and len(set(first.tolist())) == 3
    picks = [9 in sample_clients(sizes, 1, "activity", 0, r) for r in range(200)]
    uniform = [9 in sample_clients(sizes, 1, "uniform", 0, r) for r in range(200)]
    assert np.mean(picks) > 0.8 > 0.3 > np.mean(uniform)


@pytest.fixture(scope="module")
def agnews_parts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parts") / "agnews"
    fedpart.partition(FIXTURES / "ag_news" / "sample.csv", task="tc", scheme="dirichlet", alpha=0.5, clients=6,
                      test_frac=0.2, out=out, plot=False,
                      read_options=ReadOptions(column_names=("label", "title", "description")))
    return out


def _records(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_time_s")
    return rows


def test_same_seed_same_metrics_and_resume_equals_uninterrupted(agnews_parts, tmp_path):
    config = FederatedConfig(rounds=4, clients_per_round=3, lr=0.5, batch_size=16, seed=2)
    train(agnews_parts, task="tc", out=tmp_path / "a", config=config, device="cpu")
    train(agnews_parts, task="tc", out=tmp_path / "b", config=config, device="cpu")
    assert _records(tmp_path / "a") == _records(tmp_path / "b")
    assert all(r["train_loss"] > 0 for r in _records(tmp_path / "a"))  # equal on resume too, below

    train(agnews_parts, task="tc", out=tmp_path / "c", config=config, device="cpu", stop_after=2)
    assert [r["round"] for r in _records(tmp_path / "c")] == [1, 2]
    train(agnews_parts, task="tc", out=tmp_path / "c", config=config, device="cpu", resume=True)
    assert _records(tmp_path / "c") == _records(tmp_path / "a")
    recorded = json.loads((tmp_path / "c" / "environment.json").read_text())
    assert recorded["torch"] == torch.__version__ and recorded["device"] == "cpu" and "resumed_with" not in recorded
    a = torch.load(tmp_path / "a" / "model.pt")
    c = torch.load(tmp_path / "c" / "model.pt")
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_a_run_resumed_in_another_environment_records_both(agnews_parts, tmp_path, monkeypatch):
    from fedpart.train import runner

    config = FederatedConfig(rounds=2, clients_per_round=2, lr=0.5, batch_size=16)
    train(agnews_parts, task="tc", out=tmp_path / "r", config=config, device="cpu", stop_after=1)
    first = json.loads((tmp_path / "r" / "environment.json").read_text())
    assert first == runner.environment(torch.device("cpu"))
    other = {**first, "torch": "9.9.9"}
    monkeypatch.setattr(runner, "environment", lambda device: other)
    train(agnews_parts, task="tc", out=tmp_path / "r", config=config, device="cpu", resume=True)
    assert json.loads((tmp_path / "r" / "environment.json").read_text()) == {**first, "resumed_with": [other]}


def test_resume_refuses_different_settings(agnews_parts, tmp_path):
    config = FederatedConfig(rounds=2, clients_per_round=2, lr=0.5)
    train(agnews_parts, task="tc", out=tmp_path / "r", config=config, device="cpu", stop_after=1)
    with pytest.raises(fedpart.OutputError, match="lr"):
        train(agnews_parts, task="tc", out=tmp_path / "r", config=FederatedConfig(rounds=2, clients_per_round=2, lr=0.1),
              device="cpu", resume=True)
    with pytest.raises(fedpart.OutputError, match="already exists"):
        train(agnews_parts, task="tc", out=tmp_path / "r", config=config, device="cpu")


def test_centralized_learns_and_records_no_communication(agnews_parts, tmp_path):
    records = train(agnews_parts, task="tc", out=tmp_path / "c", device="cpu",
                    config=FederatedConfig(algo="centralized", rounds=4, lr=0.5, batch_size=16))
    assert records[-1]["bytes_communicated"] == 0
    assert records[-1]["metrics"]["accuracy"] > 0.4  # 4 balanced classes: chance is 0.25


@pytest.mark.parametrize(
    ("task", "fixture", "metrics"),
    [
        ("st", FIXTURES / "wnut17" / "sample.conll", {"precision", "recall", "f1"}),
        ("qa", FIXTURES / "squad" / "sample.json", {"exact_match", "f1"}),
        ("s2s", FIXTURES / "dialogsum" / "sample.jsonl", {"rouge1", "rouge2", "rougeL"}),
    ],
)
def test_every_task_trains_on_its_fixture(tmp_path, task, fixture, metrics):
    parts = tmp_path / "p"
    fedpart.partition(fixture, task=task, scheme="iid", clients=3, test_frac=0.1, out=parts, plot=False)
    records = train(parts, task=task, out=tmp_path / "run", device="cpu",
                    config=FederatedConfig(rounds=1, clients_per_round=2, lr=0.3, batch_size=32))
    assert set(records[-1]["metrics"]) == metrics
    assert all(0.0 <= v <= 100.0 for v in records[-1]["metrics"].values())


def test_train_and_report_cli(agnews_parts, tmp_path):
    runner = CliRunner()
    for algo in ("fedavg", "fedprox"):
        mu = ["--mu", "0.01"] if algo == "fedprox" else []  # --mu with fedavg is refused
        result = runner.invoke(main, ["train", str(agnews_parts), "--task", "tc", "--algo", algo, *mu,
                                      "--rounds", "2", "--clients-per-round", "2", "--lr", "0.5", "--device", "cpu",
                                      "--out", str(tmp_path / algo), "-q"])
        assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["report", str(tmp_path / "fedavg"), str(tmp_path / "fedprox"),
                                  "--plot", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "fedprox" in result.output and (tmp_path / "r.png").stat().st_size > 0
    result = runner.invoke(main, ["train", str(agnews_parts), "--task", "tc", "--rounds", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--rounds must be at least 1" in result.output


def test_threads_option_sets_torchs_cpu_threads(agnews_parts, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that the option has something to change
    try:
        result = CliRunner().invoke(main, ["train", str(agnews_parts), "--task", "tc", "--rounds", "1",
                                           "--clients-per-round", "2", "--device", "cpu", "--threads", "1",
                                           "--out", str(tmp_path / "t"), "-q"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        result = CliRunner().invoke(main, ["train", str(agnews_parts), "--task", "tc", "--threads", "0",
                                           "--out", str(tmp_path / "u")])
        assert result.exit_code == 2 and "--threads" in result.output
        torch.set_num_threads(2)
        result = CliRunner().invoke(main, ["eval", "bias", str(tmp_path / "t"), "--device", "cpu", "--threads", "1",
                                           "--spacy-model", "none", "--n-boot", "10", "--plot", str(tmp_path / "b.png")])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1  # eval bias takes the option too
    finally:
        torch.set_num_threads(before)


def test_train_bad_inputs_are_clear_errors(tmp_path):
    parts = tmp_path / "p"
    fedpart.partition(FIXTURES / "ag_news" / "sample.csv", task="tc", scheme="iid", clients=2, out=parts,
                      plot=False, read_options=ReadOptions(column_names=("label", "title", "description")))
    with pytest.raises(fedpart.InputError, match="has no test split; partition with --test-frac"):
        train(parts, task="tc", out=tmp_path / "r", device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(fedpart.InputError, match="torch sees no CUDA device"):
            train(parts, task="tc", out=tmp_path / "r", device="cuda")
    with pytest.raises(fedpart.InputError, match="not a torch device"):
        train(parts, task="tc", out=tmp_path / "r", device="tpu-ish")
    with pytest.raises(fedpart.InputError, match="not a fedpart partition directory"):
        train(tmp_path, task="tc", out=tmp_path / "r", device="cpu")
