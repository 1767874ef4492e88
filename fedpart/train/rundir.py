"""The layout of a run directory (``fedpart train``/``distill``) and its light readers.

No torch here: ``fedpart report`` reads runs without importing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fedpart.errors import InputError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
#: the completion record, written after ``model.pt`` when the last round is done
FINISHED_FILE = "finished.json"
#: files that make a directory an earlier run which ``--overwrite`` may replace
RUN_MARKERS = (CONFIG_FILE, METRICS_FILE)


def parse_metrics(path: Path, allow_partial_last: bool = False) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (blank lines skipped).

    ``allow_partial_last`` drops a malformed last line -- what a run killed mid-write leaves.

    Raises:
        InputError: a malformed line, naming the file and line number.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "round" not in record:
                raise ValueError("not a metrics record")
        except ValueError as error:
            if allow_partial_last and number == len(lines):
                break
            raise InputError(f"{path}:{number}: malformed metrics line ({error}); the run was interrupted "
                             "mid-write or the file was edited") from error
        records.append(record)
    return records


def is_finished_run(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds a finished run: its ``finished.json`` completion record, or -- runs
    without checkpoints, e.g. the Flower runtime's -- a ``model.pt`` without a ``checkpoint.pt``."""
    run_dir = Path(run_dir)
    if (run_dir / FINISHED_FILE).is_file():
        return True
    return (run_dir / MODEL_FILE).is_file() and not (run_dir / CHECKPOINT_FILE).exists()
