"""Plot files: the formats fedpart writes, checked before any work, and reproducible saving.

Light to import: matplotlib is imported by the callers that draw, not here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fedpart.errors import InputError
from fedpart.io.output_file import make_parent

#: file extensions a plot may have (matplotlib's Agg formats that save without extra software)
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")
#: the format of a plot path without extension
DEFAULT_PLOT_FORMAT = "png"
# metadata that would change between runs (dates, library versions), cleared so equal plots are equal bytes
_VOLATILE_METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
    "svgz": {"Creator": None, "Date": None},
    "eps": {"Creator": None},
    "ps": {"Creator": None},
}


def plot_path(path: str | os.PathLike[str], flag: str = "--plot") -> Path:
    """The file a plot named ``path`` is written to: ``path`` itself when its extension is one of
    :data:`PLOT_FORMATS` (any case), ``path`` + ``.png`` when it has no extension.

    Raises:
        InputError: another extension (e.g. ``.txt``), naming ``flag`` and the formats.
    """
    path = Path(path)
    extension = path.suffix[1:].lower()
    if not extension:
        return path.with_name(f"{path.name}.{DEFAULT_PLOT_FORMAT}")
    if extension not in PLOT_FORMATS:
        raise InputError(f"{flag} {path}: cannot write a .{extension} plot; end the file name with one of "
                         f".{', .'.join(PLOT_FORMATS)} (none: .{DEFAULT_PLOT_FORMAT})")
    return path


def save_figure(fig: Any, path: str | os.PathLike[str], flag: str = "--plot") -> Path:
    """Save the matplotlib figure ``fig`` to :func:`plot_path` of ``path`` in that format, without
    run-dependent metadata; return the file written (its missing folders created)."""
    path = make_parent(plot_path(path, flag))
    extension = path.suffix[1:].lower()
    fig.savefig(path, format=extension, metadata=_VOLATILE_METADATA.get(extension))
    return path
