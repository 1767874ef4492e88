"""Task adapters over a local Hugging Face model (``fedpart train --hf-model PATH``; needs ``fedpart[hf]``).

PATH is a directory written by ``save_pretrained`` (``config.json``, weights, tokenizer files). Its
tokenizer replaces the offline word vocabulary and its weights are the starting point; a task head
the checkpoint lacks, or whose shape differs (another number of labels), is freshly initialised from
torch's RNG, so :meth:`HFTaskModel.build_model` is deterministic under ``torch.manual_seed``.
Everything loads with ``local_files_only=True``: nothing is ever downloaded.

- ``tc``: ``AutoModelForSequenceClassification`` (fine-tuning as in Devlin et al. 2019).
- ``st``: ``AutoModelForTokenClassification``; a word's tag sits on its first sub-token (the fast
  tokenizer's ``word_ids``), later sub-tokens and special tokens are ignored (-100), as BERT's NER
  recipe; a word's prediction is read at its first sub-token.
- ``qa``: ``AutoModelForQuestionAnswering`` over question + context (the context truncated);
  answer characters become token positions through the offset mapping; decoding picks the best span
  inside the context as :mod:`fedpart.tasks.models.qa` does.
- ``s2s``: ``AutoModelForSeq2SeqLM`` with teacher forcing, decoded greedily with ``generate``.

Labels and metrics are the native adapters' (same label sets, same metric functions), so runs with
and without ``--hf-model`` are comparable. The federated loop averages the flat vector of every
parameter of the model.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
from torch import nn

from fedpart.errors import InputError
from fedpart.evaluation.classification import accuracy, macro_f1
from fedpart.evaluation.rouge import rouge_scores
from fedpart.evaluation.squad import squad_scores
from fedpart.evaluation.tagging import entity_f1
from fedpart.tasks.models.base import Batch, TaskModel
from fedpart.tasks.models.qa import answer_token_span, best_spans
from fedpart.tasks.models.st import tag_set
from fedpart.tasks.models.tc import class_labels

IGNORE = -100
EVAL_ROWS = 64
TOKENIZER_DIR = "tokenizer"
HF_FILE = "hf_model.json"
LABELS_FILE = "labels.json"
INSTALL_HINT = "--hf-model needs transformers: pip install 'fedpart[hf]'"


def import_transformers() -> Any:
    """The ``transformers`` module, or an :class:`InputError` saying how to install it."""
    try:
        import transformers
    except ImportError as error:
        raise InputError(INSTALL_HINT) from error
    return transformers


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@contextlib.contextmanager
def _quiet_loading(transformers: Any) -> Iterator[None]:
    """Silence the load report and progress bars: a fresh task head is expected, not news."""
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not ``IGNORE`` (``logits``: ``target``'s shape
    plus a class dimension); 0 (still differentiable) when every target is ignored."""
    if not bool((target != IGNORE).any()):
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), ignore_index=IGNORE
    )


def trim(batch: Batch, keys: tuple[str, ...], length: int) -> Batch:
    """The first ``length`` positions of ``batch[key]`` for every present key (right padding)."""
    return {key: batch[key][:, :length].contiguous() for key in keys if key in batch}


def first_subtoken_words(word_ids: list[int | None]) -> list[int]:
    """Per token position, the word index where that word's first sub-token sits, else -1 (later
    sub-tokens of a word, special tokens and padding)."""
    out, previous = [], None
    for word in word_ids:
        out.append(word if word is not None and word != previous else -1)
        previous = word
    return out


def context_answer_span(
    offsets: list[tuple[int, int]], sequence_ids: list[int | None], start_char: int, text: str
) -> tuple[int, int]:
    """Token positions ``(start, end)`` of an answer in a question + context encoding, or
    ``(IGNORE, IGNORE)`` when the answer is empty or was cut off by truncation."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    if not context or not text.strip():
        return IGNORE, IGNORE
    first, last = answer_token_span([offsets[i] for i in context], start_char, text, max_tokens=len(context))
    if first == IGNORE or offsets[context[last]][1] < start_char + len(text.rstrip()):
        return IGNORE, IGNORE
    return context[first], context[last]


class HFTaskModel(TaskModel):
    """What the four Hugging Face adapters share: loading, the label set, save/load, describe."""

    #: the ``transformers`` Auto class of the task's model
    auto_class: ClassVar[str]
    #: the longest tokenised input kept (also capped by the tokenizer's ``model_max_length``)
    max_tokens: ClassVar[int] = 256
    #: inputs passed to the model (when the tokenizer produces them)
    input_keys: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")

    def __init__(self, model_dir: str | os.PathLike[str]) -> None:
        self.transformers = import_transformers()
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise InputError(
                f"--hf-model {model_dir}: not a Hugging Face model directory (no config.json); "
                "pass a local directory written by save_pretrained"
            )
        try:
            self.config = self.transformers.AutoConfig.from_pretrained(self.model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"--hf-model {model_dir}: unreadable config.json ({_first_line(error)})") from error
        self.tokenizer: Any = None
        self.labels: list[Any] = []

    # -- label set and tokenizer -------------------------------------------------------------------

    def fit_labels(self, tables: list[pa.Table]) -> list[Any]:
        """The task's label set from the training tables ([] for tasks without labels)."""
        return []

    def fit(self, tables: list[pa.Table]) -> None:
        self.tokenizer = self._load_tokenizer(self.model_dir)
        self.labels = self.fit_labels(tables)

    def _load_tokenizer(self, directory: Path) -> Any:
        try:
            tokenizer = self.transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{directory}: cannot load its Hugging Face tokenizer ({_first_line(error)}); "
                "save one there with tokenizer.save_pretrained"
            ) from error
        if not getattr(tokenizer, "is_fast", False):
            raise InputError(f"{directory}: fedpart needs a fast tokenizer (tokenizer.json) for offsets and word ids")
        if tokenizer.pad_token is None:
            raise InputError(f"{directory}: the tokenizer has no pad token; set one and save it with save_pretrained")
        tokenizer.padding_side = "right"  # trim() cuts the padding off the end of every batch
        return tokenizer

    @property
    def max_length(self) -> int:
        """Tokens kept per input: the task's cap, the tokenizer's and the model's position limit."""
        positions = getattr(self.config, "max_position_embeddings", None) or self.max_tokens
        return min(self.max_tokens, int(self.tokenizer.model_max_length), int(positions))

    # -- model -------------------------------------------------------------------------------------

    def _config_options(self) -> dict[str, Any]:
        if not self.labels:
            return {}
        return {"num_labels": len(self.labels), "id2label": {i: str(v) for i, v in enumerate(self.labels)},
                "label2id": {str(v): i for i, v in enumerate(self.labels)}}

    def build_model(self) -> nn.Module:
        auto = getattr(self.transformers, self.auto_class)
        options = self._config_options()
        try:
            with _quiet_loading(self.transformers):
                model = auto.from_pretrained(self.model_dir, local_files_only=True,
                                             ignore_mismatched_sizes=bool(options), **options)
        except (OSError, ValueError, KeyError) as error:
            raise InputError(
                f"--hf-model {self.model_dir}: cannot load as {self.auto_class} ({_first_line(error)})"
            ) from error
        # federated averaging and SGD in float32, whatever dtype the checkpoint was saved in
        return model.float()

    def _count_parameters(self) -> int:
        """Parameters of the task model, counted on the meta device (nothing allocated or loaded)."""
        config = self.transformers.AutoConfig.from_pretrained(self.model_dir, local_files_only=True,
                                                              **self._config_options())
        with _quiet_loading(self.transformers), torch.device("meta"):
            model = getattr(self.transformers, self.auto_class).from_config(config)
        return sum(p.numel() for p in model.parameters())

    def _model_inputs(self, batch: Batch) -> Batch:
        length = max(1, int(batch["attention_mask"].sum(1).max()))
        return trim(batch, self.input_keys, length)

    def _encode(self, texts: list[str], **kwargs: Any) -> Any:
        return self.tokenizer(texts, truncation=True, max_length=self.max_length, padding="max_length", **kwargs)

    def _inputs_on(self, encoding: Any, device: torch.device) -> Batch:
        return {k: torch.tensor(encoding[k], dtype=torch.long).to(device) for k in self.input_keys if k in encoding}

    # -- run directory -----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(directory / TOKENIZER_DIR)
        if self.labels:
            (directory / LABELS_FILE).write_text(json.dumps(self.labels) + "\n", encoding="utf-8")
        record = {"hf_model": str(self.model_dir), "auto_class": self.auto_class, "tokenizer": TOKENIZER_DIR}
        (directory / HF_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    def load(self, directory: Path) -> None:
        if not (directory / HF_FILE).is_file():
            raise InputError(f"{directory}: not a run trained with --hf-model (no {HF_FILE})")
        record = json.loads((directory / HF_FILE).read_text(encoding="utf-8"))
        self.tokenizer = self._load_tokenizer(directory / record["tokenizer"])
        labels = directory / LABELS_FILE
        self.labels = json.loads(labels.read_text(encoding="utf-8")) if labels.is_file() else []

    def describe(self) -> dict[str, Any]:
        facts = {"hf_model": str(self.model_dir), "model_type": self.config.model_type,
                 "architectures": self.config.architectures or [], "auto_class": self.auto_class,
                 "parameters": self._count_parameters(),
                 "tokenizer": type(self.tokenizer).__name__, "vocab_size": len(self.tokenizer),
                 "max_tokens": self.max_length}
        return {**facts, **({"labels": self.labels} if self.labels else {})}


class HFSequenceClassifierTask(HFTaskModel):
    name: ClassVar[str] = "tc"
    main_metric: ClassVar[str] = "accuracy"
    auto_class: ClassVar[str] = "AutoModelForSequenceClassification"

    def fit_labels(self, tables: list[pa.Table]) -> list[Any]:
        return class_labels(tables)

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        index = {label: i for i, label in enumerate(self.labels)}
        data = self._inputs_on(self._encode(table.column("text").to_pylist()), device)
        # a label unseen in training is ignored by the loss and never predicted (as the native tc)
        labels = [index.get(v, IGNORE) for v in table.column("label").to_pylist()]
        return {**data, "label": torch.tensor(labels, dtype=torch.long).to(device)}

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return masked_cross_entropy(model(**self._model_inputs(batch)).logits, batch["label"])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        n = data["label"].shape[0]
        predicted = []
        for start in range(0, n, EVAL_ROWS):
            chunk = {k: v[start : start + EVAL_ROWS] for k, v in data.items()}
            predicted += model(**self._model_inputs(chunk)).logits.argmax(-1).cpu().tolist()
        gold = data["label"].cpu().tolist()
        return {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted)}


class HFTokenClassifierTask(HFTaskModel):
    name: ClassVar[str] = "st"
    main_metric: ClassVar[str] = "f1"
    auto_class: ClassVar[str] = "AutoModelForTokenClassification"

    def fit_labels(self, tables: list[pa.Table]) -> list[Any]:
        return tag_set(tables)

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        index = {tag: i for i, tag in enumerate(self.labels)}
        encoding = self._encode(table.column("tokens").to_pylist(), is_split_into_words=True)
        words, tags = [], []
        for row, sentence_tags in enumerate(table.column("tags").to_pylist()):
            first = first_subtoken_words(encoding.word_ids(row))
            words.append(first)
            tags.append([index.get(sentence_tags[w], 0) if w >= 0 else IGNORE for w in first])  # unseen -> O
        return {**self._inputs_on(encoding, device),
                "word_index": torch.tensor(words, dtype=torch.long).to(device),
                "tags": torch.tensor(tags, dtype=torch.long).to(device)}

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs = self._model_inputs(batch)
        length = inputs["input_ids"].shape[1]
        return masked_cross_entropy(model(**inputs).logits, batch["tags"][:, :length])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        gold_sentences = table.column("tags").to_pylist()
        predicted_sentences = []
        for start in range(0, len(gold_sentences), EVAL_ROWS):
            chunk = {k: v[start : start + EVAL_ROWS] for k, v in data.items()}
            inputs = self._model_inputs(chunk)
            ids = model(**inputs).logits.argmax(-1).cpu().tolist()
            words = chunk["word_index"][:, : inputs["input_ids"].shape[1]].cpu().tolist()
            for gold, row_ids, row_words in zip(gold_sentences[start : start + EVAL_ROWS], ids, words):
                # words cut off by truncation (or without sub-tokens) are predicted O
                predicted = ["O"] * len(gold)
                for tag_id, word in zip(row_ids, row_words):
                    if word >= 0:
                        predicted[word] = self.labels[tag_id]
                predicted_sentences.append(predicted)
        return entity_f1(gold_sentences, predicted_sentences)


class HFQuestionAnsweringTask(HFTaskModel):
    name: ClassVar[str] = "qa"
    main_metric: ClassVar[str] = "f1"
    auto_class: ClassVar[str] = "AutoModelForQuestionAnswering"
    max_tokens: ClassVar[int] = 384
    input_keys: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask", "token_type_ids")

    def encode_pairs(self, table: pa.Table) -> Any:
        """The tokenizer's encoding of question + context pairs (context truncated), with offsets."""
        return self.tokenizer(
            table.column("question").to_pylist(), table.column("context").to_pylist(), truncation="only_second",
            max_length=self.max_length, padding="max_length", return_offsets_mapping=True,
        )

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        encoding = self.encode_pairs(table)
        starts, ends = [], []
        for row, answers in enumerate(table.column("answers").to_pylist()):
            if answers["text"]:
                start, end = context_answer_span(encoding["offset_mapping"][row], encoding.sequence_ids(row),
                                                 answers["answer_start"][0], answers["text"][0])
            else:
                start, end = IGNORE, IGNORE
            starts.append(start)
            ends.append(end)
        return {**self._inputs_on(encoding, device),
                "start": torch.tensor(starts, dtype=torch.long).to(device),
                "end": torch.tensor(ends, dtype=torch.long).to(device)}

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        out = model(**self._model_inputs(batch))
        # answer positions lie on real (context) tokens, so trimming the padding keeps them valid
        start = masked_cross_entropy(out.start_logits, batch["start"])
        return start + masked_cross_entropy(out.end_logits, batch["end"])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        encoding = self.encode_pairs(table)  # offsets are not kept on the device: re-tokenise the test table
        contexts = table.column("context").to_pylist()
        predictions = []
        for start in range(0, len(contexts), EVAL_ROWS):
            chunk = {k: v[start : start + EVAL_ROWS] for k, v in data.items()}
            inputs = self._model_inputs(chunk)
            out = model(**inputs)
            length = inputs["input_ids"].shape[1]
            rows = range(start, start + inputs["input_ids"].shape[0])
            in_context = torch.tensor([[s == 1 for s in encoding.sequence_ids(r)[:length]] for r in rows],
                                      device=out.start_logits.device)
            spans = best_spans(out.start_logits.float().masked_fill(~in_context, -1e4),
                               out.end_logits.float().masked_fill(~in_context, -1e4))
            for row, (first, last) in zip(rows, spans):
                offsets, sequence = encoding["offset_mapping"][row], encoding.sequence_ids(row)
                inside = sequence[first] == 1 and sequence[last] == 1
                predictions.append(contexts[row][offsets[first][0] : offsets[last][1]] if inside else "")
        golds = [a["text"] for a in table.column("answers").to_pylist()]
        return squad_scores(predictions, golds)


class HFSeq2SeqTask(HFTaskModel):
    name: ClassVar[str] = "s2s"
    main_metric: ClassVar[str] = "rougeL"
    auto_class: ClassVar[str] = "AutoModelForSeq2SeqLM"
    max_tokens: ClassVar[int] = 512
    max_target_tokens: ClassVar[int] = 64

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        source = self._encode(table.column("source").to_pylist())
        target = self.tokenizer(text_target=table.column("target").to_pylist(), truncation=True,
                                max_length=self.max_target_tokens, padding="max_length")
        labels = torch.tensor(target["input_ids"], dtype=torch.long)
        labels[torch.tensor(target["attention_mask"]) == 0] = IGNORE
        return {**self._inputs_on(source, device), "labels": labels.to(device)}

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        labels = batch["labels"]
        labels = labels[:, : max(1, int((labels != IGNORE).sum(1).max()))].contiguous()
        # given labels, the model builds its decoder inputs by shifting them right (teacher forcing)
        return masked_cross_entropy(model(**self._model_inputs(batch), labels=labels).logits, labels)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        predictions = []
        for start in range(0, data["input_ids"].shape[0], EVAL_ROWS):
            chunk = {k: v[start : start + EVAL_ROWS] for k, v in data.items()}
            generated = model.generate(**self._model_inputs(chunk), max_new_tokens=self.max_target_tokens,
                                       num_beams=1, do_sample=False)
            predictions += self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return rouge_scores(predictions, table.column("target").to_pylist())


HF_TASK_MODELS: dict[str, type[HFTaskModel]] = {
    cls.name: cls for cls in (HFSequenceClassifierTask, HFTokenClassifierTask, HFQuestionAnsweringTask, HFSeq2SeqTask)
}
