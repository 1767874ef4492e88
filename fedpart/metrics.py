"""Non-IID metrics of a partition, as pure functions of a ``(clients, labels)`` count matrix.

Per client, against the global label distribution ``g`` (pooled over all clients):

- ``entropy``: Shannon entropy of the client's label distribution ``p``, in bits.
- ``tv``: total-variation distance ``0.5 * sum |p - g|`` (in [0, 1]).
- ``hellinger``: ``sqrt(0.5 * sum (sqrt p - sqrt g)^2)`` (in [0, 1]).
- ``emd``: earth mover's distance as used for label skew by Zhao et al. 2018 ("Federated learning
  with non-IID data"): ``sum |p - g|`` (in [0, 2]), i.e. ``2 * tv``. That is their definition, the
  L1 distance: the Wasserstein-1 distance with unit ground distance between distinct labels is half
  of it (it equals ``tv``), so compare ``emd`` values only with papers that follow Zhao et al.

Summaries average over non-empty clients (an empty client has no distribution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedpart.errors import InputError


@dataclass(frozen=True)
class ClientMetrics:
    """Per-client metrics, each ``(clients,)`` float64; NaN for empty clients."""

    entropy: np.ndarray
    tv: np.ndarray
    hellinger: np.ndarray
    emd: np.ndarray


def client_metrics(counts: np.ndarray) -> ClientMetrics:
    """Label-skew metrics of every client from ``counts[client, label]`` row counts."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise InputError(f"counts must be a 2-D (clients x labels) array, got shape {counts.shape}")
    sizes = counts.sum(axis=1)
    total = counts.sum()
    global_dist = counts.sum(axis=0) / total if total > 0 else np.zeros(counts.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = counts / sizes[:, None]
        logs = np.where(dist > 0, np.log2(np.where(dist > 0, dist, 1.0)), 0.0)
        entropy = -(dist * logs).sum(axis=1)
        l1 = np.abs(dist - global_dist).sum(axis=1)
        hellinger = np.sqrt(0.5 * ((np.sqrt(dist) - np.sqrt(global_dist)) ** 2).sum(axis=1))
    empty = sizes == 0
    nan = np.where(empty, np.nan, 0.0)
    return ClientMetrics(entropy + nan, 0.5 * l1 + nan, hellinger + nan, l1 + nan)


def client_record(metrics: ClientMetrics, client: int) -> dict[str, float | None]:
    """One client's metrics for the manifest: rounded to 6 decimals, ``None`` for an empty client."""
    out: dict[str, float | None] = {}
    for name in ("entropy", "tv", "hellinger", "emd"):
        value = float(getattr(metrics, name)[client])
        out[name] = None if np.isnan(value) else round(value, 6)
    return out


def size_summary(sizes: np.ndarray) -> dict[str, float]:
    """Min/median/max/mean/std of client sizes and the number of empty clients."""
    sizes = np.asarray(sizes, dtype=np.float64)
    return {
        "min": float(sizes.min()),
        "median": float(np.median(sizes)),
        "max": float(sizes.max()),
        "mean": float(sizes.mean()),
        "std": float(sizes.std()),
        "empty_clients": int((sizes == 0).sum()),
    }


def partition_summary(counts: np.ndarray | None, sizes: np.ndarray) -> dict[str, object]:
    """Summary metrics of a partition: client sizes, and label skew when ``counts`` is given."""
    summary: dict[str, object] = {"clients": int(len(sizes)), "size": size_summary(sizes)}
    if counts is not None and counts.size:
        metrics = client_metrics(counts)
        for name in ("entropy", "tv", "hellinger", "emd"):
            values = getattr(metrics, name)
            summary[f"mean_{name}"] = float(np.nanmean(values)) if np.any(~np.isnan(values)) else None
        global_counts = np.asarray(counts).sum(axis=0)
        summary["global_entropy"] = float(client_metrics(global_counts[None, :]).entropy[0])
    return summary
