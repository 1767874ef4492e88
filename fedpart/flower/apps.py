"""Flower ``ClientApp`` and ``ServerApp`` that run a fedpart training experiment.

- The ClientApp trains the task model on one client's shard with fedpart's own local update
  (:func:`fedpart.train.federated.local_update`: the same minibatch order, seeded by
  ``(seed, round, partition + 1)``, and the same FedProx term), and answers ``query`` messages with
  its ``partition-id`` so the server can sample partitions as fedpart does.
- The ServerApp fits (or loads) the task state, initialises the model as ``fedpart train`` does
  (``torch.manual_seed(seed)``), runs Flower's FedAvg -- with fedpart's sampling
  (:class:`fedpart.flower.strategy.FedpartFedAvg`) or Flower's own -- evaluates the global model on the
  partition's ``test.parquet`` and writes a run directory in ``fedpart train``'s format
  (``config.json``, ``metrics.jsonl``, ``model.pt``), so ``fedpart report`` reads it.

Settings come from a :class:`fedpart.flower.FlowerRun` given to :func:`client_app` /
:func:`server_app` (simulations from Python), or else from Flower's run config (``flwr run``). A
SuperNode's node config may set ``partition-dir`` and ``task-state-dir`` to its own local paths;
``partition-id`` is the client it is (the simulation engine sets it for every virtual node).

With the same seed and ``sampler = "fedpart"`` a Flower run reaches the weights of ``fedpart train``
up to float rounding: Flower averages float32 numpy arrays in another order (tested with
``torch.allclose``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from fedpart.errors import InputError, OutputError
from fedpart.flower.run_config import FlowerRun
from fedpart.flower.strategy import NUM_EXAMPLES, PARTITION_ID, TRAIN_LOSS, FedpartFedAvg, map_partitions
from fedpart.flower.task_data import (
    client_shard, featurized_shard, load_task, prepare_task_state, test_split,
)
from fedpart.io.output_dir import check_output_not_over_inputs
from fedpart.manifest import Manifest
from fedpart.tasks.models.base import rows
from fedpart.train.federated import local_update, mean_train_loss
from fedpart.train.rundir import (CHECKPOINT_FILE, CONFIG_FILE, FINISHED_FILE, METRICS_FILE, MODEL_FILE,
                                  is_run_dir, read_run_config, write_json_object)
from fedpart.train.runner import record_environment
from fedpart.verify import manifest_digest

# --------------------------------------------------------------------------- client side


def _client_paths(run: FlowerRun | None, context: Context) -> tuple[str, Path, Path, int]:
    """(task, partition dir, task state dir, partition id) of this node."""
    node, run_config = context.node_config, context.run_config
    if PARTITION_ID not in node:
        raise InputError("this SuperNode has no partition-id; start it with --node-config \"partition-id=N\"")
    if run is None:
        run = FlowerRun.from_user_config(run_config)
    partition_dir = Path(str(node.get("partition-dir", run.partition_dir)))
    state_dir = Path(str(node.get("task-state-dir", run.state_dir)))
    return run.task, partition_dir, state_dir, int(node[PARTITION_ID])


def train_partition(
    task: str, partition_dir: Path, state_dir: Path, partition: int, weights: Mapping[str, torch.Tensor],
    settings: Mapping[str, Any],
) -> tuple[dict[str, torch.Tensor], int, float]:
    """One client's local training: fedpart's :func:`local_update` on shard ``partition`` from ``weights``.

    ``settings`` is the train config the server sends: ``local-epochs``, ``lr``, ``batch-size``,
    ``proximal-mu``, ``seed`` and ``server-round``; the minibatch order is seeded by
    ``(seed, server-round, partition + 1)`` exactly as in ``fedpart train``. Returns the new state
    dict, the shard's row count (the averaging weight) and the mean training loss of the update.
    """
    task_model, model = load_task(task, state_dir)
    record, _ = client_shard(partition_dir, partition)
    data = featurized_shard(task, state_dir, task_model, partition_dir, record)
    model.load_state_dict(weights)
    start = parameters_to_vector(model.parameters()).detach().clone()
    epochs, loss_sum = int(settings["local-epochs"]), torch.zeros((), dtype=torch.float64, device=start.device)
    updated = local_update(
        model, start, data, task_model.loss, epochs, float(settings["lr"]),
        int(settings["batch-size"]), float(settings["proximal-mu"]),
        (int(settings["seed"]), int(settings["server-round"]), partition + 1), loss_sum=loss_sum,
    )
    vector_to_parameters(updated, model.parameters())
    n_rows = rows(data)
    # copies: the model is reused by the next message this process handles
    return ({k: v.detach().clone() for k, v in model.state_dict().items()}, n_rows,
            mean_train_loss(loss_sum, epochs, n_rows))


def train_client(run: FlowerRun | None, message: Message, context: Context) -> Message:
    """Handle a ``train`` message: :func:`train_partition` from the received weights and config."""
    task, partition_dir, state_dir, partition = _client_paths(run, context)
    weights, n_rows, loss = train_partition(task, partition_dir, state_dir, partition,
                                            message.content["arrays"].to_torch_state_dict(), message.content["config"])
    # Flower's FedAvg averages the train metrics weighted by num-examples: the round's mean loss
    reply = RecordDict({"arrays": ArrayRecord(weights),
                        "metrics": MetricRecord({NUM_EXAMPLES: n_rows, TRAIN_LOSS: loss})})
    return Message(content=reply, reply_to=message)


def query_client(run: FlowerRun | None, message: Message, context: Context) -> Message:
    """Handle a ``query`` message: report this node's partition id and training rows."""
    _, partition_dir, _, partition = _client_paths(run, context)
    _, n_rows = client_shard(partition_dir, partition)
    reply = RecordDict({"config": ConfigRecord({PARTITION_ID: partition, NUM_EXAMPLES: n_rows})})
    return Message(content=reply, reply_to=message)


def client_app(run: FlowerRun | None = None) -> ClientApp:
    """A ClientApp for ``run`` (``None``: read the settings from Flower's run config)."""
    app = ClientApp()

    @app.train()
    def train(message: Message, context: Context) -> Message:
        return train_client(run, message, context)

    @app.query()
    def query(message: Message, context: Context) -> Message:
        return query_client(run, message, context)

    return app


# --------------------------------------------------------------------------- server side


def _strategy(run: FlowerRun, sizes: list[int], partition_nodes: dict[int, int]) -> FedAvg:
    config = run.federated
    if run.sampler == "fedpart":
        return FedpartFedAvg(sizes, config, partition_nodes)
    # Flower's own sampling: `clients_per_round` of the nodes, uniformly (min_train_nodes guards
    # against int(n * fraction) rounding down; a fraction above 1 would make Flower wait forever for
    # more nodes than there are partitions)
    options = dict(fraction_train=min(1.0, config.clients_per_round / len(sizes)), fraction_evaluate=0.0,
                   min_train_nodes=min(config.clients_per_round, len(sizes)), min_available_nodes=len(sizes))
    return FedProx(proximal_mu=config.mu, **options) if config.algo == "fedprox" else FedAvg(**options)


def check_server_run(run: FlowerRun, manifest: Manifest) -> None:
    """What :func:`run_server` checks before it writes anything: a test split to evaluate on, no
    empty client for Flower's own sampler, and an ``out`` that is new, empty or an earlier Flower
    run -- never the partition, nor a ``fedpart train`` run or other files it would clear.

    Raises:
        InputError: no test split; empty clients with ``sampler = "flower"``.
        OutputError: ``out`` is or holds an input, is a file, or holds something else than an earlier
            Flower run.
    """
    if manifest.test is None:
        raise InputError(f"{run.partition_dir}: has no test split; partition with --test-frac F so the "
                         "ServerApp can evaluate")
    empty = sum(c.rows == 0 for c in manifest.clients)
    if run.sampler == "flower" and empty:
        raise InputError(f"{run.partition_dir}: {empty} of {len(manifest.clients)} clients are empty, and Flower's "
                         "own sampler draws them like the others (a round of empty clients cannot be averaged); "
                         "use sampler 'fedpart', which skips them, or partition with --min-client-size 1")
    out = run.out
    check_output_not_over_inputs(out, [run.partition_dir, *([run.task_state_dir] if run.task_state_dir else [])])
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory; choose another out")
    if out.is_dir() and any(out.iterdir()) and (read_run_config(out) or {}).get("runtime") != "flower":
        what = "a fedpart run" if is_run_dir(out) else "other files"
        raise OutputError(f"{out}: holds {what}, not an earlier Flower run, which is all a Flower run replaces; "
                          "choose another out or empty it")


def run_server(grid: Grid, run: FlowerRun) -> list[dict[str, Any]]:
    """The ServerApp's work for ``run``; returns the metric records (also in ``out/metrics.jsonl``).
    Everything is checked (:func:`check_server_run`) before ``out`` is written."""
    config, out = run.federated, run.out
    manifest = Manifest.read(run.partition_dir)
    check_server_run(run, manifest)
    out.mkdir(parents=True, exist_ok=True)
    # an earlier run in `out` leaves files this run writes only at its end (model.pt) or not at all
    # (`fedpart train`'s finished.json and checkpoint.pt): they would describe this run as that one
    for stale in (MODEL_FILE, FINISHED_FILE, CHECKPOINT_FILE):
        (out / stale).unlink(missing_ok=True)
    # the partition resolved, as fedpart train records it: distill and eval bias find its test split
    # from any directory; written first, so a run failing below leaves an out the next one may replace
    run_config = {"task": run.task, "partition": str(run.partition_dir.resolve()),
                  "manifest_sha256": manifest_digest(run.partition_dir), "runtime": "flower",
                  "sampler": run.sampler, **asdict(config)}
    write_json_object(out / CONFIG_FILE, run_config)
    if run.task_state_dir is None:
        task_model = prepare_task_state(run.partition_dir, run.task, out)
    else:
        task_model, _ = load_task(run.task, run.task_state_dir)
        task_model.save(out)
    test_data, test_table = test_split(run.partition_dir, run.task, task_model)
    write_json_object(out / CONFIG_FILE, {**run_config, "featurisation": task_model.describe()})
    (out / METRICS_FILE).write_text("", encoding="utf-8")
    # the server's software (it evaluates on the CPU); the clients' machines may differ
    record_environment(out, torch.device("cpu"), resuming=False, extra={"flwr": version("flwr")})

    torch.manual_seed(config.seed)  # the initial weights of fedpart train
    model = task_model.build_model()
    sizes = [c.rows for c in manifest.clients]
    # down- and upload of the weights by each sampled client, as fedpart train counts it
    bytes_per_round = (2 * min(config.clients_per_round, sum(s > 0 for s in sizes))
                       * sum(p.numel() * p.element_size() for p in model.parameters()))
    partition_nodes = map_partitions(grid, len(sizes))
    strategy = _strategy(run, sizes, partition_nodes)
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    train_losses: dict[int, float] = {}  # each round's mean training loss, as Flower aggregates it
    aggregate_train = strategy.aggregate_train

    def aggregate_and_keep_loss(server_round: int, replies: Any) -> Any:
        arrays, metrics = aggregate_train(server_round, replies)
        if metrics is not None and TRAIN_LOSS in metrics:
            train_losses[server_round] = float(metrics[TRAIN_LOSS])
        return arrays, metrics

    strategy.aggregate_train = aggregate_and_keep_loss  # type: ignore[method-assign]

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0 or (server_round % config.eval_every and server_round != config.rounds):
            return None
        model.load_state_dict(arrays.to_torch_state_dict())
        model.eval()
        metrics = task_model.evaluate(model, test_data, test_table)
        chosen = strategy.chosen.get(server_round, []) if isinstance(strategy, FedpartFedAvg) else []
        record = {"round": server_round, "metrics": {k: round(float(v), 6) for k, v in metrics.items()},
                  **({"train_loss": round(train_losses[server_round], 6)} if server_round in train_losses else {}),
                  "clients": chosen,
                  "bytes_communicated": bytes_per_round * server_round,
                  "wall_time_s": round(time.perf_counter() - started, 3)}
        records.append(record)
        with open(out / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return MetricRecord({k: float(v) for k, v in metrics.items()})

    train_config = ConfigRecord({"lr": config.lr, "local-epochs": config.local_epochs,
                                 "batch-size": config.batch_size, "seed": config.seed,
                                 "proximal-mu": config.mu if config.algo == "fedprox" else 0.0})
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=config.rounds,
                            train_config=train_config, evaluate_fn=evaluate)
    model.load_state_dict(result.arrays.to_torch_state_dict())
    torch.save(model.state_dict(), out / MODEL_FILE)
    return records


def server_app(run: FlowerRun | None = None) -> ServerApp:
    """A ServerApp for ``run`` (``None``: read the settings from Flower's run config)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_server(grid, run if run is not None else FlowerRun.from_user_config(context.run_config))

    return app


#: the apps ``flwr run`` loads (``fedpart.flower.apps:clientapp`` / ``:serverapp``); settings from the run config
clientapp = client_app()
serverapp = server_app()
