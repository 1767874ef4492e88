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
    "lm": ("fedpart.tasks.models.lm", "LanguageModelTask"),
}


def get_task_model(name: str):  # -> TaskModel
    """The training adapter class of task ``name``."""
    if name not in MODEL_MODULES:
        raise InputError(f"unknown --task {name!r}; choose one of {', '.join(MODEL_MODULES)}")
    module, cls = MODEL_MODULES[name]
    return getattr(importlib.import_module(module), cls)


def make_task_model(name: str, model_size: str | None = None):  # -> TaskModel
    """A fresh training adapter of task ``name``; ``model_size`` picks one of its sizes (``None``: default)."""
    cls = get_task_model(name)
    if model_size is None:
        return cls()
    if model_size not in cls.model_sizes:
        sizes = ", ".join(cls.model_sizes) or "none (one fixed size)"
        raise InputError(f"--model-size {model_size!r} is not a size of --task {name}; sizes: {sizes}")
    return cls(model_size=model_size)


def make_hf_task_model(name: str, model_dir: str):  # -> TaskModel
    """A fresh adapter of task ``name`` over the local Hugging Face model in ``model_dir`` (``--hf-model``).

    Raises:
        InputError: ``transformers`` is not installed, ``model_dir`` is not a model directory, or
        the task has no Hugging Face adapter.
    """
    from fedpart.tasks.models.hf import HF_TASK_MODELS

    if name not in HF_TASK_MODELS:
        raise InputError(f"--hf-model does not apply to --task {name}; it supports {', '.join(HF_TASK_MODELS)}")
    return HF_TASK_MODELS[name](model_dir)
