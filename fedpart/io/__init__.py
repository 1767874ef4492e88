"""Readers (streaming record batches in) and writers (Parquet shards out)."""
