"""Carry a word's letter case (and apostrophe) over to its replacement: she -> he, She -> He, SHE -> HE."""

from __future__ import annotations


def match_case(surface: str, target: str) -> str:
    """``target`` (as written in the lexicon, usually lower case) in the case pattern of ``surface``.

    All capitals (two or more letters) -> all capitals; a capital first letter -> capital first
    letter, the rest as in ``target``; otherwise ``target`` unchanged. A curly apostrophe in
    ``surface`` makes the straight one of ``target`` curly (guv\u2019nor -> gov\u2019ness).
    """
    if "\u2019" in surface and "'" in target:
        target = target.replace("'", "\u2019")
    if len(surface) > 1 and surface.isupper():
        return target.upper()
    if surface[:1].isupper():
        return target[:1].upper() + target[1:]
    return target
