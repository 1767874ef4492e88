"""Atomic output directories: write into a hidden temp dir beside the target, then rename.

A run that fails (or is killed) never leaves a directory at the target path that looks complete:
the temp dir is removed on error, and a killed run leaves only a hidden ``.NAME.tmp-*`` folder.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fedpart.errors import OutputError
from fedpart.io.output_file import make_parent


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to a hidden temporary file beside ``path`` and move it into place: a
    reader never sees half a file, and a failed write leaves an earlier ``path`` as it was and no
    temporary file behind. Missing folders of ``path`` are created. Returns ``path``."""
    path = make_parent(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_output_path(out: Path, overwrite: bool, marker: str | None = None) -> None:
    """Raise :class:`OutputError` if ``out`` exists and may not be replaced.

    With ``marker`` (e.g. ``manifest.json``), ``--overwrite`` replaces only an empty directory or
    one holding that file -- an earlier output of the same kind --, never an unrelated directory.
    """
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory; remove it or choose another --out")
    if out.exists() and marker is not None:
        check_replaceable(out, lambda directory: is_fedpart_record(directory / marker), marker)


def check_replaceable(out: Path, is_earlier: Callable[[Path], bool], marker: str) -> None:
    """Refuse to replace the directory ``out`` when it is not empty and ``is_earlier`` does not
    recognise it as an earlier fedpart output (``marker``: the file(s) that would say so).

    Raises:
        OutputError: saying that ``--overwrite`` replaces only earlier outputs.
    """
    if not is_earlier(out) and any(out.iterdir()):
        raise OutputError(
            f"{out}: is not empty and has no {marker} written by fedpart, so it is not an earlier fedpart "
            "output; --overwrite only replaces those: choose another --out or empty it yourself"
        )


def is_fedpart_record(path: Path) -> bool:
    """Whether ``path`` holds what fedpart writes there: a JSON object (``*.json``) or JSON lines whose
    first line is an object (``*.jsonl``). A file that merely has the name does not count."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.readline() if path.suffix == ".jsonl" else handle.read()
        return isinstance(json.loads(text), dict)
    except (OSError, ValueError):
        return False


def check_output_not_over_inputs(out: Path, inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse an output path that is (or contains) one of the ``inputs`` (files or directories):
    replacing it would delete the input; or that lies inside an input directory, or where an input
    glob pattern reaches, where the next run would read the output back as input.

    Raises:
        OutputError: naming the input.
    """
    target = Path(out).resolve()
    for name in inputs:
        if _is_pattern(name) and _pattern_reaches_into(os.fspath(name), out):
            raise OutputError(
                f"{out}: lies where the input pattern {name} reads files; choose an --out outside the input"
            )
        path = Path(name).resolve()
        if path == target or target in path.parents:
            raise OutputError(f"{out}: is or contains the input {name}; choose an --out outside the input")
        if path.is_dir() and path in target.parents:
            raise OutputError(f"{out}: lies inside the input directory {name}; choose an --out outside the input")


def _is_pattern(name: str | os.PathLike[str]) -> bool:
    """Whether an input is a glob pattern: it has glob characters and names no existing path."""
    return any(ch in os.fspath(name) for ch in "*?[") and not Path(name).exists()


#: files fedpart writes into an output directory (partition, augment, train), relative to it: an input
#: glob that can match one of them would read the output back on the next run
OUTPUT_FILES = (
    "manifest.json", "test.parquet", "label_distribution.png", "clusters.npz", "_augmentation.json",
    "part-00000.parquet", "clients/client-00000.parquet", "clients/client-00000/part-00000.parquet",
    "config.json", "vocab.json", "metrics.jsonl", "checkpoint.pt", "model.pt", "finished.json", "environment.json",
)


def _pattern_reaches_into(pattern: str, directory: str | os.PathLike[str]) -> bool:
    """Whether the (recursive) glob ``pattern`` can match a file fedpart writes into ``directory``
    (one of :data:`OUTPUT_FILES`): ``data/**/*.csv`` does not reach ``data/parts``, ``data/**`` does."""
    parts = Path(os.path.abspath(pattern)).parts
    base = Path(os.path.abspath(directory))

    def matches(p: int, target: tuple[str, ...], t: int) -> bool:
        if t == len(target):  # the whole path matched: what is left of the pattern must match nothing
            return all(part == "**" for part in parts[p:])
        if p == len(parts):
            return False
        if parts[p] == "**":  # zero or more directories
            return matches(p + 1, target, t) or matches(p, target, t + 1)
        return fnmatch.fnmatchcase(target[t], parts[p]) and matches(p + 1, target, t + 1)

    return any(matches(0, (base / name).parts, 0) for name in OUTPUT_FILES)


@contextmanager
def atomic_output_dir(
    out: str | os.PathLike[str], overwrite: bool = False, marker: str | None = None
) -> Iterator[Path]:
    """Yield a fresh temp directory that becomes ``out`` when the block finishes without error.

    With ``overwrite`` an existing ``out`` is replaced (moved aside, then deleted, after the new
    directory is in place); ``marker`` as in :func:`check_output_path`.

    Raises:
        OutputError: ``out`` exists without ``overwrite``, or its parent cannot be written.
    """
    out = Path(os.path.abspath(out))  # "." or "dir/.." can be renamed only by a real name
    check_output_path(out, overwrite, marker)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as error:
        raise OutputError(f"{out}: cannot create output directory ({error.strerror})") from error
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        check_output_path(out, overwrite, marker)  # someone may have created it meanwhile
        _replace_dir(tmp, out, parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(new: Path, out: Path, parent: Path) -> None:
    """Move ``new`` to ``out``; an existing ``out`` is moved aside first and deleted afterwards (put
    back if the move fails)."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
    try:
        os.replace(out, old / "previous")
    except OSError as error:
        old.rmdir()
        raise OutputError(f"{out}: cannot be replaced ({error.strerror}); choose another --out") from error
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old / "previous", out)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)
