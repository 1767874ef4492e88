"""counterfactual(): task tables, modes, output columns, report, and every bad-input case."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fedpart.augment import (
    AugmentedStream,
    CounterfactualOptions,
    GenderSwapper,
    counterfactual,
    write_report,
)
from fedpart.augment.substitution import substitution_mask
from fedpart.augment.tagger import find_default_model
from fedpart.errors import InputError
from fedpart.io.conll import iter_conll_batches
from fedpart.io.squad import iter_squad_batches

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
XQUAD = ROOT.parent / "shared" / "data" / "squad_xquad_en" / "xquad.en.json"
MODEL = find_default_model()


@pytest.fixture(scope="module")
def swapper() -> GenderSwapper:
    """The real tagger when installed (as in CI), else the heuristic rules."""
    return GenderSwapper(spacy_model=MODEL or "none")


@pytest.fixture(scope="module")
def rules() -> GenderSwapper:
    return GenderSwapper(spacy_model="none")


TEXTS = ["She told her son he was late.", "Nothing to swap here.", None, "The actress thanked the chairman."]


# -- modes -------------------------------------------------------------------------------------------


def test_replace_mode_rewrites_every_row_and_keeps_other_columns(rules):
    table = pa.table({"text": TEXTS, "label": [1, 2, 3, 4]})
    out, report = counterfactual(table, swapper=rules)
    assert out.column_names == ["text", "label", "cf_of", "is_counterfactual", "n_swaps"]
    assert out.column("text").to_pylist() == [
        "He told his daughter she was late.",
        "Nothing to swap here.",
        None,
        "The actor thanked the chairwoman.",
    ]
    assert out.column("label").to_pylist() == [1, 2, 3, 4]
    assert out.column("cf_of").to_pylist() == [0, 1, 2, 3]
    assert out.column("is_counterfactual").to_pylist() == [True] * 4
    assert out.column("n_swaps").to_pylist() == [4, 0, 0, 2]
    assert (report.rows_read, report.rows_written, report.counterfactual_rows, report.rows_changed) == (4, 4, 4, 2)
    assert report.null_texts == {"text": 1}


def test_append_mode_is_two_sided_cda(rules):
    out, report = counterfactual(TEXTS, mode="append", swapper=rules)
    rows = out.to_pylist()
    assert [(r["cf_of"], r["is_counterfactual"]) for r in rows] == [
        (0, False), (0, True), (1, False), (2, False), (3, False), (3, True)
    ]
    assert rows[1]["text"] == "He told his daughter she was late." and rows[0]["text"] == TEXTS[0]
    assert [r["n_swaps"] for r in rows] == [0, 4, 0, 0, 0, 2]
    assert report.rows_written == 6 and report.counterfactual_rows == 2
    everything, _ = counterfactual(TEXTS, mode="append", append_unchanged=True, swapper=rules)
    assert everything.num_rows == 8


def test_cds_is_seeded_independent_of_batching_and_replaces_about_p(rules):
    texts = [f"Row {i}: she met her brother." for i in range(3000)]
    out, report = counterfactual(texts, mode="cds", p=0.3, seed=11, swapper=rules, batch_rows=1000)
    chosen = np.array(out.column("is_counterfactual").to_pylist())
    assert out.num_rows == 3000
    share = chosen.mean()
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 3000)  # 4 sigma
    assert out.column("cf_of").to_pylist() == list(range(3000))  # substituted in place
    for row in out.slice(0, 50).to_pylist():
        changed = row["text"] != texts[row["cf_of"]]
        assert changed == row["is_counterfactual"]
    again, _ = counterfactual(texts, mode="cds", p=0.3, seed=11, swapper=rules, batch_rows=7)
    assert again.equals(out)
    other, _ = counterfactual(texts, mode="cds", p=0.3, seed=12, swapper=rules)
    assert other.column("is_counterfactual").to_pylist() != chosen.tolist()
    assert report.p == 0.3 and report.seed == 11
    assert report.counterfactual_rows == int(chosen.sum())
    assert not substitution_mask(np.arange(100), 0.0, 1).any() and substitution_mask(np.arange(100), 1.0, 1).all()


def test_cf_of_uses_row_id_when_present(rules):
    table = pa.table({"row_id": ["a", "b"], "text": ["he", "it"]})
    out, _ = counterfactual(table, mode="append", append_unchanged=True, swapper=rules)
    assert out.column("cf_of").to_pylist() == ["a", "a", "b", "b"]
    assert out.schema.field("cf_of").type == pa.string()


def test_several_text_columns_and_input_kinds(rules):
    import polars as pl

    table = pa.table({"title": ["King wins", None], "description": ["The king thanked his wife.", "x"], "label": [1, 2]})
    out, report = counterfactual(table, text_cols=("title", "description"), swapper=rules)
    assert out.column("title").to_pylist() == ["Queen wins", None]
    assert out.column("description").to_pylist() == ["The queen thanked her husband.", "x"]
    assert report.null_texts == {"title": 1, "description": 0}
    for data in (table.to_batches()[0], pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), pl.from_arrow(table)):
        again, _ = counterfactual(data, text_cols="title,description", swapper=rules)
        assert again.to_pylist() == out.to_pylist()


def test_workers_give_the_same_output_in_the_same_order(rules):
    texts = [f"{i}: she and her mother" if i % 3 else f"{i}: nothing" for i in range(600)]
    one, report_one = counterfactual(texts, mode="cds", seed=3, spacy_model="none", batch_rows=50)
    two, report_two = counterfactual(texts, mode="cds", seed=3, spacy_model="none", batch_rows=50, workers=2)
    assert two.equals(one)
    assert report_two.to_dict() == report_one.to_dict()


def test_stream_api_for_the_cli(rules, tmp_path):
    table = pa.table({"text": TEXTS})
    stream = AugmentedStream(table.to_batches(max_chunksize=2), CounterfactualOptions(mode="append"), swapper=rules)
    batches = list(stream)
    assert sum(b.num_rows for b in batches) == 6
    report = stream.report()
    path = tmp_path / "report.json"
    write_report(report, path)
    saved = json.loads(path.read_text())
    assert saved["schema_version"] == 1 and saved["rows_read"] == 4 and saved["rows_written"] == 6


# -- report ------------------------------------------------------------------------------------------


def test_report_counts_pairs_and_unknown_gendered_words(rules):
    texts = [
        "The busboy told her mother.",
        "A linesman and a busboy; the busboy's boss.",
        "Business and witnesses and the human specimen.",
        "He met his wife.",
    ]
    _, report = counterfactual(texts, swapper=rules)
    assert report.swaps_per_pair == {"he->she": 1, "her->his": 1, "his->her": 1, "mother->father": 1, "wife->husband": 1}
    assert report.swaps == 5 and report.rows_changed == 2 and report.rows_read == 4
    assert report.unknown_gendered_words == [("busboy", 3), ("linesman", 1)]
    assert report.tagger == "heuristic rules" and report.lexicon_version == "1.4.0" and report.lexicon_pairs >= 200
    summary = report.summary()
    assert "4 rows read" in summary and "busboy (3)" in summary and "her->his 1" in summary


# -- tasks ---------------------------------------------------------------------------------------------


def test_st_tokens_swapped_one_for_one_and_tags_untouched(swapper):
    table = pa.Table.from_batches(list(iter_conll_batches(str(FIXTURES / "wnut17" / "sample.conll"))))
    out, report = counterfactual(table, "st", mode="append", swapper=swapper)
    rows = out.to_pylist()
    originals = table.to_pylist()
    assert report.rows_changed > 0
    for row in rows:
        source = originals[row["cf_of"]]
        assert len(row["tokens"]) == len(row["tags"]) == len(source["tokens"])
        assert row["tags"] == source["tags"]
        if row["is_counterfactual"]:
            changed = sum(a != b for a, b in zip(row["tokens"], source["tokens"]))
            assert changed == row["n_swaps"]


def test_st_names_swapped_only_inside_person_entities():
    named = GenderSwapper(names=True, spacy_model="none")
    table = pa.table(
        {
            "tokens": [["Michael", "Kors", "hired", "Michael", "and", "his", "sister", "."]],
            "tags": [["B-ORG", "I-ORG", "O", "B-PER", "O", "O", "O", "O"]],
        }
    )
    out, _ = counterfactual(table, "st", swapper=named)
    assert out.column("tokens").to_pylist() == [["Michael", "Kors", "hired", "Jessica", "and", "her", "brother", "."]]


def test_qa_answer_spans_hold_for_every_row_of_the_fixture(swapper):
    path = XQUAD if XQUAD.exists() else FIXTURES / "squad" / "sample.json"
    table = pa.Table.from_batches(list(iter_squad_batches(str(path))))
    out, report = counterfactual(table, "qa", mode="append", append_unchanged=True, swapper=swapper)
    assert out.num_rows == 2 * table.num_rows
    originals = table.to_pylist()
    answers = 0
    for row in out.to_pylist():
        context, texts, starts = row["context"], row["answers"]["text"], row["answers"]["answer_start"]
        assert len(texts) == len(starts) == len(originals[row["cf_of"]]["answers"]["text"])
        for text, start in zip(texts, starts):
            assert context[start : start + len(text)] == text
            answers += 1
    assert answers == 2 * report.qa_answers and report.qa_answers_misaligned == 0
    assert report.rows_changed > 0.2 * table.num_rows
    # a gendered answer is swapped together with its context
    swapped = [r for r in out.to_pylist() if r["is_counterfactual"] and r["answers"]["text"] != originals[r["cf_of"]]["answers"]["text"]]
    assert swapped


def test_qa_answer_inside_a_swapped_word_and_misaligned_input(rules):
    answers = pa.array(
        [{"text": ["mother", "her son"], "answer_start": [21, 32]}, {"text": ["nope"], "answer_start": [0]}],
        pa.struct([pa.field("text", pa.list_(pa.string())), pa.field("answer_start", pa.list_(pa.int32()))]),
    )
    table = pa.table(
        {
            "id": ["1", "2"],
            "title": ["t", "t"],
            "context": ["The actress and grandmother met her son.", "She left."],
            "question": ["Who did she meet?", "Where is he?"],
            "answers": answers,
        }
    )
    out, report = counterfactual(table, "qa", swapper=rules)
    first, second = out.to_pylist()
    assert first["context"] == "The actor and grandfather met his daughter."
    assert first["question"] == "Who did he meet?"
    assert first["answers"] == {"text": ["father", "his daughter"], "answer_start": [19, 30]}
    assert report.qa_answers == 3 and report.qa_answers_misaligned == 1
    assert second["answers"]["text"] == ["nope"]


def test_s2s_swaps_source_and_target_consistently(swapper):
    rows = [json.loads(line) for line in (FIXTURES / "dialogsum" / "sample.jsonl").read_text().splitlines()[:60]]
    table = pa.table({"source": [r["dialogue"] for r in rows], "target": [r["summary"] for r in rows]})
    table = table.append_column("extra", pa.array(range(len(rows))))
    out, report = counterfactual(table, "s2s", swapper=swapper)
    assert report.rows_changed > 0
    alone = swapper.swap_texts(table.column("target").to_pylist())
    assert out.column("target").to_pylist() == [r.text for r in alone]
    assert out.column("extra").to_pylist() == list(range(len(rows)))
    small, _ = counterfactual(
        pa.table({"source": ["Mr. Lee called his wife."], "target": ["Mr. Lee phoned his wife."]}), "s2s", swapper=swapper
    )
    assert small.to_pylist()[0]["source"] == "Ms. Lee called her husband."
    assert small.to_pylist()[0]["target"] == "Ms. Lee phoned her husband."


# -- bad input ----------------------------------------------------------------------------------------


def test_missing_text_column_lists_the_columns(rules):
    with pytest.raises(InputError, match=r"no column 'text' to swap for task tc; the input has columns title, label -- name the text columns"):
        counterfactual(pa.table({"title": ["x"], "label": [1]}), swapper=rules)
    with pytest.raises(InputError, match="no column 'context' to swap for task qa"):
        counterfactual(pa.table({"text": ["x"]}), "qa", swapper=rules)


def test_non_string_values_are_rejected(rules):
    with pytest.raises(InputError, match="column 'text' has type int64, expected strings"):
        counterfactual(pa.table({"text": [1, 2]}), swapper=rules)
    with pytest.raises(InputError, match=r"texts\[1\] is int 5, expected a string or None"):
        counterfactual(["she", 5], swapper=rules)
    with pytest.raises(InputError, match="column 'tokens' has type string, expected list<string>"):
        counterfactual(pa.table({"tokens": ["a b"]}), "st", swapper=rules)
    with pytest.raises(InputError, match="not a single string"):
        counterfactual("she", swapper=rules)


def test_already_augmented_input_is_rejected(rules):
    with pytest.raises(InputError, match="already has column"):
        counterfactual(pa.table({"text": ["she"], "n_swaps": [1]}), swapper=rules)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "both"}, "unknown mode 'both' \\(--mode\\)"),
        ({"task": "ner"}, "unknown task 'ner'"),
        ({"mode": "cds", "p": 1.5}, "p \\(--p\\) is 1.5"),
        ({"workers": 0}, "workers \\(--workers\\) is 0"),
        ({"task": "qa", "text_cols": ("context",)}, "applies to task tc only"),
    ],
)
def test_bad_options(rules, kwargs, message):
    with pytest.raises(InputError, match=message):
        counterfactual(["she"], swapper=rules, **kwargs)


def test_malformed_pairs_file_and_unknown_model_via_counterfactual(tmp_path):
    bad = tmp_path / "pairs.tsv"
    bad.write_text("duke\tduchess\nearl\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"pairs.tsv:2: 1 column\(s\)"):
        counterfactual(["she"], pairs=str(bad), spacy_model="none")
    with pytest.raises(InputError, match="requirements/augment.txt"):
        counterfactual(["she"], spacy_model="en_core_web_nonexistent")
    with pytest.raises(InputError, match="requirements/augment.txt"):
        counterfactual(["she"], spacy_model="en_core_web_nonexistent", workers=2)


def test_importing_fedpart_does_not_import_spacy():
    code = "import sys, fedpart, fedpart.augment; assert 'spacy' not in sys.modules, 'spacy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_qa_answers_with_unequal_lists_are_rejected(rules):
    answers = pa.array(
        [{"text": ["a", "b"], "answer_start": [0]}],
        pa.struct([pa.field("text", pa.list_(pa.string())), pa.field("answer_start", pa.list_(pa.int32()))]),
    )
    table = pa.table({"id": ["q7"], "context": ["a b"], "question": ["?"], "answers": answers})
    with pytest.raises(InputError, match="answers of question 'q7' have 2 text\\(s\\) but 1 answer_start"):
        counterfactual(table, "qa", swapper=rules)
