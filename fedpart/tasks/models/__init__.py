"""Training-side task adapters (torch): featurisation, model, loss and metrics for each task.

Imported only by ``fedpart train``; the data-side task modules in :mod:`fedpart.tasks` stay light.
"""

from __future__ import annotations

import importlib

from fedpart.errors import InputError

MODEL_MODULES = {
    "tc": ("fedpart.tasks.models.tc", "TextClassifierTask"),
    "st": ("fedpart.tasks.models.st", "TaggerTask"),
    "qa": ("fedpart.tasks.models.qa", "SpanQATask"),
    "s2s": ("fedpart.tasks.models.s2s", "Seq2SeqTask"),
}


def get_task_model(name: str):  # -> TaskModel
    """The training adapter class of task ``name``."""
    if name not in MODEL_MODULES:
        raise InputError(f"unknown --task {name!r}; choose one of {', '.join(MODEL_MODULES)}")
    module, cls = MODEL_MODULES[name]
    return getattr(importlib.import_module(module), cls)
