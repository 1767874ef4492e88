"""Benchmark: counterfactual augmentation speed on real news text, fedpart vs. naive full tagging.

Corpus: AG News test split (``../shared/data/ag_news/test.csv``; title and description of each of
7,600 articles, about 287k words), replicated to ``--words`` words and streamed as Arrow batches.

Pipelines (same lexicon, same her/his rules, same case handling -- they differ only in how tags are
obtained):

* ``fedpart``: :class:`fedpart.augment.AugmentedStream` (tc task, columns title and description),
  1 worker and ``--workers`` workers. Only her/his whose role depends on the tag are tagged, in exact
  context windows, batched, with tok2vec + tagger only.
* ``naive-full``: ``nlp.pipe`` over every text with the default pipeline (tagger, parser, NER,
  lemmatizer...), then the swapper's own rules, her/his by the tag of their spaCy token
  (:class:`FullTextTagger` in place of fedpart's windowed tagger).
* ``naive-tagger``: the same with only tok2vec + tagger enabled (what disabling components alone buys).

The naive pipelines run on the base corpus (``--naive-words``, default all of it); fedpart's output
on every replica must equal naive-full's output text for text. Peak memory (max RSS) of a 1-worker
fedpart run is measured in fresh processes at two corpus sizes to show it does not grow with input.

Run:  .venv/bin/python bench/counterfactual.py   (writes bench/results/counterfactual.md)
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
AG_NEWS = ROOT.parent / "shared" / "data" / "ag_news" / "test.csv"
RESULTS = ROOT / "bench" / "results" / "counterfactual.md"


def load_ag_news(path: Path) -> pa.Table:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return pa.table(
        {
            "label": pa.array([int(r[0]) for r in rows], pa.int64()),
            "title": pa.array([r[1] for r in rows], pa.string()),
            "description": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def count_words(table: pa.Table) -> int:
    return sum(len(t.split()) for c in ("title", "description") for t in table.column(c).to_pylist())


def replicated_batches(table: pa.Table, copies: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
    for _ in range(copies):
        yield from table.to_batches(max_chunksize=batch_rows)


def run_fedpart(table: pa.Table, copies: int, workers: int, batch_rows: int, keep: bool) -> dict:
    from fedpart.augment import AugmentedStream, CounterfactualOptions, GenderSwapper

    options = CounterfactualOptions(task="tc", text_cols=("title", "description"), mode="replace")
    swapper = GenderSwapper() if workers == 1 else None  # model load outside the timing for 1 worker
    cpu_start = time.process_time()
    start = time.perf_counter()
    stream = AugmentedStream(replicated_batches(table, copies, batch_rows), options, workers, batch_rows, swapper)
    outputs: list[tuple[list[str], list[str]]] = []
    first = None
    rows_after_first = 0
    for batch in stream:
        if first is None:
            first = time.perf_counter()
        else:
            rows_after_first += batch.num_rows
        if keep:
            outputs.append((batch.column("title").to_pylist(), batch.column("description").to_pylist()))
    end = time.perf_counter()
    cpu = time.process_time() - cpu_start
    report = stream.report()
    return {
        "seconds": end - start,
        "cpu_seconds": cpu,
        "startup": (first or end) - start,
        "steady_seconds": end - (first or end),
        "rows_after_first": rows_after_first,
        "rows": report.rows_read,
        "outputs": outputs,
        "report": report,
    }


class FullTextTagger:
    """The naive way to get tags: ``nlp.pipe`` over every text of the call (whether or not it has a
    word to disambiguate), with whatever pipeline ``nlp`` runs; a site's tag is its spaCy token's.
    Texts are tagged as :class:`fedpart.augment.tagger.PosTagger` sees them (their ``tagging_view``),
    so the two differ only in how much they tag."""

    def __init__(self, nlp: Any) -> None:
        self.nlp, self.tokens = nlp, 0

    @property
    def description(self) -> str:
        return f"naive {'+'.join(self.nlp.pipe_names)}"

    def tag(self, texts: Sequence[str], sites: Sequence[tuple[int, int, int]]) -> list[str | None]:
        from fedpart.augment.tagger import tagging_view

        views = [tagging_view(text) for text in texts]
        docs = list(self.nlp.pipe([view for view, _ in views], batch_size=256))
        self.tokens += sum(len(doc) for doc in docs)
        tags: list[str | None] = []
        for i, start, end in sites:
            shift = views[i][1]
            span = docs[i].char_span(*((shift(start), shift(end)) if shift is not None else (start, end)))
            tags.append(span[0].tag_ if span is not None and len(span) == 1 else None)
        return tags


def run_naive(texts: list[str], full_pipeline: bool) -> tuple[list[str], float, int]:
    """nlp.pipe over every text, then the swapper's own rules with its tags (:class:`FullTextTagger`).

    Returns (outputs, CPU seconds of this process, spaCy tokens).
    """
    import spacy

    from fedpart.augment import GenderSwapper
    from fedpart.augment.tagger import resolve_model_name

    nlp = spacy.load(resolve_model_name("auto"))
    if not full_pipeline:
        nlp.select_pipes(enable=["tok2vec", "tagger"])
    tagger = FullTextTagger(nlp)
    swapper = GenderSwapper(tagger=tagger)
    start = time.process_time()
    out = [result.text for result in swapper.swap_texts(texts)]
    return out, time.process_time() - start, tagger.tokens


def rss_child(copies: int, batch_rows: int) -> None:
    """Run fedpart (1 worker) over ``copies`` replicas without keeping outputs; print max RSS (MiB)."""
    table = load_ag_news(AG_NEWS)
    run_fedpart(table, copies, 1, batch_rows, keep=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def measure_rss(copies: int, batch_rows: int) -> float:
    result = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(copies), "--batch-rows", str(batch_rows)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1_500_000, help="corpus size for fedpart (words)")
    parser.add_argument("--naive-words", type=int, default=0, help="words for the naive runs (0: base corpus)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=1024)
    parser.add_argument("--rss-copies", type=str, default="2,12", help="replica counts for the memory check")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.batch_rows)
        return

    table = load_ag_news(AG_NEWS)
    base_words = count_words(table)
    copies = max(1, round(args.words / base_words))
    words = base_words * copies
    print(f"AG News: {table.num_rows} rows, {base_words:,} words; x{copies} = {words:,} words", flush=True)

    results = {}
    for workers in (1, args.workers):
        run = run_fedpart(table, copies, workers, args.batch_rows, keep=True)
        results[workers] = run
        steady_words = words * run["rows_after_first"] / max(1, run["rows"])
        cpu_note = f", {words / run['cpu_seconds']:,.0f} words per CPU-second" if workers == 1 else ""
        print(
            f"fedpart, {workers} worker(s): {run['seconds']:.1f} s, {words / run['seconds']:,.0f} words/s{cpu_note} "
            f"(startup {run['startup']:.1f} s; after the first batch {steady_words / max(run['steady_seconds'], 1e-9):,.0f} words/s)",
            flush=True,
        )

    naive_rows = table
    if args.naive_words:
        per_row = base_words / table.num_rows
        naive_rows = table.slice(0, max(1, int(args.naive_words / per_row)))
    naive_texts = [t for c in ("title", "description") for t in naive_rows.column(c).to_pylist()]
    naive_words = count_words(naive_rows)
    naive = {}
    for full in (True, False):
        out, seconds, tokens = run_naive(naive_texts, full)
        naive[full] = (out, seconds, tokens)
        name = "naive-full" if full else "naive-tagger"
        print(f"{name}: {naive_words:,} words in {seconds:.1f} CPU s, {naive_words / seconds:,.0f} words/s, {tokens / seconds:,.0f} tokens/s", flush=True)

    # identical output: every replica's rows against naive-full on the base rows
    expected_title = naive[True][0][: naive_rows.num_rows]
    expected_desc = naive[True][0][naive_rows.num_rows :]
    mismatches = {1: 0, args.workers: 0}
    compared = 0
    for workers, run in results.items():
        titles = [t for ts, _ in run["outputs"] for t in ts]
        descs = [d for _, ds in run["outputs"] for d in ds]
        for i in range(len(titles)):
            j = i % table.num_rows
            if j >= naive_rows.num_rows:
                continue
            compared += workers == 1
            if titles[i] != expected_title[j] or descs[i] != expected_desc[j]:
                mismatches[workers] += 1
    tagger_same = sum(a != b for a, b in zip(naive[True][0], naive[False][0]))
    print(f"identical output: {compared:,} rows compared; mismatches {mismatches}; naive-full vs naive-tagger differ on {tagger_same}", flush=True)

    rss = {}
    for n in (int(c) for c in args.rss_copies.split(",")):
        rss[n] = measure_rss(n, args.batch_rows)
        print(f"max RSS, 1 worker, {n * base_words:,} words: {rss[n]:.0f} MiB", flush=True)

    report = results[1]["report"]
    one, many = results[1], results[args.workers]
    load = os.getloadavg()
    lines = [
        "# Counterfactual augmentation benchmark (`bench/counterfactual.py`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (the machine is shared with other jobs, so absolute numbers vary from run to run; "
        "the ratios are the point). Tagger: " + report.tagger + ".",
        "",
        f"Corpus: AG News test, title + description, {base_words:,} words, replicated x{copies} = {words:,} words "
        f"for fedpart; the naive pipelines ran on {naive_words:,} words.",
        "",
        "Throughput on one core is measured in CPU seconds of the process (`time.process_time`), which "
        "does not count time spent waiting for a CPU held by other jobs; wall-clock numbers are given too. "
        "The naive pipelines run in one process, so their CPU time is their one-core time.",
        "",
        "| pipeline | words | CPU s | words per CPU-second | wall s | words/s (wall) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| fedpart, 1 worker | {words:,} | {one['cpu_seconds']:.1f} | {words / one['cpu_seconds']:,.0f} | {one['seconds']:.1f} | {words / one['seconds']:,.0f} |",
        f"| fedpart, {args.workers} workers (wall includes {many['startup']:.1f} s to start workers and load the model) | {words:,} | | | {many['seconds']:.1f} | {words / many['seconds']:,.0f} |",
        f"| naive-full: nlp.pipe over every text, default pipeline | {naive_words:,} | {naive[True][1]:.1f} | {naive_words / naive[True][1]:,.0f} ({naive[True][2] / naive[True][1]:,.0f} tokens/s) | | |",
        f"| naive-tagger: nlp.pipe over every text, tok2vec+tagger only | {naive_words:,} | {naive[False][1]:.1f} | {naive_words / naive[False][1]:,.0f} ({naive[False][2] / naive[False][1]:,.0f} tokens/s) | | |",
        "",
        f"fedpart (1 worker) vs naive-full: {(words / one['cpu_seconds']) / (naive_words / naive[True][1]):.0f}x the words per CPU-second; "
        f"vs naive-tagger: {(words / one['cpu_seconds']) / (naive_words / naive[False][1]):.0f}x. "
        f"{args.workers} workers vs 1 worker, wall clock after the first batch: "
        f"{(many['rows_after_first'] / max(many['steady_seconds'], 1e-9)) / (one['rows_after_first'] / max(one['steady_seconds'], 1e-9)):.2f}x "
        f"(this machine has {os.cpu_count()} CPUs, shared with other jobs).",
        "",
        f"Identical output: {compared:,} fedpart rows (every replica of the base rows) compared with naive-full: "
        f"{mismatches[1]} mismatches with 1 worker, {mismatches[args.workers]} with {args.workers} workers.",
        f"Rows changed: {report.rows_changed:,} of {report.rows_read:,}; words swapped: {report.swaps:,}.",
        "",
        "Peak memory (max RSS) of a 1-worker run, fresh process, outputs discarded: "
        + ", ".join(f"{n * base_words:,} words: {v:.0f} MiB" for n, v in rss.items())
        + ".",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
