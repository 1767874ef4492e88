"""`fedpart augment counterfactual` hardening: outputs that would destroy the input, tc raw text
columns, task-reader options, cds keyed by row_id, unwritable outputs, her/his rules, QA answers
that cut a word, --pairs repeating a built-in pair."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.augment import CounterfactualOptions, GenderSwapper, counterfactual
from fedpart.augment.files import augment_counterfactual
from fedpart.augment.swapper import SwapperConfig
from fedpart.augment.tagger import find_default_model, tagging_view
from fedpart.cli import main
from fedpart.errors import InputError
from fedpart.io.sources import ReadOptions
from fedpart.tasks import ColumnMap
from fedpart.verify import sha256_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AG_NEWS = FIXTURES / "ag_news" / "sample.csv"
MODEL = find_default_model()
RULES = CounterfactualOptions(swapper=SwapperConfig(spacy_model="none"))


def run(*args: str):
    return CliRunner().invoke(main, ["augment", "counterfactual", *args, "--spacy-model", "none"])


@pytest.fixture(scope="module")
def partition(tmp_path_factory) -> Path:
    parts = tmp_path_factory.mktemp("parts") / "p"
    fedpart.partition(AG_NEWS, task="tc", scheme="iid", clients=3, test_frac=0.1, out=parts, plot=False,
                      read_options=ReadOptions(column_names=("label", "title", "description")))
    return parts


# -- 1. an --out over the input is refused, the input is kept -----------------------------------------


def test_out_equal_to_input_file_is_refused_and_input_kept(tmp_path):
    data = tmp_path / "tb.csv"
    data.write_text("text,label\nShe ran.,1\n", encoding="utf-8")
    before = data.read_bytes()
    result = run(str(data), "--out", str(data), "--overwrite")
    assert result.exit_code == 2 and "outside the input" in result.output
    assert data.read_bytes() == before


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_out_over_a_partition_or_directory_input_is_refused(partition, where):
    out = {"same": partition, "inside": partition / "cda", "parent": partition.parent}[where]
    files = sorted(p.name for p in partition.rglob("*"))
    result = run(str(partition), "--out", str(out), "--overwrite")
    assert result.exit_code == 2 and "input" in result.output, result.output
    assert sorted(p.name for p in partition.rglob("*")) == files


# -- 2. --task tc keeps the raw text columns consistent with `text` ---------------------------------


@pytest.mark.parametrize("text_col", [None, "title,description"])
def test_task_tc_swaps_text_and_the_raw_columns_it_joins(tmp_path, text_col):
    out = tmp_path / "ag.parquet"
    args = [str(AG_NEWS), "--task", "tc", "--column-names", "label,title,description", "--out", str(out)]
    result = run(*args, *(["--text-col", text_col] if text_col else []))
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    changed = [r for r in rows if r["n_swaps"]]
    assert changed
    for row in rows:
        assert row["text"] == f"{row['title'] or ''} {row['description'] or ''}".strip()
    raw = pv.read_csv(AG_NEWS, read_options=pv.ReadOptions(column_names=["label", "title", "description"])).to_pylist()
    assert len(raw) == len(rows)
    assert sum(r["title"] != o["title"] or r["description"] != o["description"] for r, o in zip(rows, raw)) == len(changed)


# -- 3. task-reader options: --drop-invalid, --*-col, one-level messages --------------------------------


def _squad(path: Path) -> Path:
    context = "She gave her son a book."
    data = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "What did she give?", "answers": [{"text": "a book", "answer_start": 17}]},
        {"id": "b", "question": "Whom?", "answers": [{"text": "her son", "answer_start": 3}]},
    ]}]}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_drop_invalid_augments_dirty_qa_data(tmp_path):
    squad = _squad(tmp_path / "bad.json")
    failed = run(str(squad), "--task", "qa", "--out", str(tmp_path / "x.parquet"))
    assert failed.exit_code == 2 and "--drop-invalid" in failed.output
    assert failed.output.count("answer_start") == 2 and "rows have an answer" not in failed.output
    out = tmp_path / "ok.parquet"
    result = run(str(squad), "--task", "qa", "--drop-invalid", "--out", str(out), "--id-col", "id")
    assert result.exit_code == 0, result.output
    assert "dropped 1 row(s)" in result.output
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == ["a"] and rows[0]["context"] == "He gave his daughter a book."


def test_task_column_options_are_named_in_errors_and_need_task(tmp_path):
    squad = _squad(tmp_path / "q.json")
    missing = run(str(squad), "--task", "qa", "--id-col", "nope", "--out", str(tmp_path / "a.parquet"))
    assert missing.exit_code == 2 and "--id-col" in missing.output
    no_task = run(str(AG_NEWS), "--tokens-col", "x", "--out", str(tmp_path / "b.parquet"))
    assert no_task.exit_code == 2 and "need --task" in no_task.output
    lm = run(str(AG_NEWS), "--task", "lm", "--out", str(tmp_path / "c.parquet"))  # lm reads as partition does
    assert lm.exit_code == 2 and "no text column (looked for 'text', 'sentence', 'content')" in lm.output


# -- 4. cds draws keyed by row_id: a partition gets the whole input's draws ------------------------------


def test_cds_on_a_partition_equals_cds_on_the_whole_input(partition, tmp_path):
    options = CounterfactualOptions(mode="cds", p=0.5, seed=3, swapper=SwapperConfig(spacy_model="none"))
    augment_counterfactual(partition, out=tmp_path / "cds", options=options)
    shards = [pq.read_table(f) for f in sorted((tmp_path / "cds" / "clients").glob("*.parquet"))]
    per_shard = {r["row_id"]: (r["is_counterfactual"], r["text"]) for t in shards for r in t.to_pylist()}
    inputs = pa.concat_tables(pq.read_table(f) for f in sorted((partition / "clients").glob("*.parquet")))
    whole, _ = counterfactual(inputs.sort_by("row_id"), mode="cds", p=0.5, seed=3, spacy_model="none")
    expected = {r["row_id"]: (r["is_counterfactual"], r["text"]) for r in whole.to_pylist()}
    assert per_shard == expected
    chosen = [cf for cf, _ in per_shard.values()]
    assert 0.3 < sum(chosen) / len(chosen) < 0.7
    # and the clients do not share one pattern: the first rows of the shards are drawn differently
    patterns = {tuple(t.column("is_counterfactual").to_pylist()[:20]) for t in shards}
    assert len(patterns) == len(shards)


# -- 5. outputs that cannot be written fail up front -------------------------------------------------


def test_unwritable_outputs_fail_before_writing(tmp_path):
    data = tmp_path / "t.csv"
    data.write_text("text,label\nShe ran.,1\n", encoding="utf-8")
    out = tmp_path / "o.parquet"
    for args in (["--out", "/proc/fedpart-x.parquet"], ["--out", str(out), "--report", "/proc/x.json"],
                 ["--out", str(out), "--report", str(tmp_path)], ["--out", str(tmp_path / "o.csv")]):
        result = run(str(data), *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error:") and result.output.count("\n") == 1
        assert not out.exists() and not (tmp_path / "o.csv").exists()


def test_name_pairs_without_names_is_refused(tmp_path):
    result = run(str(AG_NEWS), "--column-names", "label,title,description", "--text-col", "title",
                 "--name-pairs", str(tmp_path / "missing.tsv"), "--out", str(tmp_path / "o.parquet"))
    assert result.exit_code == 2 and "--names" in result.output


# -- 6. her/his rules, with and without spaCy --------------------------------------------------------

CASES = [
    ("his/her book", "her/his book"),
    ("her/his book", "his/her book"),
    ("He/she lost his/her keys.", "She/he lost her/his keys."),
    ("his & her", "her & his"),
    ("She drove her \u201cnew\u201d car.", "He drove his \u201cnew\u201d car."),
    ("her (adopted) son", "his (adopted) daughter"),
    ("her 'best' friend", "his 'best' friend"),
    ("her #1 fan", "his #1 fan"),
    ("her $5 bill", "his $5 bill"),
    ("She lost her\nbook.", "He lost his\nbook."),
    ("her\u00a0book", "his\u00a0book"),
    ("SHE TOLD HER SON.", "HE TOLD HIS DAUGHTER."),
    ("I saw her.", "I saw him."),
    ("The book is his.", "The book is hers."),
    ("him/her", "her/him"),
]


@pytest.mark.parametrize("model", ["none", pytest.param("model", marks=pytest.mark.skipif(MODEL is None, reason="no spaCy model"))])
def test_her_his_rules_around_punctuation_whitespace_and_capitals(model):
    swapper = GenderSwapper(spacy_model=MODEL if model == "model" else "none")
    assert [swapper.swap(text) for text, _ in CASES] == [want for _, want in CASES]


@pytest.mark.skipif(MODEL is None, reason="no spaCy model")
def test_a_possessive_tag_before_a_dash_is_trusted():
    assert GenderSwapper(spacy_model=MODEL).swap("his -- and only his -- car") == "her -- and only her -- car"


def test_tagging_view_collapses_whitespace_and_lowers_capitals():
    view, shift = tagging_view("She lost her\n\nbook")
    assert view == "She lost her book" and shift is not None and view[shift(14):shift(18)] == "book"
    assert tagging_view("SHE TOLD HER SON.") == ("she told her son.", None)


def test_one_bracket_table_serves_the_swapper_and_the_tagger():
    from fedpart.augment.swapper import bracketed
    from fedpart.augment.tagger import BRACKET_PAIRS

    assert BRACKET_PAIRS == {"[": "]", "(": ")", "{": "}"}
    for opener, closer in BRACKET_PAIRS.items():
        text = f"because {opener}her{closer} idea"
        assert bracketed(text, 9, 12)
        assert tagging_view(text)[0] == "because her idea"  # brackets to spaces, spaces collapsed
    assert not bracketed("because <her> idea", 9, 12) and not bracketed("because [her) idea", 9, 12)
    assert tagging_view("because [her) idea")[0] == "because [her) idea"


# -- 7. QA answers that cut a word -------------------------------------------------------------------


def test_answer_inside_a_word_keeps_the_word_and_its_text():
    answers = pa.array([{"text": ["son"], "answer_start": [13]}, {"text": ["mother"], "answer_start": [28]}],
                       pa.struct([pa.field("text", pa.list_(pa.string())), pa.field("answer_start", pa.list_(pa.int32()))]))
    table = pa.table({"id": ["1", "2"], "title": ["t", "t"],
                      "context": ["She gave her sons a book.", "He met the actress and grandmother."],
                      "question": ["Who?", "Who?"], "answers": answers})
    out, report = counterfactual(table, "qa", spacy_model="none")
    first, second = out.to_pylist()
    assert first["context"] == "He gave his sons a book."  # `sons` kept: the answer `son` cuts it
    assert first["answers"] == {"text": ["son"], "answer_start": [12]}
    assert second["context"] == "She met the actor and grandfather."  # grand|mother -> grand|father is fine
    assert second["answers"] == {"text": ["father"], "answer_start": [second["context"].index("father")]}
    assert report.qa_answers_misaligned == 0
    assert report.qa_words_kept == 1 and "left unswapped" in report.summary()


# -- 8. a --pairs file repeating a built-in pair ---------------------------------------------------------


def test_pairs_file_repeating_him_her_keeps_her_resolved(tmp_path):
    pairs = tmp_path / "p.tsv"
    pairs.write_text("him\ther\n", encoding="utf-8")
    swapper = GenderSwapper(pairs, spacy_model="none")
    assert swapper.swap("I saw her book and him.") == "I saw his book and her."


def test_cli_echoes_fedpart_warnings_and_drops_dependency_deprecations():
    from fedpart.augment import HeuristicFallbackWarning
    from fedpart.cli import _fedpart_warning

    assert _fedpart_warning(HeuristicFallbackWarning)  # no spaCy model: the user should know
    assert not _fedpart_warning(DeprecationWarning) and not _fedpart_warning(UserWarning)  # dependencies' notices


def test_a_partition_is_augmented_with_the_task_it_was_made_with(tmp_path):
    parts = tmp_path / "qa"
    fedpart.partition(FIXTURES / "squad" / "sample.json", task="qa", scheme="iid", clients=2, out=parts, plot=False)
    result = run(str(parts), "--out", str(tmp_path / "cf"))  # no --task: the manifest's qa
    assert result.exit_code == 0, result.output
    assert "task qa" in result.output
    rows = [r for f in sorted((tmp_path / "cf" / "clients").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert any(r["n_swaps"] for r in rows)
    for row in rows:  # answers still where they say they are
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"]):
            assert row["context"][start : start + len(text)] == text
    result = run(str(parts), "--task", "tc", "--out", str(tmp_path / "cf2"))
    assert result.exit_code == 2 and "made with --task qa" in result.output
    assert not (tmp_path / "cf2").exists()


@pytest.mark.parametrize("text, expected", [
    ("see http://www.she.com/his/page and ask him", "see http://www.she.com/his/page and ask her"),
    ("mail he@example.com or she.x@her.org, he said", "mail he@example.com or she.x@her.org, she said"),
    ("www.HerCampus.com says she won", "www.HerCampus.com says he won"),
])
def test_urls_and_email_addresses_are_not_swapped(text, expected):
    assert GenderSwapper.from_config(SwapperConfig(spacy_model="none")).swap(text) == expected
    assert GenderSwapper.from_config(SwapperConfig(spacy_model="none")).swap_tokens(text.split()) == expected.split()


# -- 5. --overwrite replaces only an earlier augment output, never an unrelated directory -----------------


@pytest.mark.parametrize("kind", ["partition", "directory"])
def test_overwrite_replaces_only_an_earlier_output_of_the_same_kind(partition, tmp_path, kind):
    if kind == "partition":
        source, marker, extra = partition, "manifest.json", []
    else:
        source, marker = tmp_path / "files", "_augmentation.json"
        source.mkdir()
        (source / "a.csv").write_bytes(AG_NEWS.read_bytes())
        extra = ["--task", "tc", "--column-names", "label,title,description"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep", encoding="utf-8")
    refused = run(str(source), "--out", str(out), "--overwrite", *extra)
    assert refused.exit_code == 2 and marker in refused.output, refused.output
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    (out / marker).write_text("not json", encoding="utf-8")  # the name alone does not make it ours
    assert run(str(source), "--out", str(out), "--overwrite", *extra).exit_code == 2
    assert (out / "precious.txt").exists()

    fresh = tmp_path / "fresh"
    assert run(str(source), "--out", str(fresh), *extra).exit_code == 0
    record = json.loads((fresh / marker).read_text(encoding="utf-8"))
    report = record["extra"]["augmentation"] if kind == "partition" else record
    assert report["rows_read"] > 0 and report["mode"] == "replace"
    (fresh / "stale.parquet").write_bytes(b"")
    again = run(str(source), "--out", str(fresh), "--overwrite", *extra)
    assert again.exit_code == 0, again.output
    assert not (fresh / "stale.parquet").exists() and (fresh / marker).exists()
    if kind == "directory":  # the marker is not data: reading a directory that holds one skips it
        assert fedpart.io.sources.open_source(str(fresh)).count_rows() == report["rows_written"]
        (source / marker).write_text(json.dumps(report), encoding="utf-8")
        assert run(str(source), "--out", str(tmp_path / "again"), *extra).exit_code == 0
        assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["_augmentation.json", "a.parquet"]


# -- 6. --drop-invalid: cf_of and the cds draws are the row's position in the input ----------------------


def test_drop_invalid_keeps_input_positions_in_cf_of_and_cds(tmp_path):
    rows = [{"w": ["she", "told", "her", "son", str(i)] if i % 2 else ["he", "met", "his", "aunt", str(i)],
             "t": ["O"] * (1 if i == 1 else 5)} for i in range(40)]  # row 1: tags shorter than tokens
    data = tmp_path / "st.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    columns = ["--task", "st", "--tokens-col", "w", "--tags-col", "t", "--drop-invalid"]
    whole = tmp_path / "whole.parquet"
    result = run(str(data), *columns, "--mode", "cds", "--seed", "1", "--out", str(whole))
    assert result.exit_code == 0, result.output
    out = pq.read_table(whole).to_pylist()
    assert [r["cf_of"] for r in out] == [i for i in range(40) if i != 1]
    assert all(r["tokens"][-1] == str(r["cf_of"]) for r in out)
    parted = CliRunner().invoke(main, ["partition", str(data), *columns, "--clients", "2", "--out",
                                       str(tmp_path / "p"), "--quiet", "--no-plot"])
    assert parted.exit_code == 0, parted.output
    assert run(str(tmp_path / "p"), "--mode", "cds", "--seed", "1", "--out", str(tmp_path / "pc")).exit_code == 0
    shards = [r for f in sorted((tmp_path / "pc" / "clients").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(shards) == len(out)
    expected = {r["cf_of"]: (r["is_counterfactual"], r["tokens"]) for r in out}
    assert {r["cf_of"]: (r["is_counterfactual"], r["tokens"]) for r in shards} == expected


# -- 7. an augmented partition's manifest does not depend on how the source path was typed ----------------


def test_augmented_manifest_names_the_source_portably(partition, tmp_path, monkeypatch):
    monkeypatch.chdir(partition)
    assert run(".", "--out", str(tmp_path / "dot")).exit_code == 0
    monkeypatch.chdir(partition.parent)
    assert run(partition.name, "--out", str(tmp_path / "rel")).exit_code == 0
    assert run(str(partition), "--out", str(tmp_path / "abs")).exit_code == 0
    manifests = {name: (tmp_path / name / "manifest.json").read_bytes() for name in ("dot", "rel", "abs")}
    assert len(set(manifests.values())) == 1
    augmentation = json.loads(manifests["abs"])["extra"]["augmentation"]
    assert augmentation["source_partition"] == partition.name
    assert augmentation["source_manifest_sha256"] == sha256_of(partition / "manifest.json")
    assert str(tmp_path) not in manifests["abs"].decode() and str(partition.parent) not in manifests["abs"].decode()


def test_a_modified_partition_is_refused_before_augmenting(tmp_path, partition):
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(partition, copy)
    shutil.copy(copy / "clients" / "client-00001.parquet", copy / "clients" / "client-00000.parquet")
    result = run(str(copy), "--out", str(tmp_path / "cf"))
    assert result.exit_code == 2 and "client-00000.parquet" in result.output and "sha256" in result.output
    assert not (tmp_path / "cf").exists()


def test_the_report_names_pair_files_by_name_and_sha256(tmp_path, monkeypatch):
    import hashlib

    pairs = tmp_path / "extra.tsv"
    pairs.write_text("queen\tking\n", encoding="utf-8")
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["The queen spoke."]}), corpus)
    monkeypatch.chdir(tmp_path)
    for name, spec in (("a", str(pairs)), ("b", "extra.tsv")):
        result = run(str(corpus), "--text-col", "text", "--pairs", spec, "--out", f"{name}.parquet",
                     "--report", f"{name}.json")
        assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["pair_files"] == [f"extra.tsv sha256:{hashlib.sha256(pairs.read_bytes()).hexdigest()}"]
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


# -- 8. a directory of files: cf_of and the cds draws are positions across all its files ----------------


def _gendered(prefix: str, n: int) -> dict[str, list]:
    texts = [f"she told her son {prefix}{i}" if i % 2 else f"he met his aunt {prefix}{i}" for i in range(n)]
    return {"text": texts, "label": [i % 3 for i in range(n)]}


def test_directory_positions_run_on_across_its_files_in_row_id_order(tmp_path):
    from fedpart.io.sources import open_source

    files = tmp_path / "files"
    # path-string order (a-b.parquet, a/x.parquet, b.parquet) is not pathlib's (a/x.parquet first)
    for name, n in (("a/x.parquet", 30), ("a-b.parquet", 50), ("b.parquet", 40)):
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(_gendered(name, n)), files / name, row_group_size=16)
    whole = open_source(str(files)).iter_batches()
    texts = [t for batch in whole for t in batch.column("text").to_pylist()]  # row_id order of `partition`
    pq.write_table(pa.table({"text": texts, "label": [0] * len(texts)}), tmp_path / "whole.parquet")
    args = ("--text-col", "text", "--mode", "cds", "--p", "0.5", "--seed", "3")
    assert run(str(files), *args, "--out", str(tmp_path / "cf")).exit_code == 0
    assert run(str(tmp_path / "whole.parquet"), *args, "--out", str(tmp_path / "cf.parquet")).exit_code == 0
    names = ("a-b.parquet", "a/x.parquet", "b.parquet")
    out = [r for f in names for r in pq.read_table(tmp_path / "cf" / f).to_pylist()]
    cf_of = [r["cf_of"] for r in out]
    assert len(set(cf_of)) == len(cf_of) == len(texts)  # unique across the files
    assert cf_of == list(range(len(texts)))
    single = pq.read_table(tmp_path / "cf.parquet").to_pylist()
    assert [(r["text"], r["is_counterfactual"]) for r in out] == [(r["text"], r["is_counterfactual"]) for r in single]
    assert 0 < sum(r["is_counterfactual"] for r in out) < len(out)


def test_directory_positions_count_rows_dropped_at_the_end_of_a_file(tmp_path):
    def rows(first: int, n: int, bad: int) -> str:  # row `bad`: tags shorter than tokens
        return "".join(json.dumps({"w": ["she", "told", "her", "son", str(i)], "t": ["O"] * (1 if i == bad else 5)})
                       + "\n" for i in range(first, first + n))

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text(rows(0, 10, bad=9), encoding="utf-8")  # its last row dropped
    (tmp_path / "d" / "b.jsonl").write_text(rows(10, 10, bad=-1), encoding="utf-8")
    columns = ["--task", "st", "--tokens-col", "w", "--tags-col", "t", "--drop-invalid"]
    assert run(str(tmp_path / "d"), *columns, "--mode", "cds", "--out", str(tmp_path / "cf")).exit_code == 0
    out = [r for f in ("a.parquet", "b.parquet") for r in pq.read_table(tmp_path / "cf" / f).to_pylist()]
    assert [r["cf_of"] for r in out] == [i for i in range(20) if i != 9]
    assert all(r["tokens"][-1] == str(r["cf_of"]) for r in out)
    report = json.loads((tmp_path / "cf" / "_augmentation.json").read_text())
    assert report["rows_read"] == 19


def test_directory_positions_count_a_row_failing_two_checks_once(tmp_path):
    (tmp_path / "d").mkdir()
    rows = [{"dialogue": f"She told her son {i}.", "summary": f"she {i}"} for i in range(5)]
    rows[1] = {"dialogue": "", "summary": ""}  # empty source and empty target: one dropped row
    for name, part in (("a.jsonl", rows[:3]), ("b.jsonl", rows[3:])):
        (tmp_path / "d" / name).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    options = ["--task", "s2s", "--source-col", "dialogue", "--target-col", "summary", "--drop-invalid"]
    assert run(str(tmp_path / "d"), *options, "--mode", "replace", "--out", str(tmp_path / "cf")).exit_code == 0
    cf_of = [r["cf_of"] for f in ("a.parquet", "b.parquet") for r in pq.read_table(tmp_path / "cf" / f).to_pylist()]
    parts = fedpart.partition(tmp_path / "d", task="s2s", scheme="iid", clients=1, out=tmp_path / "p", plot=False,
                              columns=ColumnMap(source="dialogue", target="summary"), drop_invalid=True)
    row_ids = pq.read_table(tmp_path / "p" / parts.clients[0].file).column("row_id").to_pylist()
    assert cf_of == sorted(row_ids) == [0, 2, 3, 4]


# -- 9. an unreachable --ray-address fails at once, before Ray retries it for minutes -------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("form", ["{host}:{port}", "ray://{host}:{port}", "{host}:99999", "no-such-host.invalid:6379",
                                  "nonsense"])
def test_an_unreachable_ray_address_is_a_clean_error_at_once(tmp_path, form):
    import time

    pytest.importorskip("ray.data")
    address = form.format(host="127.0.0.1", port=_closed_port())
    data = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["She ran."]}), data)
    started = time.monotonic()
    result = run(str(data), "--text-col", "text", "--engine", "ray", "--ray-address", address,
                 "--out", str(tmp_path / "cf"))
    assert result.exit_code == 2, result.output
    assert f"cannot connect to Ray at --ray-address {address!r}" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "cf").exists()
    assert time.monotonic() - started < 20


def test_a_port_that_answers_but_not_as_ray_does_is_refused_at_once(tmp_path):
    """A web server (or a silent listener) on the port: Ray would wait for its GCS there for minutes."""
    import http.server
    import socket
    import threading
    import time

    from fedpart.raydata.session import check_reachable

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) and never answers
    try:
        started = time.monotonic()
        with pytest.raises(InputError, match=r"something listens on port \d+ but does not answer as Ray does"):
            check_reachable(f"127.0.0.1:{web.server_address[1]}")
        with pytest.raises(InputError, match="cannot connect to Ray at --ray-address"):
            check_reachable(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        web.shutdown()
        web.server_close()
        silent.close()


def _grpc_server(methods: dict[str, bytes]):
    """A gRPC server on a free 127.0.0.1 port answering ``methods`` (full names) with fixed bytes."""
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            if details.method in methods:
                reply = methods[details.method]
                return grpc.unary_unary_rpc_method_handler(lambda request, context: reply)
            return None  # UNIMPLEMENTED, as any server answers a method it does not serve

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), handlers=[Handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_a_grpc_server_that_serves_the_gcs_passes_the_ray_address_probe():
    """Ray's GCS and Ray Client are gRPC servers: one that answers the GCS probe passes as a GCS
    address; any gRPC server passes as a ray:// (Ray Client) address, whose service is another."""
    from fedpart.raydata.session import GCS_PROBE_METHOD, check_reachable, serves_ray_gcs

    server, port = _grpc_server({GCS_PROBE_METHOD: b"\n\x20" + bytes(32)})
    try:
        assert serves_ray_gcs("127.0.0.1", port) is True
        check_reachable(f"127.0.0.1:{port}")
        check_reachable(f"ray://127.0.0.1:{port}")
    finally:
        server.stop(0)


def test_a_grpc_server_that_is_not_ray_is_refused_as_a_gcs_address_at_once():
    """Another gRPC service: Ray would retry it for minutes (for ever when it listens on 127.0.0.1
    only, as Ray dials the machine's address instead)."""
    import time

    from fedpart.raydata.session import check_reachable, serves_ray_gcs

    server, port = _grpc_server({})
    try:
        started = time.monotonic()
        assert serves_ray_gcs("127.0.0.1", port) is False
        with pytest.raises(InputError, match=rf"a gRPC server listens on port {port} but it is not Ray's GCS"):
            check_reachable(f"127.0.0.1:{port}")
        check_reachable(f"ray://127.0.0.1:{port}")  # Ray Client serves other methods: not judged here
        assert time.monotonic() - started < 5
    finally:
        server.stop(0)


def test_ray_endpoint_parses_host_port_forms_only():
    from fedpart.raydata.session import ray_endpoint

    assert ray_endpoint("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert ray_endpoint("ray://head:10001") == ("head", 10001)
    assert ray_endpoint("[::1]:6379") == ("::1", 6379)
    assert [ray_endpoint(a) for a in (None, "auto", "local", "nonsense", "host:port", ":6379")] == [None] * 6


@pytest.mark.parametrize("address", ["ray://127.0.0.1", "ray://head-node", "ray://[::1]"])
def test_a_ray_client_address_without_a_port_is_refused_with_the_default_port(tmp_path, address):
    import time

    from fedpart.raydata.session import check_reachable

    started = time.monotonic()
    with pytest.raises(fedpart.InputError, match="has no port") as caught:
        check_reachable(address)
    assert f"--ray-address {address}:10001" in str(caught.value)
    assert time.monotonic() - started < 1  # Ray would retry port 443 for 30 s


@pytest.mark.parametrize("call, message", [
    (lambda: counterfactual(["she"], batch_rows=0), "batch_rows must be an integer >= 1, got 0"),
    (lambda: counterfactual(["she"], text_cols=3), r"text_cols \(--text-col\) must be column names"),
    (lambda: counterfactual(["she"], seed=-1), "--seed must be an integer from 0"),
    (lambda: GenderSwapper(spacy_model=3), r"spacy_model \(--spacy-model\) must be 'auto', 'none'"),
    (lambda: GenderSwapper(batch_size="x"), "batch_size must be an integer >= 1, got 'x'"),
    (lambda: GenderSwapper(pairs=3), r"pairs \(--pairs\) must be a pair file's path"),
    (lambda: GenderSwapper(spacy_model="none").swap_tokens("She told her"), "token list 0 is a string"),
    (lambda: GenderSwapper(spacy_model="none").swap_tokens(["she", "x"], ["O"]), "2 tokens but 1 tags"),
])
def test_python_api_arguments_of_the_wrong_type_are_input_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()
