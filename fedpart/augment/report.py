"""What a counterfactual augmentation run did: rows, swaps per pair, nulls, words to add to the lexicon.

:class:`ReportCounts` is accumulated batch by batch (also across worker processes, by
:meth:`ReportCounts.add`); :func:`build_report` turns it into the :class:`CounterfactualReport` that
is printed (:meth:`CounterfactualReport.summary`) and written as JSON (:func:`write_report`).

"Unknown gendered-looking words" are lower-case words that end like a gendered noun (-man/-men,
-ess/-esses, -boy/-girl, -wife/-wives, -lady/-ladies, -father/-mother) but are not in the lexicon,
minus common false friends (human, business, witness, specimen, ...). They are a to-do list for
``--pairs``, not a judgement; capitalised words are skipped (surnames such as Goldman), and so are
words of e-mail addresses, URLs, host and file names (``mbeckman@...``, ``hulman.cs.edu``), which
are mostly lower-cased surnames.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from fedpart.augment.proper_names import in_host_or_path
from fedpart.augment.swapper import verbatim_spans
from fedpart.errors import OutputError
from fedpart.io.output_dir import write_text_atomic
from fedpart.verify import sha256_of

REPORT_SCHEMA_VERSION = 1
TOP_UNKNOWN = 20

_SUFFIX = re.compile(r"(?:m[ae]n|ess(?:es)?|boys?|girls?|wi(?:fe|ves)|lad(?:y|ies)|(?:fa|mo)thers?)\b")
_NOT_GENDERED_ENDINGS = (
    "ness", "nesses", "less", "cess", "cesses", "gress", "press", "fess", "sess", "dress", "uess",
    "chess", "mess", "stress", "bless", "cress",
)
_NOT_GENDERED = frozenset(
    """human humans inhuman superhuman german germans roman romans ottoman shaman shamans talisman caiman
    omen omens amen semen abdomen abdomens specimen specimens regimen regimens acumen stamen ramen hymen
    dolmen cyclamen lumen rumen bitumen albumen foramen mattress mattresses fortress fortresses buttress
    caress duress egress ingress largess cypress premises""".split()
)


def gendered_looking_words(text: str) -> list[str]:
    """Lower-case words of ``text`` that end like a gendered noun (see the module docstring).

    The caller drops the words its lexicon already knows.
    """
    out = []
    verbatim: list[tuple[int, int]] | None = None
    for match in _SUFFIX.finditer(text):
        start = match.start()
        while start > 0 and text[start - 1].isalpha():
            start -= 1
        word = text[start : match.end()]
        if len(word) <= len(match.group()) + 1 or not word.islower() or not word.isalpha():
            continue
        if verbatim is None:
            verbatim = verbatim_spans(text)
        if any(lo <= start < hi for lo, hi in verbatim) or in_host_or_path(text, start, match.end()):
            continue
        singular = word[:-2] if word.endswith("esses") else word
        if word in _NOT_GENDERED or singular in _NOT_GENDERED or singular.endswith(_NOT_GENDERED_ENDINGS):
            continue
        out.append(word)
    return out


@dataclass
class ReportCounts:
    """Mergeable counters of one or more batches."""

    rows_read: int = 0
    rows_written: int = 0
    counterfactual_rows: int = 0
    rows_changed: int = 0
    swaps: int = 0
    qa_answers: int = 0
    qa_answers_misaligned: int = 0
    qa_words_kept: int = 0
    null_texts: Counter[str] = field(default_factory=Counter)
    dropped_invalid: Counter[str] = field(default_factory=Counter)
    swaps_per_pair: Counter[str] = field(default_factory=Counter)
    unknown_words: Counter[str] = field(default_factory=Counter)
    tagger: str = ""

    def add(self, other: ReportCounts) -> None:
        """Add ``other``'s counts to these."""
        for name in ("rows_read", "rows_written", "counterfactual_rows", "rows_changed", "swaps", "qa_answers", "qa_answers_misaligned",
                     "qa_words_kept"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.null_texts.update(other.null_texts)
        self.dropped_invalid.update(other.dropped_invalid)
        self.swaps_per_pair.update(other.swaps_per_pair)
        self.unknown_words.update(other.unknown_words)
        self.tagger = other.tagger or self.tagger

    def count_unknown(self, texts: Iterable[str | None], known: frozenset[str]) -> None:
        """Count the gendered-looking words of ``texts`` that are not in ``known``."""
        for text in texts:
            if text:
                self.unknown_words.update(w for w in gendered_looking_words(text) if w not in known)


@dataclass(frozen=True)
class CounterfactualReport:
    """The JSON report of one augmentation run (``schema_version`` 1).

    ``rows_changed`` counts written counterfactual rows that differ from their source row;
    ``swaps`` = sum of ``n_swaps`` over written rows; ``swaps_per_pair`` keys are ``source->target``
    (``her->his``); ``null_texts`` counts null values per text column over the rows read;
    ``qa_words_kept`` counts context words left unswapped because an answer boundary cuts them and
    the swap would change both sides of the cut (:func:`fedpart.augment.swapper.keeps_boundaries`).
    """

    task: str
    mode: str
    p: float | None
    seed: int | None
    names: bool
    lexicon_version: str
    lexicon_pairs: int
    pair_files: list[str]
    tagger: str
    rows_read: int
    rows_written: int
    counterfactual_rows: int
    rows_changed: int
    swaps: int
    null_texts: dict[str, int]
    swaps_per_pair: dict[str, int]
    unknown_gendered_words: list[tuple[str, int]]
    qa_answers: int = 0
    qa_answers_misaligned: int = 0
    qa_words_kept: int = 0
    dropped_invalid: dict[str, int] = field(default_factory=dict)
    schema_version: int = REPORT_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unknown_gendered_words"] = [[w, c] for w, c in self.unknown_gendered_words]
        return out

    def summary(self) -> str:
        """A few human-readable lines for the terminal."""
        changed = f"{self.rows_changed:,} of {self.counterfactual_rows:,} counterfactual rows changed"
        lines = [
            f"counterfactual ({self.mode}, task {self.task}): {self.rows_read:,} rows read, "
            f"{self.rows_written:,} written; {changed}; {self.swaps:,} words swapped",
            f"lexicon {self.lexicon_version} ({self.lexicon_pairs} pairs), tagger: {self.tagger}",
        ]
        if self.swaps_per_pair:
            top = sorted(self.swaps_per_pair.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            lines.append("top swaps: " + ", ".join(f"{k} {v:,}" for k, v in top))
        nulls = {k: v for k, v in self.null_texts.items() if v}
        if nulls:
            lines.append("null texts kept as null: " + ", ".join(f"{k} {v:,}" for k, v in nulls.items()))
        if self.qa_answers_misaligned:
            lines.append(
                f"{self.qa_answers_misaligned:,} input answers did not match their context at answer_start; "
                "their text was swapped on its own"
            )
        for reason, count in self.dropped_invalid.items():
            lines.append(f"dropped {count:,} row(s) that {reason} (--drop-invalid)")
        if self.qa_words_kept:
            lines.append(
                f"{self.qa_words_kept:,} context words left unswapped because an answer starts or ends "
                "inside them (e.g. answer 'son' in 'sons')"
            )
        if self.unknown_gendered_words:
            words = ", ".join(f"{w} ({c})" for w, c in self.unknown_gendered_words[:10])
            lines.append(f"gendered-looking words not in the lexicon (add them with --pairs): {words}")
        return "\n".join(lines)


def portable_file(path: str | os.PathLike[str]) -> str:
    """How a report names an input file such as a ``--pairs`` list: its name and sha256, not the path
    as typed, so reports (and the manifests that copy them) do not depend on the working directory."""
    return f"{os.path.basename(os.fspath(path))} sha256:{sha256_of(path)}"


def build_report(
    counts: ReportCounts,
    *,
    task: str,
    mode: str,
    p: float | None,
    seed: int | None,
    names: bool,
    lexicon_version: str,
    lexicon_pairs: int,
    pair_files: Iterable[str] = (),
    top_unknown: int = TOP_UNKNOWN,
) -> CounterfactualReport:
    """Freeze ``counts`` and the run's settings into a report (pairs sorted by count, then name)."""
    pairs = dict(sorted(counts.swaps_per_pair.items(), key=lambda kv: (-kv[1], kv[0])))
    unknown = sorted(counts.unknown_words.items(), key=lambda kv: (-kv[1], kv[0]))[:top_unknown]
    return CounterfactualReport(
        task=task,
        mode=mode,
        p=p,
        seed=seed,
        names=names,
        lexicon_version=lexicon_version,
        lexicon_pairs=lexicon_pairs,
        pair_files=[portable_file(path) for path in pair_files],
        tagger=counts.tagger,
        rows_read=counts.rows_read,
        rows_written=counts.rows_written,
        counterfactual_rows=counts.counterfactual_rows,
        rows_changed=counts.rows_changed,
        swaps=counts.swaps,
        null_texts=dict(counts.null_texts),
        swaps_per_pair=pairs,
        unknown_gendered_words=unknown,
        qa_answers=counts.qa_answers,
        qa_answers_misaligned=counts.qa_answers_misaligned,
        qa_words_kept=counts.qa_words_kept,
        dropped_invalid=dict(counts.dropped_invalid),
    )


def write_report(report: CounterfactualReport, path: str | os.PathLike[str]) -> None:
    """Write ``report`` as indented JSON to ``path``.

    Raises:
        OutputError: ``path`` cannot be written.
    """
    try:
        write_text_atomic(path, json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    except OSError as error:
        raise OutputError(f"{path}: cannot write the report ({error.strerror or error}); choose another --report") from error
