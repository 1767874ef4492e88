"""The knowledge-distillation loss: temperature-scaled KL to the teacher plus the task loss.

Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network": the student matches the
teacher's distribution softened with temperature ``T`` and, with a second weight, the hard labels::

    loss = alpha_kd * T^2 * mean_i KL(q_i || softmax(z_i / T)) + alpha_lm * mean_i CE(softmax(z_i), y_i)

over the positions ``i`` whose label is not ``ignore_index`` (next-word positions for a language
model, rows for a classifier). ``z`` are the student's logits; ``q`` is the teacher's target,
*already* softened and perturbed by the caller: ``q = perturb_teacher(softmax(t / T),
softmax(t' / T), perm, mode)`` with ``t``/``t'`` the teacher's logits on the original and
counterfactual contexts (:mod:`fedpart.distill.perturb`). The ``T^2`` keeps the soft term's gradient
on the scale of the hard term's when ``T`` changes (Hinton et al. 2015, section 2); the hard term
uses the unsoftened logits (temperature 1).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from fedpart.errors import InputError


def distillation_terms(
    student_logits: torch.Tensor,
    teacher_probs: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float,
    ignore_index: int = -100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two unweighted terms ``(T^2 * mean KL, mean CE)`` of :func:`distillation_loss`.

    ``labels=None`` counts every position and gives a CE term of 0. With no counted position both
    terms are 0 (still attached to the graph).
    """
    if temperature <= 0:
        raise InputError(f"the distillation temperature must be positive, got {temperature}")
    if student_logits.shape != teacher_probs.shape:
        raise InputError(
            f"student logits {tuple(student_logits.shape)} and teacher probabilities {tuple(teacher_probs.shape)} "
            "differ in shape; the teacher and student need the same vocabulary (or classes) and positions"
        )
    if labels is not None and labels.shape != student_logits.shape[:-1]:
        raise InputError(
            f"labels have shape {tuple(labels.shape)}, expected {tuple(student_logits.shape[:-1])} "
            "(one label per position of the student logits)"
        )
    logits = student_logits.float().reshape(-1, student_logits.shape[-1])
    target = teacher_probs.float().reshape(-1, teacher_probs.shape[-1]).to(logits.device)
    if labels is None:
        keep = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    else:
        keep = labels.reshape(-1).to(logits.device) != ignore_index
    count = keep.sum()
    zero = logits.sum() * 0.0
    if int(count) == 0:
        return zero, zero
    log_student = F.log_softmax(logits[keep] / temperature, dim=-1)
    # kl_div(log q_s, q_t) = sum q_t (log q_t - log q_s), with 0 log 0 = 0 where the teacher gives 0
    kl = F.kl_div(log_student, target[keep], reduction="sum") / count
    soft = temperature**2 * kl
    if labels is None:
        return soft, zero
    hard = F.cross_entropy(logits[keep], labels.reshape(-1).to(logits.device)[keep])
    return soft, hard


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_probs: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float,
    alpha_kd: float,
    alpha_lm: float,
    ignore_index: int = -100,
) -> torch.Tensor:
    """``alpha_kd * T^2 * KL(teacher_T || softmax(student / T)) + alpha_lm * CE(student, labels)``.

    Args:
        student_logits: ``(..., V)`` raw student logits (next-word positions or class scores).
        teacher_probs: ``(..., V)`` teacher target probabilities, already softened with
            ``softmax(teacher_logits / temperature)`` and perturbed (:func:`~fedpart.distill.perturb.
            perturb_teacher`); each row sums to 1.
        labels: ``(...)`` gold ids (next words or classes); positions equal to ``ignore_index`` are
            left out of both terms (padding: pass ``ignore_index=0`` for fedpart's ``<pad>`` id).
            None: every position counts and ``alpha_lm`` must be 0.
        temperature: the softening temperature ``T > 0`` the teacher's probabilities were made with.
        alpha_kd, alpha_lm: weights of the soft (distillation) and hard (label) terms.

    Returns:
        A scalar float32 tensor, differentiable with respect to ``student_logits``; both terms are
        means over the counted positions (0 when there is none).

    Raises:
        InputError: shapes disagree, ``T <= 0``, a negative weight, or ``alpha_lm > 0`` without labels.
    """
    if alpha_kd < 0 or alpha_lm < 0:
        raise InputError(f"distillation weights must be >= 0, got alpha_kd={alpha_kd}, alpha_lm={alpha_lm}")
    if labels is None and alpha_lm > 0:
        raise InputError("alpha_lm > 0 needs labels (the gold next words or classes)")
    soft, hard = distillation_terms(student_logits, teacher_probs, labels, temperature, ignore_index)
    return alpha_kd * soft + alpha_lm * hard
