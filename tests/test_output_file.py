"""fedpart.io.output_file: the one policy for single output files (plots, reports, JSON/CSV records)."""

import os

import pytest

from fedpart.errors import OutputError
from fedpart.figures import save_figure
from fedpart.io.output_dir import write_text_atomic
from fedpart.io.output_file import check_distinct_outputs, check_output_file


def test_a_writable_file_passes_and_the_check_creates_nothing(tmp_path):
    check_output_file(tmp_path / "r.json", "--json")
    check_output_file(tmp_path / "new" / "deeper" / "r.json", "--json")  # missing folders are creatable
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    check_output_file(existing, "--json")
    assert existing.read_text() == "{}" and sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


def test_a_directory_is_refused_naming_the_flag(tmp_path):
    with pytest.raises(OutputError, match=r"is a directory; --plot names the file to write"):
        check_output_file(tmp_path, "--plot")


def test_a_folder_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "a"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"a/b/r\.csv: .*/a is a file, not a folder; choose another --csv"):
        check_output_file(blocker / "b" / "r.csv", "--csv")


def test_an_unwritable_folder_is_refused_even_as_root(tmp_path):
    # /proc refuses new files whoever asks, so the probe (not os.access) is what is tested
    with pytest.raises(OutputError, match=r"/proc/fedpart-probe\.json: cannot be written \(.+\); choose another --report"):
        check_output_file("/proc/fedpart-probe.json", "--report")


def test_the_avoided_paths_and_whatever_lies_inside_them_are_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("{}\n")
    avoid = {run: "the run", prompts: "the input"}
    with pytest.raises(OutputError, match=r"prompts\.jsonl: is the input .*prompts\.jsonl; choose another --json file"):
        check_output_file(prompts, "--json", avoid=avoid)
    with pytest.raises(OutputError, match=r"lies inside the run .*run; choose a --json file outside it"):
        check_output_file(run / "sub" / "r.json", "--json", avoid=avoid)
    # relative spellings of the same place count too
    with pytest.raises(OutputError, match="lies inside the run"):
        check_output_file(tmp_path / "x" / ".." / "run" / "r.json", "--json", avoid=avoid)
    check_output_file(tmp_path / "run.json", "--json", avoid=avoid)  # a sibling whose name starts alike


def test_two_outputs_naming_one_file_are_refused_and_unset_ones_ignored(tmp_path):
    check_distinct_outputs({"--plot": tmp_path / "a.png", "--json": None, "--csv": tmp_path / "a.csv"})
    with pytest.raises(OutputError, match=r"--plot and --json name the same file; choose two files"):
        check_distinct_outputs({"--plot": tmp_path / "a", "--json": tmp_path / "." / "a"})


def test_writers_create_missing_folders_and_leave_no_temporary_file(tmp_path):
    path = write_text_atomic(tmp_path / "a" / "b" / "r.json", "{}\n")
    assert path.read_text() == "{}\n" and os.listdir(path.parent) == ["r.json"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    try:
        written = save_figure(fig, tmp_path / "c" / "plot")
    finally:
        plt.close(fig)
    assert written == tmp_path / "c" / "plot.png" and written.read_bytes()[:4] == b"\x89PNG"
