"""Single output files (plots, reports, JSON/CSV records): checked before any work, written whole.

One policy for every command that writes a file next to its main output (``report``, ``eval bias``,
``augment counterfactual --report``): the checks run before any work, so a refused run costs
nothing and leaves nothing behind; missing folders are created when the file is written, as for
``--out`` directories.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from fedpart.errors import OutputError

PathLike = str | os.PathLike[str]


def check_output_file(path: PathLike, flag: str, avoid: Mapping[PathLike, str] | None = None) -> None:
    """Raise :class:`OutputError`, before any work, if ``flag``'s file ``path`` cannot be written.

    ``avoid`` maps paths the file must neither be nor lie inside (a command's inputs, its output
    directory) to what they are (``"the input"``, ``"the run"``): writing there would replace or add
    to what the command reads or writes as a whole. Nothing is created: a missing folder is only
    checked to be creatable (the nearest existing one is a writable directory); the writability of
    a folder is probed with a temporary file, the only sure test (read-only mounts, ``/proc``, root).

    Raises:
        OutputError: ``path`` is a directory, one of ``avoid`` or inside one, or cannot be written;
            the message names ``path``, the reason and ``flag``.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{path}: is a directory; {flag} names the file to write")
    resolved = target.resolve()
    for other, role in (avoid or {}).items():
        other_resolved = Path(other).resolve()
        if resolved == other_resolved:
            raise OutputError(f"{path}: is {role} {other}; choose another {flag} file")
        if other_resolved in resolved.parents:
            raise OutputError(f"{path}: lies inside {role} {other}; choose a {flag} file outside it")
    folder = resolved.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: {folder} is a file, not a folder; choose another {flag}")
    try:
        if target.exists():
            with open(target, "a", encoding="utf-8"):
                pass
        else:
            handle, probe = tempfile.mkstemp(prefix=f".{target.name}.probe-", dir=folder)
            os.close(handle)
            os.unlink(probe)
    except OSError as error:
        raise OutputError(f"{path}: cannot be written ({error.strerror or error}); choose another {flag}") from error


def check_distinct_outputs(outputs: Mapping[str, PathLike | None]) -> None:
    """Refuse two of ``outputs`` (``{flag: path}``; ``None``: not asked for) naming the same file.

    Raises:
        OutputError: naming the file and both flags.
    """
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        target = Path(path).resolve()
        if target in seen:
            raise OutputError(f"{path}: {seen[target]} and {flag} name the same file; choose two files")
        seen[target] = flag


def make_parent(path: PathLike) -> Path:
    """Create the folders of ``path`` that are missing; return ``path`` as a :class:`Path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
