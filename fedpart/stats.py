"""Reading a partition back for people: the ``fedpart stats`` table and the label-distribution plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedpart.manifest import Manifest

PLOT_FILE = "label_distribution.png"


def stats_record(manifest: Manifest) -> dict[str, Any]:
    """A JSON-able summary of a partition (what ``fedpart stats --json`` prints)."""
    return {
        "scheme": manifest.scheme,
        "params": manifest.params,
        "seed": manifest.seed,
        "rows": manifest.rows,
        "test_rows": manifest.test.rows if manifest.test else 0,
        "labels": manifest.labels,
        **manifest.metrics,
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if not value.is_integer() else f"{int(value)}"
    return str(value)


def format_stats_table(manifest: Manifest) -> str:
    """A plain-text table of a partition's size and label-skew statistics."""
    m = manifest.metrics
    size = m["size"]
    params = ", ".join(f"{k}={v}" for k, v in manifest.params.items() if v is not None)
    rows: list[tuple[str, str]] = [
        ("scheme", f"{manifest.scheme} ({params}), seed {manifest.seed}"),
        ("input rows", f"{manifest.rows['input']} ({manifest.rows['dropped_null']} dropped as null)"),
        ("clients", str(m["clients"])),
        ("client size min / median / max", f"{_fmt(size['min'])} / {_fmt(size['median'])} / {_fmt(size['max'])}"),
        ("client size mean +- std", f"{_fmt(size['mean'], 1)} +- {_fmt(size['std'], 1)}"),
        ("empty clients", str(size["empty_clients"])),
    ]
    if manifest.test is not None:
        rows.append(("test rows", str(manifest.test.rows)))
    if manifest.labels is not None:
        rows += [
            ("labels", str(len(manifest.labels))),
            ("global label entropy (bits)", _fmt(m.get("global_entropy"))),
            ("mean client label entropy (bits)", _fmt(m.get("mean_entropy"))),
            ("mean total-variation to global", _fmt(m.get("mean_tv"))),
            ("mean Hellinger to global", _fmt(m.get("mean_hellinger"))),
            ("mean earth mover's distance", _fmt(m.get("mean_emd"))),
        ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def write_label_plot(manifest: Manifest, directory: str | Path) -> Path | None:
    """Write ``DIR/label_distribution.png``: stacked bars of each client's label counts.

    Like Flower Datasets' ``plot_label_distributions``; bars have no gaps and tick labels thin out,
    so 1000 clients stay readable. Returns ``None`` (writes nothing) when there is no label column.
    """
    if manifest.labels is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array([c.label_counts for c in manifest.clients], dtype=np.float64)
    n_clients, n_labels = counts.shape
    cmap = plt.get_cmap("tab20" if n_labels > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(min(6 + n_clients * 0.12, 16), 5), dpi=100)
    x = np.arange(n_clients)
    bottom = np.zeros(n_clients)
    width = 0.8 if n_clients <= 100 else 1.0
    for label in range(n_labels):
        ax.bar(x, counts[:, label], bottom=bottom, width=width, color=cmap(label % cmap.N),
               label=str(manifest.labels[label]), linewidth=0)
        bottom += counts[:, label]
    ax.set_xlabel("client")
    ax.set_ylabel("rows")
    ax.set_xlim(-0.5, n_clients - 0.5)
    params = ", ".join(f"{k}={v}" for k, v in manifest.params.items() if v is not None and k != "num_clients")
    ax.set_title(f"label distribution per client: {manifest.scheme} ({params}), {n_clients} clients")
    if n_labels <= 30:
        ax.legend(title=manifest.label_col, bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    ax.margins(x=0)
    fig.tight_layout()
    path = Path(directory) / "label_distribution.png"
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
