"""Test-wide settings: never touch the network (Hugging Face loads must stay local)."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# --- helpers for the partition tests: write small tables, read a partition back ----------------

import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS_CSV = FIXTURES / "ag_news" / "sample.csv"
AG_NEWS_COLUMNS = ("label", "title", "description")


def write_table(path: Path, data: dict | pa.Table, row_group_size: int | None = 7) -> Path:
    """Write ``data`` to ``path`` in the format its suffix names (.parquet, .csv, .tsv, .jsonl, .arrow).

    Parquet files get small row groups by default so multi-row-group reads are exercised.
    """
    table = data if isinstance(data, pa.Table) else pa.table(data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        pq.write_table(table, path, row_group_size=row_group_size)
    elif suffix in (".csv", ".tsv"):
        import pyarrow.csv as pacsv

        delimiter = "\t" if suffix == ".tsv" else ","
        pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter=delimiter))
    elif suffix in (".jsonl", ".ndjson", ".json"):
        with open(path, "w", encoding="utf-8") as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row) + "\n")
    elif suffix in (".arrow", ".feather", ".ipc"):
        import pyarrow.feather as feather

        feather.write_feather(table, path)
    else:
        raise ValueError(f"no writer for {suffix}")
    return path


@dataclass
class Partition:
    """A partition directory read back: the manifest, every client's table and the test table."""

    manifest: object
    clients: list
    test: pa.Table | None

    def row_ids(self, client: int) -> list[int]:
        return self.clients[client].column(self.manifest.row_id_col).to_pylist()

    def all_row_ids(self) -> list[int]:
        """Row ids of every client and the test split, concatenated (duplicates kept)."""
        ids = [i for c in range(len(self.clients)) for i in self.row_ids(c)]
        if self.test is not None:
            ids += self.test.column(self.manifest.row_id_col).to_pylist()
        return ids


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray for the module's tests (2 CPUs, quiet); one already running (Flower's simulation) is reused."""
    import os

    import ray

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


def assert_refused(result, *fragments: str, out: Path | None = None, code: int = 2) -> str:
    """A CLI ``result`` that is a one-line ``error:`` with exit ``code`` holding every fragment, having
    written nothing at ``out``; returns the line."""
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert out is None or not out.exists()
    return lines[0]


def read_partition(out: Path) -> Partition:
    from fedpart.manifest import Manifest

    manifest = Manifest.read(out)
    clients = [pq.read_table(Path(out) / c.file) for c in manifest.clients]
    test = pq.read_table(Path(out) / manifest.test.file) if manifest.test is not None else None
    return Partition(manifest, clients, test)


@pytest.fixture(scope="session")
def table_writer():
    """``write_table(path, data)`` (session-scoped so hypothesis tests may use it)."""
    return write_table


@pytest.fixture(scope="session")
def partition_reader():
    """``read_partition(out) -> Partition`` (session-scoped so hypothesis tests may use it)."""
    return read_partition


# --- shared by the training hardening tests: a tiny partition of the AG News fixture, and a run on it ---


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    """An iid partition of the AG News fixture: 3 clients, 20 % test split."""
    import fedpart
    from fedpart.io.sources import ReadOptions

    out = tmp_path_factory.mktemp("train-parts") / "parts"
    fedpart.partition(AG_NEWS_CSV, task="tc", scheme="iid", clients=3, test_frac=0.2, out=out, plot=False,
                      read_options=ReadOptions(column_names=AG_NEWS_COLUMNS))
    return out


@pytest.fixture(scope="module")
def finished(parts, tmp_path_factory) -> Path:
    """A finished one-round FedAvg run (2 clients per round) on :func:`parts`."""
    from fedpart.train.federated import FederatedConfig
    from fedpart.train.runner import train

    out = tmp_path_factory.mktemp("train-run") / "run"
    train(parts, task="tc", out=out, config=FederatedConfig(rounds=1, clients_per_round=2, lr=0.5, batch_size=32),
          device="cpu")
    return out


# --- a tiny Hugging Face GPT-2 (for the --hf-model tests; transformers and tokenizers imported lazily) ---

GPT2_END = "<|endoftext|>"


def save_tiny_gpt2(out: Path, texts: list[str], vocab_size: int, width: int, pad: bool) -> Path:
    """Save a 1-layer GPT-2 of 48 positions and ``width`` with a byte-level BPE of ``vocab_size``
    tokens trained on ``texts`` to ``out``. ``pad``: the tokenizer pads with its end-of-text token
    (the config never has a ``pad_token_id``, as GPT-2 checkpoints do not)."""
    import tokenizers
    import torch
    import transformers

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[GPT2_END], show_progress=False,
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    tokenizer = transformers.GPT2TokenizerFast(tokenizer_object=bpe, bos_token=GPT2_END, eos_token=GPT2_END,
                                               unk_token=GPT2_END, **({"pad_token": GPT2_END} if pad else {}))
    tokenizer.save_pretrained(out)
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=width, n_head=2, n_positions=48,
                                     bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(out)
    return out
