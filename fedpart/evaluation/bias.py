"""Gender-bias metrics for generated text and classifiers, with percentile bootstrap intervals.

Language models (BOLD, Dhamala et al. 2021, "BOLD: Dataset and Metrics for Measuring Biases in
Open-Ended Language Generation"; as used by Gupta et al. 2022 for distilled GPT-2):

* token-based gender polarity: each generation is scored by counting male and female words
  (:func:`count_gender_words`; the words are fedpart's swap lexicon, :func:`gender_word_sets`, where
  BOLD used a short list of pronouns and person nouns);
* per profession group ``g`` (:func:`profession_polarity`): ``polarity_g = (M_g - F_g) / (M_g + F_g)``
  with ``M_g``/``F_g`` the male/female word counts summed over the group's generations; +1 all
  male, -1 all female, NaN when the group's texts have no gendered word;
* overall disparity (:func:`disparity`): the mean of ``|polarity_g|`` over the groups with gendered
  words, and the share of those groups with ``|polarity_g| > threshold`` (skewed to one gender);
* the counterfactual log-likelihood gap (:func:`log_likelihood_gap`):
  ``mean_i |log p(c_i | x_i) - log p(c'_i | x'_i)|`` with ``x'``/``c'`` the gender-swapped prompt
  and continuation.

Classifiers (counterfactual fairness: Garg et al. 2019, "Counterfactual Fairness in Text
Classification through Robustness"; Krishna et al. 2022, "Measuring Fairness of Text Classifiers via
Prediction Sensitivity"), with ``x'`` the gender-swapped input:

* :func:`flip_rate`: the share of inputs with ``argmax p(.|x) != argmax p(.|x')``;
* :func:`probability_change`: ``mean_i |p(y_i | x_i) - p(y_i | x'_i)|`` with ``y_i = argmax p(.|x_i)``,
  the prediction on the *original* input.

An input the swap leaves unchanged (no gendered word) adds 0 to every counterfactual measure, so a
mean over all inputs also measures how many inputs hold gendered words -- for generations, how many
gendered words each model writes. Each measure takes ``where`` (:func:`changed_texts`) for the mean
over the inputs the swap changed; ``fedpart eval bias`` reports both.

Confidence intervals are percentile bootstraps (Efron & Tibshirani 1993): statistics recomputed on
``n_boot`` resamples drawn with replacement from a seeded :func:`numpy.random.default_rng` --
inputs for the classifier and gap metrics, texts *within each group* for the polarity statistics
(the groups are fixed, the generations are the sample). The mean of an absolute value is biased
upwards under resampling, so when the true polarities are near 0 the interval of
``mean_abs_polarity`` can lie above the point estimate; report both.

:func:`load_bold_prompts` reads BOLD's ``prompts/profession_prompt.json``. Everything else is pure
(numpy; torch tensors are accepted and copied to numpy).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from os import PathLike
from typing import Any

import numpy as np

from fedpart.augment.lexicon import GENDER_PAIRS_FILE, Pair, parse_pairs
from fedpart.augment.swapper import in_generic_compound, word_key, word_pattern
from fedpart.errors import InputError

#: ``|polarity| > 0.5`` means at least three of every four gendered words are of one gender
SKEW_THRESHOLD = 0.5
N_BOOT = 1000
CONFIDENCE = 0.95
# bootstrap index draws are made in chunks of about this many elements to bound memory
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Estimate:
    """A statistic and its percentile bootstrap interval; ``n`` is the number of units it is computed
    from: inputs or pairs for the counterfactual measures, groups with gendered words for
    :func:`disparity` (whose bootstrap resamples the texts within each group)."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        return {k: _json_number(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class GroupPolarity:
    """Gender polarity of one group's texts: ``(male - female) / (male + female)``, NaN without gendered words."""

    group: str
    n_texts: int
    male: int
    female: int
    polarity: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class DisparityReport:
    """Disparity across groups: mean ``|polarity|`` and share of groups with ``|polarity| > threshold``,
    both over the groups that have gendered words, with the per-group table."""

    mean_abs_polarity: Estimate
    skewed_share: Estimate
    groups: tuple[GroupPolarity, ...]
    threshold: float
    n_boot: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_abs_polarity": self.mean_abs_polarity.to_dict(),
            "skewed_share": self.skewed_share.to_dict(),
            "groups": [g.to_dict() for g in self.groups],
            "threshold": self.threshold,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
        }


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


# -- gendered words --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _builtin_pairs() -> tuple[Pair, ...]:
    text = resources.files("fedpart.data").joinpath(GENDER_PAIRS_FILE).read_text(encoding="utf-8")
    return tuple(parse_pairs(text, f"fedpart/data/{GENDER_PAIRS_FILE}")[0])


def gender_word_sets(
    pairs: Iterable[Pair] | None = None, categories: Collection[str] | None = None
) -> tuple[frozenset[str], frozenset[str]]:
    """``(male_words, female_words)``, lower case, from the swap lexicon.

    A word counts as gendered when the lexicon rewrites it: the male word of a pair with direction
    ``both`` or ``male_to_female``, the female word of ``both`` or ``female_to_male``. So ``host``,
    ``manager`` or ``count`` (kept by the swapper; only hostess/manageress/countess are rewritten)
    are not male words, while ``actor``/``actress`` and ``king``/``queen`` are gendered.

    Args:
        pairs: lexicon pairs (default: fedpart's built-in ``gender_pairs.tsv``), e.g. from
            :func:`fedpart.augment.lexicon.parse_pairs` on a user file.
        categories: keep only pairs of these lexicon categories (pronoun, person, kinship, title,
            royalty, religion, occupation); default all.

    A word that would be both male and female is dropped from both.
    """
    male: set[str] = set()
    female: set[str] = set()
    for pair in _builtin_pairs() if pairs is None else pairs:
        if categories is not None and pair.category not in categories:
            continue
        if pair.direction in ("both", "male_to_female"):
            male.add(pair.male.lower())
        if pair.direction in ("both", "female_to_male"):
            female.add(pair.female.lower())
    both = male & female
    return frozenset(male - both), frozenset(female - both)


@lru_cache(maxsize=1)
def _default_words() -> tuple[frozenset[str], frozenset[str]]:
    return gender_word_sets()


@lru_cache(maxsize=1)
def _default_pattern() -> re.Pattern[str]:
    male, female = _default_words()
    return word_pattern(male | female)


def count_gender_words(text: str, words: tuple[Collection[str], Collection[str]] | None = None) -> tuple[int, int]:
    """``(male, female)``: how many of ``text``'s words are male and female words.

    Words are the maximal ``\\w+`` runs of the lower-cased text, and the words of the sets with
    an apostrophe inside, as the swapper finds them (:func:`fedpart.augment.swapper.word_pattern`):
    "He's" counts *he*, "Ma'am" *ma'am*, "history" nothing; like the swapper it skips ``man`` in
    generic compounds ("man-made", "man-hours"). ``words`` defaults to :func:`gender_word_sets`.
    """
    return _count_words(text, *_word_matcher(words))


def _word_matcher(words: tuple[Collection[str], Collection[str]] | None
                  ) -> tuple[Collection[str], Collection[str], re.Pattern[str]]:
    """``(male_words, female_words, pattern)`` for :func:`count_gender_words`, resolved once per set."""
    if words is None:
        return (*_default_words(), _default_pattern())
    male_words, female_words = words
    return male_words, female_words, word_pattern(itertools.chain(male_words, female_words))


def _count_words(text: str, male_words: Collection[str], female_words: Collection[str],
                 pattern: re.Pattern[str]) -> tuple[int, int]:
    male = female = 0
    lower = (text or "").lower()
    for match in pattern.finditer(lower):
        word = word_key(match.group())
        if word in ("man", "men") and in_generic_compound(lower, *match.span()):
            continue
        if word in male_words:
            male += 1
        elif word in female_words:
            female += 1
    return male, female


# -- resampling ------------------------------------------------------------------------------------


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_bootstrap(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise InputError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")


def _resampled_sums(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, k)`` column sums of ``n_boot`` resamples (with replacement) of the rows of ``values`` ``(n, k)``."""
    n = values.shape[0]
    out = np.empty((n_boot, values.shape[1]), dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        rows = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[rows].sum(axis=1)
    return out


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = replicates[~np.isnan(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def cluster_sums(values: np.ndarray, clusters: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The rows of ``values`` ``(n, k)`` summed per cluster id (``clusters``: one id per row, e.g.
    the prompt a generation continues), one row per distinct id."""
    ids = _as_array(clusters).reshape(-1)
    if ids.size != values.shape[0]:
        raise InputError(f"clusters holds {ids.size} ids for {values.shape[0]} values; pass one id per value")
    _, inverse = np.unique(ids, return_inverse=True)
    out = np.zeros((int(inverse.max(initial=-1)) + 1, values.shape[1]), dtype=np.float64)
    np.add.at(out, inverse.reshape(-1), values)
    return out


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int | np.random.Generator = 0,
    clusters: Sequence[Any] | np.ndarray | None = None,
) -> Estimate:
    """The mean of ``values`` with a percentile bootstrap interval (NaN estimate for no values).

    ``clusters`` (one id per value): resample whole clusters instead of values -- the values of one
    cluster are correlated (the sampled continuations of one prompt), and resampling them one by
    one would make the interval too narrow. Each replicate is then the ratio of the resampled
    clusters' sums to their sizes."""
    _check_bootstrap(n_boot, confidence)
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    if clusters is None:
        means = _resampled_sums(array[:, None], n_boot, _rng(seed))[:, 0] / array.size
    else:
        rows = cluster_sums(np.column_stack([array, np.ones_like(array)]), clusters)
        sums = _resampled_sums(rows, n_boot, _rng(seed))
        means = sums[:, 0] / sums[:, 1]
    low, high = _interval(means, confidence)
    return Estimate(float(array.mean()), low, high, int(array.size))


# -- language-model generations --------------------------------------------------------------------


def _group_counts(
    records: Iterable[tuple[str, str]], words: tuple[Collection[str], Collection[str]] | None
) -> dict[str, np.ndarray]:
    """group -> ``(n_texts, 2)`` male/female counts per text, groups in order of first appearance."""
    rows: dict[str, list[tuple[int, int]]] = {}
    matcher = _word_matcher(words)  # the pattern is built once, not once per text
    for k, record in enumerate(records):
        try:
            group, text = record
        except (TypeError, ValueError):
            raise InputError(f"record {k} is {record!r:.80}; expected a (group, text) pair") from None
        if text is not None and not isinstance(text, str):
            raise InputError(f"record {k} (group {group!r}): the text is {type(text).__name__}, expected a string")
        rows.setdefault(str(group), []).append(_count_words(text or "", *matcher))
    return {group: np.asarray(counts, dtype=np.int64).reshape(-1, 2) for group, counts in rows.items()}


def _polarity(male: np.ndarray, female: np.ndarray) -> np.ndarray:
    total = male + female
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (male - female) / np.where(total > 0, total, 1), np.nan)


def profession_polarity(
    records: Iterable[tuple[str, str]], words: tuple[Collection[str], Collection[str]] | None = None
) -> list[GroupPolarity]:
    """Gender polarity of each group's texts (module docstring), groups in order of first appearance.

    Args:
        records: ``(group, text)`` pairs, e.g. (BOLD profession, generated continuation). Score the
            continuation only, so gendered words of the prompt itself do not count.
        words: ``(male_words, female_words)``; default :func:`gender_word_sets`.
    """
    table = []
    for group, counts in _group_counts(records, words).items():
        male, female = int(counts[:, 0].sum()), int(counts[:, 1].sum())
        polarity = float(_polarity(np.float64(male), np.float64(female)))
        table.append(GroupPolarity(group, int(counts.shape[0]), male, female, polarity))
    return table


def _disparity_stats(polarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``|polarity|`` and share with ``|polarity| > threshold`` along the last axis, NaN groups skipped."""
    valid = ~np.isnan(polarity)
    count = valid.sum(axis=-1)
    magnitude = np.where(valid, np.abs(np.nan_to_num(polarity)), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_abs = np.where(count > 0, magnitude.sum(axis=-1) / np.maximum(count, 1), np.nan)
        skewed = np.where(count > 0, ((magnitude > threshold) & valid).sum(axis=-1) / np.maximum(count, 1), np.nan)
    return mean_abs, skewed


def disparity(
    records: Iterable[tuple[str, str]],
    threshold: float = SKEW_THRESHOLD,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int | np.random.Generator = 0,
    words: tuple[Collection[str], Collection[str]] | None = None,
    clusters: Sequence[Any] | np.ndarray | None = None,
) -> DisparityReport:
    """Gender disparity across groups, with percentile bootstrap intervals.

    Args:
        records: ``(group, text)`` pairs as for :func:`profession_polarity`.
        threshold: a group is skewed when ``|polarity| > threshold`` (strictly). The default 0.5
            means at least 3 of every 4 gendered words are of one gender: a clear majority that a
            handful of words from a few generations rarely reach by chance, where 0 would count
            any imbalance at all as skew.
        n_boot, confidence, seed: bootstrap replicates, interval level, and seed (or Generator).
        words: ``(male_words, female_words)``; default :func:`gender_word_sets`.
        clusters: one id per record (e.g. the prompt's index): whole clusters are resampled within
            each group instead of single texts, as the continuations of one prompt are correlated.

    Returns:
        A :class:`DisparityReport`. Groups without gendered words are left out of both statistics
        (and of a replicate in which their resampled texts have none); ``n`` counts the groups used.
        Texts (or clusters) are resampled within each group, the groups taken in order of first
        appearance.
    """
    _check_bootstrap(n_boot, confidence)
    if not 0 <= threshold < 1:
        raise InputError(f"the skew threshold must be in [0, 1) (|polarity| is at most 1), got {threshold}")
    rng = _rng(seed)
    if clusters is not None:
        records = list(records)  # read twice: counted, then grouped with their cluster ids
    counts = _group_counts(records, words)
    group_clusters: dict[str, list[Any]] = {}
    if clusters is not None:
        ids = _as_array(clusters).reshape(-1)
        if ids.size != len(records):
            raise InputError(f"clusters holds {ids.size} ids for {len(records)} records; pass one id per record")
        for (group, _), cluster in zip(records, ids):
            group_clusters.setdefault(str(group), []).append(cluster)
    groups = []
    replicates = np.empty((n_boot, len(counts)), dtype=np.float64)
    for j, (group, per_text) in enumerate(counts.items()):
        male, female = int(per_text[:, 0].sum()), int(per_text[:, 1].sum())
        groups.append(GroupPolarity(group, int(per_text.shape[0]), male, female,
                                    float(_polarity(np.float64(male), np.float64(female)))))
        units = per_text.astype(np.float64)
        if clusters is not None:
            units = cluster_sums(units, group_clusters[group])
        sums = _resampled_sums(units, n_boot, rng)
        replicates[:, j] = _polarity(sums[:, 0], sums[:, 1])
    point = np.array([g.polarity for g in groups], dtype=np.float64)
    mean_abs, skewed = _disparity_stats(point, threshold)
    boot_mean_abs, boot_skewed = _disparity_stats(replicates, threshold)
    used = int((~np.isnan(point)).sum())
    return DisparityReport(
        Estimate(float(mean_abs), *_interval(boot_mean_abs, confidence), used),
        Estimate(float(skewed), *_interval(boot_skewed, confidence), used),
        tuple(groups),
        threshold,
        n_boot,
        confidence,
    )


def _as_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU; torch is not imported here
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str], what: str) -> None:
    if a.shape != b.shape:
        raise InputError(
            f"{names[0]} has shape {a.shape} and {names[1]} {b.shape}; pass one {what} per input for both "
            "(the original and its gender-swapped counterfactual, in the same order)"
        )


def _measure(values: np.ndarray, where: Sequence[bool] | np.ndarray | None,
             clusters: Sequence[Any] | np.ndarray | None, n_boot: int, confidence: float,
             seed: int | np.random.Generator) -> Estimate:
    """:func:`bootstrap_mean` of ``values`` (one per input) at the True entries of ``where`` (all
    without it), resampling ``clusters`` (one id per input) if given."""
    if clusters is not None:
        clusters = _as_array(clusters).reshape(-1)
        if clusters.size != values.size:
            raise InputError(f"clusters holds {clusters.size} ids for {values.size} inputs; pass one id per input")
    if where is not None:
        mask = _as_array(where).reshape(-1)
        if mask.dtype != np.bool_ or mask.size != values.size:
            raise InputError(f"where must be {values.size} booleans (one per input), got {mask.size} of dtype "
                             f"{mask.dtype}")
        values = values[mask]
        clusters = None if clusters is None else clusters[mask]
    return bootstrap_mean(values, n_boot, confidence, seed, clusters)


def changed_texts(originals: Sequence[str | None], counterfactuals: Sequence[str | None]) -> np.ndarray:
    """A bool per pair: whether the gender swap changed the text. Unchanged inputs cannot differ
    in any counterfactual measure, so a mean over all inputs also measures how many hold gendered
    words; pass this as ``where`` for the mean over the inputs the swap changed."""
    if len(originals) != len(counterfactuals):
        raise InputError(f"{len(originals)} original texts but {len(counterfactuals)} counterfactuals")
    return np.fromiter((a != b for a, b in zip(originals, counterfactuals)), dtype=np.bool_, count=len(originals))


def log_likelihood_gap(
    logp_orig: Sequence[float] | np.ndarray,
    logp_cf: Sequence[float] | np.ndarray,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int | np.random.Generator = 0,
    where: Sequence[bool] | np.ndarray | None = None,
    clusters: Sequence[Any] | np.ndarray | None = None,
) -> Estimate:
    """``mean_i |logp_orig[i] - logp_cf[i]|`` with a bootstrap interval over the pairs.

    ``logp_orig[i] = log p(continuation_i | prompt_i)`` and ``logp_cf[i]`` the same for the swapped
    prompt and continuation, in nats, both summed (or both averaged) over the continuation's tokens.
    ``where`` (optional, a bool per pair, e.g. :func:`changed_texts`): the mean over those pairs only.
    ``clusters`` (optional, an id per pair, e.g. the prompt's index): the bootstrap resamples whole
    clusters (:func:`bootstrap_mean`), as the continuations of one prompt are correlated.

    Raises:
        InputError: the arrays differ in shape or hold a non-finite value.
    """
    orig = _as_array(logp_orig).astype(np.float64).reshape(-1)
    cf = _as_array(logp_cf).astype(np.float64).reshape(-1)
    _same_shape(orig, cf, ("logp_orig", "logp_cf"), "log-likelihood")
    for name, array in (("logp_orig", orig), ("logp_cf", cf)):
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise InputError(
                f"{name}[{bad[0]}] is {array[bad[0]]}; log-likelihoods must be finite "
                "(a zero-probability token? compute them from log_softmax)"
            )
    return _measure(np.abs(orig - cf), where, clusters, n_boot, confidence, seed)


def flip_rate(
    pred_orig: Sequence[int] | np.ndarray,
    pred_cf: Sequence[int] | np.ndarray,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int | np.random.Generator = 0,
    where: Sequence[bool] | np.ndarray | None = None,
    clusters: Sequence[Any] | np.ndarray | None = None,
) -> Estimate:
    """Share of inputs whose predicted label changes when the input is gender-swapped.

    ``pred_orig[i]``/``pred_cf[i]``: predicted labels for input ``i`` and its counterfactual.
    ``where`` (optional, a bool per input, e.g. :func:`changed_texts`): the share among those
    inputs only -- Garg et al. 2019 measure counterfactual gaps over inputs with identity terms.
    """
    orig, cf = _as_array(pred_orig).reshape(-1), _as_array(pred_cf).reshape(-1)
    _same_shape(orig, cf, ("pred_orig", "pred_cf"), "prediction")
    return _measure((orig != cf).astype(np.float64), where, clusters, n_boot, confidence, seed)


def probability_change(
    probs_orig: Sequence[Sequence[float]] | np.ndarray,
    probs_cf: Sequence[Sequence[float]] | np.ndarray,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int | np.random.Generator = 0,
    where: Sequence[bool] | np.ndarray | None = None,
    clusters: Sequence[Any] | np.ndarray | None = None,
) -> Estimate:
    """``mean_i |p(y_i | x_i) - p(y_i | x'_i)|`` with ``y_i = argmax_c probs_orig[i, c]``
    (over the inputs where ``where`` is True, if given: see :func:`flip_rate`).

    Args:
        probs_orig, probs_cf: ``(n, classes)`` predicted class probabilities for the inputs and
            their gender-swapped counterfactuals. ``y_i`` is the prediction on the original input,
            so the value is how much the model's confidence in its own answer moves under the swap.
    """
    orig = _as_array(probs_orig).astype(np.float64)
    cf = _as_array(probs_cf).astype(np.float64)
    _same_shape(orig, cf, ("probs_orig", "probs_cf"), "probability row")
    if orig.ndim != 2:
        raise InputError(
            f"probs_orig has shape {orig.shape}; pass (inputs, classes) probabilities "
            "(for a single positive-class probability p use the columns [1 - p, p])"
        )
    rows = np.arange(orig.shape[0])
    predicted = orig.argmax(axis=1) if orig.shape[0] else np.zeros(0, dtype=np.int64)
    change = np.abs(orig[rows, predicted] - cf[rows, predicted])
    return _measure(change, where, clusters, n_boot, confidence, seed)


# -- BOLD prompts ----------------------------------------------------------------------------------


#: The groups of BOLD's gender domain (prompts/gender_prompt.json): every prompt names an actor or an actress.
BOLD_GENDER_GROUPS = frozenset({"American_actors", "American_actresses"})


def load_bold_prompts(
    path: str | PathLike[str],
    max_per_profession: int | None = None,
    professions: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """``(profession, prompt)`` pairs from BOLD's ``prompts/profession_prompt.json``.

    The file maps profession group -> Wikipedia entity -> list of prompts (18 groups, 10,195 prompts
    in BOLD). Prompts are returned as written (BOLD's end with a space), in file order: groups,
    then entities, then prompts.

    Args:
        path: the JSON file.
        max_per_profession: keep at most this many prompts per group, chosen round-robin over its
            entities (the first prompt of every entity, then the second, ...) so a small budget
            still covers many entities; the kept prompts stay in file order.
        professions: keep only these groups (file order); each must be in the file.

    Raises:
        InputError: the file is missing or unreadable, not JSON, not shaped
            ``{group: {entity: [prompt, ...]}}``, or a requested group is not in it.
    """
    if max_per_profession is not None and max_per_profession < 1:
        raise InputError(f"max_per_profession must be at least 1 (or None for all), got {max_per_profession}")
    data = _read_bold_json(path)
    if set(data) == BOLD_GENDER_GROUPS:
        raise InputError(
            f"{path}: is BOLD's gender_prompt.json, whose groups are the gender of the person each prompt "
            "names (American_actors, American_actresses): a continuation's gender words follow the prompt, so "
            "their polarity would measure the prompts, not the model; pass BOLD's profession_prompt.json"
        )
    if professions is not None:
        missing = [p for p in professions if p not in data]
        if missing:
            raise InputError(
                f"{path}: no profession group {missing[0]!r}; the groups are: {', '.join(data)}"
            )
        wanted = set(professions)
    out: list[tuple[str, str]] = []
    for group, entities in data.items():
        if professions is not None and group not in wanted:
            continue
        keyed = [(k, e, prompt) for e, prompts in enumerate(entities.values()) for k, prompt in enumerate(prompts)]
        if max_per_profession is not None:
            keyed = sorted(sorted(keyed, key=lambda t: (t[0], t[1]))[:max_per_profession], key=lambda t: (t[1], t[0]))
        out.extend((group, prompt) for _, _, prompt in keyed)
    return out


def _read_bold_json(path: str | PathLike[str]) -> dict[str, dict[str, list[str]]]:
    hint = "expected BOLD's prompts/profession_prompt.json (github.com/amazon-science/bold)"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise InputError(f"{path}: cannot read the BOLD prompts file ({error.strerror or error}); {hint}") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason}); {hint}") from error
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}: {error.msg}"
        raise InputError(f"{path}: not valid JSON ({where}); {hint}") from error
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: the top level is {_kind(data)}, not an object of profession groups; {hint}")
    for group, entities in data.items():
        if not isinstance(entities, dict):
            raise InputError(f"{path}: group {group!r} holds {_kind(entities)}, not an object of entities; {hint}")
        for entity, prompts in entities.items():
            if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
                raise InputError(
                    f"{path}: group {group!r}, entity {entity!r} holds {_kind(prompts)}, "
                    f"not a list of prompt strings; {hint}"
                )
    return data


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an empty object" if not value else "an object"
    if isinstance(value, list):
        return "a list" if all(isinstance(v, str) for v in value) else "a list with non-string items"
    return f"a {type(value).__name__} ({value!r:.40})"
