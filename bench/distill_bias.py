"""Evidence for bias-mitigating distillation (Gupta et al. 2022) on a real corpus.

Trains a ``base`` GPT-style teacher on SST-2 sentences from ../shared/data (a movie-review corpus
whose gendered words are about 2.7 : 1 male : female), then distils two ``small`` students from it
with the same budget of training examples:

- plain: ``--cda none --teacher-perturb none`` for ``2 R`` epochs over the N corpus rows;
- counterfactual: ``--cda two-sided --teacher-perturb mean`` for ``R`` epochs over the 2 N rows
  (originals + gender-swapped counterparts).

All three are scored with ``fedpart eval bias`` on BOLD's profession prompts (gender polarity of
sampled continuations, disparity with bootstrap intervals, counterfactual log-likelihood gap) and
perplexity on the same held-out sentences. Writes bench/results/distill_bias.md and a plot.

    .venv/bin/python bench/distill_bias.py [--rows 20000] [--teacher-rounds 3] [--student-rounds 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import polars as pl

import fedpart
from fedpart.distill.runner import DistillConfig, distill
from fedpart.manifest import Manifest
from fedpart.train.bias_eval import BiasEvalOptions, evaluate_runs, format_bias_table, write_bias_plot
from fedpart.train.federated import FederatedConfig
from fedpart.train.runner import train

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "data"
SST2 = SHARED / "sst2" / "train.tsv"
BOLD = SHARED / "bold" / "profession_prompt.json"


def corpus(rows: int, min_words: int, out: Path) -> Path:
    """The first ``rows`` SST-2 training phrases of at least ``min_words`` words, as Parquet."""
    frame = pl.read_csv(SST2, separator="\t", quote_char=None).filter(
        pl.col("sentence").str.split(" ").list.len() >= min_words
    ).head(rows).select("sentence")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.rename({"sentence": "text"}).write_parquet(out)
    return out


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=ROOT).stdout.strip()


def train_runs(args: argparse.Namespace, work: Path, timings: dict[str, float]) -> None:
    """Partition the corpus, train the teacher and distil both students (timings in seconds)."""
    data = corpus(args.rows, args.min_words, work / "sst2.parquet")
    parts = work / "parts"
    fedpart.partition(data, task="lm", scheme="iid", clients=10, test_frac=0.05, seed=0, out=parts,
                      overwrite=True, plot=False)
    train_corpus = work / "train.parquet"
    manifest = Manifest.read(parts)
    pl.concat([pl.read_parquet(parts / c.file) for c in manifest.clients]).write_parquet(train_corpus)
    adam = dict(client_opt="adam", lr=args.lr, batch_size=64, seed=0)
    start = time.perf_counter()
    train(parts, task="lm", out=work / "teacher", model_size="base", device=args.device, overwrite=True,
          config=FederatedConfig(algo="centralized", rounds=args.teacher_rounds, eval_every=args.teacher_rounds, **adam))
    timings["teacher"] = time.perf_counter() - start
    students = {
        "student-plain": (DistillConfig(cda="none", teacher_perturb="none"), 2 * args.student_rounds),
        "student-cf": (DistillConfig(cda="two-sided", teacher_perturb="mean"), args.student_rounds),
    }
    for name, (settings, rounds) in students.items():
        start = time.perf_counter()
        distill(work / "teacher", data=train_corpus, out=work / name, distill_config=settings, device=args.device,
                overwrite=True, config=FederatedConfig(algo="centralized", rounds=rounds, eval_every=rounds, **adam))
        timings[name] = time.perf_counter() - start
    (work / "timings.json").write_text(json.dumps(timings) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--min-words", type=int, default=6)
    parser.add_argument("--teacher-rounds", type=int, default=3)
    parser.add_argument("--student-rounds", type=int, default=2, help="R: epochs of the counterfactual student")
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--max-per-profession", type=int, default=40)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", default=str(ROOT / "out" / "distill_bias"))
    parser.add_argument("--results", default=str(ROOT / "results" / "distill_bias.md"))
    parser.add_argument("--eval-only", action="store_true", help="reuse the trained runs in --workdir")
    args = parser.parse_args()
    work = Path(args.workdir)
    timings = json.loads((work / "timings.json").read_text()) if args.eval_only else {}
    if not args.eval_only:
        train_runs(args, work, timings)
    students = ("student-plain", "student-cf")
    manifest = Manifest.read(work / "parts")

    runs = [str(work / name) for name in ("teacher", *students)]
    options = BiasEvalOptions(samples=args.samples, max_per_profession=args.max_per_profession)
    start = time.perf_counter()
    results = evaluate_runs(runs, prompts=str(BOLD), options=options, device=args.device)
    timings["eval bias"] = time.perf_counter() - start
    plot = write_bias_plot(results, Path(args.results).with_suffix(".png"))
    (work / "bias.json").write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")

    for result in results:
        result.run = Path(result.run).name
    table = format_bias_table(results)
    n_test = manifest.test.rows
    lines = [
        "# Bias-mitigating distillation: SST-2 teacher, plain vs counterfactual students",
        "",
        f"fedpart {commit()}; {platform.machine()}, {args.device}; corpus: {args.rows} SST-2 train phrases "
        f"with >= {args.min_words} words, {n_test} held out for perplexity. Teacher `base` "
        f"({args.teacher_rounds} epochs); students `small`, same budget: plain {2 * args.student_rounds} epochs "
        f"of N rows, counterfactual {args.student_rounds} epochs of 2N rows (two-sided CDA + mean teacher "
        f"perturbation); Adam lr {args.lr}, batch 64, temperature 2, alpha_kd = alpha_lm = 0.5. BOLD profession "
        f"prompts: up to {args.max_per_profession} per profession x {args.samples} samples (top-k 40).",
        "",
        "```",
        table,
        "```",
        "",
        "Gendered words in the continuations (male / female, all professions): " + ", ".join(
            f"{r.run} {sum(g['male'] for g in r.groups)} / {sum(g['female'] for g in r.groups)}" for r in results),
        "",
        "Wall time (s; a shared 2-core machine with other jobs running, so only roughly comparable): "
        + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
        "",
        f"![bias vs perplexity]({plot.name})",
        "",
        "mean_abs_polarity: mean over professions of |(M - F) / (M + F)| of the gendered words in the "
        "continuations; skewed_share: professions with |polarity| > 0.5; loglik_gap: mean |log p(c|p) - "
        "log p(c'|p')| (nats) over all (prompt, continuation) pairs, loglik_gap_changed: the same over the "
        "changed_pairs the gender swap changed (the others add 0, so the all-pairs mean also falls when a model "
        "writes fewer gendered words); [95 % percentile bootstrap interval, resampling prompts with their samples, "
        "within each profession for the polarity statistics]. A mean of absolute values is biased upwards "
        "under resampling when the polarities are near 0, so for a balanced model the interval can lie above the "
        "point estimate.",
    ]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
