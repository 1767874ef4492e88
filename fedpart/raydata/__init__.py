"""Ray Data engine: ``fedpart partition --engine ray`` and ``fedpart augment counterfactual --engine ray``.

The same pure functions as the local engine, run over the input's pieces (runs of Parquet row
groups, or whole files; :meth:`fedpart.io.sources.Source.split`) by Ray Data tasks:

* pass 1 counts every piece in parallel (:func:`fedpart.counting.count_partial`); the driver merges
  the small per-piece tables and draws the plan once;
* pass 2 needs no shuffle: a piece's rows of key ``k`` continue the key's ranks where the pieces
  before it stopped, so every piece is assigned independently from pass 1's per-piece counts
  (:class:`fedpart.assign.RowAssigner` with ``start``) -- the same client for every row as the
  local engine -- and its task writes its own part file per client.

Install with ``pip install 'fedpart[ray]'``. On a cluster (``--ray-address auto``) the input and
``--out`` must be on a file system every node sees.
"""
