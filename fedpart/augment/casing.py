"""Carry a word's letter case over to its replacement: she -> he, She -> He, SHE -> HE."""

from __future__ import annotations


def match_case(surface: str, target: str) -> str:
    """``target`` (as written in the lexicon, usually lower case) in the case pattern of ``surface``.

    All capitals (two or more letters) -> all capitals; a capital first letter -> capital first
    letter, the rest as in ``target``; otherwise ``target`` unchanged.
    """
    if len(surface) > 1 and surface.isupper():
        return target.upper()
    if surface[:1].isupper():
        return target[:1].upper() + target[1:]
    return target
