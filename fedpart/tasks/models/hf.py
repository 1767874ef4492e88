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
- ``lm``: ``AutoModelForCausalLM`` (e.g. GPT-2, Radford et al. 2019) on next-token prediction over
  ``<bos> text <eos>`` in the model's own tokens; perplexity is per tokenizer token, not per word,
  so it is comparable between runs of one tokenizer only. The model is wrapped as
  :class:`CausalLMLogits` (``model(tokens) -> logits``, like the native
  :class:`~fedpart.tasks.models.lm.CausalTransformer`), so ``fedpart distill`` and ``fedpart eval
  bias`` use it unchanged; its students are fresh, smaller models of the same architecture family
  (:data:`STUDENT_FAMILIES`) sharing the tokenizer.

Labels and metrics are the native adapters' (same label sets, same metric functions), so runs with
and without ``--hf-model`` are comparable. The federated loop averages the flat vector of every
parameter of the model.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import torch
from torch import nn

from fedpart.errors import InputError
from fedpart.evaluation.classification import accuracy, gold_codes, macro_f1
from fedpart.evaluation.language import perplexity
from fedpart.evaluation.rouge import rouge_scores
from fedpart.evaluation.squad import squad_scores
from fedpart.evaluation.tagging import entity_f1
from fedpart.tasks.models.base import Batch, TaskModel, pad
from fedpart.tasks.models.lm import MODEL_SIZES, LMSize, sample_next_token
from fedpart.tasks.models.qa import answer_token_span, best_spans
from fedpart.tasks.models.st import tag_set
from fedpart.tasks.models.tc import class_labels

IGNORE = -100
EVAL_ROWS = 64
TOKENIZER_DIR = "tokenizer"
HF_FILE = "hf_model.json"
LABELS_FILE = "labels.json"
INSTALL_HINT = "--hf-model needs transformers: pip install 'fedpart[hf]'"
#: the kind of model each task needs, for messages
TASK_ARCHITECTURES = {
    "tc": "an encoder or decoder model (e.g. BERT, RoBERTa, GPT-2 with a pad token)",
    "st": "an encoder model (e.g. BERT, RoBERTa)",
    "qa": "an encoder model (e.g. BERT, RoBERTa)",
    "s2s": "an encoder-decoder model (e.g. T5, BART)",
    "lm": "a causal decoder model (e.g. GPT-2, Llama)",
}


def import_transformers() -> Any:
    """The ``transformers`` module, or an :class:`InputError` saying how to install it."""
    try:
        import transformers
    except ImportError as error:
        raise InputError(INSTALL_HINT) from error
    return transformers


#: files that hold a tokenizer's vocabulary (``tokenizer_config.json`` and ``special_tokens_map.json``
#: do not: without one of these, transformers builds a tokenizer of special tokens only)
TOKENIZER_FILE_PATTERNS = ("tokenizer.json", "vocab*", "spiece*", "merges*", "sentencepiece*", "*.model", "*.spm",
                           "*.tiktoken", "*.bpe")


def has_tokenizer_files(directory: Path) -> bool:
    """Whether ``directory`` holds a tokenizer vocabulary file (:data:`TOKENIZER_FILE_PATTERNS`)."""
    return any(path.is_file() for pattern in TOKENIZER_FILE_PATTERNS for path in Path(directory).glob(pattern))


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
    #: whether featurisation pads with the tokenizer's pad token (``lm`` pads with ``IGNORE`` instead)
    needs_pad_token: ClassVar[bool] = True

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
        self._check_auto_class(model_dir)
        self.tokenizer: Any = None
        self.labels: list[Any] = []

    def _check_auto_class(self, model_dir: str | os.PathLike[str]) -> None:
        """Refuse, before any data is read, an architecture the task's Auto class has no model for
        (a BERT for ``--task s2s``): ``from_config``/``from_pretrained`` would raise a ValueError
        listing every supported config class only once the run directory is written."""
        # the Auto class's config -> model mapping (absent from a transformers that lacks it: then
        # build_model's own error says it)
        mapping = getattr(getattr(self.transformers, self.auto_class), "_model_mapping", None)
        if mapping is not None and type(self.config) not in mapping:
            needed = TASK_ARCHITECTURES.get(self.name, "a model of another architecture")
            raise InputError(f"--hf-model {model_dir}: cannot load as {self.auto_class}, which --task {self.name} "
                             f"trains (a {self.config.model_type!r} model has no such form); pass {needed}")

    # -- label set and tokenizer -------------------------------------------------------------------

    def fit_labels(self, tables: list[pa.Table]) -> list[Any]:
        """The task's label set from the training tables ([] for tasks without labels)."""
        return []

    def fit(self, tables: list[pa.Table]) -> None:
        self.tokenizer = self._load_tokenizer(self.model_dir)
        self.labels = self.fit_labels(tables)

    def _load_tokenizer(self, directory: Path) -> Any:
        if not has_tokenizer_files(directory):
            raise InputError(
                f"{directory}: cannot load its Hugging Face tokenizer (no vocabulary file: tokenizer.json, "
                "vocab.txt, vocab.json with merges.txt, spiece.model, ...; transformers would build an empty one "
                "that reads every word as unknown); save one there with tokenizer.save_pretrained"
            )
        try:
            tokenizer = self.transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{directory}: cannot load its Hugging Face tokenizer ({_first_line(error)}); "
                "save one there with tokenizer.save_pretrained"
            ) from error
        specials = set(tokenizer.all_special_tokens)
        if not any(token not in specials for token in tokenizer.get_vocab()):
            raise InputError(
                f"{directory}: cannot load its Hugging Face tokenizer (its vocabulary holds only its "
                f"{len(specials)} special tokens, so every word would be unknown); save a complete one there "
                "with tokenizer.save_pretrained"
            )
        if not getattr(tokenizer, "is_fast", False):
            raise InputError(f"{directory}: fedpart needs a fast tokenizer (tokenizer.json) for offsets and word ids")
        if self.needs_pad_token and tokenizer.pad_token is None:
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
        record = {"hf_model": str(self.model_dir), "auto_class": self.auto_class, "tokenizer": TOKENIZER_DIR,
                  **self.run_record()}
        (directory / HF_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    def load(self, directory: Path) -> None:
        if not (directory / HF_FILE).is_file():
            raise InputError(f"{directory}: not a run trained with --hf-model (no {HF_FILE})")
        record = json.loads((directory / HF_FILE).read_text(encoding="utf-8"))
        self.tokenizer = self._load_tokenizer(directory / record["tokenizer"])
        labels = directory / LABELS_FILE
        self.labels = json.loads(labels.read_text(encoding="utf-8")) if labels.is_file() else []
        self.restore_record(record)

    def run_record(self) -> dict[str, Any]:
        """Adapter-specific facts for ``hf_model.json`` that :meth:`load` needs back."""
        return {}

    def restore_record(self, record: dict[str, Any]) -> None:
        """Restore what :meth:`run_record` wrote."""

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

    def _config_options(self) -> dict[str, Any]:
        # a decoder classifier (GPT-2, Llama) reads each row's last non-padding token, found through
        # config.pad_token_id: a checkpoint saved without one fails on any batch of two rows even when
        # its tokenizer has a pad token (the one featurisation pads with), so the tokenizer's is used
        options = super()._config_options()
        pad = None if self.tokenizer is None else self.tokenizer.pad_token_id
        if options and pad is not None and getattr(self.config, "pad_token_id", None) is None:
            options["pad_token_id"] = pad
        return options

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        index = {label: i for i, label in enumerate(self.labels)}
        data = self._inputs_on(self._encode(table.column("text").to_pylist()), device)
        # a label unseen in training is ignored by the loss and never predicted (as the native tc)
        labels = [index.get(v, IGNORE) for v in table.column("label").to_pylist()]
        return {**data, "label": torch.tensor(labels, dtype=torch.long).to(device)}

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return masked_cross_entropy(model(**self._model_inputs(batch)).logits, batch["label"])

    @torch.no_grad()
    def probabilities(self, model: nn.Module, data: Batch) -> torch.Tensor:
        """``(rows, classes)`` softmax class probabilities (as the native tc model's), in chunks of
        :data:`EVAL_ROWS` rows."""
        n = data["label"].shape[0]
        chunks = [
            torch.softmax(model(**self._model_inputs({k: v[start : start + EVAL_ROWS] for k, v in data.items()}))
                          .logits.float(), dim=-1)
            for start in range(0, n, EVAL_ROWS)
        ]
        return torch.cat(chunks) if chunks else torch.zeros((0, len(self.labels)), device=data["label"].device)

    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        predicted = self.probabilities(model, data).argmax(-1).cpu().tolist()
        gold = gold_codes(table.column("label").to_pylist(), self.labels)  # each unseen label a class of its own
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
        """The tokenizer's encoding of question + context pairs (context truncated), with offsets.

        Raises:
            InputError: a question leaves no room for its context (the tokenizer's bare exception
            otherwise ends the run as an internal error).
        """
        questions = table.column("question").to_pylist()
        try:
            return self.tokenizer(
                questions, table.column("context").to_pylist(), truncation="only_second",
                max_length=self.max_length, padding="max_length", return_offsets_mapping=True,
            )
        except Exception as error:  # tokenizers raises a plain Exception ("Truncation error: ...")
            if "truncat" not in str(error).lower():
                raise
            room = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=True)
            lengths = [len(ids) for ids in self.tokenizer(questions, add_special_tokens=False)["input_ids"]]
            long = [row for row, length in enumerate(lengths) if length >= room]
            first = long[0] if long else max(range(len(lengths)), key=lengths.__getitem__)
            raise InputError(
                f"--hf-model {self.model_dir}: {len(long) or 'a'} question(s) fill all {self.max_length} tokens the "
                f"model takes per question + context (e.g. {questions[first][:60]!r}: {lengths[first]} tokens), "
                "leaving no room for the context; use a model with more positions or drop those questions"
            ) from error

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


def _gpt2_fields(size: LMSize) -> dict[str, Any]:
    return {"n_layer": size.layers, "n_embd": size.dim, "n_head": size.heads, "n_inner": 4 * size.dim}


def _neox_fields(size: LMSize) -> dict[str, Any]:
    return {"num_hidden_layers": size.layers, "hidden_size": size.dim, "num_attention_heads": size.heads,
            "intermediate_size": 4 * size.dim}


def _llama_fields(size: LMSize) -> dict[str, Any]:
    # no grouped-query sharing in a student this small: one key/value head per query head
    return {**_neox_fields(size), "num_key_value_heads": size.heads, "head_dim": size.dim // size.heads}


#: ``config.model_type`` -> the config fields that set a student's depth and width from a size of
#: :data:`fedpart.tasks.models.lm.MODEL_SIZES` (small: 1 layer, width 64, 2 heads; base: 2, 128, 4;
#: large: 4, 256, 8; feed-forward 4x the width); every other field (vocabulary, positions, special
#: ids, activation, dropout) is the teacher's
STUDENT_FAMILIES: dict[str, Callable[[LMSize], dict[str, Any]]] = {
    "gpt2": _gpt2_fields,
    "gpt_neox": _neox_fields,
    "llama": _llama_fields,
    "mistral": _llama_fields,
    "qwen2": _llama_fields,
}
#: config fields derived from the depth at construction (rebuilt for the student's depth)
_DERIVED_CONFIG_FIELDS = ("layer_types",)


def student_config(config: Any, model_size: str) -> Any:
    """A copy of the causal-LM ``config`` with the depth and width of ``model_size`` (see
    :data:`STUDENT_FAMILIES`); same class, vocabulary and special tokens.

    Raises:
        InputError: unknown size, or an architecture family without a size mapping.
    """
    if model_size not in MODEL_SIZES:
        raise InputError(f"--student-size must be one of {', '.join(MODEL_SIZES)}, got {model_size!r}")
    fields = STUDENT_FAMILIES.get(config.model_type)
    if fields is None:
        raise InputError(
            f"no student size mapping for the {config.model_type!r} architecture of the --hf-model teacher; "
            f"fedpart builds students for {', '.join(STUDENT_FAMILIES)}"
        )
    kept = {k: v for k, v in config.to_dict().items() if k not in _DERIVED_CONFIG_FIELDS}
    return type(config)(**{**kept, **fields(MODEL_SIZES[model_size])})


class CausalLMLogits(nn.Module):
    """A Hugging Face causal LM called as fedpart's lm models are: ``forward(tokens)`` ->
    ``(batch, length, vocab)`` float32 logits, for ``tokens`` right-padded with ``IGNORE``.

    Padding becomes id 0 under an attention mask, so it needs no tokenizer pad token (GPT-2 has
    none, and its end-of-text id is also its start id). Under the causal mask real
    positions never see later padding, so their logits equal the unpadded row's.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        real = tokens != IGNORE
        out = self.model(input_ids=tokens.masked_fill(~real, 0), attention_mask=real.long(), use_cache=False)
        return out.logits.float()


def trim_ignored(tokens: torch.Tensor) -> torch.Tensor:
    """``tokens`` without the trailing columns that are padding (``IGNORE``) in every row (at least 2)."""
    return tokens[:, : max(2, int((tokens != IGNORE).sum(1).max()))]


class HFCausalLMTask(HFTaskModel):
    """``--task lm --hf-model PATH``: the public methods of the native
    :class:`~fedpart.tasks.models.lm.LanguageModelTask`, in the model's own tokens.

    ``model_size=None`` fine-tunes the pretrained checkpoint; a size of
    :data:`~fedpart.tasks.models.lm.MODEL_SIZES` builds a fresh model of the checkpoint's family
    from :func:`student_config` (a distillation student, :meth:`make_student`).
    """

    name: ClassVar[str] = "lm"
    main_metric: ClassVar[str] = "perplexity"
    auto_class: ClassVar[str] = "AutoModelForCausalLM"
    #: tokens per row (``<bos> text <eos>``), also capped by the model's positions
    max_tokens: ClassVar[int] = 128
    needs_pad_token: ClassVar[bool] = False
    #: the value padding ``tokens`` rows; never a vocabulary id, so eos-as-pad tokenizers stay unambiguous
    pad_id: ClassVar[int] = IGNORE
    #: word-initial markers of byte-level BPE (GPT-2) and SentencePiece vocabularies, for the gender permutation
    token_prefixes: ClassVar[tuple[str, ...]] = ("", "Ġ", "▁")

    def __init__(self, model_dir: str | os.PathLike[str], model_size: str | None = None) -> None:
        super().__init__(model_dir)
        self.model_size = model_size
        if model_size is not None:
            student_config(self.config, model_size)  # fail early on an unknown size or family

    # -- tokens ------------------------------------------------------------------------------------

    def _encode_words(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=self.max_length)
        return encoded["input_ids"]

    def _bos(self) -> list[int]:
        bos = self.tokenizer.bos_token_id
        return [] if bos is None else [bos]

    def _eos(self) -> list[int]:
        eos = self.tokenizer.eos_token_id
        return [] if eos is None else [eos]

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``(len(texts), max_length)`` ids: ``<bos> tokens <eos>`` (each where the tokenizer has
        one), truncated, right-padded with ``IGNORE``."""
        bos, eos, length = self._bos(), self._eos(), self.max_length
        body = length - len(bos) - len(eos)
        return pad([[*bos, *ids[:body], *eos] for ids in self._encode_words(texts)], length, value=IGNORE)

    def featurize(self, table: pa.Table, device: torch.device) -> Batch:
        return {"tokens": self.encode_texts(table.column("text").to_pylist()).to(device)}

    def next_token_inputs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(inputs, labels, ignore_index)`` of next-token prediction on ``tokens`` rows padded
        with :attr:`pad_id`: inputs are positions ``0..n-2``, labels ``1..n-1``."""
        return tokens[:, :-1], tokens[:, 1:], IGNORE

    def vocabulary_tokens(self) -> list[str]:
        """The token string of every output id (ids past the tokenizer's, padding rows of the
        embedding matrix, are empty strings)."""
        size = int(self.config.vocab_size)
        known = min(size, len(self.tokenizer))
        return [*self.tokenizer.convert_ids_to_tokens(list(range(known))), *[""] * (size - known)]

    # -- model -------------------------------------------------------------------------------------

    def model_config(self) -> Any:
        """The config of the model :meth:`build_model` makes (the checkpoint's, or the student's)."""
        return self.config if self.model_size is None else student_config(self.config, self.model_size)

    def build_model(self) -> nn.Module:
        if self.model_size is None:
            model = CausalLMLogits(super().build_model())
        else:
            auto = getattr(self.transformers, self.auto_class)
            with _quiet_loading(self.transformers):
                model = CausalLMLogits(auto.from_config(self.model_config()).float())
        self._check_causal(model)
        return model

    def _check_causal(self, model: CausalLMLogits) -> None:
        """Refuse a model whose logits at a position depend on later tokens: ``AutoModelForCausalLM``
        also loads encoders (BERT as ``BertLMHeadModel`` without ``is_decoder``), which then see the
        very token each position predicts -- a perplexity near 1 that measures nothing.

        Two inputs that differ only in their last token must give the same logits before it: a
        change there above 1e-4 of the change at the last position itself is a leak (rounding moves
        a causal model's by about 1e-7 of it; a randomly initialised 1-layer BERT's leak is 4e-3).
        Runs in eval mode (no dropout draws from torch's RNG), restoring the model's mode.
        """
        vocab = int(getattr(self.config, "vocab_size", 0) or 0)
        if vocab < 2:
            return
        tokens = torch.tensor([[0, 1, 0], [0, 1, 1]], dtype=torch.long)
        training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = model(tokens)
        finally:
            model.train(training)
        leak = float((logits[0, :-1] - logits[1, :-1]).abs().max())
        own = float((logits[0, -1] - logits[1, -1]).abs().max())
        if leak > 1e-4 * own:
            raise InputError(
                f"--hf-model {self.model_dir}: its {self.config.model_type!r} model attends to later tokens (not a "
                "causal decoder), so --task lm would let each position see the token it predicts; pass "
                f"{TASK_ARCHITECTURES['lm']}, or save this one with config.is_decoder=True"
            )

    def _count_parameters(self) -> int:
        with _quiet_loading(self.transformers), torch.device("meta"):
            model = getattr(self.transformers, self.auto_class).from_config(self.model_config())
        return sum(p.numel() for p in model.parameters())

    def make_student(self, model_size: str) -> HFCausalLMTask:
        """A fresh ``model_size`` model of this model's family, sharing this adapter's tokenizer.

        Raises:
            InputError: unknown size, or a family without a size mapping (:data:`STUDENT_FAMILIES`).
        """
        student = HFCausalLMTask(self.model_dir, model_size=model_size)
        student.tokenizer = self.tokenizer
        return student

    # -- training and evaluation -------------------------------------------------------------------

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs, labels, ignore = self.next_token_inputs(trim_ignored(batch["tokens"]))
        logits = model(inputs)
        return nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=ignore)

    @torch.no_grad()
    def token_nll(self, model: nn.Module, tokens: torch.Tensor, batch_size: int = EVAL_ROWS) -> tuple[float, int]:
        """Summed next-token negative log-likelihood (nats) and number of predicted tokens."""
        total, count = 0.0, 0
        for start in range(0, tokens.shape[0], batch_size):
            inputs, labels, ignore = self.next_token_inputs(trim_ignored(tokens[start : start + batch_size]))
            total += float(nn.functional.cross_entropy(model(inputs).flatten(0, 1), labels.flatten(),
                                                       ignore_index=ignore, reduction="sum"))
            count += int((labels != ignore).sum())
        return total, count

    def evaluate(self, model: nn.Module, data: Batch, table: pa.Table) -> dict[str, float]:
        total, count = self.token_nll(model, data["tokens"])
        nll = total / max(count, 1)
        return {"perplexity": perplexity(nll), "nll": nll}

    def _continuation_ids(self, continuations: Sequence[str]) -> list[list[int]]:
        # a continuation follows its prompt after a space (how generate's texts join their prompts),
        # so byte-level BPE sees its first word as word-initial
        return self._encode_words([c if not c or c[0].isspace() else " " + c for c in continuations])

    @torch.no_grad()
    def continuation_logprob(self, model: nn.Module, prompts: Sequence[str], continuations: Sequence[str],
                             device: torch.device, batch_size: int = EVAL_ROWS) -> list[float]:
        """``log p(continuation | <bos> prompt)`` (nats, summed over the continuation's tokens) per
        pair; pairs longer than the context window are cut from the end of the continuation."""
        length, bos = self.max_length, self._bos()
        sequences, starts = [], []
        for head, tail in zip(self._encode_words(prompts), self._continuation_ids(continuations)):
            head = [*bos, *head][: length - 1]
            sequences.append([*head, *tail][:length])
            starts.append(len(head))
        out: list[float] = []
        for first in range(0, len(sequences), batch_size):
            chunk = sequences[first : first + batch_size]
            tokens = pad(chunk, max(2, *(len(s) for s in chunk)), value=IGNORE).to(device)
            logp = torch.log_softmax(model(tokens[:, :-1]), dim=-1)
            picked = logp.gather(-1, tokens[:, 1:].clamp(min=0)[..., None]).squeeze(-1)
            positions = torch.arange(tokens.shape[1] - 1, device=device)[None, :]
            lengths = torch.tensor([len(s) for s in chunk], device=device)[:, None]
            start = torch.tensor(starts[first : first + batch_size], device=device)[:, None]
            # position t predicts token t+1: the continuation's tokens are t+1 in [start, length)
            keep = (positions + 1 >= start) & (positions + 1 < lengths)
            out.extend(picked.masked_fill(~keep, 0.0).sum(1).tolist())
        return out

    def _never_generated(self, vocab_size: int) -> list[int]:
        """Ids generation never picks: special tokens other than eos, and embedding rows past the tokenizer."""
        eos = self.tokenizer.eos_token_id
        special = [i for i in self.tokenizer.all_special_ids if i != eos and i < vocab_size]
        return [*special, *range(min(len(self.tokenizer), vocab_size), vocab_size)]

    @torch.no_grad()
    def generate(self, model: nn.Module, prompts: Sequence[str], device: torch.device, *, max_new_tokens: int = 20,
                 min_new_tokens: int = 0, temperature: float = 1.0, top_k: int = 40, seed: int = 0,
                 batch_size: int = 64) -> list[str]:
        """One continuation (decoded text without the prompt, stripped) per prompt.

        The native model's contract in tokenizer tokens: sampling from the ``top_k`` most likely next
        tokens at ``temperature`` (0: greedy) with a seeded :class:`torch.Generator`, stopping at eos
        (never before ``min_new_tokens`` tokens) or after ``max_new_tokens``; the same call returns
        the same texts.
        """
        if not 0 <= min_new_tokens <= max_new_tokens <= self.max_length - 2:
            raise InputError(f"need 0 <= min_new_tokens <= max_new_tokens <= {self.max_length - 2}")
        bos, eos = self._bos(), self.tokenizer.eos_token_id
        generator = torch.Generator(device=device).manual_seed(seed)
        texts: list[str] = []
        for first in range(0, len(prompts), batch_size):
            heads = [[*bos, *ids][-(self.max_length - max_new_tokens):]
                     for ids in self._encode_words(prompts[first : first + batch_size])]
            if not all(heads):
                raise InputError("an empty prompt needs a tokenizer with a bos token to start from")
            # left-align each prompt; generated tokens go at each row's own next position
            lengths = torch.tensor([len(h) for h in heads], device=device)
            tokens = pad(heads, max(len(h) for h in heads) + max_new_tokens, value=IGNORE).to(device)
            done = torch.zeros(len(heads), dtype=torch.bool, device=device)
            rows = torch.arange(len(heads), device=device)
            never = None
            for step in range(max_new_tokens):
                position = lengths + step
                logits = model(tokens[:, : int(position.max())])[rows, position - 1]
                if never is None:
                    never = torch.tensor(self._never_generated(logits.shape[-1]), dtype=torch.long, device=device)
                logits[:, never] = -math.inf
                if step < min_new_tokens and eos is not None:
                    logits[:, eos] = -math.inf
                next_token = sample_next_token(logits, temperature, top_k, generator)
                next_token = next_token.masked_fill(done, IGNORE)
                tokens[rows, position] = next_token
                if eos is not None:
                    done |= next_token == eos
                if bool(done.all()):
                    break
            for row, length in zip(tokens.cpu().tolist(), lengths.cpu().tolist()):
                new = row[length : length + max_new_tokens]
                new = new[: new.index(eos)] if eos is not None and eos in new else new
                texts.append(self.tokenizer.decode([t for t in new if t != IGNORE], skip_special_tokens=True).strip())
        return texts

    # -- run directory -----------------------------------------------------------------------------

    def run_record(self) -> dict[str, Any]:
        return {"model_size": self.model_size}

    def restore_record(self, record: dict[str, Any]) -> None:
        self.model_size = record.get("model_size")

    def describe(self) -> dict[str, Any]:
        facts = {**super().describe(), "perplexity_unit": "tokenizer token"}
        if self.model_size is None:
            return {**facts, "model_size": "pretrained"}
        return {**facts, "model_size": self.model_size, **asdict(MODEL_SIZES[self.model_size])}


HF_TASK_MODELS: dict[str, type[HFTaskModel]] = {
    cls.name: cls
    for cls in (HFSequenceClassifierTask, HFTokenClassifierTask, HFQuestionAnsweringTask, HFSeq2SeqTask, HFCausalLMTask)
}
