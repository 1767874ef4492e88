"""``fedpart report``: compare runs -- a table of final metrics and a metric-vs-round plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedpart.errors import InputError
from fedpart.train.rundir import CONFIG_FILE, METRICS_FILE, is_finished_run, parse_metrics, read_json_object

MAIN_METRIC = {"tc": "accuracy", "st": "f1", "qa": "f1", "s2s": "rougeL", "lm": "perplexity"}
#: metrics where smaller is better (the report's "best" column takes the minimum)
LOWER_IS_BETTER = frozenset({"perplexity", "nll"})


@dataclass
class RunSummary:
    """One run directory: its configuration and metric records."""

    path: str
    config: dict[str, Any]
    records: list[dict[str, Any]]
    #: whether the run wrote its completion record (False: stopped or failed before its last round)
    finished: bool = True

    @property
    def task(self) -> str:
        return str(self.config.get("task", "?"))

    @property
    def main_metric(self) -> str:
        return MAIN_METRIC.get(self.task, next(iter(self.records[-1]["metrics"])))

    @property
    def rounds_per_second(self) -> float | None:
        last = self.records[-1]
        return last["round"] / last["wall_time_s"] if last.get("wall_time_s") else None


def load_run(path: str | Path) -> RunSummary:
    """Read a run directory written by ``fedpart train`` (finished or not).

    Raises:
        InputError: not a run directory, no evaluated round yet, or a malformed
        ``metrics.jsonl``/``config.json`` (naming the file and line).
    """
    path = Path(path)
    config_file, metrics_file = path / CONFIG_FILE, path / METRICS_FILE
    if not config_file.is_file() or not metrics_file.is_file():
        raise InputError(f"{path}: not a fedpart run directory (needs {CONFIG_FILE} and {METRICS_FILE})")
    records = parse_metrics(metrics_file)
    if not records:
        raise InputError(f"{path}: has no evaluated rounds yet")
    config = read_json_object(config_file)
    if config is None:
        raise InputError(f"{config_file}: not a fedpart run configuration (a JSON object); the file was edited "
                         "or damaged")
    return RunSummary(str(path), config, records, finished=is_finished_run(path))


def format_report(runs: list[RunSummary]) -> str:
    """A plain-text table: one row per run with its algorithm, rounds (``(incomplete)`` for a run
    that has not finished), final and best main metric."""
    header = ["run", "task", "algo", "rounds", "metric", "final", "best", "rounds/s", "MB sent"]
    rows = []
    for run in runs:
        metric = run.main_metric
        values = [r["metrics"][metric] for r in run.records]
        last = run.records[-1]
        rate = run.rounds_per_second
        rows.append([
            run.path, run.task, run.config.get("algo", "?"), str(last["round"]) + ("" if run.finished else " (incomplete)"),
            metric, f"{values[-1]:.4f}",
            f"{(min if metric in LOWER_IS_BETTER else max)(values):.4f}", f"{rate:.2f}" if rate else "-",
            f"{last['bytes_communicated'] / 1e6:.1f}",
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def metric_panels(runs: list[RunSummary]) -> dict[tuple[str, str], list[RunSummary]]:
    """The runs grouped by (task, main metric), in order of first appearance: one plot panel each,
    as metrics of different tasks have different scales (QA's F1 is in percent, a tagger's in 0-1)."""
    panels: dict[tuple[str, str], list[RunSummary]] = {}
    for run in runs:
        panels.setdefault((run.task, run.main_metric), []).append(run)
    return panels


def write_report_plot(runs: list[RunSummary], path: str | Path) -> Path:
    """Main metric against round, one line per run and one panel per (task, metric) of
    :func:`metric_panels`; return the file written
    (:func:`fedpart.figures.plot_path`: ``.png`` added to a name without extension).

    Raises:
        InputError: an extension that is not a plot format, before drawing.
    """
    from fedpart.figures import plot_path, save_figure

    plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = metric_panels(runs)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1 + 4 * len(panels)), dpi=100, sharex=True, squeeze=False)
    for ax, ((task, metric), members) in zip(axes[:, 0], panels.items()):
        for run in members:
            ax.plot([r["round"] for r in run.records], [r["metrics"][metric] for r in run.records],
                    marker="o", markersize=3, label=f"{Path(run.path).name} ({run.config.get('algo')})")
        ax.set_ylabel(f"{metric} ({task})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[-1, 0].set_xlabel("round")
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
