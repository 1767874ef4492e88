"""Atomic output directories: write into a hidden temp dir beside the target, then rename.

A run that fails (or is killed) never leaves a directory at the target path that looks complete:
the temp dir is removed on error, and a killed run leaves only a hidden ``.NAME.tmp-*`` folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fedpart.errors import OutputError


def check_output_path(out: Path, overwrite: bool) -> None:
    """Raise :class:`OutputError` if ``out`` exists and may not be replaced."""
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory; remove it or choose another --out")


@contextmanager
def atomic_output_dir(out: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temp directory that becomes ``out`` when the block finishes without error.

    With ``overwrite`` an existing ``out`` is replaced (moved aside, then deleted, after the new
    directory is in place).

    Raises:
        OutputError: ``out`` exists without ``overwrite``, or its parent cannot be written.
    """
    out = Path(out)
    check_output_path(out, overwrite)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as error:
        raise OutputError(f"{out}: cannot create output directory ({error.strerror})") from error
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        check_output_path(out, overwrite)  # someone may have created it meanwhile
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.replace(out, old / "previous")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
