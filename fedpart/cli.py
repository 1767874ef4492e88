"""The ``fedpart`` command line: thin click commands over the library.

Errors from the library (:class:`fedpart.errors.FedpartError`) are printed as one line and exit with
their code (2 for bad input); anything else is an internal error (exit 1), with a traceback only
under ``fedpart --debug``. Nothing heavy (torch, spaCy, datasets) is imported at start-up.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from fedpart._version import __version__
from fedpart.checks import check_finite, check_seed
from fedpart.errors import ExcessClientsWarning, FedpartError, InputError, OutputError

SCHEMES = ("iid", "dirichlet", "label-count", "quantity", "natural", "cluster")
TASKS = ("tc", "st", "qa", "s2s", "lm")
INPUT_FORMATS = ("parquet", "arrow", "csv", "tsv", "jsonl")

# --X-col options that name a task's input columns (ColumnMap field, flag, help)
TASK_COLUMN_OPTIONS = (
    ("tokens", "--tokens-col", "st: list-of-tokens column [tokens]."),
    ("tags", "--tags-col", "st: list-of-tags column [tags|ner_tags]."),
    ("id", "--id-col", "qa: question id column [id]."),
    ("title", "--title-col", "qa: article title column [title]."),
    ("context", "--context-col", "qa: context column [context]."),
    ("question", "--question-col", "qa: question column [question]."),
    ("answers", "--answers-col", "qa: answers struct column [answers]."),
    ("source", "--source-col", "s2s: source text column [source|dialogue|document|article|text|input]."),
    ("target", "--target-col", "s2s: target text column [target|summary|highlights|summary1|output]."),
)


def _flag(param: click.Parameter | None) -> str:
    return max(param.opts, key=len) if param is not None and param.opts else "value"


class FiniteFloat(click.ParamType):
    """A float option that refuses ``nan`` and ``inf`` (they pass every range check) with a one-line
    :class:`InputError`, as ``partition --alpha`` does."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        return check_finite(click.FLOAT.convert(value, param, ctx), _flag(param))


class Seed(click.ParamType):
    """A ``--seed``: an integer from 0 to 2**63 - 1 (what numpy's and torch's generators take);
    anything else is a one-line :class:`InputError`."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if isinstance(value, bool) or number is None or (isinstance(value, float) and value != number):
            number = value  # refused below, with the value as given
        return check_seed(number, _flag(param))


FINITE_FLOAT = FiniteFloat()
SEED = Seed()


def task_input_options(func: Any) -> Any:
    """Options shared by commands that read a task's input (partition, convert)."""
    options = [
        click.option("--task", type=click.Choice(TASKS),
                     help="Read INPUT as this task's data (canonical columns, validation, task keys)."),
        click.option("--text-col", help="Text column(s), comma-separated to join (tc, lm; cluster text without --task)."),
        *(click.option(flag, f"{name}_col", help=text) for name, flag, text in TASK_COLUMN_OPTIONS),
        click.option("--drop-invalid", is_flag=True,
                     help="Drop (and report) rows that fail the task's validation instead of failing."),
        click.option("--format", "input_format", type=click.Choice(INPUT_FORMATS),
                     help="Input format (default: from the file extension)."),
        click.option("--column-names", help="Comma-separated names for a CSV/TSV without header row."),
        click.option("--hf-name", help="Hugging Face dataset name (same as INPUT hf://NAME)."),
        click.option("--split", "--hf-split", "hf_split", help="Hugging Face split [default: train]."),
        click.option("--hf-config", help="Hugging Face dataset configuration."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _split_names(value: str | None) -> tuple[str, ...] | None:
    return tuple(n.strip() for n in value.split(",") if n.strip()) if value else None


def _input_spec(input: str | None, hf_name: str | None) -> str:
    from fedpart.errors import InputError

    if (input is None) == (hf_name is None):
        raise InputError("give exactly one input: a path/glob/hf://NAME argument or --hf-name NAME")
    return input if input is not None else f"hf://{hf_name}"


def _column_map(kwargs: dict[str, Any]) -> Any:
    from fedpart.tasks.base import ColumnMap

    return ColumnMap(**{name: kwargs.pop(f"{name}_col") for name, _, _ in TASK_COLUMN_OPTIONS})


class OneLineUsageError(click.ClickException):
    """A click usage error (bad option value, unknown option, missing argument) shown as one
    ``error:`` line naming the command's ``--help``, instead of click's usage, hint and error lines;
    exit code 2 as click's."""

    exit_code = 2

    @classmethod
    def of(cls, error: click.UsageError) -> OneLineUsageError:
        command = error.ctx.command_path if error.ctx is not None else "fedpart"
        return cls(f"{error.format_message().rstrip('.')}; see '{command} --help'")

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class FedpartGroup(click.Group):
    """A click group that turns fedpart errors and usage errors into one-line messages and exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:  # fedpart's own options (an unknown one, --version given a value)
            raise OneLineUsageError.of(error) from error

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:  # a command's options and arguments, or an unknown command
            raise OneLineUsageError.of(error) from error
        except FedpartError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:  # `fedpart stats DIR | head`: the reader left, nothing is wrong
            sys.stderr.close()
            ctx.exit(0)
        except KeyboardInterrupt as interrupt:  # a run that keeps a checkpoint says how to continue it
            click.echo(str(interrupt) or "interrupted; nothing was written", err=True)
            ctx.exit(130)
        except Exception as error:  # noqa: BLE001 - the last line of defence for users
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(
                f"internal error: {type(error).__name__}: {error} (re-run with `fedpart --debug ...` "
                "for a traceback and please report it)",
                err=True,
            )
            ctx.exit(1)


@click.group("fedpart", cls=FedpartGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fedpart")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """fedpart: non-IID federated-learning partitions of NLP corpora."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    # every command: fedpart's own warnings as one line, dependencies' (deprecation notices) hidden
    warnings.showwarning = _show_warning


def _tqdm_progress(quiet: bool):
    if quiet:
        return None

    def factory(desc: str, total: int | None) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr,
                    disable=None, leave=False, dynamic_ncols=True)

    return factory


def engine_options(func: Any) -> Any:
    """``--engine``, ``--ray-address`` and ``--piece-rows``, shared by ``partition`` and ``augment counterfactual``."""
    func = click.option(
        "--piece-rows", type=click.IntRange(min=1), default=None,
        help="--engine ray: rows per task: Parquet row groups are grouped into pieces of at least N rows "
             "[partition 1000000, augment 200000]; other formats are read one file per piece.",
    )(func)
    func = click.option(
        "--ray-address", default=None,
        help="--engine ray: the Ray cluster to join (`auto`: the running one) [start a local Ray].",
    )(func)
    return click.option(
        "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
        help="local: this process; ray: both passes on Ray Data (pip install 'fedpart[ray]').",
    )(func)


@main.command()
@click.argument("input", required=False)
@click.option("--out", "-o", required=True, help="Output partition directory (created atomically).")
@click.option("--scheme", type=click.Choice(SCHEMES), default="iid", show_default=True,
              help="Partitioning scheme.")
@click.option("--clients", type=int, help="Number of clients (natural: omit for one client per id).")
@click.option("--label-col", help="Label column: the key of label skew and of the metrics.")
@click.option("--by", help="Skew on this categorical column instead of the label (natural: the id column).")
@click.option("--alpha", type=float, help="Dirichlet concentration (dirichlet, quantity, cluster); small = skewed.")
@click.option("--labels-per-client", type=int, help="label-count: labels each client holds.")
@click.option("--size-dist", type=click.Choice(["dirichlet", "lognormal"]),
              help="quantity: distribution of client sizes [default: dirichlet].")
@click.option("--sigma", type=float, help="quantity --size-dist lognormal: sigma of log sizes.")
@click.option("--clusters", type=int, help="cluster: number of k-means clusters [default: 10].")
@click.option("--embedder", help="cluster: hashed-tfidf (default) or sentence-transformers:NAME.")
@click.option("--min-client-size", type=int, help="Guarantee at least this many rows per client.")
@click.option("--test-frac", type=float, default=0.0, show_default=True,
              help="Hold out this share of rows as test.parquet (stratified by the key).")
@click.option("--group-col", help="Keep rows with equal values of this column on one client (not with "
                                  "natural; qa always keeps its contexts together).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed of the plan.")
@click.option("--drop-null-labels", is_flag=True, help="Drop rows whose label/--by value is null.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--row-id-col", default="row_id", show_default=True, help="Name of the row-id column added.")
@task_input_options
@click.option("--no-plot", is_flag=True, help="Do not write label_distribution.png.")
@engine_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary.")
def partition(input: str | None, out: str, quiet: bool, no_plot: bool, input_format: str | None,
              column_names: str | None, hf_name: str | None, text_col: str | None,
              **kwargs: Any) -> None:
    """Split INPUT (file, directory, glob or hf://NAME) into client shards under --out."""
    from fedpart.engine import partition as run_partition
    from fedpart.io.sources import ReadOptions
    from fedpart.stats import PLOT_FILE, format_stats_table

    spec = _input_spec(input, hf_name)
    columns = _column_map(kwargs)
    with _echo_fedpart_warnings_after():  # e.g. label-count clients short of labels
        manifest = run_partition(
            spec, out=out, columns=columns, text_col=_split_names(text_col),
            read_options=ReadOptions(format=input_format, column_names=_split_names(column_names)),
            plot=not no_plot, progress=_tqdm_progress(quiet), **kwargs,
        )
    if not quiet:
        client_rows = sum(c.rows for c in manifest.clients)
        test = f" and a test split ({manifest.test.rows} rows)" if manifest.test is not None else ""
        click.echo(f"wrote {manifest.num_clients} client shards ({client_rows} rows){test} to {out}")
        click.echo(format_stats_table(manifest))
        if (Path(out) / PLOT_FILE).is_file():  # written unless --no-plot (as stats prints it)
            click.echo(f"plot: {Path(out) / PLOT_FILE}")


@main.command()
@click.argument("input", required=False)
@click.option("--out", "-o", required=True, help="Output Parquet file.")
@click.option("--label-col", help="tc: label column [label].")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@task_input_options
def convert(input: str | None, out: str, label_col: str | None, overwrite: bool, task: str | None,
            text_col: str | None, drop_invalid: bool, input_format: str | None, column_names: str | None,
            hf_name: str | None, hf_split: str | None, hf_config: str | None, **kwargs: Any) -> None:
    """Write INPUT in a task's canonical columns to one Parquet file (--task is required)."""
    from dataclasses import replace

    from fedpart.convert import convert as run_convert
    from fedpart.errors import InputError
    from fedpart.io.sources import ReadOptions
    from fedpart.tasks import TaskOptions

    if task is None:
        raise InputError(f"fedpart convert needs --task ({', '.join(TASKS[:-1])} or {TASKS[-1]})")
    columns = replace(_column_map(kwargs), text=_split_names(text_col), label=label_col)
    options = TaskOptions(
        columns=columns, drop_invalid=drop_invalid,
        read=ReadOptions(format=input_format, column_names=_split_names(column_names)),
        hf_split=hf_split, hf_config=hf_config,
    )
    report = run_convert(_input_spec(input, hf_name), task=task, out=out, options=options, overwrite=overwrite)
    click.echo(f"wrote {report.rows} rows ({', '.join(report.columns)}) to {report.out}")
    for reason, count in report.dropped_invalid.items():
        click.echo(f"dropped {count} row(s) that {reason}")


THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="CPU threads for torch [torch's default: one per core]; on a machine other jobs share, 1 avoids "
         "threads stalling on busy cores.")


def _set_torch_threads(threads: int | None) -> None:
    """torch's intra-op CPU threads, when ``--threads`` was given."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def federated_options(default_algo: str) -> Any:
    """The options of ``train`` and ``distill``: FL hyper-parameters (fields of FederatedConfig) and the run."""
    options = [
        click.option("--algo", type=click.Choice(["fedavg", "fedprox", "centralized"]), default=default_algo,
                     show_default=True, help="centralized: one model on the pooled shards, no client sampling."),
        click.option("--rounds", type=int, default=10, show_default=True,
                     help="Communication rounds (centralized: rounds of --local-epochs epochs on all shards)."),
        click.option("--clients-per-round", type=int, default=10, show_default=True,
                     help="Clients sampled per round (all non-empty ones when fewer)."),
        click.option("--local-epochs", type=int, default=1, show_default=True,
                     help="Epochs of each sampled client over its shard per round."),
        click.option("--lr", type=FINITE_FLOAT, default=0.05, show_default=True, help="Client learning rate."),
        click.option("--batch-size", type=int, default=32, show_default=True, help="Local minibatch size."),
        click.option("--client-opt", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True,
                     help="Local optimiser (adam: fresh moments every local update, as FedNLP's local AdamW)."),
        click.option("--mu", type=FINITE_FLOAT, default=0.0, show_default=True,
                     help="FedProx proximal weight (--algo fedprox only)."),
        click.option("--server-opt", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True,
                     help="Server optimiser (FedOpt); sgd with --server-lr 1 is FedAvg."),
        click.option("--server-lr", type=FINITE_FLOAT, default=1.0, show_default=True,
                     help="Server learning rate on the averaged update (FedOpt)."),
        click.option("--sampling", type=click.Choice(["uniform", "activity"]), default="uniform", show_default=True,
                     help="Client sampling: uniform, or proportional to client size."),
        click.option("--eval-every", type=int, default=1, show_default=True,
                     help="Evaluate every N rounds (and after the last) into metrics.jsonl."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        THREADS_OPTION,
        click.option("--seed", type=SEED, default=0, show_default=True,
                     help="Seeds the initial weights, client sampling and minibatch order (recorded in config.json)."),
        click.option("--out", "-o", required=True, help="Run directory."),
        click.option("--resume", is_flag=True,
                     help="Continue a stopped run from its last checkpoint (or extend it to more --rounds)."),
        click.option("--overwrite", is_flag=True,
                     help="Replace the earlier run in --out (its files are deleted once the inputs are checked)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar or final metrics line."),
    ]

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _check_federated_options(options: dict[str, Any]) -> None:
    """Refuse the options of the current command line that its ``--algo`` would silently ignore
    (``--mu`` outside FedProx is refused by :class:`FederatedConfig` itself)."""
    from fedpart.train.federated import check_options_apply

    check_options_apply(options["algo"], [name for name in options if _given(name)])


def _given(name: str) -> bool:
    """Whether the current command's parameter ``name`` was given on the command line."""
    return click.get_current_context().get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _run_rounds_with_progress(run: Any, rounds: int, desc: str, quiet: bool, out: str,
                              threads: int | None = None) -> None:
    """Call ``run(progress)`` with a tqdm bar over ``rounds`` showing the latest metrics; print the
    last evaluated metrics. ``threads`` sets torch's intra-op CPU threads first."""
    _set_torch_threads(threads)

    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=rounds, desc=desc, file=sys.stderr, disable=None)

    def progress(_: int, metrics: dict[str, float] | None) -> None:
        bar.update(1)
        if metrics:
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        if not _given("clients_per_round"):
            warnings.simplefilter("ignore", ExcessClientsWarning)
        warnings.showwarning = _show_warning  # shown at once: rounds take a while
        records = run(progress if bar else None)
    if bar is not None:
        bar.close()
    if records and not quiet:
        last = records[-1]
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in last["metrics"].items())
        click.echo(f"round {last['round']}: {metrics} ({out})")
    elif not quiet:
        click.echo(f"no rounds to run: {out} has already run --rounds {rounds}")


@main.command()
@click.argument("partition_dir")
@click.option("--task", type=click.Choice(TASKS),
              help="Task of the shards [the --task the partition was made with].")
@federated_options(default_algo="fedavg")
@click.option("--eval-data", help="Evaluation data: Parquet, or CSV/TSV/JSONL with the task's columns "
                                 "[the partition's test split].")
@click.option("--model-size", help="Model size of the task's default model (tc: small, base; lm: small, base, large).")
@click.option("--hf-model", metavar="PATH",
              help="Local Hugging Face model directory; uses its tokenizer and weights (needs fedpart[hf]).")
def train(partition_dir: str, task: str | None, out: str, device: str, eval_data: str | None, model_size: str | None,
          resume: bool, overwrite: bool, quiet: bool, **options: Any) -> None:
    """Train a task model on PARTITION_DIR's client shards (FedAvg, FedProx, FedOpt or centralised)."""
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.runner import train as run_train

    hf_model, threads = options.pop("hf_model"), options.pop("threads")
    _check_federated_options(options)
    config = FederatedConfig(**options)
    _run_rounds_with_progress(
        lambda progress: run_train(partition_dir, task=task, out=out, config=config, device=device,
                                   eval_data=eval_data, model_size=model_size, hf_model=hf_model, resume=resume,
                                   overwrite=overwrite, progress=progress),
        config.rounds, f"{config.algo} rounds", quiet, out, threads,
    )


@main.command()
@click.argument("teacher_dir")
@click.option("--data", required=True, help="Distillation corpus: a data file, or a partition directory (FL).")
@click.option("--student-size", default="small", show_default=True, help="Student size (lm: small, base, large; tc: small, base).")
@click.option("--cda", type=click.Choice(["none", "one-sided", "two-sided"]), default="none", show_default=True,
              help="Counterfactual data augmentation: one-sided = counterfactuals only, two-sided = both.")
@click.option("--teacher-perturb", type=click.Choice(["none", "mean", "max", "swap"]), default="none", show_default=True,
              help="Combine the teacher's predictions on each context and its counterfactual (Gupta et al. 2022).")
@click.option("--temperature", type=FINITE_FLOAT, default=2.0, show_default=True,
              help="Softens teacher and student distributions in the KL term (scaled by T^2).")
@click.option("--alpha-kd", type=FINITE_FLOAT, default=0.5, show_default=True, help="Weight of the distillation (KL) term.")
@click.option("--alpha-lm", type=FINITE_FLOAT, default=0.5, show_default=True,
              help="Weight of the label/next-word CE term.")
@click.option("--spacy-model", default="auto", show_default=True,
              help="spaCy model for her/his disambiguation in the swaps: auto, none or a model name/path.")
@federated_options(default_algo="centralized")
@click.option("--eval-data", help="Evaluation file [the partition's test split, else the teacher's evaluation data].")
def distill(teacher_dir: str, data: str, student_size: str, cda: str, teacher_perturb: str, temperature: float,
            alpha_kd: float, alpha_lm: float, spacy_model: str, eval_data: str | None, device: str, out: str,
            resume: bool, overwrite: bool, quiet: bool, **options: Any) -> None:
    """Distil a smaller student from the TEACHER_DIR run, optionally with counterfactual role reversal."""
    from fedpart.distill.runner import DistillConfig
    from fedpart.distill.runner import distill as run_distill
    from fedpart.train.federated import FederatedConfig

    if alpha_kd == 0 and _given("temperature"):  # its default cannot be told from a given value in the API
        raise InputError("--temperature softens the teacher's targets, which --alpha-kd 0 leaves unused; "
                         "give the distillation term a weight or drop --temperature")
    distill_config = DistillConfig(student_size=student_size, cda=cda, teacher_perturb=teacher_perturb,
                                   temperature=temperature, alpha_kd=alpha_kd, alpha_lm=alpha_lm,
                                   spacy_model=spacy_model)
    threads = options.pop("threads")
    _check_federated_options(options)
    config = FederatedConfig(**options)
    _run_rounds_with_progress(
        lambda progress: run_distill(teacher_dir, data=data, out=out, distill_config=distill_config, config=config,
                                     device=device, eval_data=eval_data, resume=resume, overwrite=overwrite,
                                     progress=progress),
        config.rounds, f"distill ({config.algo})", quiet, out, threads,
    )


@main.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--plot", "plot_path", default="report.png", show_default=True, help="Where to write the plot.")
@click.option("--json", "json_path", help="Also write one record per run (settings, final/best metrics) here.")
@click.option("--csv", "csv_path", help="Also write one row per run (the --json records) here.")
@click.option("--metric", help="Plot and tabulate this metric [each task's main one].")
def report(runs: tuple[str, ...], plot_path: str, json_path: str | None, csv_path: str | None,
           metric: str | None) -> None:
    """Compare training RUNS: a table of final metrics and the settings that differ between the
    runs, a metric-vs-round plot, and optionally the comparison as JSON/CSV records."""
    from fedpart.figures import plot_path as resolve_plot_path
    from fedpart.io.output_file import check_distinct_outputs, check_output_file
    from fedpart.train.report import (check_metric, format_report, load_run, run_record, run_settings,
                                      write_report_csv, write_report_json, write_report_plot)

    plot_path = str(resolve_plot_path(plot_path))
    check_distinct_outputs({"--plot": plot_path, "--json": json_path, "--csv": csv_path})
    check_output_file(plot_path, "--plot")  # a plot may go into a run: the run's files are not replaced
    for flag, path in (("--json", json_path), ("--csv", csv_path)):
        if path:  # records inside a run would read as part of it
            check_output_file(path, flag, avoid={run: "the run" for run in runs})
    summaries = [load_run(run) for run in runs]
    if metric is not None:
        check_metric(summaries, metric)
    settings = [run_settings(run) for run in summaries]
    click.echo(format_report(summaries, metric, settings))
    click.echo(f"plot: {write_report_plot(summaries, plot_path, metric)}")
    records = [run_record(run, s) for run, s in zip(summaries, settings)]
    if json_path:
        click.echo(f"json: {write_report_json(records, json_path)}")
    if csv_path:
        click.echo(f"csv: {write_report_csv(records, csv_path)}")


@main.group("eval")
def evaluate() -> None:
    """Evaluate finished runs (gender bias and utility)."""


@evaluate.command("bias")
@click.argument("runs", nargs=-1, required=True)
@click.option("--prompts", help="lm runs: BOLD's profession_prompt.json, or JSONL records {group, prompt}.")
@click.option("--max-per-profession", type=int, help="Use at most this many prompts per profession.")
@click.option("--samples", type=int, default=3, show_default=True, help="Continuations generated per prompt.")
@click.option("--max-new-tokens", type=int, default=20, show_default=True,
              help="Longest continuation, in tokens (words for native lm runs).")
@click.option("--min-new-tokens", type=int, default=5, show_default=True, help="No <eos> before this many words.")
@click.option("--temperature", type=FINITE_FLOAT, default=1.0, show_default=True,
              help="Sampling temperature (0: greedy).")
@click.option("--top-k", type=int, default=40, show_default=True, help="Sample among the k most likely next tokens.")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the intervals.")
@click.option("--eval-data", help="Held-out data for perplexity/accuracy [each run's own evaluation data].")
@click.option("--spacy-model", default="auto", show_default=True, help="spaCy model for the gender swaps: auto, none, NAME.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seeds the sampled continuations and the bootstrap resamples.")
@click.option("--plot", "plot_path", default="bias.png", show_default=True, help="Where to write the plot.")
@click.option("--json", "json_path", help="Also write every measurement (and per-profession polarity) here.")
@THREADS_OPTION
def eval_bias(runs: tuple[str, ...], prompts: str | None, max_per_profession: int | None, eval_data: str | None,
              device: str, plot_path: str, json_path: str | None, threads: int | None, **options: Any) -> None:
    """Compare RUNS' gender bias and utility: a table (value [95% CI]) and a bias-vs-utility plot."""
    from fedpart.figures import plot_path as resolve_plot_path
    from fedpart.io.output_dir import write_text_atomic
    from fedpart.io.output_file import check_distinct_outputs, check_output_file
    from fedpart.train.bias_eval import BiasEvalOptions, evaluate_runs, format_bias_table, write_bias_plot

    plot_path = str(resolve_plot_path(plot_path))
    check_distinct_outputs({"--plot": plot_path, "--json": json_path})
    inputs = {name: "the input" for name in filter(None, [prompts, eval_data])}
    check_output_file(plot_path, "--plot", avoid=inputs)  # as in `fedpart report`, a plot may go into a run
    if json_path:
        check_output_file(json_path, "--json", avoid={**inputs, **{run: "the run" for run in runs}})
    settings = BiasEvalOptions(max_per_profession=max_per_profession, **options)
    lm_options = [f"--{name.replace('_', '-')}" for name in ("prompts", "max_per_profession", "samples",
                                                           "max_new_tokens", "min_new_tokens", "temperature", "top_k")
                  if _given(name)]
    _set_torch_threads(threads)
    results = evaluate_runs(runs, prompts=prompts, options=settings, device=device, eval_data=eval_data,
                            lm_options=lm_options)
    click.echo(format_bias_table(results))
    click.echo(f"plot: {write_bias_plot(results, plot_path)}")
    if json_path:
        text = json.dumps([r.to_dict() for r in results], indent=2) + "\n"
        click.echo(f"json: {write_text_atomic(json_path, text)}")


@main.group()
def augment() -> None:
    """Augment corpora (counterfactual, gender-swapped copies)."""


AUGMENT_TASKS = ("tc", "st", "qa", "s2s", "lm")


def _task_column_options(func: Any) -> Any:
    """The --X-col options of TASK_COLUMN_OPTIONS (the input's names for a task's columns)."""
    for name, flag, text in reversed(TASK_COLUMN_OPTIONS):
        func = click.option(flag, f"{name}_col", help=f"With --task {text}")(func)
    return func


def _fedpart_warning(category: type[Warning]) -> bool:
    """Whether a warning of ``category`` is fedpart's own (not a dependency's deprecation notice)."""
    from fedpart.errors import FedpartWarning

    return issubclass(category, FedpartWarning)


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """``warnings.showwarning`` of the CLI: fedpart's own warnings as a ``warning:`` line on stderr,
    others (e.g. click's deprecation notices raised by spaCy's import of it) not at all."""
    if _fedpart_warning(category):
        click.echo(f"warning: {message}", err=True)


@contextmanager
def _echo_fedpart_warnings_after() -> Iterator[None]:
    """Record the warnings raised inside; afterwards print fedpart's own (:func:`_fedpart_warning`)
    as ``warning:`` lines on stderr, after any progress bar, and drop the others."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    shown = set()  # a warning of every file or piece of the input is said once
    for warning in caught:
        if str(warning.message) not in shown:
            shown.add(str(warning.message))
            _show_warning(warning.message, warning.category)


@augment.command("counterfactual")
@click.argument("input")
@click.option("--out", "-o", required=True, help="Output .parquet file, or directory for a directory/partition input.")
@click.option("--task", type=click.Choice(AUGMENT_TASKS),
              help="Read INPUT as this task's data and swap its annotations consistently [default: tc columns as-is].")
@click.option("--text-col", help="tc: with --task, the input column(s) joined into `text` (as in partition); "
                                 "without --task, the column(s) to swap; comma-separated [text].")
@click.option("--also-swap", help="Other string columns to swap as well, comma-separated (e.g. extra reference "
                                  "summaries: summary2,summary3); other columns are copied unchanged.")
@click.option("--mode", type=click.Choice(["replace", "append", "cds"]), default="replace", show_default=True,
              help="replace: counterfactuals only; append: originals + counterfactuals; cds: replace each row with probability --p.")
@click.option("--p", "p", type=float, default=0.5, show_default=True, help="cds: substitution probability.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="cds: seed of the substitution draws.")
@click.option("--pairs", "pairs", multiple=True, help="TSV of extra/overriding pairs (male<TAB>female...); repeatable.")
@click.option("--names", is_flag=True, help="Also swap first names (built-in list of name pairs).")
@click.option("--name-pairs", help="With --names: TSV of first-name pairs used instead of the built-in list.")
@click.option("--spacy-model", default="auto", show_default=True,
              help="spaCy model for her/his disambiguation: auto, none (rules only) or a model name/path.")
@click.option("--keep-proper-names", is_flag=True,
              help="Leave nouns that read as part of a multi-word name (Larry King, Dallas Cowboys, Spider-Man) "
                   "unswapped; headline-case text loses some right swaps.")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--append-unchanged", is_flag=True, help="append: also append counterfactuals without any swap.")
@click.option("--report", "report_path", help="Write the augmentation report as JSON here.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--format", "input_format", type=click.Choice(INPUT_FORMATS), help="Input format.")
@click.option("--column-names", help="Comma-separated names for a CSV/TSV without header row.")
@click.option("--drop-invalid", is_flag=True,
              help="With --task: drop rows that fail the task's validation (e.g. a bad answer_start) instead of failing.")
@_task_column_options
@engine_options
def augment_counterfactual(input: str, out: str, task: str | None, text_col: str | None, also_swap: str | None,
                           mode: str, p: float,
                           seed: int, pairs: tuple[str, ...], names: bool, name_pairs: str | None,
                           spacy_model: str, keep_proper_names: bool, workers: int, append_unchanged: bool,
                           report_path: str | None,
                           overwrite: bool, input_format: str | None, column_names: str | None,
                           drop_invalid: bool, **kwargs: Any) -> None:
    """Write the binary-gender-swapped counterfactual corpus of INPUT (file, directory or partition)."""
    from dataclasses import replace

    from fedpart.augment import CounterfactualOptions, SwapperConfig, write_report
    from fedpart.augment.files import augment_counterfactual as run_augment
    from fedpart.errors import InputError
    from fedpart.io.output_file import check_output_file
    from fedpart.io.sources import ReadOptions

    columns = _column_map(kwargs)  # pops the --*-col options; the engine options remain
    engine = kwargs
    if engine["engine"] == "ray" and workers != 1:
        raise InputError("--workers applies to --engine local; with --engine ray every CPU of the cluster runs a task")
    if name_pairs is not None and not names:
        raise InputError("--name-pairs applies with --names only; add --names to swap first names")
    task_text = task == "tc" and text_col is not None  # with --task tc, --text-col builds `text`
    if task_text:
        columns = replace(columns, text=_split_names(text_col))
    if columns == type(columns)():
        columns = None
    options = CounterfactualOptions(
        task=task or "tc", text_cols=None if task_text else _split_names(text_col), mode=mode, p=p, seed=seed,
        append_unchanged=append_unchanged, also_swap=_split_names(also_swap) or (),
        swapper=SwapperConfig(pairs=pairs, names=names, name_pairs=name_pairs, spacy_model=spacy_model,
                              keep_proper_names=keep_proper_names),
    )
    if report_path:
        check_output_file(report_path, "--report", avoid={input: "the input", out: "the output"})
    with _echo_fedpart_warnings_after():  # e.g. no spaCy model
        report = run_augment(
            input, out=out, options=options, task=task, workers=workers, overwrite=overwrite,
            read_options=ReadOptions(format=input_format, column_names=_split_names(column_names)),
            columns=columns, drop_invalid=drop_invalid, **engine,
        )
    if report_path:
        write_report(report, report_path)
    click.echo(report.summary())
    click.echo(f"wrote {out}")


@main.command()
@click.argument("directory")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
@click.option("--no-plot", is_flag=True, help="Do not (re)write DIRECTORY/label_distribution.png.")
@click.option("--no-verify", is_flag=True,
              help="Do not check the shards' sha256 against the manifest first (faster on large partitions).")
def stats(directory: str, as_json: bool, no_plot: bool, no_verify: bool) -> None:
    """Check a partition's shards, print its size and label-skew statistics and plot its label distribution."""
    from fedpart.manifest import Manifest
    from fedpart.stats import format_stats_table, stats_record, write_label_plot
    from fedpart.verify import verify_partition

    manifest = Manifest.read(directory)
    if not no_verify:  # statistics of a damaged partition would describe shards that are not there
        verify_partition(directory, manifest)
    plot = None
    if not no_plot:
        try:
            plot = write_label_plot(manifest, directory)
        except OutputError as error:  # e.g. a read-only partition: the statistics still print
            click.echo(f"warning: {error}", err=True)
    if as_json:
        click.echo(json.dumps(stats_record(manifest), indent=2))
    else:
        click.echo(format_stats_table(manifest))
        if plot is not None:
            click.echo(f"plot: {plot}")


if __name__ == "__main__":  # pragma: no cover
    main()
