"""Data files shipped with fedpart: the gender-pair lexicon and first-name pairs of fedpart.augment."""
