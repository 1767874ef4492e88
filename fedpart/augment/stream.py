"""Counterfactual augmentation of whole inputs: streams of batches, worker processes, the report.

:class:`AugmentedStream` is the streaming entry point (what ``fedpart augment counterfactual`` runs):
batches in, augmented batches out in the same order, memory bounded by a few batches whatever the
input size, optionally over ``workers`` processes (:mod:`fedpart.augment.workers`), with a
:class:`~fedpart.augment.report.CounterfactualReport` at the end. :func:`counterfactual` is the
in-memory convenience wrapper for lists of texts and tables. Rows, modes and columns are described in
:mod:`fedpart.augment.augmenter`; the method follows Lu et al. 2018, Hall Maudslay et al. 2019 and
Gupta et al. 2022.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from fedpart.augment.augmenter import CounterfactualAugmenter, CounterfactualOptions, check_schema
from fedpart.augment.report import CounterfactualReport, ReportCounts, build_report
from fedpart.augment.swapper import GenderSwapper, SwapperConfig
from fedpart.errors import InputError
from fedpart.io.sources import without_views

DEFAULT_BATCH_ROWS = 1024

_worker: CounterfactualAugmenter | None = None


def _init_worker(options: CounterfactualOptions) -> None:
    global _worker
    _worker = CounterfactualAugmenter(options)


def _augment_in_worker(job: tuple[pa.RecordBatch, int | np.ndarray]) -> tuple[pa.RecordBatch, ReportCounts]:
    assert _worker is not None
    return _worker.augment_batch(*job)


Positioned = tuple[pa.RecordBatch, np.ndarray]


def _sliced(
    batches: Iterable[pa.RecordBatch | Positioned], batch_rows: int, first: int = 0
) -> Iterator[tuple[pa.RecordBatch, int | np.ndarray]]:
    """Pieces of at most ``batch_rows`` rows, each with its first row's input position (plain
    batches: rows counted from ``first``) or its rows' positions (``(batch, positions)`` pairs:
    ``first + positions``)."""
    for item in batches:
        batch, positions = item if isinstance(item, tuple) else (item, None)
        for offset in range(0, batch.num_rows, batch_rows):
            piece = batch.slice(offset, batch_rows)
            if positions is None:
                yield piece, first
                first += piece.num_rows
            else:
                yield piece, np.asarray(positions[offset : offset + piece.num_rows], np.int64) + first


def _schema_checked(
    jobs: Iterator[tuple[pa.RecordBatch, int | np.ndarray]], options: CounterfactualOptions
) -> Iterator[tuple[pa.RecordBatch, int | np.ndarray]]:
    """``jobs``, with the first batch's columns checked here before any worker sees it."""
    for n, (batch, first_row) in enumerate(jobs):
        if n == 0:
            check_schema(batch.schema, options)
        yield batch, first_row


class AugmentedStream:
    """The augmented batches of an input stream, in input order; :meth:`report` once consumed.

    Args:
        batches: record batches with the task's canonical columns (any batch size), or
            ``(batch, positions)`` pairs as :meth:`~fedpart.io.sources.Source.iter_batches_with_ids`
            yields them: each row's input position, which skips rows a task reader dropped.
        options: task, mode and swapper settings.
        workers: processes; 1 runs in this process.
        batch_rows: rows per unit of work (input batches are sliced to at most this).
        swapper: a ready swapper for ``workers == 1``.
        first_row: the input position of the first row (a piece of a larger input starts later;
            row positions decide ``cf_of`` without a row id, and ``cds``'s draws); added to the
            ``positions`` of pairs.

    Raises:
        InputError: bad options, pair files or spaCy model (at construction); bad columns or values
            (while iterating).
    """

    def __init__(
        self,
        batches: Iterable[pa.RecordBatch | Positioned],
        options: CounterfactualOptions,
        workers: int = 1,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        swapper: GenderSwapper | None = None,
        first_row: int = 0,
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise InputError(f"workers (--workers) is {workers!r}; it must be a positive integer")
        if not isinstance(batch_rows, int) or batch_rows < 1:
            raise InputError(f"batch_rows is {batch_rows!r}; it must be a positive integer")
        self.workers, self.batch_rows, self.first_row = workers, batch_rows, first_row
        self._batches = batches
        self.counts = ReportCounts()
        if workers == 1:
            self._augmenter: CounterfactualAugmenter | None = CounterfactualAugmenter(options, swapper)
            self._lexicon = self._augmenter.swapper.lexicon
            self.options = options
            self.counts.tagger = self._augmenter.swapper.tagger_description
        else:
            from fedpart.augment.lexicon import load_lexicon, load_name_lexicon
            from fedpart.augment.tagger import check_model_installed, resolve_model_name

            self._augmenter = None
            self._lexicon = load_lexicon(options.swapper.pairs)  # fail fast on bad pair files
            if options.swapper.names:
                load_name_lexicon(options.swapper.name_pairs)
            model = resolve_model_name(options.swapper.spacy_model)  # warns here, once
            if model is not None:
                check_model_installed(model)  # fail here, not in every worker
            self.options = replace(options, swapper=replace(options.swapper, spacy_model=model or "none"))
            self.counts.tagger = model or "heuristic rules"  # the workers report the model's version

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        jobs = _sliced(self._batches, self.batch_rows, self.first_row)
        if self._augmenter is not None:
            augmenter = self._augmenter
            results: Iterator[tuple[pa.RecordBatch, ReportCounts]] = (augmenter.augment_batch(b, o) for b, o in jobs)
        else:
            from fedpart.augment.workers import map_ordered

            results = map_ordered(
                _augment_in_worker, _schema_checked(jobs, self.options), self.workers, _init_worker, (self.options,)
            )
        for out, counts in results:
            self.counts.add(counts)
            yield out

    def report(self) -> CounterfactualReport:
        """The report of the batches consumed so far (all of them once iteration has finished)."""
        return report_of(self.counts, self.options, self._lexicon)


def merged_report(counts: Sequence[ReportCounts], options: CounterfactualOptions) -> CounterfactualReport:
    """The report of several streams augmented with ``options`` (files, shards or pieces of one
    input), their counts summed; the tagger named is the first stream's."""
    total = ReportCounts()
    for part in counts:
        total.add(part)
    total.tagger = counts[0].tagger if counts else ""
    return report_of(total, options)


def report_of(counts: ReportCounts, options: CounterfactualOptions, lexicon: Any = None) -> CounterfactualReport:
    """The report of ``counts`` (merged from one or more streams) augmented with ``options``."""
    if lexicon is None:
        from fedpart.augment.lexicon import load_lexicon

        lexicon = load_lexicon(options.swapper.pairs)
    cds = options.mode == "cds"
    return build_report(
        counts,
        task=options.task,
        mode=options.mode,
        p=options.p if cds else None,
        seed=options.seed if cds else None,
        names=options.swapper.names,
        lexicon_version=lexicon.version,
        lexicon_pairs=lexicon.pair_count,
        pair_files=options.swapper.pairs,
    )


# -- the convenience entry point -------------------------------------------------------------------


def _as_batches(data: Any, batch_rows: int) -> tuple[Iterable[pa.RecordBatch], pa.Schema]:
    if isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        # string_view columns (polars' Arrow output) read as large_string, as the file readers do
        schema = without_views(data.schema)
        if schema is not data.schema:
            data = data.cast(schema)
    if isinstance(data, pa.Table):
        return data.to_batches(max_chunksize=batch_rows), data.schema
    if isinstance(data, pa.RecordBatch):
        return [data], data.schema
    if isinstance(data, pa.RecordBatchReader):
        return data, data.schema
    if isinstance(data, (list, tuple)):
        if data and all(isinstance(b, pa.RecordBatch) for b in data):
            return data, data[0].schema
        for i, value in enumerate(data):
            if value is not None and not isinstance(value, str):
                raise InputError(
                    f"texts[{i}] is {type(value).__name__} {value!r:.60}, expected a string or None; "
                    "convert the values to str or pass a table"
                )
        table = pa.table({"text": pa.array(list(data), pa.string())})
        return table.to_batches(max_chunksize=batch_rows), table.schema
    if isinstance(data, str):
        raise InputError("counterfactual() takes a list of texts or a table, not a single string; use GenderSwapper.swap")
    if hasattr(data, "to_arrow"):  # polars DataFrame
        return _as_batches(data.to_arrow(), batch_rows)
    if type(data).__module__.startswith("pandas"):
        return _as_batches(pa.Table.from_pandas(data, preserve_index=False), batch_rows)
    raise InputError(
        f"cannot augment a {type(data).__name__}; pass a list of texts, a pyarrow Table/RecordBatch/"
        "RecordBatchReader, or a polars/pandas DataFrame"
    )


def counterfactual(
    data: Any,
    task: str = "tc",
    *,
    text_cols: Sequence[str] | str | None = None,
    mode: str = "replace",
    p: float = 0.5,
    seed: int = 0,
    names: bool = False,
    pairs: Sequence[str] | str | None = None,
    name_pairs: str | None = None,
    spacy_model: str | None = "auto",
    append_unchanged: bool = False,
    workers: int = 1,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    swapper: GenderSwapper | None = None,
    also_swap: Sequence[str] | str = (),
) -> tuple[pa.Table, CounterfactualReport]:
    """Counterfactual (gender-swapped) augmentation of a list of texts or a task table.

    Args:
        data: a list of strings (None allowed; becomes a ``text`` column), a pyarrow Table,
            RecordBatch or RecordBatchReader, or a polars/pandas DataFrame with the task's columns.
        task: ``tc`` (default), ``st``, ``qa``, ``s2s`` or ``lm``; see the module docstring for columns.
        text_cols: for ``tc``, the text column(s) to swap (default ``text``).
        mode: ``replace``, ``append`` (two-sided CDA) or ``cds`` (substitution with probability ``p``).
        p, seed: probability and seed of ``cds``.
        names: also swap first names (built-in list, or ``name_pairs``).
        pairs: user pair file(s) that add to or override the built-in lexicon.
        spacy_model: ``"auto"``, ``"none"``, or an installed spaCy model name or path.
        append_unchanged: in ``append`` mode, also append counterfactuals without swaps.
        workers: processes (1: this process).
        batch_rows: rows per unit of work.
        swapper: a ready :class:`GenderSwapper` (overrides names/pairs/name_pairs/spacy_model).
        also_swap: other string columns to swap by the same rules, for any task (e.g. the extra
            reference summaries of a multi-reference test set); other columns are copied unchanged.

    Returns:
        (table, report): the input's columns plus ``cf_of``, ``is_counterfactual``, ``n_swaps``; and
        the :class:`~fedpart.augment.report.CounterfactualReport`.

    Raises:
        InputError: bad options, a missing or non-string text column, non-string values, a bad pair
            file, or a spaCy model that is not installed.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1:
        raise InputError(f"batch_rows must be an integer >= 1, got {batch_rows!r}")
    if isinstance(text_cols, str):
        text_cols = tuple(c.strip() for c in text_cols.split(","))
    elif text_cols is not None and not isinstance(text_cols, Sequence):
        raise InputError(f"text_cols (--text-col) must be column names (a str or a list of them), got {text_cols!r}")
    if isinstance(pairs, str):
        pairs = (pairs,)
    config = (
        swapper.config
        if swapper is not None
        else SwapperConfig(
            tuple(str(p_) for p_ in pairs or ()), names, None if name_pairs is None else str(name_pairs), spacy_model
        )
    )
    if isinstance(also_swap, str):
        also_swap = tuple(c.strip() for c in also_swap.split(",") if c.strip())
    elif not isinstance(also_swap, Sequence):
        raise InputError(f"also_swap (--also-swap) must be column names (a str or a list of them), got {also_swap!r}")
    options = CounterfactualOptions(task, None if text_cols is None else tuple(text_cols), mode, p, seed, append_unchanged,
                                    config, also_swap=tuple(also_swap))
    batches, schema = _as_batches(data, batch_rows)
    out_schema = check_schema(schema, options)
    stream = AugmentedStream(batches, options, workers, batch_rows, swapper)
    table = pa.Table.from_batches(list(stream), schema=out_schema)
    return table, stream.report()
