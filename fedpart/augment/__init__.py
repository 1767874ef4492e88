"""Counterfactual data augmentation: texts and task tables with binary gender roles swapped.

    >>> from fedpart.augment import GenderSwapper, counterfactual
    >>> GenderSwapper().swap("She told her son.")
    'He told his daughter.'
    >>> table, report = counterfactual(["She told her son."], mode="append")

Modules, one job each: :mod:`~fedpart.augment.lexicon` (pair files), :mod:`~fedpart.augment.
disambiguation` (her/his rules), :mod:`~fedpart.augment.tagger` (spaCy tags for the few words that
need them), :mod:`~fedpart.augment.proper_names` (gendered words and first names that are parts of
names of things), :mod:`~fedpart.augment.swapper` (texts and token lists), :mod:`~fedpart.augment.augmenter`
(one task batch: modes, columns), :mod:`~fedpart.augment.stream` (streams, workers and the
in-memory entry point), :mod:`~fedpart.augment.substitution` (CDS draws),
:mod:`~fedpart.augment.report` and :mod:`~fedpart.augment.workers`. spaCy is imported only when a
tagger is built.
"""

from __future__ import annotations

from fedpart.augment.augmenter import (
    MODES,
    OUTPUT_COLUMNS,
    TASKS,
    CounterfactualAugmenter,
    CounterfactualOptions,
    check_schema,
)
from fedpart.augment.lexicon import Lexicon, Pair, load_lexicon, load_name_lexicon
from fedpart.augment.report import CounterfactualReport, write_report
from fedpart.augment.stream import AugmentedStream, counterfactual
from fedpart.augment.swapper import GenderSwapper, Swap, SwappedText, SwappedTokens, SwapperConfig
from fedpart.augment.tagger import HeuristicFallbackWarning

__all__ = [
    "MODES",
    "OUTPUT_COLUMNS",
    "TASKS",
    "AugmentedStream",
    "CounterfactualAugmenter",
    "CounterfactualOptions",
    "CounterfactualReport",
    "GenderSwapper",
    "HeuristicFallbackWarning",
    "Lexicon",
    "Pair",
    "Swap",
    "SwappedText",
    "SwappedTokens",
    "SwapperConfig",
    "check_schema",
    "counterfactual",
    "load_lexicon",
    "load_name_lexicon",
    "write_report",
]
