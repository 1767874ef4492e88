"""Language-model metrics."""

from __future__ import annotations

import math


def perplexity(nll: float) -> float:
    """``exp(nll)``, the perplexity of a mean per-token negative log-likelihood; ``inf`` where that
    overflows a float (``nll`` above about 709.78: a model that puts almost no mass on the text)."""
    try:
        return math.exp(nll)
    except OverflowError:
        return math.inf
