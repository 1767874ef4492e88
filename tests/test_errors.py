"""Bad inputs and impossible requests: a FedpartError naming the file/column/value, and through the
CLI exit code 2, one ``error: ...`` line without traceback, and nothing left at --out (nor temp dirs)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.errors import FedpartError, InputError, OutputError, PlanError
from fedpart.io.shards import ShardWriter
from fedpart.manifest import Manifest
from fedpart.io.sources import ReadOptions

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "ag_news" / "sample.csv"
AG_ARGS = ["--column-names", "label,title,description"]
AG = ReadOptions(column_names=("label", "title", "description"))


def leftovers(out: Path) -> list[str]:
    """Hidden temp/old directories fedpart may have left beside ``out``."""
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def cli(args: list[str]):
    return CliRunner().invoke(main, args)


def assert_cli_fails(tmp_path: Path, args: list[str], *fragments: str, code: int = 2, prefix: str = "error: "):
    """Run ``fedpart partition ARGS --out tmp/out -q`` and check it failed cleanly."""
    out = tmp_path / "out"
    result = cli(["partition", *args, "--out", str(out), "-q"])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    if prefix == "error: ":
        assert len(lines) == 1, lines
    assert any(line.startswith(prefix) for line in lines), lines
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert not out.exists()
    assert leftovers(out) == []
    return result.stderr


@pytest.fixture
def parquet(tmp_path, table_writer):
    def make(name: str = "in.parquet", n: int = 30, **columns):
        data = {"text": [f"t{i}" for i in range(n)], "label": [i % 3 for i in range(n)], **columns}
        return table_writer(tmp_path / name, data)

    return make


# --- files that cannot be read --------------------------------------------------------------------

def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(InputError, match=r"nope\.csv: no such file or directory"):
        fedpart.partition(missing, out=tmp_path / "x", clients=2)
    assert_cli_fails(tmp_path, [str(missing), "--clients", "2"], str(missing), "no such file")


def test_unsupported_extension_lists_supported_types(tmp_path):
    bad = tmp_path / "data.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a workbook")
    assert_cli_fails(tmp_path, [str(bad), "--clients", "2"], "data.xlsx", "unsupported file type '.xlsx'",
                     ".parquet", "--format")


def test_unreadable_or_foreign_manifest(tmp_path):
    out = tmp_path / "part"
    fedpart.partition(FIXTURE, out=out, clients=2, read_options=AG, plot=False)
    text = (out / "manifest.json").read_text()
    (out / "manifest.json").write_text(text.replace('"schema_version": 1', '"schema_version": 99'))
    result = cli(["stats", str(out)])
    assert result.exit_code == 2 and "manifest schema version 99" in result.stderr
    (out / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match="unreadable manifest"):
        fedpart.load_client(out, 0)
    (out / "manifest.json").write_text(text)
    with pytest.raises(InputError, match="no client -1"):
        fedpart.load_client(out, -1)


def test_directory_without_data_files(tmp_path):
    folder = tmp_path / "empty_dir"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    assert_cli_fails(tmp_path, [str(folder), "--clients", "2"], "empty_dir", "has no data files")


def test_glob_matching_nothing(tmp_path):
    assert_cli_fails(tmp_path, [str(tmp_path / "*.parquet"), "--clients", "2"], "matches no files")


def test_garbage_with_a_parquet_extension(tmp_path):
    bad = tmp_path / "garbage.parquet"
    bad.write_bytes(bytes(range(256)) * 4)
    assert_cli_fails(tmp_path, [str(bad), "--clients", "2"], "garbage.parquet", "cannot be read", "valid, complete")


def test_truncated_parquet(tmp_path, parquet):
    good = parquet(n=500)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert_cli_fails(tmp_path, [str(truncated), "--clients", "2", "--label-col", "label"],
                     "truncated.parquet", "cannot be read")


def test_parquet_corrupt_only_in_a_column_read_in_pass_2(tmp_path):
    # pass 1 reads only the label, so the damage is found while shards are being written:
    # the half-written output must vanish
    path = tmp_path / "damaged.parquet"
    table = pa.table({"label": [i % 3 for i in range(2000)], "text": [f"text number {i} " * 3 for i in range(2000)]})
    pq.write_table(table, path, row_group_size=500, use_dictionary=False)
    chunk = pq.ParquetFile(path).metadata.row_group(2).column(1)
    assert chunk.path_in_schema == "text"
    data = bytearray(path.read_bytes())
    for i in range(chunk.data_page_offset, chunk.data_page_offset + chunk.total_compressed_size):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged.parquet: cannot be read"):
        fedpart.partition(path, out=tmp_path / "lib_out", clients=2, label_col="label")
    assert not (tmp_path / "lib_out").exists() and leftovers(tmp_path / "lib_out") == []
    assert_cli_fails(tmp_path, [str(path), "--clients", "2", "--label-col", "label"], "damaged.parquet")


def test_csv_with_inconsistent_column_counts(tmp_path):
    bad = tmp_path / "ragged.csv"
    bad.write_text("text,label\nhello,1\nworld,2,extra\n")
    assert_cli_fails(tmp_path, [str(bad), "--clients", "2"], "ragged.csv", "cannot be read", "Expected 2 columns")


def test_invalid_json_lines(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": 1}\n{oops}\n')
    assert_cli_fails(tmp_path, [str(bad), "--clients", "2"], "bad.jsonl", "cannot be read")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_files_of_one_input_with_different_columns(tmp_path, table_writer, suffix):
    # the first file's schema would silently drop the other file's extra column and null its missing one
    folder = tmp_path / "data"
    table_writer(folder / f"a{suffix}", {"text": ["a", "b"], "label": [1, 2]})
    table_writer(folder / f"b{suffix}", {"title": ["c", "d"], "label": [1, 2]})
    assert_cli_fails(tmp_path, [str(folder), "--clients", "2", "--label-col", "label"], f"b{suffix}",
                     "has other columns than", "missing: text", "extra: title")


@pytest.mark.parametrize("kind", ["header-only csv", "empty parquet"])
def test_empty_input(tmp_path, kind):
    if kind == "header-only csv":
        path = tmp_path / "empty.csv"
        path.write_text("text,label\n")
    else:
        path = tmp_path / "empty.parquet"
        pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}), path)
    with pytest.raises(InputError, match="the input is empty"):
        fedpart.partition(path, out=tmp_path / "x", clients=2, label_col="label")
    assert_cli_fails(tmp_path, [str(path), "--clients", "2", "--label-col", "label"], path.name, "empty")


def test_zero_byte_csv(tmp_path):
    path = tmp_path / "zero.csv"
    path.write_bytes(b"")
    assert_cli_fails(tmp_path, [str(path), "--clients", "2"], "zero.csv", "the input is empty (the file is blank)")


# --- columns and values ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--label-col", "--by", "--group-col"])
def test_unknown_column_lists_the_columns(tmp_path, flag):
    args = [str(FIXTURE), *AG_ARGS, "--clients", "3", flag, "topic"]
    if flag != "--label-col":
        args += ["--label-col", "label"]
    assert_cli_fails(tmp_path, args, "no column 'topic'", f"(from {flag})",
                     "columns are: label, title, description")


def test_null_labels_say_how_many_and_offer_the_flag(tmp_path, parquet):
    path = parquet(label=[None if i % 10 == 0 else i % 3 for i in range(30)])
    message = assert_cli_fails(tmp_path, [str(path), "--clients", "2", "--label-col", "label"],
                               "'label'", "3 null value(s)", "--drop-null-labels")
    assert str(path) in message


def test_all_labels_null_even_with_drop(tmp_path, parquet):
    path = parquet(label=pa.array([None] * 30, pa.int64()))
    assert_cli_fails(tmp_path, [str(path), "--clients", "2", "--label-col", "label", "--drop-null-labels"],
                     "no rows left after dropping null labels")


def test_float_label_column_is_refused(tmp_path, parquet):
    path = parquet(label=[i / 2 for i in range(30)])
    assert_cli_fails(tmp_path, [str(path), "--clients", "2", "--label-col", "label"],
                     "column 'label' has type double", "categorical")


def test_existing_row_id_column(tmp_path, parquet):
    path = parquet(row_id=list(range(30)))
    assert_cli_fails(tmp_path, [str(path), "--clients", "2"], "already has a column 'row_id'", "--row-id-col")


# --- parameters -----------------------------------------------------------------------------------

SCHEME = [str(FIXTURE), *AG_ARGS, "--label-col", "label"]


@pytest.mark.parametrize("alpha", ["0", "-1", "inf", "nan"])
def test_alpha_must_be_positive_and_finite(tmp_path, alpha):
    assert_cli_fails(tmp_path, [*SCHEME, "--scheme", "dirichlet", "--clients", "3", "--alpha", alpha],
                     "--alpha must be a finite number > 0")


def test_alpha_not_a_number_is_a_usage_error(tmp_path):
    assert_cli_fails(tmp_path, [*SCHEME, "--scheme", "dirichlet", "--clients", "3", "--alpha", "abc"],
                     "Invalid value for '--alpha'", "'abc'", "see 'fedpart partition --help'")


def test_unknown_scheme_is_a_usage_error(tmp_path):
    assert_cli_fails(tmp_path, [*SCHEME, "--scheme", "random", "--clients", "3"], "'random'",
                     "is not one of 'iid', 'dirichlet'")


@pytest.mark.parametrize("args, fragment", [
    (["--foo"], "error: No such option '--foo'; see 'fedpart --help'"),
    (["nocommand"], "error: No such command 'nocommand'; see 'fedpart --help'"),
    (["stats", "d", "--plot", "x.png"], "error: No such option '--plot'. Did you mean '--no-plot'?; "
                                        "see 'fedpart stats --help'"),
    (["train"], "error: Missing argument 'PARTITION_DIR'; see 'fedpart train --help'"),
    (["augment", "counterfactual", "x", "--mode", "swap", "--out", "y"],
     "error: Invalid value for '--mode': 'swap' is not one of 'replace', 'append', 'cds'; "
     "see 'fedpart augment counterfactual --help'"),
    (["eval", "nosuch"], "error: No such command 'nosuch'; see 'fedpart eval --help'"),
])
def test_every_usage_error_is_one_line_with_exit_code_2(args, fragment):
    """click's usage errors, of fedpart's own options, a command's or a sub-group's: one line naming
    the --help to read (not click's usage, hint and error lines)."""
    result = cli(args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == fragment


def test_clients_below_one(tmp_path):
    assert_cli_fails(tmp_path, [*SCHEME, "--clients", "0"], "--clients must be at least 1, got 0")


def test_more_clients_than_rows(tmp_path):
    with pytest.raises(PlanError, match="--clients 601 exceeds the 600 rows"):
        fedpart.partition(FIXTURE, out=tmp_path / "x", clients=601, read_options=AG)
    assert_cli_fails(tmp_path, [*SCHEME, "--clients", "601"], "--clients 601 exceeds the 600 rows",
                     "--clients 600 or fewer")


def test_infeasible_min_client_size(tmp_path):
    assert_cli_fails(
        tmp_path, [*SCHEME, "--scheme", "dirichlet", "--alpha", "0.1", "--clients", "10", "--min-client-size", "61"],
        "--min-client-size 61", "needs 610 rows but the input has 600", "--min-client-size 60 or fewer",
    )


def test_labels_per_client_above_the_number_of_labels(tmp_path):
    assert_cli_fails(tmp_path, [*SCHEME, "--scheme", "label-count", "--clients", "4", "--labels-per-client", "5"],
                     "--labels-per-client 5 exceeds the 4 distinct labels")


def test_parameter_of_another_scheme(tmp_path):
    assert_cli_fails(tmp_path, [*SCHEME, "--clients", "4", "--alpha", "0.5"], "--alpha does not apply to --scheme iid")


def test_scheme_needing_a_label(tmp_path):
    assert_cli_fails(tmp_path, [str(FIXTURE), *AG_ARGS, "--scheme", "dirichlet", "--alpha", "1", "--clients", "2"],
                     "--scheme dirichlet needs --label-col")
    assert_cli_fails(tmp_path, [str(FIXTURE), *AG_ARGS, "--scheme", "natural"], "--scheme natural needs --by")


@pytest.mark.parametrize("frac", ["1.0", "-0.1"])
def test_test_frac_out_of_range(tmp_path, frac):
    assert_cli_fails(tmp_path, [*SCHEME, "--clients", "2", "--test-frac", frac], "--test-frac must be in [0, 1)")


def test_no_input_at_all(tmp_path):
    assert_cli_fails(tmp_path, ["--clients", "2"], "give exactly one input")


# --- the output location --------------------------------------------------------------------------

def test_existing_output_needs_overwrite_and_overwrite_replaces_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")
    result = cli(["partition", *SCHEME, "--clients", "2", "--out", str(out), "-q"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert str(out) in result.stderr and "already exists" in result.stderr and "--overwrite" in result.stderr
    assert (out / "stale.txt").read_text() == "from an earlier run", "refusing must not touch it"
    with pytest.raises(OutputError, match="already exists"):
        fedpart.partition(FIXTURE, out=out, clients=2, read_options=AG)

    (out / "manifest.json").write_text("{}")  # an earlier partition (a directory without one is refused)
    result = cli(["partition", *SCHEME, "--clients", "2", "--out", str(out), "-q", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not (out / "stale.txt").exists()
    assert fedpart.load_client(out, 1, format="arrow").num_rows == 300
    assert leftovers(out) == []


def test_overwrite_never_deletes_a_directory_that_is_not_a_partition(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = cli(["partition", *SCHEME, "--clients", "2", "--out", str(out), "-q", "--overwrite"])
    assert result.exit_code == 2 and "no manifest.json" in result.stderr
    assert (out / "notes.txt").read_text() == "mine" and leftovers(out) == []


def test_output_path_that_is_a_file(tmp_path):
    target = tmp_path / "out"
    target.write_text("not a directory")
    result = cli(["partition", *SCHEME, "--clients", "2", "--out", str(target), "--overwrite", "-q"])
    assert result.exit_code == 2 and "is not a directory" in result.stderr
    assert target.read_text() == "not a directory"


# --- failures while writing -----------------------------------------------------------------------

def break_writer(monkeypatch, error: BaseException, after: int = 0) -> dict:
    """Make ShardWriter.write raise ``error`` after ``after`` successful calls (in pass 2, once the
    temp directory exists)."""
    original = ShardWriter.write
    calls = {"n": 0}

    def write(self, batch, destinations):
        calls["n"] += 1
        if calls["n"] > after:
            calls["directory"] = self.directory
            calls["files_at_failure"] = sorted(p.name for p in self.directory.rglob("*.parquet"))
            raise error
        return original(self, batch, destinations)

    monkeypatch.setattr(ShardWriter, "write", write)
    return calls


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    # small batches and a 1-byte buffer: some shard files already hold rows when the error hits
    calls = break_writer(monkeypatch, OSError(28, "No space left on device"), after=3)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        fedpart.partition(FIXTURE, out=out, clients=3, read_options=ReadOptions(AG.format, AG.column_names, 50),
                          buffer_bytes=1)
    assert len(calls["files_at_failure"]) == 3, "shards were being written when it failed"
    assert calls["directory"].parent == tmp_path and not calls["directory"].exists()
    assert not out.exists() and leftovers(out) == []


def test_internal_error_mid_write_via_cli_is_exit_1_without_traceback(tmp_path, monkeypatch):
    break_writer(monkeypatch, RuntimeError("disk on fire"))
    stderr = assert_cli_fails(tmp_path, [*SCHEME, "--clients", "3"], "internal error", "disk on fire",
                              "--debug", code=1, prefix="internal error: ")
    assert len(stderr.strip().splitlines()) == 1


def test_debug_flag_shows_the_exception(tmp_path, monkeypatch):
    break_writer(monkeypatch, RuntimeError("disk on fire"))
    out = tmp_path / "out"
    result = cli(["--debug", "partition", *SCHEME, "--clients", "3", "--out", str(out), "-q"])
    assert result.exit_code != 0
    assert isinstance(result.exception, RuntimeError)
    assert not out.exists() and leftovers(out) == []


def test_interrupt_mid_write_says_nothing_was_written(tmp_path, monkeypatch):
    break_writer(monkeypatch, KeyboardInterrupt())
    assert_cli_fails(tmp_path, [*SCHEME, "--clients", "3"], "interrupted; nothing was written", code=130,
                     prefix="interrupted")


def test_failed_overwrite_keeps_the_previous_partition(tmp_path, monkeypatch):
    out = tmp_path / "out"
    fedpart.partition(FIXTURE, out=out, clients=2, read_options=AG, plot=False)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    break_writer(monkeypatch, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        fedpart.partition(FIXTURE, out=out, clients=5, read_options=AG, overwrite=True, plot=False)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert leftovers(out) == []


def test_every_library_error_is_a_fedpart_error_with_exit_code_2():
    for cls in (InputError, PlanError, OutputError):
        assert issubclass(cls, FedpartError) and cls.exit_code == 2
    assert FedpartError.exit_code == 1


# --- many clients against the open-file limit -----------------------------------------------------

def run_with_file_limit(tmp_path: Path, soft: int, hard_equals_soft: bool, clients: int, patch: str = ""):
    """Partition 2 x ``clients`` rows into ``clients`` shards in a child process with a low RLIMIT_NOFILE."""
    import subprocess
    import sys

    pytest.importorskip("resource")
    data = tmp_path / "in.parquet"
    rows = range(2 * clients)
    pq.write_table(pa.table({"text": [f"t{i}" for i in rows], "label": [i % 3 for i in rows]}), data)
    out = tmp_path / "out"
    code = (
        "import resource, sys\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {soft} if {hard_equals_soft} else hard))\n"
        f"{patch}"
        "from fedpart.cli import main\n"
        f"main(['partition', {str(data)!r}, '--clients', '{clients}', '--out', {str(out)!r}, '-q'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return result, out


def test_more_clients_than_the_soft_open_file_limit(tmp_path):
    # shards stay open through pass 2: the soft limit is raised up to the hard limit
    result, out = run_with_file_limit(tmp_path, soft=128, hard_equals_soft=False, clients=300)
    assert result.returncode == 0, result.stderr
    assert fedpart.load_client(out, 299, format="arrow").num_rows == 2


def test_more_clients_than_the_hard_open_file_limit_is_a_clear_error(tmp_path):
    result, out = run_with_file_limit(tmp_path, soft=128, hard_equals_soft=True, clients=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: writing 300 shard files at once needs about")
    assert "the limit is 128" in result.stderr and "ulimit -n" in result.stderr
    assert not out.exists() and leftovers(out) == []


def test_running_out_of_file_descriptors_while_writing_shards_leaves_nothing(tmp_path):
    # without the limit check a flush in pass 2 (a 1-byte buffer flushes at every batch) opens
    # shards until EMFILE: the writer must release its files so that the temp directory can still
    # be removed (at close, files are opened, written and closed a few at a time)
    patch = (
        "import fedpart.io.shards as shards\nshards.ensure_open_file_limit = lambda files, margin=64: None\n"
        "init = shards.ShardWriter.__init__\n"
        "shards.ShardWriter.__init__ = lambda self, *a, **k: init(self, *a, **{**k, 'buffer_bytes': 1})\n"
    )
    result, out = run_with_file_limit(tmp_path, soft=128, hard_equals_soft=True, clients=300, patch=patch)
    assert result.returncode == 1, result.stderr
    assert "Too many open files" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and leftovers(out) == []


def test_hugging_face_bad_split_or_missing_dataset(tmp_path, table_writer):
    pytest.importorskip("datasets")
    folder = tmp_path / "hf_data"
    table_writer(folder / "train.parquet", {"text": ["a", "b", "c"], "label": [0, 1, 0]})
    assert_cli_fails(tmp_path, [f"hf://{folder}", "--split", "validation", "--clients", "2"],
                     "(split validation): cannot be loaded", "Bad split: validation")
    assert_cli_fails(tmp_path, [f"hf://{tmp_path / 'nothing_here'}", "--clients", "2"], "cannot be loaded",
                     "nothing_here")


def _offline(monkeypatch):
    """No name resolves, as on a machine without a network; every proxy and offline setting unset."""
    import socket

    from fedpart.io.hub import OFFLINE_VARIABLES, PROXY_VARIABLES

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    for variable in (*OFFLINE_VARIABLES, *PROXY_VARIABLES, "HF_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)


def test_hugging_face_hub_unreachable_fails_at_once(tmp_path, monkeypatch):
    """Offline, a hub name fails on the first name lookup (not after datasets' ~25 s of retries),
    saying what to do; `datasets` is not even asked."""
    import sys
    import time

    _offline(monkeypatch)
    monkeypatch.setitem(sys.modules, "datasets", None)  # importing it would fail the test
    started = time.monotonic()
    assert_cli_fails(tmp_path, ["hf://stanfordnlp/imdb", "--clients", "2"],
                     "hf://stanfordnlp/imdb (split train): cannot reach the Hugging Face Hub (huggingface.co: "
                     "Name or service not known)", "HF_HUB_OFFLINE=1", "local copy")
    assert time.monotonic() - started < 5
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org/")
    assert_cli_fails(tmp_path, ["hf://ag_news", "--clients", "2"], "(hub.example.org: Name or service not known)")


def test_hugging_face_lookup_only_where_it_decides(tmp_path, monkeypatch, table_writer):
    """A local folder, a name no Hub could hold, offline mode and a proxy all skip the lookup."""
    pytest.importorskip("datasets")
    from fedpart.io.hub import lookup_decides

    _offline(monkeypatch)
    folder = tmp_path / "hf_data"
    table_writer(folder / "train.parquet", {"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]})
    manifest = fedpart.partition(f"hf://{folder}", out=tmp_path / "o", scheme="iid", clients=2, progress=False)
    assert sum(c.rows for c in manifest.clients) == 4
    assert not lookup_decides(str(tmp_path / "missing"), {})  # a path, not OWNER/NAME
    assert not lookup_decides("a/b/c", {})
    assert lookup_decides("ag_news", {}) and lookup_decides("stanfordnlp/imdb", {})
    assert not lookup_decides("ag_news", {"HF_HUB_OFFLINE": "1"})
    assert not lookup_decides("ag_news", {"HF_DATASETS_OFFLINE": "true"})
    assert lookup_decides("ag_news", {"HF_HUB_OFFLINE": "0"})
    assert not lookup_decides("ag_news", {"https_proxy": "http://proxy:3128"})


def test_a_headerless_csv_read_with_a_header_is_called_out(tmp_path):
    """AG News' CSV has no header row: read without --column-names, its first row becomes the names.
    A partition that needs no column warns; one that needs a column says to use --column-names."""
    from fedpart.io.sources import header_looks_like_data

    data = tmp_path / "news.csv"
    rows = [f'{1 + i % 4},"Headline number {i}","A description of story {i} that runs on for a while."'
            for i in range(12)]
    data.write_text("\n".join(rows) + "\n")
    result = cli(["partition", str(data), "--scheme", "iid", "--clients", "2", "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "its header row looks like data ('1', 'Headline number 0'" in result.stderr
    assert "--column-names" in result.stderr
    assert_cli_fails(tmp_path, [str(data), "--task", "tc", "--scheme", "iid", "--clients", "2"],
                     "no text column", "these names look like a row of data", "name its columns with --column-names")
    assert_cli_fails(tmp_path, [str(data), "--label-col", "label", "--scheme", "iid", "--clients", "2"],
                     "no column 'label'", "with --column-names")
    named = cli(["partition", str(data), "--column-names", "label,title,description", "--scheme", "iid",
                 "--clients", "2", "--out", str(tmp_path / "named"), "-q"])
    assert named.exit_code == 0 and named.output == ""  # named: no warning, and all 12 rows
    assert Manifest.read(tmp_path / "named").rows["written"] == 12
    assert header_looks_like_data(["3", "title"]) and header_looks_like_data(["-0.5e3"])
    assert header_looks_like_data(["label", "Unions representing workers at Turner say they are disappointed"])
    assert not header_looks_like_data(["text", "label", "review body", "Unnamed: 0", "v2", "2020 sales"])


def test_a_tc_label_that_is_also_text_is_refused(tmp_path):
    """--label-col title with the default text title + description: every text would contain its label."""
    data = tmp_path / "news.csv"
    data.write_text("label,title,description\n" + "".join(f"{i % 4},Title {i},Story {i}\n" for i in range(12)))
    assert_cli_fails(tmp_path, [str(data), "--task", "tc", "--label-col", "title", "--scheme", "iid", "--clients", "2"],
                     "--label-col title is also read as text (text from title, description)", "--text-col")
    assert_cli_fails(tmp_path, [str(data), "--task", "tc", "--label-col", "title", "--text-col", "title",
                                "--scheme", "iid", "--clients", "2"], "--label-col title is also read as text")
    result = cli(["partition", str(data), "--task", "tc", "--label-col", "title", "--text-col", "description",
                  "--scheme", "iid", "--clients", "2", "--out", str(tmp_path / "ok"), "-q"])
    assert result.exit_code == 0, result.output  # the warning names each column read once
    assert "input column 'label' is not read by the task (it reads 'description', 'title') and dropped" in result.stderr


def test_a_directory_read_whole_says_to_glob_its_data_files(tmp_path):
    """A CoNLL directory beside its notes (.txt counts as CoNLL): the parse error says the directory
    is read whole and gives the glob that reads only the data files."""
    folder = tmp_path / "ner"
    folder.mkdir()
    sentence = "EU\tB-ORG\nrejects\tO\nGerman\tB-MISC\n\n"
    (folder / "train.conll").write_text(sentence * 4)
    (folder / "dev.conll").write_text(sentence * 2)
    (folder / "SOURCE.txt").write_text("wnut17 from the shared task\nlicence: CC BY 4.0\n")
    assert_cli_fails(tmp_path, [str(folder), "--task", "st", "--scheme", "iid", "--clients", "2"],
                     "SOURCE.txt:1:", f"{folder} is a directory, whose every conll file (.conll, .txt) is read",
                     f"a glob such as '{folder / '*.conll'}'")
    result = cli(["partition", str(folder / "*.conll"), "--task", "st", "--scheme", "iid", "--clients", "2",
                  "--out", str(tmp_path / "ok"), "-q"])
    assert result.exit_code == 0, result.output
    assert Manifest.read(tmp_path / "ok").rows["written"] == 6


def test_load_client_and_load_test_check_the_shard_they_read(tmp_path):
    """A deleted, truncated or replaced shard is a clear InputError from load_client/load_test (as
    from train and augment), and a manifest whose shard paths leave the directory is refused."""
    import json
    import shutil

    out = tmp_path / "parts"
    fedpart.partition(FIXTURE, out=out, scheme="iid", clients=3, test_frac=0.2, label_col="label", plot=False,
                      read_options=AG)
    assert fedpart.load_client(out, 0, format="arrow").num_rows == Manifest.read(out).clients[0].rows
    broken = shutil.copytree(out, tmp_path / "broken")
    (broken / "clients" / "client-00000.parquet").unlink()
    with pytest.raises(InputError, match="client-00000.parquet: shard listed in manifest.json is missing"):
        fedpart.load_client(broken, 0, format="arrow")
    shard = broken / "clients" / "client-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(InputError, match="client-00001.parquet: shard does not match the sha256"):
        fedpart.load_client(broken, 1, format="polars")
    (broken / "test.parquet").unlink()
    with pytest.raises(InputError, match="test.parquet: shard listed in manifest.json is missing"):
        fedpart.load_test(broken)
    assert fedpart.load_client(broken, 2, format="arrow").num_rows > 0  # an intact shard still loads
    for bad in ("../../etc/passwd", "/etc/passwd", "clients\\..\\..\\x.parquet"):
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["clients"][0]["file"] = bad
        edited = tmp_path / f"edited{len(bad)}"
        shutil.copytree(out, edited)
        (edited / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(InputError, match=re.escape(f"shard path {bad!r} leaves the partition directory")):
            fedpart.load_client(edited, 1)


@pytest.mark.parametrize("changes, message", [
    (dict(input=None), r"input must be a path \(a str or pathlib.Path\), got None"),
    (dict(input=[str(FIXTURE)]), "input must be a path"),
    (dict(input=b"data.csv"), "input must be a path"),
    (dict(input=""), "input must be a path"),
    (dict(out=3), "out must be a path"),
    (dict(row_id_col=None), r"row_id_col must be a column name \(a str\), got None"),
])
def test_partition_api_refuses_wrong_argument_types(tmp_path, changes, message):
    arguments = {**dict(input=FIXTURE, out=tmp_path / "o", scheme="iid", clients=2, read_options=AG), **changes}
    with pytest.raises(InputError, match=message):
        fedpart.partition(arguments.pop("input"), **arguments)
    assert not (tmp_path / "o").exists()


def test_text_col_as_one_string_is_comma_separated_as_on_the_command_line(tmp_path):
    for name, text_col in (("string", "title, description"), ("tuple", ("title", "description"))):
        fedpart.partition(FIXTURE, task="tc", text_col=text_col, label_col="label", out=tmp_path / name,
                          scheme="iid", clients=2, read_options=AG, plot=False)
    assert (tmp_path / "string" / "manifest.json").read_text() == (tmp_path / "tuple" / "manifest.json").read_text()
    assert fedpart.load_client(tmp_path / "string", 0, format="arrow").equals(
        fedpart.load_client(tmp_path / "tuple", 0, format="arrow"))


def test_an_hf_endpoint_that_is_no_host_name_is_a_clear_error():
    """An HF_ENDPOINT whose host cannot even be encoded (a label over 63 letters) fails the lookup
    without a network, as a clear InputError naming the host."""
    from fedpart.io.hub import check_hub_reachable

    host = "a" * 70 + ".org"
    with pytest.raises(InputError, match=f"hf://ag_news: cannot reach the Hugging Face Hub \\({host}: .*idna"):
        check_hub_reachable("hf://ag_news", "ag_news", {"HF_ENDPOINT": f"https://{host}"})
