"""Reading a partition back for people: the ``fedpart stats`` table and the label-distribution plot."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fedpart.errors import OutputError
from fedpart.figures import save_figure
from fedpart.manifest import Manifest

PLOT_FILE = "label_distribution.png"
#: labels the plot draws apart (tab20's colours); beyond this the rarest are drawn as one hatched
#: "other" band: each label is a matplotlib artist, and 50,000 of them would take hours to draw
MAX_PLOT_LABELS = 20
#: longest label name shown in the legend
MAX_LEGEND_NAME = 40


def stats_record(manifest: Manifest) -> dict[str, Any]:
    """A JSON-able summary of a partition (what ``fedpart stats --json`` prints); a partition made by
    ``fedpart augment counterfactual`` adds its ``augmentation`` report."""
    record = {
        "scheme": manifest.scheme,
        "params": manifest.params,
        "seed": manifest.seed,
        "rows": manifest.rows,
        "test_rows": manifest.test.rows if manifest.test else 0,
        "labels": manifest.labels,
        **manifest.metrics,
    }
    if isinstance(manifest.extra.get("augmentation"), dict):
        record["augmentation"] = manifest.extra["augmentation"]
    return record


def _fmt(value: Any, digits: int = 3) -> str:
    """A statistic with ``digits`` decimals, whole numbers too (entropy ``2.000``); ``-`` for none."""
    if value is None:
        return "-"
    return f"{float(value):.{digits}f}"


def _rows(value: Any) -> str:
    """A number of rows: whole (``20``), or with one decimal for a median between two (``33.5``)."""
    value = float(value)
    return f"{int(value)}" if value.is_integer() else f"{value:.1f}"


def _dropped(rows: dict[str, int]) -> str:
    text = f"{rows['dropped_null']} dropped as null"
    if rows.get("dropped_invalid"):
        text += f", {rows['dropped_invalid']} as invalid"
    return text


def _augmented(report: dict[str, Any]) -> str:
    """One line on how ``fedpart augment counterfactual`` made a partition from another."""
    def count(key: str) -> str:
        value = report.get(key)
        return f"{value:,}" if isinstance(value, int) else "?"

    return (f"counterfactual, {report.get('mode', '?')} mode, of {report.get('source_partition', '?')}: "
            f"{count('rows_read')} client rows read, {count('counterfactual_rows')} counterfactual, "
            f"{count('rows_written')} written")


def format_stats_table(manifest: Manifest) -> str:
    """A plain-text table of a partition's size and label-skew statistics."""
    m = manifest.metrics
    size = m["size"]
    params = ", ".join(f"{k}={v}" for k, v in manifest.params.items() if v is not None)
    rows: list[tuple[str, str]] = [
        ("scheme", f"{manifest.scheme} ({params}), seed {manifest.seed}"),
        ("input rows", f"{manifest.rows['input']} ({_dropped(manifest.rows)})"),
        ("clients", str(m["clients"])),
        ("client size min / median / max", f"{_rows(size['min'])} / {_rows(size['median'])} / {_rows(size['max'])}"),
        ("client size mean +- std", f"{_fmt(size['mean'], 1)} +- {_fmt(size['std'], 1)}"),
        ("empty clients", str(size["empty_clients"])),
    ]
    augmentation = manifest.extra.get("augmentation")
    if isinstance(augmentation, dict):
        rows.append(("augmented", _augmented(augmentation)))
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
    if "key" in m and manifest.key_col:
        rows += [
            (f"{manifest.key_col} values", str(len(manifest.keys or []))),
            (f"mean {manifest.key_col} entropy (bits)", _fmt(m["key"].get("mean_entropy"))),
            (f"mean {manifest.key_col} TV to global", _fmt(m["key"].get("mean_tv"))),
        ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def literal_text(text: str) -> str:
    """``text`` as matplotlib draws it literally: ``$`` escaped, so ``$x^$`` (a label value) is not
    parsed as mathtext, which draws it otherwise or fails."""
    return text.replace("$", r"\$")


def legend_name(label: str) -> str:
    """How the plot's legend shows a label value: at most :data:`MAX_LEGEND_NAME` characters, the
    empty string as ``""``, drawn literally (:func:`literal_text`)."""
    if len(label) > MAX_LEGEND_NAME:
        label = label[: MAX_LEGEND_NAME - 3] + "..."
    return literal_text(label) if label else '""'


def fold_rare_labels(
    counts: np.ndarray, names: list[str], max_labels: int = MAX_PLOT_LABELS
) -> tuple[np.ndarray, list[str]]:
    """``counts`` (clients x labels) and the label ``names`` with at most ``max_labels`` labels: the
    ``max_labels - 1`` most frequent ones overall (ties: the earlier label), in their order, then one
    ``other (N labels)`` column summing the rest. Every client's total is kept."""
    if counts.shape[1] <= max_labels:
        return counts, names
    keep = np.sort(np.argsort(-counts.sum(axis=0), kind="stable")[: max_labels - 1])
    rest = np.setdiff1d(np.arange(counts.shape[1]), keep)
    folded = np.column_stack([counts[:, keep], counts[:, rest].sum(axis=1)])
    return folded, [names[i] for i in keep] + [f"other ({rest.size} labels)"]


def write_label_plot(manifest: Manifest, directory: str | Path) -> Path | None:
    """Write ``DIR/label_distribution.png``: per-client label counts and label shares.

    Top panel: stacked bars of each client's label counts (as Flower Datasets'
    ``plot_label_distributions``); bottom panel: the same bars normalised to shares, so skew is
    visible for small clients too. With more than 50 clients, clients are sorted by size and bars
    touch, which keeps 1000 clients readable. With more than :data:`MAX_PLOT_LABELS` labels the rarest
    are drawn as one grey "other" band (:func:`fold_rare_labels`). Returns ``None`` (writes nothing)
    without a label.
    """
    if manifest.labels is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array([c.label_counts for c in manifest.clients], dtype=np.float64)
    counts, names = fold_rare_labels(counts, [str(label) for label in manifest.labels])
    folded = len(names) < len(manifest.labels)
    n_clients, n_labels = counts.shape
    sizes = counts.sum(axis=1)
    many = n_clients > 50
    order = np.argsort(-sizes, kind="stable") if many else np.arange(n_clients)
    counts, sizes = counts[order], sizes[order]
    shares = np.divide(counts, sizes[:, None], out=np.zeros_like(counts), where=sizes[:, None] > 0)
    cmap = plt.get_cmap("tab20" if n_labels > 10 else "tab10")
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(min(7 + n_clients * 0.12, 16), 7), dpi=100, sharex=True,
        gridspec_kw={"height_ratios": [3, 2]},
    )
    x = np.arange(n_clients)
    width = 1.0 if many else 0.8
    base_counts, base_shares = np.zeros(n_clients), np.zeros(n_clients)
    edges = np.arange(n_clients + 1) - 0.5
    handles = []
    for label in range(n_labels):
        other = folded and label == n_labels - 1
        style = (
            {"facecolor": "lightgrey", "edgecolor": "white", "hatch": "//"} if other
            else {"color": cmap(label % cmap.N)}
        )
        if many:  # touching bars: one filled step polygon per label, not one patch per bar
            handles.append(top.stairs(base_counts + counts[:, label], edges, baseline=base_counts.copy(),
                                      fill=True, linewidth=0, **style))
            bottom.stairs(base_shares + shares[:, label], edges, baseline=base_shares.copy(), fill=True,
                          linewidth=0, **style)
        else:
            handles.append(top.bar(x, counts[:, label], bottom=base_counts, width=width, linewidth=0, **style))
            bottom.bar(x, shares[:, label], bottom=base_shares, width=width, linewidth=0, **style)
        base_counts += counts[:, label]
        base_shares += shares[:, label]
    top.set_ylabel("rows")
    bottom.set_ylabel("label share")
    bottom.set_ylim(0, 1)
    bottom.set_xlim(-0.5, n_clients - 0.5)
    bottom.set_xlabel("client (sorted by size)" if many else "client")
    if not many:
        bottom.set_xticks(x, [str(i) for i in order], fontsize="small")
    params = ", ".join(f"{k}={v}" for k, v in manifest.params.items() if v is not None and k != "num_clients")
    title = f"label distribution per client: {manifest.scheme} ({params}), {n_clients} clients"
    top.set_title(literal_text(title))
    # handles and names given explicitly: matplotlib leaves out artists whose label starts with "_"
    # (fastText's "__label__pos")
    top.legend(handles, [legend_name(name) for name in names], title=literal_text(str(manifest.label_col)),
               bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    path = Path(directory) / PLOT_FILE
    try:
        with warnings.catch_warnings():  # a label in a script the font lacks is drawn as boxes
            warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
            fig.tight_layout()
            save_figure(fig, path)
    except OSError as error:
        raise OutputError(f"{path}: cannot write the plot ({error.strerror or error}); pass --no-plot") from error
    finally:
        plt.close(fig)
    return path
