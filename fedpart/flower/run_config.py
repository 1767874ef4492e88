"""The settings of one fedpart run on Flower, read from Flower's run config or built in Python.

``flwr run`` hands apps a flat ``run_config`` (``[tool.flwr.app.config]`` of the app's
``pyproject.toml``, overridable with ``--run-config``); simulations started from Python pass a
:class:`FlowerRun` to the app factories instead. Keys are fedpart's training options in Flower's
kebab-case (``partition-dir``, ``task``, ``out``, ``rounds``, ``clients-per-round``, ``local-epochs``,
``lr``, ``batch-size``, ``algo``, ``mu``, ``sampling``, ``eval-every``, ``seed``) plus:

- ``sampler``: ``fedpart`` (default) picks each round's clients with
  :func:`fedpart.train.federated.sample_clients`, so a Flower run samples exactly the clients that
  ``fedpart train`` samples; ``flower`` leaves sampling to Flower's own strategy (uniform, unseeded).
- ``task-state-dir``: where the task's vocabulary/labels are (see :func:`prepare_task_state`);
  default: ``out``, where the ServerApp writes them.

Only FedAvg and FedProx run on Flower (server optimisers other than plain averaging, and centralised
training, stay in ``fedpart train``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedpart.errors import InputError
from fedpart.train.federated import FederatedConfig

SAMPLERS = ("fedpart", "flower")
#: FederatedConfig fields a Flower run accepts (server optimisers are not available there)
_FEDERATED_KEYS = ("algo", "rounds", "clients_per_round", "local_epochs", "lr", "batch_size", "mu",
                   "sampling", "eval_every", "seed")
_PATH_KEYS = {"partition-dir": "partition_dir", "out": "out", "task-state-dir": "task_state_dir"}


@dataclass(frozen=True)
class FlowerRun:
    """One run: the partition, the task, where results go, and the federated hyper-parameters.

    Attributes:
        partition_dir: a fedpart partition directory (its ``test.parquet`` is the server's test set).
        task: ``tc``, ``st``, ``qa`` or ``s2s``.
        out: the run directory the ServerApp writes (``config.json``, ``metrics.jsonl``,
            ``model.pt`` and the task state), in ``fedpart train``'s format.
        federated: FedAvg/FedProx settings, as for ``fedpart train``.
        sampler: ``fedpart`` or ``flower`` (see the module docstring).
        task_state_dir: where clients (and the server, when set) read the vocabulary from.
    """

    partition_dir: Path
    task: str
    out: Path
    federated: FederatedConfig = field(default_factory=FederatedConfig)
    sampler: str = "fedpart"
    task_state_dir: Path | None = None

    def __post_init__(self) -> None:
        for name in ("partition_dir", "out", "task_state_dir"):  # accept str paths
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        config = self.federated
        if config.algo not in ("fedavg", "fedprox"):
            raise InputError(f"algo {config.algo!r} does not run on Flower; use fedavg or fedprox "
                             "(or fedpart train for centralised training)")
        if getattr(config, "client_opt", "sgd") != "sgd":
            raise InputError("Flower clients train with SGD; client-opt adam runs in fedpart train only")
        if config.server_opt != "sgd" or config.server_lr != 1.0:
            raise InputError("Flower runs average with Flower's FedAvg; server-opt adam and server-lr != 1 "
                             "run in fedpart train only")
        if self.sampler == "flower" and config.sampling != "uniform":
            raise InputError(f"sampling {config.sampling!r} needs sampler 'fedpart'; Flower's own sampler is uniform")

    @property
    def state_dir(self) -> Path:
        """Where the task's vocabulary/labels are read from."""
        return self.task_state_dir if self.task_state_dir is not None else self.out

    @classmethod
    def from_user_config(cls, run_config: Mapping[str, Any]) -> FlowerRun:
        """Build from Flower's flat run config (kebab-case keys, see the module docstring).

        Raises:
            InputError: a missing ``partition-dir``/``task``/``out``, an unknown key, or a bad value.
        """
        known = {*_PATH_KEYS, "task", "sampler", *(k.replace("_", "-") for k in _FEDERATED_KEYS)}
        unknown = sorted(set(run_config) - known)
        if unknown:
            raise InputError(f"run config: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        missing = [k for k in ("partition-dir", "task", "out") if k not in run_config]
        if missing:
            raise InputError(f"run config needs {', '.join(missing)} (e.g. flwr run . --run-config "
                             "\"partition-dir='/abs/parts' task='tc' out='/abs/runs/flower'\")")
        defaults = FederatedConfig()
        federated: dict[str, Any] = {}
        for name in _FEDERATED_KEYS:
            key = name.replace("_", "-")
            if key in run_config:
                kind, value = type(getattr(defaults, name)), run_config[key]
                # int(2.5) and int(True) would pass, silently as 2 and 1
                if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                    raise InputError(f"run config: {key} = {value!r} is not a {kind.__name__}")
                try:
                    federated[name] = kind(value)
                except (TypeError, ValueError) as error:
                    raise InputError(f"run config: {key} = {value!r} is not a {kind.__name__}") from error
        paths = {attr: Path(str(run_config[key])) for key, attr in _PATH_KEYS.items() if run_config.get(key)}
        return cls(task=str(run_config["task"]), sampler=str(run_config.get("sampler", "fedpart")),
                   federated=FederatedConfig(**federated), **paths)

    def to_user_config(self) -> dict[str, Any]:
        """The flat run config that :meth:`from_user_config` reads back (for ``--run-config``)."""
        out: dict[str, Any] = {"partition-dir": str(self.partition_dir), "task": self.task, "out": str(self.out),
                               "sampler": self.sampler}
        if self.task_state_dir is not None:
            out["task-state-dir"] = str(self.task_state_dir)
        values = dataclasses.asdict(self.federated)
        out.update({name.replace("_", "-"): values[name] for name in _FEDERATED_KEYS})
        return out
