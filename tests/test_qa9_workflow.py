"""QA pass 9, a researcher's workflow end to end (partition -> train -> eval -> report), with local
Hugging Face models that do not fit the task: they are refused with one line before anything is
written (an encoder for seq2seq, a bidirectional encoder as a causal LM, questions that leave no room
for their context), and a decoder classifier whose checkpoint has no pad token id trains and reads
each row's last real token, whatever the padding."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from click.testing import CliRunner

import fedpart
from conftest import AG_NEWS_CSV, FIXTURES, assert_refused, save_tiny_gpt2
from fedpart.cli import main
from fedpart.errors import InputError
from fedpart.tasks.models import make_hf_task_model
from fedpart.train.federated import FederatedConfig
from fedpart.train.runner import load_trained, train

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

CPU = ["--device", "cpu", "--threads", "1", "-q", "--rounds", "1", "--clients-per-round", "2"]


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A 1-layer BERT without task heads (an encoder: attends both ways), with a WordPiece tokenizer."""
    out = tmp_path_factory.mktemp("qa9-hf") / "tiny-bert"
    out.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789.,'",
             *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789")]
    (out / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(out)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=128)
    transformers.BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A 1-layer GPT-2 of 48 positions whose tokenizer pads with its end-of-text token, saved (as
    GPT-2 is) without a ``pad_token_id`` in its config; a 300-token byte-level BPE."""
    out = tmp_path_factory.mktemp("qa9-hf") / "tiny-gpt2"
    with open(AG_NEWS_CSV, encoding="utf-8", newline="") as handle:
        texts = [f"{title} {description}" for _, title, description in csv.reader(handle)]
    return save_tiny_gpt2(out, texts, vocab_size=300, width=16, pad=True)


@pytest.fixture(scope="module")
def s2s_parts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qa9-parts") / "dialogsum"
    fedpart.partition(FIXTURES / "dialogsum" / "sample.jsonl", task="s2s", scheme="iid", clients=2, test_frac=0.2,
                      out=out, plot=False)
    return out


@pytest.fixture(scope="module")
def qa_parts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qa9-parts") / "squad"
    fedpart.partition(FIXTURES / "squad" / "sample.json", task="qa", scheme="iid", clients=2, test_frac=0.2, out=out,
                      plot=False)
    return out


# -- an architecture the task's Auto class has no model for -------------------------------------------


def test_an_encoder_for_seq2seq_is_refused_before_anything_is_written(s2s_parts, tiny_bert, tmp_path):
    """A BERT has no AutoModelForSeq2SeqLM form: this was an "internal error" (exit 1) listing every
    supported config class, raised once the run directory was being written."""
    out = tmp_path / "run"
    result = invoke("train", s2s_parts, "--task", "s2s", "--hf-model", tiny_bert, *CPU, "--out", out)
    assert_refused(result, "--hf-model", "cannot load as AutoModelForSeq2SeqLM", "--task s2s", "'bert'",
                   "encoder-decoder", out=out)
    # refused by the adapter itself, before any data is read; the same model still serves the tasks it fits
    with pytest.raises(InputError, match="cannot load as AutoModelForSeq2SeqLM"):
        make_hf_task_model("s2s", str(tiny_bert))
    for task in ("tc", "st", "qa"):
        assert make_hf_task_model(task, str(tiny_bert)).name == task


# -- a causal LM must not see the token it predicts ---------------------------------------------------


def causal_leak(model: torch.nn.Module, vocab: int, length: int = 5) -> float:
    """How much the logits before the last position move when only the last token changes, relative
    to how much the last position's own logits move (random tokens, unlike the check's fixed ones)."""
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, vocab, (1, length), generator=generator)
    changed = tokens.clone()
    changed[0, -1] = 1 + (int(tokens[0, -1]) % (vocab - 1))  # another id
    model.eval()
    with torch.no_grad():
        a, b = model(tokens)[0], model(changed)[0]
    return float((a[:-1] - b[:-1]).abs().max() / (a[-1] - b[-1]).abs().max())


def test_a_bidirectional_encoder_is_refused_as_a_causal_lm(parts, tiny_bert, tiny_gpt2, tmp_path):
    """AutoModelForCausalLM loads a BERT (BertLMHeadModel) that attends to later tokens unless its
    config says is_decoder: every position then reads the token it is scored on, and the run
    reported a perplexity that measures nothing (60 after one round where a causal model had 150)."""
    from fedpart.tasks.models.hf import HFCausalLMTask

    out = tmp_path / "run"
    result = invoke("train", parts, "--task", "lm", "--hf-model", tiny_bert, *CPU, "--out", out)
    assert_refused(result, "--hf-model", "attends to later tokens", "is_decoder=True", out=out)
    with pytest.raises(InputError, match="attends to later tokens"):
        HFCausalLMTask(tiny_bert).build_model()
    # the same weights as a decoder (what the message advises), and GPT-2, are causal and accepted
    decoder = tmp_path / "bert-decoder"
    config = transformers.AutoConfig.from_pretrained(tiny_bert)
    config.is_decoder = True
    transformers.BertModel.from_pretrained(tiny_bert, config=config).save_pretrained(decoder)
    transformers.AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(decoder)
    for model_dir in (decoder, tiny_gpt2):
        task = HFCausalLMTask(model_dir)
        assert causal_leak(task.build_model(), int(task.config.vocab_size)) < 1e-5
    # the check measures what it refuses: the encoder's earlier logits do move
    encoder = transformers.AutoModelForCausalLM.from_pretrained(tiny_bert)
    from fedpart.tasks.models.hf import CausalLMLogits

    assert causal_leak(CausalLMLogits(encoder), int(encoder.config.vocab_size)) > 1e-3


# -- a decoder classifier without config.pad_token_id ----------------------------------------------


def test_a_gpt2_classifier_without_a_config_pad_token_id_trains_and_ignores_padding(parts, tiny_gpt2, tmp_path):
    """GPT-2 finds each row's last real token through config.pad_token_id, which GPT-2 checkpoints
    lack: --task tc failed on the first two-row batch ("internal error: Cannot handle batch sizes > 1
    if no padding token is defined") although the tokenizer pads with a token of its own."""
    assert transformers.AutoConfig.from_pretrained(tiny_gpt2).pad_token_id is None
    out = tmp_path / "run"
    records = train(parts, task="tc", out=out, device="cpu", hf_model=str(tiny_gpt2),
                    config=FederatedConfig(rounds=1, clients_per_round=2, lr=0.05, batch_size=16))
    assert [r["round"] for r in records] == [1] and (out / "finished.json").is_file()
    task, model, _ = load_trained(out, torch.device("cpu"))
    # a row's class probabilities do not depend on how far a longer row in its batch pads it
    table = pa.table({"text": ["Stocks rise.", "Oil prices fall again as traders weigh the supply of crude oil"],
                      "label": [1, 2]})
    both = task.probabilities(model, task.featurize(table, torch.device("cpu")))
    alone = task.probabilities(model, task.featurize(table.slice(0, 1), torch.device("cpu")))
    assert torch.allclose(both[0], alone[0], atol=1e-6)
    # and they do depend on the row's own last token (the one read is real, not padding)
    other = task.probabilities(model, task.featurize(pa.table({"text": ["Stocks rise sharply."], "label": [1]}),
                                                      torch.device("cpu")))
    assert not torch.allclose(alone[0], other[0], atol=1e-6)


# -- a question that leaves no room for its context -------------------------------------------------


def test_questions_longer_than_the_model_takes_are_a_one_line_error(qa_parts, tiny_gpt2, tmp_path):
    """With 48 positions and a 300-token BPE, some SQuAD questions fill the whole input: the
    tokenizer's bare "Truncation error" ended the run as an internal error (exit 1)."""
    out = tmp_path / "run"
    result = invoke("train", qa_parts, "--task", "qa", "--hf-model", tiny_gpt2, *CPU, "--out", out)
    line = assert_refused(result, "--hf-model", "question(s) fill all 48 tokens", "more positions", out=out)
    assert "internal error" not in line


# -- --help says what every option of a run does --------------------------------------------------------


@pytest.mark.parametrize("command", [("train",), ("distill",), ("eval", "bias")])
def test_every_option_of_the_run_commands_has_a_help_text(command):
    """--rounds, --clients-per-round, --local-epochs, --batch-size, --eval-every, --seed, --server-lr,
    --quiet (train, distill), --temperature (distill), --max-new-tokens, --top-k, --seed (eval bias)
    were listed with a default and nothing else: what --seed seeds is what a paper has to report."""
    import click

    cmd = main
    for name in command:
        cmd = cmd.commands[name]
    bare = [p.name for p in cmd.params if isinstance(p, click.Option) and not p.help]
    assert bare == []
    seed = next(p for p in cmd.params if p.name == "seed")
    if command != ("eval", "bias"):
        assert all(word in seed.help for word in ("weights", "client sampling", "minibatch"))


# -- macro-F1 with labels the model never saw ------------------------------------------------------


def test_macro_f1_counts_each_label_unseen_in_training_as_a_class_of_its_own(tmp_path):
    """A partition's own test split is scored as it is, labels the training shards lack included
    (a rare label can land wholly in the stratified test split). Every unseen label was encoded as the
    loss's ignore index, so two of them merged into one class: macro-F1 0.280 where scikit-learn's
    macro-F1 over the true labels is 0.210."""
    from sklearn.metrics import f1_score

    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    generator = torch.Generator().manual_seed(0)
    labels = ["A"] * 60 + ["B"] * 60 + ["C", "D", "E"]
    texts = [" ".join(words[int(i)] for i in torch.randint(0, len(words), (6,), generator=generator)) for _ in labels]
    data = tmp_path / "rare.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": texts, "label": labels}), data)
    parts = tmp_path / "parts"
    manifest = fedpart.partition(data, task="tc", scheme="iid", clients=2, test_frac=0.5, out=parts, plot=False)
    trained = {label for client in manifest.clients for label, n in zip(manifest.labels, client.label_counts) if n}
    tested = {label for label, n in zip(manifest.labels, manifest.test.label_counts) if n}
    assert len(tested - trained) >= 2  # the case in question: C and D only in the test split
    out = tmp_path / "run"
    records = train(parts, task="tc", out=out, device="cpu",
                    config=FederatedConfig(rounds=2, clients_per_round=2, lr=0.5, batch_size=16))
    task, model, _ = load_trained(out, torch.device("cpu"))
    test = pq.read_table(parts / "test.parquet")
    predicted = [task.labels[i] for i in task.predict(model, task.featurize(test, torch.device("cpu"))).tolist()]
    gold = test.column("label").to_pylist()
    expected = f1_score(gold, predicted, average="macro")
    assert records[-1]["metrics"]["macro_f1"] == pytest.approx(expected, abs=1e-6)
    assert records[-1]["metrics"]["accuracy"] == pytest.approx(sum(g == p for g, p in zip(gold, predicted)) / len(gold),
                                                                abs=1e-6)
