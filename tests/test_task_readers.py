"""Task-native readers (CoNLL columns, SQuAD JSON) and the pure tag / answer-span functions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpart.errors import InputError
from fedpart.io.conll import conll_schema, iter_conll_batches
from fedpart.io.squad import iter_squad_batches, squad_schema
from fedpart.tasks.qa_spans import answer_span_validity, describe_invalid
from fedpart.tasks.tags import (
    UnknownTagSchemeError,
    check_tags,
    detect_tag_scheme,
    dominant_entity_type,
    dominant_entity_types,
    normalise_tag_column,
    to_bio,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WNUT = FIXTURES / "wnut17" / "sample.conll"
CONLL2003 = FIXTURES / "conll2003" / "sample.conll"
SQUAD = FIXTURES / "squad" / "sample.json"
TAG_LIST = pa.list_(pa.string())


def read_table(batches) -> pa.Table:
    return pa.Table.from_batches(list(batches))


def blocks_of(path: Path) -> list[list[list[str]]]:
    """Independent parse for the checks: blank-line (or lone-TAB) separated blocks of TAB columns."""
    blocks, current = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            current.append(line.split("\t"))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


# --- CoNLL reader ------------------------------------------------------------------------------


def test_wnut_fixture_one_row_per_sentence_block():
    table = read_table(iter_conll_batches(str(WNUT)))
    blocks = blocks_of(WNUT)
    assert table.schema == conll_schema()
    assert table.num_rows == len(blocks) == 300
    tokens, tags = table.column("tokens").to_pylist(), table.column("tags").to_pylist()
    assert all(len(a) == len(b) for a, b in zip(tokens, tags))
    assert tokens == [[cols[0] for cols in block] for block in blocks]
    assert tags == [[cols[1] for cols in block] for block in blocks]


def test_wnut_fixture_first_sentence_matches_file_head():
    first = next(iter_conll_batches(str(WNUT))).slice(0, 1).to_pylist()[0]
    assert first["tokens"][:5] == ["@paulwalk", "It", "'s", "the", "view"]
    assert first["tokens"][14:17] == ["Empire", "State", "Building"]
    assert first["tags"][14:19] == ["B-location", "I-location", "I-location", "O", "B-location"]
    assert first["tokens"][-1] == "."
    assert len(first["tokens"]) == 27  # lines 1-27; line 28 is the lone-TAB separator


def test_conll2003_fixture_skips_docstart_and_takes_last_column():
    table = read_table(iter_conll_batches(str(CONLL2003)))
    tokens, tags = table.column("tokens").to_pylist(), table.column("tags").to_pylist()
    assert table.num_rows == 7
    assert not any("-DOCSTART-" in sentence for sentence in tokens)
    assert tokens[0][:3] == ["Kestrel", "Bay", "Rovers"]
    assert tags[0][:4] == ["I-ORG", "I-ORG", "I-ORG", "O"]  # NER column, not POS / chunk
    assert tags[2] == ["O", "I-LOC", "B-LOC", "O", "O", "O", "O"]
    assert tokens[3] == ["FJELLFLY", "REPORTS", "RECORD", "PROFIT"]


def test_conll2003_tag_column_selects_another_column():
    table = read_table(iter_conll_batches(str(CONLL2003), tag_column=2))
    assert table.column("tags").to_pylist()[0][:4] == ["I-NP", "I-NP", "I-NP", "I-VP"]


@pytest.mark.parametrize("batch_rows", [1, 7, 64])
def test_small_batches_give_the_same_rows(batch_rows):
    whole = read_table(iter_conll_batches(str(WNUT)))
    batches = list(iter_conll_batches(str(WNUT), batch_rows=batch_rows))
    assert all(0 < b.num_rows <= batch_rows for b in batches)
    assert len(batches) == -(-300 // batch_rows)
    assert pa.Table.from_batches(batches).equals(whole)


def test_one_column_line_is_reported_with_line_number(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Paris\tB-LOC\nis\tO\nlovely\n\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(iter_conll_batches(str(path)))
    message = str(info.value)
    assert f"{path}:3" in message and "'lovely'" in message and "expected" in message


def test_crlf_bom_space_columns_and_no_final_blank_line(tmp_path):
    path = tmp_path / "crlf.conll"
    text = "\ufeffEU NNP I-NP I-ORG\r\nrejects VBZ I-VP O\r\n\r\nPeter NNP I-NP I-PER"  # no final newline
    path.write_bytes(text.encode("utf-8"))
    rows = read_table(iter_conll_batches(str(path))).to_pylist()
    assert rows == [
        {"tokens": ["EU", "rejects"], "tags": ["I-ORG", "O"]},
        {"tokens": ["Peter"], "tags": ["I-PER"]},
    ]


def test_docstart_closes_an_open_sentence_and_blank_runs_make_no_empty_rows(tmp_path):
    path = tmp_path / "docs.conll"
    path.write_text("a\tO\n-DOCSTART- -X- -X- O\nb\tO\n\n\n\t\nc\tB-x\n", encoding="utf-8")
    assert read_table(iter_conll_batches(str(path))).column("tokens").to_pylist() == [["a"], ["b"], ["c"]]


def test_missing_tag_column_and_bad_encoding_are_input_errors(tmp_path):
    path = tmp_path / "two.conll"
    path.write_text("a\tO\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"two\.conll:1: .*no tag column 3"):
        list(iter_conll_batches(str(path), tag_column=3))
    latin = tmp_path / "latin.conll"
    latin.write_bytes("a\tO\n\ncaf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.conll:3: is not valid UTF-8"):
        list(iter_conll_batches(str(latin)))


@pytest.mark.parametrize(("text", "line", "found", "first"), [
    # CoNLL-2003 with the NER column missing on one line: the chunk tag would become the tag
    ("EU NNP B-NP B-ORG\nBay NNP I-NP\n", 2, 3, 4),
    # a space-separated file with a space inside a token: "York" would be lost
    ("in O\nNew York B-location\n", 2, 3, 2),
    ("a\tO\n\nb\tX\tO\n", 3, 3, 2),  # across sentences too
])
def test_a_token_line_with_other_columns_than_the_first_is_an_input_error(tmp_path, text, line, found, first):
    path = tmp_path / "ragged.conll"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=rf"ragged\.conll:{line}: line .* has {found} columns but the first token "
                                         rf"line \(line 1\) has {first}"):
        list(iter_conll_batches(str(path)))


# --- SQuAD reader ------------------------------------------------------------------------------


def test_squad_fixture_one_row_per_question_in_file_order():
    document = json.loads(SQUAD.read_text(encoding="utf-8"))
    expected = [
        (qa["id"], article["title"], paragraph["context"], qa["question"], qa["answers"])
        for article in document["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    table = read_table(iter_squad_batches(str(SQUAD)))
    assert table.schema == squad_schema()
    assert table.num_rows == len(expected) == 225
    rows = table.to_pylist()
    assert [(r["id"], r["title"], r["context"], r["question"]) for r in rows] == [e[:4] for e in expected]
    assert [r["answers"] for r in rows] == [
        {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]}
        for *_, answers in expected
    ]


def test_squad_small_batches_give_the_same_rows():
    whole = read_table(iter_squad_batches(str(SQUAD)))
    batches = list(iter_squad_batches(str(SQUAD), batch_rows=50))
    assert [b.num_rows for b in batches] == [50, 50, 50, 50, 25]
    assert pa.Table.from_batches(batches).equals(whole)


def write_json(tmp_path: Path, document, name: str = "squad.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_squad_v2_impossible_questions_get_empty_answers(tmp_path):
    context = "The Normans were in Normandy."
    document = {
        "version": "v2.0",
        "data": [{"title": "Normans", "paragraphs": [{"context": context, "qas": [
            {"id": "a", "question": "Where?", "answers": [{"text": "Normandy", "answer_start": 20}],
             "is_impossible": False},
            {"id": "b", "question": "When?", "answers": [], "is_impossible": True,
             "plausible_answers": [{"text": "Normans", "answer_start": 4}]},
            {"id": 7, "question": "Who?", "is_impossible": True},
        ]}]}],
    }
    rows = read_table(iter_squad_batches(write_json(tmp_path, document))).to_pylist()
    assert [r["id"] for r in rows] == ["a", "b", "7"]
    assert rows[0]["answers"] == {"text": ["Normandy"], "answer_start": [20]}
    assert rows[1]["answers"] == {"text": [], "answer_start": []}
    assert rows[2]["answers"] == {"text": [], "answer_start": []}


def test_squad_not_json_is_an_input_error(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text('{"id": 1}\n{"id": 2}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"lines\.json:2:1: is not valid JSON"):
        list(iter_squad_batches(str(path)))


@pytest.mark.parametrize(
    ("document", "pattern"),
    [
        ([1, 2], r"the top level is a list, not an object"),
        ({"version": "1.1"}, r"the top level has no 'data' key"),
        ({"data": {"title": "x"}}, r"the top level\.data is dict .*expected list"),
        ({"data": [{"paragraphs": []}]}, r"data\[0\] has no 'title' key"),
        (
            {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": []}, {"qas": []}]}]},
            r"data\[0\]\.paragraphs\[1\] has no 'context' key",
        ),
        (
            {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "q", "answers": []}]}]}]},
            r"data\[0\]\.paragraphs\[0\]\.qas\[0\] has no 'question' key",
        ),
        (
            {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [
                {"id": "q", "question": "?", "answers": [{"text": "c", "answer_start": "0"}]}]}]}]},
            r"qas\[0\]\.answers\[0\]\.answer_start is str \"0\", expected int",
        ),
    ],
)
def test_squad_layout_errors_name_the_missing_key_and_where(tmp_path, document, pattern):
    path = write_json(tmp_path, document)
    with pytest.raises(InputError, match=pattern) as info:
        list(iter_squad_batches(path))
    assert path in str(info.value)


# --- tag schemes -------------------------------------------------------------------------------


def test_check_tags_accepts_all_schemes_and_rejects_others():
    check_tags(["O", "B-PER", "I-creative-work", "E-LOC", "S-ORG", "U-X", "L-X"])
    check_tags(pa.array(["O", "B-PER"]))
    for bad in (["O", "PER"], ["B_PER"], ["B-"], [""], ["O", None], ["b-per"]):
        with pytest.raises(UnknownTagSchemeError) as info:
            check_tags(bad, where="train.conll")
        assert isinstance(info.value, InputError)
        assert "train.conll" in str(info.value)
        assert repr([t for t in bad if t != "O"][0]) in str(info.value)


@pytest.mark.parametrize(
    ("sequences", "scheme"),
    [
        ([["B-PER", "I-PER", "O", "B-LOC"], ["O"]], "BIO"),
        ([["O", "O"], []], "BIO"),
        ([["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]], "IOB1"),
        ([["I-ORG"], ["O", "I-LOC"]], "IOB1"),
        ([["I-ORG", "O", "B-LOC"]], "BIO"),  # a B- after O rules IOB1 out: the I- is a stray
        ([["B-PER", "E-PER", "O"], ["S-LOC"]], "IOBES"),
        ([["B-PER", "L-PER"], ["U-LOC"]], "BILOU"),
        ([None, ["U-LOC"]], "BILOU"),
    ],
)
def test_detect_tag_scheme(sequences, scheme):
    assert detect_tag_scheme(sequences) == scheme


def test_detect_rejects_mixed_iobes_and_bilou():
    with pytest.raises(UnknownTagSchemeError, match="mix IOBES"):
        detect_tag_scheme([["S-PER"], ["U-LOC"]])


def test_detect_on_fixtures():
    wnut = read_table(iter_conll_batches(str(WNUT))).column("tags").to_pylist()
    conll = read_table(iter_conll_batches(str(CONLL2003))).column("tags").to_pylist()
    assert detect_tag_scheme(wnut) == "BIO"
    assert detect_tag_scheme(conll) == "IOB1"


@pytest.mark.parametrize(
    ("tags", "scheme", "bio"),
    [
        (["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-ORG"], "IOB1",
         ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "I-ORG"]),
        (["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-ORG", "S-ORG"], "IOBES",
         ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-ORG", "B-ORG"]),
        (["U-PER", "B-ORG", "I-ORG", "L-ORG", "U-ORG"], "BILOU",
         ["B-PER", "B-ORG", "I-ORG", "I-ORG", "B-ORG"]),
        (["O", "I-PER", "I-PER", "B-LOC", "I-PER"], "BIO",  # stray I- after O / another type
         ["O", "B-PER", "I-PER", "B-LOC", "B-PER"]),
        (["S-PER", "I-PER"], "IOBES", ["B-PER", "B-PER"]),  # S- closes its entity
        ([], "BIO", []),
    ],
)
def test_to_bio(tags, scheme, bio):
    assert to_bio(tags, scheme) == bio
    column = normalise_tag_column(pa.array([tags], type=TAG_LIST), scheme)
    assert column.to_pylist() == [bio]


def test_to_bio_rejects_prefixes_outside_the_scheme_and_unknown_schemes():
    with pytest.raises(UnknownTagSchemeError, match="'S-PER' is not valid in the BIO scheme"):
        to_bio(["S-PER"], "BIO")
    with pytest.raises(UnknownTagSchemeError, match="'U-PER' is not valid in the IOBES scheme"):
        normalise_tag_column(pa.array([["U-PER"]], type=TAG_LIST), "IOBES")
    with pytest.raises(UnknownTagSchemeError, match="unknown tag scheme 'IO'"):
        to_bio(["O"], "IO")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tags", "dominant"),
    [
        (["B-PER", "I-PER", "I-PER", "O", "B-LOC", "O", "B-LOC"], "LOC"),  # entities, not tokens
        (["B-ORG", "O", "B-LOC"], "LOC"),  # tie: alphabetical
        (["B-creative-work", "B-corporation"], "corporation"),
        (["O", "O"], "O"),
        ([], "O"),
        (["I-LOC", "B-LOC", "I-PER"], "LOC"),  # IOB1: two LOC entities, one PER
        (["S-PER", "B-LOC", "E-LOC", "S-PER"], "PER"),
        (["O", "I-ORG", "I-ORG"], "ORG"),  # a stray I- still starts an entity
    ],
)
def test_dominant_entity_type(tags, dominant):
    assert dominant_entity_type(tags) == dominant
    assert dominant_entity_types(pa.array([tags], type=TAG_LIST)).to_pylist() == [dominant]


def test_arrow_helpers_on_wnut_fixture_match_the_scalar_functions():
    tags = read_table(iter_conll_batches(str(WNUT))).column("tags").combine_chunks()
    rows = tags.to_pylist()
    # WNUT-17 is valid BIO, so normalising changes nothing.
    assert normalise_tag_column(tags, "BIO").equals(tags)
    dominant = dominant_entity_types(tags).to_pylist()
    assert dominant == [dominant_entity_type(row) for row in rows]
    assert "O" in dominant and "location" in dominant
    assert dominant[0] == "location"


def test_arrow_helpers_keep_nulls_and_honour_slices():
    tags = pa.array([["I-PER"], None, ["B-LOC", "I-LOC"], ["O", "I-ORG"]], type=TAG_LIST)
    expected = [["B-PER"], None, ["B-LOC", "I-LOC"], ["O", "B-ORG"]]
    assert normalise_tag_column(tags, "IOB1").to_pylist() == expected
    assert dominant_entity_types(tags).to_pylist() == ["PER", "O", "LOC", "ORG"]
    assert normalise_tag_column(tags.slice(2), "BIO").to_pylist() == [["B-LOC", "I-LOC"], ["O", "B-ORG"]]
    chunked = pa.chunked_array([tags.slice(0, 1), tags.slice(3)])
    assert dominant_entity_types(chunked).to_pylist() == ["PER", "ORG"]


TYPES = ("PER", "LOC", "ORG")
SCHEME_PREFIXES = {"BIO": "BI", "IOB1": "BI", "IOBES": "BIES", "BILOU": "BILU"}


@st.composite
def tagged_sentences(draw):
    scheme = draw(st.sampled_from(sorted(SCHEME_PREFIXES)))
    tag = st.one_of(
        st.just("O"),
        st.builds(lambda p, t: f"{p}-{t}", st.sampled_from(SCHEME_PREFIXES[scheme]), st.sampled_from(TYPES)),
    )
    return scheme, draw(st.lists(st.lists(tag, max_size=8), max_size=6))


@settings(max_examples=200, deadline=None)
@given(tagged_sentences())
def test_bio_rewrite_properties(case):
    scheme, sentences = case
    bio_rows = [to_bio(tags, scheme) for tags in sentences]
    for tags, bio in zip(sentences, bio_rows):
        assert len(bio) == len(tags)
        assert [t[2:] for t in bio] == [t[2:] for t in tags]  # entity types kept in place
        for previous, tag in zip(["O", *bio], bio):  # valid BIO: I-X only continues X
            if tag.startswith("I-"):
                assert previous[2:] == tag[2:] and previous != "O"
        assert to_bio(bio, "BIO") == bio
    column = pa.array(sentences, type=TAG_LIST)
    assert normalise_tag_column(column, scheme).to_pylist() == bio_rows
    assert dominant_entity_types(column).to_pylist() == [dominant_entity_type(t) for t in sentences]


# --- answer spans ------------------------------------------------------------------------------


def answers_array(rows) -> pa.StructArray:
    return pa.array(
        [None if r is None else {"text": r[0], "answer_start": r[1]} for r in rows],
        type=squad_schema().field("answers").type,
    )


def test_answer_span_validity_on_hand_made_rows():
    context = "The cat sat on the mat."
    unicode_context = "Zürich café 😀 is open"  # code points, not UTF-8 bytes or UTF-16 units
    contexts = pa.array([context, context, context, context, context, context, context,
                         unicode_context, unicode_context])
    answers = answers_array([
        (["cat"], [4]),  # valid
        (["cat", "the mat"], [4, 15]),  # two valid answers
        (["cat", "mat"], [4, 18]),  # second one off by one
        (["cat"], [-19]),  # negative start would wrap around in Python
        (["mat."], [20]),  # runs past the end
        ([], []),  # SQuAD v2 unanswerable
        (["cat"], []),  # text without a start
        (["is"], [14]),
        (["is"], [20]),  # the UTF-8 byte offset of "is"
    ])
    valid = answer_span_validity(contexts, answers)
    assert valid.dtype == np.bool_
    assert valid.tolist() == [True, True, False, False, False, True, False, True, False]
    assert answer_span_validity(pa.array(["x"]), answers_array([None])).tolist() == [True]


def test_describe_invalid_names_count_id_expected_text_and_what_is_there():
    contexts = pa.array(["The cat sat on the mat.", "The cat sat on the mat."])
    answers = answers_array([(["cat"], [4]), (["mat"], [18])])
    ids = pa.array(["q1", "q2"])
    valid = answer_span_validity(contexts, answers)
    message = describe_invalid(ids, contexts, answers, valid)
    assert message.startswith("1 of 2 rows")
    assert "'q2'" in message and "'mat'" in message and "' ma'" in message and "occurs at 19" in message
    assert describe_invalid(ids, contexts, answers, np.ones(2, dtype=bool)) == ""


def test_answer_spans_on_the_squad_fixture():
    table = read_table(iter_squad_batches(str(SQUAD))).combine_chunks()
    contexts, answers, ids = table.column("context"), table.column("answers"), table.column("id")
    assert answer_span_validity(contexts, answers).all()
    # Shift one answer by a character: exactly that row becomes invalid and is the one described.
    rows = answers.to_pylist()
    rows[100]["answer_start"] = [rows[100]["answer_start"][0] + 1]
    shifted = pa.array(rows, type=answers.type)
    valid = answer_span_validity(contexts, shifted)
    assert np.flatnonzero(~valid).tolist() == [100]
    assert ids[100].as_py() in describe_invalid(ids, contexts, shifted, valid)
