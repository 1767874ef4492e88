"""Task metrics as pure functions (no torch): one module per task family.

- :mod:`.classification`: accuracy and macro-F1 (``tc``).
- :mod:`.tagging`: entity-level precision/recall/F1 with the CoNLL (conlleval) definition (``st``).
- :mod:`.squad`: exact match and F1 with the official SQuAD v1.1 normalisation (``qa``).
- :mod:`.rouge`: ROUGE-1/2/L F1 (``s2s``).
"""
