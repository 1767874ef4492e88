"""``fedpart distill``: train a student from a finished teacher run, with counterfactual role reversal.

The student is the teacher's task model at ``--student-size``, sharing the teacher's vocabulary (and
labels), so their next-word (or class) distributions live on the same axis. Its loss is
:func:`fedpart.distill.loss.distillation_loss`: ``alpha_kd * T^2 * KL(q || student_T) + alpha_lm *
CE``, where ``q`` is the teacher's temperature-softened prediction, perturbed with the teacher's
prediction on the counterfactual context (:func:`fedpart.distill.perturb.perturb_teacher`, Gupta et
al. 2022).

Counterfactual data augmentation of the distillation corpus (``cda``), with fedpart's
:class:`~fedpart.augment.GenderSwapper`:

- ``none``: the original texts; ``one-sided``: only their counterfactuals; ``two-sided``: both.

Every training row carries its *counterpart* (the counterfactual of an original row, the original of
a counterfactual row), which is the context the teacher is also run on for ``--teacher-perturb``.

The run directory has the layout of ``fedpart train`` (``config.json``, ``metrics.jsonl``,
checkpoints, ``--resume``, ``model.pt``) and reuses its round loop, so a student can be distilled
centrally or federated (``--algo fedavg`` over a partition directory's client shards). In this
simulation each sampled client queries the frozen teacher for its batches' targets; in a deployment
the server would hold the teacher and send its (perturbed) soft targets with the global weights.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import torch

from fedpart.checks import check_float32
from fedpart.errors import FedpartWarning, InputError
from fedpart.io.output_dir import check_output_not_over_inputs
from fedpart.manifest import MANIFEST_FILE, Manifest
from fedpart.tasks.models import get_task_model, make_task_model
from fedpart.tasks.models.base import Batch, TaskModel
from fedpart.train.federated import FederatedConfig
from fedpart.train.runner import (
    MODEL_FILE,
    RunData,
    check_evaluation_labels,
    check_partition_task,
    check_run_arguments,
    check_run_dir,
    load_trained,
    read_evaluation_table,
    resolve_device,
    run_evaluation_file,
    run_rounds,
    shard_table,
    warn_excess_clients,
)
from fedpart.verify import manifest_digest, sha256_of, verify_partition

CDA_MODES = ("none", "one-sided", "two-sided")
DISTILLABLE_TASKS = ("lm", "tc")
COUNTERPART = "counterpart"


@dataclass(frozen=True)
class DistillConfig:
    """What ``fedpart distill`` changes about standard distillation (all recorded in config.json)."""

    student_size: str = "small"
    cda: str = "none"
    teacher_perturb: str = "none"
    temperature: float = 2.0
    alpha_kd: float = 0.5
    alpha_lm: float = 0.5
    spacy_model: str = "auto"

    def __post_init__(self) -> None:
        from fedpart.distill.perturb import MODES

        if self.cda not in CDA_MODES:
            raise InputError(f"--cda must be one of {', '.join(CDA_MODES)}, got {self.cda!r}")
        if self.teacher_perturb not in MODES:
            raise InputError(f"--teacher-perturb must be one of {', '.join(MODES)}, got {self.teacher_perturb!r}")
        for name in ("temperature", "alpha_kd", "alpha_lm"):  # nan passes every comparison below
            check_float32(getattr(self, name), f"--{name.replace('_', '-')}")
        if self.temperature <= 0:
            raise InputError(f"--temperature must be > 0, got {self.temperature}")
        if self.alpha_kd < 0 or self.alpha_lm < 0 or self.alpha_kd + self.alpha_lm == 0:
            raise InputError("--alpha-kd and --alpha-lm must be >= 0 and not both 0")
        if self.alpha_kd == 0 and self.teacher_perturb != "none":
            raise InputError(f"--teacher-perturb {self.teacher_perturb} perturbs the teacher's target, which "
                             "--alpha-kd 0 leaves unused; give the distillation term a weight or drop --teacher-perturb")


def counterfactual_training_table(table: pa.Table, cda: str, swap_texts: Any) -> pa.Table:
    """``table`` (canonical, with ``text``) as the distillation corpus of ``cda``, with a
    ``counterpart`` column: each row's counterfactual (for originals) or original (for counterfactuals).

    ``swap_texts`` maps a list of texts to their counterfactuals (a :class:`GenderSwapper`'s).
    Two-sided rows are the originals followed by the counterfactuals; the other columns are copied.
    """
    texts = table.column("text").to_pylist()
    swapped = pa.array(swap_texts(texts), pa.string())
    original = table.column("text").combine_chunks().cast(pa.string())
    with_cf = table.set_column(table.schema.get_field_index("text"), "text", original).append_column(COUNTERPART, swapped)
    if cda == "none":
        return with_cf
    reversed_rows = table.set_column(table.schema.get_field_index("text"), "text", swapped).append_column(
        COUNTERPART, original
    )
    return reversed_rows if cda == "one-sided" else pa.concat_tables([with_cf, reversed_rows])


class DistillationTask(TaskModel):
    """A student task adapter whose loss distils a frozen teacher (see the module docstring)."""

    name: ClassVar[str] = "distill"
    main_metric: ClassVar[str] = "perplexity"

    def __init__(self, student: TaskModel, teacher: torch.nn.Module, config: DistillConfig,
                 permutation: torch.Tensor) -> None:
        self.student, self.teacher, self.config = student, teacher, config
        self.permutation = permutation
        self.main_metric = student.main_metric  # type: ignore[misc]

    def fit(self, tables: list[pa.Table]) -> None:
        """Nothing to fit: the student shares the teacher's vocabulary and labels."""

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        data = self.student.featurize(table, device)
        if COUNTERPART in table.column_names:
            counterpart = table.set_column(table.schema.get_field_index("text"), "text", table.column(COUNTERPART))
            data["cf_tokens"] = self.student.featurize(counterpart, device)["tokens"]
        return data

    def build_model(self) -> torch.nn.Module:
        return self.student.build_model()

    def _inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, int]:
        """(student/teacher input ids, counterpart input ids, gold labels, ignore index) of a batch."""
        tokens, cf = batch["tokens"], batch.get("cf_tokens")
        if self.student.name != "lm":
            return tokens, cf, batch["label"], -100
        # next-word prediction (the student's input/label split and padding); trim shared padding
        split, pad_id = self.student.next_token_inputs, self.student.pad_id  # type: ignore[attr-defined]
        length = max(2, int(((tokens != pad_id) | ((cf if cf is not None else tokens) != pad_id)).sum(1).max()))
        inputs, labels, ignore = split(tokens[:, :length])
        return inputs, None if cf is None else split(cf[:, :length])[0], labels, ignore

    def loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        from fedpart.distill.loss import distillation_loss
        from fedpart.distill.perturb import aligned_positions, perturb_teacher

        inputs, cf_inputs, labels, ignore = self._inputs(batch)
        temperature, mode = self.config.temperature, self.config.teacher_perturb
        with torch.no_grad():
            p_orig = torch.softmax(self.teacher(inputs).float() / temperature, dim=-1)
            if mode == "none" or cf_inputs is None:
                target = p_orig
            else:
                p_cf = torch.softmax(self.teacher(cf_inputs).float() / temperature, dim=-1)
                mask = (aligned_positions(inputs, cf_inputs, self.student.pad_id)  # type: ignore[attr-defined]
                        if self.student.name == "lm" else None)
                target = perturb_teacher(p_orig, p_cf, self.permutation, mode, mask)
        return distillation_loss(model(inputs), target, labels, temperature,
                                 self.config.alpha_kd, self.config.alpha_lm, ignore_index=ignore)

    def evaluate(self, model: torch.nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        return self.student.evaluate(model, data, table)

    def save(self, directory: Path) -> None:
        self.student.save(directory)

    def load(self, directory: Path) -> None:
        self.student.load(directory)

    def describe(self) -> dict[str, Any]:
        return self.student.describe()


def _student_of(teacher_task: TaskModel, teacher_dir: Path, student_size: str) -> TaskModel:
    """The teacher's task adapter at ``student_size``, with the teacher's vocabulary and labels
    (an ``--hf-model`` lm teacher: a fresh model of its architecture family with its tokenizer)."""
    if hasattr(teacher_task, "make_student"):
        return teacher_task.make_student(student_size)  # type: ignore[attr-defined]
    if hasattr(teacher_task, "tokenizer"):
        raise InputError(f"{teacher_dir}: an --hf-model {teacher_task.name} teacher; fedpart distils --hf-model "
                         "teachers of --task lm only")
    sizes = get_task_model(teacher_task.name).model_sizes
    if student_size not in sizes:
        raise InputError(f"--student-size {student_size!r} is not a size of --task {teacher_task.name}; "
                         f"sizes: {', '.join(sizes)}")
    student = make_task_model(teacher_task.name, student_size)
    student.load(teacher_dir)  # vocabulary/labels (and the teacher's size, replaced next)
    student.model_size = student_size  # type: ignore[attr-defined]
    return student


def _permutation(task: TaskModel, device: torch.device) -> torch.Tensor:
    from fedpart.distill.perturb import gender_token_permutation, identity_permutation

    if task.name == "lm" and hasattr(task, "vocabulary_tokens"):  # --hf-model: sub-word tokens
        tokens, prefixes = task.vocabulary_tokens(), task.token_prefixes  # type: ignore[attr-defined]
        return gender_token_permutation(tokens, prefixes=prefixes).to(device)
    if task.name == "lm":
        return gender_token_permutation(task.vocab).to(device)  # type: ignore[attr-defined]
    return identity_permutation(len(task.labels)).to(device)  # type: ignore[attr-defined]


def _tables_of(data: Path, task: TaskModel, teacher_dir: Path,
               config: FederatedConfig) -> tuple[list[pa.Table], Path | None, str]:
    """Client tables of a partition directory (its shards checked against the manifest; and its
    test split), or one table of a data file; with the data's digest (the manifest's sha256, which
    records every shard's, or the file's).

    Raises:
        InputError: as :func:`fedpart.train.runner.read_evaluation_table`; the data has labels the
        teacher (and so the student) does not know.
    """
    if (data / MANIFEST_FILE).is_file():
        manifest = Manifest.read(data)
        check_partition_task(data, manifest, task.name, teacher=teacher_dir)
        verify_partition(data, manifest)
        warn_excess_clients(config, manifest, data)
        test = data / manifest.test.file if manifest.test is not None else None
        tables, digest = [shard_table(data, c, task.name) for c in manifest.clients], manifest_digest(data)
    elif data.is_file():
        tables, test, digest = [read_evaluation_table(data, task.name, "--data")], None, sha256_of(data)
    else:
        raise InputError(f"{data}: no such file or partition directory (--data)")
    for table in tables:
        check_evaluation_labels(table, task, data, "--data")
    return tables, test, digest


def _evaluation_path(eval_data: str | None, partition_test: Path | None, teacher_config: dict[str, Any],
                     teacher_dir: Path) -> Path:
    """``--eval-data``, else the distillation partition's test split, else the teacher's evaluation data."""
    if eval_data is None and partition_test is None:
        return run_evaluation_file(teacher_dir, teacher_config)
    path = Path(eval_data) if eval_data is not None else partition_test
    if not path.exists():  # a file, or a directory of part files (Ray engine)
        raise InputError(f"{path}: no such evaluation file; pass --eval-data FILE.parquet")
    return path


def warn_seen_evaluation(test_table: pa.Table, tables: Sequence[pa.Table], test_path: Path) -> None:
    """Warn when texts of the teacher's evaluation data -- scored because ``--data`` has no test
    split -- are also in the ``tables`` of ``--data`` (e.g. a corpus file the teacher's partition was
    made from): the student would be scored on rows it trained on. Memory: the evaluation texts."""
    if "text" not in test_table.column_names:
        return
    held = pc.unique(test_table.column("text").drop_null())
    seen = [pc.filter(t.column("text"), pc.is_in(t.column("text"), value_set=held))
            for t in tables if "text" in t.column_names]
    if not seen:
        return
    seen_texts = pc.unique(pa.chunked_array([c for column in seen for c in column.chunks], type=held.type))
    count = int(pc.sum(pc.is_in(test_table.column("text"), value_set=seen_texts)).as_py() or 0)
    if count:
        warnings.warn(
            f"{count} of {test_table.num_rows} evaluation rows ({test_path}, the teacher's evaluation data, "
            "scored because --data has no test split) have texts that are also in --data: the student is scored "
            "partly on what it trained on; pass --eval-data with held-out rows", FedpartWarning, stacklevel=2)


def distill(
    teacher_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    distill_config: DistillConfig = DistillConfig(),
    config: FederatedConfig = FederatedConfig(algo="centralized"),
    device: str = "auto",
    eval_data: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: Callable[[int, dict[str, float] | None], Any] | None = None,
) -> list[dict[str, Any]]:
    """Distil a student from the run ``teacher_dir`` on ``data`` (a corpus file or a partition
    directory); return the metric records (also in ``out/metrics.jsonl``).

    Every input (teacher, corpus or partition shards, evaluation data, spaCy model) is read and
    checked before ``out`` is created or an earlier run in it cleared.

    Raises:
        InputError: the teacher is not a finished ``lm``/``tc`` run, ``data`` is missing, empty, a
        modified partition or has labels the teacher does not know, or ``--algo fedavg/fedprox`` is
        asked for on a single file.
        OutputError: as :func:`fedpart.train.runner.check_run_dir`; ``out`` is or contains an
        input (teacher, data, evaluation data).
    """
    check_run_arguments(config, device, stop_after, {"eval_data": eval_data}, teacher_dir=teacher_dir, data=data,
                        out=out)
    if not isinstance(distill_config, DistillConfig):
        raise InputError(f"distill_config must be a DistillConfig, got {distill_config!r:.80}")
    teacher_dir, data = Path(teacher_dir), Path(data)
    torch_device = resolve_device(device)
    check_run_dir(Path(out), resume, overwrite)
    teacher_task, teacher, teacher_config = load_trained(teacher_dir, torch_device)
    check_output_not_over_inputs(Path(out), [p for p in (teacher_dir, data, eval_data) if p is not None])
    if teacher_task.name not in DISTILLABLE_TASKS:
        raise InputError(f"{teacher_dir}: a --task {teacher_task.name} run; distil lm or tc teachers")
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    student = _student_of(teacher_task, teacher_dir, distill_config.student_size)
    if config.algo != "centralized" and not (data / MANIFEST_FILE).is_file():
        raise InputError(f"{data}: --algo {config.algo} needs a partition directory of client shards as --data")
    tables, partition_test, data_digest = _tables_of(data, student, teacher_dir, config)
    test_path = _evaluation_path(eval_data, partition_test, teacher_config, teacher_dir)
    # the teacher's evaluation data and --hf-model directory are read too
    check_output_not_over_inputs(Path(out), [test_path, *filter(None, [teacher_config.get("hf_model")])])
    task = DistillationTask(student, teacher, distill_config, _permutation(teacher_task, torch_device))
    # digests of the teacher's model and the data: --resume refuses a teacher trained again in
    # place or a --data file rewritten since the run started
    run_config = {"task": teacher_task.name, "teacher": str(teacher_dir.resolve()), "data": str(data.resolve()),
                  "teacher_model_sha256": sha256_of(teacher_dir / MODEL_FILE), "data_sha256": data_digest,
                  "eval_data": str(test_path.resolve()), "model_size": distill_config.student_size,
                  # an --hf-model teacher's directory: load_trained rebuilds the student's family from it
                  **({"hf_model": teacher_config["hf_model"]} if teacher_config.get("hf_model") else {}),
                  "distill": asdict(distill_config), **asdict(config)}

    def load(fit: bool) -> RunData:
        from fedpart.augment import GenderSwapper

        swapper = GenderSwapper(spacy_model=distill_config.spacy_model)

        def swap_texts(texts: list[str]) -> list[str]:
            return [result.text for result in swapper.swap_texts(texts)]

        corpus = [counterfactual_training_table(t, distill_config.cda, swap_texts) for t in tables]
        test_table = read_evaluation_table(test_path, teacher_task.name)
        if eval_data is not None:  # a partition's own test split is scored as it is, as train does
            check_evaluation_labels(test_table, student, test_path)
        elif partition_test is None and fit:
            warn_seen_evaluation(test_table, tables, test_path)
        return RunData([task.featurize(t, torch_device) for t in corpus], [t.num_rows for t in corpus],
                       task.featurize(test_table, torch_device), test_table)

    return run_rounds(task, load, run_config, out, config, torch_device,
                      resume=resume, overwrite=overwrite, stop_after=stop_after, progress=progress)
