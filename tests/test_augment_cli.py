"""`fedpart augment counterfactual` on a file, a task file and a partition directory."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.io.sources import ReadOptions
from fedpart.manifest import Manifest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_csv_append_mode_keeps_columns_and_pairs_rows(tmp_path):
    out = tmp_path / "cda.parquet"
    result = CliRunner().invoke(main, [
        "augment", "counterfactual", str(FIXTURES / "ag_news" / "sample.csv"), "--column-names",
        "label,title,description", "--text-col", "title,description", "--mode", "append", "--append-unchanged",
        "--spacy-model", "none", "--out", str(out), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 1200
    assert table.column_names[:3] == ["label", "title", "description"]
    assert {"cf_of", "is_counterfactual", "n_swaps"} <= set(table.column_names)
    rows = table.to_pylist()
    originals = {r["cf_of"]: r for r in rows if not r["is_counterfactual"]}
    for row in rows:
        if row["is_counterfactual"]:
            assert row["label"] == originals[row["cf_of"]]["label"]
            if row["n_swaps"] == 0:
                assert row["description"] == originals[row["cf_of"]]["description"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows_read"] == 600 and "words swapped" in result.output


def test_squad_json_with_task_keeps_answer_spans(tmp_path):
    out = tmp_path / "qa.parquet"
    result = CliRunner().invoke(main, ["augment", "counterfactual", str(FIXTURES / "squad" / "sample.json"),
                                       "--task", "qa", "--spacy-model", "none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 225 and all(table.column("is_counterfactual").to_pylist())
    for context, answers in zip(table.column("context").to_pylist(), table.column("answers").to_pylist()):
        for text, start in zip(answers["text"], answers["answer_start"]):
            assert context[start:start + len(text)] == text


def test_partition_directory_becomes_a_new_partition(tmp_path):
    parts = tmp_path / "parts"
    fedpart.partition(FIXTURES / "ag_news" / "sample.csv", task="tc", scheme="dirichlet", alpha=0.5, clients=4,
                      test_frac=0.1, out=parts, plot=False,
                      read_options=ReadOptions(column_names=("label", "title", "description")))
    out = tmp_path / "cda"
    result = CliRunner().invoke(main, ["augment", "counterfactual", str(parts), "--mode", "append",
                                       "--spacy-model", "none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    before, after = Manifest.read(parts), Manifest.read(out)
    assert after.extra["augmentation"]["mode"] == "append"
    assert (out / "test.parquet").read_bytes() == (parts / "test.parquet").read_bytes()
    for old, new in zip(before.clients, after.clients):
        table = pq.read_table(out / new.file)
        assert new.rows == table.num_rows >= old.rows
        assert set(table.column("cf_of").to_pylist()) == set(pq.read_table(parts / old.file).column("row_id").to_pylist())
        assert sum(new.label_counts) == new.rows
    assert fedpart.load_client(out, 0, format="arrow").num_rows == after.clients[0].rows
    report = after.extra["augmentation"]
    stats = CliRunner().invoke(main, ["stats", str(out), "--no-plot"])
    assert stats.exit_code == 0, stats.output
    [line] = [line for line in stats.output.splitlines() if line.startswith("augmented ")]
    assert line.removeprefix("augmented").strip() == (
        f"counterfactual, append mode, of parts: {report['rows_read']:,} client rows read, "
        f"{report['counterfactual_rows']:,} counterfactual, {report['rows_written']:,} written")
    assert report["rows_written"] == report["rows_read"] + report["counterfactual_rows"] == sum(c.rows for c in after.clients)
    as_json = CliRunner().invoke(main, ["stats", str(out), "--no-plot", "--json"])
    assert json.loads(as_json.output)["augmentation"] == report
    assert "augmentation" not in json.loads(CliRunner().invoke(main, ["stats", str(parts), "--no-plot", "--json"]).output)
    again = CliRunner().invoke(main, ["augment", "counterfactual", str(parts), "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_directory_of_files_gives_one_parquet_per_file(tmp_path):
    folder = tmp_path / "shards"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("text,label\nShe is here.,1\nNo one.,0\n", encoding="utf-8")
    (folder / "sub" / "b.jsonl").write_text('{"text": "His dog barked at him.", "label": 2}\n', encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["augment", "counterfactual", str(folder), "--spacy-model", "none",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "a.parquet").column("text").to_pylist() == ["He is here.", "No one."]
    assert pq.read_table(out / "sub" / "b.parquet").column("text").to_pylist() == ["Her dog barked at her."]


DIALOGSUM_TEST = FIXTURES.parent.parent / "shared" / "data" / "dialogsum" / "dialogsum.test.jsonl"


def test_also_swap_swaps_the_extra_reference_summaries_of_a_multi_reference_test_set(tmp_path):
    """DialogSum test has three references; --target-col takes one, --also-swap the others, so every
    reference of a counterfactual row speaks of the same genders as its dialogue."""
    import pytest

    from fedpart.augment import GenderSwapper

    if not DIALOGSUM_TEST.exists():
        pytest.skip("the shared DialogSum copy is not present")
    data = tmp_path / "test.jsonl"
    data.write_text("".join(DIALOGSUM_TEST.read_text(encoding="utf-8").splitlines(keepends=True)[:40]), encoding="utf-8")
    out = tmp_path / "cf.parquet"
    result = CliRunner().invoke(main, ["augment", "counterfactual", str(data), "--task", "s2s", "--source-col", "dialogue",
                                       "--target-col", "summary1", "--also-swap", "summary2, summary3",
                                       "--spacy-model", "none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    originals = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    rules = GenderSwapper(spacy_model="none")
    changed = 0
    for row, original in zip(rows, originals):
        texts = [original[c] for c in ("dialogue", "summary1", "summary2", "summary3")]
        swapped = rules.swap_texts(texts)
        assert [row[c] for c in ("source", "target", "summary2", "summary3")] == [r.text for r in swapped]
        assert row["n_swaps"] == sum(r.n_swaps for r in swapped)
        assert (row["fname"], row["topic2"]) == (original["fname"], original["topic2"])  # copied
        changed += row["summary2"] != original["summary2"]
    assert changed >= 5  # the extra references did hold gendered words
    refused = CliRunner().invoke(main, ["augment", "counterfactual", str(data), "--task", "s2s", "--source-col",
                                        "dialogue", "--target-col", "summary1", "--also-swap", "summary9",
                                        "--out", str(tmp_path / "x.parquet")])
    assert refused.exit_code == 2 and "--also-swap summary9: no such column; the input has columns source, target" \
        in refused.output and not (tmp_path / "x.parquet").exists()


def test_also_swap_in_the_python_api_for_st_and_its_refusals():
    import pyarrow as pa
    import pytest

    from fedpart.augment import counterfactual
    from fedpart.errors import InputError

    table = pa.table({"tokens": [["She", "won"]], "tags": [["O", "O"]], "sentence": ["She won her race"]})
    out, report = counterfactual(table, task="st", also_swap="sentence", spacy_model="none")
    assert out.column("tokens").to_pylist() == [["He", "won"]]
    assert out.column("sentence").to_pylist() == ["He won his race"] and out.column("n_swaps").to_pylist() == [3]
    assert report.swaps == 3
    with pytest.raises(InputError, match="--also-swap tags: is a column the task st reads"):
        counterfactual(table, task="st", also_swap=["tags"], spacy_model="none")
    with pytest.raises(InputError, match=r"--also-swap tokens: has type list<item: string>; it names string columns"):
        counterfactual(table, task="tc", text_cols="sentence", also_swap="tokens", spacy_model="none")
    with pytest.raises(InputError, match="also_swap .--also-swap. must be column names"):
        counterfactual(["she"], also_swap=3)
    with pytest.raises(InputError, match=r"also_swap \(--also-swap\) must be a tuple of column names, got \(''"):
        counterfactual(["she"], also_swap=[""])
