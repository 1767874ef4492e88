"""The training core's speed paths keep the maths: the EmbeddingBag text classifier is the masked mean
of ``nn.Embedding``, sparse embedding gradients give the dense update (and FedProx/Adam fall back to
dense), the reused training buffer and streamed average equal ``aggregate`` of separate updates,
``sgd_step`` is ``torch.optim.SGD``'s step, checkpoints reuse their files, and on CUDA a local update
never waits for the host. (Issue 5; timings in bench/results/train_vs_flower.md and train_gpu.md.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from fedpart.tasks.models.tc import MeanPoolClassifier, TextClassifierTask
from fedpart.train.federated import (
    FederatedConfig,
    ServerState,
    aggregate,
    federated_round,
    local_update,
    sample_clients,
    sgd_step,
    sparse_embeddings,
)
from fedpart.train.runner import CHECKPOINT_FILE, RunData, _save_checkpoint, run_rounds

VOCAB, CLASSES, DIM = 300, 3, 8


def _tokens(rows: int, seed: int, width: int = 12) -> torch.Tensor:
    """Right-padded token ids in 1..VOCAB-1, including an all-padding row."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (rows, width), generator=g)
    lengths = torch.randint(0, width + 1, (rows,), generator=g)
    lengths[:1] = 0
    tokens[torch.arange(width)[None, :] >= lengths[:, None]] = 0
    return tokens


def _client(rows: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed + 1000)
    return {"tokens": _tokens(rows, seed), "label": torch.randint(0, CLASSES, (rows,), generator=g)}


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["tokens"]), batch["label"])


def _classifier(sparse: bool = True) -> MeanPoolClassifier:
    torch.manual_seed(0)
    model = MeanPoolClassifier(VOCAB, CLASSES, DIM)
    model.embedding.sparse = sparse
    return model


def _start(model: nn.Module) -> torch.Tensor:
    return parameters_to_vector(model.parameters()).detach().clone()


def test_classifier_is_the_masked_mean_of_an_embedding_with_its_initial_weights():
    model = _classifier()
    torch.manual_seed(0)
    embedding, output = nn.Embedding(VOCAB, DIM, padding_idx=0), nn.Linear(DIM, CLASSES)
    assert torch.equal(model.embedding.weight, embedding.weight) and torch.equal(model.output.weight, output.weight)
    assert set(model.state_dict()) == {"embedding.weight", "output.weight", "output.bias"}
    tokens = _tokens(20, 1)
    mask = (tokens != 0).unsqueeze(-1).float()
    expected = output((embedding(tokens) * mask).sum(1) / mask.sum(1).clamp(min=1.0))
    torch.testing.assert_close(model(tokens), expected)
    torch.testing.assert_close(model(tokens)[0], output.bias)  # an all-padding row pools to zero


def test_sparse_embedding_gradients_give_the_dense_update_and_keep_padding_zero():
    data = _client(50, 2)
    sparse, dense = _classifier(sparse=True), _classifier(sparse=False)
    start = _start(sparse)
    _loss(sparse, data).backward()
    assert sparse.embedding.weight.grad.is_sparse  # the fast path is really taken
    sparse.zero_grad(set_to_none=True)
    a = local_update(sparse, start, data, _loss, 2, 0.5, 8, 0.0, (0, 1, 1))
    b = local_update(dense, start, data, _loss, 2, 0.5, 8, 0.0, (0, 1, 1))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, start)
    assert torch.count_nonzero(a[:DIM]) == 0  # row 0 (padding) of the embedding never moves
    unused = sorted(set(range(1, VOCAB)) - set(data["tokens"].unique().tolist()))
    rows = a[: VOCAB * DIM].view(VOCAB, DIM)
    assert torch.equal(rows[unused], start[: VOCAB * DIM].view(VOCAB, DIM)[unused])


@pytest.mark.parametrize(("mu", "optimizer"), [(0.1, "sgd"), (0.0, "adam"), (0.1, "adam")])
def test_fedprox_and_adam_fall_back_to_dense_gradients(mu, optimizer):
    data = _client(40, 3)
    sparse, dense = _classifier(sparse=True), _classifier(sparse=False)
    start = _start(sparse)
    # Adam refuses sparse gradients: without the fallback this raises
    a = local_update(sparse, start, data, _loss, 1, 0.05, 8, mu, (0, 1, 1), optimizer)
    b = local_update(dense, start, data, _loss, 1, 0.05, 8, mu, (0, 1, 1), optimizer)
    torch.testing.assert_close(a, b)
    assert sparse_embeddings(sparse) == [sparse.embedding]  # sparse again for the next plain-SGD update
    assert sparse_embeddings(dense) == []


def test_local_update_trains_in_the_given_buffer_and_never_writes_the_global_weights():
    model, data = _classifier(), _client(30, 4)
    start = _start(model)
    kept = start.clone()
    fresh = local_update(model, start, data, _loss, 1, 0.5, 8, 0.0, (0, 1, 1))
    buffer = torch.full_like(start, 7.0)
    result = local_update(model, start, data, _loss, 1, 0.5, 8, 0.0, (0, 1, 1), out=buffer)
    assert result is buffer and torch.equal(result, fresh) and torch.equal(start, kept)
    # the model's parameters are views of the buffer: nothing is left to copy out
    assert model.embedding.weight.data_ptr() == buffer.data_ptr()


def test_federated_round_equals_aggregate_of_separate_local_updates():
    clients = [_client(n, 10 + i) for i, n in enumerate([9, 30, 0, 17, 25])]
    sizes = [c["label"].shape[0] for c in clients]
    model = _classifier()
    start = _start(model)
    config = FederatedConfig(rounds=1, clients_per_round=3, local_epochs=2, lr=0.5, batch_size=8, seed=5)
    state, chosen = federated_round(model, ServerState(start), clients, sizes, _loss, config, 1)
    assert chosen.tolist() == sample_clients(sizes, 3, "uniform", 5, 1).tolist()
    updates = [local_update(_classifier(), start, clients[c], _loss, 2, 0.5, 8, 0.0, (5, 1, int(c) + 1))
               for c in chosen]
    assert torch.equal(state.weights, aggregate(updates, [sizes[c] for c in chosen]))


@pytest.mark.parametrize("sparse", [False, True])
def test_sgd_step_is_torch_optim_sgd(sparse):
    data = _client(16, 6)
    ours, theirs = _classifier(sparse), _classifier(sparse)
    _loss(ours, data).backward()
    _loss(theirs, data).backward()
    assert ours.embedding.weight.grad.is_sparse == sparse
    sgd_step(list(ours.parameters()), 0.3)
    torch.optim.SGD(theirs.parameters(), lr=0.3).step()
    assert torch.equal(_start(ours), _start(theirs))
    assert all(p.grad is None for p in ours.parameters())


def test_plain_sgd_local_update_does_not_import_dynamo():
    # torch.optim's optimiser classes import torch._dynamo when first built: seconds per process
    code = ("import sys, torch\nfrom fedpart.train.federated import local_update\n"
            "m = torch.nn.Linear(3, 1)\nv = torch.nn.utils.parameters_to_vector(m.parameters()).detach()\n"
            "loss = lambda model, b: ((model(b['x']) - b['y']) ** 2).mean()\n"
            "local_update(m, v, {'x': torch.ones(4, 3), 'y': torch.zeros(4, 1)}, loss, 1, 0.1, 2, 0.0, (0, 1, 1))\n"
            "print('torch._dynamo' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_checkpoint_reuses_the_replaced_file_and_survives_a_stale_spare(tmp_path):
    path, tmp = tmp_path / CHECKPOINT_FILE, tmp_path / (CHECKPOINT_FILE + ".tmp")
    _save_checkpoint(tmp_path, 1, ServerState(torch.zeros(1000)), elapsed_s=0.0)
    first = path.stat().st_ino
    _save_checkpoint(tmp_path, 2, ServerState(torch.ones(1000)), elapsed_s=0.0)
    assert tmp.stat().st_ino == first  # round 1's file is kept to be written over, not deleted
    _save_checkpoint(tmp_path, 3, ServerState(torch.full((10,), 3.0)), elapsed_s=0.0)  # a smaller file over a bigger one
    assert path.stat().st_ino == first
    (tmp_path / (CHECKPOINT_FILE + ".old")).write_bytes(b"left by a killed run")
    _save_checkpoint(tmp_path, 4, ServerState(torch.full((10,), 4.0), m=torch.ones(10)), elapsed_s=0.0)
    saved = torch.load(path)
    assert saved["round"] == 4 and torch.equal(saved["weights"], torch.full((10,), 4.0))
    assert torch.equal(saved["m"], torch.ones(10)) and saved["v"] is None
    assert not (tmp_path / (CHECKPOINT_FILE + ".old")).exists()


def test_a_finished_run_leaves_only_its_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "team", "market", "game", "stock", "win"]

    def table(rows: int) -> pa.Table:
        return pa.table({"text": [" ".join(rng.choice(words, 5)) for _ in range(rows)],
                         "label": rng.integers(0, 2, rows).tolist()})

    task = TextClassifierTask()
    tables, test = [table(12), table(7)], table(6)

    def load(fit: bool) -> RunData:
        if fit:
            task.fit(tables)
        cpu = torch.device("cpu")
        return RunData([task.featurize(t, cpu) for t in tables], [t.num_rows for t in tables],
                       task.featurize(test, cpu), test)

    config = FederatedConfig(rounds=3, clients_per_round=2, lr=0.5, batch_size=4)
    run_rounds(task, load, {"task": "tc"}, tmp_path / "run", config, torch.device("cpu"))
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert CHECKPOINT_FILE in names and not [n for n in names if n.startswith(CHECKPOINT_FILE + ".")]
    assert torch.load(tmp_path / "run" / CHECKPOINT_FILE)["round"] == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_local_update_never_synchronises_with_the_host():
    device = torch.device("cuda")
    model = _classifier().to(device)
    data = {k: v.to(device) for k, v in _client(100, 7).items()}
    start = _start(model)
    local_update(model, start, data, _loss, 1, 0.5, 8, 0.0, (0, 1, 1))  # warm-up (allocations, kernels)
    buffer = torch.empty_like(start)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        local_update(model, start, data, _loss, 2, 0.5, 8, 0.0, (0, 2, 1), out=buffer)
        local_update(model, start, data, _loss, 1, 0.5, 8, 0.1, (0, 2, 2), out=buffer)  # FedProx: dense
    finally:
        torch.cuda.set_sync_debug_mode(0)
    cpu = local_update(_classifier(), start.cpu(), {k: v.cpu() for k, v in data.items()}, _loss, 1, 0.5, 8, 0.1,
                       (0, 2, 2))
    torch.testing.assert_close(buffer.cpu(), cpu)
