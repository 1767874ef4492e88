"""Bias-mitigating knowledge distillation with counterfactual role reversal (Gupta et al. 2022).

- :mod:`.perturb`: the teacher's predictions on a context and on its gender-swapped counterfactual,
  combined into the distillation target (``--teacher-perturb none|mean|max|swap``), and the token
  permutation that aligns the two (he <-> she, ...).
- :mod:`.loss`: the distillation loss, temperature-scaled KL to the teacher plus the task loss
  (Hinton et al. 2015).

torch is needed (``pip install 'fedpart[train]'``).
"""

from __future__ import annotations

from fedpart.distill.loss import distillation_loss, distillation_terms
from fedpart.distill.perturb import (
    AMBIGUOUS_COUNTERPARTS,
    MODES,
    aligned_positions,
    gender_token_permutation,
    identity_permutation,
    lexicon_swap_pairs,
    perturb_teacher,
)

__all__ = [
    "AMBIGUOUS_COUNTERPARTS",
    "MODES",
    "aligned_positions",
    "distillation_loss",
    "distillation_terms",
    "gender_token_permutation",
    "identity_permutation",
    "lexicon_swap_pairs",
    "perturb_teacher",
]
