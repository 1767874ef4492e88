"""Benchmark: fedpart vs flwr-datasets' DirichletPartitioner, and fedpart vs the Parquet I/O floor.

On one generated Parquet file (N rows, 20 labels, ~200 bytes of random words per row) this
partitions with Dirichlet alpha=0.1 into each client count and writes every shard to Parquet:

* fedpart:  ``fedpart.engine.partition(..., scheme="dirichlet", alpha=0.1, clients=C)`` (two
  streaming passes; the output also has a ``row_id`` column, a manifest and checksums);
* flwr:     ``datasets.Dataset.from_parquet`` (the Arrow cache it builds is part of the timing),
  ``DirichletPartitioner(partition_by="label", alpha=0.1, min_partition_size=0,
  self_balancing=False, seed=0)``, then ``load_partition(i).to_parquet(...)`` for every id;
* io-floor: a plain pyarrow read of the whole file in batches (``ParquetFile(pre_buffer=False)
  .iter_batches``) written to one Parquet file with ``ParquetWriter`` -- the least any tool that
  reads and rewrites the data can do, in bounded memory;
* io-floor-files (context, no goal): the same read, the rows written in input order to C files of
  consecutive rows, one row group each -- what writing that many shards costs without assignment
  or checksums.

Then fedpart and both floors (no flwr) at ``--big-rows`` rows (default 10,000,000), where
fedpart's peak RSS must stay below 1 GiB.

Every measured run is a fresh subprocess of this script (``--one``), so imports do not leak between
runs and the peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss`` of that process, interpreter and imports
included) belongs to that run alone. With ``--repeat N`` the runs are taken in N rounds of one run
per measurement, so that the floor and fedpart runs a ratio compares are minutes apart even when
the machine's speed drifts. "wall" is the operation itself, timed inside the subprocess
after imports; "process" is the whole subprocess, start-up and imports included. The input sits in
the page cache (it was just written or read) and outputs are not fsynced, so timings are of CPU and
memory work, not of the disk; dirty pages of earlier runs are written back (``sync``) before each
run, outside its timing, so that the kernel does not throttle one run's writes for the previous
runs' outputs (at 10M rows each run leaves 2 GB of dirty page cache). Results: a markdown table
on stdout and in ``bench/results/partition_vs_flwr.md``.

Run it from the benchmark venv (flwr-datasets pins an older ``datasets``)::

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[bench]'
    .venv-bench/bin/python bench/partition_vs_flwr.py                # full: 1M rows, 100+1000, 10M
    .venv-bench/bin/python bench/partition_vs_flwr.py --rows 100000 --skip-big   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
DEFAULT_WORKDIR = ROOT / "out" / "partition_vs_flwr"
RESULTS = ROOT / "results" / "partition_vs_flwr.md"

SEED = 0
ALPHA = 0.1
NUM_LABELS = 20
GEN_VERSION = "1"  # bump when the generator changes, so cached inputs are regenerated
GEN_CHUNK_ROWS = 131_072
VOCAB_SIZE = 8_192
RESULT_PREFIX = "BENCH-RESULT "
TRASH = "trash"  # outputs of finished runs, deleted at the end (see discard)

FLOOR_FILES = "io-floor-files"  # the floor written as as many files as clients (no goal: context)
GOAL_SPEEDUP = 10.0  # flwr / fedpart at 1000 clients
GOAL_FLOOR = 2.0  # fedpart / io-floor
GOAL_RSS_MIB = 1024.0  # fedpart at big rows


# --------------------------------------------------------------------------- data generation


def generate(path: Path, rows: int, seed: int = SEED) -> Path:
    """Write ``rows`` rows of (text: ~200 bytes of random words, label: int64 in [0, 20)) to ``path``.

    Deterministic for (rows, seed); vectorised per chunk of :data:`GEN_CHUNK_ROWS` rows, so memory
    stays flat whatever ``rows``. A file with matching metadata is reused.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    meta = {b"bench.rows": str(rows).encode(), b"bench.seed": str(seed).encode(),
            b"bench.gen": GEN_VERSION.encode()}
    if path.exists():
        try:
            found = pq.read_schema(path).metadata or {}
            if all(found.get(k) == v for k, v in meta.items()):
                return path
        except Exception:  # a broken or foreign file: regenerate
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # vocabulary: VOCAB_SIZE lowercase "words" of 2..12 letters (mean 7)
    lengths = rng.integers(2, 13, size=VOCAB_SIZE)
    letters = rng.integers(ord("a"), ord("z") + 1, size=int(lengths.sum()), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    vocab = pa.StringArray.from_buffers(VOCAB_SIZE, pa.py_buffer(offsets), pa.py_buffer(letters))
    schema = pa.schema([("text", pa.string()), ("label", pa.int64())], metadata=meta)
    tmp = path.with_name(path.name + ".tmp")
    t0 = time.perf_counter()
    with pq.ParquetWriter(tmp, schema) as writer:
        done = 0
        while done < rows:
            n = min(GEN_CHUNK_ROWS, rows - done)
            # 20..30 words of ~8 bytes (with the space) per row: ~200 bytes of text
            words_per_row = rng.integers(20, 31, size=n)
            row_offsets = np.concatenate([[0], np.cumsum(words_per_row)]).astype(np.int32)
            words = vocab.take(pa.array(rng.integers(0, VOCAB_SIZE, size=int(row_offsets[-1]))))
            text = pc.binary_join(pa.ListArray.from_arrays(pa.array(row_offsets), words), " ")
            label = pa.array(rng.integers(0, NUM_LABELS, size=n, dtype=np.int64))
            writer.write_table(pa.Table.from_arrays([text, label], schema=schema), row_group_size=n)
            done += n
    os.replace(tmp, path)
    size = path.stat().st_size
    print(f"  generated {path} ({rows:,} rows, {size / 2**20:,.0f} MiB) in {time.perf_counter() - t0:.1f} s",
          flush=True)
    return path


# --------------------------------------------------------------------------- one measured run (child)


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run_io_floor(data: Path, out: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), _cpu_s()
    # pre_buffer=False: pyarrow's default (True) makes iter_batches buffer the column chunks of every
    # row group it will read -- the whole file (2.2 GB RSS at 10M rows) -- and is slower, too.
    source = pq.ParquetFile(data, pre_buffer=False)
    rows = 0
    with pq.ParquetWriter(out / "copy.parquet", source.schema_arrow) as writer:
        for batch in source.iter_batches(batch_size=65_536):
            writer.write_batch(batch)
            rows += batch.num_rows
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0, "rows_written": rows, "phases": {}}


def _run_io_floor_files(data: Path, out: Path, clients: int) -> dict[str, Any]:
    """The I/O floor of writing ``clients`` files: the same plain read, and the rows written in input
    order to ``clients`` files of consecutive rows (as equal as can be), one row group each. No
    assignment, no checksums: what reading the data and writing it as that many shards costs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = out / "files"
    shards.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), _cpu_s()
    source = pq.ParquetFile(data, pre_buffer=False)
    total = source.metadata.num_rows
    bounds = [total * (i + 1) // clients for i in range(clients)]  # end row of each file
    shard, held, pending, rows = 0, [], 0, 0  # the file being filled, its slices and their rows
    for batch in source.iter_batches(batch_size=65_536):
        offset = 0
        while offset < batch.num_rows:
            take = min(batch.num_rows - offset, bounds[shard] - rows - pending)
            held.append(batch.slice(offset, take))
            offset, pending = offset + take, pending + take
            if rows + pending == bounds[shard]:
                table = pa.Table.from_batches(held, schema=source.schema_arrow).combine_chunks()
                pq.write_table(table, shards / f"file-{shard:05d}.parquet", row_group_size=max(pending, 1))
                rows, held, pending, shard = rows + pending, [], 0, shard + 1
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0, "rows_written": rows, "phases": {}}


class _PhaseTimer:
    """fedpart progress factory that records when each pass starts and ends."""

    def __init__(self) -> None:
        self.spans: dict[str, list[float]] = {}

    def __call__(self, desc: str, total: int | None) -> Any:
        start = time.perf_counter()
        spans = self.spans

        class _Bar:
            def update(self, n: int) -> None:
                pass

            def close(self) -> None:
                spans[desc] = [start, time.perf_counter()]

        return _Bar()


def _run_fedpart(data: Path, out: Path, clients: int) -> dict[str, Any]:
    from fedpart.engine import partition

    timer = _PhaseTimer()
    t0, c0 = time.perf_counter(), _cpu_s()
    manifest = partition(
        str(data), out=out / "fedpart", scheme="dirichlet", alpha=ALPHA, clients=clients,
        label_col="label", seed=SEED, plot=False, overwrite=True, progress=timer,
    )
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    phases: dict[str, float] = {}
    for desc, (start, end) in timer.spans.items():
        phases[desc.split(":")[-1].strip()] = end - start  # "counting" (pass 1), "writing" (pass 2)
    phases["other"] = wall - sum(phases.values())  # plan, checksums, fingerprint, manifest
    return {"wall_s": wall, "cpu_s": cpu, "rows_written": int(manifest.rows["written"]), "phases": phases}


def _run_flwr(data: Path, out: Path, clients: int) -> dict[str, Any]:
    import datasets
    from flwr_datasets.partitioner import DirichletPartitioner

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    shards = out / "flwr"
    shards.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), _cpu_s()
    ds = datasets.Dataset.from_parquet(str(data), cache_dir=str(out / "hf_cache"))
    t_load = time.perf_counter()
    partitioner = DirichletPartitioner(
        num_partitions=clients, partition_by="label", alpha=ALPHA, min_partition_size=0,
        self_balancing=False, seed=SEED,
    )
    partitioner.dataset = ds
    assert partitioner.num_partitions == clients  # draws the assignment (first load_partition would)
    t_plan = time.perf_counter()
    rows = 0
    for pid in range(clients):
        part = partitioner.load_partition(pid)
        part.to_parquet(str(shards / f"partition-{pid:05d}.parquet"))
        rows += part.num_rows
    end = time.perf_counter()
    return {"wall_s": end - t0, "cpu_s": _cpu_s() - c0, "rows_written": rows,
            "phases": {"load": t_load - t0, "assign": t_plan - t_load, "write": end - t_plan}}


def _dir_stats(path: Path) -> tuple[int, int]:
    """(bytes, files) of the Parquet files under ``path``."""
    total = files = 0
    for p in path.rglob("*.parquet"):
        total += p.stat().st_size
        files += 1
    return total, files


def run_one(kind: str, data: Path, out: Path, clients: int) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if kind == "io-floor":
        result = _run_io_floor(data, out)
    elif kind == FLOOR_FILES:
        result = _run_io_floor_files(data, out, clients)
    elif kind == "fedpart":
        result = _run_fedpart(data, out, clients)
    elif kind == "flwr":
        result = _run_flwr(data, out, clients)
    else:
        raise SystemExit(f"unknown --one kind {kind!r}")
    result["peak_rss_mib"] = _peak_rss_mib()
    shutil.rmtree(out / "hf_cache", ignore_errors=True)  # flwr's Arrow cache is not output
    result["out_bytes"], result["out_files"] = _dir_stats(out)
    return result


# --------------------------------------------------------------------------- driver (parent)


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, all processes), from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except OSError:
        return float("nan")
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def discard(out: Path, workdir: Path, files: int) -> None:
    """Delete a run's output -- right away if it is one file, else at the end of the benchmark.

    Deleting thousands of files makes creating the next ones slow on some file systems: ext4
    without a journal skips the inodes freed in the last minutes one by one when it allocates new
    ones (up to ~1 ms per file created after 1000 deletions), which would bill the next run for
    this run's clean-up. Shards are moved aside (a rename) and deleted by :func:`empty_trash`.
    """
    if files <= 1:
        shutil.rmtree(out, ignore_errors=True)
    else:
        trash = workdir / TRASH
        trash.mkdir(exist_ok=True)
        os.replace(out, trash / f"{out.name}-{time.monotonic_ns()}")


def empty_trash(workdir: Path) -> None:
    shutil.rmtree(workdir / TRASH, ignore_errors=True)


def file_create_cost(workdir: Path, files: int = 1000) -> float:
    """Seconds to create ``files`` empty files in the workdir now (kept until the end, like shards).

    Not part of any run: it says how much of a 1000-shard run is the file system's own cost, which
    varies with what was deleted on it recently (see :func:`discard`).
    """
    probe = workdir / TRASH / f"create-probe-{time.monotonic_ns()}"
    probe.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(files):
        open(probe / f"f{i:05d}", "wb").close()
    return time.perf_counter() - t0


def _label(kind: str, rows: int, clients: int) -> str:
    return f"{kind} {rows:,} rows" + (f", {clients} clients" if kind != "io-floor" else "")


def measure_once(kind: str, data: Path, rows: int, clients: int, workdir: Path, keep: bool,
                 i: int = 0, repeat: int = 1) -> dict[str, Any]:
    """Run ``kind`` once in a fresh subprocess (run ``i`` of ``repeat``); return its result."""
    label = _label(kind, rows, clients)
    out = workdir / f"run-{kind}-{rows}-{clients}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", kind, "--data", str(data),
           "--out", str(out), "--one-clients", str(clients)]
    env = dict(os.environ, HF_DATASETS_CACHE=str(workdir / "hf_home"), HF_HOME=str(workdir / "hf_home"),
               HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1",
               TQDM_DISABLE="1")
    # Write back the earlier runs' outputs first (outside the timing): gigabytes of dirty page
    # cache left by them would make the kernel throttle this run's writes.
    if hasattr(os, "sync"):
        os.sync()
    busy0, ours0 = _busy_cpu_s(), _children_cpu_s()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    process_s = time.perf_counter() - t0
    # CPU the rest of the machine used meanwhile, in cores: busy time minus our subprocess's
    others = max(0.0, (_busy_cpu_s() - busy0) - (_children_cpu_s() - ours0)) / process_s
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{label}: the run failed (exit {proc.returncode})")
    line = next(l for l in proc.stdout.splitlines()[::-1] if l.startswith(RESULT_PREFIX))
    result = json.loads(line[len(RESULT_PREFIX):])
    result["process_s"] = process_s
    result["others_cores"] = others
    if not keep:
        discard(out, workdir, result["out_files"])
    phases = " ".join(f"{k}={v:.1f}s" for k, v in result["phases"].items())
    print(f"  {label}{f' [{i + 1}/{repeat}]' if repeat > 1 else ''}: {result['wall_s']:.2f} s, "
          f"cpu {result['cpu_s']:.1f} s, peak RSS {result['peak_rss_mib']:,.0f} MiB, "
          f"{result['out_files']} files, other processes used {others:.2f} cores"
          f"{f' ({phases})' if phases else ''}", flush=True)
    if result["rows_written"] != rows:
        raise SystemExit(f"{label}: wrote {result['rows_written']:,} rows, expected {rows:,}")
    return result


def summarize(kind: str, rows: int, clients: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median-wall run of ``runs``, with every run's wall time, the most RSS and other load."""
    runs = sorted(runs, key=lambda r: r["wall_s"])
    chosen = dict(runs[len(runs) // 2])
    chosen.update(kind=kind, rows=rows, clients=clients if kind != "io-floor" else None,
                  walls=[r["wall_s"] for r in runs], peak_rss_mib=max(r["peak_rss_mib"] for r in runs),
                  others_cores=max(r["others_cores"] for r in runs))
    return chosen


def measure_interleaved(configs: list[tuple[str, Path, int, int]], workdir: Path, repeat: int,
                        keep: bool) -> list[dict[str, Any]]:
    """Run every ``(kind, data, rows, clients)`` of ``configs`` ``repeat`` times, in rounds: one run of
    each config per round. The machine's speed drifts (by 20-30 % within an hour on a shared VM), so
    the runs a ratio compares are taken minutes apart in every round, not in separate blocks."""
    runs: list[list[dict[str, Any]]] = [[] for _ in configs]
    for i in range(repeat):
        for config, done in zip(configs, runs):
            kind, data, rows, clients = config
            done.append(measure_once(kind, data, rows, clients, workdir, keep, i, repeat))
    return [summarize(kind, rows, clients, done) for (kind, _, rows, clients), done in zip(configs, runs)]


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def fedpart_state() -> str:
    """The commit of the checkout and, if ``fedpart/`` differs from it, a digest of that diff."""
    import hashlib

    repo = ROOT.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        diff = subprocess.run(["git", "-C", str(repo), "diff", "HEAD", "--", "fedpart"], capture_output=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    if not diff:
        return f"commit {head}"
    return f"commit {head} + uncommitted changes in fedpart/ (diff sha1 {hashlib.sha1(diff).hexdigest()[:10]})"


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                           if l.startswith("MemTotal")).split()[1])
        mem = f"{mem_kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        mem = "?"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": f"{cpu}, {cores} cores usable",
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "fedpart": f"{_version('fedpart')}, {fedpart_state()}",
        "flwr-datasets": _version("flwr-datasets"),
        "datasets": _version("datasets"),
        "pyarrow": _version("pyarrow"),
        "numpy": _version("numpy"),
    }


def _fmt_walls(r: dict[str, Any]) -> str:
    if len(r["walls"]) == 1:
        return f"{r['wall_s']:.2f}"
    return f"{r['wall_s']:.2f} ({min(r['walls']):.2f}-{max(r['walls']):.2f})"


def report(results: list[dict[str, Any]], info: dict[str, str], data_info: dict[int, int],
           repeat: int) -> str:
    lines = ["# fedpart vs flwr-datasets: Dirichlet partition + write every shard to Parquet", ""]
    lines += [
        "Generated by `bench/partition_vs_flwr.py`. Input: generated Parquet, 20 labels (uniform), "
        "~200 bytes of random words per row, snappy. Dirichlet alpha=0.1, seed 0, every shard written "
        "as Parquet. Each run is a fresh subprocess, taken in rounds (one run of every measurement per "
        "round, so the runs a ratio compares are minutes apart); **wall** times the operation after imports "
        "(median of the runs, range in brackets), **process** the whole subprocess; **cpu** is the "
        "operation's user+system CPU time over all threads (less sensitive than wall to other load); "
        "**peak RSS** is the subprocess's `ru_maxrss`; **others** is the CPU other processes on the "
        "machine used during the run (most over the runs). Input in the page cache, outputs not fsynced "
        "(the page cache is written back with `sync` before each run, outside its timing).",
        "",
        "Inputs: " + ", ".join(f"{rows:,} rows = {size / 2**20:,.0f} MiB" for rows, size in data_info.items())
        + (f"; {repeat} runs each." if repeat > 1 else "; one run each."),
        "",
        "| run | rows | clients | wall (s) | process (s) | cpu (s) | peak RSS (MiB) | output (MiB) | files "
        "| phases (s) | others (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items())
        lines.append(
            f"| {r['kind']} | {r['rows']:,} | {r['clients'] or '-'} | {_fmt_walls(r)} | {r['process_s']:.2f} "
            f"| {r['cpu_s']:.2f} "
            f"| {r['peak_rss_mib']:,.0f} | {r['out_bytes'] / 2**20:,.0f} | {r['out_files']:,} | {phases} "
            f"| {r['others_cores']:.2f} |"
        )

    def find(kind: str, rows: int, clients: int | None = None) -> dict[str, Any] | None:
        return next((r for r in results if r["kind"] == kind and r["rows"] == rows
                     and (clients is None or r["clients"] == clients)), None)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    others = max(r["others_cores"] for r in results)
    lines += ["", f"Other processes on the machine used up to {others:.2f} of its {cores} cores during a run "
              "(machine busy time from /proc/stat minus the run's own CPU time)"
              + (" -- **they competed for the CPU; wall times are inflated**." if others > 0.25 else ".")]
    lines += ["", "## Ratios", "", "Of median wall times (of CPU times in brackets); goals are judged on wall time.",
              "", "| comparison | ratio | goal | met |", "|---|---:|---|---|"]
    goals: list[str] = []
    for r in results:
        if r["kind"] != "fedpart":
            continue
        flwr = find("flwr", r["rows"], r["clients"])
        if flwr is not None:
            ratio = flwr["wall_s"] / r["wall_s"]
            goal = f">= {GOAL_SPEEDUP:g}x" if r["clients"] == 1000 else ""
            met = ("yes" if ratio >= GOAL_SPEEDUP else "**no**") if goal else ""
            lines.append(f"| flwr / fedpart, {r['rows']:,} rows, {r['clients']} clients | {ratio:.1f}x "
                         f"({flwr['cpu_s'] / r['cpu_s']:.1f}x) | {goal} | {met} |")
        floor = find("io-floor", r["rows"])
        if floor is not None:
            ratio = r["wall_s"] / floor["wall_s"]
            met = "yes" if ratio <= GOAL_FLOOR else "**no**"
            lines.append(f"| fedpart / io-floor, {r['rows']:,} rows, {r['clients']} clients | {ratio:.2f}x "
                         f"({r['cpu_s'] / floor['cpu_s']:.2f}x) | <= {GOAL_FLOOR:g}x | {met} |")
        files = find(FLOOR_FILES, r["rows"], r["clients"])
        if files is not None:
            lines.append(f"| fedpart / io-floor-files, {r['rows']:,} rows, {r['clients']} clients "
                         f"| {r['wall_s'] / files['wall_s']:.2f}x ({r['cpu_s'] / files['cpu_s']:.2f}x) | | |")
            if floor is not None:
                lines.append(f"| io-floor-files / io-floor, {r['rows']:,} rows, {r['clients']} files "
                             f"| {files['wall_s'] / floor['wall_s']:.2f}x ({files['cpu_s'] / floor['cpu_s']:.2f}x) | | |")
    big = [r for r in results if r["kind"] == "fedpart" and r["rows"] >= 10_000_000]
    for r in big:
        met = "yes" if r["peak_rss_mib"] < GOAL_RSS_MIB else "**no**"
        lines.append(f"| fedpart peak RSS, {r['rows']:,} rows, {r['clients']} clients "
                     f"| {r['peak_rss_mib']:,.0f} MiB | < {GOAL_RSS_MIB:,.0f} MiB | {met} |")
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [
        "",
        "fedpart's output has one more column (`row_id`) plus a manifest with per-client metrics and "
        "sha256 checksums of the input and of every shard (all inside its wall time). flwr's `load` "
        "phase is `Dataset.from_parquet`, which converts the Parquet into an Arrow cache file that is "
        "then memory-mapped (its touched pages count in RSS). io-floor reads with "
        "`ParquetFile(pre_buffer=False).iter_batches` (pyarrow's default pre_buffer=True buffers the "
        "whole file: 2.2 GB RSS at 10M rows). io-floor-files (no goal, for context) is the same read with "
        "the rows written in input order to as many files as clients, one row group each: the floor of "
        "writing that many shards, without assignment or checksums. fedpart phases: counting = pass 1, "
        "writing = pass 2 (assign + write shards), other = input fingerprint, plan, shard checksums, manifest. "
        "Runs writing many files (fedpart, flwr) are deleted at the end of the benchmark, not between runs: "
        "on a file system such as ext4 without a journal, creating files just after thousands were deleted "
        "costs up to ~1 ms of kernel CPU per file, which would bill each run for the previous one's clean-up.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the comparison input")
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="rows of the fedpart-only run")
    parser.add_argument("--skip-big", action="store_true", help="skip the --big-rows runs")
    parser.add_argument("--big-clients", type=int, default=1000, help="clients of the --big-rows run")
    parser.add_argument("--clients", default="100,1000", help="comma-separated client counts")
    parser.add_argument("--skip-flwr", action="store_true", help="do not run flwr-datasets")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median reported)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help=f"inputs and outputs (default {DEFAULT_WORKDIR.relative_to(ROOT.parent)})")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the markdown")
    parser.add_argument("--keep", action="store_true", help="keep the shards of every run")
    # internal: one measured run in this (fresh) process
    parser.add_argument("--one", choices=["io-floor", FLOOR_FILES, "fedpart", "flwr"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--one-clients", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        result = run_one(args.one, args.data, args.out, args.one_clients)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # outputs an interrupted run left in the trash are deleted at the end with this run's: deleting
    # them now would make the file system slow to create files for the next minutes (see discard)
    if not args.skip_flwr and _version("flwr-datasets") == "not installed":
        raise SystemExit("flwr-datasets is not installed here; use the bench venv "
                         "(pip install -e '.[bench]') or pass --skip-flwr")
    info = machine_info()
    create_s = file_create_cost(workdir)
    load_before = _load_average()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    data_info: dict[int, int] = {}

    data = generate(workdir / f"input-{args.rows}.parquet", args.rows)
    data_info[args.rows] = data.stat().st_size
    configs = [("io-floor", data, args.rows, 0)]
    for c in clients:
        configs.append((FLOOR_FILES, data, args.rows, c))
        configs.append(("fedpart", data, args.rows, c))
        if not args.skip_flwr:
            configs.append(("flwr", data, args.rows, c))
    results = measure_interleaved(configs, workdir, args.repeat, args.keep)
    if not args.skip_big:
        big = generate(workdir / f"input-{args.big_rows}.parquet", args.big_rows)
        data_info[args.big_rows] = big.stat().st_size
        results += measure_interleaved(
            [("io-floor", big, args.big_rows, 0), (FLOOR_FILES, big, args.big_rows, args.big_clients),
             ("fedpart", big, args.big_rows, args.big_clients)],
            workdir, args.repeat, args.keep,
        )

    info["load average (1, 5, 15 min)"] = f"{load_before} before the runs, {_load_average()} after them"
    info["file system"] = (f"creating 1,000 empty files in the workdir took {create_s:.2f} s before the runs "
                           f"and {file_create_cost(workdir):.2f} s after them")
    empty_trash(workdir)
    state_after = fedpart_state()
    if state_after not in info["fedpart"]:
        warning = f"fedpart's code changed during the benchmark (now {state_after}): the runs are not comparable"
        print("WARNING: " + warning, flush=True)
        info["fedpart"] += f" -- **WARNING: {warning}**"
    text = report(results, info, data_info, args.repeat)
    print()
    print(text)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
