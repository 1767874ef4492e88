"""Every bad input of `fedpart partition` gets one line naming what is wrong, exit code 2, and
nothing written at --out (no half-written directory, no leftover temp directory)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "ag_news" / "sample.csv"
AG = ["--column-names", "label,title,description"]


def run(tmp_path: Path, *args: str):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["partition", *args, "--out", str(out), "-q"])
    return result, out


def assert_clean_failure(result, out: Path, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("error: ", "Usage", "Error")) or "Error:" in result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp")]


def test_missing_file(tmp_path):
    result, out = run(tmp_path, str(tmp_path / "nope.csv"), "--clients", "2")
    assert_clean_failure(result, out, "nope.csv", "no such file")


def test_unsupported_format(tmp_path):
    bad = tmp_path / "data.xlsx"
    bad.write_bytes(b"PK\x03\x04")
    result, out = run(tmp_path, str(bad), "--clients", "2")
    assert_clean_failure(result, out, "data.xlsx", "unsupported file type '.xlsx'", "--format")


def test_unknown_column_lists_columns(tmp_path):
    result, out = run(tmp_path, str(FIXTURE), *AG, "--label-col", "topic", "--scheme", "dirichlet",
                      "--alpha", "0.1", "--clients", "3")
    assert_clean_failure(result, out, "no column 'topic'", "columns are: label, title, description")


def test_null_labels_say_how_many_and_offer_drop(tmp_path):
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"text": list("abcde"), "label": [1, None, 2, None, None]}), path)
    result, out = run(tmp_path, str(path), "--label-col", "label", "--scheme", "dirichlet", "--alpha", "1",
                      "--clients", "2")
    assert_clean_failure(result, out, "'label' has 3 null value(s)", "--drop-null-labels")


@pytest.mark.parametrize("alpha", ["0", "-1", "nan", "inf"])
def test_bad_alpha(tmp_path, alpha):
    result, out = run(tmp_path, str(FIXTURE), *AG, "--label-col", "label", "--scheme", "dirichlet",
                      "--alpha", alpha, "--clients", "3")
    assert_clean_failure(result, out, "--alpha")


def test_alpha_not_a_number(tmp_path):
    result, out = run(tmp_path, str(FIXTURE), *AG, "--label-col", "label", "--scheme", "dirichlet",
                      "--alpha", "lots", "--clients", "3")
    assert result.exit_code == 2 and "'lots' is not a valid float" in result.output and not out.exists()


def test_clients_below_one_and_above_rows(tmp_path):
    result, out = run(tmp_path, str(FIXTURE), *AG, "--clients", "0")
    assert_clean_failure(result, out, "--clients must be at least 1")
    result, out = run(tmp_path, str(FIXTURE), *AG, "--clients", "601")
    assert_clean_failure(result, out, "--clients 601 exceeds the 600 rows")


def test_infeasible_min_client_size(tmp_path):
    result, out = run(tmp_path, str(FIXTURE), *AG, "--label-col", "label", "--scheme", "dirichlet", "--alpha",
                      "0.1", "--clients", "10", "--min-client-size", "61")
    assert_clean_failure(result, out, "--min-client-size 61 x 10 clients needs 610 rows", "--min-client-size 60")


def test_labels_per_client_above_number_of_labels(tmp_path):
    result, out = run(tmp_path, str(FIXTURE), *AG, "--label-col", "label", "--scheme", "label-count",
                      "--labels-per-client", "5", "--clients", "4")
    assert_clean_failure(result, out, "--labels-per-client 5 exceeds the 4 distinct labels")


def test_empty_inputs(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n", encoding="utf-8")
    result, out = run(tmp_path, str(header_only), "--clients", "1")
    assert_clean_failure(result, out, "h.csv", "empty")
    empty = tmp_path / "e.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}), empty)
    result, out = run(tmp_path, str(empty), "--clients", "1")
    assert_clean_failure(result, out, "e.parquet", "empty")


def test_output_exists_without_overwrite_and_overwrite_replaces(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = CliRunner().invoke(main, ["partition", str(FIXTURE), *AG, "--clients", "2", "--out", str(out), "-q"])
    assert result.exit_code == 2 and "already exists" in result.output and "--overwrite" in result.output
    assert (out / "keep.txt").exists()
    overwrite = ["partition", str(FIXTURE), *AG, "--clients", "2", "--out", str(out), "-q", "--overwrite"]
    # --overwrite never deletes a directory that is not an earlier partition
    result = CliRunner().invoke(main, overwrite)
    assert result.exit_code == 2 and "no manifest.json" in result.output and (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    assert CliRunner().invoke(main, overwrite).exit_code == 0  # an empty directory is replaced
    (out / "stale.txt").write_text("x")  # an earlier partition is replaced whole
    result = CliRunner().invoke(main, [*overwrite[:-1], "--clients", "3", "--overwrite"])
    assert result.exit_code == 0 and not (out / "stale.txt").exists()
    assert len(list((out / "clients").iterdir())) == 3


def test_corrupt_parquet(tmp_path):
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"this is not parquet at all" * 10)
    result, out = run(tmp_path, str(garbage), "--clients", "1")
    assert_clean_failure(result, out, "g.parquet", "cannot be read")
    good = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a"] * 1000, "label": list(range(1000))}), good)
    truncated = tmp_path / "t2.parquet"
    truncated.write_bytes(good.read_bytes()[:-40])
    result, out = run(tmp_path, str(truncated), "--clients", "1")
    assert_clean_failure(result, out, "t2.parquet", "cannot be read")


def test_corrupt_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\na,1\nb,2,extra,columns\n", encoding="utf-8")
    result, out = run(tmp_path, str(bad), "--label-col", "label", "--scheme", "dirichlet", "--alpha", "1",
                      "--clients", "1")
    assert_clean_failure(result, out, "bad.csv", "cannot be read")


def test_failure_during_writing_leaves_nothing(tmp_path, monkeypatch):
    from fedpart.io import shards

    calls = {"n": 0}
    original = shards.ShardWriter.write

    def failing_write(self, batch, destinations):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return original(self, batch, destinations)

    monkeypatch.setattr(shards.ShardWriter, "write", failing_write)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        fedpart.partition(FIXTURE, out=out, scheme="iid", clients=3, plot=False,
                          read_options=fedpart.engine.ReadOptions(column_names=("label", "title", "description"),
                                                                  batch_rows=50))
    assert not out.exists() and list(tmp_path.iterdir()) == []
    calls["n"] = 1  # the CSV arrives as one batch: fail on its first write
    result = CliRunner().invoke(main, ["partition", str(FIXTURE), *AG, "--clients", "3", "--out", str(out), "-q"])
    assert result.exit_code == 1 and "internal error: OSError: disk full" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_debug_shows_traceback(tmp_path):
    result = CliRunner().invoke(main, ["--debug", "partition", str(tmp_path / "nope.csv"), "--clients", "1",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and isinstance(result.exception, fedpart.InputError)


def test_cli_commands_do_not_import_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from fedpart.cli import main; "
        "CliRunner().invoke(main, ['--help']); CliRunner().invoke(main, ['partition', '--help']); "
        "import fedpart; heavy = [m for m in ('torch', 'spacy', 'datasets', 'matplotlib', 'sklearn') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_output_over_the_input_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("text,label\nx,1\ny,2\n", encoding="utf-8")
    (folder / "manifest.json").write_text("{}", encoding="utf-8")  # even inside an earlier partition
    result = CliRunner().invoke(main, ["partition", str(folder / "a.csv"), "--clients", "1", "--out", str(folder),
                                       "--overwrite", "-q"])
    assert result.exit_code == 2 and "contains the input" in result.output
    assert (folder / "a.csv").exists()
