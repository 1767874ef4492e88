"""The ``fedpart`` command line: thin click commands over the library.

Errors from the library (:class:`fedpart.errors.FedpartError`) are printed as one line and exit with
their code (2 for bad input); anything else is an internal error (exit 1), with a traceback only
under ``fedpart --debug``. Nothing heavy (torch, spaCy, datasets) is imported at start-up.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from fedpart._version import __version__
from fedpart.errors import FedpartError

SCHEMES = ("iid", "dirichlet", "label-count", "quantity", "natural", "cluster")
TASKS = ("tc", "st", "qa", "s2s")
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
    ("source", "--source-col", "s2s: source text column [source|dialogue|document|article]."),
    ("target", "--target-col", "s2s: target text column [target|summary|highlights]."),
)


def task_input_options(func: Any) -> Any:
    """Options shared by commands that read a task's input (partition, convert)."""
    options = [
        click.option("--task", type=click.Choice(TASKS),
                     help="Read INPUT as this task's data (canonical columns, validation, task keys)."),
        click.option("--text-col", help="Text column(s), comma-separated to join (tc; cluster text without --task)."),
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


class FedpartGroup(click.Group):
    """A click group that turns fedpart errors into one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was written", err=True)
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


@click.group(cls=FedpartGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fedpart")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """fedpart: non-IID federated-learning partitions of NLP corpora."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _tqdm_progress(quiet: bool):
    if quiet:
        return None

    def factory(desc: str, total: int | None) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr,
                    disable=None, leave=False, dynamic_ncols=True)

    return factory


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
@click.option("--group-col", help="Keep rows with equal values of this column on one client (qa: context).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the plan.")
@click.option("--drop-null-labels", is_flag=True, help="Drop rows whose label/--by value is null.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--row-id-col", default="row_id", show_default=True, help="Name of the row-id column added.")
@task_input_options
@click.option("--no-plot", is_flag=True, help="Do not write label_distribution.png.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary.")
def partition(input: str | None, out: str, quiet: bool, no_plot: bool, input_format: str | None,
              column_names: str | None, hf_name: str | None, text_col: str | None,
              **kwargs: Any) -> None:
    """Split INPUT (file, directory, glob or hf://NAME) into client shards under --out."""
    from fedpart.engine import partition as run_partition
    from fedpart.io.sources import ReadOptions
    from fedpart.stats import format_stats_table

    spec = _input_spec(input, hf_name)
    columns = _column_map(kwargs)
    manifest = run_partition(
        spec, out=out, columns=columns, text_col=_split_names(text_col),
        read_options=ReadOptions(format=input_format, column_names=_split_names(column_names)),
        plot=not no_plot, progress=_tqdm_progress(quiet), **kwargs,
    )
    if not quiet:
        click.echo(f"wrote {manifest.num_clients} client shards ({manifest.rows['written']} rows) to {out}")
        click.echo(format_stats_table(manifest))


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
        raise InputError("fedpart convert needs --task (tc, st, qa or s2s)")
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


@main.command()
@click.argument("partition_dir")
@click.option("--task", type=click.Choice(TASKS), required=True, help="Task of the shards.")
@click.option("--algo", type=click.Choice(["fedavg", "fedprox", "centralized"]), default="fedavg", show_default=True)
@click.option("--rounds", type=int, default=10, show_default=True)
@click.option("--clients-per-round", type=int, default=10, show_default=True)
@click.option("--local-epochs", type=int, default=1, show_default=True)
@click.option("--lr", type=float, default=0.05, show_default=True, help="Client SGD learning rate.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--mu", type=float, default=0.0, show_default=True, help="FedProx proximal weight.")
@click.option("--server-opt", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True,
              help="Server optimiser (FedOpt); sgd with --server-lr 1 is FedAvg.")
@click.option("--server-lr", type=float, default=1.0, show_default=True)
@click.option("--sampling", type=click.Choice(["uniform", "activity"]), default="uniform", show_default=True,
              help="Client sampling: uniform, or proportional to client size.")
@click.option("--eval-every", type=int, default=1, show_default=True)
@click.option("--eval-data", help="Evaluation Parquet file (default: the partition's test.parquet).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "-o", required=True, help="Run directory.")
@click.option("--resume", is_flag=True, help="Continue a stopped run from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Start again in an existing run directory.")
@click.option("--quiet", "-q", is_flag=True)
def train(partition_dir: str, task: str, out: str, device: str, eval_data: str | None, resume: bool,
          overwrite: bool, quiet: bool, **options: Any) -> None:
    """Train a task model on PARTITION_DIR's client shards (FedAvg, FedProx, FedOpt or centralised)."""
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.runner import train as run_train

    config = FederatedConfig(**options)
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=config.rounds, desc=f"{config.algo} rounds", file=sys.stderr, disable=None)
    records = run_train(partition_dir, task=task, out=out, config=config, device=device, eval_data=eval_data,
                        resume=resume, overwrite=overwrite, progress=(lambda _: bar.update(1)) if bar else None)
    if bar is not None:
        bar.close()
    if records and not quiet:
        last = records[-1]
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in last["metrics"].items())
        click.echo(f"round {last['round']}: {metrics} ({out})")


@main.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--plot", "plot_path", default="report.png", show_default=True, help="Where to write the plot.")
def report(runs: tuple[str, ...], plot_path: str) -> None:
    """Compare training RUNS: a table of final metrics and a metric-vs-round plot."""
    from fedpart.train.report import format_report, load_run, write_report_plot

    summaries = [load_run(run) for run in runs]
    click.echo(format_report(summaries))
    click.echo(f"plot: {write_report_plot(summaries, plot_path)}")


@main.group()
def augment() -> None:
    """Augment corpora (counterfactual, gender-swapped copies)."""


@augment.command("counterfactual")
@click.argument("input")
@click.option("--out", "-o", required=True, help="Output Parquet file, or directory for a directory/partition input.")
@click.option("--task", type=click.Choice(TASKS),
              help="Read INPUT as this task's data and swap its annotations consistently [default: tc columns as-is].")
@click.option("--text-col", help="tc: the text column(s) to swap, comma-separated [text].")
@click.option("--mode", type=click.Choice(["replace", "append", "cds"]), default="replace", show_default=True,
              help="replace: counterfactuals only; append: originals + counterfactuals; cds: replace each row with probability --p.")
@click.option("--p", "p", type=float, default=0.5, show_default=True, help="cds: substitution probability.")
@click.option("--seed", type=int, default=0, show_default=True, help="cds: seed of the substitution draws.")
@click.option("--pairs", "pairs", multiple=True, help="TSV of extra/overriding pairs (male<TAB>female...); repeatable.")
@click.option("--names", is_flag=True, help="Also swap first names (built-in list of name pairs).")
@click.option("--name-pairs", help="TSV of first-name pairs used instead of the built-in list.")
@click.option("--spacy-model", default="auto", show_default=True,
              help="spaCy model for her/his disambiguation: auto, none (rules only) or a model name/path.")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--append-unchanged", is_flag=True, help="append: also append counterfactuals without any swap.")
@click.option("--report", "report_path", help="Write the augmentation report as JSON here.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--format", "input_format", type=click.Choice(INPUT_FORMATS), help="Input format.")
@click.option("--column-names", help="Comma-separated names for a CSV/TSV without header row.")
def augment_counterfactual(input: str, out: str, task: str | None, text_col: str | None, mode: str, p: float,
                           seed: int, pairs: tuple[str, ...], names: bool, name_pairs: str | None,
                           spacy_model: str, workers: int, append_unchanged: bool, report_path: str | None,
                           overwrite: bool, input_format: str | None, column_names: str | None) -> None:
    """Write the binary-gender-swapped counterfactual corpus of INPUT (file, directory or partition)."""
    import warnings

    from fedpart.augment import CounterfactualOptions, SwapperConfig, write_report
    from fedpart.augment.files import augment_counterfactual as run_augment
    from fedpart.io.sources import ReadOptions

    options = CounterfactualOptions(
        task=task or "tc", text_cols=_split_names(text_col), mode=mode, p=p, seed=seed,
        append_unchanged=append_unchanged,
        swapper=SwapperConfig(pairs=pairs, names=names, name_pairs=name_pairs, spacy_model=spacy_model),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_augment(
            input, out=out, options=options, task=task, workers=workers, overwrite=overwrite,
            read_options=ReadOptions(format=input_format, column_names=_split_names(column_names)),
        )
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    if report_path:
        write_report(report, report_path)
    click.echo(report.summary())
    click.echo(f"wrote {out}")


@main.command()
@click.argument("directory")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
@click.option("--no-plot", is_flag=True, help="Do not (re)write DIRECTORY/label_distribution.png.")
def stats(directory: str, as_json: bool, no_plot: bool) -> None:
    """Print size and label-skew statistics of a partition and plot its label distribution."""
    from fedpart.manifest import Manifest
    from fedpart.stats import format_stats_table, stats_record, write_label_plot

    manifest = Manifest.read(directory)
    plot = None if no_plot else write_label_plot(manifest, directory)
    if as_json:
        click.echo(json.dumps(stats_record(manifest), indent=2))
    else:
        click.echo(format_stats_table(manifest))
        if plot is not None:
            click.echo(f"plot: {plot}")


if __name__ == "__main__":  # pragma: no cover
    main()
