"""The command line: partition and stats output, files written, --quiet, and light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import fedpart
from fedpart.cli import main
from fedpart.manifest import Manifest

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "ag_news" / "sample.csv"
AG_ARGS = ["--column-names", "label,title,description", "--label-col", "label"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def table_value(output: str, key: str) -> str:
    """The value column of the stats table row starting with ``key``."""
    for line in output.splitlines():
        if line.startswith(key + "  "):
            return line[len(key):].strip()
    raise AssertionError(f"no row {key!r} in:\n{output}")


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "part"
    result = invoke("partition", str(FIXTURE), *AG_ARGS, "--scheme", "dirichlet", "--alpha", "0.3",
                    "--clients", "6", "--test-frac", "0.1", "--seed", "4", "--out", str(out))
    return out, result


def test_partition_prints_a_summary_and_the_stats_table(partitioned):
    out, result = partitioned
    assert result.exit_code == 0, result.output
    manifest = Manifest.read(out)
    client_rows = sum(c.rows for c in manifest.clients)
    assert result.stdout.splitlines()[0] == (
        f"wrote 6 client shards ({client_rows} rows) and a test split ({600 - client_rows} rows) to {out}"
    )
    assert manifest.test.rows == 600 - client_rows > 0
    assert result.stdout.splitlines()[-1] == f"plot: {out / 'label_distribution.png'}"  # as stats prints it
    assert (out / "label_distribution.png").read_bytes().startswith(PNG_MAGIC)
    assert table_value(result.stdout, "scheme").startswith("dirichlet (num_clients=6, alpha=0.3")
    assert table_value(result.stdout, "scheme").endswith("seed 4")
    assert table_value(result.stdout, "clients") == "6"
    assert table_value(result.stdout, "test rows") == "60" == str(manifest.test.rows)
    assert table_value(result.stdout, "labels") == "4"
    assert table_value(result.stdout, "mean total-variation to global") == f"{manifest.metrics['mean_tv']:.3f}"
    sizes = sorted(c.rows for c in manifest.clients)
    assert table_value(result.stdout, "client size min / median / max").startswith(f"{sizes[0]} / ")


def test_partition_writes_manifest_shards_and_plot(partitioned):
    out, _ = partitioned
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scheme"] == "dirichlet" and manifest["seed"] == 4 and manifest["schema_version"] == 1
    assert [c["file"] for c in manifest["clients"]] == [f"clients/client-{i:05d}.parquet" for i in range(6)]
    assert sum(pq.ParquetFile(out / c["file"]).metadata.num_rows for c in manifest["clients"]) == 540
    assert pq.ParquetFile(out / "test.parquet").metadata.num_rows == 60
    assert (out / "label_distribution.png").read_bytes().startswith(PNG_MAGIC)
    assert str(out) not in (out / "manifest.json").read_text(), "no absolute output paths in the manifest"


def test_stats_prints_the_table_and_json(partitioned):
    out, _ = partitioned
    manifest = Manifest.read(out)
    result = invoke("stats", str(out))
    assert result.exit_code == 0, result.output
    assert table_value(result.stdout, "clients") == "6"
    assert table_value(result.stdout, "input rows") == "600 (0 dropped as null)"
    assert result.stdout.strip().splitlines()[-1] == f"plot: {out / 'label_distribution.png'}"

    result = invoke("stats", str(out), "--json", "--no-plot")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["scheme"] == "dirichlet" and record["seed"] == 4
    assert record["rows"] == {"input": 600, "dropped_null": 0, "written": 600}
    assert record["test_rows"] == 60 and record["clients"] == 6
    assert record["labels"] == manifest.labels
    assert record["mean_tv"] == pytest.approx(manifest.metrics["mean_tv"])


def test_stats_rewrites_the_plot_unless_told_not_to(tmp_path):
    out = tmp_path / "part"
    result = invoke("partition", str(FIXTURE), *AG_ARGS, "--clients", "3", "--no-plot", "-q", "--out", str(out))
    assert result.exit_code == 0
    assert not (out / "label_distribution.png").exists()
    assert invoke("stats", str(out), "--no-plot").exit_code == 0
    assert not (out / "label_distribution.png").exists()
    assert invoke("stats", str(out)).exit_code == 0
    assert (out / "label_distribution.png").read_bytes().startswith(PNG_MAGIC)


def test_stats_checks_the_shards_first_unless_told_not_to(tmp_path):
    out = tmp_path / "part"
    assert invoke("partition", str(FIXTURE), *AG_ARGS, "--clients", "3", "-q", "--out", str(out)).exit_code == 0
    shard = out / "clients" / "client-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:-8])
    result = invoke("stats", str(out))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (f"error: {shard}: shard does not match the sha256 in manifest.json; the "
                                     "partition was modified or corrupted; re-run `fedpart partition`")
    skipped = invoke("stats", str(out), "--no-verify", "--no-plot")
    assert skipped.exit_code == 0 and table_value(skipped.stdout, "clients") == "3"


def test_stats_of_a_directory_that_is_not_a_partition(tmp_path):
    result = invoke("stats", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path}: not a fedpart partition directory (no manifest.json); create one with `fedpart partition`"
    )


def test_quiet_prints_nothing_but_still_writes(tmp_path):
    out = tmp_path / "part"
    result = invoke("partition", str(FIXTURE), *AG_ARGS, "--clients", "3", "-q", "--out", str(out))
    assert result.exit_code == 0
    assert result.output == ""
    assert Manifest.read(out).rows["written"] == 600


def test_cli_and_library_give_the_same_partition(tmp_path):
    cli_out, lib_out = tmp_path / "cli", tmp_path / "lib"
    result = invoke("partition", str(FIXTURE), *AG_ARGS, "--scheme", "label-count", "--labels-per-client", "2",
                    "--clients", "4", "--seed", "9", "-q", "--no-plot", "--out", str(cli_out))
    assert result.exit_code == 0, result.output
    from fedpart.io.sources import ReadOptions

    fedpart.partition(str(FIXTURE), out=lib_out, scheme="label-count", labels_per_client=2, clients=4, seed=9,
                      label_col="label", read_options=ReadOptions(column_names=("label", "title", "description")),
                      plot=False)
    for path in sorted(lib_out.rglob("*.parquet")):
        assert path.read_bytes() == (cli_out / path.relative_to(lib_out)).read_bytes()
    assert (lib_out / "manifest.json").read_text() == (cli_out / "manifest.json").read_text()


def test_version_and_help():
    result = invoke("--version")
    assert result.exit_code == 0 and fedpart.__version__ in result.output
    result = invoke("partition", "--help")
    assert result.exit_code == 0
    for flag in ("--scheme", "--alpha", "--min-client-size", "--test-frac", "--overwrite", "--drop-null-labels"):
        assert flag in result.output


# --- import weight --------------------------------------------------------------------------------

def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)


HEAVY = ("torch", "spacy", "transformers", "sentence_transformers")


def test_importing_fedpart_is_light():
    result = run_python(
        "import sys, fedpart\n"
        "heavy = [m for m in ('datasets', 'matplotlib', 'polars', 'torch', 'spacy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert result.returncode == 0, result.stderr


def test_help_and_partition_do_not_import_torch_or_spacy(tmp_path):
    out = tmp_path / "part"
    code = (
        "import sys\n"
        "from fedpart.cli import main\n"
        "for args in (['--help'], ['partition', '--help'],\n"
        f"             ['partition', {str(FIXTURE)!r}, '--column-names', 'label,title,description',\n"
        f"              '--label-col', 'label', '--clients', '3', '--out', {str(out)!r}]):\n"
        "    try:\n"
        "        main(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "    assert not heavy, (args, heavy)\n"
        "print('ok')\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
    assert (out / "manifest.json").is_file(), "the partition really ran"


def test_partition_and_stats_without_a_label(tmp_path):
    out = tmp_path / "part"
    result = invoke("partition", str(FIXTURE), "--column-names", "label,title,description", "--clients", "4",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "labels" not in [line.split("  ")[0] for line in result.stdout.splitlines()]
    assert not (out / "label_distribution.png").exists(), "no label, no label plot"
    result = invoke("stats", str(out), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["labels"] is None and "mean_tv" not in record
    assert record["size"]["min"] == record["size"]["max"] == 150
