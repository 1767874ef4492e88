"""End-to-end: each task's real-format fixture partitioned with two schemes.

Checks exact cover (row ids), determinism (byte-identical outputs), task-key integrity (QA contexts
never split) and that clients load with the task's canonical columns; plus task validation errors
and ``fedpart convert``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.convert import convert
from fedpart.errors import InputError
from fedpart.io.sources import ReadOptions
from fedpart.tasks import ColumnMap, TaskOptions

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS = FIXTURES / "ag_news" / "sample.csv"
AG_OPTIONS = ReadOptions(column_names=("label", "title", "description"))

# task -> (input, read options, expected canonical columns, [(scheme, extra params), ...])
CASES = {
    "tc": (AG_NEWS, AG_OPTIONS, ["text", "label"], [
        ("dirichlet", {"alpha": 0.3, "clients": 6}),
        ("cluster", {"alpha": 1.0, "clients": 5, "clusters": 4}),
    ]),
    "st": (FIXTURES / "wnut17" / "sample.conll", ReadOptions(), ["tokens", "tags", "entity_type"], [
        ("dirichlet", {"alpha": 0.5, "clients": 5}),
        ("label-count", {"labels_per_client": 2, "clients": 6}),
    ]),
    "qa": (FIXTURES / "squad" / "sample.json", ReadOptions(), ["id", "title", "context", "question", "answers"], [
        ("natural", {"by": "title", "clients": 3}),
        ("cluster", {"alpha": 0.5, "clients": 4, "clusters": 3}),
    ]),
    "s2s": (FIXTURES / "dialogsum" / "sample.jsonl", ReadOptions(), ["source", "target"], [
        ("quantity", {"alpha": 1.0, "clients": 5}),
        ("cluster", {"alpha": 0.5, "clients": 4, "clusters": 3}),
    ]),
}
PARAMS = [(task, scheme, params) for task, case in CASES.items() for scheme, params in case[3]]


def _run(task: str, scheme: str, params: dict, out: Path) -> fedpart.engine.Manifest:
    path, read_options, _, _ = CASES[task]
    return fedpart.partition(
        path, out=out, task=task, scheme=scheme, seed=3, read_options=read_options, plot=False, **params
    )


def _shards(out: Path, manifest) -> list[pa.Table]:
    return [pq.read_table(out / c.file) for c in manifest.clients]


def _canonical_rows(task: str) -> pa.Table:
    path, read_options, _, _ = CASES[task]
    source = fedpart.tasks.get_task(task).open(str(path), TaskOptions(read=read_options))
    return pa.Table.from_batches(list(source.iter_batches()), schema=source.schema)


@pytest.mark.parametrize(("task", "scheme", "params"), PARAMS)
def test_task_partition_is_exact_deterministic_and_canonical(tmp_path, task, scheme, params):
    manifest = _run(task, scheme, params, tmp_path / "a")
    again = _run(task, scheme, params, tmp_path / "b")
    expected = _canonical_rows(task)

    shards = _shards(tmp_path / "a", manifest)
    row_ids = pa.concat_arrays([s.column("row_id").combine_chunks() for s in shards]).to_pylist()
    assert sorted(row_ids) == list(range(expected.num_rows)), "shards must be an exact cover"
    assert manifest.rows["written"] == expected.num_rows == manifest.rows["input"]

    # every shard row is the canonical input row with that row id
    by_id = {i: row for i, row in enumerate(expected.to_pylist())}
    for shard in shards:
        for row in shard.to_pylist()[:50]:
            original = by_id[row["row_id"]]
            assert {k: row[k] for k in original} == original

    # byte-identical on a second run
    for name in ["manifest.json", *(c.file for c in manifest.clients)]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert again.to_json() == manifest.to_json()

    client = fedpart.load_client(tmp_path / "a", 0, format="arrow")
    assert client.column_names[: len(CASES[task][2])] == CASES[task][2]
    assert manifest.task == task


@pytest.mark.parametrize("scheme,params", CASES["qa"][3])
def test_qa_contexts_never_split(tmp_path, scheme, params):
    out = tmp_path / "p"
    manifest = _run("qa", scheme, {**params, "test_frac": 0.2}, out)
    assert manifest.test is not None and manifest.test.rows > 0
    owner: dict[str, str] = {}
    files = [c.file for c in manifest.clients] + [manifest.test.file]
    for name in files:
        for context in set(pq.read_table(out / name, columns=["context"]).column("context").to_pylist()):
            assert owner.setdefault(context, name) == name, "a context landed in two shards"
    assert len(owner) == len(set(_canonical_rows("qa").column("context").to_pylist()))


def test_st_key_is_dominant_entity_type(tmp_path):
    manifest = _run("st", "dirichlet", {"alpha": 0.5, "clients": 4}, tmp_path / "p")
    assert manifest.label_col == "entity_type"
    assert "O" in manifest.labels and "person" in manifest.labels
    table = pq.read_table(tmp_path / "p" / manifest.clients[0].file)
    for tags, entity_type in zip(table.column("tags").to_pylist(), table.column("entity_type").to_pylist()):
        types = [t[2:] for t in tags if t.startswith("B-")]
        if not types:
            assert entity_type == "O"
        else:
            best = max(types.count(t) for t in set(types))
            assert types.count(entity_type) == best
            assert entity_type == min(t for t in set(types) if types.count(t) == best)


def test_cluster_scheme_saves_centroids_and_cluster_column(tmp_path):
    out = tmp_path / "p"
    manifest = _run("tc", "cluster", {"alpha": 1.0, "clients": 5, "clusters": 4}, out)
    saved = __import__("numpy").load(out / "clusters.npz")
    assert saved["centroids"].shape[0] == 4
    assert manifest.key_col == "cluster" and manifest.keys == [0, 1, 2, 3]
    clusters = pc.unique(pq.read_table(out / manifest.clients[0].file).column("cluster")).to_pylist()
    assert set(clusters) <= {0, 1, 2, 3}
    per_key = [sum(c.key_counts[k] for c in manifest.clients) for k in range(4)]
    assert sum(per_key) == 600 and min(per_key) > 0


# --- validation ---------------------------------------------------------------------------------

def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_st_length_mismatch_names_the_sentence_and_can_be_dropped(tmp_path):
    rows = [{"tokens": ["a", "b"], "tags": ["O", "B-person"]}, {"tokens": ["c", "d", "e"], "tags": ["O", "O"]},
            {"tokens": ["f"], "tags": ["B-location"]}]
    path = _jsonl(tmp_path / "ner.jsonl", rows)
    with pytest.raises(InputError, match=r"1 row\(s\) have tokens and tags of different lengths.*row 1"):
        fedpart.partition(path, out=tmp_path / "o", task="st", clients=1)
    assert not (tmp_path / "o").exists()
    manifest = fedpart.partition(path, out=tmp_path / "o", task="st", clients=2, drop_invalid=True, plot=False)
    assert manifest.rows["dropped_invalid"] == 1 and manifest.rows["written"] == 2
    ids = sorted(i for c in manifest.clients for i in pq.read_table(tmp_path / "o" / c.file).column("row_id").to_pylist())
    assert ids == [0, 2], "row ids stay input positions after dropping"


def test_st_unknown_tag_scheme(tmp_path):
    path = _jsonl(tmp_path / "ner.jsonl", [{"tokens": ["a"], "tags": ["PERSON"]}])
    with pytest.raises(InputError, match="PERSON"):
        fedpart.partition(path, out=tmp_path / "o", task="st", clients=1)


def test_st_iobes_normalised_to_bio(tmp_path):
    path = _jsonl(tmp_path / "ner.jsonl", [
        {"tokens": ["New", "York", "is", "big"], "tags": ["B-LOC", "E-LOC", "O", "O"]},
        {"tokens": ["Ann", "ran"], "tags": ["S-PER", "O"]},
    ])
    report = convert(path, task="st", out=tmp_path / "c.parquet")
    assert report.rows == 2
    tags = pq.read_table(tmp_path / "c.parquet").column("tags").to_pylist()
    assert tags == [["B-LOC", "I-LOC", "O", "O"], ["B-PER", "O"]]


def _qa_row(i: int, context: str, text: str, start: int) -> dict:
    return {"id": f"q{i}", "title": "T", "context": context, "question": "what?",
            "answers": {"text": [text], "answer_start": [start]}}


def test_qa_bad_answer_start_counted_and_droppable(tmp_path):
    context = "Ada Lovelace wrote the first program."
    rows = [_qa_row(0, context, "Ada", 0), _qa_row(1, context, "first", 3), _qa_row(2, context, "program", 30),
            _qa_row(3, context, "wrote", 13)]
    path = _jsonl(tmp_path / "qa.jsonl", rows)
    with pytest.raises(InputError, match=r"2 row\(s\) have an answer_start that does not point"):
        fedpart.partition(path, out=tmp_path / "o", task="qa", clients=1)
    report = convert(path, task="qa", out=tmp_path / "c.parquet", options=TaskOptions(drop_invalid=True))
    assert report.rows == 2 and sum(report.dropped_invalid.values()) == 2
    kept = pq.read_table(tmp_path / "c.parquet")
    for context, answers in zip(kept.column("context").to_pylist(), kept.column("answers").to_pylist()):
        for text, start in zip(answers["text"], answers["answer_start"]):
            assert context[start:start + len(text)] == text


def test_tc_empty_texts_rejected(tmp_path):
    path = tmp_path / "tc.csv"
    path.write_text("text,label\nhello,1\n   ,0\n,1\nworld,0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"2 row\(s\) have an empty text"):
        fedpart.partition(path, out=tmp_path / "o", task="tc", scheme="dirichlet", alpha=1.0, clients=2)
    manifest = fedpart.partition(path, out=tmp_path / "o", task="tc", scheme="dirichlet", alpha=1.0,
                                 clients=2, drop_invalid=True, plot=False)
    assert manifest.rows == {"input": 4, "dropped_null": 0, "written": 2, "dropped_invalid": 2}


def test_tc_missing_text_column_lists_columns(tmp_path):
    path = tmp_path / "tc.csv"
    path.write_text("body,label\nhello,1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"--text-col.*columns are: body, label"):
        fedpart.partition(path, out=tmp_path / "o", task="tc", clients=1)


def test_tc_text_columns_joined_and_label_mapped(tmp_path):
    path = tmp_path / "tc.csv"
    path.write_text("cls,head,body\n1,Big news,Something happened\n2,Sport,A match\n", encoding="utf-8")
    report = convert(path, task="tc", out=tmp_path / "c.parquet",
                     options=TaskOptions(columns=ColumnMap(text=("head", "body"), label="cls")))
    table = pq.read_table(tmp_path / "c.parquet")
    assert report.columns[:2] == ["text", "label"]
    assert table.column("text").to_pylist() == ["Big news Something happened", "Sport A match"]
    assert table.column("label").to_pylist() == [1, 2]


def test_s2s_dialogsum_defaults_and_extra_columns(tmp_path):
    out = tmp_path / "d.parquet"
    report = convert(FIXTURES / "dialogsum" / "sample.jsonl", task="s2s", out=out)
    table = pq.read_table(out)
    lines = (FIXTURES / "dialogsum" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert report.rows == len(lines)
    assert table.column_names[:2] == ["source", "target"] and "topic" in table.column_names
    assert table.column("source")[0].as_py() == first["dialogue"]
    assert table.column("target")[0].as_py() == first["summary"]


def test_convert_cli_and_partition_cli_per_task(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["convert", str(FIXTURES / "squad" / "sample.json"), "--task", "qa",
                                  "--out", str(tmp_path / "qa.parquet")])
    assert result.exit_code == 0, result.output
    assert "rows (id, title, context, question, answers)" in result.output
    result = runner.invoke(main, ["partition", str(tmp_path / "qa.parquet"), "--task", "qa", "--scheme", "iid",
                                  "--clients", "3", "--out", str(tmp_path / "p"), "-q"])
    assert result.exit_code == 0, result.output
    manifest = fedpart.manifest.Manifest.read(tmp_path / "p")
    assert manifest.group_col == "context" and manifest.extra["groups"]["column"] == "context"
    result = runner.invoke(main, ["convert", str(AG_NEWS), "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and "needs --task" in result.output
    result = runner.invoke(main, ["partition", str(AG_NEWS), "--task", "st", "--clients", "2",
                                  "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and result.output.startswith("error: ")


def test_cluster_with_a_sentence_transformers_embedder(tmp_path, monkeypatch):
    """`--embedder sentence-transformers:NAME` goes through SentenceTransformer(NAME).encode; a
    stand-in module (the real package is an optional extra) checks the wiring and determinism."""
    import sys
    import types

    import numpy as np

    loaded = []

    class FakeSentenceTransformer:
        def __init__(self, name, device=None):
            loaded.append(name)

        def encode(self, texts, normalize_embeddings=True):
            # 2-d embedding: share of letters in the first half of the alphabet, and length
            out = np.array([[sum(c < "n" for c in t.lower() if c.isalpha()) / max(1, len(t)), len(t) / 500]
                            for t in texts])
            return out / np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-9)

    monkeypatch.setitem(sys.modules, "sentence_transformers",
                        types.SimpleNamespace(SentenceTransformer=FakeSentenceTransformer))
    runs = [
        fedpart.partition(AG_NEWS, out=tmp_path / name, task="tc", scheme="cluster", clusters=3, alpha=1.0,
                          clients=4, embedder="sentence-transformers:local-model", read_options=AG_OPTIONS,
                          plot=False)
        for name in ("a", "b")
    ]
    assert loaded == ["local-model", "local-model"]
    assert runs[0].to_json() == runs[1].to_json()
    assert runs[0].params["embedder"] == "sentence-transformers:local-model"
    assert len(runs[0].keys) == 3 and sum(sum(c.key_counts) for c in runs[0].clients) == 600


def test_unknown_embedder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="unknown --embedder 'bert'"):
        fedpart.partition(AG_NEWS, out=tmp_path / "o", task="tc", scheme="cluster", clusters=3, alpha=1.0,
                          clients=2, embedder="bert", read_options=AG_OPTIONS)
