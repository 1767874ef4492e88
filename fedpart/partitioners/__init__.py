"""Partitioning schemes behind one interface (:class:`Partitioner`) and one registry.

Adding a scheme is adding one module and one entry in :data:`PARTITIONERS`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fedpart.errors import InputError
from fedpart.partitioners.base import Allocation, Partitioner
from fedpart.partitioners.cluster import ClusterPartitioner
from fedpart.partitioners.dirichlet import DirichletPartitioner
from fedpart.partitioners.iid import IidPartitioner
from fedpart.partitioners.label_count import LabelCountPartitioner
from fedpart.partitioners.natural import NaturalIdPartitioner
from fedpart.partitioners.quantity import QuantityPartitioner

PARTITIONERS: dict[str, type[Partitioner]] = {
    cls.name: cls
    for cls in (
        IidPartitioner,
        DirichletPartitioner,
        LabelCountPartitioner,
        QuantityPartitioner,
        NaturalIdPartitioner,
        ClusterPartitioner,
    )
}


def _flag(param: str) -> str:
    return "--clients" if param == "num_clients" else "--" + param.replace("_", "-")


def make_partitioner(scheme: str, **params: Any) -> Partitioner:
    """Build the partitioner registered as ``scheme`` from keyword parameters.

    Parameters whose value is ``None`` count as not given. A given parameter the scheme does not
    take is an error, so that ``--alpha`` with ``--scheme iid`` is not silently ignored.

    Raises:
        InputError: unknown scheme, a parameter the scheme does not take, or an invalid value.
    """
    if scheme not in PARTITIONERS:
        raise InputError(f"unknown --scheme {scheme!r}; choose one of {', '.join(PARTITIONERS)}")
    cls = PARTITIONERS[scheme]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    given = {k: v for k, v in params.items() if v is not None}
    extra = sorted(set(given) - set(fields))
    if extra:
        raise InputError(
            f"{', '.join(_flag(p) for p in extra)} does not apply to --scheme {scheme}; it takes "
            f"{', '.join(_flag(p) for p in fields)}"
        )
    missing = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
        and name not in given
    ]
    if missing:
        raise InputError(f"--scheme {scheme} needs {', '.join(_flag(p) for p in missing)}")
    return cls(**given)


__all__ = [
    "PARTITIONERS",
    "Allocation",
    "ClusterPartitioner",
    "DirichletPartitioner",
    "IidPartitioner",
    "LabelCountPartitioner",
    "NaturalIdPartitioner",
    "Partitioner",
    "QuantityPartitioner",
    "make_partitioner",
]
