"""The one interface every partitioning scheme implements.

A partitioner answers two questions (see ``STYLE.md``):

1. *What must be counted?* -- ``requires_key``: whether rows are grouped by a key column (the label,
   or ``--by COLUMN``); schemes that do not need one still use a key when given, to stratify.
2. *Given the counts and a random generator, how many rows of each key does each client get?* --
   :meth:`Partitioner.allocate`, a pure function returning an :class:`Allocation`.

Which individual row goes where is decided later, identically for every scheme, by
:mod:`fedpart.assign` (a seeded keyed permutation of each key's rows cut at the quotas).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Allocation:
    """How many rows of each key go to each client.

    Exactly one of the two forms is set:

    - ``quotas``: ``(n_keys, num_clients)`` int64; row ``k`` sums to the number of rows of key ``k``.
    - ``key_client``: ``(n_keys,)`` int64; every row of key ``k`` goes to client ``key_client[k]``
      (natural partitions, where the key is an id that must not be split). ``-1`` marks keys with no
      training rows.
    """

    num_clients: int
    quotas: np.ndarray | None = None
    key_client: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.quotas is None) == (self.key_client is None):
            raise ValueError("an Allocation has exactly one of quotas or key_client")

    def client_key_counts(self, key_counts: np.ndarray) -> np.ndarray:
        """``(num_clients, n_keys)`` rows per client and key (dense; avoid for millions of ids)."""
        if self.quotas is not None:
            return self.quotas.T.copy()
        out = np.zeros((self.num_clients, key_counts.size), dtype=np.int64)
        mask = self.key_client >= 0
        out[self.key_client[mask], np.flatnonzero(mask)] = key_counts[mask]
        return out

    def client_sizes(self, key_counts: np.ndarray) -> np.ndarray:
        """``(num_clients,)`` total rows per client."""
        if self.quotas is not None:
            return self.quotas.sum(axis=0)
        mask = self.key_client >= 0
        return np.bincount(
            self.key_client[mask], weights=key_counts[mask], minlength=self.num_clients
        ).astype(np.int64)


class Partitioner(ABC):
    """Base class of the schemes; subclasses are dataclasses whose fields are the scheme's parameters."""

    #: registry name, as typed after ``--scheme``
    name: ClassVar[str]
    #: whether the scheme needs a key column (label or ``--by``) counted in pass 1
    requires_key: ClassVar[bool] = False
    #: natural partitions hold out whole keys for the test split instead of a share of every key
    holds_out_whole_keys: ClassVar[bool] = False

    @abstractmethod
    def allocate(self, key_counts: np.ndarray, rng: np.random.Generator) -> Allocation:
        """Draw the allocation from ``key_counts`` (``(n_keys,)`` int64 rows per key) and ``rng``.

        Must be a pure function of its arguments and the partitioner's parameters, and the
        allocation must cover every counted row exactly once.

        Raises:
            PlanError: the parameters cannot be satisfied by these counts (the message says why).
        """

    def _set_checked(self, **values: Any) -> None:
        """Store validated parameter values in this frozen dataclass. The checks return plain ``int``
        and ``float``, so the parameters (and the manifest) are the same whether the caller passed
        Python or numpy numbers."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def params(self) -> dict[str, Any]:
        """The scheme's parameters as a JSON-able dict (recorded in the manifest)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]
