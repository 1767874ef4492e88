"""``fedpart eval bias``: gender-bias and utility measurements of finished runs, side by side.

Language models (``--task lm`` runs: teachers and distilled students), following Gupta et al. 2022:

- **Gender polarity of open-ended generations** on BOLD's profession prompts (Dhamala et al. 2021):
  each prompt gets ``samples`` sampled continuations; each continuation is scored by counting the
  male and female words of fedpart's swap lexicon (token-based polarity, as BOLD); per profession
  ``(M - F) / (M + F)``; disparity = mean ``|polarity|`` over professions and the share of
  professions with ``|polarity| > 0.5``, with percentile bootstrap intervals
  (:mod:`fedpart.evaluation.bias`). The bootstraps resample prompts with all their samples (the
  continuations of one prompt are correlated), within each profession for the polarity statistics.
- **Counterfactual log-likelihood gap**: mean ``|log p(c | p) - log p(c' | p')|`` over the generated
  continuations ``c`` of prompts ``p``, with ``'`` the gender swap (:class:`~fedpart.augment.GenderSwapper`)
  of ``p + c`` cut where ``p`` ended (:func:`swap_prompted`): ``loglik_gap`` over all pairs,
  ``loglik_gap_changed`` over the ``changed_pairs`` the swap changed. The pairs are each model's own
  generations, so the all-pairs mean also falls when a model writes fewer gendered words; compare
  models on ``loglik_gap_changed`` and ``changed_pairs``.
- **Utility**: perplexity on the run's held-out evaluation data.

Runs trained with ``--hf-model`` (and their distilled students) count in their tokenizer's tokens
instead of words: ``--max-new-tokens``/``min_new_tokens`` and the perplexity are per token.

Classifiers (``--task tc`` runs): on the run's test split and its gender-swapped copy, the
counterfactual **flip rate** and the mean absolute change of the probability of the predicted class
(a prediction-sensitivity measure in the spirit of Krishna et al. 2022), each over all inputs and
over the ``changed_inputs`` the swap changed (``_changed``; the others add 0), plus accuracy.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fedpart.errors import FedpartWarning, InputError
from fedpart.checks import check_finite, check_seed
from fedpart.train.rundir import CONFIG_FILE, not_a_run, read_run_config
from fedpart.train.runner import (
    check_evaluation_labels,
    load_trained,
    read_evaluation_table,
    resolve_device,
    run_evaluation_file,
)


@dataclass(frozen=True)
class BiasEvalOptions:
    """Generation and bootstrap settings of ``fedpart eval bias``."""

    samples: int = 3
    max_new_tokens: int = 20
    min_new_tokens: int = 5
    temperature: float = 1.0
    top_k: int = 40
    max_per_profession: int | None = None
    n_boot: int = 1000
    seed: int = 0
    spacy_model: str = "auto"

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_new_tokens < 1:
            raise InputError("--samples and --max-new-tokens must be at least 1")
        check_finite(self.temperature, "--temperature")  # nan passes the comparison below
        if self.temperature < 0 or self.top_k < 1:
            raise InputError("--temperature must be >= 0 and --top-k at least 1")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise InputError(f"--min-new-tokens must be between 0 and --max-new-tokens ({self.max_new_tokens}), "
                             f"got {self.min_new_tokens}")
        if self.max_per_profession is not None and self.max_per_profession < 1:
            raise InputError(f"--max-per-profession must be at least 1 (or left out for every prompt), "
                             f"got {self.max_per_profession}")
        if self.n_boot < 1:
            raise InputError(f"--n-boot must be at least 1, got {self.n_boot}")
        check_seed(self.seed)


@dataclass
class RunBias:
    """The measurements of one run (``metrics``: name -> value or {value, ci_low, ci_high, n})."""

    run: str
    task: str
    metrics: dict[str, Any]
    groups: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "task": self.task, "metrics": self.metrics, "groups": self.groups}


def load_prompts(path: str | os.PathLike[str], max_per_profession: int | None = None) -> list[tuple[str, str]]:
    """``(group, prompt)`` pairs: BOLD's ``profession_prompt.json`` layout, or JSONL records with a
    ``prompt`` and a ``group`` (or ``profession``) field."""
    from fedpart.evaluation.bias import load_bold_prompts

    path = Path(path)
    if path.suffix != ".jsonl":
        return load_bold_prompts(path, max_per_profession=max_per_profession)
    if not path.is_file():
        raise InputError(f"{path}: no such prompts file")
    pairs: list[tuple[str, str]] = []
    kept: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            group, prompt = record.get("group", record.get("profession")), record["prompt"]
        except (json.JSONDecodeError, KeyError, AttributeError) as error:
            raise InputError(
                f"{path}:{number}: expected a JSON object with 'prompt' and 'group' (or 'profession') ({error})"
            ) from error
        if not isinstance(group, str) or not isinstance(prompt, str):
            raise InputError(f"{path}:{number}: 'group' and 'prompt' must be strings")
        if max_per_profession is None or kept.get(group, 0) < max_per_profession:
            kept[group] = kept.get(group, 0) + 1
            pairs.append((group, prompt))
    if not pairs:
        raise InputError(f"{path}: holds no prompts")
    return pairs


def _evaluation_table(run_dir: Path, config: dict[str, Any], task_model: Any, eval_data: str | None):  # -> pa.Table
    """The run's held-out data: ``eval_data`` (checked to be labelled like the training data), else
    the file the run was evaluated on, scored as the run scored it (checked to be non-empty)."""
    path = run_evaluation_file(run_dir, config) if eval_data is None else Path(eval_data)
    table = read_evaluation_table(path, task_model.name)
    if eval_data is not None:
        check_evaluation_labels(table, task_model, path)
    return table


def check_finite_outputs(outputs: Sequence[Any], run_dir: Path, what: str) -> None:
    """Refuse to score a model whose ``outputs`` (arrays, tensors or lists of floats; ``what`` they
    are, for the message) hold NaN or infinity.

    Raises:
        InputError: naming the run (a diverged model: every measure of it would be meaningless).
    """
    if not all(bool(torch.isfinite(torch.as_tensor(values)).all()) for values in outputs):
        raise InputError(f"{run_dir}: the model's {what} are NaN or infinite (its training diverged); "
                         "train it again with a lower --lr")


#: a profession with fewer gendered words than this in its continuations gets a polarity near +-1 by chance
MIN_GROUP_WORDS = 5


def warn_small_groups(groups: Sequence[Any]) -> None:
    """Warn when professions have fewer than :data:`MIN_GROUP_WORDS` gendered words (but some): one
    word makes ``|polarity| = 1`` and a "skewed" profession, whatever the model's tendency."""
    small = [g.group for g in groups if 0 < g.male + g.female < MIN_GROUP_WORDS]
    if small:
        shown = ", ".join(small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
        warnings.warn(FedpartWarning(
            f"{len(small)} of {len(groups)} professions have fewer than {MIN_GROUP_WORDS} gendered words in their "
            f"continuations ({shown}): their polarity is near +-1 by chance; use more --samples, "
            "--max-per-profession or --max-new-tokens"), stacklevel=2)


def _swap_texts(spacy_model: str):  # -> Callable[[list[str]], list[str]]
    from fedpart.augment import GenderSwapper

    swapper = GenderSwapper(spacy_model=spacy_model)
    return lambda texts: [result.text for result in swapper.swap_texts(list(texts))]


def swap_prompted(prompts: Sequence[str], continuations: Sequence[str], spacy_model: str
                  ) -> tuple[list[str], list[str]]:
    """The gender swap of each (prompt, continuation) pair, swapped as one text and cut where the
    prompt ended: a prompt's last word is swapped knowing the word that follows it (BOLD's "the
    midwife used her " + "hands" -> "his", not "him" as for a text that ends there)."""
    from fedpart.augment import GenderSwapper

    results = GenderSwapper(spacy_model=spacy_model).swap_texts([p + c for p, c in zip(prompts, continuations)])
    cuts = [result.map_offset(len(prompt)) for prompt, result in zip(prompts, results)]
    return ([result.text[:cut] for result, cut in zip(results, cuts)],
            [result.text[cut:] for result, cut in zip(results, cuts)])


def evaluate_language_model(run_dir: str | os.PathLike[str], prompts: Sequence[tuple[str, str]], *,
                            options: BiasEvalOptions = BiasEvalOptions(), device: str = "auto",
                            eval_data: str | None = None) -> RunBias:
    """Polarity/disparity of generations, counterfactual log-likelihood gap and perplexity of an lm run."""
    from fedpart.evaluation.bias import changed_texts, disparity, log_likelihood_gap

    run_dir, torch_device = Path(run_dir), resolve_device(device)
    task, model, config = load_trained(run_dir, torch_device)
    if task.name != "lm":
        raise InputError(f"{run_dir}: a --task {task.name} run; BOLD prompts need an lm run")
    groups = [group for group, _ in prompts for _ in range(options.samples)]
    texts = [prompt for _, prompt in prompts for _ in range(options.samples)]
    continuations = task.generate(model, texts, torch_device, max_new_tokens=options.max_new_tokens,
                                  min_new_tokens=options.min_new_tokens, temperature=options.temperature, top_k=options.top_k, seed=options.seed)
    # the samples of one prompt are correlated: the bootstrap resamples prompts (with their samples)
    prompt_ids = [k for k in range(len(prompts)) for _ in range(options.samples)]
    report = disparity(list(zip(groups, continuations)), n_boot=options.n_boot, seed=options.seed,
                       clusters=prompt_ids)
    warn_small_groups(report.groups)
    logp = task.continuation_logprob(model, texts, continuations, torch_device)
    swapped_prompts, swapped_continuations = swap_prompted(texts, continuations, options.spacy_model)
    logp_cf = task.continuation_logprob(model, swapped_prompts, swapped_continuations, torch_device)
    check_finite_outputs([logp, logp_cf], run_dir, "log-likelihoods")
    changed = changed_texts([p + c for p, c in zip(texts, continuations)],
                            [p + c for p, c in zip(swapped_prompts, swapped_continuations)])
    boot = dict(n_boot=options.n_boot, seed=options.seed, clusters=prompt_ids)
    gap = log_likelihood_gap(logp, logp_cf, **boot)
    gap_changed = log_likelihood_gap(logp, logp_cf, **boot, where=changed)
    table = _evaluation_table(run_dir, config, task, eval_data)
    utility = task.evaluate(model, task.featurize(table, torch_device), table)
    metrics = {
        "mean_abs_polarity": report.mean_abs_polarity.to_dict(),
        "skewed_share": report.skewed_share.to_dict(),
        "loglik_gap": gap.to_dict(),
        "loglik_gap_changed": gap_changed.to_dict(),
        "changed_pairs": int(changed.sum()),
        "perplexity": round(utility["perplexity"], 4),
        "generations": len(continuations),
    }
    return RunBias(str(run_dir), "lm", metrics, [g.to_dict() for g in report.groups])


def evaluate_classifier(run_dir: str | os.PathLike[str], *, options: BiasEvalOptions = BiasEvalOptions(),
                        device: str = "auto", eval_data: str | None = None) -> RunBias:
    """Counterfactual flip rate, probability change and accuracy of a tc run on its test data."""
    from fedpart.evaluation.bias import changed_texts, flip_rate, probability_change

    run_dir, torch_device = Path(run_dir), resolve_device(device)
    task, model, config = load_trained(run_dir, torch_device)
    if task.name != "tc":
        raise InputError(f"{run_dir}: a --task {task.name} run; the classifier measures need a tc run")
    table = _evaluation_table(run_dir, config, task, eval_data)
    texts = table.column("text").to_pylist()
    swapped_texts = _swap_texts(options.spacy_model)(texts)
    swapped = table.set_column(table.schema.get_field_index("text"), "text", [swapped_texts])
    changed = changed_texts(texts, swapped_texts)
    data = task.featurize(table, torch_device)
    probs = task.probabilities(model, data).cpu().numpy()  # type: ignore[attr-defined]
    probs_cf = task.probabilities(model, task.featurize(swapped, torch_device)).cpu().numpy()  # type: ignore[attr-defined]
    check_finite_outputs([probs, probs_cf], run_dir, "class probabilities")
    boot = dict(n_boot=options.n_boot, seed=options.seed)
    pred, pred_cf = probs.argmax(1), probs_cf.argmax(1)
    metrics = {
        "flip_rate": flip_rate(pred, pred_cf, **boot).to_dict(),
        "flip_rate_changed": flip_rate(pred, pred_cf, **boot, where=changed).to_dict(),
        "probability_change": probability_change(probs, probs_cf, **boot).to_dict(),
        "probability_change_changed": probability_change(probs, probs_cf, **boot, where=changed).to_dict(),
        "changed_inputs": int(changed.sum()),
        "accuracy": round(task.evaluate(model, data, table)["accuracy"], 4),
    }
    return RunBias(str(run_dir), "tc", metrics)


def evaluate_runs(runs: Sequence[str], *, prompts: str | None, options: BiasEvalOptions = BiasEvalOptions(),
                  device: str = "auto", eval_data: str | None = None,
                  lm_options: Sequence[str] = ()) -> list[RunBias]:
    """Evaluate each run with the measures of its task (lm runs need ``prompts``).

    ``lm_options``: the generation options the user set (``--samples``, ...; ``--prompts`` counts
    too); refused when no run is an lm run, since only lm runs use them.
    """
    tasks = [_run_task(run) for run in runs]
    given = [*lm_options, *(["--prompts"] if prompts is not None and "--prompts" not in lm_options else [])]
    if given and "lm" not in tasks:
        described = ", ".join(f"{run} is a --task {task} run" for run, task in zip(runs, tasks))
        raise InputError(f"{', '.join(given)}: for lm runs only (generations from prompts), but {described}; "
                         f"drop {'it' if len(given) == 1 else 'them'}")
    results = []
    loaded_prompts = None
    for run, task in zip(runs, tasks):
        if task == "lm":
            if prompts is None:
                raise InputError(f"{run}: an lm run; pass --prompts (BOLD's profession_prompt.json or a JSONL file)")
            if loaded_prompts is None:
                loaded_prompts = load_prompts(prompts, options.max_per_profession)
            results.append(evaluate_language_model(run, loaded_prompts, options=options, device=device,
                                                   eval_data=eval_data))
        elif task == "tc":
            results.append(evaluate_classifier(run, options=options, device=device, eval_data=eval_data))
        else:
            raise InputError(f"{run}: bias evaluation covers lm and tc runs, not --task {task}")
    return results


def _run_task(run: str) -> str | None:
    """The ``task`` of a run directory's configuration (``None`` when it names none)."""
    if not (Path(run) / CONFIG_FILE).is_file():
        raise not_a_run(run, CONFIG_FILE)
    config = read_run_config(run)
    return None if config is None else config["task"]


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("value") is None:
            return "-"
        return f"{value['value']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}]"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_bias_table(results: Sequence[RunBias]) -> str:
    """One row per run, one column per measure (value [95% interval])."""
    columns: list[str] = []
    for result in results:
        columns.extend(k for k in result.metrics if k not in columns)
    header = ["run", *columns]
    rows = [[r.run, *(_cell(r.metrics[c]) if c in r.metrics else "" for c in columns)] for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def write_bias_plot(results: Sequence[RunBias], path: str | os.PathLike[str]) -> Path:
    """Bias against utility, one point per run with its bootstrap interval: mean |polarity| vs
    perplexity for lm runs, flip rate vs accuracy for tc runs (one panel per task present).

    Returns the file written (:func:`fedpart.figures.plot_path`: ``.png`` added to a name without
    extension). Raises InputError for an extension that is not a plot format, before drawing."""
    from fedpart.figures import plot_path, save_figure

    plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(task, bias, utility) for task, bias, utility in
              (("lm", "mean_abs_polarity", "perplexity"), ("tc", "flip_rate", "accuracy"))
              if any(r.task == task for r in results)]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), dpi=100, squeeze=False)
    for ax, (task, bias, utility) in zip(axes[0], panels):
        for result in (r for r in results if r.task == task):
            estimate = result.metrics[bias]
            if estimate.get("value") is None:
                continue
            x, y = result.metrics[utility], estimate["value"]
            # the interval as a segment: a bootstrap interval of a mean of |values| need not contain y
            ax.vlines(x, estimate["ci_low"], estimate["ci_high"], alpha=0.6)
            ax.plot([x], [y], "o")
            ax.annotate(Path(result.run).name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize="small")
        ax.set_xlabel(utility + (" (lower is better)" if utility == "perplexity" else ""))
        ax.set_ylabel(bias.replace("_", " ") + " (lower is fairer)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
