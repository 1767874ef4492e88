"""Federated optimisation on flat parameter vectors: FedAvg, FedProx and FedOpt, plus client sampling.

- FedAvg (McMahan et al. 2017): each round ``K`` sampled clients run ``E`` local epochs of minibatch
  SGD from the global weights; the server averages their weights, weighted by sample counts.
- FedProx (Li et al. 2020): the local objective adds ``(mu / 2) * ||w - w_global||^2``; ``mu = 0``
  is FedAvg exactly (the term is skipped, not multiplied by zero).
- FedOpt (Reddi et al. 2021): the averaged update ``delta = avg - global`` is a pseudo-gradient for a
  server optimiser: ``sgd`` (``global += server_lr * delta``; ``server_lr = 1`` is FedAvg) or ``adam``
  (FedAdam: ``m = b1 m + (1-b1) delta``, ``v = b2 v + (1-b2) delta^2``,
  ``global += server_lr * m / (sqrt(v) + tau)``).
- Client sampling: ``uniform`` without replacement, or ``activity``: without replacement with
  probability proportional to each client's number of training examples (device selection by
  activity, "Learnings from federated learning in the real world", ICASSP 2022).

Every random choice is seeded from ``(seed, round, client)``, so a resumed run is identical to an
uninterrupted one. Parameters stay on the training device.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils import vector_to_parameters
from torch.optim.sgd import sgd

from fedpart.errors import InputError
from fedpart.checks import check_float32, check_seed
from fedpart.partitioners.params import check_int_at_least, plain_float

LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]
ALGORITHMS = ("fedavg", "fedprox", "centralized")
CLIENT_OPTIMIZERS = ("sgd", "adam")
SERVER_OPTIMIZERS = ("sgd", "adam")
SAMPLINGS = ("uniform", "activity")
#: options of client sampling, which centralised training has none of
CLIENT_SAMPLING_OPTIONS = ("clients_per_round", "sampling")


@dataclass(frozen=True)
class FederatedConfig:
    """Hyper-parameters of one run (all recorded in the run's config.json)."""

    algo: str = "fedavg"
    rounds: int = 10
    clients_per_round: int = 10
    local_epochs: int = 1
    lr: float = 0.05
    batch_size: int = 32
    client_opt: str = "sgd"
    mu: float = 0.0
    server_opt: str = "sgd"
    server_lr: float = 1.0
    server_betas: tuple[float, float] = (0.9, 0.99)
    server_tau: float = 1e-3
    sampling: str = "uniform"
    eval_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise InputError(f"--algo must be one of {', '.join(ALGORITHMS)}, got {self.algo!r}")
        if self.client_opt not in CLIENT_OPTIMIZERS:
            raise InputError(f"--client-opt must be one of {', '.join(CLIENT_OPTIMIZERS)}")
        if self.server_opt not in SERVER_OPTIMIZERS:
            raise InputError(f"--server-opt must be one of {', '.join(SERVER_OPTIMIZERS)}")
        if self.sampling not in SAMPLINGS:
            raise InputError(f"--sampling must be one of {', '.join(SAMPLINGS)}")
        for name in ("rounds", "clients_per_round", "local_epochs", "batch_size", "eval_every"):
            # a plain int (numpy integers too): config.json is JSON
            object.__setattr__(self, name, check_int_at_least(getattr(self, name), f"--{name.replace('_', '-')}", 1))
        for name in ("lr", "mu", "server_lr", "server_tau"):  # nan passes every comparison below
            flag = name if name == "server_tau" else f"--{name.replace('_', '-')}"  # server_tau: no CLI option
            object.__setattr__(self, name, plain_float(check_float32(getattr(self, name), flag)))
        self._check_server_adam()
        if self.lr <= 0 or self.server_lr <= 0:
            raise InputError("--lr and --server-lr must be > 0")
        if self.mu < 0:  # mu = 0 is allowed: FedProx then equals FedAvg
            raise InputError("--mu must be >= 0")
        if self.mu != 0 and self.algo != "fedprox":  # federated_round would drop it
            raise InputError(f"--mu applies to --algo fedprox only; drop it or use --algo fedprox "
                             f"(got --algo {self.algo})")
        check_seed(self.seed)

    def _check_server_adam(self) -> None:
        """``server_betas``: two numbers in [0, 1); ``server_tau`` (Adam's epsilon): > 0."""
        betas = self.server_betas
        if (isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2
                or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise InputError(f"server_betas must be two numbers in [0, 1) (Adam's beta1, beta2), got {betas!r}")
        object.__setattr__(self, "server_betas", (float(betas[0]), float(betas[1])))
        if self.server_tau <= 0:
            raise InputError(f"server_tau (the server Adam's epsilon) must be > 0, got {self.server_tau!r}")


def check_options_apply(algo: str, given: Collection[str]) -> None:
    """Refuse options (``given``: names of the :class:`FederatedConfig` fields the user set) that
    ``algo`` would silently ignore: centralised training pools every shard and samples no clients.

    Raises:
        InputError: naming the ignored options.
    """
    ignored = [f"--{name.replace('_', '-')}" for name in CLIENT_SAMPLING_OPTIONS if name in given]
    if algo == "centralized" and ignored:
        raise InputError(f"{', '.join(ignored)}: for --algo fedavg or fedprox only (--algo centralized trains on "
                         f"the pooled shards and samples no clients); drop {'it' if len(ignored) == 1 else 'them'} "
                         "or pick a federated --algo")


def round_generator(seed: int, round_index: int, client: int = -1) -> np.random.Generator:
    """The numpy generator of one round (client ``-1``: the server's sampling)."""
    return np.random.default_rng([seed, round_index, client + 1])


def sample_clients(
    sizes: Sequence[int], k: int, sampling: str, seed: int, round_index: int
) -> np.ndarray:
    """Sorted ids of the clients that train in ``round_index`` (empty clients never train)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    eligible = np.flatnonzero(sizes > 0)
    if eligible.size == 0:
        raise InputError("every client shard is empty: nothing to train on")
    k = min(k, eligible.size)
    rng = round_generator(seed, round_index)
    if sampling == "uniform":
        chosen = rng.choice(eligible, size=k, replace=False)
    else:
        p = sizes[eligible] / sizes[eligible].sum()
        chosen = rng.choice(eligible, size=k, replace=False, p=p)
    return np.sort(chosen)


def sparse_embeddings(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's embedding layers built with ``sparse=True`` (they may produce sparse gradients)."""
    return [m for m in model.modules()
            if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and getattr(m, "sparse", False)]


def sgd_step(params: Sequence[torch.nn.Parameter], lr: float) -> None:
    """One step of ``torch.optim.SGD(params, lr)`` (no momentum, no weight decay); the gradients are then dropped.

    It calls the functional form that ``torch.optim.SGD.step`` calls, with the same arguments, so
    the update is the same; building the optimiser class instead imports ``torch._dynamo`` on first
    use (1.5-2.5 s per process: longer than a 20-round ``tc`` run) and wraps every step in ~0.1 ms
    of bookkeeping. A sparse gradient updates only its rows.
    """
    with_grad = [p for p in params if p.grad is not None]
    grads = [p.grad for p in with_grad]
    with torch.no_grad():
        sgd(with_grad, grads, [None] * len(grads), has_sparse_grad=any(g.is_sparse for g in grads),
            weight_decay=0.0, momentum=0.0, lr=lr, dampening=0.0, nesterov=False, maximize=False)
    for p in with_grad:
        p.grad = None


def local_update(
    model: torch.nn.Module,
    global_vector: torch.Tensor,
    data: dict[str, torch.Tensor],
    loss_fn: LossFn,
    epochs: int,
    lr: float,
    batch_size: int,
    mu: float,
    generator_seed: Sequence[int],
    optimizer: str = "sgd",
    out: torch.Tensor | None = None,
    loss_sum: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run ``epochs`` epochs of minibatch SGD (or Adam) from ``global_vector``; return the new flat weights.

    Minibatch order is a seeded permutation per epoch; with ``mu > 0`` the FedProx proximal term
    ``(mu/2)||w - w_global||^2`` is added to every minibatch loss. ``optimizer="adam"`` starts fresh
    moments at every local update (client optimiser state is not kept between rounds, as in FedNLP's
    FedAvg with a local AdamW). ``out`` (same shape as ``global_vector``, overwritten) is the buffer
    the model trains in and the one returned; ``None`` allocates a new one. ``global_vector`` is
    never written. ``loss_sum`` (a float64 scalar on the device), when given, gains each minibatch's
    task loss times its rows (without the FedProx term): divided by ``epochs * rows`` it is the mean
    training loss of the update, read without waiting for the device at every step.

    Embedding layers built with ``sparse=True`` (see :func:`sparse_embeddings`) give sparse
    gradients with plain SGD, so a step touches only the rows of its minibatch's tokens -- the same
    update as a dense gradient, whose other rows are zero. The FedProx term and Adam need dense
    gradients; they switch those layers to dense for this update.
    """
    # the parameters become views of `out`, so training writes the new weights straight into it
    # (and never into the global weights)
    out = global_vector.clone() if out is None else out.copy_(global_vector)
    params = list(model.parameters())
    vector_to_parameters(out, params)
    model.train()
    for p in params:  # a gradient left by earlier use of the model must not leak into the first step
        p.grad = None
    adam = torch.optim.Adam(params, lr=lr) if optimizer != "sgd" else None
    n = next(iter(data.values())).shape[0]
    rng = np.random.default_rng(list(generator_seed))
    anchors = [p.detach().clone() for p in params] if mu > 0 else None
    sparse = sparse_embeddings(model)
    dense = anchors is not None or adam is not None
    for layer in sparse:
        layer.sparse = not dense
    device = global_vector.device
    try:
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(n))
            if device.type == "cuda":  # from pinned memory the copy need not wait for the GPU to catch up
                order = order.pin_memory()
            order = order.to(device, non_blocking=True)
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                batch = {key: value[index] for key, value in data.items()}
                loss = loss_fn(model, batch)
                if loss_sum is not None:
                    loss_sum.add_(loss.detach(), alpha=index.shape[0])
                if anchors is not None:
                    loss = loss + (mu / 2) * sum(((p - a) ** 2).sum() for p, a in zip(params, anchors))
                loss.backward()
                if adam is None:
                    sgd_step(params, lr)
                else:
                    adam.step()
                    adam.zero_grad(set_to_none=True)
    finally:
        for layer in sparse:
            layer.sparse = True
    return out


def mean_train_loss(loss_sum: torch.Tensor, epochs: int, rows: int) -> float:
    """The mean training loss from a ``loss_sum`` of :func:`local_update` (or :func:`federated_round`)
    over ``epochs`` epochs of ``rows`` training rows (0 for no rows)."""
    return float(loss_sum) / (epochs * rows) if rows else 0.0


@dataclass
class ServerState:
    """Global weights and the server optimiser's moments."""

    weights: torch.Tensor
    m: torch.Tensor | None = None
    v: torch.Tensor | None = None


def aggregate(updates: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Weighted mean of client weight vectors (weights: sample counts)."""
    total = float(sum(weights))
    # accumulate in place: stacking K copies of the weights first made this a third of a round
    # (70 ms vs 4 ms for 10 clients x 1.3M parameters on 2 CPU cores)
    average = torch.zeros_like(updates[0])
    for update, weight in zip(updates, weights):
        average.add_(update, alpha=weight / total)
    return average


def server_step(state: ServerState, average: torch.Tensor, config: FederatedConfig) -> ServerState:
    """Apply the server optimiser to the pseudo-gradient ``average - weights``."""
    if config.server_opt == "sgd" and config.server_lr == 1.0:
        return ServerState(average.clone(), state.m, state.v)  # plain FedAvg, bit-exact
    delta = average - state.weights
    if config.server_opt == "sgd":
        return ServerState(state.weights + config.server_lr * delta, state.m, state.v)
    beta1, beta2 = config.server_betas
    m = delta * (1 - beta1) if state.m is None else beta1 * state.m + (1 - beta1) * delta
    v = delta**2 * (1 - beta2) if state.v is None else beta2 * state.v + (1 - beta2) * delta**2
    weights = state.weights + config.server_lr * m / (v.sqrt() + config.server_tau)
    return ServerState(weights, m, v)


def federated_round(
    model: torch.nn.Module,
    state: ServerState,
    clients: Sequence[dict[str, torch.Tensor]],
    sizes: Sequence[int],
    loss_fn: LossFn,
    config: FederatedConfig,
    round_index: int,
    loss_sum: torch.Tensor | None = None,
) -> tuple[ServerState, np.ndarray]:
    """One round: sample clients, train each locally, aggregate, apply the server optimiser.

    ``loss_sum`` gains every local minibatch's loss times its rows (see :func:`local_update`): over
    ``local_epochs * sum(sizes[c] for c in chosen)`` it is the round's mean training loss."""
    if config.algo == "centralized":
        chosen = np.arange(len(clients))
    else:
        chosen = sample_clients(sizes, config.clients_per_round, config.sampling, config.seed, round_index)
    mu = config.mu if config.algo == "fedprox" else 0.0
    # the weighted mean of `aggregate`, accumulated client by client in the same order (the same
    # floats), with one training buffer reused by every client instead of K copies of the weights
    total = float(sum(sizes[c] for c in chosen))
    average = torch.zeros_like(state.weights)
    buffer = torch.empty_like(state.weights)
    for c in chosen:
        local_update(model, state.weights, clients[c], loss_fn, config.local_epochs, config.lr, config.batch_size,
                     mu, (config.seed, round_index, int(c) + 1), config.client_opt, out=buffer, loss_sum=loss_sum)
        average.add_(buffer, alpha=sizes[c] / total)
    return server_step(state, average, config), chosen
