"""``fedpart report``: compare runs -- a table of final metrics and a metric-vs-round plot, and the
same comparison as machine-readable records (JSON, CSV) with every setting a paper reports."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedpart.errors import InputError
from fedpart.io.output_dir import write_text_atomic
from fedpart.train.rundir import (CONFIG_FILE, ENVIRONMENT_FILE, METRICS_FILE, is_finished_run, not_a_run,
                                  parse_metrics, read_json_object)

MAIN_METRIC = {"tc": "accuracy", "st": "f1", "qa": "f1", "s2s": "rougeL", "lm": "perplexity"}
#: metrics where smaller is better (the report's "best" column takes the minimum)
LOWER_IS_BETTER = frozenset({"perplexity", "nll"})
#: the ``--json`` file's layout version
SCHEMA_VERSION = 1
#: ``config.json`` settings of a record, in column order (``runtime``: ``fedpart`` unless recorded)
CONFIG_SETTINGS = ("algo", "rounds", "clients_per_round", "local_epochs", "lr", "batch_size", "client_opt", "mu",
                   "server_opt", "server_lr", "sampling", "eval_every", "seed", "model_size", "hf_model", "runtime",
                   "sampler")
#: settings read from the partition's ``manifest.json`` (when it still exists and is the one trained on)
PARTITION_SETTINGS = ("partition_scheme", "partition_alpha", "partition_clients", "partition_seed")
#: ``sampler`` of a run that does not record one: fedpart's own runs pick clients with fedpart's sampler
DEFAULT_SAMPLER = "fedpart"
#: settings the printed table shows in their own columns already (rounds: the rounds done)
TABLE_COLUMNS = frozenset({"task", "algo", "rounds"})
#: settings a centralised run records but does not use (``fedpart.train.federated.CLIENT_SAMPLING_OPTIONS``,
#: not imported: it would import torch); its records hold ``None`` for them
CLIENT_SAMPLING_SETTINGS = ("clients_per_round", "sampling")
#: path-valued settings: the table shows their shortest distinguishing suffix
PATH_SETTINGS = frozenset({"partition", "hf_model", "teacher", "data", "teacher_partition"})


@dataclass
class RunSummary:
    """One run directory: its configuration and metric records."""

    path: str
    config: dict[str, Any]
    records: list[dict[str, Any]]
    #: whether the run wrote its completion record (False: stopped or failed before its last round)
    finished: bool = True
    #: ``environment.json`` (software versions, device); ``None`` for runs written before it existed
    environment: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return str(self.config.get("task", "?"))

    @property
    def main_metric(self) -> str:
        return MAIN_METRIC.get(self.task, next(iter(self.records[-1]["metrics"])))

    @property
    def metric_names(self) -> list[str]:
        """Every metric the run evaluated, in order of first appearance."""
        return list(dict.fromkeys(name for record in self.records for name in record.get("metrics", {})))

    def values(self, metric: str) -> list[tuple[int, float]]:
        """``(round, value)`` of ``metric`` in every record that has it (a number)."""
        return [(r["round"], r["metrics"][metric]) for r in self.records
                if isinstance(r.get("metrics", {}).get(metric), (int, float))]

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
        raise not_a_run(path, f"{CONFIG_FILE} and {METRICS_FILE}")
    records = parse_metrics(metrics_file)
    if not records:
        raise InputError(f"{path}: has no evaluated rounds yet")
    config = read_json_object(config_file)
    if config is None:
        raise InputError(f"{config_file}: not a fedpart run configuration (a JSON object); the file was edited "
                         "or damaged")
    return RunSummary(str(path), config, records, finished=is_finished_run(path),
                      environment=read_json_object(path / ENVIRONMENT_FILE))


def best_value(metric: str, values: Iterable[float]) -> float | None:
    """The best of ``values``: the minimum for :data:`LOWER_IS_BETTER` metrics, else the maximum."""
    values = list(values)
    return (min if metric in LOWER_IS_BETTER else max)(values) if values else None


def check_metric(runs: Sequence[RunSummary], metric: str) -> None:
    """Raise :class:`InputError` unless every run evaluated ``metric``, listing the ones they all have."""
    lacking = [run for run in runs if not run.values(metric)]
    if lacking:
        common = [name for name in runs[0].metric_names if all(run.values(name) for run in runs)]
        raise InputError(f"--metric {metric}: not a metric of {lacking[0].path}; the runs' metrics are "
                         f"{', '.join(common) or '(none in common)'}")


def trained_partition(config: dict[str, Any]) -> tuple[str | None, str | None]:
    """The partition directory a run trained on and the sha256 of its manifest the run recorded:
    ``partition`` and ``manifest_sha256`` of ``fedpart train`` (and Flower, which records no
    sha256); for ``fedpart distill``, its ``--data`` unless that is a file (a partition's
    ``data_sha256`` is its manifest's), else ``(None, None)``: the student saw no clients."""
    if isinstance(config.get("distill"), dict):
        data = config.get("data")
        if isinstance(data, str) and not Path(data).is_file():  # a partition (or gone: reported missing)
            return data, config.get("data_sha256")
        return None, None
    return config.get("partition"), config.get("manifest_sha256")


def read_partition_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The partition's scheme, Dirichlet/quantity ``alpha``, client count and seed from its
    ``manifest.json`` (the partition of :func:`trained_partition`), and ``partition_manifest``:
    ``verified`` (its sha256 is the one the run recorded), ``unverified`` (the run recorded none,
    e.g. a Flower run of an older fedpart), ``changed`` (partitioned again since: the settings are left ``None`` rather
    than describe another partition), ``missing``, ``unreadable``, or ``none`` (a run distilled on a
    data file)."""
    from fedpart.manifest import MANIFEST_FILE, Manifest
    from fedpart.verify import manifest_digest

    settings: dict[str, Any] = dict.fromkeys(PARTITION_SETTINGS)
    directory, expected = trained_partition(config)
    if directory is None and isinstance(config.get("distill"), dict):
        return {**settings, "partition_manifest": "none"}
    if not isinstance(directory, str) or not (Path(directory) / MANIFEST_FILE).is_file():
        return {**settings, "partition_manifest": "missing"}
    if expected is not None and manifest_digest(directory) != expected:
        return {**settings, "partition_manifest": "changed"}
    try:
        manifest = Manifest.read(directory)
    except InputError:
        return {**settings, "partition_manifest": "unreadable"}
    return {"partition_scheme": manifest.scheme, "partition_alpha": manifest.params.get("alpha"),
            "partition_clients": manifest.num_clients, "partition_seed": manifest.seed,
            "partition_manifest": "verified" if expected is not None else "unverified"}


def run_settings(run: RunSummary) -> dict[str, Any]:
    """The settings a paper reports about ``run`` (flat; ``None`` where the run has none):
    :data:`CONFIG_SETTINGS` as used (``model_size`` the task's default when none was given,
    ``clients_per_round`` as many as the rounds sampled: all non-empty clients when fewer than
    asked; ``None`` for the :data:`CLIENT_SAMPLING_SETTINGS` and ``sampler`` of a
    centralised run, which samples no clients), the partition path and :func:`read_partition_settings`, and for a
    distilled run its teacher, data, every ``distill`` setting as ``distill_<name>`` and the
    teacher's partition as ``teacher_partition`` and ``teacher_partition_<setting>`` (read through
    the teacher's ``config.json``; ``teacher_partition_manifest`` is ``missing`` when the teacher's
    run directory is gone)."""
    config = run.config
    settings = {name: config.get(name) for name in CONFIG_SETTINGS}
    # what the run used where the configuration holds what was asked: the task's default model
    # size when none was given, and as many clients per round as were sampled (all non-empty
    # clients when fewer than asked)
    featurisation = config.get("featurisation")
    if settings["model_size"] is None and config.get("hf_model") is None and isinstance(featurisation, dict):
        settings["model_size"] = featurisation.get("model_size")
    sampled = [len(r["clients"]) for r in run.records if isinstance(r.get("clients"), list)]
    if sampled:
        settings["clients_per_round"] = max(sampled)
    settings["runtime"] = config.get("runtime", "fedpart")
    settings["sampler"] = config.get("sampler", DEFAULT_SAMPLER)
    if config.get("algo") == "centralized":
        settings.update(dict.fromkeys((*CLIENT_SAMPLING_SETTINGS, "sampler")))
    settings["partition"] = trained_partition(config)[0]
    settings.update(read_partition_settings(config))
    if isinstance(config.get("distill"), dict):
        settings.update(teacher=config.get("teacher"), data=config.get("data"))
        settings.update({f"distill_{name}": value for name, value in config["distill"].items()})
        settings.update(teacher_partition_settings(config.get("teacher")))
    return settings


def teacher_partition_settings(teacher: Any) -> dict[str, Any]:
    """``teacher_partition`` and ``teacher_partition_<setting>`` (:func:`read_partition_settings`)
    of the run directory ``teacher``: the partition the teacher was trained on."""
    # a teacher directory gone (or no run's) has no partition: read as an empty config, "missing"
    config = (read_json_object(Path(teacher) / CONFIG_FILE) if isinstance(teacher, str) else None) or {}
    settings = read_partition_settings(config)
    return {"teacher_partition": trained_partition(config)[0],
            **{f"teacher_{name}": value for name, value in settings.items()}}


def run_record(run: RunSummary, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run as a flat record: path, task, finished, :func:`run_settings`, the device and fedpart
    and torch versions of ``environment.json`` (``None`` without one), rounds done (the last
    evaluated round: an unfinished run may have trained up to ``eval_every - 1`` more), wall time
    (s), bytes communicated (cumulative), the final ``train_loss`` (``None`` for runs before it was
    recorded), the main metric's name, then ``final_<metric>`` and ``best_<metric>`` of every metric."""
    last = run.records[-1]
    record: dict[str, Any] = {"path": run.path, "task": run.task, "finished": run.finished}
    record.update(run_settings(run) if settings is None else settings)
    environment = run.environment or {}
    record.update(device=environment.get("device"), fedpart_version=environment.get("fedpart"),
                  torch_version=environment.get("torch"))
    record.update(rounds_done=last["round"], wall_time_s=last.get("wall_time_s"),
                  bytes_communicated=last.get("bytes_communicated"), final_train_loss=last.get("train_loss"),
                  main_metric=run.main_metric)
    for metric in run.metric_names:
        values = [value for _, value in run.values(metric)]
        record[f"final_{metric}"] = values[-1] if values else None
        record[f"best_{metric}"] = best_value(metric, values)
    return record


def differing_settings(settings: Sequence[dict[str, Any]]) -> list[str]:
    """The setting names whose values are not all equal across runs (in first-appearance order),
    leaving out what the table shows anyway (:data:`TABLE_COLUMNS`) and the ``partition_manifest``
    states."""
    names = dict.fromkeys(name for run in settings for name in run)
    return [name for name in names if name not in TABLE_COLUMNS and not name.endswith("partition_manifest")
            and len({json.dumps(run.get(name), sort_keys=True) for run in settings}) > 1]


def distinguishing_names(paths: Sequence[str]) -> list[str]:
    """For each path, its shortest suffix of path components that no other (different) path ends
    with: ``a/run`` and ``b/run`` give ``a/run`` and ``b/run``; ``x/fedavg`` and ``x/fedprox`` give
    ``fedavg`` and ``fedprox``. Paths are made absolute first, so ``../a/run`` and ``run`` differ."""
    parts = [Path(os.path.abspath(path)).parts for path in paths]
    names = []
    for own in parts:
        others = {other for other in parts if other != own}
        size = 1
        while size < len(own) and any(other[-size:] == own[-size:] for other in others):
            size += 1
        names.append(str(Path(*own[-size:])))
    return names


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_report(runs: list[RunSummary], metric: str | None = None,
                  settings: Sequence[dict[str, Any]] | None = None) -> str:
    """A plain-text table: one row per run with its algorithm, rounds (``(incomplete)`` for a run
    that has not finished), final and best ``metric`` (default: each run's main metric), then a
    column for each setting that differs between the runs (:func:`differing_settings`; paths as
    their :func:`distinguishing_names`)."""
    settings = [run_settings(run) for run in runs] if settings is None else settings
    differing = differing_settings(settings)
    header = ["run", "task", "algo", "rounds", "metric", "final", "best", "rounds/s", "MB sent", *differing]
    shown = {name: distinguishing_names([str(s.get(name)) for s in settings])
             for name in differing if name in PATH_SETTINGS}
    rows = []
    for index, run in enumerate(runs):
        name = metric or run.main_metric
        values = [value for _, value in run.values(name)]
        last = run.records[-1]
        rate = run.rounds_per_second
        rows.append([
            run.path, run.task, run.config.get("algo", "?"), str(last["round"]) + ("" if run.finished else " (incomplete)"),
            name, f"{values[-1]:.4f}" if values else "-",
            f"{best_value(name, values):.4f}" if values else "-", f"{rate:.2f}" if rate else "-",
            f"{last['bytes_communicated'] / 1e6:.1f}",
            *(shown[setting][index] if setting in shown and settings[index].get(setting) is not None
              else _cell(settings[index].get(setting)) for setting in differing),
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def write_report_json(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """``{"schema_version": 1, "runs": [record, ...]}`` (records of :func:`run_record`), atomically."""
    runs = [{key: _finite_or_none(value) for key, value in record.items()} for record in records]
    text = json.dumps({"schema_version": SCHEMA_VERSION, "runs": runs}, indent=2, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def _finite_or_none(value: Any) -> Any:
    """``None`` for a NaN or infinite float (strict JSON has neither; a diverged run's perplexity)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report_csv(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One row per record (:func:`run_record`), columns the union of the records' keys in
    first-appearance order; ``None`` is an empty cell, booleans ``true``/``false``, floats their
    shortest round-trip text. Written atomically."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _csv_cell(record.get(key)) for key in columns})
    return write_text_atomic(path, buffer.getvalue())


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def metric_panels(runs: list[RunSummary], metric: str | None = None) -> dict[tuple[str, str], list[RunSummary]]:
    """The runs grouped by (task, metric) -- ``metric``, default each run's main metric -- in order of
    first appearance: one plot panel each, as metrics of different tasks have different scales (QA's
    F1 is in percent, a tagger's in 0-1)."""
    panels: dict[tuple[str, str], list[RunSummary]] = {}
    for run in runs:
        panels.setdefault((run.task, metric or run.main_metric), []).append(run)
    return panels


def run_labels(runs: Sequence[RunSummary]) -> list[str]:
    """The plot's legend labels: each run's :func:`distinguishing_names` and its algorithm."""
    names = distinguishing_names([run.path for run in runs])
    return [f"{name} ({run.config.get('algo')})" for name, run in zip(names, runs)]


def write_report_plot(runs: list[RunSummary], path: str | Path, metric: str | None = None) -> Path:
    """``metric`` (default: each run's main metric) against round, one line per run (labelled by
    :func:`run_labels`) and one panel per (task, metric) of :func:`metric_panels`; return the file
    written (:func:`fedpart.figures.plot_path`: ``.png`` added to a name without extension).

    Raises:
        InputError: an extension that is not a plot format, before drawing.
    """
    from fedpart.figures import plot_path, save_figure

    plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = dict(zip(map(id, runs), run_labels(runs)))
    panels = metric_panels(runs, metric)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1 + 4 * len(panels)), dpi=100, sharex=True, squeeze=False)
    for ax, ((task, name), members) in zip(axes[:, 0], panels.items()):
        for run in members:
            points = run.values(name)
            rounds, values = zip(*points) if points else ((), ())
            ax.plot(rounds, values, marker="o", markersize=3, label=labels[id(run)])
        ax.set_ylabel(f"{name} ({task})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[-1, 0].set_xlabel("round")
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
