"""Feature (cluster) skew: embed each example's text and cluster it, streaming.

FedNLP's ``niid_cluster`` (Lin et al. 2022) clusters sentence embeddings with k-means and then
applies Dirichlet label skew over cluster ids. fedpart's default embedding works offline and fast:
hashed TF-IDF of word uni- and bigrams (scikit-learn's ``HashingVectorizer`` + ``TfidfTransformer``
with IDF fitted on the first ``idf_rows`` rows), L2-normalised. ``MiniBatchKMeans.partial_fit`` is fed
batch by batch (pass 0), and cluster ids are predicted again in the engine's passes 1 and 2, so
memory is bounded by one batch plus the centroids. ``sentence-transformers:NAME`` uses a local
sentence-transformers model instead (dense embeddings).

The fitted clusterer is saved as ``clusters.npz`` (centroids, IDF, parameters) in the partition
directory, so the clustering is reproducible and inspectable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpart.errors import InputError

HASHED_TFIDF = "hashed-tfidf"
ST_PREFIX = "sentence-transformers:"


def check_text_columns(schema: pa.Schema, columns: Sequence[str], where: str) -> None:
    """Raise :class:`InputError` unless every column of ``columns`` holds what :func:`texts_of` can turn
    into text: a flat (non-nested) type, or a list of strings (tokens)."""
    for name in columns:
        col_type = schema.field(name).type
        tokens = (pa.types.is_list(col_type) or pa.types.is_large_list(col_type)) and (
            pa.types.is_string(col_type.value_type) or pa.types.is_large_string(col_type.value_type)
        )
        if pa.types.is_nested(col_type) and not tokens:
            raise InputError(
                f"{where}: text column {name!r} (from --text-col) has type {col_type}, expected strings or "
                "lists of strings (tokens); name the text to cluster with --text-col"
            )


def texts_of(batch: pa.RecordBatch, columns: Sequence[str]) -> list[str]:
    """The text to embed for each row: string columns as they are, token lists joined by spaces."""
    parts = []
    for name in columns:
        col = batch.column(name)
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            col = pc.binary_join(col, pa.scalar(" ", col.type.value_type))  # string or large_string
        parts.append(pc.fill_null(col.cast(pa.string()), ""))
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, " ")
    return joined.to_pylist()


@dataclass
class TextClusterer:
    """Embeds texts and assigns them to ``n_clusters`` k-means clusters.

    Call :meth:`fit` once with batches of texts, then :meth:`predict`; both are deterministic for
    a fixed ``seed`` and input order.
    """

    n_clusters: int
    seed: int = 0
    embedder: str = HASHED_TFIDF
    n_features: int = 2**18
    idf_rows: int = 20_000
    _vectorizer: Any = field(default=None, repr=False)
    _tfidf: Any = field(default=None, repr=False)
    _model: Any = field(default=None, repr=False)
    _dense: Any = field(default=None, repr=False)

    def _embed(self, texts: list[str]) -> Any:
        if self._dense is not None:
            return np.asarray(self._dense.encode(texts, normalize_embeddings=True), dtype=np.float64)
        return self._tfidf.transform(self._vectorizer.transform(texts))

    def _init_embedder(self, first_texts: list[str]) -> None:
        if self.embedder.startswith(ST_PREFIX):
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise InputError(
                    "--embedder sentence-transformers:NAME needs `pip install sentence-transformers`"
                ) from error
            name = self.embedder[len(ST_PREFIX):]
            try:
                self._dense = SentenceTransformer(name, device="cpu")
            except Exception as error:  # noqa: BLE001 - any load failure means "no such local model"
                raise InputError(f"--embedder: cannot load sentence-transformers model {name!r} ({error})") from error
            return
        if self.embedder != HASHED_TFIDF:
            raise InputError(f"unknown --embedder {self.embedder!r}; use {HASHED_TFIDF} or {ST_PREFIX}NAME")
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        self._vectorizer = HashingVectorizer(
            n_features=self.n_features, ngram_range=(1, 2), alternate_sign=False, norm=None,
            lowercase=True,
        )
        self._tfidf = TfidfTransformer(sublinear_tf=True).fit(self._vectorizer.transform(first_texts))

    def fit(self, text_batches: Iterable[list[str]]) -> TextClusterer:
        """Fit the embedder (IDF on the first ``idf_rows`` texts) and k-means over all batches."""
        from sklearn.cluster import MiniBatchKMeans

        pending: list[str] = []
        for texts in text_batches:
            pending.extend(texts)
            if self._model is None and len(pending) < max(self.idf_rows, 3 * self.n_clusters):
                continue  # the first chunk must be large enough to seed k-means and the IDF
            self._partial_fit(pending, MiniBatchKMeans)
            pending = []
        if pending or self._model is None:
            self._partial_fit(pending, MiniBatchKMeans)
        return self

    def _partial_fit(self, texts: list[str], kmeans_cls: Any) -> None:
        if self._model is None:
            if len(texts) < self.n_clusters:
                raise InputError(
                    f"--clusters {self.n_clusters} exceeds the {len(texts)} texts to cluster; use fewer clusters"
                )
            self._init_embedder(texts)
            self._model = kmeans_cls(n_clusters=self.n_clusters, random_state=self.seed, n_init=3,
                                     batch_size=1024)
        if texts:
            self._model.partial_fit(self._embed(texts))

    def predict(self, texts: list[str]) -> np.ndarray:
        """Cluster id (int64) of each text."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._model.predict(self._embed(texts)), dtype=np.int64)

    def save(self, path: str | Path) -> None:
        """Write centroids, IDF weights and parameters to an ``.npz`` file."""
        idf = self._tfidf.idf_ if self._tfidf is not None else np.zeros(0)
        np.savez_compressed(
            path,
            centroids=np.asarray(self._model.cluster_centers_),
            idf=np.asarray(idf),
            n_clusters=self.n_clusters,
            seed=self.seed,
            embedder=self.embedder,
            n_features=self.n_features,
            idf_rows=self.idf_rows,
        )
