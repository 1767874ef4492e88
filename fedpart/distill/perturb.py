"""Teacher-prediction perturbation by counterfactual role reversal (Gupta et al. 2022).

Gupta, Dhamala, Kumar, Verma, Pruksachatkun, Gupta, Chang, Galstyan, "Mitigating Gender Bias in
Distilled Language Models via Counterfactual Role Reversal", Findings of ACL 2022: while distilling,
the teacher is run on each context ``x`` and on its counterfactual ``x'`` (binary gender roles
swapped by :class:`fedpart.augment.GenderSwapper`), and the student learns from a combination of the
two predictions instead of the teacher's prediction on ``x`` alone.

The two predictions live in different "gender frames": after "She said that", the counterfactual
context is "He said that", and the teacher's probability of *he* next in ``x'`` is the evidence for
*she* next in ``x``. A permutation ``pi`` of the vocabulary (:func:`gender_token_permutation`)
maps each gendered word to its counterpart (he <-> she, himself <-> herself, ...) and every other
token to itself; ``pi`` is an involution (``pi(pi(v)) = v``). With ``p(.|x)`` the teacher's
(temperature-softened) distribution on the original context and ``p(.|x')`` on the counterfactual
one, the counterfactual prediction mapped back into the original frame is

    m(v) = p(pi(v) | x')                                           (``p_cf[..., pi]``)

and the target distribution ``q(.|x)`` for each ``--teacher-perturb`` mode is

    none:  q(v) = p(v | x)
    mean:  q(v) = (p(v | x) + m(v)) / 2
    max:   q(v) = max(p(v | x), m(v)) / sum_u max(p(u | x), m(u))
    swap:  q(v) = m(v)

Every ``q`` is a probability distribution (``m`` is a permutation of one). ``mean`` and ``max`` are
symmetric under role reversal: the target computed for ``x'`` is the target for ``x`` mapped through
``pi`` (tested). A teacher that already treats both genders alike (``p(pi(v)|x') = p(v|x)``) is left
unchanged by every mode.

For text classification distillation the same function applies to class probabilities with
:func:`identity_permutation`: a gender swap of the input should not change the label, so ``mean``
averages the teacher's class distributions on ``x`` and ``x'``.

Position alignment. Language-model targets are per position: position ``t`` holds the next-word
distribution given the first ``t + 1`` tokens. fedpart's swapper replaces whole ``\\w+`` runs by
single words of letters, and the word-level tokeniser (:mod:`fedpart.train.vocabulary`) cuts text
into ``\\w+`` runs and single punctuation marks, so a text and its counterfactual have the same
number of tokens and position ``t`` of one is position ``t`` of the other (also after the same
truncation) -- except where a lexicon word has an apostrophe inside: ``ma'am`` (three tokens)
becomes ``sir`` (one). :func:`aligned_positions` checks this per row from the padding pattern and
:func:`perturb_teacher` leaves the target unperturbed (``q = p(.|x)``) wherever a mask says the
rows are not aligned (such a row, another tokeniser, rows cut differently), instead of mixing
unrelated positions.

The word pairs come from fedpart's swap lexicon (:func:`lexicon_swap_pairs`). A permutation must be
one-to-one, but the lexicon is not: ``her`` becomes ``his`` or ``him`` and ``his`` becomes ``her``
or ``hers``. fedpart pairs ``his <-> her`` (the possessive determiner, by far the most frequent of
these uses: in the AG News counterfactual report his->her is 827 swaps against 108 for him->her)
and leaves ``him`` and ``hers`` as they are; see :func:`lexicon_swap_pairs` for the general rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import torch

from fedpart.errors import InputError

if TYPE_CHECKING:
    from fedpart.augment.lexicon import Lexicon

MODES = ("none", "mean", "max", "swap")

#: the counterpart chosen for the words the lexicon maps to two words (see the module docstring)
AMBIGUOUS_COUNTERPARTS: dict[str, str] = {"his": "her", "her": "his"}


def _edges(lexicon: Lexicon) -> list[tuple[str, str]]:
    return [(source, target) for source, targets in lexicon.targets.items() for target in targets]


def _matching(edges: Sequence[tuple[str, str]], preferred: dict[str, str]) -> list[tuple[str, str]]:
    """A one-to-one set of pairs from the directed rewrite ``edges``, chosen greedily in this order:
    the ``preferred`` pairs, then pairs rewritten both ways, then one-way rewrites, each group in
    lexicon order; a pair is skipped when one of its words is already paired."""
    present = set(edges)
    candidates = [(a, b) for a, b in preferred.items() if (a, b) in present or (b, a) in present]
    candidates += [(a, b) for a, b in edges if (b, a) in present]
    candidates += [(a, b) for a, b in edges if (b, a) not in present]
    used: set[str] = set()
    pairs: list[tuple[str, str]] = []
    for a, b in candidates:
        if a in used or b in used:
            continue
        used.update((a, b))
        pairs.append((a, b))
    return pairs


def lexicon_swap_pairs(lexicon: Lexicon | None = None, name_lexicon: Lexicon | None = None) -> list[tuple[str, str]]:
    """One-to-one (lower-case) word pairs for :func:`gender_token_permutation`, from the swap lexicon.

    Args:
        lexicon: the gender lexicon (default: fedpart's built-in one, ``load_lexicon()``); pass
            ``GenderSwapper(...).lexicon`` to use the same pairs as the counterfactual corpus.
        name_lexicon: first-name pairs to add (e.g. ``load_name_lexicon()`` or
            ``GenderSwapper(names=True).name_lexicon``), after the gender words.

    Returns:
        ``(a, b)`` pairs, no word in two pairs, in lexicon order (the male word first for the
        built-in pairs that swap both ways). Where the lexicon's rewrites are not one-to-one, the
        pairs are chosen greedily: ``her <-> his`` first (:data:`AMBIGUOUS_COUNTERPARTS`), then
        words rewritten into each other (he <-> she), then one-way rewrites (lord -> lady is dropped
        because lady already pairs with gentleman; hostess -> host gives host <-> hostess). Words
        left without a counterpart (him, hers, lord, mrs, ...) map to themselves.
    """
    if lexicon is None:
        from fedpart.augment.lexicon import load_lexicon

        lexicon = load_lexicon()
    pairs = _matching(_edges(lexicon), AMBIGUOUS_COUNTERPARTS)
    if name_lexicon is not None:
        used = {word for pair in pairs for word in pair}
        names = _matching([e for e in _edges(name_lexicon) if not used.intersection(e)], {})
        pairs.extend(names)
    return pairs


@lru_cache(maxsize=1)
def _builtin_pairs() -> tuple[tuple[str, str], ...]:
    return tuple(lexicon_swap_pairs())


def _case_variants(word: str) -> list[str]:
    """``he``, ``He``, ``HE`` (each once)."""
    variants = [word, word[:1].upper() + word[1:], word.upper()]
    return list(dict.fromkeys(variants))


def _check_one_to_one(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[str, tuple[str, str]] = {}
    checked = []
    for pair in pairs:
        if len(pair) != 2:
            raise InputError(f"swap pair {pair!r} does not have two words; pass (male, female) word pairs")
        a, b = pair[0].lower(), pair[1].lower()
        if a == b:
            raise InputError(f"swap pair {pair!r} pairs a word with itself; a pair needs two different words")
        for word in (a, b):
            if word in seen:
                raise InputError(
                    f"{word!r} is in two swap pairs, {seen[word]!r} and {pair!r}; a token permutation must be "
                    "one-to-one -- keep one of them (lexicon_swap_pairs() chooses one per word)"
                )
            seen[word] = pair
        checked.append((a, b))
    return checked


def gender_token_permutation(
    vocabulary: Sequence[str] | object,
    pairs: Iterable[tuple[str, str]] | None = None,
    prefixes: Sequence[str] = ("",),
) -> torch.Tensor:
    """The involutive permutation of vocabulary ids that swaps gendered tokens.

    Args:
        vocabulary: the tokens in id order (a sequence of strings, or a
            :class:`~fedpart.train.vocabulary.Vocabulary`).
        pairs: lower-case word pairs, no word in two pairs (default: :func:`lexicon_swap_pairs`).
        prefixes: token prefixes to try besides the bare word, e.g. ``("", "Ġ")`` for a byte-level
            BPE vocabulary whose word-initial tokens carry ``Ġ``; fedpart's word vocabulary needs none.

    Returns:
        ``perm``: a ``torch.long`` tensor of shape ``(V,)`` with ``perm[perm] == arange(V)``.
        ``perm[id(w)] = id(w')`` for each pair ``(w, w')`` and each casing of it (``he``/``she``,
        ``He``/``She``, ``HE``/``SHE``) and prefix where *both* tokens are in the vocabulary; every
        other id -- special tokens such as ``<pad>``/``<unk>``, neutral words, and gendered words
        whose counterpart is missing -- maps to itself. A token listed twice keeps its first id.

    Raises:
        InputError: a word is in two pairs or paired with itself.
    """
    tokens = list(getattr(vocabulary, "tokens", vocabulary))
    index: dict[str, int] = {}
    for i, token in enumerate(tokens):
        index.setdefault(token, i)
    checked = _check_one_to_one(_builtin_pairs() if pairs is None else pairs)
    perm = torch.arange(len(tokens), dtype=torch.long)
    for a, b in checked:
        for case_a, case_b in zip(_case_variants(a), _case_variants(b)):
            for prefix in prefixes:
                i, j = index.get(prefix + case_a), index.get(prefix + case_b)
                if i is not None and j is not None:
                    perm[i], perm[j] = j, i
    return perm


def identity_permutation(n: int) -> torch.Tensor:
    """``arange(n)``: the permutation for outputs that a gender swap should not change (class labels)."""
    if n < 1:
        raise InputError(f"identity_permutation needs at least one class or token, got n={n}")
    return torch.arange(n, dtype=torch.long)


def aligned_positions(orig_ids: torch.Tensor, cf_ids: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """Where the teacher's predictions on a context and its counterfactual can be combined.

    Args:
        orig_ids, cf_ids: ``(batch, length)`` token ids of the original and counterfactual rows,
            padded with ``pad_id`` to the same length.

    Returns:
        A ``(batch, length)`` bool tensor: True at the real (non-pad) positions of rows whose real
        positions are the same in both (same length, same padding side), False elsewhere -- every
        position of a row whose lengths differ is False. With fedpart's swapper and word tokeniser
        every real position is True but in rows where ``ma'am`` became ``sir`` (module docstring);
        the mask also guards against other tokenisers.

    Raises:
        InputError: the two id tensors differ in shape (pad both batches to one length).
    """
    if orig_ids.shape != cf_ids.shape:
        raise InputError(
            f"original ids have shape {tuple(orig_ids.shape)} and counterfactual ids {tuple(cf_ids.shape)}; "
            "pad the original and counterfactual batches to the same length"
        )
    real_orig, real_cf = orig_ids != pad_id, cf_ids != pad_id
    same_layout = (real_orig == real_cf).all(dim=-1, keepdim=True)
    return real_orig & same_layout


@torch.no_grad()
def perturb_teacher(
    p_orig: torch.Tensor,
    p_cf: torch.Tensor | None,
    permutation: torch.Tensor,
    mode: str,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The distillation target ``q`` from the teacher's predictions on a context and its counterfactual.

    Args:
        p_orig: ``(..., V)`` teacher probabilities on the original contexts (already softened with
            the distillation temperature, ``softmax(logits / T)``).
        p_cf: ``(..., V)`` teacher probabilities on the counterfactual contexts, same positions and
            same temperature; may be None for ``mode="none"``.
        permutation: ``(V,)`` involutive permutation of the last axis
            (:func:`gender_token_permutation`, or :func:`identity_permutation` for class labels).
        mode: ``none``, ``mean``, ``max`` or ``swap`` (formulas in the module docstring).
        mask: optional ``(...)`` bool tensor (e.g. :func:`aligned_positions`); where False the
            target is ``p_orig`` unchanged.

    Returns:
        ``(..., V)`` float32 tensor on ``p_orig``'s device; each row sums to 1 when the inputs' rows do.

    Raises:
        InputError: unknown mode, missing ``p_cf``, or shapes that do not match.
    """
    if mode not in MODES:
        raise InputError(f"teacher perturbation mode must be one of {', '.join(MODES)}, got {mode!r}")
    p_orig = p_orig.float()
    if mode == "none":
        return p_orig
    if p_cf is None:
        raise InputError(
            f"teacher perturbation {mode!r} needs the teacher's predictions on the counterfactual contexts"
        )
    if p_cf.shape != p_orig.shape:
        raise InputError(
            f"teacher predictions on original {tuple(p_orig.shape)} and counterfactual {tuple(p_cf.shape)} "
            "contexts differ in shape; run the teacher on batches of the same shape"
        )
    if permutation.shape != (p_orig.shape[-1],):
        raise InputError(
            f"the permutation has shape {tuple(permutation.shape)} but the predictions have "
            f"{p_orig.shape[-1]} outputs; build it from the teacher's vocabulary (or class count)"
        )
    mapped = p_cf.float().index_select(-1, permutation.to(device=p_cf.device, dtype=torch.long))
    if mode == "mean":
        target = (p_orig + mapped) / 2
    elif mode == "max":
        target = torch.maximum(p_orig, mapped)
        target = target / target.sum(dim=-1, keepdim=True)
    else:
        target = mapped
    if mask is not None:
        if mask.shape != p_orig.shape[:-1]:
            raise InputError(
                f"the alignment mask has shape {tuple(mask.shape)}, the predictions {tuple(p_orig.shape)}; "
                "the mask needs one value per position"
            )
        target = torch.where(mask.to(p_orig.device).unsqueeze(-1), target, p_orig)
    return target
