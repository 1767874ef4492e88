"""One batch of a task table -> its counterfactual batch: per-task columns, modes, output columns.

Three modes, after the CDA literature:

* ``replace`` -- every row becomes its counterfactual (the role-reversed data of Gupta et al. 2022);
* ``append`` -- each original row is followed by its counterfactual: two-sided CDA (Lu et al. 2018,
  Webster et al. 2020). Counterfactuals identical to their source are left out unless
  ``append_unchanged`` (they would only duplicate rows);
* ``cds`` -- Counterfactual Data Substitution (Hall Maudslay et al. 2019): each row is replaced by its
  counterfactual independently with probability ``p``, decided by ``(seed, row_id)`` -- the row's
  integer ``row_id`` when the input has one (partition shards do, so a partition gets the same
  draws as the whole input), else its 0-based position in the input, counting rows a task reader
  dropped as invalid (:mod:`fedpart.augment.substitution`).

Task columns (fedpart's canonical names; other columns are copied unchanged):

* ``tc``: the ``text_cols`` (default ``text``) are swapped; ``label`` is kept; ``text_parts`` (raw
  columns that ``text`` was joined from with a space, e.g. ``title`` and ``description``) are re-cut
  from the swapped ``text`` so the join still holds (rows where it did not hold get their parts
  swapped on their own);
* ``st``: ``tokens`` are swapped one-for-one, so ``tags`` stay aligned; with names on, names are
  swapped only inside PER/PERSON entities;
* ``qa``: ``context`` and ``question`` are swapped; each answer's text is re-cut from the swapped
  context at the recomputed ``answer_start``, so ``context[answer_start:answer_start+len(text)] ==
  text`` holds for every answer whose input span held (``title`` is kept). A context word that an
  answer boundary cuts is swapped when its part on one side of the cut stays (``chair|man`` ->
  ``chair|woman``: the answer starting at the cut becomes ``woman ...``), else left unswapped, so
  the answer keeps a meaningful text (answer ``son`` inside ``sons``); such words are counted
  (``qa_words_kept``);
* ``s2s``: ``source`` and ``target`` are swapped by the same rules;
* ``lm``: ``text`` is swapped (what a partition made with ``--task lm`` holds).

Every output row has the input's columns plus ``cf_of`` (the source row's ``row_id`` if the input has
one, else its 0-based position in the input, counting rows a task reader dropped as invalid;
originals carry their own), ``is_counterfactual`` (the row came out of the swapper -- in ``cds`` also
when no word in it changed) and ``n_swaps`` (words swapped in the row; 0 for originals). Null texts
stay null and are counted.
Grouping by ``cf_of`` keeps a row and its counterfactual together (e.g. on one client).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from fedpart.augment.report import ReportCounts
from fedpart.augment.substitution import substitution_mask
from fedpart.augment.swapper import GenderSwapper, SwappedText, SwapperConfig
from fedpart.checks import check_seed
from fedpart.errors import InputError

TASKS = ("tc", "st", "qa", "s2s", "lm")
MODES = ("replace", "append", "cds")
ROW_ID = "row_id"
CF_OF, IS_COUNTERFACTUAL, N_SWAPS = "cf_of", "is_counterfactual", "n_swaps"
OUTPUT_COLUMNS = (CF_OF, IS_COUNTERFACTUAL, N_SWAPS)


@dataclass(frozen=True)
class CounterfactualOptions:
    """What to augment and how (validated on construction; picklable for worker processes).

    Attributes:
        task: ``tc``, ``st``, ``qa``, ``s2s`` or ``lm``.
        text_cols: for ``tc``, the string columns to swap (default ``("text",)``).
        mode: ``replace``, ``append`` or ``cds``.
        p: the substitution probability of ``cds``.
        seed: the seed of ``cds``.
        append_unchanged: in ``append`` mode, also append counterfactuals with no swaps.
        swapper: how to build the :class:`GenderSwapper`.
        text_parts: for ``tc``, raw columns that ``text`` was joined from (re-cut from the swapped
            ``text``; see the module docstring).
        row_id_col: the column of each row's input position (a partition's ``--row-id-col``):
            ``cf_of`` and the ``cds`` draws use it when the input has it.
        also_swap: other string columns to swap by the same rules, for any task (``--also-swap``:
            e.g. DialogSum test's extra references ``summary2``, ``summary3``); other columns are
            copied unchanged.
    """

    task: str = "tc"
    text_cols: tuple[str, ...] | None = None
    mode: str = "replace"
    p: float = 0.5
    seed: int = 0
    append_unchanged: bool = False
    swapper: SwapperConfig = field(default_factory=SwapperConfig)
    text_parts: tuple[str, ...] = ()
    row_id_col: str = ROW_ID
    also_swap: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r} (--task); use one of {', '.join(TASKS)}")
        if self.mode not in MODES:
            raise InputError(f"unknown mode {self.mode!r} (--mode); use one of {', '.join(MODES)}")
        if not (isinstance(self.p, (int, float)) and 0.0 <= self.p <= 1.0):
            raise InputError(f"p (--p) is {self.p!r}; it must be a probability between 0 and 1")
        check_seed(self.seed)
        if self.text_cols is not None:
            if self.task != "tc":
                raise InputError(f"text_cols (--text-col) applies to task tc only, not {self.task!r}")
            if isinstance(self.text_cols, str) or not self.text_cols or not all(isinstance(c, str) for c in self.text_cols):
                raise InputError(f"text_cols must be a non-empty tuple of column names, got {self.text_cols!r}")
        if self.text_parts and (self.task != "tc" or self.text_cols not in (None, ("text",))):
            raise InputError("text_parts applies to task tc with the text column 'text' only")
        if isinstance(self.also_swap, str) or not all(isinstance(c, str) and c for c in self.also_swap):
            raise InputError(f"also_swap (--also-swap) must be a tuple of column names, got {self.also_swap!r}")
        object.__setattr__(self, "also_swap", tuple(dict.fromkeys(self.also_swap)))
        own = {*self.task_columns, *TASK_COLUMNS[self.task], *self.text_parts, self.row_id_col, *OUTPUT_COLUMNS}
        taken = [c for c in self.also_swap if c in own]
        if taken:
            raise InputError(f"--also-swap {taken[0]}: is a column the task {self.task} reads or fedpart writes; "
                             "--also-swap names other string columns to swap as well")

    @property
    def task_columns(self) -> tuple[str, ...]:
        """The string columns the task itself swaps as whole texts."""
        if self.task == "tc":
            return tuple(self.text_cols or ("text",))
        return {"st": (), "qa": ("context", "question"), "s2s": ("source", "target"), "lm": ("text",)}[self.task]

    @property
    def string_columns(self) -> tuple[str, ...]:
        """Every string column swapped as whole texts: the task's, then ``also_swap``."""
        return (*self.task_columns, *self.also_swap)


#: the non-text columns each task reads (kept aligned, never swapped as texts)
TASK_COLUMNS = {"tc": ("label",), "st": ("tokens", "tags"), "qa": ("answers", "id", "title"), "s2s": (), "lm": ()}


# -- schema checks ---------------------------------------------------------------------------------


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_string_list(kind: pa.DataType) -> bool:
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and _is_string(kind.value_type)


def _require(schema: pa.Schema, column: str, task: str, flag: str) -> pa.Field:
    if column not in schema.names:
        raise InputError(
            f"no column {column!r} to swap for task {task}; the input has columns "
            f"{', '.join(schema.names) or '(none)'} -- {flag}"
        )
    return schema.field(column)


def check_schema(schema: pa.Schema, options: CounterfactualOptions) -> pa.Schema:
    """The output schema for input ``schema``: the input's fields plus cf_of, is_counterfactual, n_swaps.

    Raises:
        InputError: a column the task needs is missing (the message lists the input's columns) or
            has the wrong type, or the input already has one of the output columns.
    """
    hint = {
        "tc": "name the text columns with text_cols= (--text-col), e.g. title,description",
        "st": "the st task needs tokens: list<string> (and tags: list<string>)",
        "qa": "the qa task needs context, question and answers{text, answer_start}",
        "s2s": "the s2s task needs source and target string columns",
        "lm": "the lm task needs a text string column",
    }[options.task]
    for column in (*options.task_columns, *options.text_parts):
        f = _require(schema, column, options.task, hint)
        if not _is_string(f.type):
            raise InputError(f"column {column!r} has type {f.type}, expected strings; {hint}")
    for column in options.also_swap:
        if column not in schema.names:
            raise InputError(f"--also-swap {column}: no such column; the input has columns {', '.join(schema.names)}")
        if not _is_string(schema.field(column).type):
            raise InputError(f"--also-swap {column}: has type {schema.field(column).type}; it names string columns")
    if options.task == "st":
        for column in ("tokens", "tags"):
            if column == "tags" and column not in schema.names:
                continue
            f = _require(schema, column, options.task, hint)
            if not _is_string_list(f.type):
                raise InputError(f"column {column!r} has type {f.type}, expected list<string>; {hint}")
    if options.task == "qa":
        f = _require(schema, "answers", options.task, hint)
        kind = f.type
        names = [kind.field(k).name for k in range(kind.num_fields)] if pa.types.is_struct(kind) else []
        if "text" not in names or "answer_start" not in names or not _is_string_list(kind.field("text").type):
            raise InputError(f"column 'answers' has type {kind}, expected struct<text: list<string>, answer_start: list<int>>")
    clash = [c for c in OUTPUT_COLUMNS if c in schema.names]
    if clash:
        raise InputError(
            f"the input already has column(s) {', '.join(clash)}; it looks augmented already -- "
            "drop or rename those columns first"
        )
    id_col = options.row_id_col
    id_type = schema.field(id_col).type if id_col in schema.names else pa.int64()
    return schema.append(pa.field(CF_OF, id_type)).append(pa.field(IS_COUNTERFACTUAL, pa.bool_())).append(
        pa.field(N_SWAPS, pa.int32())
    )


# -- one batch -------------------------------------------------------------------------------------


@dataclass
class _Counterfactuals:
    """Swapped replacement columns for some rows of a batch, and what was swapped."""

    columns: dict[str, pa.Array]
    n_swaps: np.ndarray
    pairs: dict[int, Counter[str]]  # only rows with swaps


class CounterfactualAugmenter:
    """Turns canonical batches into augmented batches (one instance per process).

    Args:
        options: the task, mode and swapper settings.
        swapper: a ready swapper (else one is built from ``options.swapper``).
    """

    def __init__(self, options: CounterfactualOptions, swapper: GenderSwapper | None = None) -> None:
        self.options = options
        self.swapper = swapper if swapper is not None else GenderSwapper.from_config(options.swapper)
        self._known = self.swapper.lexicon.words()

    def augment_batch(
        self, batch: pa.RecordBatch, first_row: int | np.ndarray
    ) -> tuple[pa.RecordBatch, ReportCounts]:
        """Augment ``batch``, whose first row is row ``first_row`` of the whole input -- or, given an
        int64 array of ``batch.num_rows`` entries, whose rows are at those input positions (a reader
        that dropped invalid rows skips their positions, so ``cf_of`` and the ``cds`` draws stay
        those of the row in the input).

        Returns the output batch (schema :func:`check_schema`) and this batch's counts.
        """
        options = self.options
        out_schema = check_schema(batch.schema, options)
        n = batch.num_rows
        counts = ReportCounts(rows_read=n, tagger=self.swapper.tagger_description)
        if isinstance(first_row, np.ndarray):
            if len(first_row) != n:
                raise ValueError(f"{len(first_row)} row positions for a batch of {n} rows")
            rows = first_row.astype(np.int64, copy=False)
        else:
            rows = np.arange(first_row, first_row + n, dtype=np.int64)
        if options.mode == "cds":
            keys = draw_keys(batch, rows, options.row_id_col)
            chosen = np.flatnonzero(substitution_mask(keys, options.p, options.seed))
        else:
            chosen = np.arange(n)
        self._count_inputs(batch, counts)
        chosen_rows = batch if len(chosen) == n else batch.take(pa.array(chosen, pa.int64()))
        cf = self._counterfactuals(chosen_rows, counts)
        id_col = options.row_id_col
        cf_ids = rows if id_col not in batch.schema.names else batch.column(id_col)

        cf_batch = _with_meta(
            _replace_columns(chosen_rows, cf.columns),
            _take(cf_ids, chosen),
            True,
            cf.n_swaps,
            out_schema,
        )
        if options.mode == "replace":
            out, written_cf = cf_batch, np.arange(len(chosen))
        else:
            original = _with_meta(batch, cf_ids, False, np.zeros(n, np.int32), out_schema)
            if options.mode == "append":
                keep = np.arange(len(chosen)) if options.append_unchanged else np.flatnonzero(cf.n_swaps > 0)
                # row r of the original, then its counterfactual if kept: sort by (row, is_cf)
                order_keys = np.concatenate([np.arange(n) * 2, chosen[keep] * 2 + 1])
                source = np.concatenate([np.arange(n), n + keep])
            else:  # cds: chosen rows are replaced in place
                replaced = np.zeros(n, bool)
                replaced[chosen] = True
                order_keys = np.concatenate([np.flatnonzero(~replaced), chosen])
                source = np.concatenate([np.flatnonzero(~replaced), n + np.arange(len(chosen))])
                keep = np.arange(len(chosen))
            order = source[np.argsort(order_keys, kind="stable")]
            table = pa.Table.from_batches([original, cf_batch], schema=out_schema)
            out = table.take(pa.array(order, pa.int64())).combine_chunks().to_batches()
            out = out[0] if out else pa.RecordBatch.from_pylist([], schema=out_schema)
            written_cf = keep
        counts.rows_written = out.num_rows
        counts.counterfactual_rows = len(written_cf)
        counts.rows_changed = int(np.count_nonzero(cf.n_swaps[written_cf] > 0))
        counts.swaps = int(cf.n_swaps[written_cf].sum())
        for k in written_cf.tolist():
            if k in cf.pairs:
                counts.swaps_per_pair.update(cf.pairs[k])
        return out, counts

    def _count_inputs(self, batch: pa.RecordBatch, counts: ReportCounts) -> None:
        """Null texts per column and unknown gendered-looking words, over all rows read."""
        for column in self.options.string_columns:
            values = batch.column(column)
            counts.null_texts[column] += values.null_count
            texts = values.to_pylist()
            if column == "context":
                texts = list(dict.fromkeys(texts))  # SQuAD repeats a context for each question
            counts.count_unknown(texts, self._known)
        if self.options.task == "st":
            values = batch.column("tokens")
            counts.null_texts["tokens"] += values.null_count
            counts.count_unknown((" ".join(t or "" for t in tokens) for tokens in values.to_pylist() if tokens), self._known)

    def _counterfactuals(self, rows: pa.RecordBatch, counts: ReportCounts) -> _Counterfactuals:
        task = self.options.task
        n = rows.num_rows
        n_swaps = np.zeros(n, np.int32)
        pairs: dict[int, Counter[str]] = {}
        columns: dict[str, pa.Array] = {}

        def tally(results: Sequence[Any]) -> None:
            for k, result in enumerate(results):
                n_swaps[k] += result.n_swaps
                if result.swaps:
                    pairs.setdefault(k, Counter()).update(s.pair for s in result.swaps)

        if task == "st":
            tags = rows.column("tags").to_pylist() if "tags" in rows.schema.names else None
            results = self.swapper.swap_token_lists(rows.column("tokens").to_pylist(), tags)
            tally(results)
            columns["tokens"] = pa.array([r.tokens for r in results], type=rows.schema.field("tokens").type)
            self._swap_columns(rows, self.options.also_swap, tally, columns)
            return _Counterfactuals(columns, n_swaps, pairs)

        string_cols = list(self.options.task_columns)
        values = {c: rows.column(c).to_pylist() for c in string_cols}
        if task == "qa":
            # swap each distinct context once; questions are swapped in the same tagger pass
            unique = list(dict.fromkeys(values["context"]))
            bounds = answer_bounds(values["context"], rows.column("answers").to_pylist())
            batch_texts = [*unique, *values["question"]]
            protect = [bounds.get(c) for c in unique] + [None] * n
            swapped = self.swapper.swap_texts(batch_texts, protect)
            counts.qa_words_kept += sum(r.kept for r in swapped[: len(unique)])
            by_context = dict(zip(unique, swapped[: len(unique)]))
            contexts = [by_context[c] for c in values["context"]]
            questions = swapped[len(unique) :]
            tally(contexts)
            tally(questions)
            columns["context"] = pa.array([r.text for r in contexts], type=rows.schema.field("context").type)
            columns["question"] = pa.array([r.text for r in questions], type=rows.schema.field("question").type)
            columns["answers"] = self._answers(rows, values["context"], contexts, counts)
            self._swap_columns(rows, self.options.also_swap, tally, columns)
            return _Counterfactuals(columns, n_swaps, pairs)

        swapped = self._swap_columns(rows, self.options.string_columns, tally, columns)
        if self.options.text_parts:
            columns.update(self._text_parts(rows, values["text"], swapped[:n]))
        return _Counterfactuals(columns, n_swaps, pairs)

    def _swap_columns(self, rows: pa.RecordBatch, names: Sequence[str], tally: Callable[[Sequence[Any]], None],
                      columns: dict[str, pa.Array]) -> list[SwappedText]:
        """Swap the string columns ``names`` of ``rows`` in one pass of the swapper (one tagger pass),
        put them in ``columns``, ``tally`` each column's results; return the results, column after
        column."""
        if not names:
            return []
        n = rows.num_rows
        swapped = self.swapper.swap_texts([text for c in names for text in rows.column(c).to_pylist()])
        for j, column in enumerate(names):
            part = swapped[j * n : (j + 1) * n]
            tally(part)
            columns[column] = pa.array([r.text for r in part], type=rows.schema.field(column).type)
        return swapped

    def _text_parts(
        self, rows: pa.RecordBatch, texts: list[str | None], swapped: list[SwappedText]
    ) -> dict[str, pa.Array]:
        """The ``text_parts`` columns re-cut from the swapped ``text``; rows whose ``text`` is not
        the join of their parts get the parts swapped on their own (counted with ``text``'s swaps)."""
        names = self.options.text_parts
        parts = [rows.column(c).to_pylist() for c in names]
        out: list[list[str | None]] = [[] for _ in names]
        alone: list[tuple[int, int]] = []  # (part, row) swapped on their own
        for r, (text, result) in enumerate(zip(texts, swapped)):
            values = [column[r] for column in parts]
            cut = recut_parts(text, values, result)
            if cut is None:
                alone.extend((k, r) for k in range(len(names)))
                cut = values
            for k, value in enumerate(cut):
                out[k].append(value)
        if alone:
            for (k, r), res in zip(alone, self.swapper.swap_texts([parts[k][r] for k, r in alone])):
                out[k][r] = res.text
        return {c: pa.array(out[k], type=rows.schema.field(c).type) for k, c in enumerate(names)}

    def _answers(
        self, rows: pa.RecordBatch, contexts: list[str | None], swapped: list[SwappedText], counts: ReportCounts
    ) -> pa.Array:
        """Answers re-cut from the swapped contexts, ``answer_start`` recomputed."""
        answers = rows.column("answers")
        kind = answers.type
        ids = rows.column("id").to_pylist() if "id" in rows.schema.names else list(range(len(answers)))
        new_texts: list[list[str | None] | None] = []
        new_starts: list[list[int | None] | None] = []
        misaligned: list[tuple[int, int, str]] = []
        for r, answer in enumerate(answers.to_pylist()):
            if answer is None or answer["text"] is None or answer["answer_start"] is None:
                new_texts.append(None if answer is None else answer["text"])
                new_starts.append(None if answer is None else answer["answer_start"])
                continue
            context, result = contexts[r], swapped[r]
            if len(answer["text"]) != len(answer["answer_start"]):
                raise InputError(
                    f"answers of question {ids[r]!r} have {len(answer['text'])} text(s) but "
                    f"{len(answer['answer_start'])} answer_start(s); every answer needs both"
                )
            texts, starts = [], []
            for k, (text, start) in enumerate(zip(answer["text"], answer["answer_start"])):
                counts.qa_answers += 1
                if text is None or start is None or context is None:
                    texts.append(text)
                    starts.append(start)
                    continue
                if context[start : start + len(text)] == text:
                    new_start, new_end = result.map_offset(start), result.map_offset(start + len(text))
                    texts.append(result.text[new_start:new_end])  # type: ignore[index]
                    starts.append(new_start)
                else:
                    counts.qa_answers_misaligned += 1
                    misaligned.append((r, k, text))
                    texts.append(text)
                    starts.append(result.map_offset(start))
            new_texts.append(texts)
            new_starts.append(starts)
        if misaligned:
            for (r, k, _), res in zip(misaligned, self.swapper.swap_texts([t for _, _, t in misaligned])):
                new_texts[r][k] = res.text  # type: ignore[index]
        children = []
        for i in range(kind.num_fields):
            f = kind.field(i)
            if f.name == "text":
                children.append(pa.array(new_texts, type=f.type))
            elif f.name == "answer_start":
                children.append(pa.array(new_starts, type=f.type))
            else:
                children.append(answers.field(i))
        mask = answers.is_null() if answers.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(kind), mask=mask)


def answer_bounds(contexts: Sequence[str | None], answers: Sequence[Any]) -> dict[str, set[int]]:
    """For each context, the start and end offsets of the answers that match it at ``answer_start``
    (rows that share a context pool theirs): offsets that must stay on word boundaries."""
    out: dict[str, set[int]] = {}
    for context, answer in zip(contexts, answers):
        if context is None or not answer or answer.get("text") is None or answer.get("answer_start") is None:
            continue
        for text, start in zip(answer["text"], answer["answer_start"]):
            if text is not None and start is not None and 0 <= start and context[start : start + len(text)] == text:
                out.setdefault(context, set()).update((start, start + len(text)))
    return out


def recut_parts(text: str | None, parts: Sequence[str | None], swapped: SwappedText) -> list[str | None] | None:
    """``parts`` as they lie in ``swapped.text``, when ``text`` is their join (nulls as empty, a
    space between, surrounding whitespace trimmed, as :func:`fedpart.tasks.tc.text_array` builds
    it); None when it is not. Null parts stay null; trimmed whitespace is kept."""
    if text is None or swapped.text is None:
        return None
    joined = " ".join(p or "" for p in parts)
    lead = len(joined) - len(joined.lstrip())
    if joined.strip() != text or joined[lead : lead + len(text)] != text:
        return None
    out: list[str | None] = []
    pos = 0
    for part in parts:
        if part is None:
            out.append(None)
            pos += 1
            continue
        start, end = pos - lead, pos + len(part) - lead  # the part's span in text
        lo, hi = min(max(start, 0), len(text)), min(max(end, 0), len(text))
        head, tail = part[: lo - start], part[len(part) - (end - hi) :] if end > hi else ""
        out.append(head + swapped.text[swapped.map_offset(lo) : swapped.map_offset(hi)] + tail)
        pos += len(part) + 1
    return out


def draw_keys(batch: pa.RecordBatch, rows: np.ndarray, row_id_col: str = ROW_ID) -> np.ndarray:
    """The keys of the ``cds`` draws: the integer ``row_id_col`` column when the batch has one
    without nulls (so the draws do not depend on how the input is split into files or shards), else
    ``rows`` (the input positions)."""
    if row_id_col not in batch.schema.names:
        return rows
    ids = batch.column(row_id_col)
    if not pa.types.is_integer(ids.type) or ids.null_count:
        return rows
    return ids.to_numpy(zero_copy_only=False).astype(np.int64)


def _take(values: Any, indices: np.ndarray) -> pa.Array:
    if isinstance(values, np.ndarray):
        return pa.array(values[indices], pa.int64())
    return values.take(pa.array(indices, pa.int64()))


def _replace_columns(batch: pa.RecordBatch, columns: dict[str, pa.Array]) -> pa.RecordBatch:
    arrays = [columns.get(name, batch.column(name)) for name in batch.schema.names]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _with_meta(batch: pa.RecordBatch, ids: Any, is_cf: bool, n_swaps: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
    n = batch.num_rows
    id_array = pa.array(ids, pa.int64()) if isinstance(ids, np.ndarray) else ids
    arrays = [
        *batch.columns,
        id_array.cast(schema.field(CF_OF).type),
        pa.array(np.full(n, is_cf, dtype=bool)),
        pa.array(np.asarray(n_swaps, dtype=np.int32)),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
