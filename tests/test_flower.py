"""fedpart.flower: the Partitioner adapter (exact cover, determinism, equal to fedpart partition) and
the Flower apps (a 3-client, 2-round simulation reaches fedpart train's weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedpart
from fedpart.errors import InputError
from fedpart.flower import FedpartPartitioner
from fedpart.io.sources import ReadOptions

datasets = pytest.importorskip("datasets")
AG_NEWS_CSV = Path(__file__).resolve().parent.parent / "fixtures" / "ag_news" / "sample.csv"


def _table(n: int, n_labels: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "text": [f"text {i}" for i in range(n)],
        "label": rng.integers(0, n_labels, n),
        "user": np.char.add("u", rng.integers(0, 25, n).astype(str)),
        "context": rng.integers(0, 60, n),
    })


def _indices(partitioner: FedpartPartitioner, table: pa.Table) -> list[np.ndarray]:
    partitioner.dataset = datasets.Dataset(table)
    return partitioner.partition_indices()


def _assert_exact_cover(indices: list[np.ndarray], n: int) -> None:
    flat = np.concatenate(indices)
    assert flat.size == n
    assert np.array_equal(np.sort(flat), np.arange(n))  # every row exactly once


# --------------------------------------------------------------------------- FedpartPartitioner


@pytest.mark.parametrize("scheme, adapter, engine", [
    ("dirichlet", {"partition_by": "label", "num_clients": 12, "alpha": 0.3},
     {"label_col": "label", "clients": 12, "alpha": 0.3}),
    ("label-count", {"partition_by": "label", "num_clients": 8, "labels_per_client": 2},
     {"label_col": "label", "clients": 8, "labels_per_client": 2}),
    ("natural", {"partition_by": "user"}, {"by": "user"}),
    ("iid", {"num_clients": 5}, {"clients": 5}),
    ("quantity", {"partition_by": "label", "num_clients": 6, "alpha": 1.0, "min_client_size": 3},
     {"label_col": "label", "clients": 6, "alpha": 1.0, "min_client_size": 3}),
])
def test_partitioner_equals_fedpart_partition(tmp_path, scheme, adapter, engine):
    table = _table(3000, 6)
    pq.write_table(table, tmp_path / "in.parquet")
    manifest = fedpart.partition(tmp_path / "in.parquet", out=tmp_path / "parts", scheme=scheme, seed=11,
                                 plot=False, **engine)
    indices = _indices(FedpartPartitioner(scheme, seed=11, **adapter), table)
    assert len(indices) == manifest.num_clients
    for client, record in enumerate(manifest.clients):
        row_ids = pq.read_table(tmp_path / "parts" / record.file).column("row_id").to_numpy()
        assert np.array_equal(indices[client], row_ids), f"client {client}"
    _assert_exact_cover(indices, table.num_rows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(12, 400), n_labels=st.integers(1, 6), clients=st.integers(1, 12),
       alpha=st.floats(0.05, 10.0), seed=st.integers(0, 2**32 - 1), data_seed=st.integers(0, 100))
def test_partitioner_exact_cover_and_determinism(n, n_labels, clients, alpha, seed, data_seed):
    table = _table(n, n_labels, data_seed)
    first = _indices(FedpartPartitioner("dirichlet", partition_by="label", num_clients=clients, alpha=alpha,
                                        seed=seed), table)
    assert len(first) == clients
    _assert_exact_cover(first, n)
    assert all(np.all(np.diff(part) > 0) for part in first)  # rows keep dataset order
    again = _indices(FedpartPartitioner("dirichlet", partition_by="label", num_clients=clients, alpha=alpha,
                                        seed=seed), table)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_partitioner_seed_changes_the_partition():
    table = _table(2000, 5)
    a = _indices(FedpartPartitioner("dirichlet", partition_by="label", num_clients=10, alpha=0.5, seed=1), table)
    b = _indices(FedpartPartitioner("dirichlet", partition_by="label", num_clients=10, alpha=0.5, seed=2), table)
    assert any(not np.array_equal(x, y) for x, y in zip(a, b))


def test_partitioner_keeps_groups_whole():
    table = _table(1500, 4)
    # one label per context, as the engine requires of groups
    table = table.set_column(1, "label", pa.array(table.column("context").to_numpy() % 4))
    indices = _indices(FedpartPartitioner("dirichlet", partition_by="label", group_by="context",
                                          num_clients=7, alpha=0.5, seed=3), table)
    _assert_exact_cover(indices, table.num_rows)
    contexts = table.column("context").to_numpy()
    owners = {}
    for client, part in enumerate(indices):
        for context in set(contexts[part].tolist()):
            assert owners.setdefault(context, client) == client


def test_partitioner_cluster_scheme_covers_the_rows():
    rng = np.random.default_rng(0)
    topics = [["match", "team", "goal", "league"], ["stock", "market", "price", "bank"], ["space", "nasa", "orbit"]]
    texts = [" ".join(rng.choice(topics[i % 3], 6)) for i in range(300)]
    table = pa.table({"text": texts})

    def make():
        return FedpartPartitioner("cluster", text_by="text", num_clients=4, alpha=0.3, clusters=3, seed=2)

    first, again = _indices(make(), table), _indices(make(), table)
    _assert_exact_cover(first, 300)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_partitioner_loads_rows_of_a_shuffled_dataset():
    table = _table(600, 3)
    shuffled = datasets.Dataset(table).shuffle(seed=4)  # an indices mapping over the table
    materialised = datasets.Dataset(pa.Table.from_pylist(shuffled.to_list(), schema=table.schema))
    adapter, reference = (FedpartPartitioner("dirichlet", partition_by="label", num_clients=4, alpha=1.0)
                          for _ in range(2))
    adapter.dataset, reference.dataset = shuffled, materialised
    assert adapter.num_partitions == 4
    for client in range(4):
        assert list(adapter.load_partition(client)["text"]) == list(reference.load_partition(client)["text"])


def test_partitioner_natural_counts_partitions_from_the_ids():
    partitioner = FedpartPartitioner("natural", partition_by="user")
    partitioner.dataset = datasets.Dataset(_table(500, 3))
    assert partitioner.num_partitions == 25
    assert set(partitioner.load_partition(0)["user"]) == {"u0"}  # ids in sorted order, one per partition


@pytest.mark.parametrize("make, message", [
    (lambda: FedpartPartitioner("dirichlet", num_clients=3, alpha=1.0), "needs partition_by"),
    (lambda: FedpartPartitioner("natural"), "needs partition_by"),
    (lambda: FedpartPartitioner("iid", num_clients=3, alpha=1.0), "does not apply"),
    (lambda: FedpartPartitioner("nope", num_clients=3), "unknown --scheme"),
    (lambda: FedpartPartitioner("cluster", num_clients=3, alpha=1.0), "needs text_by"),
])
def test_partitioner_rejects_bad_parameters(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_partitioner_rejects_bad_columns():
    partitioner = FedpartPartitioner("dirichlet", partition_by="missing", num_clients=3, alpha=1.0)
    partitioner.dataset = datasets.Dataset(_table(50, 2))
    with pytest.raises(InputError, match="no column"):
        partitioner.load_partition(0)
    with_null = FedpartPartitioner("dirichlet", partition_by="label", num_clients=3, alpha=1.0)
    with_null.dataset = datasets.Dataset(pa.table({"label": [1, None, 2, 1]}))
    with pytest.raises(InputError, match="1 null"):
        with_null.load_partition(0)
    fine = FedpartPartitioner("iid", num_clients=3)
    fine.dataset = datasets.Dataset(_table(50, 2))
    with pytest.raises(InputError, match="no partition 3"):
        fine.load_partition(3)


def test_federated_dataset_accepts_the_partitioner(tmp_path, monkeypatch):
    flwr_datasets = pytest.importorskip("flwr_datasets")  # pins datasets<5: only in the bench venv
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    table = _table(800, 4)
    pq.write_table(table, tmp_path / "in.parquet")
    fds = flwr_datasets.FederatedDataset(
        dataset="parquet", data_files=str(tmp_path / "in.parquet"), shuffle=False,
        partitioners={"train": FedpartPartitioner("dirichlet", partition_by="label", num_clients=6, alpha=0.5)},
    )
    reference = _indices(FedpartPartitioner("dirichlet", partition_by="label", num_clients=6, alpha=0.5), table)
    parts = [list(fds.load_partition(client)["text"]) for client in range(6)]
    for client, part in enumerate(parts):
        assert part == table.column("text").take(reference[client]).to_pylist()
    assert sorted(sum(parts, [])) == sorted(table.column("text").to_pylist())


# --------------------------------------------------------------------------- FlowerRun


def test_flower_run_reads_flowers_run_config(tmp_path):
    pytest.importorskip("torch")
    from fedpart.flower import FlowerRun

    run = FlowerRun.from_user_config({"partition-dir": str(tmp_path), "task": "tc", "out": "runs/x",
                                      "rounds": 7, "clients-per-round": 3, "lr": 1, "algo": "fedprox", "mu": 0.1})
    assert (run.federated.rounds, run.federated.clients_per_round, run.federated.lr) == (7, 3, 1.0)
    assert isinstance(run.federated.lr, float) and run.sampler == "fedpart" and run.state_dir == run.out
    assert FlowerRun.from_user_config(run.to_user_config()) == run
    with pytest.raises(InputError, match="unknown key.*rounds-per-client"):
        FlowerRun.from_user_config({**run.to_user_config(), "rounds-per-client": 1})
    with pytest.raises(InputError, match="needs out"):
        FlowerRun.from_user_config({"partition-dir": "p", "task": "tc"})
    with pytest.raises(InputError, match="rounds = 'many'"):
        FlowerRun.from_user_config({**run.to_user_config(), "rounds": "many"})
    with pytest.raises(InputError, match="centralized"):
        FlowerRun.from_user_config({**run.to_user_config(), "algo": "centralized"})


def test_flower_run_refuses_server_optimisers(tmp_path):
    pytest.importorskip("torch")
    from fedpart.flower import FlowerRun
    from fedpart.train.federated import FederatedConfig

    with pytest.raises(InputError, match="server-opt adam"):
        FlowerRun(tmp_path, "tc", tmp_path / "out", FederatedConfig(server_opt="adam"))


# --------------------------------------------------------------------------- Flower apps


@pytest.fixture
def ag_news_parts(tmp_path):
    from fedpart.io.sources import ReadOptions

    parts = tmp_path / "parts"
    fedpart.partition(AG_NEWS_CSV, task="tc", scheme="dirichlet", alpha=1.0, clients=3, test_frac=0.2, seed=0,
                      out=parts, plot=False, read_options=ReadOptions(column_names=("label", "title", "description")))
    return parts


def test_train_partition_is_fedparts_local_update(ag_news_parts, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("flwr")
    from torch.nn.utils import parameters_to_vector

    from fedpart.flower.apps import train_partition
    from fedpart.flower.task_data import prepare_task_state
    from fedpart.manifest import Manifest
    from fedpart.train.federated import local_update
    from fedpart.train.runner import canonical_table

    task_model = prepare_task_state(ag_news_parts, "tc", tmp_path / "state")
    torch.manual_seed(0)
    model = task_model.build_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    settings = {"local-epochs": 2, "lr": 0.3, "batch-size": 4, "proximal-mu": 0.05, "seed": 9, "server-round": 4}
    weights, n_rows, loss = train_partition("tc", ag_news_parts, tmp_path / "state", 2, start, settings)

    shard = Manifest.read(ag_news_parts).clients[2]
    data = task_model.featurize(canonical_table(ag_news_parts / shard.file, "tc"), torch.device("cpu"))
    loss_sum = torch.zeros((), dtype=torch.float64)
    expected = local_update(model, parameters_to_vector(model.parameters()).detach().clone(), data, task_model.loss,
                            2, 0.3, 4, 0.05, (9, 4, 3), loss_sum=loss_sum)
    model.load_state_dict(weights)
    assert n_rows == shard.rows and loss == float(loss_sum) / (2 * n_rows) > 0
    assert torch.equal(parameters_to_vector(model.parameters()), expected)
    assert not torch.equal(expected, parameters_to_vector([start[k] for k in start]))


def test_flower_simulation_reaches_fedpart_train_weights(ag_news_parts, tmp_path, monkeypatch):
    """3 clients, 2 sampled per round, 2 rounds of FedProx: Flower's simulation engine (Ray) with
    fedpart's sampling ends at the weights of ``fedpart train`` (up to float rounding: Flower averages
    float32 numpy arrays in its own order), having trained the same clients in each round."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("ray")
    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "0")
    simulation = pytest.importorskip("flwr.simulation")
    from fedpart.flower import FlowerRun, client_app, server_app
    from fedpart.tasks.models import get_task_model
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.report import load_run, run_record
    from fedpart.train.runner import read_metrics, train

    config = FederatedConfig(algo="fedprox", mu=0.05, rounds=2, clients_per_round=2, lr=0.5, batch_size=8, seed=3)
    train(ag_news_parts, task="tc", out=tmp_path / "fedpart", config=config, device="cpu")
    run = FlowerRun(partition_dir=ag_news_parts, task="tc", out=tmp_path / "flower", federated=config)
    # one Ray worker: the start-up (not the 2 rounds) is what this test spends its time on
    simulation.run_simulation(server_app(run), client_app(run), num_supernodes=3,
                              backend_config={"init_args": {"num_cpus": 1},
                                              "client_resources": {"num_cpus": 1, "num_gpus": 0.0}})

    ours = torch.load(tmp_path / "fedpart" / "model.pt")
    theirs = torch.load(tmp_path / "flower" / "model.pt")
    assert list(ours) == list(theirs)
    task_model = get_task_model("tc")()
    task_model.load(tmp_path / "flower")
    torch.manual_seed(3)
    initial = task_model.build_model().state_dict()
    assert not torch.allclose(initial["embedding.weight"], ours["embedding.weight"])  # it trained
    for name in ours:
        assert torch.allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6), name
    fedpart_records, flower_records = read_metrics(tmp_path / "fedpart"), read_metrics(tmp_path / "flower")
    assert [r["clients"] for r in flower_records] == [r["clients"] for r in fedpart_records]
    assert all(len(r["clients"]) == 2 for r in flower_records)
    for a, b in zip(fedpart_records, flower_records):
        assert a["metrics"]["accuracy"] == pytest.approx(b["metrics"]["accuracy"], abs=1e-3)
        # the round's mean local training loss: Flower's num-examples-weighted mean of the clients'
        assert a["train_loss"] > 0 and a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    record = run_record(load_run(tmp_path / "flower"))  # fedpart report reads it
    assert (record["runtime"], record["sampler"], record["partition_manifest"]) == ("flower", "fedpart", "verified")
    assert record["partition_clients"] == 3 and record["final_accuracy"] == flower_records[-1]["metrics"]["accuracy"]
    environment = json.loads((tmp_path / "flower" / "environment.json").read_text())
    assert environment["torch"] == torch.__version__ and environment["flwr"] and environment["device"] == "cpu"


def test_a_flower_server_checks_everything_before_it_writes(ag_news_parts, tmp_path):
    """A failed Flower run used to clear the run in its out first (model.pt, checkpoint, finished.json)
    and rewrite its vocabulary; now every refusal comes before anything is written."""
    pytest.importorskip("torch")
    pytest.importorskip("flwr")
    from fedpart.errors import OutputError
    from fedpart.flower import FlowerRun
    from fedpart.flower.apps import run_server
    from fedpart.manifest import Manifest
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.runner import train

    config = FederatedConfig(rounds=1, clients_per_round=2, lr=0.5)
    victim = tmp_path / "victim"
    train(ag_news_parts, task="tc", out=victim, config=config, device="cpu")
    before = {p.name: p.read_bytes() for p in victim.iterdir()}
    no_test = tmp_path / "no-test"
    fedpart.partition(AG_NEWS_CSV, task="tc", scheme="dirichlet", alpha=0.05, clients=12, seed=0, out=no_test,
                      plot=False, read_options=ReadOptions(column_names=("label", "title", "description")))
    empty = tmp_path / "empty-clients"
    fedpart.partition(AG_NEWS_CSV, task="tc", scheme="dirichlet", alpha=0.05, clients=12, seed=0, test_frac=0.2,
                      out=empty, plot=False, read_options=ReadOptions(column_names=("label", "title", "description")))
    assert any(c.rows == 0 for c in Manifest.read(empty).clients)
    cases = [
        (dict(partition_dir=no_test, out=victim), InputError, "has no test split; partition with --test-frac"),
        (dict(partition_dir=ag_news_parts, out=victim), OutputError, "holds a fedpart run, not an earlier Flower run"),
        (dict(partition_dir=ag_news_parts, out=ag_news_parts), OutputError, "is or contains the input"),
        (dict(partition_dir=ag_news_parts, out=ag_news_parts / "run"), OutputError, "lies inside the input"),
        (dict(partition_dir=ag_news_parts, out=victim / "config.json"), OutputError,
         "exists and is not a directory; choose another out"),
        (dict(partition_dir=empty, out=tmp_path / "new", sampler="flower"), InputError,
         r"clients are empty, and Flower's own sampler draws them.*use sampler 'fedpart'"),
    ]
    for arguments, error, message in cases:
        with pytest.raises(error, match=message):
            run_server(None, FlowerRun(task="tc", federated=config, **arguments))  # no grid is reached
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before
    assert not (tmp_path / "new").exists() and not (ag_news_parts / "run").exists()


def test_waiting_for_supernodes_gives_up_when_none_join():
    """A simulation with fewer supernodes than partitions never gets more: fail after the stall,
    not after the 10-minute timeout."""
    import time

    pytest.importorskip("flwr")
    from fedpart.errors import FedpartError
    from fedpart.flower.strategy import map_partitions

    class TwoNodes:
        def get_node_ids(self):
            return [11, 12]

    started = time.monotonic()
    with pytest.raises(FedpartError, match=r"only 2 of 3 SuperNodes connected and none joined for 0 s.*"
                                           r"num_supernodes=3"):
        map_partitions(TwoNodes(), 3, timeout=600, stall=0.3)
    assert time.monotonic() - started < 5


def test_a_flower_run_failing_after_it_started_leaves_an_out_the_next_run_replaces(ag_news_parts, tmp_path,
                                                                                     monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("flwr")
    from fedpart.flower import FlowerRun, apps
    from fedpart.flower.apps import check_server_run
    from fedpart.manifest import Manifest
    from fedpart.train.federated import FederatedConfig

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the vocabulary could not be built")

    run = FlowerRun(partition_dir=ag_news_parts, task="tc", out=tmp_path / "run",
                    federated=FederatedConfig(rounds=1, clients_per_round=2))
    monkeypatch.setattr(apps, "prepare_task_state", broken)
    with pytest.raises(RuntimeError):
        apps.run_server(None, run)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["runtime"] == "flower"
    check_server_run(run, Manifest.read(ag_news_parts))  # an earlier Flower run: replaceable
