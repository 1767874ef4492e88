"""QA pass 7 on `fedpart augment counterfactual`: decomposed accents and soft hyphens inside words,
pair files with a byte-order mark, partitions made with --task lm, a --report inside --out."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.augment import GenderSwapper, counterfactual, load_lexicon, load_name_lexicon
from fedpart.augment.swapper import WORD
from fedpart.cli import main
from fedpart.io.sources import ReadOptions

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS = FIXTURES / "ag_news" / "sample.csv"


def run(*args: str):
    return CliRunner().invoke(main, ["augment", "counterfactual", *args, "--spacy-model", "none"])


@pytest.fixture(scope="module")
def rules() -> GenderSwapper:
    return GenderSwapper(spacy_model="none")


# -- 1. a combining accent or a soft hyphen belongs to the word it is written in -------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # decomposed (NFD) fiancée/fiancé: "fiance" + U+0301 [+ "e"] used to become "fianceée"/"fianceé"
        (unicodedata.normalize("NFD", "her fiancée left"), unicodedata.normalize("NFD", "his fiancée left")),
        (unicodedata.normalize("NFD", "his fiancé left"), unicodedata.normalize("NFD", "her fiancé left")),
        ("h\u00e9 said", "h\u00e9 said"),  # composed: never a lexicon word
        ("he\u0301 said", "he\u0301 said"),  # decomposed hé is not "he"
        ("he\u00adlp her", "he\u00adlp him"),  # soft-hyphenated "help" holds no "he"
        ("the moth\u00ader", "the moth\u00ader"),
    ],
)
def test_accents_and_soft_hyphens_inside_a_word_are_part_of_it(rules, text, expected):
    assert rules.swap(text) == expected


def test_decomposed_text_never_gets_a_word_glued_to_a_replacement(rules):
    """No swap ends where a combining mark or soft hyphen carries the word on (real words, NFD)."""
    words = [w for w in load_lexicon().words() if not w.isascii()] + ["he", "she", "her", "his", "man", "son"]
    texts = [unicodedata.normalize("NFD", f"my {w}\u0301 and {w}\u00adx, {w.title()}\u0308s") for w in words]
    for text, result in zip(texts, rules.swap_texts(texts)):
        for swap in result.swaps:
            assert swap.end == len(text) or not (unicodedata.combining(text[swap.end]) or text[swap.end] == "\u00ad")
            assert swap.source.lower() in rules.lexicon.targets
    assert WORD.findall("fiance\u0301e he\u00adlp") == ["fiance\u0301e", "he\u00adlp"]


# -- 2. pair files saved as "UTF-8 with BOM" --------------------------------------------------------------


def test_pair_files_with_a_byte_order_mark_are_read(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes("\ufeffgunman\tgunwoman\n".encode())
    headed = tmp_path / "headed.tsv"
    headed.write_bytes("\ufeffmale\tfemale\nbatsman\tbatswoman\n".encode())
    names = tmp_path / "names.tsv"
    names.write_bytes("\ufeff1\tTarquin\tTamsin\n".encode())
    lexicon = load_lexicon([pairs, headed])
    assert lexicon.targets["gunman"] == ("gunwoman",)
    assert lexicon.targets["batsman"] == ("batswoman",)
    assert lexicon.origins[("male", "female")].startswith("fedpart/data/")  # the header line was skipped
    assert load_name_lexicon(names).targets["tarquin"] == ("tamsin",)
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["The gunman ran."]}), corpus)
    result = run(str(corpus), "--pairs", str(pairs), "--out", str(tmp_path / "o.parquet"))
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "o.parquet").column("text").to_pylist() == ["The gunwoman ran."]


# -- 3. a partition made with --task lm ----------------------------------------------------------------


def test_a_partition_made_with_task_lm_is_augmented_as_text(tmp_path):
    parts = tmp_path / "lm"
    fedpart.partition(AG_NEWS, task="lm", scheme="iid", clients=2, out=parts, plot=False,
                      read_options=ReadOptions(column_names=("label", "title", "description")))
    out = tmp_path / "lm-cf"
    result = run(str(parts), "--mode", "append", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "lm" and manifest["extra"]["augmentation"]["task"] == "lm"
    for before, after in zip(json.loads((parts / "manifest.json").read_text())["clients"], manifest["clients"]):
        source = pq.read_table(parts / before["file"]).to_pylist()
        table = pq.read_table(out / after["file"]).to_pylist()
        assert len(table) == after["rows"] > len(source)
        by_id = {r["row_id"]: r["text"] for r in source}
        swapped = GenderSwapper(spacy_model="none").swap_texts([by_id[r["cf_of"]] for r in table])
        for row, expected in zip(table, swapped):
            assert row["text"] == (expected.text if row["is_counterfactual"] else by_id[row["cf_of"]])
    in_memory, report = counterfactual(["She told her son."], task="lm", spacy_model="none")
    assert in_memory.column("text").to_pylist() == ["He told his daughter."] and report.task == "lm"
    # --task lm is a CLI choice too: the hint for a partition made with it names it
    wrong = run(str(parts), "--task", "tc", "--out", str(tmp_path / "tc-cf"))
    assert wrong.exit_code == 2 and "augment it with --task lm" in wrong.output
    named = run(str(parts), "--task", "lm", "--out", str(tmp_path / "lm-cf2"))
    assert named.exit_code == 0, named.output
    data = tmp_path / "lm.csv"
    data.write_text("text\nShe told her son.\n", encoding="utf-8")
    assert run(str(data), "--task", "lm", "--out", str(tmp_path / "lm.parquet")).exit_code == 0
    assert pq.read_table(tmp_path / "lm.parquet").column("text").to_pylist() == ["He told his daughter."]


# -- 4. --report inside the output (or input) directory ----------------------------------------------


def test_a_report_inside_the_output_or_input_directory_is_refused_before_anything_is_made(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"text": ["She told her son."]}), src / "a.parquet")
    out = tmp_path / "out"
    # the check used to create `out` for the report, so the run then failed with "out: already exists"
    result = run(str(src), "--out", str(out), "--report", str(out / "report.json"))
    assert result.exit_code == 2
    assert "--report" in result.output and "already exists" not in result.output
    assert not out.exists()
    result = run(str(src), "--out", str(out), "--report", str(src / "report.json"))
    assert result.exit_code == 2 and "--report" in result.output
    assert sorted(p.name for p in src.iterdir()) == ["a.parquet"]
    result = run(str(src), "--out", str(out), "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "report.json").read_text())["rows_written"] == 1


# -- 5. a partition made with --row-id-col ------------------------------------------------------------


def test_a_partition_with_a_renamed_row_id_column_keeps_its_ids_in_cf_of_and_the_cds_draws(tmp_path):
    parts = tmp_path / "p"
    fedpart.partition(AG_NEWS, task="tc", scheme="iid", clients=3, out=parts, plot=False, row_id_col="rid",
                      read_options=ReadOptions(column_names=("label", "title", "description")))
    whole = tmp_path / "whole.parquet"
    result = run(str(AG_NEWS), "--task", "tc", "--column-names", "label,title,description",
                 "--mode", "cds", "--p", "0.5", "--seed", "3", "--out", str(whole))
    assert result.exit_code == 0, result.output
    result = run(str(parts), "--mode", "cds", "--p", "0.5", "--seed", "3", "--out", str(tmp_path / "cf"))
    assert result.exit_code == 0, result.output
    swapped = {r["cf_of"]: r["is_counterfactual"] for r in pq.read_table(whole).to_pylist()}
    rows = [r for f in sorted((tmp_path / "cf" / "clients").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(rows) == len(swapped) == 600
    assert all(r["cf_of"] == r["rid"] for r in rows)  # was the position inside each client's shard
    assert [r["is_counterfactual"] for r in rows] == [swapped[r["rid"]] for r in rows]


# -- 6. Arrow view types (polars' Arrow output) in the in-memory API ------------------------------------


def test_string_view_columns_are_augmented_in_memory_as_from_a_file(tmp_path):
    import polars as pl

    frame = pl.DataFrame({"text": ["She told her son."], "tokens": [["She", "left"]]})
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    assert pa.types.is_string_view(table.schema.field("text").type)  # what polars hands over
    ipc = tmp_path / "c.arrow"
    frame.write_ipc(ipc, compat_level=pl.CompatLevel.newest())
    result = run(str(ipc), "--out", str(tmp_path / "o.parquet"))
    assert result.exit_code == 0, result.output
    from_file = pq.read_table(tmp_path / "o.parquet").column("text").to_pylist()
    for data in (table, table.to_batches()[0], pa.RecordBatchReader.from_batches(table.schema, table.to_batches())):
        out, _ = counterfactual(data, spacy_model="none")
        assert out.column("text").to_pylist() == from_file == ["He told his daughter."]
    out, _ = counterfactual(table.select(["tokens"]), task="st", spacy_model="none")
    assert out.column("tokens").to_pylist() == [["He", "left"]]
    qa = pa.table({
        "context": pa.array(["She ran."], pa.string_view()),
        "question": pa.array(["Who ran?"], pa.string_view()),
        "answers": pa.array([{"text": ["She"], "answer_start": [0]}],
                            pa.struct([("text", pa.list_(pa.string_view())), ("answer_start", pa.list_(pa.int32()))])),
    })
    out, _ = counterfactual(qa, task="qa", spacy_model="none")
    assert out.column("answers").to_pylist() == [{"text": ["He"], "answer_start": [0]}]


def test_a_partition_text_joined_from_other_columns_keeps_them_swapped_with_it(tmp_path):
    from fedpart.tasks import ColumnMap

    data = tmp_path / "news.csv"
    data.write_text("label,headline,body\n0,She wins,Her son cheered.\n1,Markets,He sold his shares.\n"
                    "0,No one,Nothing here.\n", encoding="utf-8")
    parts = tmp_path / "p"
    manifest = fedpart.partition(data, task="tc", columns=ColumnMap(text=("headline", "body")), scheme="iid",
                                 clients=1, out=parts, plot=False)
    assert manifest.input["text_from"] == ["headline", "body"]
    result = run(str(parts), "--out", str(tmp_path / "cf"))
    assert result.exit_code == 0, result.output
    rows = pq.read_table(tmp_path / "cf" / "clients" / "client-00000.parquet").sort_by("cf_of").to_pylist()
    assert [(r["headline"], r["body"]) for r in rows] == [
        ("He wins", "His daughter cheered."), ("Markets", "She sold her shares."), ("No one", "Nothing here.")]
    assert all(r["text"] == f"{r['headline']} {r['body']}" for r in rows)  # text stays the join of its parts
