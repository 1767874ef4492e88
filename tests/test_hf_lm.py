"""``--task lm --hf-model PATH``: a tiny random GPT-2 with a byte-level BPE tokenizer trained offline
on the AG News fixture, trained through the CLI, checked against hand computations on the raw
Hugging Face model (perplexity, continuation log-probabilities, greedy generation), then distilled
into a smaller GPT-2 student with counterfactual role reversal and measured by ``fedpart eval bias``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import fedpart  # noqa: E402
from fedpart.cli import main  # noqa: E402
from fedpart.distill.runner import DistillationTask, DistillConfig, _permutation  # noqa: E402
from fedpart.io.sources import ReadOptions  # noqa: E402
from fedpart.manifest import Manifest  # noqa: E402
from fedpart.tasks.models import make_hf_task_model  # noqa: E402
from fedpart.tasks.models.hf import IGNORE, HFCausalLMTask, student_config  # noqa: E402
from fedpart.train.bias_eval import load_prompts  # noqa: E402
from fedpart.train.runner import canonical_table, load_trained  # noqa: E402
from conftest import save_tiny_gpt2  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS = FIXTURES / "ag_news" / "sample.csv"
BOLD = FIXTURES / "bold" / "profession_prompt.json"
CPU = torch.device("cpu")
# AG News has "he" and "his" but never "she": repeated sentences make BPE learn the gendered words
GENDER_TEXT = ["he said she told her that his son and she met the woman and the man, and she left."] * 40
TRAIN_OPTIONS = ["--rounds", "2", "--lr", "0.005", "--client-opt", "adam", "--batch-size", "32", "--device", "cpu",
                 "-q"]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A 1-layer GPT-2 (width 96: larger than the ``small`` student) and an 800-token byte-level BPE."""
    out = tmp_path_factory.mktemp("hf-lm") / "tiny-gpt2"
    with open(AG_NEWS, encoding="utf-8", newline="") as handle:
        texts = [f"{title} {description}" for _, title, description in csv.reader(handle)]
    return save_tiny_gpt2(out, texts + GENDER_TEXT, vocab_size=800, width=96, pad=False)


@pytest.fixture(scope="module")
def lm_parts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf-lm") / "parts"
    fedpart.partition(AG_NEWS, task="lm", scheme="iid", clients=3, test_frac=0.1, out=out, plot=False,
                      read_options=ReadOptions(column_names=("label", "title", "description")))
    return out


@pytest.fixture(scope="module")
def hf_teacher(tiny_gpt2, lm_parts, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf-lm") / "teacher"
    result = CliRunner().invoke(main, ["train", str(lm_parts), "--task", "lm", "--hf-model", str(tiny_gpt2),
                                       "--algo", "centralized", "--out", str(out), *TRAIN_OPTIONS])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def task(tiny_gpt2, lm_parts) -> HFCausalLMTask:
    adapter = make_hf_task_model("lm", str(tiny_gpt2))
    adapter.fit([])
    return adapter


@pytest.fixture(scope="module")
def raw_model(tiny_gpt2, task):
    """The adapter's model (the checkpoint's weights) and the same weights as a plain GPT-2."""
    model = task.build_model().eval()
    return model, model.model


def _hand_logprobs(hf_model, ids: list[int]) -> torch.Tensor:
    """``log p(ids[t] | ids[:t])`` for t = 1..n-1, from one unpadded row of the raw model."""
    with torch.no_grad():
        logp = torch.log_softmax(hf_model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
    return logp[:-1].gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)


def test_train_cli_fine_tunes_the_checkpoint_and_load_trained_rebuilds_it(hf_teacher, tiny_gpt2, lm_parts, task):
    records = [json.loads(line) for line in (hf_teacher / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [1, 2] and set(records[-1]["metrics"]) == {"perplexity", "nll"}
    config = json.loads((hf_teacher / "config.json").read_text())
    facts = config["featurisation"]
    assert config["hf_model"] == str(tiny_gpt2) and facts["model_type"] == "gpt2"
    assert facts["perplexity_unit"] == "tokenizer token" and facts["model_size"] == "pretrained"
    assert (hf_teacher / "tokenizer" / "tokenizer.json").is_file()
    trained_task, model, _ = load_trained(hf_teacher, CPU)
    assert isinstance(trained_task, HFCausalLMTask)
    assert facts["parameters"] == sum(p.numel() for p in model.parameters())
    test = canonical_table(lm_parts / Manifest.read(lm_parts).test.file, "lm")
    again = trained_task.evaluate(model, trained_task.featurize(test, CPU), test)
    assert again["perplexity"] == pytest.approx(records[-1]["metrics"]["perplexity"], rel=1e-5)
    # the random checkpoint is close to uniform over 800 tokens; two rounds of Adam learn from it
    untrained = task.evaluate(task.build_model().eval(), task.featurize(test, CPU), test)
    assert untrained["perplexity"] > 500 and again["perplexity"] < 0.5 * untrained["perplexity"]


def test_perplexity_is_exp_of_the_mean_token_nll_of_unpadded_rows(task, raw_model):
    model, hf_model = raw_model
    texts = ["Oil prices fell sharply on Monday.", "she told her son a story"]
    data = task.featurize(pa.table({"text": texts}), CPU)
    assert data["tokens"].shape == (2, task.max_length) == (2, 48)
    nll, count = 0.0, 0
    for text in texts:
        ids = [task.tokenizer.bos_token_id, *task.tokenizer(text)["input_ids"], task.tokenizer.eos_token_id]
        assert data["tokens"][texts.index(text), : len(ids)].tolist() == ids
        logp = _hand_logprobs(hf_model, ids)
        nll, count = nll - float(logp.sum()), count + len(ids) - 1
    metrics = task.evaluate(model, data, pa.table({"text": texts}))
    assert metrics["nll"] == pytest.approx(nll / count, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-5)
    # the training loss is the same mean over real next tokens (padding ignored)
    assert float(task.loss(model, data).detach()) == pytest.approx(nll / count, rel=1e-5)


def test_continuation_logprob_is_the_sum_of_next_token_log_probabilities(task, raw_model):
    model, hf_model = raw_model
    prompts, continuations = ["The market", "she told her son that the"], ["fell sharply", "story ended"]
    got = task.continuation_logprob(model, prompts, continuations, CPU)
    for prompt, continuation, value in zip(prompts, continuations, got):
        head = [task.tokenizer.bos_token_id, *task.tokenizer(prompt)["input_ids"]]
        tail = task.tokenizer(" " + continuation)["input_ids"]
        logp = _hand_logprobs(hf_model, head + tail)
        assert value == pytest.approx(float(logp[len(head) - 1 :].sum()), abs=1e-4)
    assert len(tail) >= 2 and got[0] != got[1]


def test_generation_is_seeded_and_greedy_is_the_argmax_token(task, raw_model):
    model, hf_model = raw_model
    prompts = ["The company said", "she told her son", "Oil prices"]
    once = task.generate(model, prompts, CPU, seed=3, max_new_tokens=8)
    assert once == task.generate(model, prompts, CPU, seed=3, max_new_tokens=8)
    assert once != task.generate(model, prompts, CPU, seed=4, max_new_tokens=8)
    [greedy] = task.generate(model, ["The company said"], CPU, temperature=0, max_new_tokens=1, min_new_tokens=1)
    ids = [task.tokenizer.bos_token_id, *task.tokenizer("The company said")["input_ids"]]
    with torch.no_grad():
        logits = hf_model(input_ids=torch.tensor([ids])).logits[0, -1]
    logits[task.tokenizer.eos_token_id] = -math.inf  # min_new_tokens=1: no end of text yet
    assert greedy == task.tokenizer.decode([int(logits.argmax())]).strip()
    with pytest.raises(fedpart.InputError, match="max_new_tokens <= 46"):
        task.generate(model, prompts, CPU, max_new_tokens=47)


def test_gender_permutation_swaps_byte_level_bpe_tokens(task):
    ids = task.tokenizer.convert_tokens_to_ids
    he, she, his, her, the = ids(["Ġhe", "Ġshe", "Ġhis", "Ġher", "Ġthe"])
    assert task.tokenizer.unk_token_id not in (he, she, his, her, the)  # all in the learned vocabulary
    perm = _permutation(task, CPU)
    assert perm.shape == (task.config.vocab_size,)
    assert (perm[he], perm[she], perm[his], perm[her]) == (she, he, her, his)
    assert perm[the] == the and perm[task.tokenizer.eos_token_id] == task.tokenizer.eos_token_id
    assert torch.equal(perm[perm], torch.arange(len(perm)))


def test_teacher_perturbation_moves_the_target_on_hf_tokens(hf_teacher):
    teacher_task, teacher, _ = load_trained(hf_teacher, CPU)
    table = pa.table({"text": ["a man said he sold his shares", "the market fell"],
                      "counterpart": ["a woman said she sold her shares", "the market fell"]})
    losses = {}
    for mode in ("none", "mean"):
        distillation = DistillationTask(teacher_task, teacher, DistillConfig(teacher_perturb=mode, alpha_lm=0.0),
                                        _permutation(teacher_task, CPU))
        batch = distillation.featurize(table, CPU)
        inputs, cf_inputs, labels, ignore = distillation._inputs(batch)
        assert ignore == IGNORE and bool((labels[1] == IGNORE).any())  # the shorter row is padded
        losses[mode] = float(distillation.loss(teacher, batch).detach())
    assert losses["none"] == pytest.approx(0.0, abs=1e-5)  # a student equal to its teacher
    assert losses["mean"] > 1e-4  # where he/she, his/her follow, the counterfactual prediction differs


def test_distill_builds_a_smaller_gpt2_student_and_eval_bias_measures_both(hf_teacher, lm_parts, tmp_path):
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pq.read_table(lm_parts / Manifest.read(lm_parts).clients[0].file), corpus)  # 180 rows
    student_dir = tmp_path / "student-cf"
    result = CliRunner().invoke(main, [
        "distill", str(hf_teacher), "--data", str(corpus), "--student-size", "small", "--cda", "two-sided",
        "--teacher-perturb", "mean", "--temperature", "2.0", "--spacy-model", "none", "--out", str(student_dir),
        *TRAIN_OPTIONS, "--rounds", "1"])
    assert result.exit_code == 0, result.output
    teacher_task, teacher, _ = load_trained(hf_teacher, CPU)
    student_task, student, config = load_trained(student_dir, CPU)
    assert config["hf_model"] == json.loads((hf_teacher / "config.json").read_text())["hf_model"]
    assert isinstance(student_task, HFCausalLMTask) and student_task.model_size == "small"
    family = student.model.config
    assert (family.model_type, family.n_layer, family.n_embd, family.n_head) == ("gpt2", 1, 64, 2)
    assert student_task.tokenizer.get_vocab() == teacher_task.tokenizer.get_vocab()
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())
    assert config["featurisation"]["parameters"] == sum(p.numel() for p in student.parameters())

    result = CliRunner().invoke(main, [
        "eval", "bias", str(hf_teacher), str(student_dir), "--prompts", str(BOLD), "--samples", "1",
        "--n-boot", "50", "--spacy-model", "none", "--device", "cpu", "--json", str(tmp_path / "bias.json"),
        "--plot", str(tmp_path / "bias.png")])
    assert result.exit_code == 0, result.output
    teacher_record, student_record = json.loads((tmp_path / "bias.json").read_text())
    generations = len(load_prompts(BOLD))
    assert teacher_record["metrics"]["generations"] == student_record["metrics"]["generations"] == generations
    teacher_ppl = json.loads((hf_teacher / "metrics.jsonl").read_text().splitlines()[-1])["metrics"]["perplexity"]
    assert teacher_record["metrics"]["perplexity"] == pytest.approx(teacher_ppl, rel=1e-4)
    student_ppl = json.loads((student_dir / "metrics.jsonl").read_text().splitlines()[-1])["metrics"]["perplexity"]
    assert student_record["metrics"]["perplexity"] == pytest.approx(student_ppl, rel=1e-4)
    assert student_record["metrics"]["loglik_gap"]["value"] >= 0.0


def test_student_sizes_follow_the_family_mapping_and_refuse_unknown_families(task):
    llama = transformers.LlamaConfig(vocab_size=100, hidden_size=96, num_hidden_layers=3, num_attention_heads=3,
                                     num_key_value_heads=1, intermediate_size=200)
    small = student_config(llama, "base")
    assert type(small) is type(llama) and small.vocab_size == 100
    assert (small.num_hidden_layers, small.hidden_size, small.num_attention_heads, small.num_key_value_heads,
            small.head_dim, small.intermediate_size) == (2, 128, 4, 4, 32, 512)
    assert student_config(task.config, "small").n_positions == task.config.n_positions
    with pytest.raises(fedpart.InputError, match="no student size mapping for the 'bert' architecture"):
        student_config(transformers.BertConfig(), "small")
    with pytest.raises(fedpart.InputError, match="--student-size must be one of small, base, large"):
        task.make_student("tiny")
