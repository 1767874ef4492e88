"""A :class:`Source` seen through a per-batch transform (adding derived columns such as ``cluster``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from fedpart.io.sources import Source


class TransformedSource(Source):
    """Applies ``transform`` to every batch of ``source``; ``schema`` is the transformed schema.

    ``transform`` must be deterministic and row-preserving (same rows, same order), so the two
    passes of the engine see the same stream.
    """

    def __init__(
        self, source: Source, transform: Callable[[pa.RecordBatch], pa.RecordBatch], schema: pa.Schema
    ) -> None:
        self.inner = source
        self.transform = transform
        self.schema = schema
        self.description = source.description

    def iter_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        for batch, _ in self.iter_batches_with_ids(columns):
            yield batch

    def iter_batches_with_ids(
        self, columns: Sequence[str] | None = None
    ) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        for batch, positions in self.inner.iter_batches_with_ids():
            out = self.transform(batch)
            yield (out.select(list(columns)) if columns is not None else out), positions

    @property
    def invalid(self) -> Mapping[str, int]:  # type: ignore[override]
        return self.inner.invalid

    def count_rows(self) -> int | None:
        return self.inner.count_rows()

    def fingerprint(self, hash_files: Any = None) -> dict[str, Any]:
        return self.inner.fingerprint(hash_files)
