"""Directories read through a task's own formats (CoNLL for st, SQuAD JSON for qa): `augment`
finds the same files as `partition` (in its row_id order), a directory mixing a task format with
Arrow-readable data files is refused instead of half read, and two files whose augmented outputs
would share a name are refused. Input columns named like a task column that the task does not
read are dropped with a warning, not silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CONLL = FIXTURES / "conll2003" / "sample.conll"
SQUAD = FIXTURES / "squad" / "sample.json"

SENTENCES = [
    ("She told her son .", "O O O O O"),
    ("Anna met him in Paris .", "B-PER O O O B-LOC O"),
    ("His aunt praised Tomas Berg .", "O O O B-PER I-PER O"),
]


def _write_conll(path: Path, sentences: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(words.split(), tags.split())) for words, tags in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def augment(*args: str):
    return CliRunner().invoke(main, ["augment", "counterfactual", *args, "--spacy-model", "none"])


def test_augment_of_a_conll_directory_matches_partition_row_ids(tmp_path):
    data = tmp_path / "conll"
    _write_conll(data / "b.conll", SENTENCES[2:])
    _write_conll(data / "a" / "x.conll", SENTENCES[:2])  # path-string order: a/x.conll, then b.conll
    _write_conll(data / "_draft.conll", SENTENCES)  # markers and drafts are skipped by both commands
    result = augment(str(data), "--task", "st", "--mode", "cds", "--p", "1", "--out", str(tmp_path / "cf"))
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path / "cf").as_posix() for p in (tmp_path / "cf").rglob("*.parquet")) == [
        "a/x.parquet", "b.parquet"]
    rows = [r for f in ("a/x.parquet", "b.parquet") for r in pq.read_table(tmp_path / "cf" / f).to_pylist()]
    assert [r["tokens"] for r in rows] == [
        ["He", "told", "his", "daughter", "."], ["Anna", "met", "her", "in", "Paris", "."],
        ["Her", "uncle", "praised", "Tomas", "Berg", "."]]
    assert [r["tags"] for r in rows] == [tags.split() for _, tags in SENTENCES]  # tags stay aligned

    parts = fedpart.partition(data, task="st", scheme="iid", clients=1, out=tmp_path / "p", plot=False)
    table = pq.read_table(tmp_path / "p" / parts.clients[0].file).sort_by("row_id")
    assert [r["cf_of"] for r in rows] == table.column("row_id").to_pylist() == [0, 1, 2]
    assert table.column("tokens").to_pylist() == [words.split() for words, _ in SENTENCES]


def test_augment_of_a_squad_directory_reads_its_json_files(tmp_path):
    data = tmp_path / "squad"
    data.mkdir()
    shutil.copy(SQUAD, data / "dev.json")
    result = augment(str(data), "--task", "qa", "--out", str(tmp_path / "cf"))
    assert result.exit_code == 0, result.output
    article_rows = sum(len(q["qas"]) for a in json.loads(SQUAD.read_text())["data"] for q in a["paragraphs"])
    assert pq.read_table(tmp_path / "cf" / "dev.parquet").num_rows == article_rows


@pytest.mark.parametrize("command", ["partition", "augment"])
def test_a_directory_mixing_conll_and_other_data_files_is_refused(tmp_path, command):
    data = tmp_path / "mixed"
    _write_conll(data / "a.conll", SENTENCES)
    (data / "b.jsonl").write_text('{"tokens": ["She"], "tags": ["O"]}\n', encoding="utf-8")
    if command == "partition":
        result = CliRunner().invoke(main, ["partition", str(data), "--task", "st", "--scheme", "iid",
                                           "--clients", "1", "--out", str(tmp_path / "out"), "--no-plot"])
    else:
        result = augment(str(data), "--task", "st", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "CoNLL files (a.conll)" in result.output and "other data files (b.jsonl)" in result.output
    assert "*.conll" in result.output  # what to do: name the files with a glob
    assert not (tmp_path / "out").exists()


def test_a_readme_beside_jsonl_data_is_named_instead_of_parsed_as_conll(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "train.jsonl").write_text('{"tokens": ["She", "ran"], "tags": ["O", "O"]}\n', encoding="utf-8")
    (data / "SOURCE.txt").write_text("where these sentences come from\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["partition", str(data), "--task", "st", "--scheme", "iid", "--clients", "1",
                                       "--out", str(tmp_path / "out"), "--no-plot"])
    assert result.exit_code == 2
    assert "CoNLL files (SOURCE.txt)" in result.output and "train.jsonl" in result.output
    glob_result = CliRunner().invoke(main, ["partition", str(data / "*.jsonl"), "--task", "st", "--scheme", "iid",
                                            "--clients", "1", "--out", str(tmp_path / "out"), "--no-plot"])
    assert glob_result.exit_code == 0, glob_result.output


def test_two_files_with_one_output_name_are_refused(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "a.csv").write_text("text,label\nShe ran.,1\n", encoding="utf-8")
    (data / "a.jsonl").write_text('{"text": "He ran.", "label": 0}\n', encoding="utf-8")
    result = augment(str(data), "--out", str(tmp_path / "cf"))
    assert result.exit_code == 2
    assert "a.csv and a.jsonl would both be written to a.parquet" in result.output
    assert not (tmp_path / "cf").exists()


# -- an input column named like a task column that the task does not read is dropped: said, not silent ----------


def _partition_cli(data: Path, out: Path, *task_args: str):
    return CliRunner().invoke(main, ["partition", str(data), *task_args, "--scheme", "iid", "--clients", "1",
                                     "--out", str(out), "--no-plot"])


def test_a_text_column_beside_the_joined_text_columns_is_said_to_be_dropped(tmp_path):
    data = tmp_path / "news.csv"
    data.write_text("label,title,description,text\n1,She ran,fast,kept?\n0,He sat,down,kept?\n", encoding="utf-8")
    result = _partition_cli(data, tmp_path / "p", "--task", "tc", "--text-col", "title,description")
    assert result.exit_code == 0, result.output
    assert result.output.count("warning:") == 1
    assert "input column 'text' is not read by the task (it reads 'title', 'description', 'label')" in result.output
    table = pq.read_table(tmp_path / "p" / "clients" / "client-00000.parquet")
    assert "kept?" not in table.column("text").to_pylist()  # what the warning says: the input's text is gone


@pytest.mark.parametrize("header, task_args, said", [
    ("source,target,dialogue,summary", ("--task", "s2s", "--source-col", "dialogue", "--target-col", "summary"),
     "input columns 'source', 'target' are not read by the task (it reads 'dialogue', 'summary')"),
    ("label,category,text", ("--task", "tc", "--label-col", "category"),
     "input column 'label' is not read by the task (it reads 'text', 'category')"),
])
def test_other_replaced_columns_are_named(tmp_path, header, task_args, said):
    data = tmp_path / "d.csv"
    data.write_text(header + "\n" + ",".join(["a"] * len(header.split(","))) + "\n", encoding="utf-8")
    result = _partition_cli(data, tmp_path / "p", *task_args)
    assert result.exit_code == 0, result.output
    assert said in result.output


def test_columns_the_task_reads_or_derives_are_not_warned_about(tmp_path):
    rows = [{"tokens": ["She", "ran"], "tags": ["O", "O"], "entity_type": "stale"}]
    (tmp_path / "st.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = _partition_cli(tmp_path / "st.jsonl", tmp_path / "p", "--task", "st")  # entity_type is recomputed
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    (tmp_path / "tc.csv").write_text("text,label\nShe ran,1\n", encoding="utf-8")
    result = _partition_cli(tmp_path / "tc.csv", tmp_path / "q", "--task", "tc")
    assert result.exit_code == 0 and "warning" not in result.output, result.output


def test_a_blank_file_in_a_directory_is_skipped_by_augment_as_by_partition(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "a.jsonl").write_text('{"text": "She ran.", "label": 1}\n', encoding="utf-8")
    (data / "b.jsonl").write_text("\n", encoding="utf-8")  # e.g. an empty part file of a Spark job
    (data / "c.jsonl").write_text('{"text": "His dog.", "label": 0}\n', encoding="utf-8")
    result = augment(str(data), "--out", str(tmp_path / "cf"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "cf"
    assert sorted(p.name for p in out.glob("*.parquet")) == ["a.parquet", "c.parquet"]
    assert pq.read_table(out / "c.parquet").to_pylist()[0]["cf_of"] == 1  # positions as partition's row_id
    parts = fedpart.partition(data, scheme="iid", clients=1, label_col="label", out=tmp_path / "p", plot=False)
    assert parts.rows["written"] == 2


def test_convert_says_a_warning_in_one_line_too(tmp_path):
    data = tmp_path / "news.csv"
    data.write_text("label,title,description,text\n1,She ran,fast,kept?\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["convert", str(data), "--task", "tc", "--text-col", "title,description",
                                       "--out", str(tmp_path / "c.parquet")])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if "not read by the task" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: "), result.output
    assert "FedpartWarning" not in result.output and "base.py" not in result.output
