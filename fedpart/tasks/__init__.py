"""The NLP task families, one module each, behind one registry (``--task NAME``).

| task | name | canonical columns |
|---|---|---|
| text classification | ``tc`` | ``text``, ``label`` |
| sequence tagging (NER) | ``st`` | ``tokens``, ``tags`` (BIO), derived ``entity_type`` |
| extractive QA | ``qa`` | ``id``, ``title``, ``context``, ``question``, ``answers`` |
| seq2seq / summarisation | ``s2s`` | ``source``, ``target`` |
| causal language modelling | ``lm`` | ``text`` |

Modules are imported lazily so ``fedpart --help`` stays light.
"""

from __future__ import annotations

import importlib

from fedpart.errors import InputError
from fedpart.tasks.base import ColumnMap, Task, TaskOptions

TASK_MODULES: dict[str, tuple[str, str]] = {
    "tc": ("fedpart.tasks.tc", "TextClassification"),
    "st": ("fedpart.tasks.st", "SequenceTagging"),
    "qa": ("fedpart.tasks.qa", "ExtractiveQA"),
    "s2s": ("fedpart.tasks.s2s", "Seq2Seq"),
    "lm": ("fedpart.tasks.lm", "LanguageModeling"),
}
TASK_NAMES = tuple(TASK_MODULES)


def get_task(name: str) -> Task:
    """The task registered as ``name`` (``tc``, ``st``, ``qa``, ``s2s``, ``lm``)."""
    if name not in TASK_MODULES:
        raise InputError(f"unknown --task {name!r}; choose one of {', '.join(TASK_MODULES)}")
    module, cls = TASK_MODULES[name]
    return getattr(importlib.import_module(module), cls)()


__all__ = ["TASK_NAMES", "ColumnMap", "Task", "TaskOptions", "get_task"]
