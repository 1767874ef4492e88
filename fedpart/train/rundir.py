"""The layout of a run directory (``fedpart train``/``distill``) and its light readers.

No torch here: ``fedpart report`` reads runs without importing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fedpart.errors import InputError
from fedpart.io.output_dir import write_text_atomic

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
#: the software and device a run was trained with (not compared on ``--resume``)
ENVIRONMENT_FILE = "environment.json"
MODEL_FILE = "model.pt"
#: the completion record, written after ``model.pt`` when the last round is done
FINISHED_FILE = "finished.json"
#: files that make a directory an earlier run which ``--overwrite`` may replace (when they hold what
#: fedpart writes there: see :func:`is_run_dir`)
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


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` when it is missing, unreadable or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_object(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON atomically (strict JSON: no NaN; other values by ``str``)."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")


def not_a_run(run_dir: str | os.PathLike[str], missing: str, what: str = "fedpart run directory") -> InputError:
    """The error for ``run_dir`` lacking the run file ``missing`` (``not a {what}``); a partition
    directory given where a run was meant is named as such."""
    from fedpart.manifest import MANIFEST_FILE

    if (Path(run_dir) / MANIFEST_FILE).is_file():
        return InputError(f"{run_dir}: a partition directory, not a training run; pass the --out directory of a "
                          "`fedpart train` run")
    return InputError(f"{run_dir}: not a {what} (no {missing})")


def read_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``run_dir/config.json`` when it is a run's configuration (a JSON object with a ``task``), else ``None``."""
    config = read_json_object(Path(run_dir) / CONFIG_FILE)
    return config if config is not None and isinstance(config.get("task"), str) else None


def is_run_dir(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds an earlier run that ``--overwrite`` may replace: a run configuration
    (:func:`read_run_config`), or a ``metrics.jsonl`` whose first line is a metrics record. Files
    that merely have these names (``{}``, garbage) do not count."""
    run_dir = Path(run_dir)
    if read_run_config(run_dir) is not None:
        return True
    try:
        with open(run_dir / METRICS_FILE, encoding="utf-8") as handle:
            record = json.loads(handle.readline())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "round" in record and isinstance(record.get("metrics"), dict)


def read_finished_record(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``run_dir/finished.json`` when it is a completion record (a JSON object with an integer
    ``rounds`` and the ``model`` file name), else ``None``."""
    record = read_json_object(Path(run_dir) / FINISHED_FILE)
    if record is None or not isinstance(record.get("rounds"), int) or not isinstance(record.get("model"), str):
        return None
    return record


def is_finished_run(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds a finished run: a valid ``finished.json`` completion record
    (:func:`read_finished_record`), or -- runs without checkpoints, e.g. the Flower runtime's -- no
    ``finished.json`` and a ``model.pt`` without a ``checkpoint.pt``."""
    run_dir = Path(run_dir)
    if (run_dir / FINISHED_FILE).exists():
        return read_finished_record(run_dir) is not None
    return (run_dir / MODEL_FILE).is_file() and not (run_dir / CHECKPOINT_FILE).exists()
